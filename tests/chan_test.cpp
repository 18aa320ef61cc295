// gofer::chan, send_chan, recv_chan: every operation on unbuffered, buffered,
// nil and closed channels; FIFO order; close; move-only values; iteration;
// stress with many senders and receivers; fibers and threads in any mix.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gofer/gofer.hpp>

#include "support/runtime_fixture.hpp"
#include "support/subprocess.hpp"

using namespace std::chrono_literals;

namespace {

// Both shapes every operation must be right for.
const std::size_t capacities[] = {0, 1, 16};

std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const gofer::closed_channel_error& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

}  // namespace

TEST_CASE("values arrive in the order one sender sent them", "[chan]") {
  gofer::test::for_each_sched([](auto&&) {
    for (std::size_t cap : capacities) {
      INFO("capacity " << cap);
      gofer::chan<int> c(cap);
      gofer::go([c] {
        for (int i = 0; i < 1000; ++i) c.send(i);
        c.close();
      });
      int expect = 0;
      bool in_order = true;
      while (auto v = c.recv()) in_order = in_order && *v == expect++;
      CHECK(in_order);
      CHECK(expect == 1000);
    }
  });
}

TEST_CASE("an unbuffered send completes only when a receiver takes the value", "[chan]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::chan<int> c;
    gofer::chan<> taken;
    std::atomic<bool> send_returned{false};
    gofer::go([&] {
      c.send(7);
      send_returned = true;
      taken.close();
    });
    // However long the sender is given, it cannot finish before a receive.
    gofer::this_fiber::sleep_for(2ms);
    CHECK_FALSE(send_returned.load());
    CHECK(c.recv() == 7);
    taken.recv();
    CHECK(send_returned.load());
  });
}

TEST_CASE("a buffered channel takes capacity values without a receiver", "[chan]") {
  gofer::chan<int> c(3);
  CHECK(c.capacity() == 3);
  CHECK(c.size() == 0);
  c.send(1);
  c.send(2);
  CHECK(c.try_send(3));
  CHECK(c.size() == 3);
  int four = 4;
  CHECK_FALSE(c.try_send(four));
  CHECK(c.size() == 3);
  CHECK(c.try_recv() == 1);
  CHECK(c.recv() == 2);
  CHECK(c.recv() == 3);
  CHECK(c.try_recv() == std::nullopt);
  CHECK(c.size() == 0);
}

TEST_CASE("try_send and try_recv on an unbuffered channel need a waiting partner", "[chan]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::chan<int> c;
    CHECK_FALSE(c.try_send(1));
    CHECK(c.try_recv() == std::nullopt);
    gofer::go([c] { c.send(5); });
    std::optional<int> got;
    CHECK(gofer::test::eventually([&] { return (got = c.try_recv()).has_value(); }));
    CHECK(got == 5);
    gofer::chan<> ready;
    gofer::chan<> done;  // orders the receiver's write of `received` before the reads
    std::optional<int> received;
    gofer::go([&, c] {
      ready.close();
      received = c.recv();
      done.close();
    });
    ready.recv();
    CHECK(gofer::test::eventually([&] { return c.try_send(6); }));
    done.recv();
    CHECK(received.has_value());
    CHECK(received == 6);
  });
}

TEST_CASE("close lets receivers drain the buffer, then gives nullopt", "[chan]") {
  gofer::chan<std::string> c(4);
  c.send("a");
  c.send("b");
  c.close();
  CHECK(c.closed());
  CHECK(c.recv() == "a");
  CHECK(c.try_recv() == "b");
  CHECK(c.recv() == std::nullopt);
  CHECK(c.recv() == std::nullopt);
  CHECK(c.try_recv() == std::nullopt);
}

TEST_CASE("misuse throws closed_channel_error saying what was misused", "[chan]") {
  for (std::size_t cap : capacities) {
    INFO("capacity " << cap);
    gofer::chan<int> c(cap);
    c.close();
    CHECK(what_of([&] { c.send(1); }) == "gofer: send on closed channel");
    CHECK(what_of([&] { c.try_send(1); }) == "gofer: send on closed channel");
    CHECK(what_of([&] { c.close(); }) == "gofer: close of closed channel");
  }
  gofer::chan<int> n(gofer::nil);
  CHECK(what_of([&] { n.close(); }) == "gofer: close of nil channel");
  CHECK(std::is_base_of_v<std::logic_error, gofer::closed_channel_error>);
}

