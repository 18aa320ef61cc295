// err_group: the first failure wins, cancels ctx() and comes out of wait()
// (returned, or rethrown if it was an exception); void functions; the limit
// (never exceeded, go() blocks, try_go refuses); set_limit misuse; use from a
// plain thread on the default runtime and inside run().
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include <gofer/context.hpp>
#include <gofer/gofer.hpp>
#include <gofer/sync/err_group.hpp>

#include "../support/runtime_fixture.hpp"

using namespace std::chrono_literals;

namespace {

constexpr auto patience = 10s;

// Waits for ctx to be cancelled, for at most `patience`; false if it was not.
bool cancelled_within(const gofer::context& ctx) {
  return gofer::select(gofer::on_recv(ctx.done()), gofer::on_timeout(patience)) == 0;
}

}  // namespace

TEST_CASE("err_group: the first error wins, cancels ctx and is what wait returns", "[err_group]") {
  gofer::test::for_each_sched([](auto&&) {
    const auto first = std::make_error_code(std::errc::connection_refused);
    const auto later = std::make_error_code(std::errc::io_error);
    gofer::err_group g;
    std::atomic<int> saw_cancel{0};
    for (int i = 0; i < 8; ++i) {
      g.go([&g, &saw_cancel, later]() -> std::error_code {
        // These fail only after the first failure has cancelled ctx.
        if (!cancelled_within(g.ctx())) return {};
        saw_cancel.fetch_add(1);
        return later;
      });
    }
    g.go([first] { return first; });
    CHECK(g.wait() == first);
    CHECK(saw_cancel.load() == 8);
    CHECK(g.ctx().err() == gofer::errc::canceled);
    CHECK(gofer::cause(g.ctx()) == first);
  });
}

TEST_CASE("err_group: an exception is rethrown by wait", "[err_group]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::err_group g;
    std::atomic<int> later_ok{0};
    for (int i = 0; i < 4; ++i) {
      g.go([&] {
        if (cancelled_within(g.ctx())) later_ok.fetch_add(1);
        throw std::logic_error("later, dropped");
      });
    }
    g.go([]() -> std::error_code { throw std::runtime_error("boom"); });
    CHECK_THROWS_WITH(g.wait(), "boom");
    CHECK(later_ok.load() == 4);
    CHECK(gofer::cause(g.ctx()) == gofer::errc::canceled);
    CHECK_THROWS_WITH(g.wait(), "boom");  // as often as asked
  });
}

TEST_CASE("err_group: void functions succeed and wait cancels ctx", "[err_group]") {
  gofer::test::for_each_sched([](auto&&) {
    auto [parent, cancel] = gofer::with_cancel(gofer::context::background());
    gofer::err_group g(parent);
    std::atomic<int> ran{0};
    for (int i = 0; i < 100; ++i) {
      g.go([&] {
        gofer::this_fiber::yield();
        ran.fetch_add(1);
      });
    }
    CHECK(g.try_go([&] { ran.fetch_add(1); }));
    CHECK_FALSE(g.wait());
    CHECK(ran.load() == 101);
    CHECK(g.ctx().err() == gofer::errc::canceled);  // as Go's Wait
    CHECK_FALSE(parent.err());
  });
}

TEST_CASE("err_group: cancelling the parent cancels ctx", "[err_group]") {
  gofer::test::for_each_sched([](auto&&) {
    auto [parent, cancel] = gofer::with_cancel(gofer::context::background());
    gofer::err_group g(parent);
    g.go([&]() -> std::error_code {
      if (!cancelled_within(g.ctx())) return std::make_error_code(std::errc::timed_out);
      return g.ctx().err();
    });
    cancel();
    CHECK(g.wait() == gofer::errc::canceled);
  });
}

TEST_CASE("err_group: the limit is never exceeded", "[err_group]") {
  gofer::test::for_each_sched([](auto&&) {
    constexpr int limit = 3;
    gofer::err_group g;
    g.set_limit(limit);
    std::atomic<int> now{0}, most{0}, ran{0};
    for (int i = 0; i < 200; ++i) {
      g.go([&] {
        int n = now.fetch_add(1) + 1;
        for (int m = most.load(); n > m && !most.compare_exchange_weak(m, n);) {
        }
        gofer::this_fiber::yield();
        now.fetch_sub(1);
        ran.fetch_add(1);
      });
    }
    CHECK_FALSE(g.wait());
    CHECK(ran.load() == 200);
    CHECK(most.load() >= 1);
    CHECK(most.load() <= limit);
  });
}

