// gofer::after, tick, timer, ticker, after_func: delivery, stop and reset with
// Go 1.23's "no stale value" rule, from fibers and from plain threads.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include <gofer/gofer.hpp>

#include "support/runtime_fixture.hpp"

using namespace std::chrono_literals;

namespace {

// True if c receives nothing within d.
bool quiet_for(const gofer::recv_chan<gofer::steady_time>& c, std::chrono::milliseconds d) {
  return gofer::select(gofer::on_recv(c), gofer::on_timeout(d)) == 1;
}

}  // namespace

TEST_CASE("after delivers the time once, no earlier than asked", "[time]") {
  gofer::test::for_each_sched([](auto&&) {
    auto t0 = std::chrono::steady_clock::now();
    auto c = gofer::after(3ms);
    auto v = c.recv();
    auto t1 = std::chrono::steady_clock::now();
    REQUIRE(v.has_value());
    CHECK(*v >= t0 + 3ms);
    CHECK(*v <= t1);
    CHECK(quiet_for(c, 5ms));
    // after(0) is ready almost at once, and in a select.
    CHECK(gofer::select(gofer::on_recv(gofer::after(0ms)), gofer::on_timeout(10s)) == 0);
  });
}

TEST_CASE("a timer due when it is armed is ready at once, as Go 1.23 runs it on receive",
          "[time]") {
  gofer::test::for_each_sched([](auto&&) {
    // A select with a default takes it: its value does not wait for the heap.
    for (int i = 0; i < 100; ++i)
      CHECK(gofer::select(gofer::on_recv(gofer::after(0ms)), gofer::on_default()) == 0);
    CHECK(gofer::after(-1s).try_recv().has_value());
    // reset(0) of a pending timer: it was pending, and its value is ready.
    gofer::timer t(1h);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(t.reset(0ms));
    auto v = t.c().try_recv();
    REQUIRE(v.has_value());
    CHECK(*v >= t0);
    CHECK_FALSE(t.stop());  // fired and received
    // Due but not received: stop discards the value, and reports it.
    gofer::timer u(0ms);
    CHECK(u.stop());
    CHECK(u.c().try_recv() == std::nullopt);
  });
}

TEST_CASE("timer.stop before it fires: true, and nothing is ever delivered", "[time]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::timer t(20ms);
    CHECK(t.stop());
    CHECK_FALSE(t.stop());
    CHECK(quiet_for(t.c(), 40ms));
  });
}

TEST_CASE("timer.stop after it fired: a value not yet received is discarded", "[time]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::timer t(1ms);
    // Fired: its value waits in the channel.
    CHECK(gofer::test::eventually([&] { return t.c().size() == 1; }));
    CHECK(t.stop());
    CHECK(t.c().try_recv() == std::nullopt);
    // Fired and received: stop has nothing to stop.
    gofer::timer u(1ms);
    CHECK(u.c().recv().has_value());
    CHECK_FALSE(u.stop());
  });
}

TEST_CASE("timer.reset re-arms, and no value from before it is received", "[time]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::timer t(1h);
    auto t0 = std::chrono::steady_clock::now();
    CHECK(t.reset(2ms));
    auto v = t.c().recv();
    REQUIRE(v.has_value());
    CHECK(*v >= t0 + 2ms);
    // Expired and received: reset returns false and fires again.
    CHECK_FALSE(t.reset(1ms));
    CHECK(t.c().recv().has_value());
    // Expired, not received: the old value goes, only the new one comes.
    CHECK_FALSE(t.reset(1ms));
    CHECK(gofer::test::eventually([&] { return t.c().size() == 1; }));
    auto t1 = std::chrono::steady_clock::now();
    CHECK(t.reset(3ms));
    v = t.c().recv();
    REQUIRE(v.has_value());
    CHECK(*v >= t1 + 3ms);
  });
}

TEST_CASE("stop and reset racing with the firing never leave a stale value", "[time][stress]") {
  gofer::test::for_each_sched([](auto&&) {
    const int rounds = gofer::test::scaled(300);
    int stale = 0;
    for (int i = 0; i < rounds; ++i) {
      gofer::timer t(std::chrono::microseconds(i % 50));
      if (i % 3 == 0) gofer::this_fiber::yield();
      if (i % 2 == 0) {
        t.stop();
        if (t.c().try_recv().has_value()) ++stale;
      } else {
        t.reset(1h);
        if (t.c().try_recv().has_value()) ++stale;
        t.stop();
      }
    }
    CHECK(stale == 0);
  });
}