TEST_CASE("a capacity whose buffer cannot be addressed throws, as Go's make panics", "[chan]") {
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  // A negative capacity, converted; and one whose byte size wraps around to
  // 8, which must not become an 8-byte buffer.
  CHECK_THROWS_AS(gofer::chan<int>(static_cast<std::size_t>(-1)), std::length_error);
  CHECK_THROWS_AS(gofer::chan<std::uint64_t>(max / 8 + 2), std::length_error);
  // No payload, no buffer: any capacity is fine.
  gofer::chan<> signals(max);
  CHECK(signals.capacity() == max);
  CHECK(signals.try_send({}));
  CHECK(signals.size() == 1);
}

TEST_CASE("a try_send that fails or throws leaves a move-only value untouched", "[chan]") {
  gofer::chan<std::unique_ptr<int>> c(1);
  CHECK(c.try_send(std::make_unique<int>(1)));
  auto p = std::make_unique<int>(2);
  CHECK_FALSE(c.try_send(std::move(p)));
  REQUIRE(p != nullptr);
  CHECK(*p == 2);
  c.close();
  CHECK_THROWS_AS(c.try_send(std::move(p)), gofer::closed_channel_error);
  REQUIRE(p != nullptr);
  CHECK(*p == 2);
  // The buffered value survives close and is received.
  auto first = c.recv();
  REQUIRE(first.has_value());
  CHECK(**first == 1);
}

TEST_CASE("closing wakes parked receivers with nullopt and parked senders with an error",
          "[chan]") {
  gofer::test::for_each_sched([](auto&&) {
    for (std::size_t cap : capacities) {
      INFO("capacity " << cap);
      gofer::chan<int> c(cap);
      for (std::size_t i = 0; i < cap; ++i) c.send(0);  // full: senders will park
      constexpr int n = 8;
      std::atomic<int> senders_threw{0};
      std::atomic<int> started{0};
      gofer::wait_group wg;
      wg.add(n);
      for (int i = 0; i < n; ++i) {
        gofer::go([&, c] {
          ++started;
          try {
            c.send(1);
          } catch (const gofer::closed_channel_error&) {
            ++senders_threw;
          }
          wg.done();
        });
      }
      // Most are parked by now (none can get in: the channel is full and
      // nobody receives); one that is not yet finds the channel closed. Either
      // way, each must throw, and the buffered values must stay.
      CHECK(gofer::test::eventually([&] { return started == n; }));
      for (int i = 0; i < 10; ++i) gofer::this_fiber::yield();
      c.close();
      wg.wait();
      CHECK(senders_threw == n);
      std::size_t drained = 0;
      while (c.recv()) ++drained;
      CHECK(drained == cap);

      gofer::chan<int> r(cap);
      std::atomic<int> got_nullopt{0};
      wg.add(n);
      for (int i = 0; i < n; ++i) {
        gofer::go([&, r] {
          if (!r.recv()) ++got_nullopt;
          wg.done();
        });
      }
      for (int i = 0; i < 10; ++i) gofer::this_fiber::yield();
      r.close();
      wg.wait();
      CHECK(got_nullopt == n);
    }
  });
}

TEST_CASE("the nil channel: never ready, size 0, false as a bool", "[chan]") {
  gofer::chan<int> n(gofer::nil);
  CHECK_FALSE(static_cast<bool>(n));
  CHECK(static_cast<bool>(gofer::chan<int>()));
  CHECK(n.size() == 0);
  CHECK(n.capacity() == 0);
  CHECK_FALSE(n.closed());
  CHECK_FALSE(n.try_send(1));
  CHECK(n.try_recv() == std::nullopt);
  gofer::send_chan<int> s = gofer::nil;
  gofer::recv_chan<int> r = gofer::nil;
  CHECK_FALSE(static_cast<bool>(s));
  CHECK_FALSE(static_cast<bool>(r));
  CHECK(s == n);
}

TEST_CASE("a receive on the nil channel blocks forever: run reports the deadlock",
          "[chan][death][child][deadlock]") {
  if (gofer::test::under_emulator()) {
    WARN("skipped under an emulator: its own threads count as live threads");
    return;
  }
  auto r = gofer::test::run_in_child([] {
    try {
      gofer::run([] {
        gofer::chan<int> n(gofer::nil);
        n.recv();
      });
    } catch (const gofer::deadlock_error&) {
      std::_Exit(0);
    }
    std::_Exit(1);
  }, std::chrono::seconds(20));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("\"main\" [waiting: chan (nil)"));
}

