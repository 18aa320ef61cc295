// context: cancellation down the tree and never up; deadlines; values;
// without_cancel; cause; after_func; cancel_func from many fibers and threads;
// done() in select and on plain threads; no growth of a long-lived parent
// under many short-lived children (cancelled or just dropped); deep trees; the
// error category.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gofer/context.hpp>
#include <gofer/gofer.hpp>

#include "support/runtime_fixture.hpp"

using namespace std::chrono_literals;

namespace {

// Bounds every wait in this file: a cancellation that never arrives fails the
// test instead of hanging it.
constexpr auto patience = 10s;

bool done_within(const gofer::context& ctx, std::chrono::seconds bound = patience) {
  return gofer::select(gofer::on_recv(ctx.done()), gofer::on_timeout(bound)) == 0;
}

bool is_closed(const gofer::context& ctx) { return ctx.done().closed(); }

std::size_t children_of(const gofer::context& ctx) { return gofer::detail::context_child_count(ctx); }

}  // namespace

TEST_CASE("cancelling a parent cancels its children and grandchildren", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::context_key<int> k;
    auto [parent, cancel] = gofer::with_cancel(gofer::context::background());
    auto [child, cancel_child] = gofer::with_cancel(parent);
    auto [grandchild, cancel_grandchild] = gofer::with_cancel(gofer::with_value(child, k, 1));
    auto [timed, cancel_timed] = gofer::with_timeout(grandchild, 1h);
    const auto before = timed.deadline();

    // Watchers already blocked on done() when the cancellation comes.
    gofer::wait_group wg;
    std::atomic<int> woken{0};
    for (const gofer::context& c : {parent, child, grandchild, timed}) {
      wg.add(1);
      gofer::go([c, &wg, &woken] {
        if (done_within(c)) woken.fetch_add(1);
        wg.done();
      });
    }
    REQUIRE(gofer::test::eventually([] { return gofer::test::fibers_waiting("select") >= 4; }));
    CHECK_FALSE(parent.err());
    CHECK_FALSE(timed.err());
    CHECK_FALSE(is_closed(grandchild));
    CHECK(children_of(parent) == 1);

    cancel();
    wg.wait();
    CHECK(woken.load() == 4);
    for (const gofer::context& c : {parent, child, grandchild, timed}) {
      CHECK(is_closed(c));
      CHECK(c.err() == gofer::errc::canceled);
    }
    CHECK(timed.deadline() == before);
    CHECK(children_of(parent) == 0);
    cancel_child();  // later cancels change nothing
    CHECK(child.err() == gofer::errc::canceled);
  });
}

TEST_CASE("cancelling a child never reaches its parent or siblings", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    auto [parent, cancel] = gofer::with_cancel(gofer::context::background());
    auto [a, cancel_a] = gofer::with_cancel(parent);
    auto [b, cancel_b] = gofer::with_cancel(parent);
    auto [a1, cancel_a1] = gofer::with_cancel(a);
    CHECK(children_of(parent) == 2);
    cancel_a();
    CHECK(done_within(a1));
    CHECK(a.err() == gofer::errc::canceled);
    CHECK(a1.err() == gofer::errc::canceled);
    CHECK_FALSE(parent.err());
    CHECK_FALSE(b.err());
    CHECK_FALSE(is_closed(parent));
    CHECK_FALSE(is_closed(b));
    CHECK(children_of(parent) == 1);  // a left the parent's list when cancelled
    cancel();
    CHECK(b.err() == gofer::errc::canceled);
  });
}

