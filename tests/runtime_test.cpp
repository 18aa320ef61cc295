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

// ---- main's end, with other fibers anywhere ---------------------------------
//
// Go's program ends when main returns, whatever its other goroutines are
// doing. support/main_returns.cpp leaves one fiber in a given state and
// returns; run as a program of its own (at exit it flushes stdio, runs static
// destructors and, in the ASan build, the leak check), it must end with
// main's status, all its output there and nothing on stderr: no crash, no
// sanitizer report, no wait. Each shape at procs 1, 2 and 4, through run(),
// run() twice in a row, and a gofer::runtime destroyed.
#ifdef GOFER_MAIN_RETURNS
namespace {

void check_main_returns(const std::string& shape) {
  for (const char* how : {"run", "run_twice", "runtime"}) {
    for (const char* procs : {"1", "2", "4"}) {
      INFO("gofer_main_returns " << shape << ' ' << procs << ' ' << how);
      const auto r = gofer::test::run_program({GOFER_MAIN_RETURNS, shape, procs, how}, 20s);
      CHECK_FALSE(r.timed_out);
      CHECK(r.signal == 0);
      CHECK(r.exited);
      CHECK(r.exit_code == 3);
      const bool twice = std::string(how) == "run_twice";
      CHECK(r.out == (twice ? "before afterbefore after" : "before after"));
      CHECK(r.err == "");
    }
  }
}

}  // namespace

TEST_CASE("main returns while a fiber sleeps", "[runtime][exec]") { check_main_returns("sleep"); }

TEST_CASE("main returns while a fiber waits in a select with a timeout", "[runtime][exec]") {
  check_main_returns("select_timeout");
}

TEST_CASE("main returns while an after_func is pending", "[runtime][exec]") {
  check_main_returns("after_func");
}

TEST_CASE("main returns while a fiber waits to read a socket", "[runtime][exec]") {
  check_main_returns("conn_read");
}

TEST_CASE("main returns while a fiber waits in blocking(), which returns later",
          "[runtime][exec]") {
  check_main_returns("blocking");
}

TEST_CASE("main returns while a fiber waits on a context with a deadline", "[runtime][exec]") {
  check_main_returns("context");
}

TEST_CASE("main returns while fibers wait on channels that outlive the runtime",
          "[runtime][exec]") {
  check_main_returns("outside_chan");
}

TEST_CASE("main returns while a fiber waits for a signal", "[runtime][exec]") {
  check_main_returns("signal");
}

TEST_CASE("main returns while a fiber computes without parking", "[runtime][exec]") {
  check_main_returns("spin");
}
#endif

TEST_CASE("a runtime destroyed while fibers sleep or wait on timeouts", "[runtime]") {
  // The timers of a sleep and of a select's timeout live in the parked
  // fibers' frames; the runtime must let go of them before it frees the
  // stacks. Twice: a second runtime starts clean after the first.
  for (int round = 0; round < 2; ++round) {
    for (unsigned procs : {1u, 2u}) {
      gofer::runtime rt({.procs = procs});
      for (int i = 0; i < 8; ++i) {
        rt.go([] { gofer::this_fiber::sleep_for(1h); });
        rt.go([] {
          gofer::chan<int> c;
          gofer::select(gofer::on_recv(c), gofer::on_timeout(1h));
        });
      }
      REQUIRE(gofer::test::eventually([] {
        return gofer::test::fibers_waiting("sleep") == 8 &&
               gofer::test::fibers_waiting("select") == 8;
      }));
    }
  }
  SUCCEED("each destructor returned with the timers pending");
}

namespace {

bool registered(unsigned serial) {
  std::lock_guard lk(gofer::detail::runtime_registry_mu);
  for (auto* r : gofer::detail::runtime_registry)
    if (r->serial() == serial) return true;
  return false;
}

}  // namespace

