// blocking(f): result and exception transport, and the M stays free meanwhile.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include <gofer/gofer.hpp>

#include "support/runtime_fixture.hpp"

using namespace std::chrono_literals;

TEST_CASE("blocking returns f's result and rethrows its exception", "[blocking]") {
  CHECK(gofer::blocking([] { return 5; }) == 5);  // outside a fiber: a plain call
  gofer::test::for_each_sched([](auto&&) {
    CHECK(gofer::blocking([] { return std::string("value"); }) == "value");
    int x = 0;
    int& ref = gofer::blocking([&]() -> int& { return x; });
    CHECK(&ref == &x);
    gofer::blocking([&] { x = 3; });
    CHECK(x == 3);
    CHECK_THROWS_WITH(gofer::blocking([]() -> int { throw std::runtime_error("io failed"); }),
                      "io failed");
  });
}

TEST_CASE("blocking runs off the scheduler's thread and keeps the P free", "[blocking]") {
  gofer::run(
      [] {
        std::atomic<bool> other_ran{false};
        gofer::go([&] { other_ran = true; });
        auto main_thread = std::this_thread::get_id();
        // With one P, the other fiber can run only if this call does not hold
        // the M: the call waits (bounded) until it has.
        std::thread::id ran_on;
        bool saw = gofer::blocking([&] {
          ran_on = std::this_thread::get_id();
          auto deadline = std::chrono::steady_clock::now() + 10s;
          while (!other_ran.load() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(100us);
          return other_ran.load();
        });
        CHECK(saw);
        CHECK(ran_on != main_thread);
      },
      {.procs = 1});
}

TEST_CASE("many concurrent blocking calls all complete", "[blocking]") {
  gofer::test::for_each_sched([](auto&&) {
    constexpr int n = 64;
    std::atomic<int> done{0};
    gofer::wait_group wg;
    wg.add(n);
    for (int i = 0; i < n; ++i) {
      gofer::go([&, i] {
        int v = gofer::blocking([i] {
          std::this_thread::sleep_for(1ms);
          return i;
        });
        if (v == i) done.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();
    CHECK(done.load() == n);
  });
}
