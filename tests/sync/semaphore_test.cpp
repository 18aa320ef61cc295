// semaphore: weights, FIFO (a large request is not starved), the bound on
// concurrency, cancellation through a context, misuse.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gofer/gofer.hpp>
#include <gofer/sync/semaphore.hpp>

#include "../support/runtime_fixture.hpp"
#include "../support/dead_object.hpp"
#include "../support/eventually.hpp"
#include "../support/subprocess.hpp"

TEST_CASE("semaphore counts weights", "[semaphore]") {
  gofer::semaphore s(5);
  CHECK(s.try_acquire(3));
  CHECK_FALSE(s.try_acquire(3));
  CHECK(s.try_acquire(2));
  CHECK_FALSE(s.try_acquire(1));
  CHECK(s.try_acquire(0));
  s.release(4);
  s.acquire(4);
  s.release(5);
  CHECK(s.try_acquire(5));
  s.release(5);
}

TEST_CASE("semaphore misuse is reported and changes nothing", "[semaphore]") {
  gofer::semaphore s(2);
  s.acquire(1);
  CHECK_THROWS_WITH(s.release(2), "gofer: semaphore released more than held");
  CHECK_THROWS_AS(s.acquire(3), std::invalid_argument);
  CHECK_THROWS_AS(s.acquire(-1), std::invalid_argument);
  CHECK_THROWS_AS(s.acquire(gofer::context::background(), -1), std::invalid_argument);
  CHECK_THROWS_AS(s.try_acquire(-1), std::invalid_argument);
  CHECK(s.try_acquire(1));  // still exactly one left
  CHECK_FALSE(s.try_acquire(1));
  s.release(2);
  CHECK_THROWS_AS(gofer::semaphore(-1), std::invalid_argument);
}

TEST_CASE("a request above the size makes acquire throw and try_acquire fail", "[semaphore]") {
  gofer::semaphore s(2);
  CHECK_THROWS_AS(s.acquire(3), std::invalid_argument);
  CHECK_FALSE(s.try_acquire(3));
  CHECK(s.try_acquire(2));  // the count is untouched
  s.release(2);
}

TEST_CASE("acquire with a context and more than the size waits for the context and holds up no one",
          "[semaphore]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::semaphore s(2);
    auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
    gofer::chan<std::error_code> result(1);
    gofer::go(gofer::fiber_options{.name = "oversized"}, [&, ctx = ctx] {
      std::error_code err;
      try {
        err = s.acquire(ctx, 3);
      } catch (const std::invalid_argument&) {
        err = std::make_error_code(std::errc::invalid_argument);
      }
      result.send(err);
    });
    // Once it waits: in a channel receive, on ctx.done().
    REQUIRE(gofer::test::eventually([&] {
      if (result.size() != 0) return true;  // gave up at once: checked below
      std::ostringstream os;
      gofer::dump_fibers(os);
      return os.str().find("\"oversized\" [waiting") != std::string::npos;
    }));
    CHECK(result.size() == 0);
    // Acquirers after it are served: the whole size (with a deadline, so a
    // request stuck behind the doomed one fails rather than hangs), by a
    // fiber and by a plain thread.
    auto [later, stop] =
        gofer::with_timeout(gofer::context::background(), std::chrono::seconds(10));
    CHECK(s.acquire(later, 2) == std::error_code{});
    s.release(2);
    std::error_code from_thread = gofer::errc::canceled;
    std::thread t([&, later = later] {
      from_thread = s.acquire(later, 1);
      if (!from_thread) s.release(1);
    });
    t.join();
    CHECK(from_thread == std::error_code{});
    CHECK(result.size() == 0);  // still waiting for ctx
    cancel();
    CHECK(result.recv() == gofer::errc::canceled);
    // A deadline ends it the same way; the count never moved.
    auto [soon, stop_soon] =
        gofer::with_timeout(gofer::context::background(), std::chrono::milliseconds(5));
    CHECK(s.acquire(soon, 3) == gofer::errc::deadline_exceeded);
    CHECK(s.try_acquire(2));
    s.release(2);
    stop();
    stop_soon();
  });
}

TEST_CASE("semaphore bounds how many hold it at once", "[semaphore]") {
  gofer::test::for_each_sched([](auto&&) {
    const int limit = 3, fibers = 40, threads = 2, rounds = gofer::test::scaled(200);
    gofer::semaphore s(limit);
    std::atomic<int> inside{0}, most{0};
    std::atomic<long> total{0};
    auto work = [&] {
      for (int r = 0; r < rounds; ++r) {
        s.acquire();
        int now = inside.fetch_add(1) + 1;
        int m = most.load();
        while (now > m && !most.compare_exchange_weak(m, now)) {
        }
        if (gofer::this_fiber::in_fiber() && r % 8 == 0) gofer::this_fiber::yield();
        total.fetch_add(1);
        inside.fetch_sub(1);
        s.release();
      }
    };
    gofer::test::in_fibers_and_threads(fibers, threads, work);
    CHECK(most.load() <= limit);
    CHECK(most.load() >= 1);
    CHECK(total.load() == long(fibers + threads) * rounds);
  });
}

