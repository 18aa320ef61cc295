// gofer::select: ready, blocking, default, timeout, nil and closed cases, the
// same channel in several cases, uniform choice, the dynamic form, threads.
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gofer/gofer.hpp>

#include "support/runtime_fixture.hpp"
#include "support/subprocess.hpp"

using namespace std::chrono_literals;

TEST_CASE("select takes the ready case and runs only its handler", "[select]") {
  gofer::chan<int> a(1);
  gofer::chan<int> b(1);
  b.send(9);
  int got_a = 0;
  std::optional<int> got_b;
  auto i = gofer::select(gofer::on_recv(a, [&](std::optional<int> v) { got_a = *v; }),
                         gofer::on_recv(b, [&](std::optional<int> v) { got_b = v; }));
  CHECK(i == 1);
  CHECK(got_a == 0);
  CHECK(got_b == 9);
  bool sent = false;
  i = gofer::select(gofer::on_recv(b), gofer::on_send(a, 3, [&] { sent = true; }));
  CHECK(i == 1);
  CHECK(sent);
  CHECK(a.recv() == 3);
}

TEST_CASE("select with a default never blocks", "[select]") {
  gofer::chan<int> c;
  gofer::chan<int> d(1);
  bool dflt = false;
  CHECK(gofer::select(gofer::on_recv(c), gofer::on_default([&] { dflt = true; })) == 1);
  CHECK(dflt);
  CHECK(gofer::select(gofer::on_send(c, 1), gofer::on_default()) == 1);
  CHECK(gofer::select(gofer::on_recv(c), gofer::on_recv(d), gofer::on_default()) == 2);
  CHECK(gofer::select(gofer::on_send(d, 1), gofer::on_default()) == 0);
  CHECK(gofer::select(gofer::on_send(d, 2), gofer::on_send(c, 2), gofer::on_default()) == 2);
  CHECK(d.recv() == 1);
}

TEST_CASE("a receive case on a closed channel is ready with nullopt", "[select]") {
  for (std::size_t cap : {0, 2}) {
    gofer::chan<int> c(cap);
    if (cap > 0) c.send(4);
    c.close();
    std::vector<std::optional<int>> seen;
    auto handler = [&](std::optional<int> v) { seen.push_back(v); };
    // With and without a default, with one case and with several.
    gofer::chan<int> never;
    gofer::select(gofer::on_recv(c, handler), gofer::on_default());
    gofer::select(gofer::on_recv(c, handler), gofer::on_recv(never));
    gofer::select(gofer::on_recv(c, handler));
    if (cap > 0) {
      REQUIRE(seen.size() == 3);
      CHECK(seen[0] == 4);
      CHECK(seen[1] == std::nullopt);
    } else {
      CHECK(seen == std::vector<std::optional<int>>(3, std::nullopt));
    }
  }
}

TEST_CASE("a send case on a closed channel throws", "[select]") {
  gofer::chan<int> c(1);
  c.close();
  CHECK_THROWS_AS(gofer::select(gofer::on_send(c, 1), gofer::on_default()),
                  gofer::closed_channel_error);
  gofer::chan<int> other;
  CHECK_THROWS_WITH(gofer::select(gofer::on_send(c, 1), gofer::on_recv(other)),
                    "gofer: send on closed channel");
}

TEST_CASE("a blocked select wakes for a receive, a send, or a close", "[select]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::chan<int> in;
    gofer::chan<int> out;
    gofer::chan<int> quiet;
    gofer::go([=] { in.send(1); });
    std::optional<int> v;
    CHECK(gofer::select(gofer::on_recv(quiet), gofer::on_recv(in, [&](auto x) { v = x; })) == 1);
    CHECK(v == 1);

    gofer::go([=] { out.recv(); });
    CHECK(gofer::select(gofer::on_recv(quiet), gofer::on_send(out, 5)) == 1);

    gofer::go([=] { quiet.close(); });
    v = 0;
    CHECK(gofer::select(gofer::on_send(out, 5), gofer::on_recv(quiet, [&](auto x) { v = x; })) == 1);
    CHECK(v == std::nullopt);
  });
}

