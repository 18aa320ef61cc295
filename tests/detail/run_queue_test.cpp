// The P-local run queue: FIFO, runnext, overflow, and concurrent stealing
// (every fiber taken exactly once).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include <gofer/detail/sched/run_queue.hpp>

using gofer::detail::fiber;
using gofer::detail::run_queue;

namespace {
std::vector<fiber> make_fibers(std::size_t n) { return std::vector<fiber>(n); }
}  // namespace

TEST_CASE("run_queue is FIFO behind runnext", "[run_queue]") {
  auto fs = make_fibers(4);
  auto q = std::make_unique<run_queue>();
  CHECK(q->pop() == nullptr);
  CHECK(q->push(&fs[0]));
  CHECK(q->push(&fs[1]));
  CHECK(q->set_runnext(&fs[2]) == nullptr);
  CHECK(q->set_runnext(&fs[3]) == &fs[2]);  // the displaced one is returned
  CHECK(q->size() == 3);
  CHECK(q->pop() == &fs[3]);
  CHECK(q->pop() == &fs[0]);
  CHECK(q->pop() == &fs[1]);
  CHECK(q->pop() == nullptr);
}

TEST_CASE("run_queue refuses a push when full and take_half empties half", "[run_queue]") {
  auto fs = make_fibers(run_queue::capacity + 1);
  auto q = std::make_unique<run_queue>();
  for (std::uint32_t i = 0; i < run_queue::capacity; ++i) REQUIRE(q->push(&fs[i]));
  CHECK_FALSE(q->push(&fs[run_queue::capacity]));
  fiber* half[run_queue::capacity / 2];
  CHECK(q->take_half(half) == run_queue::capacity / 2);
  CHECK(half[0] == &fs[0]);
  CHECK(q->size() == run_queue::capacity / 2);
}

TEST_CASE("stealing takes half and the stolen fiber is returned", "[run_queue]") {
  auto fs = make_fibers(10);
  auto victim = std::make_unique<run_queue>();
  auto thief = std::make_unique<run_queue>();
  for (auto& f : fs) victim->push(&f);
  fiber* got = thief->steal_from(*victim, false);
  REQUIRE(got != nullptr);
  CHECK(thief->size() + 1 + victim->size() == 10);
  CHECK(victim->size() == 5);
}

TEST_CASE("runnext is stolen only when asked", "[run_queue]") {
  fiber f;
  auto victim = std::make_unique<run_queue>();
  auto thief = std::make_unique<run_queue>();
  victim->set_runnext(&f);
  CHECK(thief->steal_from(*victim, false) == nullptr);
  CHECK(thief->steal_from(*victim, true) == &f);
  CHECK(victim->pop() == nullptr);
}

TEST_CASE("concurrent owner and thieves take every fiber exactly once", "[run_queue]") {
  constexpr int total = 200000;
  auto fs = make_fibers(total);
  std::vector<std::atomic<int>> taken(total);
  auto owner_q = std::make_unique<run_queue>();
  std::atomic<int> consumed{0};
  std::atomic<bool> producing{true};
  auto record = [&](fiber* f) {
    taken[f - fs.data()].fetch_add(1);
    consumed.fetch_add(1);
  };
  std::vector<std::thread> thieves;
  for (int t = 0; t < 2; ++t) {
    thieves.emplace_back([&] {
      auto mine = std::make_unique<run_queue>();
      while (producing.load() || owner_q->size() > 0) {
        if (fiber* f = mine->steal_from(*owner_q, true)) {
          record(f);
          while (fiber* g = mine->pop()) record(g);
        }
      }
    });
  }
  for (int i = 0; i < total; ++i) {
    while (!owner_q->push(&fs[i])) {
      if (fiber* f = owner_q->pop()) record(f);
    }
    if (i % 7 == 0) {
      if (fiber* f = owner_q->pop()) record(f);
    }
  }
  producing = false;
  while (fiber* f = owner_q->pop()) record(f);
  for (auto& t : thieves) t.join();
  CHECK(consumed.load() == total);
  int wrong = 0;
  for (auto& t : taken) wrong += t.load() != 1;
  CHECK(wrong == 0);
}

