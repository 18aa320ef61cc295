// run(), runtime, default_runtime, num_cpu and the deadlock report.
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gofer/gofer.hpp>

#include "support/eventually.hpp"
#include "support/subprocess.hpp"

using namespace std::chrono_literals;

TEST_CASE("run returns main's result, or 0 for void", "[runtime]") {
  CHECK(gofer::run([] { return 7; }) == 7);
  int touched = 0;
  CHECK(gofer::run([&] { touched = 1; }) == 0);
  CHECK(touched == 1);
}

TEST_CASE("run propagates an exception from main and can run again", "[runtime]") {
  CHECK_THROWS_WITH(gofer::run([]() -> int { throw std::runtime_error("boom"); }), "boom");
  CHECK(gofer::run([] { return 3; }, {.procs = 2}) == 3);
}

TEST_CASE("run uses the requested number of Ps", "[runtime]") {
  for (unsigned procs : {1u, 2u, 3u}) {
    gofer::run(
        [&] {
          CHECK(gofer::detail::current_runtime()->procs() == procs);
          // Every P can run a fiber at once: `procs` fibers meet at a barrier
          // that only completes when all of them run in parallel (spinning,
          // never parking).
          std::atomic<unsigned> arrived{0};
          gofer::wait_group wg;
          for (unsigned i = 0; i < procs; ++i) {
            wg.add(1);
            gofer::go([&] {
              arrived.fetch_add(1);
              auto deadline = std::chrono::steady_clock::now() + 10s;
              while (arrived.load() < procs && std::chrono::steady_clock::now() < deadline) {
              }
              wg.done();
            });
          }
          wg.wait();
          CHECK(arrived.load() == procs);
        },
        {.procs = procs});
  }
}

TEST_CASE("num_cpu is at least one and at most the online CPUs", "[runtime]") {
  unsigned n = gofer::num_cpu();
  CHECK(n >= 1);
  CHECK(n <= std::thread::hardware_concurrency());
}

TEST_CASE("GOFER_PROCS sets the default number of Ps", "[runtime][child]") {
  auto r = gofer::test::run_in_child([] {
    ::setenv("GOFER_PROCS", "3", 1);
    unsigned seen = gofer::run([] { return int(gofer::detail::current_runtime()->procs()); });
    std::_Exit(seen == 3 ? 0 : 1);
  });
  CHECK(r.exited);
  CHECK(r.exit_code == 0);
}