TEST_CASE("a timeout cancels with deadline_exceeded", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    auto [parent, cancel] = gofer::with_cancel(gofer::context::background());
    const auto start = std::chrono::steady_clock::now();
    auto [ctx, cancel_ctx] = gofer::with_timeout(parent, 20ms);
    auto [child, cancel_child] = gofer::with_cancel(ctx);
    REQUIRE(done_within(child));
    CHECK(std::chrono::steady_clock::now() - start >= 20ms);
    CHECK(ctx.err() == gofer::errc::deadline_exceeded);
    CHECK(child.err() == gofer::errc::deadline_exceeded);
    CHECK(gofer::cause(ctx) == gofer::errc::deadline_exceeded);
    CHECK_FALSE(parent.err());
    CHECK(children_of(parent) == 0);  // the expired context left the parent
    cancel_ctx();
    CHECK(ctx.err() == gofer::errc::deadline_exceeded);  // the first reason stays
  });
}

TEST_CASE("a deadline already past cancels before with_deadline returns", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    auto [parent, cancel] = gofer::with_cancel(gofer::context::background());
    auto [ctx, cancel_ctx] = gofer::with_deadline(parent, std::chrono::steady_clock::now() - 1s);
    CHECK(ctx.err() == gofer::errc::deadline_exceeded);
    CHECK(is_closed(ctx));
    CHECK(children_of(parent) == 0);
    auto [zero, cancel_zero] = gofer::with_timeout(parent, 0s);
    CHECK(zero.err() == gofer::errc::deadline_exceeded);
    CHECK_FALSE(parent.err());
  });
  // From a plain thread too.
  auto [ctx, cancel] = gofer::with_timeout(gofer::context::background(), -5ms);
  CHECK(ctx.err() == gofer::errc::deadline_exceeded);
}

TEST_CASE("deadline reports the earlier of the parent's and its own", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::context_key<int> k;
    CHECK_FALSE(gofer::context::background().deadline());
    const auto d = std::chrono::steady_clock::now() + 1h;
    auto [parent, cancel] = gofer::with_deadline(gofer::context::background(), d);
    CHECK(parent.deadline() == d);
    auto [later, cancel_later] = gofer::with_deadline(parent, d + 1h);
    CHECK(later.deadline() == d);
    auto [sooner, cancel_sooner] = gofer::with_deadline(gofer::with_value(parent, k, 1), d - 30min);
    CHECK(sooner.deadline() == d - 30min);
    auto [plain, cancel_plain] = gofer::with_cancel(sooner);
    CHECK(plain.deadline() == d - 30min);
    CHECK_FALSE(gofer::without_cancel(sooner).deadline());
    // The later child is cancelled with its parent: no timer of its own.
    cancel();
    CHECK(later.err() == gofer::errc::canceled);
    CHECK(plain.err() == gofer::errc::canceled);
  });
}

TEST_CASE("values: the nearest ancestor's wins, found through cancellable nodes", "[context]") {
  gofer::context_key<int> a("same name");
  gofer::context_key<int> b("same name");  // a different key all the same
  gofer::context_key<std::string> s("s");
  auto c1 = gofer::with_value(gofer::context::background(), a, 1);
  auto [c2, cancel] = gofer::with_cancel(c1);
  auto [c3, cancel3] = gofer::with_timeout(gofer::with_value(c2, b, 2), 1h);
  auto c4 = gofer::with_value(c3, a, 3);
  auto c5 = gofer::with_value(c4, s, "x");
  REQUIRE(c3.value(a) != nullptr);
  CHECK(*c3.value(a) == 1);
  CHECK(*c3.value(b) == 2);
  CHECK(*c5.value(a) == 3);  // shadows c1's
  CHECK(*c1.value(a) == 1);  // the parent is unchanged
  CHECK(c1.value(b) == nullptr);
  CHECK(c4.value(s) == nullptr);
  REQUIRE(c5.value(s) != nullptr);
  CHECK(*c5.value(s) == "x");
  CHECK(a.name() == "same name");
  CHECK(gofer::context::background().value(a) == nullptr);
  CHECK(gofer::context::todo().value(a) == nullptr);
  // Values outlive the cancellation and the handles they came through.
  cancel();
  gofer::context only = c5;
  c1 = c4 = c5 = gofer::context{};
  CHECK(*only.value(a) == 3);
  CHECK(*only.value(b) == 2);
  CHECK(only.err() == gofer::errc::canceled);
}