TEST_CASE("a receive nobody will answer is reported as a deadlock and leaves the queue",
          "[chan][death][child][deadlock]") {
  if (gofer::test::under_emulator()) {
    WARN("skipped under an emulator: its own threads count as live threads");
    return;
  }
  auto r = gofer::test::run_in_child([] {
    gofer::chan<int> c;
    try {
      gofer::run([&] { c.recv(); });
    } catch (const gofer::deadlock_error&) {
      // The waiter has left the channel: a send now finds no receiver.
      std::_Exit(c.try_send(1) ? 2 : 0);
    }
    std::_Exit(1);
  }, std::chrono::seconds(20));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("\"main\" [waiting: chan receive"));
}

TEST_CASE("range-for receives until the channel is closed and drained", "[chan]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::chan<int> c(8);
    gofer::go([c] {
      for (int i = 1; i <= 100; ++i) c.send(i);
      c.close();
    });
    int sum = 0;
    int count = 0;
    for (int v : c) {
      sum += v;
      ++count;
    }
    CHECK(count == 100);
    CHECK(sum == 5050);
  });
}

TEST_CASE("move-only values are handed over, never copied or lost", "[chan]") {
  gofer::test::for_each_sched([](auto&&) {
    for (std::size_t cap : capacities) {
      gofer::chan<std::unique_ptr<int>> c(cap);
      gofer::go([c] {
        for (int i = 0; i < 100; ++i) c.send(std::make_unique<int>(i));
        c.close();
      });
      int sum = 0;
      for (auto& p : c) sum += *p;
      CHECK(sum == 4950);
    }
  });
}

// Records, in every constructor, whether the object sits at an address its
// alignment allows: a misaligned buffer slot shows here.
template <std::size_t Align>
struct alignas(Align) aligned_value {
  static inline std::atomic<int> misplaced{0};
  int v = 0;
  explicit aligned_value(int x) : v(x) { check(); }
  aligned_value(aligned_value&& o) noexcept : v(o.v) { check(); }
  aligned_value& operator=(aligned_value&&) noexcept = default;
  void check() const noexcept {
    if (reinterpret_cast<std::uintptr_t>(this) % Align != 0) ++misplaced;
  }
};

TEMPLATE_TEST_CASE("buffered values keep their type's alignment, small buffers and large", "[chan]",
                   aligned_value<16>, aligned_value<64>) {
  gofer::test::for_each_sched([](auto&&) {
    for (std::size_t cap : {std::size_t{1}, std::size_t{3}, std::size_t{100}}) {
      INFO("capacity " << cap);
      gofer::chan<TestType> c(cap);
      int sum = 0;
      for (int round = 0; round < 3; ++round) {
        for (std::size_t i = 0; i < cap; ++i) c.send(TestType(static_cast<int>(i)));
        for (std::size_t i = 0; i < cap; ++i) sum += c.recv()->v;
      }
      CHECK(sum == 3 * static_cast<int>(cap * (cap - 1) / 2));
    }
    CHECK(TestType::misplaced == 0);
  });
}

TEST_CASE("chan<> signals without a payload, and close broadcasts", "[chan]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::chan<> done;
    gofer::chan<> ack(16);
    std::atomic<int> woken{0};
    for (int i = 0; i < 10; ++i) {
      gofer::go([&, done, ack] {
        done.recv();
        ++woken;
        ack.send({});
      });
    }
    done.close();
    for (int i = 0; i < 10; ++i) CHECK(ack.recv().has_value());
    CHECK(woken == 10);
  });
}

TEST_CASE("views share the channel and compare equal to it", "[chan]") {
  gofer::chan<int> c(2);
  gofer::send_chan<int> s = c;
  gofer::recv_chan<int> r = c;
  gofer::chan<int> copy = c;
  CHECK(s == c);
  CHECK(r == c);
  CHECK(copy == c);
  CHECK_FALSE(c == gofer::chan<int>(2));
  s.send(1);
  CHECK(s.try_send(2));
  CHECK(s.size() == 2);
  CHECK(r.capacity() == 2);
  CHECK(r.recv() == 1);
  CHECK(r.try_recv() == 2);
  s.close();
  CHECK(r.closed());
  CHECK(r.recv() == std::nullopt);
}