TEST_CASE("an explicit runtime runs fibers and stops in its destructor", "[runtime]") {
  std::atomic<int> ran{0};
  gofer::wait_group wg;
  {
    gofer::runtime rt({.procs = 2});
    CHECK(rt.procs() == 2);
    for (int i = 0; i < 100; ++i) {
      wg.add(1);
      rt.go([&] {
        ran.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();  // a plain thread waiting on fibers
  }
  CHECK(ran.load() == 100);
}

TEST_CASE("a runtime destroyed with parked fibers abandons them", "[runtime]") {
  // Outlives the runtime on purpose: the abandoned fiber stays registered in it.
  static gofer::wait_group never_done;
  auto* never = &never_done;
  never->add(1);
  std::atomic<bool> parked{false};
  {
    gofer::runtime rt({.procs = 1});
    rt.go([&] {
      parked = true;
      never->wait();
    });
    REQUIRE(gofer::test::eventually([&] { return parked.load(); }));
  }
  SUCCEED("destructor returned with a fiber still parked");
}

TEST_CASE("gofer::go from a plain thread uses the default runtime", "[runtime]") {
  gofer::wait_group wg;
  std::atomic<bool> in_fiber{false};
  wg.add(1);
  gofer::go([&] {
    in_fiber = gofer::this_fiber::in_fiber();
    wg.done();
  });
  wg.wait();
  CHECK(in_fiber.load());
  CHECK(&gofer::runtime::default_runtime() == &gofer::runtime::default_runtime());
}

// Every 61st schedule a P looks at the global queue, where fibers woken from
// outside the runtime wait, however busy its local queue keeps it. A ticker
// keeps timers due when fibers park, the case that once skipped the look for
// 2^32 schedules: the fiber woken from a plain thread then never ran.
TEST_CASE("a fiber woken from a plain thread runs while others keep the only P busy", "[runtime]") {
  gofer::run(
      [] {
        std::atomic<bool> stop{false};
        std::atomic<std::int64_t> round_trips{0};
        gofer::chan<int> ping, pong;
        gofer::chan<gofer::unit> wake(1), woken;
        gofer::ticker tick(50us);
        gofer::wait_group players;
        players.add(2);
        gofer::go([&] {
          while (!stop.load(std::memory_order_relaxed)) {
            ping.send(1);
            pong.recv();
            round_trips.fetch_add(1, std::memory_order_relaxed);
          }
          ping.close();
          players.done();
        });
        gofer::go([&] {
          while (ping.recv()) pong.send(1);
          players.done();
        });
        gofer::go([&] {
          wake.recv();
          stop = true;
          woken.close();
        });
        // From a plain thread, once the pair has run for a while (bounded,
        // for slow builds): the woken fiber goes to the global queue.
        std::thread waker([&] {
          const auto give_up = std::chrono::steady_clock::now() + 1s;
          while (round_trips.load(std::memory_order_relaxed) < 200'000 &&
                 std::chrono::steady_clock::now() < give_up)
            std::this_thread::sleep_for(1ms);
          wake.send(gofer::unit{});
        });
        const bool ran = gofer::select(gofer::on_recv(woken), gofer::on_timeout(10s)) == 0;
        stop = true;
        waker.join();
        players.wait();
        tick.stop();
        CHECK(ran);
      },
      gofer::options{.procs = 1});
}

TEST_CASE("deadlock: every fiber asleep is reported and thrown in main", "[runtime][death][child][deadlock]") {
  if (gofer::test::under_emulator()) {
    WARN("skipped under an emulator: its own threads count as live threads");
    return;
  }
  auto r = gofer::test::run_in_child([] {
    try {
      gofer::run([] {
        gofer::wait_group wg;
        wg.add(1);
        gofer::go(gofer::fiber_options{.name = "stuck-worker"}, [&] { wg.wait(); });
        wg.wait();
      });
    } catch (const gofer::deadlock_error& e) {
      std::fprintf(stderr, "caught: %s\n", e.what());
      std::_Exit(0);
    }
    std::_Exit(1);
  }, std::chrono::seconds(20));
  INFO(r.err);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("gofer: all fibers are asleep - deadlock!"));
  CHECK_THAT(r.err, Catch::Contains("\"stuck-worker\" [waiting: wait_group.wait"));
  CHECK_THAT(r.err, Catch::Contains("\"main\" [waiting: wait_group.wait"));
  CHECK_THAT(r.err, Catch::Contains("created by"));
  CHECK_THAT(r.err, Catch::Contains("runtime_test.cpp"));
  CHECK_THAT(r.err, Catch::Contains("caught: gofer: all fibers are asleep - deadlock!"));
}

TEST_CASE("deadlock is reported within a second", "[runtime][death][child][deadlock]") {
  if (gofer::test::under_emulator()) {
    WARN("skipped under an emulator: its own threads count as live threads");
    return;
  }
  auto r = gofer::test::run_in_child([] {
    auto start = std::chrono::steady_clock::now();
    try {
      gofer::run([] {
        gofer::wait_group wg;
        wg.add(1);
        wg.wait();
      }, {.procs = 2});
    } catch (const gofer::deadlock_error&) {
      auto took = std::chrono::steady_clock::now() - start;
      std::_Exit(took < 1s ? 0 : 3);
    }
    std::_Exit(1);
  });
  INFO(r.err);
  CHECK(r.exit_code == 0);
}

TEST_CASE("another runtime that sleeps does not hide a deadlock", "[runtime][death][child][deadlock]") {
  if (gofer::test::under_emulator()) {
    WARN("skipped under an emulator: its own threads count as live threads");
    return;
  }
  auto r = gofer::test::run_in_child([] {
    // Another runtime that ran a fiber and has been idle since (as the
    // default runtime is, once a plain thread has used it): its threads wake
    // nobody. (Made here: a forked child has none of its parent's threads.)
    gofer::runtime other(gofer::options{.procs = 2});
    gofer::chan<int> ran(1);
    other.go([ran] {
      gofer::this_fiber::sleep_for(1ms);
      ran.send(1);
    });
    if (!ran.recv()) std::_Exit(2);
    try {
      gofer::run([] {
        gofer::wait_group wg;
        wg.add(1);
        wg.wait();
      });
    } catch (const gofer::deadlock_error&) {
      std::_Exit(0);
    }
    std::_Exit(1);
  }, std::chrono::seconds(20));
  INFO(r.err);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("gofer: all fibers are asleep - deadlock!"));
}


TEST_CASE("a fiber of another runtime that will wake main is not a deadlock",
          "[runtime][death][child][deadlock]") {
  auto r = gofer::test::run_in_child([] {
    gofer::runtime other;
    gofer::wait_group wg;
    wg.add(1);
    // Parked on a timer in the other runtime: that runtime is not asleep.
    other.go([&] {
      gofer::this_fiber::sleep_for(300ms);
      wg.done();
    });
    int v = gofer::run([&] {
      wg.wait();
      return 7;
    });
    std::_Exit(v == 7 ? 0 : 1);
  });
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, !Catch::Contains("deadlock"));
}