TEST_CASE("without_cancel keeps the values and is never cancelled", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::context_key<std::string> k;
    auto [parent, cancel] = gofer::with_timeout(gofer::with_value(gofer::context::background(), k, "v"), 1h);
    auto detached = gofer::without_cancel(parent);
    auto [below, cancel_below] = gofer::with_cancel(detached);
    CHECK_FALSE(detached.done());  // the nil channel
    CHECK_FALSE(gofer::context::background().done());
    CHECK_FALSE(gofer::context::todo().done());
    cancel();
    CHECK(parent.err() == gofer::errc::canceled);
    CHECK_FALSE(detached.err());
    CHECK_FALSE(gofer::cause(detached));
    CHECK_FALSE(below.err());
    CHECK_FALSE(is_closed(below));
    REQUIRE(detached.value(k) != nullptr);
    CHECK(*detached.value(k) == "v");
    cancel_below();
    CHECK(below.err() == gofer::errc::canceled);
  });
}

TEST_CASE("cause is what cancelled the context, inherited by its children", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    const auto io = std::make_error_code(std::errc::io_error);
    auto [ctx, cancel] = gofer::with_cancel_cause(gofer::context::background());
    auto [child, cancel_child] = gofer::with_cancel(ctx);
    CHECK_FALSE(gofer::cause(ctx));
    CHECK_FALSE(gofer::cause(gofer::context::background()));
    cancel(io);
    cancel(std::make_error_code(std::errc::timed_out));  // too late: the first stays
    CHECK(ctx.err() == gofer::errc::canceled);
    CHECK(gofer::cause(ctx) == io);
    CHECK(child.err() == gofer::errc::canceled);
    CHECK(gofer::cause(child) == io);

    auto [plain, cancel_plain] = gofer::with_cancel_cause(gofer::context::background());
    cancel_plain({});  // as Go's nil cause
    CHECK(gofer::cause(plain) == gofer::errc::canceled);
    auto [c2, cancel2] = gofer::with_cancel(gofer::context::background());
    cancel2();
    CHECK(gofer::cause(c2) == gofer::errc::canceled);
  });
}

TEST_CASE("after_func runs f once, in a fiber, when the context is cancelled", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
    std::atomic<int> runs{0};
    std::atomic<bool> in_fiber{false}, saw_err{false};
    gofer::chan<> ran(1);
    auto stop = gofer::after_func(ctx, [&, ctx = ctx] {
      in_fiber = gofer::this_fiber::in_fiber();
      saw_err = ctx.err() == gofer::errc::canceled;
      runs.fetch_add(1);
      ran.send({});
    });
    CHECK(children_of(ctx) == 1);
    CHECK(runs.load() == 0);
    cancel();
    cancel();
    REQUIRE(gofer::select(gofer::on_recv(ran), gofer::on_timeout(patience)) == 0);
    CHECK(runs.load() == 1);
    CHECK(in_fiber.load());
    CHECK(saw_err.load());
    CHECK_FALSE(stop.stop());  // it ran already
    CHECK(children_of(ctx) == 0);
  });
}

TEST_CASE("after_func stop before the cancellation keeps f from running", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
    std::atomic<int> stopped_runs{0};
    auto h = gofer::after_func(ctx, [&] { stopped_runs.fetch_add(1); });
    auto copy = h;
    CHECK(copy.stop());
    CHECK_FALSE(h.stop());  // the same registration: stopped already
    CHECK(children_of(ctx) == 0);
    // A second registration made afterwards runs; by the time it has, the
    // stopped one (gone from the list before the cancellation) has had every
    // chance to run if it were going to.
    gofer::chan<> ran(1);
    gofer::after_func(ctx, [ran] { ran.send({}); });  // handle discarded: still runs
    cancel();
    REQUIRE(gofer::select(gofer::on_recv(ran), gofer::on_timeout(patience)) == 0);
    CHECK(stopped_runs.load() == 0);
    CHECK_FALSE(gofer::after_func_handle{}.stop());
  });
}

