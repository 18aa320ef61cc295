// main returns while timers are pending that no fiber waits on: time.AfterFunc
// an hour away, a timer stopped and reset, a ticker nobody reads, a context
// whose deadline is an hour away, a context.AfterFunc waiting for a
// cancellation that never comes, and a sleeping fiber's timer beside them.
// The program ends at once with main's output and nothing on stderr.
//
// The contexts belong to a fiber that holds them while it waits for good, as
// a server's request handler would: a context whose cancel function nobody
// calls is freed only when its parent is cancelled or its deadline fires (as
// Go documents, and its vet checks), and at main's end neither happens.
#include <gofer/gofer.hpp>

#include "parked.hpp"

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

int main() {
  return gofer::run([] {
    int fired = 0;
    gofer::after_func(1h, [&] { ++fired; });
    gofer::timer t(1h);
    t.stop();
    t.reset(2h);
    gofer::ticker tk(30min);
    gofer::chan<int> never;
    gofer::go([never, &fired] {
      auto [ctx, cancel] = gofer::with_timeout(gofer::context::background(), 1h);
      auto [child, cancel_child] = gofer::with_cancel(ctx);
      auto handle = gofer::after_func(child, [&fired] { ++fired; });
      (void)never.recv();
    });
    // Timers on other Ps too: each fiber arms one and then waits on it.
    for (int i = 0; i < 8; ++i) {
      gofer::go([] {
        gofer::timer mine(1h);
        mine.c().recv();
      });
    }
    gofer::go([] { gofer::this_fiber::sleep_for(1h); });
    until_parked(9, "chan receive");
    until_parked(1, "sleep");
    std::printf("main returns with 13 timers pending; %d fired\n", fired);
  });
}
