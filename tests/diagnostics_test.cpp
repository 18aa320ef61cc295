// num_fibers, dump_fibers and the SIGQUIT dump.
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <gofer/gofer.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "support/eventually.hpp"
#include "support/subprocess.hpp"

using namespace std::chrono_literals;

TEST_CASE("num_fibers counts live fibers, main included", "[diagnostics]") {
  gofer::run(
      [] {
        CHECK(gofer::num_fibers() == 1);
        gofer::wait_group release, started;
        release.add(1);
        started.add(10);
        gofer::wait_group finished;
        finished.add(10);
        for (int i = 0; i < 10; ++i) {
          gofer::go([&] {
            started.done();
            release.wait();
            finished.done();
          });
        }
        started.wait();
        CHECK(gofer::num_fibers() == 11);
        release.done();
        finished.wait();
        CHECK(gofer::test::eventually([] { return gofer::num_fibers() == 1; }));
      },
      {.procs = 2});
}

TEST_CASE("dump_fibers shows id, name, state, wait reason and creation site", "[diagnostics]") {
  gofer::run(
      [] {
        gofer::wait_group gate, parked;
        gate.add(1);
        parked.add(1);
        gofer::go(gofer::fiber_options{.name = "sleepy-worker"}, [&] {
          parked.done();
          gate.wait();
        });
        parked.wait();
        // The worker is parked once it no longer shows as running.
        std::string text;
        REQUIRE(gofer::test::eventually([&] {
          std::ostringstream os;
          gofer::dump_fibers(os);
          text = os.str();
          return text.find("\"sleepy-worker\" [waiting: wait_group.wait") != std::string::npos;
        }));
        CHECK_THAT(text, Catch::Contains("\"main\" [running]"));
        CHECK_THAT(text, Catch::Contains("created by"));
        CHECK_THAT(text, Catch::Contains("diagnostics_test.cpp:"));
        // "fiber <id> "sleepy-worker"": an id, then the name.
        auto at = text.find("\"sleepy-worker\"");
        auto line = text.rfind("fiber ", at);
        REQUIRE(line != std::string::npos);
        CHECK(std::stoull(text.substr(line + 6)) > 1);
        gate.done();
      },
      {.procs = 2});
}

namespace {

// Starts n fibers whose callables take 512 bytes below their blocks, where a
// previous fiber of the same slot kept things of its own, and waits for
// them: a fiber's slot goes to its P's cache when it exits, and the next
// spawn on that P takes it back.
void fill_reused_slots(int n) {
  gofer::wait_group done;
  done.add(n);
  for (int i = 0; i < n; ++i) {
    std::array<char, 512> payload;
    payload.fill(static_cast<char>('a' + i));
    gofer::go([&done, payload] {
      CHECK(payload[511] != 0);
      done.done();
    });
  }
  done.wait();
}

}  // namespace

// A reader of fibers owns none of them: dump_fibers, from any thread, must
// read only what stays a fiber's own while its slot is reused (under
// ThreadSanitizer, reading a name kept on the stack below the block raced
// with the next fiber's writes there).
TEST_CASE("dump_fibers from a thread reads nothing the next fiber of a slot writes",
          "[diagnostics]") {
  gofer::run(
      [] {
        std::atomic<bool> stop{false};
        // Relaxed: nothing orders the dumps against the fibers, as in a
        // program that dumps from a thread of its own.
        std::atomic<int> dumps{0};
        std::thread dumper([&] {
          while (!stop.load(std::memory_order_relaxed)) {
            std::ostringstream os;
            gofer::dump_fibers(os);
            dumps.fetch_add(1, std::memory_order_relaxed);
          }
        });
        const int n = 8;
        for (int round = 0; round < 20; ++round) {
          gofer::wait_group parked, gate, done;
          parked.add(n);
          gate.add(1);
          done.add(n);
          for (int i = 0; i < n; ++i) {
            gofer::go(gofer::fiber_options{.name = std::string(200, 'n')}, [&] {
              parked.done();
              gate.wait();
              done.done();
            });
          }
          parked.wait();
          // A dump that begins once they are parked reads their names.
          const int before = dumps.load(std::memory_order_relaxed);
          REQUIRE(gofer::test::eventually(
              [&] { return dumps.load(std::memory_order_relaxed) >= before + 2; }));
          gate.done();
          done.wait();
          fill_reused_slots(n);
        }
        stop.store(true, std::memory_order_relaxed);
        gofer::blocking([&] { dumper.join(); });
      },
      {.procs = 1});
}

// The same for the monitor, which reads the fiber it reports while that
// fiber may exit and its slot start another.
TEST_CASE("the long-run report reads nothing the next fiber of a slot writes", "[diagnostics]") {
  gofer::run(
      [] {
        for (int round = 0; round < 2; ++round) {
          std::atomic<bool> reported{false};
          gofer::go(gofer::fiber_options{.name = std::string(200, 'c')}, [&] {
            // Computes, with main queued behind it, until the monitor has
            // reported it (relaxed: no ordering with the monitor's reads).
            const gofer::detail::fiber* self = gofer::detail::current_fiber();
            const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            while (!self->long_run_reported.load(std::memory_order_relaxed) &&
                   std::chrono::steady_clock::now() < give_up) {
            }
            reported = self->long_run_reported.load(std::memory_order_relaxed);
          });
          gofer::this_fiber::yield();  // to it: with one P, main waits in the queue
          CHECK(reported);
          fill_reused_slots(1);
        }
      },
      {.procs = 1});
}