TEST_CASE("after_func on a cancelled context runs at once, on background never", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    auto [parent, cancel] = gofer::with_cancel(gofer::context::background());
    cancel();
    gofer::chan<> ran(1);
    auto h = gofer::after_func(parent, [ran] { ran.send({}); });
    REQUIRE(gofer::select(gofer::on_recv(ran), gofer::on_timeout(patience)) == 0);
    CHECK_FALSE(h.stop());

    std::atomic<int> never{0};
    auto b = gofer::after_func(gofer::context::background(), [&] { never.fetch_add(1); });
    CHECK(b.stop());  // as Go: it kept f from ever running
    CHECK(never.load() == 0);

    // Registered below a value node and a deadline: the deadline fires it.
    gofer::context_key<int> k;
    auto [timed, cancel_timed] = gofer::with_timeout(gofer::with_value(gofer::context::background(), k, 1), 5ms);
    gofer::after_func(gofer::with_value(timed, k, 2), [ran] { ran.send({}); });
    REQUIRE(gofer::select(gofer::on_recv(ran), gofer::on_timeout(patience)) == 0);
    CHECK(timed.err() == gofer::errc::deadline_exceeded);
  });
}

TEST_CASE("cancel_func is idempotent and callable from many fibers and threads at once", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    for (int round = 0; round < 20; ++round) {
      auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
      auto [child, cancel_child] = gofer::with_cancel(ctx);
      std::atomic<int> runs{0};
      gofer::after_func(child, [&] { runs.fetch_add(1); });
      gofer::wait_group wg;
      gofer::chan<> go_now;
      wg.add(16);
      for (int i = 0; i < 16; ++i) {
        gofer::go([&, cancel = (i % 2 ? cancel : cancel_child)] {
          go_now.recv();
          cancel();
          wg.done();
        });
      }
      std::vector<std::thread> threads;
      for (int i = 0; i < 3; ++i) {
        wg.add(1);
        threads.emplace_back([&, cancel = cancel] {
          go_now.recv();
          cancel();
          wg.done();
        });
      }
      go_now.close();
      wg.wait();
      for (auto& t : threads) t.join();
      CHECK(ctx.err() == gofer::errc::canceled);
      CHECK(child.err() == gofer::errc::canceled);
      CHECK(gofer::test::eventually([&] { return runs.load() == 1; }));
    }
    gofer::cancel_func empty;
    empty();  // no-op
  });
}

TEST_CASE("done() is a channel like any other in select", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
    gofer::chan<int> work;
    gofer::chan<int> result(1);
    gofer::go([ctx = ctx, work, result] {
      int sum = 0;
      for (;;) {
        bool stop = false;
        gofer::select(gofer::on_recv(work, [&](std::optional<int> v) { sum += v.value_or(0); }),
                      gofer::on_recv(ctx.done(), [&] { stop = true; }));
        if (stop) break;
      }
      result.send(sum);
    });
    for (int i = 1; i <= 10; ++i) work.send(i);
    cancel();
    auto sum = result.recv();
    CHECK(sum == 55);
    // A closed done() is ready at once in a select with a default.
    CHECK(gofer::select(gofer::on_recv(ctx.done()), gofer::on_default()) == 0);
    auto [live, cancel_live] = gofer::with_cancel(gofer::context::background());
    CHECK(gofer::select(gofer::on_recv(live.done()), gofer::on_default()) == 1);
  });
}