TEST_CASE("a sender parked in a select is told of close by an exception", "[select]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::chan<int> c;
    gofer::chan<int> quiet;
    gofer::chan<bool> threw(1);
    gofer::go([=] {
      try {
        gofer::select(gofer::on_send(c, 1), gofer::on_recv(quiet));
        threw.send(false);
      } catch (const gofer::closed_channel_error&) {
        threw.send(true);
      }
    });
    for (int i = 0; i < 10; ++i) gofer::this_fiber::yield();
    c.close();
    CHECK(threw.recv() == true);
  });
}

TEST_CASE("nil cases are never ready", "[select]") {
  gofer::chan<int> n(gofer::nil);
  gofer::recv_chan<int> rn = gofer::nil;
  gofer::send_chan<int> sn = gofer::nil;
  CHECK(gofer::select(gofer::on_recv(n), gofer::on_send(sn, 1), gofer::on_recv(rn),
                      gofer::on_default()) == 3);
  CHECK(gofer::select(gofer::on_recv(n), gofer::on_timeout(1ms)) == 1);
}

TEST_CASE("on_timeout fires when nothing else does, and not when something does", "[select]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::chan<int> c;
    auto t0 = std::chrono::steady_clock::now();
    bool timed_out = false;
    CHECK(gofer::select(gofer::on_recv(c), gofer::on_timeout(5ms, [&] { timed_out = true; })) == 1);
    CHECK(timed_out);
    CHECK(std::chrono::steady_clock::now() - t0 >= 5ms);
    // Zero: taken at once when nothing is ready.
    CHECK(gofer::select(gofer::on_recv(c), gofer::on_timeout(0ms)) == 1);
    // A ready case beats a timeout of zero: the timeout is not ready yet.
    gofer::chan<int> b(1);
    b.send(1);
    CHECK(gofer::select(gofer::on_recv(b), gofer::on_timeout(0ms)) == 0);
    // A value that comes in time wins over a long timeout.
    gofer::go([=] { c.send(2); });
    CHECK(gofer::select(gofer::on_recv(c), gofer::on_timeout(10s)) == 0);
    // Only a timeout: sleeps.
    CHECK(gofer::select(gofer::on_timeout(1ms)) == 0);
  });
}

TEST_CASE("the same channel in several cases: each is a separate chance", "[select]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::chan<int> c(1);
    std::array<int, 3> hits{};
    for (int i = 0; i < 300; ++i) {
      // Empty buffer: only the sends are ready. Full: only the receive.
      auto k = gofer::select(gofer::on_send(c, 1), gofer::on_recv(c), gofer::on_send(c, 2));
      ++hits[k];
      if (k == 1) continue;
      CHECK(gofer::select(gofer::on_send(c, 3), gofer::on_recv(c), gofer::on_send(c, 4)) == 1);
    }
    CHECK(hits[1] == 0);
    CHECK(hits[0] > 50);
    CHECK(hits[2] > 50);
    // Blocked on one channel in two receive cases: one value wakes it once.
    gofer::chan<int> u;
    gofer::go([=] { u.send(7); });
    std::optional<int> a, b;
    gofer::select(gofer::on_recv(u, [&](auto v) { a = v; }), gofer::on_recv(u, [&](auto v) { b = v; }));
    CHECK(a.has_value() != b.has_value());
    CHECK(u.try_recv() == std::nullopt);
  });
}