// ThreadSanitizer runs signal handlers only when the receiving thread next
// enters one of its interceptors; threads asleep in raw futex calls never do,
// so under it the handler may never run. Checked in the other builds.
#if !GOFER_TSAN
TEST_CASE("SIGQUIT prints the fiber dump and exits with status 2", "[diagnostics][death][child]") {
  auto r = gofer::test::run_in_child(
      [] {
        ::unsetenv("GOFER_SCHED_SEED");
        gofer::run(
            [] {
              gofer::wait_group started;
              started.add(1);
              gofer::go(gofer::fiber_options{.name = "napper"}, [&] {
                started.done();
                gofer::this_fiber::sleep_for(30s);
              });
              // With one P, main runs again only once the napper has parked.
              started.wait();
              std::fprintf(stderr, "ready\n");
              gofer::this_fiber::sleep_for(30s);
            },
            {.procs = 1});
      },
      std::chrono::seconds(20),
      [sent = false](pid_t pid, const std::string& err) mutable {
        if (!sent && err.find("ready\n") != std::string::npos) {
          sent = true;
          ::kill(pid, SIGQUIT);
        }
      });
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("SIGQUIT: quit"));
  CHECK_THAT(r.err, Catch::Contains("\"napper\" [waiting: sleep"));
}
#endif  // !GOFER_TSAN

namespace {

void compute_for(std::chrono::nanoseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

// Whether the monitor has reported the calling fiber (relaxed: it reads
// nothing of the monitor's).
bool reported_me() {
  return gofer::detail::current_fiber()->long_run_reported.load(std::memory_order_relaxed);
}

// A fiber that computes, with main queued behind it, until the monitor has
// reported it (or 10 s), then 30 ms more: the case that must be reported,
// once. With one P, main runs again only when it has finished.
void reported_cruncher() {
  gofer::go(gofer::fiber_options{.name = "cruncher"}, [] {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!reported_me() && std::chrono::steady_clock::now() < give_up) {
    }
    compute_for(std::chrono::milliseconds(30));
  });
  gofer::this_fiber::yield();
}

// In a child: phase() as main at one P, then the cruncher, which shows that
// the monitor was looking. What the monitor said, on stderr. Each phase sets
// up who waits behind whom, which the randomised scheduling mode would
// reshuffle: it is off in the child.
std::string long_run_reports(const std::function<void()>& phase) {
  auto r = gofer::test::run_in_child([&] {
    ::unsetenv("GOFER_SCHED_SEED");
    gofer::run(phase, {.procs = 1});
    gofer::run(reported_cruncher, {.procs = 1});
  });
  INFO("signal " << r.signal << (r.timed_out ? ", timed out" : ""));
  CHECK(r.exit_code == 0);
  return r.err;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Runs body in a fiber named `name` while main waits, parked: nothing of
// main's is queued behind it.
void alone(const char* name, const std::function<void()>& body) {
  gofer::wait_group wg;
  wg.add(1);
  gofer::go(gofer::fiber_options{.name = name}, [&] {
    body();
    wg.done();
  });
  wg.wait();
}

}  // namespace

TEST_CASE("a fiber holding its P while another waits is reported once, with its name and creation site",
          "[diagnostics][child]") {
  const std::string err = long_run_reports([] {});
  INFO(err);
  CHECK(count(err, "has held its P") == 1);
  CHECK(count(err, "\"cruncher\" has held its P for ") == 1);
  CHECK_THAT(err, Catch::Contains("without parking or yielding; fibers queued behind it wait"));
  CHECK_THAT(err, Catch::Contains("(created by "));
  CHECK_THAT(err, Catch::Contains("diagnostics_test.cpp:"));
}

TEST_CASE("the long-run report is silent for a yield loop with nothing queued",
          "[diagnostics][child]") {
  const std::string err = long_run_reports([] {
    alone("yielder", [] {
      const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
      while (std::chrono::steady_clock::now() < end) gofer::this_fiber::yield();
    });
  });
  INFO(err);
  CHECK(count(err, "has held its P") == 1);  // the cruncher's, which shows the monitor looked
  CHECK(count(err, "\"cruncher\" has held its P") == 1);
}

TEST_CASE("the long-run report is silent for a computation with nothing queued",
          "[diagnostics][child]") {
  const std::string err = long_run_reports(
      [] { alone("computer", [] { compute_for(std::chrono::milliseconds(50)); }); });
  INFO(err);
  CHECK(count(err, "has held its P") == 1);
  CHECK(count(err, "\"cruncher\" has held its P") == 1);
}

TEST_CASE("the long-run report is silent for a fiber spawning many fibers slowly",
          "[diagnostics][child]") {
  // As main spawning a thousand fibers where every fresh stack costs a slow
  // page fault: the fibers it queues wait for it, by design.
  const std::string err = long_run_reports([] {
    alone("spawner", [] {
      gofer::wait_group ran;
      ran.add(500);
      for (int i = 0; i < 500; ++i) {
        gofer::go([&ran] { ran.done(); });
        compute_for(std::chrono::microseconds(100));
      }
      ran.wait();
    });
  });
  INFO(err);
  CHECK(count(err, "has held its P") == 1);
  CHECK(count(err, "\"cruncher\" has held its P") == 1);
}

TEST_CASE("the long-run report says when it is a due timer that waits", "[diagnostics][child]") {
  const std::string err = long_run_reports([] {
    gofer::wait_group wg;
    wg.add(1);
    gofer::go(gofer::fiber_options{.name = "timer-blocker"}, [&] {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!reported_me() && std::chrono::steady_clock::now() < give_up) {
      }
      wg.done();
    });
    // Main sleeps 1 ms on this P's timers; the fiber then holds the P.
    gofer::this_fiber::sleep_for(std::chrono::milliseconds(1));
    wg.wait();
  });
  INFO(err);
  CHECK_THAT(err, Catch::Contains("\"timer-blocker\" has held its P for "));
  CHECK_THAT(err, Catch::Contains("without parking or yielding; timers due on its P wait"));
}