TEST_CASE("a plain thread blocks on done() and may cancel a fiber's context", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
    std::atomic<bool> thread_saw{false};
    gofer::chan<> finished(1);
    std::thread t([ctx = ctx, &thread_saw, finished] {
      ctx.done().recv();  // blocks the thread until the fiber cancels
      thread_saw = ctx.err() == gofer::errc::canceled;
      finished.send({});
    });
    gofer::go([cancel = cancel] { cancel(); });
    // Joining here would block this fiber's M, which the cancelling fiber may need.
    CHECK(gofer::select(gofer::on_recv(finished), gofer::on_timeout(patience)) == 0);
    t.join();
    CHECK(thread_saw.load());

    auto [ctx2, cancel2] = gofer::with_cancel(gofer::context::background());
    std::thread c([cancel2 = cancel2] { cancel2(); });
    CHECK(done_within(ctx2));
    c.join();
  });
  // No runtime at all: a thread waits, another cancels.
  auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
  std::thread t([cancel = cancel] { cancel(); });
  CHECK(done_within(ctx));
  t.join();
}

TEST_CASE("err() is set exactly when done() is closed", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    for (int round = 0; round < 50; ++round) {
      auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
      (void)ctx.done();  // exists before the cancellation
      std::atomic<int> disagreements{0};
      std::atomic<bool> stop{false};
      gofer::wait_group wg;
      wg.add(2);
      const auto give_up = std::chrono::steady_clock::now() + gofer::test::default_patience;
      for (int i = 0; i < 2; ++i) {
        gofer::go([&, ctx = ctx] {
          while (!stop.load() && std::chrono::steady_clock::now() < give_up) {
            const bool closed_before = ctx.done().closed();
            const bool err = static_cast<bool>(ctx.err());
            const bool closed_after = ctx.done().closed();
            // closed ⇒ err, and err ⇒ closed
            if ((closed_before && !err) || (err && !closed_after)) disagreements.fetch_add(1);
            if (err) stop = true;
            gofer::this_fiber::yield();
          }
          wg.done();
        });
      }
      std::thread t([cancel = cancel] { cancel(); });
      wg.wait();
      t.join();
      CHECK(stop.load());  // the cancellation was seen at all
      CHECK(disagreements.load() == 0);
    }
  });
}

TEST_CASE("a thousand watchers of a thousand children all wake on one cancel", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    const int n = gofer::test::scaled(1000);
    auto [parent, cancel] = gofer::with_cancel(gofer::context::background());
    gofer::wait_group started, finished;
    std::atomic<int> woke{0};
    started.add(n);
    finished.add(n);
    for (int i = 0; i < n; ++i) {
      gofer::go([&, parent = parent] {
        auto [ctx, cancel_ctx] = gofer::with_cancel(parent);
        auto done = ctx.done();
        started.done();
        if (gofer::select(gofer::on_recv(done), gofer::on_timeout(patience)) == 0 &&
            ctx.err() == gofer::errc::canceled)
          woke.fetch_add(1);
        cancel_ctx();
        finished.done();
      });
    }
    started.wait();
    CHECK(children_of(parent) == static_cast<std::size_t>(n));
    cancel();
    finished.wait();
    CHECK(woke.load() == n);
    CHECK(children_of(parent) == 0);
  });
}

TEST_CASE("a long-lived parent does not grow under many short-lived children", "[context]") {
  gofer::run([] {
    const int n = gofer::test::scaled(1'000'000);
    gofer::context_key<int> k;
    auto [parent, cancel] = gofer::with_cancel(gofer::context::background());
    std::size_t most = 0;
    // Not [&] alone: clang before 16 lets no lambda name a structured binding.
    auto sample = [&, &p = parent] { most = std::max(most, children_of(p)); };
    for (int i = 0; i < n; ++i) {  // cancelled, as Go code does
      auto [c, cancel_c] = gofer::with_cancel(parent);
      (void)c.done();
      cancel_c();
      if (i % 4096 == 0) sample();
    }
    CHECK(most == 0);
    for (int i = 0; i < n; ++i) {  // just dropped, through a value node too
      auto [c, cancel_c] = gofer::with_cancel(i % 2 ? parent : gofer::with_value(parent, k, i));
      auto [g, cancel_g] = gofer::with_cancel(c);
      if (i % 4096 == 0) sample();
    }
    CHECK(most <= 1);
    CHECK(children_of(parent) == 0);
    for (int i = 0; i < n / 10; ++i) {  // with a deadline timer that must be stopped
      auto [c, cancel_c] = gofer::with_timeout(parent, 1h);
      if (i % 4096 == 0) sample();
    }
    CHECK(most <= 1);
    for (int i = 0; i < n / 10; ++i) {  // after_func registrations that are stopped
      auto h = gofer::after_func(parent, [] {});
      h.stop();
    }
    CHECK(children_of(parent) == 0);
    CHECK_FALSE(parent.err());
  });
}

