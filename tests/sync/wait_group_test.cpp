// wait_group: fibers, threads, both mixed; misuse; lifetime.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gofer/gofer.hpp>

#include "../support/runtime_fixture.hpp"
#include "../support/dead_object.hpp"

TEST_CASE("wait returns at once on a zero counter", "[wait_group]") {
  gofer::wait_group wg;
  wg.wait();
  gofer::run([&] { wg.wait(); });
  SUCCEED();
}

TEST_CASE("a negative counter throws and leaves the counter unchanged", "[wait_group]") {
  gofer::wait_group wg;
  CHECK_THROWS_AS(wg.done(), std::logic_error);
  CHECK_THROWS_WITH(wg.add(-1), "gofer: negative wait_group counter");
  wg.add(1);
  wg.done();
  wg.wait();
}

TEST_CASE("wait blocks until every done, with many waiters", "[wait_group]") {
  gofer::test::for_each_sched([](auto&&) {
    constexpr int workers = 200, waiters = 20;
    gofer::wait_group wg, all_waited;
    std::atomic<int> finished{0}, bad{0};
    wg.add(workers);
    all_waited.add(waiters);
    for (int i = 0; i < waiters; ++i) {
      gofer::go([&] {
        wg.wait();
        if (finished.load() != workers) bad.fetch_add(1);
        all_waited.done();
      });
    }
    for (int i = 0; i < workers; ++i) {
      gofer::go([&, i] {
        if (i % 2) gofer::this_fiber::yield();
        finished.fetch_add(1);
        wg.done();
      });
    }
    all_waited.wait();
    CHECK(bad.load() == 0);
  });
}

TEST_CASE("threads wait for fibers and fibers wait for threads", "[wait_group]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::wait_group fibers_done, threads_done;
    std::atomic<int> count{0};
    fibers_done.add(50);
    threads_done.add(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        fibers_done.wait();  // a plain thread blocked on fibers
        count.fetch_add(1);
        threads_done.done();
      });
    }
    for (int i = 0; i < 50; ++i) {
      gofer::go([&] {
        count.fetch_add(1);
        fibers_done.done();
      });
    }
    threads_done.wait();  // a fiber blocked on threads
    CHECK(count.load() == 54);
    gofer::blocking([&] {
      for (auto& t : threads) t.join();
    });
  });
}

// A waiter registers in the counter word, then pushes itself: the last done()
// may find some registered waiters not yet on the stack, and must collect
// them as they land (a stack taken later is joined to the first). Threads
// waiting while done() races them hit that window in about one round in 200.
TEST_CASE("the last done releases waiters that were still landing", "[wait_group]") {
  constexpr int rounds = 2000;
  constexpr int waiters = 3;
  for (int round = 0; round < rounds; ++round) {
    gofer::wait_group wg;
    wg.add(1);
    std::atomic<int> started{0}, returned{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < waiters; ++i) {
      threads.emplace_back([&] {
        started.fetch_add(1);
        wg.wait();
        returned.fetch_add(1);
      });
    }
    while (started.load() < waiters) std::this_thread::yield();
    wg.done();
    const bool released = gofer::test::eventually([&] { return returned.load() == waiters; });
    if (!released) {
      // A waiter never released blocks for good, on its own stack.
      for (auto& t : threads) t.detach();
      INFO("round " << round << ": " << returned.load() << " of " << waiters << " released");
      REQUIRE(released);
    }
    for (auto& t : threads) t.join();
  }
}

TEST_CASE("a wait_group may be destroyed as soon as wait returns", "[wait_group]") {
  gofer::test::for_each_sched([](auto&&) {
    for (int round = 0; round < 2000; ++round) {
      auto wg = std::make_unique<gofer::wait_group>();
      wg->add(1);
      gofer::go([w = wg.get()] { w->done(); });
      wg->wait();
      wg.reset();  // done() may still be returning: it must not touch *wg
    }
  });
}

TEST_CASE("a wait_group can be reused after wait returns", "[wait_group]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::wait_group wg;
    for (int round = 0; round < 100; ++round) {
      std::atomic<int> n{0};
      wg.add(3);
      for (int i = 0; i < 3; ++i) {
        gofer::go([&] {
          n.fetch_add(1);
          wg.done();
        });
      }
      wg.wait();
      REQUIRE(n.load() == 3);
    }
  });
}

TEST_CASE("a new round may start while the last round's waiters are still waking",
          "[wait_group]") {
  gofer::test::for_each_sched([](auto&&) {
    const int waiters = 10, rounds = gofer::test::scaled(200);
    gofer::wait_group wg;
    std::atomic<int> returned{0}, early{0};
    std::atomic<int> round_open{0};  // the round whose done() has not yet come
    gofer::wait_group all;
    for (int r = 1; r <= rounds; ++r) {
      wg.add(1);
      round_open.store(r);
      all.add(waiters);
      for (int i = 0; i < waiters; ++i) {
        gofer::go([&, r] {
          wg.wait();
          // Released only by this round's done(), never by a later add.
          if (round_open.load() == r) early.fetch_add(1);
          returned.fetch_add(1);
          all.done();
        });
      }
      gofer::this_fiber::yield();
      round_open.store(0);
      wg.done();  // releases this round; the next add() follows at once
    }
    all.wait();
    CHECK(early.load() == 0);
    CHECK(returned.load() == waiters * rounds);
  });
}

TEST_CASE("a wait_group outlives a runtime that ends with a fiber waiting on it", "[wait_group]") {
  gofer::wait_group wg;
  wg.add(1);
  {
    gofer::runtime rt({.procs = 1});
    rt.go([&] { wg.wait(); });
    REQUIRE(gofer::test::eventually([] { return gofer::test::fibers_waiting("wait_group.wait") == 1; }));
  }
  // The abandoned waiter has left the wait_group: the last done() must not
  // wake its freed stack, and the next round must not wait for it.
  wg.done();
  wg.wait();
  wg.add(1);
  std::thread t([&] { wg.done(); });
  wg.wait();
  t.join();
}

// A wait_group that dies with fibers waiting on it for good marks them: the
// runtime, ending, must not touch it (a bogus stack head once it is refilled).
TEST_CASE("a runtime ending with a fiber parked on a dead wait_group leaves it alone",
          "[wait_group][child]") {
  auto r = gofer::test::end_runtime_over_dead<gofer::wait_group>(
      [](gofer::wait_group& wg) {
        wg.add(1);
        wg.wait();
      },
      [] { return gofer::test::fibers_waiting("wait_group.wait") == 1; });
  INFO(r.err);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
}
