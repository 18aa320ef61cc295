// mutex: Lockable, mutual exclusion under contention (fibers, threads, both),
// starvation mode, lifetime, misuse.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <gofer/gofer.hpp>
#include <gofer/sync/mutex.hpp>

#include "../support/runtime_fixture.hpp"
#include "../support/deadlock.hpp"
#include "../support/subprocess.hpp"
#include "../support/sync_inspector.hpp"

TEST_CASE("mutex works with the standard lock holders", "[mutex]") {
  gofer::mutex m;
  {
    std::lock_guard lk(m);
    CHECK_FALSE(m.try_lock());
  }
  {
    std::unique_lock lk(m);
    CHECK(lk.owns_lock());
    lk.unlock();
    CHECK(m.try_lock());
    m.unlock();
  }
  gofer::mutex other;
  {
    std::scoped_lock lk(m, other);
    CHECK_FALSE(m.try_lock());
    CHECK_FALSE(other.try_lock());
  }
  CHECK(m.try_lock());
  CHECK(other.try_lock());
  m.unlock();
  other.unlock();
}

// Checks exclusion on a plain int the lock guards: a lost update shows up in
// the total, and two holders at once show up in `inside`.
struct guarded_counter {
  gofer::mutex m;
  long value = 0;
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};

  void bump() {
    std::lock_guard lk(m);
    if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
    ++value;
    inside.fetch_sub(1);
  }
};

TEST_CASE("mutex excludes under contention between fibers", "[mutex]") {
  gofer::test::for_each_sched([](auto&&) {
    const int fibers = 16, rounds = gofer::test::scaled(4000);
    guarded_counter c;
    gofer::wait_group wg;
    wg.add(fibers);
    for (int i = 0; i < fibers; ++i) {
      gofer::go([&, i] {
        for (int r = 0; r < rounds; ++r) {
          c.bump();
          if ((r + i) % 64 == 0) gofer::this_fiber::yield();
        }
        wg.done();
      });
    }
    wg.wait();
    CHECK(c.overlaps.load() == 0);
    CHECK(c.value == long(fibers) * rounds);
  });
}

TEST_CASE("mutex is held across a park by its holder", "[mutex]") {
  gofer::test::for_each_sched([](auto&&) {
    const int fibers = 8, rounds = gofer::test::scaled(200);
    guarded_counter c;
    gofer::wait_group wg;
    wg.add(fibers);
    for (int i = 0; i < fibers; ++i) {
      gofer::go([&] {
        for (int r = 0; r < rounds; ++r) {
          std::lock_guard lk(c.m);
          if (c.inside.fetch_add(1) != 0) c.overlaps.fetch_add(1);
          // The holder parks: others must queue, not slip in.
          gofer::this_fiber::sleep_for(std::chrono::microseconds(1));
          ++c.value;
          c.inside.fetch_sub(1);
        }
        wg.done();
      });
    }
    wg.wait();
    CHECK(c.overlaps.load() == 0);
    CHECK(c.value == long(fibers) * rounds);
  });
}

TEST_CASE("mutex excludes between threads and fibers", "[mutex]") {
  gofer::test::for_each_sched([](auto&&) {
    const int fibers = 8, threads = 3, rounds = gofer::test::scaled(3000);
    guarded_counter c;
    gofer::test::in_fibers_and_threads(fibers, threads, [&] {
      for (int r = 0; r < rounds; ++r) c.bump();
    });
    CHECK(c.overlaps.load() == 0);
    CHECK(c.value == long(fibers + threads) * rounds);
  });
}

TEST_CASE("a mutex is not owned: another fiber or thread may unlock it", "[mutex]") {
  gofer::run([] {
    gofer::mutex m;
    m.lock();
    gofer::chan<> unlocked;
    gofer::go([&] {
      m.unlock();
      unlocked.send({});
    });
    unlocked.recv();
    CHECK(m.try_lock());
    std::thread([&] { m.unlock(); }).join();
    CHECK(m.try_lock());
    m.unlock();
  });
}

