// The monitor's report of a fiber that holds its P ("fibers queued behind it
// wait") says so only when something is waiting for that P, as Go says
// nothing at all: not for a fiber that yields in a loop, since each yield
// gives the P up, and not for one that computes for a while with nothing
// queued behind it (here main, parked until the result comes, and no timer
// due). Both run for 30 ms, three times the report's threshold.
#include <gofer/gofer.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>

using namespace std::chrono_literals;

// Whether the dump shows main parked on a channel receive, as Go's
// goroutine dump would ("goroutine 1 [chan receive]").
bool main_parked() {
  std::ostringstream dump;
  gofer::dump_fibers(dump);
  return dump.str().find("fiber 1 \"main\" [waiting: chan receive") != std::string::npos;
}

int main() {
  return gofer::run([] {
    gofer::chan<long> result;
    gofer::go(gofer::fiber_options{.name = "yielder"}, [result] {
      const auto until = std::chrono::steady_clock::now() + 30ms;
      long yields = 0;
      while (std::chrono::steady_clock::now() < until) {
        gofer::this_fiber::yield();
        ++yields;
      }
      result.send(yields > 0 ? 1 : 0);
    });
    std::printf("yielder: %s\n", *result.recv() == 1 ? "done" : "NEVER YIELDED");
    // The yielder may still be queued, on its way out after the send: behind
    // the computer it would be something that waits, and the report right.
    while (gofer::num_fibers() > 1) gofer::this_fiber::yield();

    gofer::go(gofer::fiber_options{.name = "computer"}, [result] {
      // Computes only once main is parked: under the randomised mode main
      // may still be queued after spawning, which would be something waiting.
      while (!main_parked()) gofer::this_fiber::yield();
      const auto until = std::chrono::steady_clock::now() + 30ms;
      long steps = 0;
      while (std::chrono::steady_clock::now() < until) ++steps;
      result.send(steps);
    });
    std::printf("computer: %s\n", *result.recv() > 0 ? "done" : "NO STEPS");
  });
}