TEST_CASE("err_group: go blocks at the limit and try_go refuses", "[err_group]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::err_group g;
    g.set_limit(2);
    gofer::chan<> gate;
    std::atomic<int> finished{0};
    for (int i = 0; i < 2; ++i) {
      g.go([&] {
        gate.recv();
        finished.fetch_add(1);
      });
    }
    std::atomic<bool> ran_extra{false};
    CHECK_FALSE(g.try_go([&] { ran_extra = true; }));
    // A third go() from another fiber must wait for one of the first two.
    std::atomic<int> finished_when_third_ran{-1};
    gofer::chan<> third_started(1);
    gofer::go([&] {
      g.go([&] { finished_when_third_ran = finished.load(); });
      third_started.send({});
    });
    gate.close();
    REQUIRE(gofer::select(gofer::on_recv(third_started), gofer::on_timeout(patience)) == 0);
    CHECK_FALSE(g.wait());
    CHECK(finished_when_third_ran.load() >= 1);
    CHECK_FALSE(ran_extra.load());
    CHECK(g.try_go([] {}));  // room again
    CHECK_FALSE(g.wait());
  });
}

TEST_CASE("err_group: set_limit while fibers are active throws", "[err_group]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::err_group g;
    gofer::chan<> gate;
    g.go([&] { gate.recv(); });
    CHECK_THROWS_AS(g.set_limit(4), std::logic_error);
    CHECK_THROWS_WITH(g.set_limit(-1),
                      "gofer: err_group::set_limit while 1 of the group's fibers are still active");
    gate.close();
    CHECK_FALSE(g.wait());
    g.set_limit(1);  // fine once they are done
    g.set_limit(-1);
    g.go([] {});
    CHECK_FALSE(g.wait());
  });
}

TEST_CASE("err_group: a limit of 0 lets nothing start", "[err_group]") {
  gofer::err_group g;
  g.set_limit(0);
  CHECK_FALSE(g.try_go([] {}));
  CHECK_THROWS_AS(g.go([] {}), std::logic_error);
  CHECK_FALSE(g.wait());
}

TEST_CASE("err_group: from a plain thread, on the default runtime", "[err_group]") {
  gofer::err_group g;
  g.set_limit(4);
  std::atomic<int> ran{0};
  for (int i = 0; i < 50; ++i) {
    g.go([&ran, i]() -> std::error_code {
      ran.fetch_add(1);
      return i == 42 ? std::make_error_code(std::errc::bad_message) : std::error_code{};
    });
  }
  CHECK(g.wait() == std::errc::bad_message);
  CHECK(ran.load() == 50);
  CHECK(g.ctx().err() == gofer::errc::canceled);
}

TEST_CASE("err_group: the destructor waits for the group's fibers", "[err_group]") {
  gofer::test::for_each_sched([](auto&&) {
    std::atomic<int> ran{0};
    {
      gofer::err_group g;
      for (int i = 0; i < 20; ++i) {
        g.go([&] {
          gofer::this_fiber::yield();
          ran.fetch_add(1);
        });
      }
    }
    CHECK(ran.load() == 20);
  });
}

namespace {
// Counts live copies; its destructor parks a few times, so a wait() that
// returned before the captures were gone would see it still alive.
struct slow_to_die {
  std::atomic<int>* live;
  explicit slow_to_die(std::atomic<int>* l) : live(l) { live->fetch_add(1); }
  slow_to_die(const slow_to_die& o) : live(o.live) { live->fetch_add(1); }
  ~slow_to_die() {
    if (gofer::this_fiber::in_fiber()) {
      for (int i = 0; i < 10; ++i) gofer::this_fiber::yield();
    }
    live->fetch_sub(1);
  }
};
}  // namespace

TEST_CASE("err_group: wait returns only once every function's captures are destroyed",
          "[err_group]") {
  gofer::test::for_each_sched([](auto&&) {
    std::atomic<int> live{0};
    gofer::err_group g;
    for (int i = 0; i < 8; ++i) {
      g.go([keep = slow_to_die(&live)] { (void)keep; });
    }
    CHECK_FALSE(g.wait());
    CHECK(live.load() == 0);
  });
}

TEST_CASE("err_group: the destructor cancels ctx before it waits", "[err_group]") {
  gofer::test::for_each_sched([](auto&&) {
    std::atomic<bool> saw_cancel{false};
    {
      gofer::err_group g;
      g.go([&] {
        g.ctx().done().recv();  // only a cancelled ctx lets this fiber end
        saw_cancel = g.ctx().err() == gofer::errc::canceled;
      });
    }
    CHECK(saw_cancel.load());
  });
}