TEST_CASE("a fiber blocked in a plain system call while another waits is reported",
          "[diagnostics][child]") {
  const std::string err = long_run_reports([] {
    gofer::go(gofer::fiber_options{.name = "sleeper"}, [] {
      // A blocking call that does not go through blocking(): the thread
      // sleeps, and its P with it. Until reported, or 10 s.
      const gofer::detail::fiber* self = gofer::detail::current_fiber();
      for (int i = 0; i < 1000 && !self->long_run_reported.load(std::memory_order_relaxed); ++i)
        ::usleep(10'000);
    });
    gofer::this_fiber::yield();  // main waits behind it
  });
  INFO(err);
  CHECK(count(err, "\"sleeper\" has held its P for ") == 1);
}

TEST_CASE("the long-run report is silent for a fiber whose thread the kernel does not run",
          "[diagnostics][child]") {
  // Everything on one CPU, where a busy thread outweighs the M (nice 19
  // against 0): the fiber's P waits for the kernel, not for the fiber.
  const std::string err = long_run_reports([] {
    cpu_set_t all, one;
    CPU_ZERO(&one);
    if (::sched_getaffinity(0, sizeof all, &all) != 0) std::_Exit(3);
    int cpu = 0;
    while (!CPU_ISSET(cpu, &all)) ++cpu;
    CPU_SET(cpu, &one);
    // The calling thread is the M (one P): it and the busy thread share a CPU.
    if (::sched_setaffinity(0, sizeof one, &one) != 0) std::_Exit(3);
    std::atomic<bool> stop{false};
    std::thread busy([&] {
      if (::sched_setaffinity(0, sizeof one, &one) != 0) std::_Exit(3);
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
    gofer::go(gofer::fiber_options{.name = "starved"}, [] {
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(gofer::detail::current_tid()), 19);
      compute_for(std::chrono::milliseconds(100));
    });
    gofer::this_fiber::yield();  // main waits behind it
    stop.store(true, std::memory_order_relaxed);
    busy.join();  // at once: it stops when told
  });
  INFO(err);
  CHECK(count(err, "has held its P") == 1);
  CHECK(count(err, "\"cruncher\" has held its P") == 1);
}

TEST_CASE("report_long_runs = false keeps the monitor quiet", "[diagnostics][child]") {
  auto r = gofer::test::run_in_child([] {
    gofer::run(
        [] {
          gofer::go(gofer::fiber_options{.name = "cruncher"},
                    [] { compute_for(std::chrono::milliseconds(40)); });
          gofer::this_fiber::yield();  // main waits behind it
        },
        {.procs = 1, .report_long_runs = false});
  });
  INFO(r.err);
  CHECK(r.exited);
  CHECK(r.err.find("has held its P") == std::string::npos);
}

TEST_CASE("GOFER_DEBUG=schedtrace=N prints scheduler counters every N ms", "[diagnostics][child]") {
  auto r = gofer::test::run_in_child([] {
    ::setenv("GOFER_DEBUG", "schedtrace=20", 1);
    gofer::run(
        [] {
          // Some work to count, then enough time for several periods.
          gofer::wait_group wg;
          wg.add(100);
          for (int i = 0; i < 100; ++i) gofer::go([&] { wg.done(); });
          wg.wait();
          gofer::this_fiber::sleep_for(std::chrono::milliseconds(120));
        },
        {.procs = 2});
  });
  INFO(r.err);
  CHECK(r.exited);
  std::size_t lines = 0;
  for (std::size_t at = 0; (at = r.err.find("gofer: schedtrace runtime", at)) != std::string::npos;
       ++at)
    ++lines;
  CHECK(lines >= 3);
  CHECK(r.err.find("procs=2 idle=") != std::string::npos);
  CHECK(r.err.find("spinning=") != std::string::npos);
  CHECK(r.err.find("steals=") != std::string::npos);
}