TEST_CASE("a runtime's end does not wait for a fiber that computes without parking",
          "[runtime]") {
  for (unsigned procs : {1u, 2u}) {
    INFO("procs " << procs);
    std::atomic<bool> spinning{false}, release{false}, queued_ran{false}, ended{false};
    auto* rt = new gofer::runtime({.procs = procs});
    const unsigned serial = rt->impl().serial();
    rt->go([&] {
      // Queued behind the spinner on its P: after the runtime's end, the
      // spinner's thread must not run it.
      gofer::go([&] { queued_ran = true; });
      spinning = true;
      while (!release.load()) {
      }
    });
    REQUIRE(gofer::test::eventually([&] { return spinning.load(); }));
    // On a thread of its own, so that a destructor that waits for the
    // spinner fails the check instead of hanging the suite.
    std::thread ender([&] {
      delete rt;
      ended = true;
    });
    CHECK(gofer::test::eventually([&] { return ended.load(); }, 5s));
    CHECK(registered(serial));  // still held by the spinner's thread
    release = true;
    ender.join();
    // The spinner's fiber has finished: its thread stops and frees the
    // runtime, having run nothing else.
    CHECK(gofer::test::eventually([&] { return !registered(serial); }));
    // With two Ps the other one may have run it before the end.
    if (procs == 1) CHECK_FALSE(queued_ran.load());
  }
}

TEST_CASE("run() returns while a fiber computes, and can run again", "[runtime]") {
  std::atomic<bool> spinning{false}, release{false}, returned{false};
  int result = 0;
  unsigned serial = 0;
  std::thread runner([&] {
    result = gofer::run(
        [&] {
          serial = gofer::detail::current_runtime()->serial();
          gofer::go([&] {
            spinning = true;
            while (!release.load()) {
            }
            gofer::this_fiber::sleep_for(1h);  // parks: its thread stops then
          });
          while (!spinning.load()) gofer::this_fiber::sleep_for(100us);
          return 5;
        },
        {.procs = 2});
    returned = true;
  });
  CHECK(gofer::test::eventually([&] { return returned.load(); }, 5s));
  CHECK(gofer::run([] { return 6; }, {.procs = 2}) == 6);
  release = true;
  runner.join();
  CHECK(result == 5);
  // It parked: its thread stopped and freed the runtime.
  CHECK(gofer::test::eventually([&] { return !registered(serial); }));
}

TEST_CASE("run() returning with a fiber left computing has let go of the others' waits",
          "[runtime]") {
  // Fibers parked on channels that outlive the runtime: once run() has
  // returned they are gone, although the runtime lives on with the computing
  // fiber's thread. Nothing may still take a value from them, or hand them
  // one, and the channels may be destroyed at once.
  std::atomic<bool> spinning{false}, release{false};
  unsigned serial = 0;
  auto offered = std::make_unique<gofer::chan<int>>();
  auto awaited = std::make_unique<gofer::chan<int>>();
  const int result = gofer::run(
      [&] {
        serial = gofer::detail::current_runtime()->serial();
        gofer::go([c = *offered] { c.send(42); });
        gofer::go([c = *awaited] { (void)c.recv(); });
        gofer::go([&] {
          spinning = true;
          while (!release.load()) {
          }
        });
        const auto give_up = std::chrono::steady_clock::now() + 10s;
        while (!spinning.load() || gofer::test::fibers_waiting("chan send") != 1 ||
               gofer::test::fibers_waiting("chan receive") != 1) {
          if (std::chrono::steady_clock::now() > give_up) return 0;
          gofer::this_fiber::sleep_for(100us);
        }
        return 7;
      },
      {.procs = 2});
  CHECK(result == 7);
  CHECK(registered(serial));  // the spinner's thread still holds the runtime
  CHECK_FALSE(offered->try_recv().has_value());
  CHECK_FALSE(awaited->try_send(1));
  offered.reset();
  awaited.reset();
  release = true;
  CHECK(gofer::test::eventually([&] { return !registered(serial); }));
}

TEST_CASE("a runtime destroyed while a fiber waits in blocking() leaves the call alone",
          "[runtime]") {
  // The call runs on a helper thread and writes its result into the parked
  // fiber's frame; it ends after the runtime is gone, and must then touch
  // neither the runtime nor freed memory.
  auto& pool = gofer::detail::blocking_pool::instance();
  std::atomic<bool> release{false};
  std::atomic<bool> running{false};
  std::uint64_t before = 0;
  {
    gofer::runtime rt({.procs = 1});
    before = pool.completed();
    rt.go([&] {
      std::string result = gofer::blocking([&] {
        running = true;
        while (!release.load()) std::this_thread::sleep_for(100us);
        return std::string(100, 'r');
      });
      FAIL("blocking() returned in an abandoned fiber: " << result);
    });
    REQUIRE(gofer::test::eventually([&] {
      return running.load() && gofer::test::fibers_waiting("blocking call") == 1;
    }));
  }
  release = true;
  CHECK(gofer::test::eventually([&] { return pool.completed() > before; }));
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
