// cond_var: predicate waits across fibers and threads, notify_all wakes every
// waiter, notify_one wakes them in arrival order, no lost wake-up.
#include <catch2/catch.hpp>

#include <atomic>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <gofer/gofer.hpp>
#include <gofer/sync/cond_var.hpp>

#include "../support/runtime_fixture.hpp"
#include "../support/dead_object.hpp"
#include "../support/subprocess.hpp"

namespace {

// A bounded queue as users build one: a mutex, two condition variables.
struct bounded_queue {
  gofer::mutex m;
  gofer::cond_var not_empty, not_full;
  std::deque<int> items;
  std::size_t cap = 4;

  void push(int v) {
    std::unique_lock lk(m);
    not_full.wait(lk, [&] { return items.size() < cap; });
    items.push_back(v);
    not_empty.notify_one();
  }
  int pop() {
    std::unique_lock lk(m);
    not_empty.wait(lk, [&] { return !items.empty(); });
    int v = items.front();
    items.pop_front();
    not_full.notify_one();
    return v;
  }
};

}  // namespace

TEST_CASE("cond_var carries a queue between fibers and threads without loss", "[cond_var]") {
  gofer::test::for_each_sched([](auto&&) {
    const int producers = 6, per = gofer::test::scaled(2000);  // two of each are threads
    bounded_queue q;
    std::atomic<long long> sum{0}, count{0};
    gofer::wait_group wg;
    wg.add(2 * producers);
    std::vector<std::thread> ts;
    for (int p = 0; p < producers; ++p) {
      auto produce = [&, p] {
        for (int i = 1; i <= per; ++i) q.push(p * per + i);
        wg.done();
      };
      auto consume = [&] {
        for (int i = 0; i < per; ++i) {
          sum.fetch_add(q.pop());
          count.fetch_add(1);
        }
        wg.done();
      };
      if (p < 2) {
        ts.emplace_back(produce);
        ts.emplace_back(consume);
      } else {
        gofer::go(produce);
        gofer::go(consume);
      }
    }
    wg.wait();
    for (auto& t : ts) t.join();
    const long long n = static_cast<long long>(producers) * per;
    CHECK(count.load() == n);
    CHECK(sum.load() == n * (n + 1) / 2);
  });
}

TEST_CASE("cond_var notify_all wakes every waiter", "[cond_var]") {
  gofer::test::for_each_sched([](auto&&) {
    const int waiters = 20;
    gofer::mutex m;
    gofer::cond_var cv;
    int waiting = 0;
    bool go_on = false;
    std::atomic<int> woke{0};
    gofer::wait_group wg;
    wg.add(waiters);
    for (int i = 0; i < waiters; ++i) {
      gofer::go([&] {
        std::unique_lock lk(m);
        ++waiting;
        cv.wait(lk, [&] { return go_on; });
        woke.fetch_add(1);
        lk.unlock();  // before done(): the mutex dies with the test body once all are done
        wg.done();
      });
    }
    // Each waiter takes its ticket before it lets go of the lock, so once all
    // have counted themselves under it, one notify_all reaches all of them.
    REQUIRE(gofer::test::eventually([&] {
      std::lock_guard lk(m);
      return waiting == waiters;
    }));
    {
      std::lock_guard lk(m);
      go_on = true;
    }
    cv.notify_all();
    wg.wait();
    CHECK(woke.load() == waiters);
  });
}

TEST_CASE("cond_var notify_one wakes the longest waiter first", "[cond_var]") {
  gofer::test::for_each_sched([](auto&&) {
    const int waiters = 8;
    gofer::mutex m;
    gofer::cond_var cv, progressed;
    std::vector<int> arrived, woken;
    int released = 0;
    gofer::wait_group wg;
    wg.add(waiters);
    for (int i = 0; i < waiters; ++i) {
      gofer::go([&, i] {
        std::unique_lock lk(m);
        arrived.push_back(i);
        // Nothing is released before all have arrived; afterwards each
        // notify_one releases exactly one more waiter.
        cv.wait(lk, [&] { return released > int(woken.size()); });
        woken.push_back(i);
        progressed.notify_one();
        lk.unlock();  // before done(): the mutex dies with the test body once all are done
        wg.done();
      });
    }
    REQUIRE(gofer::test::eventually([&] {
      std::lock_guard lk(m);
      return int(arrived.size()) == waiters;
    }));
    for (int k = 1; k <= waiters; ++k) {
      std::unique_lock lk(m);
      released = k;
      cv.notify_one();
      progressed.wait(lk, [&] { return int(woken.size()) == k; });
    }
    wg.wait();
    CHECK(woken == arrived);
  });
}

TEST_CASE("cond_var loses no wake-up in a tight ping-pong", "[cond_var]") {
  gofer::test::for_each_sched([](auto&&) {
    const int rounds = gofer::test::scaled(5000);
    gofer::mutex m;
    gofer::cond_var cv;
    int turn = 0;  // even: ping's move, odd: pong's
    gofer::wait_group wg;
    wg.add(2);
    for (int side = 0; side < 2; ++side) {
      gofer::go([&, side] {
        for (int r = 0; r < rounds; ++r) {
          std::unique_lock lk(m);
          cv.wait(lk, [&] { return turn % 2 == side; });
          ++turn;
          cv.notify_one();
        }
        wg.done();
      });
    }
    wg.wait();  // a lost wake-up leaves both parked: the deadlock detector throws
    CHECK(turn == 2 * rounds);
  });
}

TEST_CASE("a cond_var outlives a runtime that ends with a fiber waiting on it", "[cond_var]") {
  gofer::mutex m;
  gofer::cond_var cv;
  {
    gofer::runtime rt({.procs = 1});
    rt.go([&] {
      std::unique_lock lk(m);
      cv.wait(lk);
    });
    REQUIRE(gofer::test::eventually([] { return gofer::test::fibers_waiting("cond_var.wait") == 1; }));
  }
  // The abandoned waiter has left the queue: a notify must not reach into its
  // freed stack.
  cv.notify_all();
  cv.notify_one();
  CHECK(m.try_lock());
  m.unlock();
}

// A cond_var that dies with fibers parked on it for good drops its queue: the
// runtime, ending, must not touch it (a locked spinlock once it is refilled).
TEST_CASE("a runtime ending with a fiber parked on a dead cond_var leaves it alone",
          "[cond_var][child]") {
  auto r = gofer::test::end_runtime_over_dead<gofer::cond_var>(
      [](gofer::cond_var& cv) {
        gofer::mutex mu;
        std::unique_lock lk(mu);
        cv.wait(lk);
      },
      [] { return gofer::test::fibers_waiting("cond_var.wait") == 1; });
  INFO(r.err);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
}