TEST_CASE("many senders and receivers: every value arrives exactly once", "[chan][stress]") {
  gofer::test::for_each_sched([](auto&&) {
    for (std::size_t cap : capacities) {
      INFO("capacity " << cap);
      constexpr int senders = 8;
      constexpr int receivers = 8;
      const int per_sender = gofer::test::scaled(2000);
      gofer::chan<std::int64_t> c(cap);
      gofer::wait_group sent;
      gofer::wait_group received;
      std::atomic<std::int64_t> sum{0};
      std::atomic<std::int64_t> count{0};
      sent.add(senders);
      received.add(receivers);
      for (int s = 0; s < senders; ++s) {
        gofer::go([&, c, s] {
          for (int i = 0; i < per_sender; ++i) c.send(std::int64_t{s} * per_sender + i);
          sent.done();
        });
      }
      for (int r = 0; r < receivers; ++r) {
        gofer::go([&, c] {
          std::int64_t local_sum = 0;
          std::int64_t local_count = 0;
          for (std::int64_t v : c) {
            local_sum += v;
            ++local_count;
          }
          sum += local_sum;
          count += local_count;
          received.done();
        });
      }
      sent.wait();
      c.close();
      received.wait();
      const std::int64_t n = std::int64_t{senders} * per_sender;
      CHECK(count == n);
      CHECK(sum == n * (n - 1) / 2);
    }
  });
}

TEST_CASE("threads and fibers exchange values in every direction", "[chan][thread]") {
  gofer::test::for_each_sched([](auto&&) {
    for (std::size_t cap : {std::size_t{0}, std::size_t{4}}) {
      INFO("capacity " << cap);
      const int n = gofer::test::scaled(2000);
      gofer::chan<int> to_fiber(cap);
      gofer::chan<int> to_thread(cap);
      gofer::chan<long> results(2);
      // thread -> fiber
      std::thread producer([&] {
        for (int i = 0; i < n; ++i) to_fiber.send(i);
        to_fiber.close();
      });
      gofer::go([&] {
        long s = 0;
        for (int v : to_fiber) s += v;
        results.send(s);
      });
      // fiber -> thread
      gofer::go([&] {
        for (int i = 0; i < n; ++i) to_thread.send(i);
        to_thread.close();
      });
      std::thread consumer([&] {
        long s = 0;
        for (int v : to_thread) s += v;
        results.send(s);
      });
      const long expect = long{n} * (n - 1) / 2;
      CHECK(results.recv() == expect);
      CHECK(results.recv() == expect);
      // The threads finish on their own now; joining does not block the P
      // for long.
      gofer::blocking([&] {
        producer.join();
        consumer.join();
      });
    }
  });
}

TEST_CASE("two plain threads talk over a channel without any fiber", "[chan][thread]") {
  gofer::chan<int> c;
  gofer::chan<int> back;
  std::thread t([&] {
    for (auto v = c.recv(); v; v = c.recv()) back.send(*v * 2);
    back.close();
  });
  int sum = 0;
  for (int i = 0; i < 100; ++i) {
    c.send(i);
    sum += *back.recv();
  }
  c.close();
  CHECK_FALSE(back.recv().has_value());
  t.join();
  CHECK(sum == 9900);
}

// Go programs end with goroutines still blocked all the time. Here the
// fibers wait through references to main's channels, whose last handles die
// when main returns: each channel must outlive its waiters, which the
// runtime takes off as it ends (under AddressSanitizer a channel freed
// first is reported; elsewhere it can hang, hence the child).
TEST_CASE("run may return while fibers wait on channels that die with main", "[chan][child]") {
  auto r = gofer::test::run_in_child([] {
    gofer::run([] {
      gofer::chan<int> c, e, f;
      gofer::chan<int> d(1);
      d.send(0);  // full: the select's send case blocks
      gofer::go([&] { c.recv(); });
      gofer::go([&] { gofer::select(gofer::on_recv(e), gofer::on_send(d, 1)); });
      gofer::go([&] { f.send(1); });
      const bool parked = gofer::test::eventually([] {
        return gofer::test::fibers_waiting("chan receive") == 1 &&
               gofer::test::fibers_waiting("select") == 1 &&
               gofer::test::fibers_waiting("chan send") == 1;
      });
      if (!parked) std::_Exit(2);
    });
    std::_Exit(0);
  }, std::chrono::seconds(20));
  INFO(r.err);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
}