TEST_CASE("a mutex may be destroyed as soon as its last unlock lets the waiter in", "[mutex]") {
  gofer::test::for_each_sched([](auto&&) {
    const int rounds = gofer::test::scaled(200);
    for (int r = 0; r < rounds; ++r) {
      auto m = std::make_unique<gofer::mutex>();
      m->lock();
      gofer::go([&m] {
        // Unlock only once main is parked on the mutex, so the unlock must
        // wake it, and main frees the mutex while this unlock may still be
        // running: ASan catches a touch after the wake.
        (void)gofer::test::eventually([] { return gofer::test::fibers_waiting("mutex.lock") == 1; });
        m->unlock();
      });
      m->lock();
      m->unlock();
      m.reset();
    }
  });
}

// Go's TestMutexFairness: a fiber that keeps the lock nearly all the time
// must not starve one that wants it only now and then. Without starvation
// mode the occasional one, once woken, loses every race to the hog, which
// is already running.
TEST_CASE("starvation mode lets an occasional locker in despite a hog", "[mutex]") {
  gofer::options o;
  o.procs = 2;
  gofer::run(
      [] {
        gofer::mutex m;
        std::atomic<bool> stop{false};
        gofer::wait_group hog_done;
        hog_done.add(1);
        gofer::go([&] {
          while (!stop.load()) {
            std::lock_guard lk(m);
            auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
            while (std::chrono::steady_clock::now() < until) {
            }
          }
          hog_done.done();
        });
        const int wants = 10;
        std::atomic<int> got{0};
        std::atomic<long long> longest_us{0};
        gofer::chan<> finished(1);
        gofer::go([&] {
          for (int i = 0; i < wants; ++i) {
            gofer::this_fiber::sleep_for(std::chrono::microseconds(100));
            auto t0 = std::chrono::steady_clock::now();
            m.lock();
            auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - t0)
                          .count();
            m.unlock();
            if (us > longest_us.load()) longest_us.store(us);
            got.fetch_add(1);
          }
          finished.send({});
        });
        bool in_time = gofer::select(gofer::on_recv(finished),
                                     gofer::on_timeout(std::chrono::seconds(10))) == 0;
        if (!in_time) gofer::dump_fibers(std::cerr);
        stop.store(true);
        hog_done.wait();
        if (!in_time) finished.recv();  // the hog has stopped: it gets in now
        CHECK(in_time);
        CHECK(got.load() == wants);
        INFO("longest wait " << longest_us.load() << " us");
        CHECK(longest_us.load() < 2'000'000);
      },
      o);
}

TEST_CASE("unlocking an unlocked mutex is a fatal error that says so", "[mutex][child]") {
  auto r = gofer::test::run_in_child([] {
    gofer::mutex m;
    m.unlock();
  });
  INFO(r.err);
  CHECK_FALSE(r.exited);
  CHECK(r.signal == SIGABRT);
  CHECK(r.err.find("gofer: unlock of unlocked mutex") != std::string::npos);
}

TEST_CASE("a lock the deadlock detector gave up on leaves the mutex consistent",
          "[mutex][death][child][deadlock]") {
  if (gofer::test::under_emulator()) {
    WARN("skipped under an emulator: its own threads count as live threads");
    return;
  }
  using gofer::detail::sync_inspector;
  gofer::mutex m;
  auto r = gofer::test::run_into_deadlock(
      [&] {
        gofer::test::hold_for_good([&] { m.lock(); });
        m.lock();
      },
      [&] {
        // Held by the sleeping fiber, with no waiter counted: the main fiber
        // that waited is gone.
        if (sync_inspector::state(m) != sync_inspector::mutex_locked) return 2;
        // So an unlock wakes nobody and leaves no woken bit or semaphore
        // count behind, which would later let a waiter in on a handed-off lock.
        m.unlock();
        return sync_inspector::state(m) == 0 && sync_inspector::sema(m) == 0 ? 0 : 3;
      });
  INFO(r.err);
  CHECK_FALSE(r.timed_out);
  CHECK(r.signal == 0);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("\"main\" [waiting: mutex"));
}