TEST_CASE("a pending timer is not a deadlock", "[runtime][death][child][deadlock]") {
  auto r = gofer::test::run_in_child([] {
    int v = gofer::run([] {
      gofer::wait_group wg;
      wg.add(1);
      gofer::go([&] {
        gofer::this_fiber::sleep_for(300ms);
        wg.done();
      });
      wg.wait();
      return 5;
    });
    std::_Exit(v == 5 ? 0 : 1);
  });
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, !Catch::Contains("deadlock"));
}

TEST_CASE("a live thread that may still wake main is not a deadlock", "[runtime][death][child][deadlock]") {
  auto r = gofer::test::run_in_child([] {
    gofer::wait_group wg;
    wg.add(1);
    std::atomic<bool> go_ahead{false};
    std::thread t([&] {
      while (!go_ahead.load()) std::this_thread::sleep_for(1ms);
      std::this_thread::sleep_for(300ms);
      wg.done();
    });
    int v = gofer::run([&] {
      go_ahead = true;
      wg.wait();
      return 9;
    });
    t.join();
    std::_Exit(v == 9 ? 0 : 1);
  });
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, !Catch::Contains("deadlock"));
}

TEST_CASE("detect_deadlock = false leaves a stuck program alone", "[runtime][death][child][deadlock]") {
  auto r = gofer::test::run_in_child(
      [] {
        gofer::run([] {
          gofer::wait_group wg;
          wg.add(1);
          wg.wait();
        }, {.detect_deadlock = false});
      },
      std::chrono::seconds(2));
  CHECK(r.timed_out);
  CHECK_THAT(r.err, !Catch::Contains("deadlock"));
}

TEST_CASE("the deadlock check sees a live thread while threads started before it exit",
          "[runtime]") {
  // Listing /proc/self/task misses the threads after one that exits during
  // the listing; the check must see a thread that could still wake main
  // however the program's other threads end around it.
  gofer::runtime rt({.procs = 1});
  const unsigned serial = rt.impl().serial();
  int missed = 0;
  for (int round = 0; round < 300 && missed == 0; ++round) {
    std::atomic<bool> release{false}, stop{false};
    std::vector<std::thread> exiting;
    for (int i = 0; i < 2; ++i)
      exiting.emplace_back([&] {
        while (!release.load()) std::this_thread::yield();
      });
    std::thread live([&] {
      while (!stop.load()) std::this_thread::yield();
    });
    release = true;
    for (int k = 0; k < 100; ++k) {
      // The exiting threads may all be gone by now; `live` is not.
      if (!gofer::detail::other_threads_alive({&serial, 1})) ++missed;
    }
    for (auto& t : exiting) t.join();
    stop = true;
    live.join();
  }
  CHECK(missed == 0);
}

TEST_CASE("the deadlock check tells a sanitizer's threads from the program's own",
          "[runtime][child][deadlock]") {
  if (gofer::test::under_emulator()) {
    WARN("skipped under an emulator: its own threads count as live threads");
    return;
  }
  // A child process holds only the caller, the runtime's threads and those
  // of a sanitizer's runtime, if the build has one (ThreadSanitizer's
  // background thread): nothing that may wake a fiber.
  auto r = gofer::test::run_in_child([] {
    gofer::runtime rt({.procs = 1});
    const unsigned serial = rt.impl().serial();
    // Eventually: the runtime's threads register once they run.
    if (!gofer::test::eventually(
            [&] { return !gofer::detail::other_threads_alive({&serial, 1}); }, 5s))
      std::_Exit(2);
    // A thread of the program that blocks every signal and waits in sigwait,
    // as a program's signal-handling thread does, looks much like a
    // sanitizer's thread; it may still wake a fiber.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    std::atomic<long> tid{0};
    std::thread waiter([&] {
      tid = gofer::detail::current_tid();
      sigset_t usr1;
      sigemptyset(&usr1);
      sigaddset(&usr1, SIGUSR1);
      int sig = 0;
      sigwait(&usr1, &sig);
    });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    const bool waiting = gofer::test::eventually([&] {
      if (tid == 0) return false;
      std::ifstream f("/proc/self/task/" + std::to_string(tid.load()) + "/syscall");
      std::string nr;
      return f >> nr && nr == std::to_string(SYS_rt_sigtimedwait);
    });
    const bool seen = gofer::detail::other_threads_alive({&serial, 1});
    pthread_kill(waiter.native_handle(), SIGUSR1);
    waiter.join();
    std::_Exit(!waiting ? 3 : seen ? 0 : 4);
  });
  INFO(r.err);
  CHECK(r.exit_code == 0);
}