TEST_CASE("a ticker ticks every period until stopped", "[time]") {
  gofer::test::for_each_sched([](auto&&) {
    auto t0 = std::chrono::steady_clock::now();  // before the ticker's clock starts
    gofer::ticker tk(2ms);
    for (int i = 0; i < 5; ++i) REQUIRE(tk.c().recv().has_value());
    CHECK(std::chrono::steady_clock::now() - t0 >= 10ms);
    tk.stop();
    CHECK(quiet_for(tk.c(), 10ms));
    tk.reset(1ms);
    CHECK(tk.c().recv().has_value());
    tk.stop();
    CHECK_THROWS_AS(gofer::ticker(0ms), std::invalid_argument);
  });
}

TEST_CASE("a slow ticker receiver misses ticks instead of queueing them", "[time]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::ticker tk(1ms);
    gofer::this_fiber::sleep_for(20ms);
    CHECK(tk.c().size() <= 1);
    CHECK(tk.c().capacity() == 1);
    tk.stop();
  });
}

TEST_CASE("tick delivers repeatedly", "[time]") {
  gofer::test::for_each_sched([](auto&&) {
    auto c = gofer::tick(1ms);
    for (int i = 0; i < 3; ++i) CHECK(c.recv().has_value());
  });
}

TEST_CASE("tick with a period of zero or less is the nil channel, as Go's Tick", "[time]") {
  gofer::run([] {
    for (auto c : {gofer::tick(0ms), gofer::tick(-1ms)}) {
      CHECK_FALSE(static_cast<bool>(c));
      // Never ready, not even later.
      gofer::this_fiber::sleep_for(2ms);
      CHECK(gofer::select(gofer::on_recv(c), gofer::on_default()) == 1);
    }
    CHECK_THROWS_AS(gofer::ticker(0ms), std::invalid_argument);
  });
}

TEST_CASE("after_func runs f in a fiber of its own, unless stopped first", "[time]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::chan<std::uint64_t> ran(1);
    auto t = gofer::after_func(1ms, [ran] { ran.send(gofer::this_fiber::id()); });
    auto id = ran.recv();
    REQUIRE(id.has_value());
    CHECK(*id != 0);
    CHECK(*id != gofer::this_fiber::id());
    CHECK_FALSE(t.stop());

    std::atomic<bool> never{false};
    auto s = gofer::after_func(5ms, [&] { never = true; });
    CHECK(s.stop());
    gofer::this_fiber::sleep_for(15ms);
    CHECK_FALSE(never.load());
  });
}

TEST_CASE("a timer dropped without stop still fires", "[time]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::chan<> done;
    { gofer::after_func(1ms, [done] { done.close(); }); }
    CHECK(gofer::select(gofer::on_recv(done), gofer::on_timeout(10s)) == 0);
    gofer::recv_chan<gofer::steady_time> c = gofer::timer(1ms).c();
    CHECK(c.recv().has_value());
  });
}

TEST_CASE("timers nobody can observe leave the heap before they fire, as Go 1.23 collects them",
          "[time]") {
  gofer::test::for_each_sched([](auto&&) {
    // Kept: a channel someone holds, and an after_func, whose firing runs code.
    auto held = gofer::after(20ms);
    gofer::chan<> ran;
    gofer::after_func(20ms, [ran] { ran.close(); });
    // The select-with-timeout idiom, the data always first: each after(1h)
    // is unobservable once its select returns.
    gofer::chan<int> ready(1);
    const int rounds = 10000;
    for (int i = 0; i < rounds; ++i) {
      ready.send(i);
      CHECK(gofer::select(gofer::on_recv(ready), gofer::on_recv(gofer::after(1h))) == 0);
    }
    // The heap keeps at most about twice what still matters (a sweep runs each
    // time it doubles), not 10,000 timers for an hour.
    auto* rt = gofer::detail::current_runtime();
    REQUIRE(rt != nullptr);
    CHECK(rt->pending_timers() < 300);
    // What can still be observed fires.
    CHECK(gofer::select(gofer::on_recv(held), gofer::on_timeout(10s)) == 0);
    CHECK(gofer::select(gofer::on_recv(ran), gofer::on_timeout(10s)) == 0);
  });
}

TEST_CASE("timers work from a plain thread", "[time][thread]") {
  std::atomic<bool> ok{false};
  std::thread th([&] {
    auto t0 = std::chrono::steady_clock::now();
    auto v = gofer::after(2ms).recv();
    gofer::ticker tk(1ms);
    bool ticked = tk.c().recv().has_value() && tk.c().recv().has_value();
    tk.stop();
    ok = v.has_value() && *v >= t0 + 2ms && ticked;
  });
  th.join();
  CHECK(ok.load());
}
