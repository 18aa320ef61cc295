// once: exactly one run however many callers race, every caller returns after
// it has finished, and a throwing call leaves it not done.
#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gofer/gofer.hpp>
#include <gofer/sync/once.hpp>

#include "../support/runtime_fixture.hpp"

TEST_CASE("once runs its function once and every caller sees it finished", "[once]") {
  gofer::test::for_each_sched([](auto&&) {
    const int fibers = 50, threads = 4;
    gofer::once o;
    std::atomic<int> runs{0}, early{0};
    bool finished = false;  // written inside call(), read after it: no atomic needed
    auto body = [&] {
      o.call([&] {
        runs.fetch_add(1);
        gofer::this_fiber::yield();  // let the others pile up behind it
        finished = true;
      });
      if (!finished) early.fetch_add(1);
    };
    gofer::test::in_fibers_and_threads(fibers, threads, body);
    CHECK(runs.load() == 1);
    CHECK(early.load() == 0);
    CHECK(o.done());
  });
}

TEST_CASE("once: a throwing call reaches its caller and a later call retries", "[once]") {
  gofer::once o;
  CHECK_FALSE(o.done());
  CHECK_THROWS_WITH(o.call([] { throw std::runtime_error("first try fails"); }),
                    "first try fails");
  CHECK_FALSE(o.done());
  int runs = 0;
  o.call([&] { ++runs; });
  o.call([&] { ++runs; });
  CHECK(runs == 1);
  CHECK(o.done());
}
