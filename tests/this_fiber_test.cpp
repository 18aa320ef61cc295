// this_fiber: id, in_fiber, yield, sleep_for, sleep_until — in fibers and on
// plain threads; and the C++ exception state a fiber keeps across them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <set>
#include <thread>
#include <vector>

#include <gofer/gofer.hpp>

#include "support/runtime_fixture.hpp"

using namespace std::chrono_literals;

TEST_CASE("id is unique per fiber and 0 outside", "[this_fiber]") {
  CHECK(gofer::this_fiber::id() == 0);
  CHECK_FALSE(gofer::this_fiber::in_fiber());
  gofer::test::for_each_sched([](auto&&) {
    CHECK(gofer::this_fiber::in_fiber());
    CHECK(gofer::this_fiber::id() != 0);
    constexpr int n = 500;
    std::vector<std::uint64_t> ids(n);
    std::atomic<int> unstable{0};
    gofer::wait_group wg;
    wg.add(n);
    for (int i = 0; i < n; ++i) {
      gofer::go([&, i] {
        ids[i] = gofer::this_fiber::id();
        gofer::this_fiber::yield();
        if (ids[i] != gofer::this_fiber::id()) unstable.fetch_add(1);  // stable across a switch
        wg.done();
      });
    }
    wg.wait();
    CHECK(unstable.load() == 0);
    std::set<std::uint64_t> unique(ids.begin(), ids.end());
    CHECK(unique.size() == n);
    CHECK(unique.count(0) == 0);
  });
}

TEST_CASE("yield lets the other fibers of a P run", "[this_fiber]") {
  gofer::run(
      [] {
        std::vector<int> order;
        gofer::wait_group wg;
        wg.add(2);
        for (int who = 0; who < 2; ++who) {
          gofer::go([&, who] {
            for (int i = 0; i < 3; ++i) {
              order.push_back(who);
              gofer::this_fiber::yield();
            }
            wg.done();
          });
        }
        wg.wait();
        // One P, two fibers yielding: they alternate.
        REQUIRE(order.size() == 6);
        for (std::size_t i = 1; i < order.size(); ++i) CHECK(order[i] != order[i - 1]);
      },
      {.procs = 1});
}

TEST_CASE("yield outside a fiber and with nothing else to run returns", "[this_fiber]") {
  gofer::this_fiber::yield();
  gofer::run([] { gofer::this_fiber::yield(); }, {.procs = 1});
  SUCCEED();
}

TEST_CASE("sleep_for sleeps at least the duration, in fibers and threads", "[this_fiber]") {
  auto t0 = std::chrono::steady_clock::now();
  gofer::this_fiber::sleep_for(5ms);
  CHECK(std::chrono::steady_clock::now() - t0 >= 5ms);
  gofer::test::for_each_sched([](auto&&) {
    auto start = std::chrono::steady_clock::now();
    gofer::this_fiber::sleep_for(10ms);
    CHECK(std::chrono::steady_clock::now() - start >= 10ms);
    gofer::this_fiber::sleep_for(-5ms);  // returns at once, as time.Sleep
    gofer::this_fiber::sleep_for(0s);
  });
}

TEST_CASE("sleeping fibers wake in deadline order and do not block their P", "[this_fiber]") {
  gofer::run(
      [] {
        struct wake {
          int i;
          std::chrono::steady_clock::time_point at;
        };
        std::vector<wake> woke;
        gofer::wait_group wg;
        const auto start = std::chrono::steady_clock::now();
        for (int i : {3, 1, 2}) {
          wg.add(1);
          gofer::go([&, i] {
            gofer::this_fiber::sleep_until(start + i * 15ms);
            woke.push_back({i, std::chrono::steady_clock::now()});
            wg.done();
          });
        }
        // While they sleep, the single P keeps running this fiber.
        int spins = 0;
        while (woke.empty()) {
          ++spins;
          gofer::this_fiber::yield();
        }
        wg.wait();
        CHECK(spins > 0);
        REQUIRE(woke.size() == 3);
        // No fiber wakes before its deadline, so none wakes while one with an
        // earlier deadline still sleeps: the order is the deadlines' order,
        // except among fibers that were due together because the machine
        // stalled this process past a later deadline (then either order is
        // right, as in Go).
        for (const wake& w : woke) {
          INFO("fiber " << w.i);
          CHECK(w.at >= start + w.i * 15ms);
        }
        if (woke[0].at < start + 30ms && woke[1].at < start + 45ms) {
          CHECK((woke[0].i == 1 && woke[1].i == 2 && woke[2].i == 3));
        }
      },
      {.procs = 1});
}

