// this_fiber: id, in_fiber, yield, sleep_for, sleep_until — in fibers and on
// plain threads.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include <gofer/gofer.hpp>

#include "support/runtime_fixture.hpp"

using namespace std::chrono_literals;

TEST_CASE("id is unique per fiber and 0 outside", "[this_fiber]") {
  CHECK(gofer::this_fiber::id() == 0);
  CHECK_FALSE(gofer::this_fiber::in_fiber());
  gofer::test::for_each_sched([](auto&&) {
    CHECK(gofer::this_fiber::in_fiber());
    CHECK(gofer::this_fiber::id() != 0);
    constexpr int n = 500;
    std::vector<std::uint64_t> ids(n);
    std::atomic<int> unstable{0};
    gofer::wait_group wg;
    wg.add(n);
    for (int i = 0; i < n; ++i) {
      gofer::go([&, i] {
        ids[i] = gofer::this_fiber::id();
        gofer::this_fiber::yield();
        if (ids[i] != gofer::this_fiber::id()) unstable.fetch_add(1);  // stable across a switch
        wg.done();
      });
    }
    wg.wait();
    CHECK(unstable.load() == 0);
    std::set<std::uint64_t> unique(ids.begin(), ids.end());
    CHECK(unique.size() == n);
    CHECK(unique.count(0) == 0);
  });
}

TEST_CASE("yield lets the other fibers of a P run", "[this_fiber]") {
  gofer::run(
      [] {
        std::vector<int> order;
        gofer::wait_group wg;
        wg.add(2);
        for (int who = 0; who < 2; ++who) {
          gofer::go([&, who] {
            for (int i = 0; i < 3; ++i) {
              order.push_back(who);
              gofer::this_fiber::yield();
            }
            wg.done();
          });
        }
        wg.wait();
        // One P, two fibers yielding: they alternate.
        REQUIRE(order.size() == 6);
        for (std::size_t i = 1; i < order.size(); ++i) CHECK(order[i] != order[i - 1]);
      },
      {.procs = 1});
}

TEST_CASE("yield outside a fiber and with nothing else to run returns", "[this_fiber]") {
  gofer::this_fiber::yield();
  gofer::run([] { gofer::this_fiber::yield(); }, {.procs = 1});
  SUCCEED();
}

TEST_CASE("sleep_for sleeps at least the duration, in fibers and threads", "[this_fiber]") {
  auto t0 = std::chrono::steady_clock::now();
  gofer::this_fiber::sleep_for(5ms);
  CHECK(std::chrono::steady_clock::now() - t0 >= 5ms);
  gofer::test::for_each_sched([](auto&&) {
    auto start = std::chrono::steady_clock::now();
    gofer::this_fiber::sleep_for(10ms);
    CHECK(std::chrono::steady_clock::now() - start >= 10ms);
    gofer::this_fiber::sleep_for(-5ms);  // returns at once, as time.Sleep
    gofer::this_fiber::sleep_for(0s);
  });
}

TEST_CASE("sleeping fibers wake in deadline order and do not block their P", "[this_fiber]") {
  gofer::run(
      [] {
        struct wake {
          int i;
          std::chrono::steady_clock::time_point at;
        };
        std::vector<wake> woke;
        gofer::wait_group wg;
        const auto start = std::chrono::steady_clock::now();
        for (int i : {3, 1, 2}) {
          wg.add(1);
          gofer::go([&, i] {
            gofer::this_fiber::sleep_until(start + i * 15ms);
            woke.push_back({i, std::chrono::steady_clock::now()});
            wg.done();
          });
        }
        // While they sleep, the single P keeps running this fiber.
        int spins = 0;
        while (woke.empty()) {
          ++spins;
          gofer::this_fiber::yield();
        }
        wg.wait();
        CHECK(spins > 0);
        REQUIRE(woke.size() == 3);
        // No fiber wakes before its deadline, so none wakes while one with an
        // earlier deadline still sleeps: the order is the deadlines' order,
        // except among fibers that were due together because the machine
        // stalled this process past a later deadline (then either order is
        // right, as in Go).
        for (const wake& w : woke) {
          INFO("fiber " << w.i);
          CHECK(w.at >= start + w.i * 15ms);
        }
        if (woke[0].at < start + 30ms && woke[1].at < start + 45ms) {
          CHECK((woke[0].i == 1 && woke[1].i == 2 && woke[2].i == 3));
        }
      },
      {.procs = 1});
}

TEST_CASE("sleep_until with steady and system clocks", "[this_fiber]") {
  gofer::run([] {
    auto start = std::chrono::steady_clock::now();
    gofer::this_fiber::sleep_until(start + 10ms);
    CHECK(std::chrono::steady_clock::now() >= start + 10ms);
    auto sys = std::chrono::system_clock::now();
    gofer::this_fiber::sleep_until(sys + 5ms);
    CHECK(std::chrono::system_clock::now() >= sys + 5ms);
  });
}

TEST_CASE("many sleepers on several Ps all wake", "[this_fiber]") {
  gofer::test::for_each_sched([](auto&&) {
    constexpr int n = 2000;
    std::atomic<int> woke{0};
    gofer::wait_group wg;
    wg.add(n);
    for (int i = 0; i < n; ++i) {
      gofer::go([&, i] {
        gofer::this_fiber::sleep_for(std::chrono::microseconds(100 * (i % 50)));
        woke.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();
    CHECK(woke.load() == n);
  });
}