TEST_CASE("a dropped context whose done() is still held stays registered", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    auto [parent, cancel] = gofer::with_cancel(gofer::context::background());
    gofer::recv_chan<gofer::unit> done = gofer::with_cancel(parent).first.done();
    CHECK(children_of(parent) == 1);  // as in Go: the parent's cancel must close it
    CHECK_FALSE(done.closed());
    cancel();
    CHECK(gofer::select(gofer::on_recv(done), gofer::on_timeout(patience)) == 0);
    CHECK(children_of(parent) == 0);
  });
}

TEST_CASE("deep chains are built, cancelled and destroyed without recursion", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    const int depth = gofer::test::scaled(100'000);
    gofer::context_key<int> k;
    auto [root, cancel] = gofer::with_cancel(gofer::context::background());
    gofer::context leaf = root;
    std::vector<gofer::cancel_func> cancels;
    for (int i = 0; i < depth; ++i) {
      auto [c, f] = gofer::with_cancel(i % 3 ? leaf : gofer::with_value(leaf, k, i));
      leaf = std::move(c);
      if (i % 1000 == 0) cancels.push_back(f);
    }
    CHECK(*leaf.value(k) == ((depth - 1) / 3) * 3);
    cancel();
    CHECK(leaf.err() == gofer::errc::canceled);
    leaf = gofer::context{};  // frees the whole chain, iteratively
    cancels.clear();
    CHECK(children_of(root) == 0);
  });
}

TEST_CASE("a moved-from context is background and a huge timeout does not overflow", "[context]") {
  gofer::test::for_each_sched([](auto&&) {
    auto [ctx, cancel] = gofer::with_timeout(gofer::context::background(), std::chrono::hours::max());
    CHECK_FALSE(ctx.err());
    REQUIRE(ctx.deadline());
    CHECK(*ctx.deadline() > std::chrono::steady_clock::now() + 24h * 365);
    gofer::context moved = std::move(ctx);
    CHECK_FALSE(ctx.done());  // NOLINT: background's nil channel
    CHECK_FALSE(ctx.deadline());
    cancel();
    CHECK(moved.err() == gofer::errc::canceled);
    CHECK_FALSE(ctx.err());
  });
}

TEST_CASE("errc is an error-code enum with Go's messages", "[context]") {
  std::error_code c = gofer::errc::canceled;
  std::error_code d = gofer::make_error_code(gofer::errc::deadline_exceeded);
  CHECK(c.category() == gofer::context_category());
  CHECK(std::string(gofer::context_category().name()) == "gofer.context");
  CHECK(c.message() == "context canceled");
  CHECK(d.message() == "context deadline exceeded");
  CHECK(c == gofer::errc::canceled);
  CHECK(c != gofer::errc::deadline_exceeded);
  CHECK(c != d);
  CHECK(d == std::errc::timed_out);
  CHECK(c != std::errc::timed_out);
  CHECK(c == std::errc::operation_canceled);
  CHECK(d != std::errc::operation_canceled);
  CHECK(static_cast<int>(gofer::errc::canceled) == 1);
  CHECK_FALSE(gofer::context::background().err());
}