TEST_CASE("the global queue stays FIFO while it wraps, grows and drains", "[run_queue]") {
  using gofer::detail::global_queue;
  auto fs = make_fibers(5000);
  global_queue q;
  CHECK(q.pop_batch(8, [](fiber*) { FAIL("nothing to take"); }) == nullptr);

  // Pushes and takes interleaved so the head goes round the ring, then a
  // batch push that makes it grow while it has wrapped.
  std::size_t pushed = 0;
  std::vector<fiber*> order;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 100; ++i) q.push(&fs[pushed++]);
    std::vector<fiber*> batch;
    fiber* first = q.pop_batch(70, [&](fiber* f) { batch.push_back(f); });
    REQUIRE(first != nullptr);
    order.push_back(first);
    order.insert(order.end(), batch.begin(), batch.end());
  }
  std::vector<fiber*> many;
  for (int i = 0; i < 3000; ++i) many.push_back(&fs[pushed++]);
  q.push_batch(many.data(), static_cast<std::uint32_t>(many.size()));
  CHECK(q.size() == pushed - order.size());
  while (q.size() != 0) {
    std::vector<fiber*> batch;
    fiber* first = q.pop_batch(1000, [&](fiber* f) { batch.push_back(f); });
    REQUIRE(first != nullptr);
    order.push_back(first);
    order.insert(order.end(), batch.begin(), batch.end());
  }
  REQUIRE(order.size() == pushed);
  for (std::size_t i = 0; i < pushed; ++i) REQUIRE(order[i] == &fs[i]);

  // Drained from a large size, it gives its ring back and works on.
  q.push(&fs[0]);
  q.push(&fs[1]);
  CHECK(q.pop_batch(1, [](fiber*) { FAIL("asked for one"); }) == &fs[0]);
  CHECK(q.size() == 1);
}

// Pushers racing to grow the ring (each grows it outside the lock and may
// find it already grown, or too small again) lose and duplicate nothing.
TEST_CASE("the global queue grows under racing pushers and loses nothing", "[run_queue]") {
  using gofer::detail::global_queue;
  constexpr int pushers = 4;
  constexpr int per_pusher = 20000;
  auto fs = make_fibers(pushers * per_pusher);
  global_queue q;
  std::vector<std::atomic<int>> taken(fs.size());
  std::atomic<int> done_pushing{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < pushers; ++t) {
    threads.emplace_back([&, t] {
      fiber* base = &fs[static_cast<std::size_t>(t) * per_pusher];
      // Batches of growing size, so a push often needs a bigger ring.
      for (int i = 0, n = 1; i < per_pusher; i += n, n = n % 700 + 1) {
        std::vector<fiber*> batch;
        for (int k = i; k < std::min(i + n, per_pusher); ++k) batch.push_back(base + k);
        if (batch.size() == 1) {
          q.push(batch[0]);
        } else {
          q.push_batch(batch.data(), static_cast<std::uint32_t>(batch.size()));
        }
      }
      done_pushing.fetch_add(1);
    });
  }
  auto record = [&](fiber* f) { taken[static_cast<std::size_t>(f - fs.data())].fetch_add(1); };
  std::size_t consumed = 0;
  for (;;) {
    const bool last_look = done_pushing.load() == pushers;
    while (fiber* f = q.pop_batch(300, [&](fiber* g) {
      record(g);
      ++consumed;
    })) {
      record(f);
      ++consumed;
    }
    if (last_look) break;
  }
  for (auto& t : threads) t.join();
  CHECK(consumed == fs.size());
  int wrong = 0;
  for (auto& t : taken) wrong += t.load() != 1;
  CHECK(wrong == 0);
}