// Chi-square critical values at p = 1e-7 for 1..7 degrees of freedom. The
// test makes 32 such checks a run (8 shapes, 4 schedules), so at p = 1e-4 a
// fair select failed about one run in three hundred: once in a sweep of 100
// scheduler seeds. At 1e-7 that is one in three hundred thousand, and the
// trials are many enough that a choice of 55 to 45 between two cases still
// fails.
TEST_CASE("the choice among ready cases is uniform", "[select]") {
  constexpr double critical[] = {0, 28.37, 32.24, 35.41, 38.24, 40.86, 43.34, 45.70};
  gofer::test::for_each_sched([&](auto&&) {
    for (std::size_t k = 2; k <= 8; ++k) {
      INFO(k << " ready cases");
      std::vector<gofer::chan<int>> cs;
      for (std::size_t i = 0; i < k; ++i) {
        cs.emplace_back(1);
        cs.back().send(0);
      }
      std::vector<gofer::select_case> cases;
      for (auto& c : cs) {
        cases.emplace_back(gofer::on_recv(c, [c](std::optional<int>) { c.send(0); }));
      }
      const int trials = 2000 * static_cast<int>(k);
      std::vector<int> hits(k);
      for (int t = 0; t < trials; ++t) ++hits[gofer::select(cases)];
      const double expect = static_cast<double>(trials) / static_cast<double>(k);
      double chi2 = 0;
      for (int h : hits) chi2 += (h - expect) * (h - expect) / expect;
      CHECK(chi2 < critical[k - 1]);
    }
    // The variadic form draws the same way.
    gofer::chan<int> a(1), b(1);
    a.send(0);
    b.send(0);
    int ha = 0;
    for (int t = 0; t < 4000; ++t) {
      if (gofer::select(gofer::on_recv(a, [&] { a.send(0); }), gofer::on_recv(b, [&] { b.send(0); })) == 0) ++ha;
    }
    const double chi2 = 2.0 * (ha - 2000.0) * (ha - 2000.0) / 2000.0;
    CHECK(chi2 < critical[1]);
  });
}

TEST_CASE("select_case: built at run time, kept, and reused (fan-in)", "[select]") {
  gofer::test::for_each_sched([](auto&&) {
    constexpr int producers = 5;
    constexpr int per = gofer::test::scaled(200);
    std::vector<gofer::chan<int>> ins;
    for (int p = 0; p < producers; ++p) {
      ins.emplace_back();
      gofer::go([c = ins.back()] {
        for (int i = 1; i <= per; ++i) c.send(i);
        c.close();
      });
    }
    long sum = 0;
    int open = producers;
    std::vector<gofer::select_case> cases;
    std::vector<bool> closed(producers);
    for (int p = 0; p < producers; ++p) {
      cases.emplace_back(gofer::on_recv(ins[p], [&, p](std::optional<int> v) {
        if (v) {
          sum += *v;
        } else {
          closed[p] = true;
          --open;
        }
      }));
    }
    ins.clear();  // the cases keep the channels alive
    while (open > 0) {
      // A closed input is swapped for the nil channel, as Go code sets it to nil.
      for (int p = 0; p < producers; ++p) {
        if (closed[p]) cases[p] = gofer::on_recv(gofer::chan<int>(gofer::nil));
      }
      gofer::select(cases);
    }
    CHECK(sum == long{producers} * per * (per + 1) / 2);
  });
}

TEST_CASE("a send case that loses keeps its value for a later select", "[select]") {
  gofer::chan<std::unique_ptr<int>> c(1);
  std::vector<gofer::select_case> cases;
  cases.emplace_back(gofer::on_send(c, std::make_unique<int>(5)));
  cases.emplace_back(gofer::on_default());
  c.send(std::make_unique<int>(1));  // full: the send case cannot win
  CHECK(gofer::select(cases) == 1);
  CHECK(**c.recv() == 1);
  CHECK(gofer::select(cases) == 0);
  auto p = c.recv();
  REQUIRE(p.has_value());
  REQUIRE(*p != nullptr);
  CHECK(**p == 5);
}

