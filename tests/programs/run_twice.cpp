// run() may be called again once it has returned, and what the first main
// left behind must not reach into the second: fibers abandoned asleep, in a
// select with a timeout, blocked on a channel, behind a ticker, and in
// blocking() calls whose helper threads finish only while the second run is
// under way, and would then find the fiber they should wake long gone.
#include <gofer/gofer.hpp>

#include "parked.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

using namespace std::chrono_literals;

// The first run's blocking calls wait for the second run to start, so that
// all four are certainly in flight when the first main returns, and finish
// while the second runs.
std::atomic<bool> second_started{false};
std::atomic<int> calls_done{0};

int main() {
  int first = gofer::run([] {
    gofer::go([] { gofer::this_fiber::sleep_for(1h); });
    gofer::go([] {
      gofer::chan<int> never;
      gofer::select(gofer::on_recv(never), gofer::on_timeout(1h));
    });
    gofer::go([] {
      gofer::chan<int> never;
      never.recv();
    });
    gofer::go([] {
      gofer::ticker t(1ms);
      for (;;) t.c().recv();
    });
    for (int i = 0; i < 4; ++i) {
      gofer::go([] {
        gofer::blocking([] {
          while (!second_started.load()) ::usleep(1'000);
          ::usleep(20'000);
          calls_done.fetch_add(1);
        });
      });
    }
    until_parked(4, "blocking call");
    std::printf("first run ends with blocking calls in flight\n");
    return 1;
  });

  int second = gofer::run([] {
    second_started.store(true);
    // Outlives the blocking calls the first run left, with timers, channels
    // and blocking calls of its own meanwhile.
    const auto until = std::chrono::steady_clock::now() + 60ms;
    int rounds = 0;
    while (std::chrono::steady_clock::now() < until) {
      gofer::chan<int> c;
      gofer::go([c] { c.send(gofer::blocking([] { return 1; })); });
      gofer::select(gofer::on_recv(c), gofer::on_timeout(1h));
      gofer::this_fiber::sleep_for(1ms);
      ++rounds;
    }
    std::printf("second run: %s\n", rounds > 0 ? "ran" : "DID NOT RUN");
    return 2;
  });
  // The first run's helper threads may still be finishing: wait until each
  // call has returned, then give their threads the time to go on to what
  // follows a call (finding its fiber gone), in a plain thread that gofer no
  // longer runs.
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (calls_done.load() < 4 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(1ms);
  if (calls_done.load() < 4) std::printf("the blocking calls never returned\n");
  std::this_thread::sleep_for(30ms);
  std::printf("run() returned %d, then %d\n", first, second);
  return 0;
}
