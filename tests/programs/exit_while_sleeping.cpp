// Go's most common shape of program: main starts fibers that would run for an
// hour (a sleep, a select with a long timeout, a timer nobody stops) and
// returns; the program ends at once, and what main printed is all there, with
// nothing printed on stderr. The printing is not flushed by hand on purpose:
// a crash on the way out loses what stdout still buffers.
#include <gofer/gofer.hpp>

#include "parked.hpp"

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

int main() {
  return gofer::run([] {
    gofer::go([] { gofer::this_fiber::sleep_for(1h); });
    gofer::go([] { gofer::this_fiber::sleep_until(std::chrono::steady_clock::now() + 1h); });
    gofer::go([] {
      gofer::chan<int> never;
      gofer::select(gofer::on_recv(never), gofer::on_timeout(1h));
    });
    gofer::go([] {
      gofer::timer t(1h);
      t.c().recv();
    });
    gofer::go([] { gofer::after(1h).recv(); });
    until_parked(2, "sleep");
    until_parked(1, "select");
    until_parked(2, "chan receive");
    // A sleep that ends: the program's own work, while the others sleep.
    gofer::this_fiber::sleep_for(1ms);
    std::printf("main returns while five fibers sleep for an hour\n");
  });
}
