// main returns while another fiber computes without ever parking (a for (;;)
// that never blocks nor yields). Go's program ends there: returning from
// main ends every goroutine, whatever it is doing. Here run() must return
// too, leaving that fiber's thread to the process's exit.
//
// Main waits until the spinner computes, without parking (a park would
// queue main behind the spinner on its P). At GOFER_PROCS=1 the spinner
// would then never run, and main holding the only P could not wait for it:
// there main returns at once. Being woken on a P that a computing fiber
// holds would need that P handed to another thread, which gofer does not do.
#include <gofer/gofer.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main() {
  return gofer::run([] {
    // A static: the spinner may still read it after main's frame is gone.
    static std::atomic<bool> spinning{false};
    gofer::go(gofer::fiber_options{.name = "spinner"}, [] {
      for (unsigned long i = 0;; ++i) {
        if (i == 1000) spinning.store(true);
        std::atomic_signal_fence(std::memory_order_seq_cst);  // keeps the loop a loop
      }
    });
    const char* procs = std::getenv("GOFER_PROCS");
    if (procs == nullptr || std::strcmp(procs, "1") != 0) {
      while (!spinning.load()) {
        // Another P takes the spinner from this one's queue.
      }
    }
    std::printf("main returns while a fiber computes forever\n");
  });
}