TEST_CASE("threads select too, blocking and with a timeout", "[select][thread]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::chan<int> c;
    gofer::chan<int> quiet;
    std::atomic<int> got{0};
    std::atomic<std::size_t> timed{99};
    std::thread t([&] {
      gofer::select(gofer::on_recv(quiet), gofer::on_recv(c, [&](auto v) { got = *v; }));
      timed = gofer::select(gofer::on_recv(quiet), gofer::on_timeout(2ms));
    });
    c.send(11);
    CHECK(gofer::test::eventually([&] { return timed.load() != 99; }));
    gofer::blocking([&] { t.join(); });
    CHECK(got == 11);
    CHECK(timed == 1);
    // A fiber's select woken by a thread's send.
    std::thread s([&] { c.send(12); });
    std::optional<int> v;
    gofer::select(gofer::on_recv(quiet), gofer::on_recv(c, [&](auto x) { v = x; }));
    gofer::blocking([&] { s.join(); });
    CHECK(v == 12);
  });
}

TEST_CASE("selects racing over shared channels lose and duplicate nothing", "[select][stress]") {
  gofer::test::for_each_sched([](auto&&) {
    const int n = gofer::test::scaled(3000);
    gofer::chan<int> a;
    gofer::chan<int> b(4);
    gofer::chan<long> sums(8);
    constexpr int receivers = 4;
    gofer::wait_group senders;
    senders.add(2);
    // Two senders, each selecting between the two channels for every value.
    for (int s = 0; s < 2; ++s) {
      gofer::go([=, &senders] {
        for (int i = 1; i <= n; ++i) gofer::select(gofer::on_send(a, i), gofer::on_send(b, i));
        senders.done();
      });
    }
    gofer::chan<> stop;
    for (int r = 0; r < receivers; ++r) {
      gofer::go([=] {
        long sum = 0;
        bool a_open = true, b_open = true;
        auto ra = a;
        auto rb = b;
        while (a_open || b_open) {
          gofer::select(
              gofer::on_recv(ra, [&](std::optional<int> v) {
                if (v) sum += *v; else { a_open = false; ra = gofer::nil; }
              }),
              gofer::on_recv(rb, [&](std::optional<int> v) {
                if (v) sum += *v; else { b_open = false; rb = gofer::nil; }
              }));
        }
        sums.send(sum);
      });
    }
    senders.wait();
    a.close();
    b.close();
    long total = 0;
    for (int r = 0; r < receivers; ++r) total += *sums.recv();
    CHECK(total == 2L * n * (n + 1) / 2);
  });
}

TEST_CASE("a blocked select uses no CPU", "[select]") {
  gofer::run([] {
    gofer::chan<int> a;
    gofer::chan<int> b;
    auto cpu = [] {
      timespec ts;
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
      return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
    };
    auto before = cpu();
    auto wall0 = std::chrono::steady_clock::now();
    gofer::select(gofer::on_recv(a), gofer::on_recv(b), gofer::on_timeout(300ms));
    auto wall = std::chrono::steady_clock::now() - wall0;
    auto used = cpu() - before;
    INFO("cpu " << std::chrono::duration_cast<std::chrono::microseconds>(used).count() << " us over "
                << std::chrono::duration_cast<std::chrono::microseconds>(wall).count() << " us");
    CHECK(wall >= 300ms);
    // A spinning select would use all 300 ms; parked, it uses next to none.
    CHECK(used < 60ms);
  }, {.procs = 2});
}

// A select holds no handle of its channels: the last one may die while it
// waits. The channel must then last until the select has left its queue
// (under AddressSanitizer a channel freed first is reported, and one never
// freed is a leak).
TEST_CASE("a channel whose last handle dies while a select waits on it", "[select]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::chan<int> a;
    auto b = std::make_unique<gofer::chan<int>>();
    int got = 0;
    gofer::wait_group wg;
    wg.add(1);
    gofer::go([&, bs = b.get()] {
      gofer::select(gofer::on_recv(a, [&](std::optional<int> v) { got = v.value_or(-1); }),
                    gofer::on_recv(*bs, [&](std::optional<int>) { got = -2; }));
      wg.done();
    });
    REQUIRE(gofer::test::eventually([] { return gofer::test::fibers_waiting("select") == 1; }));
    b.reset();
    a.send(7);
    wg.wait();
    CHECK(got == 7);
  });
}