TEST_CASE("semaphore serves requests in order, so a large one is not starved", "[semaphore]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::semaphore s(10);
    s.acquire(10);
    gofer::chan<int> order(2);
    gofer::wait_group wg;
    wg.add(1);
    gofer::go([&] {
      s.acquire(10);  // queued first
      order.send(10);
      s.release(10);
      wg.done();
    });
    // Once the large request is queued, even a request that fits must wait.
    s.release(1);
    REQUIRE(gofer::test::eventually([&] {
      if (!s.try_acquire(1)) return true;  // fails, though 1 is free, once the waiter queued
      s.release(1);
      return false;
    }));
    wg.add(1);
    gofer::go([&] {
      s.acquire(1);
      order.send(1);
      s.release(1);
      wg.done();
    });
    // Both queued, so that the release below must choose between them.
    REQUIRE(gofer::test::eventually(
        [] { return gofer::test::fibers_waiting("semaphore.acquire") == 2; }));
    s.release(9);
    wg.wait();
    CHECK(order.recv() == 10);
    CHECK(order.recv() == 1);
    CHECK(s.try_acquire(10));
  });
}

TEST_CASE("semaphore acquire with a context gives up when it is cancelled", "[semaphore]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::semaphore s(4);
    s.acquire(3);
    auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
    gofer::chan<std::error_code> result(1);
    gofer::go([&, ctx = ctx] { result.send(s.acquire(ctx, 2)); });
    // Let the waiter queue, then cancel it.
    REQUIRE(gofer::test::eventually([&] {
      if (!s.try_acquire(1)) return true;  // fails, though 1 is free, once the waiter queued
      s.release(1);
      return false;
    }));
    cancel();
    auto err = result.recv();
    CHECK(err == gofer::errc::canceled);
    // The count is as it was: 3 held, and the cancelled request left the
    // queue, so 1 is free again to an ordinary request.
    CHECK(s.try_acquire(1));
    CHECK_FALSE(s.try_acquire(1));
    s.release(4);
    // A context done before the call fails it even when the count is free.
    CHECK(s.acquire(ctx, 1) == gofer::errc::canceled);
    CHECK(s.try_acquire(4));
  });
}

TEST_CASE("semaphore acquire with a deadline returns deadline_exceeded", "[semaphore]") {
  gofer::run([] {
    gofer::semaphore s(1);
    s.acquire();
    auto [ctx, cancel] =
        gofer::with_timeout(gofer::context::background(), std::chrono::milliseconds(5));
    CHECK(s.acquire(ctx, 1) == gofer::errc::deadline_exceeded);
    cancel();
    s.release();
    CHECK(s.try_acquire(1));
  });
}

TEST_CASE("semaphore acquire with a context succeeds when released in time", "[semaphore]") {
  gofer::test::for_each_sched([](auto&&) {
    const int waiters = 20;
    gofer::semaphore s(1);
    s.acquire();
    auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
    std::atomic<int> ok{0}, failed{0};
    gofer::wait_group wg;
    wg.add(waiters);
    for (int i = 0; i < waiters; ++i) {
      gofer::go([&, ctx = ctx] {
        if (s.acquire(ctx, 1)) {
          failed.fetch_add(1);
        } else {
          ok.fetch_add(1);
          gofer::this_fiber::yield();
          s.release();
        }
        wg.done();
      });
    }
    s.release();
    wg.wait();
    cancel();
    CHECK(ok.load() == waiters);
    CHECK(failed.load() == 0);
    CHECK(s.try_acquire(1));
  });
}

TEST_CASE("a semaphore outlives a runtime that ends with a fiber waiting on it", "[semaphore]") {
  gofer::semaphore s(2);
  for (bool with_ctx : {false, true}) {
    INFO("with a context: " << with_ctx);
    s.acquire(2);
    {
      gofer::runtime rt({.procs = 1});
      rt.go([&s, with_ctx] {
        if (with_ctx) {
          // An abandoned fiber is never unwound: what its frame owns (here
          // the waiter's one-slot channel) stays allocated, by design, and
          // the runtime tells LeakSanitizer so.
          (void)s.acquire(gofer::context::background(), 1);
        } else {
          s.acquire(1);
        }
      });
      REQUIRE(gofer::test::eventually([with_ctx] {
        return gofer::test::fibers_waiting(with_ctx ? "select" : "semaphore.acquire") == 1;
      }));
    }
    // The abandoned waiter has left the queue: this release must not reach
    // into its freed stack, and the whole count is free again.
    s.release(2);
    CHECK(s.try_acquire(2));
    s.release(2);
  }
}

// As for cond_var: a runtime ending with fibers parked on a semaphore that
// died with its frame must not touch it (all ones: a locked spinlock).
TEST_CASE("a runtime ending with fibers parked on a dead semaphore leaves it alone",
          "[semaphore][child]") {
  auto r = gofer::test::end_runtime_over_dead<gofer::semaphore>(
      [](gofer::semaphore& sem) {
        sem.acquire(1);
        gofer::go([&sem] { sem.acquire(1); });
        gofer::go([&sem, ctx = gofer::context::background()] { (void)sem.acquire(ctx, 1); });
      },
      [] {
        return gofer::test::fibers_waiting("semaphore.acquire") == 1 &&
               gofer::test::fibers_waiting("select") == 1;
      },
      1);
  INFO(r.err);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
}