TEST_CASE("sleep_until with steady and system clocks", "[this_fiber]") {
  gofer::run([] {
    auto start = std::chrono::steady_clock::now();
    gofer::this_fiber::sleep_until(start + 10ms);
    CHECK(std::chrono::steady_clock::now() >= start + 10ms);
    auto sys = std::chrono::system_clock::now();
    gofer::this_fiber::sleep_until(sys + 5ms);
    CHECK(std::chrono::system_clock::now() >= sys + 5ms);
  });
}

TEST_CASE("many sleepers on several Ps all wake", "[this_fiber]") {
  gofer::test::for_each_sched([](auto&&) {
    constexpr int n = 2000;
    std::atomic<int> woke{0};
    gofer::wait_group wg;
    wg.add(n);
    for (int i = 0; i < n; ++i) {
      gofer::go([&, i] {
        gofer::this_fiber::sleep_for(std::chrono::microseconds(100 * (i % 50)));
        woke.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();
    CHECK(woke.load() == n);
  });
}

// ---- Exception state is per fiber (API.md §10) ------------------------------
//
// The C++ runtime keeps the exceptions being handled and the count of those
// being unwound for per thread; a fiber parked inside a handler or inside an
// unwinding destructor must get its own back wherever it resumes, and the
// fibers that run meanwhile on its thread must not see it.

namespace {

// An exception that says which fiber threw it.
struct fiber_error {
  int owner;
};

// The owner of the fiber_error `e` holds, or -1.
int owner_of(const std::exception_ptr& e) {
  if (!e) return -1;
  try {
    std::rethrow_exception(e);
  } catch (const fiber_error& fe) {
    return fe.owner;
  } catch (...) {
  }
  return -1;
}

bool holds_no_exception() { return std::current_exception() == nullptr && std::uncaught_exceptions() == 0; }

// Where fibers park until the test lets them go on; each parks in one of the
// three ways a handler would: yield, sleep, or a channel receive.
class gate {
 public:
  void wait(int how) {
    switch (how % 3) {
      case 0:
        while (!open_.load()) gofer::this_fiber::yield();
        break;
      case 1:
        while (!open_.load()) gofer::this_fiber::sleep_for(200us);
        break;
      default:
        closed_.recv();  // returns once closed
        break;
    }
  }
  void open() {
    open_.store(true);
    closed_.close();
  }

 private:
  std::atomic<bool> open_{false};
  gofer::chan<> closed_;
};

// What one fiber saw; each fiber writes only its own.
struct exception_view {
  int unwinding_before_park = -1;  // uncaught_exceptions() in a destructor run by unwinding
  int unwinding_after_park = -1;
  int caught = -1;  // current_exception()'s owner in the handler, after a park
  int uncaught_in_handler = -1;
  bool rethrew_own = false;  // `throw;` in a nested try threw the same object
  int inner = -1;            // a second exception, handled inside the first, after a park
  int outer_after_inner = -1;
  bool clean_after = false;  // nothing left once the handler is done
};

}  // namespace

TEST_CASE("a fiber parked inside a catch block or an unwinding destructor keeps its exception",
          "[this_fiber][exceptions]") {
  gofer::test::for_each_sched([](auto&&) {
    constexpr int n = 200;
    std::vector<exception_view> seen(n);
    gofer::wait_group unwinding, handling, nested, finished;
    unwinding.add(n);
    handling.add(n);
    nested.add(n);
    finished.add(n);
    gate in_destructor, in_handler, in_inner_handler;

    struct parks_in_destructor {
      exception_view& v;
      gofer::wait_group& arrived;
      gate& g;
      int how;
      ~parks_in_destructor() {
        v.unwinding_before_park = std::uncaught_exceptions();
        arrived.done();
        g.wait(how);
        v.unwinding_after_park = std::uncaught_exceptions();
      }
    };

    for (int i = 0; i < n; ++i) {
      gofer::go([&, i] {
        exception_view& v = seen[static_cast<std::size_t>(i)];
        try {
          parks_in_destructor p{v, unwinding, in_destructor, i};
          throw fiber_error{i};
        } catch (const fiber_error& e) {
          handling.done();
          in_handler.wait(i + 1);
          v.caught = owner_of(std::current_exception());
          v.uncaught_in_handler = std::uncaught_exceptions();
          try {
            throw;
          } catch (const fiber_error& again) {
            v.rethrew_own = &again == &e;
          }
          try {
            throw fiber_error{n + i};
          } catch (const fiber_error&) {
            nested.done();
            in_inner_handler.wait(i + 2);
            v.inner = owner_of(std::current_exception());
          }
          v.outer_after_inner = owner_of(std::current_exception());
        }
        v.clean_after = holds_no_exception();
        finished.done();
      });
    }
    // Every fiber is parked holding exception state at each step; this one,
    // which holds none, runs between them on the same threads.
    unwinding.wait();
    CHECK(holds_no_exception());
    in_destructor.open();
    handling.wait();
    CHECK(holds_no_exception());
    in_handler.open();
    nested.wait();
    CHECK(holds_no_exception());
    in_inner_handler.open();
    finished.wait();
    CHECK(holds_no_exception());

    auto count = [&](auto pred) { return std::count_if(seen.begin(), seen.end(), pred); };
    CHECK(count([](const exception_view& v) { return v.unwinding_before_park != 1; }) == 0);
    CHECK(count([](const exception_view& v) { return v.unwinding_after_park != 1; }) == 0);
    CHECK(count([](const exception_view& v) { return v.uncaught_in_handler != 0; }) == 0);
    CHECK(count([](const exception_view& v) { return !v.rethrew_own; }) == 0);
    CHECK(count([](const exception_view& v) { return !v.clean_after; }) == 0);
    for (int i = 0; i < n; ++i) {
      const exception_view& v = seen[static_cast<std::size_t>(i)];
      INFO("fiber " << i);
      if (v.caught != i) CHECK(v.caught == i);
      if (v.inner != n + i) CHECK(v.inner == n + i);
      if (v.outer_after_inner != i) CHECK(v.outer_after_inner == i);
    }
  });
}

TEST_CASE("an exception caught in one fiber is rethrown in another while both handle it",
          "[this_fiber][exceptions]") {
  gofer::test::for_each_sched([](auto&&) {
    constexpr int pairs = 100;
    std::atomic<int> wrong{0};
    gofer::wait_group wg;
    wg.add(2 * pairs);
    for (int i = 0; i < pairs; ++i) {
      gofer::chan<std::exception_ptr> handoff;
      gofer::chan<> both_handling, other_done;
      gofer::go([&wg, &wrong, handoff, both_handling, other_done, i] {
        try {
          throw fiber_error{i};
        } catch (const fiber_error& e) {
          handoff.send(std::current_exception());  // parks until taken
          both_handling.recv();                    // parks until the other is in its handler
          try {
            throw;
          } catch (const fiber_error& again) {
            if (&again != &e || again.owner != i) wrong.fetch_add(1);
          }
          // The last reference frees the exception, and the C++ runtime's
          // reference count is invisible to ThreadSanitizer: end this handler
          // (the last reference) only once the other fiber said it is done.
          other_done.recv();
        }
        if (!holds_no_exception()) wrong.fetch_add(1);
        wg.done();
      });
      gofer::go([&wg, &wrong, handoff, both_handling, other_done, i] {
        {
          std::exception_ptr p = *handoff.recv();
          try {
            std::rethrow_exception(p);
          } catch (const fiber_error& e) {
            both_handling.close();
            gofer::this_fiber::yield();
            if (e.owner != i || owner_of(std::current_exception()) != i) wrong.fetch_add(1);
          }
        }
        if (!holds_no_exception()) wrong.fetch_add(1);
        other_done.close();
        wg.done();
      });
    }
    wg.wait();
    CHECK(wrong.load() == 0);
  });
}