TEST_CASE("a reused send case sends its value again, as reflect.Select does", "[select]") {
  gofer::chan<std::string> c(2);
  std::vector<gofer::select_case> cases;
  int sent = 0;
  cases.emplace_back(gofer::on_send(c, std::string(40, 'x'), [&] { ++sent; }));
  CHECK(gofer::select(cases) == 0);
  CHECK(gofer::select(cases) == 0);
  CHECK(sent == 2);
  CHECK(*c.recv() == std::string(40, 'x'));
  CHECK(*c.recv() == std::string(40, 'x'));

  // A value that cannot be copied goes once; reusing the case is an error,
  // and the channel gets nothing more.
  gofer::chan<std::unique_ptr<int>> u(2);
  std::vector<gofer::select_case> once;
  once.emplace_back(gofer::on_send(u, std::make_unique<int>(7)));
  CHECK(gofer::select(once) == 0);
  CHECK_THROWS_WITH(gofer::select(once), Catch::Contains("move-only") && Catch::Contains("reused"));
  CHECK(u.size() == 1);
  CHECK(**u.recv() == 7);
}

TEST_CASE("select() with no cases parks a fiber for good and main's end abandons it",
          "[select]") {
  for (unsigned procs : {1u, 2u}) {
    INFO("procs=" << procs);
    const int result = gofer::run(
        [] {
          gofer::go(gofer::fiber_options{.name = "forever"}, [] { gofer::select(); });
          std::string dump;
          CHECK(gofer::test::eventually([&] {
            std::ostringstream os;
            gofer::dump_fibers(os);
            dump = os.str();
            return dump.find("\"forever\" [waiting: select (no cases)") != std::string::npos;
          }));
          // Main still runs (a sleep is a timer): no deadlock while it does.
          gofer::this_fiber::sleep_for(20ms);
          return 3;
        },
        {.procs = procs});
    CHECK(result == 3);
  }
}

TEST_CASE("select() with no cases is a deadlock when nothing else can run",
          "[select][death][child][deadlock]") {
  if (gofer::test::under_emulator()) {
    WARN("skipped under an emulator: its own threads count as live threads");
    return;
  }
  auto r = gofer::test::run_in_child(
      [] {
        try {
          gofer::run([] {
            gofer::go(gofer::fiber_options{.name = "idler"}, [] { gofer::select(); });
            gofer::select();
          });
        } catch (const gofer::deadlock_error&) {
          std::_Exit(0);
        }
        std::_Exit(1);
      },
      std::chrono::seconds(20));
  INFO(r.err);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("gofer: all fibers are asleep - deadlock!"));
  CHECK_THAT(r.err, Catch::Contains("\"main\" [waiting: select (no cases)"));
  CHECK_THAT(r.err, Catch::Contains("\"idler\" [waiting: select (no cases)"));
}

TEST_CASE("select() with no cases on a plain thread sleeps for good", "[select][thread][child]") {
  // In a child: the thread never ends, and the child exits around it.
  auto r = gofer::test::run_in_child([] {
    std::atomic<long> tid{0};
    std::atomic<bool> returned{false};
    std::thread([&] {
      tid = gofer::detail::current_tid();
      gofer::select();
      returned = true;
    }).detach();
    // Asleep in the kernel (a futex wait), not spinning and not returned.
    const bool asleep = gofer::test::eventually([&] {
      if (tid == 0) return false;
      std::ifstream f("/proc/self/task/" + std::to_string(tid.load()) + "/stat");
      std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      const auto paren = stat.rfind(')');
      return paren != std::string::npos && stat.compare(paren + 2, 1, "S") == 0;
    });
    std::_Exit(asleep && !returned ? 0 : 1);
  });
  INFO(r.err);
  CHECK(r.exit_code == 0);
}
