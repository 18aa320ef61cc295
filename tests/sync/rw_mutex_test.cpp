// rw_mutex: SharedMutex, readers together, writers alone, writer preference,
// threads and fibers mixed, misuse.
#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include <gofer/gofer.hpp>
#include <gofer/sync/rw_mutex.hpp>

#include "../support/runtime_fixture.hpp"
#include "../support/deadlock.hpp"
#include "../support/subprocess.hpp"
#include "../support/sync_inspector.hpp"

TEST_CASE("rw_mutex works with the standard lock holders", "[rw_mutex]") {
  gofer::rw_mutex m;
  {
    std::shared_lock r1(m);
    std::shared_lock r2(m);  // readers share
    CHECK_FALSE(m.try_lock());
    CHECK(m.try_lock_shared());
    m.unlock_shared();
  }
  {
    std::unique_lock w(m);
    CHECK_FALSE(m.try_lock_shared());
    CHECK_FALSE(m.try_lock());
  }
  CHECK(m.try_lock());
  m.unlock();
}

TEST_CASE("rw_mutex lets many readers in at once", "[rw_mutex]") {
  gofer::test::for_each_sched([](auto&&) {
    const int readers = 10;
    gofer::rw_mutex m;
    std::atomic<int> inside{0};
    gofer::wait_group all_in, done;
    all_in.add(readers);
    done.add(readers);
    for (int i = 0; i < readers; ++i) {
      gofer::go([&] {
        std::shared_lock lk(m);
        inside.fetch_add(1);
        all_in.done();
        all_in.wait();  // only returns if every reader holds the lock together
        lk.unlock();    // before done(): the lock dies with the test body
        done.done();
      });
    }
    done.wait();
    CHECK(inside.load() == readers);
  });
}

TEST_CASE("rw_mutex: a writer is alone, readers see whole writes", "[rw_mutex]") {
  gofer::test::for_each_sched([](auto&&) {
    const int writers = 4, readers = 12, rounds = gofer::test::scaled(2000);
    gofer::rw_mutex m;
    long a = 0, b = 0;  // a writer keeps a == b; a reader must never see them differ
    std::atomic<int> torn{0}, writers_inside{0}, readers_inside{0}, overlaps{0};
    gofer::wait_group wg;
    wg.add(writers + readers + 2);
    auto write = [&] {
      std::lock_guard lk(m);
      if (writers_inside.fetch_add(1) != 0 || readers_inside.load() != 0) overlaps.fetch_add(1);
      ++a;
      gofer::this_fiber::yield();
      ++b;
      writers_inside.fetch_sub(1);
    };
    auto read = [&] {
      std::shared_lock lk(m);
      readers_inside.fetch_add(1);
      if (writers_inside.load() != 0) overlaps.fetch_add(1);
      if (a != b) torn.fetch_add(1);
      readers_inside.fetch_sub(1);
    };
    for (int i = 0; i < writers; ++i) {
      gofer::go([&] {
        for (int r = 0; r < rounds / 10; ++r) write();
        wg.done();
      });
    }
    for (int i = 0; i < readers; ++i) {
      gofer::go([&, i] {
        for (int r = 0; r < rounds; ++r) {
          read();
          if ((r + i) % 16 == 0) gofer::this_fiber::yield();
        }
        wg.done();
      });
    }
    std::vector<std::thread> ts;
    ts.emplace_back([&] {
      for (int r = 0; r < rounds / 10; ++r) write();
      wg.done();
    });
    ts.emplace_back([&] {
      for (int r = 0; r < rounds; ++r) read();
      wg.done();
    });
    wg.wait();
    for (auto& t : ts) t.join();
    CHECK(overlaps.load() == 0);
    CHECK(torn.load() == 0);
    CHECK(a == long(writers + 1) * (rounds / 10));
    CHECK(a == b);
  });
}

TEST_CASE("rw_mutex: a waiting writer keeps new readers out", "[rw_mutex]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::rw_mutex m;
    gofer::chan<char> order(4);
    m.lock_shared();  // the first reader
    gofer::wait_group wg;
    wg.add(2);
    gofer::go([&] {
      {
        std::lock_guard lk(m);
        order.send('W');
      }
      wg.done();  // after the unlock: the lock dies with the test body
    });
    // The writer is pending once a reader can no longer get in.
    REQUIRE(gofer::test::eventually([&] {
      if (!m.try_lock_shared()) return true;
      m.unlock_shared();
      return false;
    }));
    gofer::go([&] {
      {
        std::shared_lock lk(m);
        order.send('R');
      }
      wg.done();
    });
    // Wait until the new reader is parked on the lock, so that a reader
    // wrongly let past the pending writer would have gone first.
    REQUIRE(gofer::test::eventually(
        [] { return gofer::test::fibers_waiting("rw_mutex.lock_shared") == 1; }));
    m.unlock_shared();  // lets the writer in, and only then the new reader
    wg.wait();
    CHECK(order.recv() == 'W');
    CHECK(order.recv() == 'R');
  });
}

TEST_CASE("unlocking an unlocked rw_mutex is a fatal error that says so", "[rw_mutex][child]") {
  for (bool shared : {false, true}) {
    auto r = gofer::test::run_in_child([shared] {
      gofer::rw_mutex m;
      if (shared) {
        m.unlock_shared();
      } else {
        m.unlock();
      }
    });
    INFO(r.err);
    CHECK(r.signal == SIGABRT);
    CHECK(r.err.find("gofer: unlock of unlocked rw_mutex") != std::string::npos);
  }
}

TEST_CASE("a wait the deadlock detector gave up on leaves the rw_mutex consistent",
          "[rw_mutex][death][child][deadlock]") {
  if (gofer::test::under_emulator()) {
    WARN("skipped under an emulator: its own threads count as live threads");
    return;
  }
  using gofer::detail::sync_inspector;
  gofer::rw_mutex m;
  SECTION("a reader waiting behind a writer") {
    auto r = gofer::test::run_into_deadlock(
        [&] {
          gofer::test::hold_for_good([&] { m.lock(); });
          m.lock_shared();
        },
        [&] {
          // The writer in, no reader counted: the reader that waited is gone.
          if (sync_inspector::reader_count(m) != -sync_inspector::max_readers) return 2;
          // So the writer's unlock lets in nobody, leaving no count behind
          // that would later let a reader in beside a writer.
          m.unlock();
          if (sync_inspector::reader_count(m) != 0 || sync_inspector::reader_sem(m) != 0) return 3;
          return m.try_lock() ? 0 : 4;
        });
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.err, Catch::Contains("\"main\" [waiting: rw_mutex.lock_shared"));
  }
  SECTION("a writer waiting for a reader to leave") {
    auto r = gofer::test::run_into_deadlock(
        [&] {
          gofer::test::hold_for_good([&] { m.lock_shared(); });
          m.lock();
        },
        [&] {
          // The writer withdrew: the reader still in, no writer pending, the
          // writers' mutex free. New readers get in; a writer still cannot.
          if (sync_inspector::reader_count(m) != 1 || sync_inspector::reader_wait(m) != 0) return 2;
          if (sync_inspector::state(sync_inspector::writers(m)) != 0) return 3;
          if (!m.try_lock_shared()) return 4;
          m.unlock_shared();
          return m.try_lock() ? 5 : 0;
        });
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.err, Catch::Contains("\"main\" [waiting: rw_mutex.lock"));
  }
}
