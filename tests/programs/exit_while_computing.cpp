// main returns while another fiber computes without ever parking (a for (;;)
// that never blocks nor yields). Go's program ends there: returning from
// main ends every goroutine, whatever it is doing. Here run() must return
// too, leaving that fiber's thread to the process's exit.
//
// At GOFER_PROCS=1 the spinner holds the only P, and main, woken by it, can
// run only once the runtime's monitor has handed the P to another thread
// (and said on stderr that the spinner held it).
#include <gofer/gofer.hpp>

#include <atomic>
#include <cstdio>

int main() {
  return gofer::run([] {
    gofer::chan<> started;
    std::atomic<bool> spinning{false};
    gofer::go(gofer::fiber_options{.name = "spinner"}, [started, &spinning] {
      started.close();
      for (unsigned long i = 0;; ++i) {
        if (i == 1000) spinning.store(true);
        std::atomic_signal_fence(std::memory_order_seq_cst);  // keeps the loop a loop
      }
    });
    started.recv();
    while (!spinning.load()) gofer::this_fiber::yield();
    std::printf("main returns while a fiber computes forever\n");
  });
}
