// gofer::go: argument passing, options, where fibers run, panics.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <gofer/gofer.hpp>

#include "support/runtime_fixture.hpp"
#include "support/subprocess.hpp"

TEST_CASE("go decay-copies arguments as std::thread does", "[go]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::wait_group wg;
    std::string s = "copied";
    std::string got;
    wg.add(1);
    gofer::go(
        [&](std::string v, int n) {
          got = v + std::to_string(n);
          wg.done();
        },
        s, 1);
    s = "changed";
    wg.wait();
    CHECK(got == "copied1");
  });
}

TEST_CASE("go accepts move-only arguments and mutable lambdas", "[go]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::wait_group wg;
    // One result per fiber: the two may run at once on different threads.
    int from_unique = 0;
    int from_mutable = 0;
    wg.add(2);
    gofer::go([&](std::unique_ptr<int> p) { from_unique = *p; wg.done(); },
              std::make_unique<int>(40));
    int counter = 0;
    gofer::go([&, counter]() mutable {
      counter += 2;
      from_mutable = counter;
      wg.done();
    });
    wg.wait();
    CHECK(from_unique == 40);
    CHECK(from_mutable == 2);
    CHECK(counter == 0);
  });
}

TEST_CASE("go with fiber_options names the fiber and sizes its stack", "[go]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::wait_group wg;
    std::size_t deep = 0;
    wg.add(1);
    gofer::go(gofer::fiber_options{.name = "big", .stack_size = 1 << 20}, [&] {
      // Half a MiB of locals: fits only in the larger stack.
      volatile char buf[512 * 1024];
      buf[0] = 1;
      buf[sizeof buf - 1] = 1;
      deep = sizeof buf;
      wg.done();
    });
    wg.wait();
    CHECK(deep == 512 * 1024);
  });
}

TEST_CASE("a fiber spawned from a fiber runs on the same runtime", "[go]") {
  gofer::run(
      [] {
        auto* mine = gofer::detail::current_runtime();
        gofer::wait_group wg;
        gofer::detail::runtime_impl* theirs = nullptr;
        wg.add(1);
        gofer::go([&] {
          theirs = gofer::detail::current_runtime();
          wg.done();
        });
        wg.wait();
        CHECK(theirs == mine);
        CHECK(mine != &gofer::runtime::default_runtime().impl());
      },
      {.procs = 2});
}

TEST_CASE("many fibers all run to completion", "[go]") {
  gofer::test::for_each_sched([](auto&&) {
    constexpr int n = gofer::test::scaled(20000);
    gofer::wait_group wg;
    std::atomic<long> sum{0};
    wg.add(n);
    for (int i = 0; i < n; ++i) {
      gofer::go([&, i] {
        if (i % 3 == 0) gofer::this_fiber::yield();
        sum.fetch_add(i, std::memory_order_relaxed);
        wg.done();
      });
    }
    wg.wait();
    CHECK(sum.load() == long(n) * (n - 1) / 2);
  });
}

// The line, not just the file: a call site recorded inside go's overloads or
// run() would still name a file, but the wrong one or the wrong line.
TEST_CASE("go and run record the line they are called from", "[go]") {
  std::string dump;
  const int run_line = __LINE__ + 1;
  gofer::run([&] {
    gofer::wait_group gate;
    gate.add(1);
    const int go_line = __LINE__ + 1;
    gofer::go(gofer::fiber_options{.name = "recorded"}, [&] { gate.wait(); });
    std::ostringstream os;
    gofer::dump_fibers(os);
    gate.done();
    dump = os.str();
    INFO(dump);
    CHECK_THAT(dump, Catch::Contains("\"recorded\"") &&
                         Catch::Contains("go_test.cpp:" + std::to_string(go_line) + "\n"));
  });
  INFO(dump);
  CHECK_THAT(dump, Catch::Contains("go_test.cpp:" + std::to_string(run_line) + "\n"));
}

TEST_CASE("an exception escaping a fiber is reported as a panic", "[go][death][child]") {
  auto r = gofer::test::run_in_child([] {
    gofer::run([] {
      gofer::go(gofer::fiber_options{.name = "thrower"}, [] { throw std::runtime_error("kaboom"); });
      gofer::this_fiber::sleep_for(std::chrono::seconds(10));
    });
  });
  INFO(r.err);
  CHECK(r.exited);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("gofer: panic: kaboom"));
  CHECK_THAT(r.err, Catch::Contains("(thrower)"));
  CHECK_THAT(r.err, Catch::Contains("created by"));
  CHECK_THAT(r.err, Catch::Contains("go_test.cpp"));
}
