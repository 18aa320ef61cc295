// pool and pooled: factories, reuse, handles, exclusive ownership under load
// from fibers, threads and two runtimes, bounded memory, destruction.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <gofer/sync/pool.hpp>

#include "../support/runtime_fixture.hpp"

namespace {

// Counts its live instances, so a test sees what the pool deletes. 64 bytes,
// the size the fast path is tuned for.
struct counted {
  static inline std::atomic<int> live{0};
  counted() noexcept { live.fetch_add(1); }
  counted(const counted&) noexcept { live.fetch_add(1); }
  ~counted() { live.fetch_sub(1); }
  char payload[64] = {};
};

// An object that knows whether someone holds it. `owner` is written with
// plain stores by whoever holds the object: if the pool ever let two holders
// touch it without a happens-before edge between them, ThreadSanitizer
// reports the race even when the in_use flag happens to look right.
struct tracked {
  std::atomic<bool> in_use{false};
  std::uint64_t owner = 0;
};

// Takes an object and checks nobody else holds it; `give` reverses that.
bool take(tracked& t, std::uint64_t me) {
  bool fresh = !t.in_use.exchange(true, std::memory_order_acq_rel);
  t.owner = me;
  return fresh;
}
bool give(tracked& t, std::uint64_t me) {
  bool mine = t.owner == me;
  t.in_use.store(false, std::memory_order_release);
  return mine;
}

// A bounded amount of get/put traffic with up to three objects held at once,
// some of it held across a yield (so another fiber on the same P runs while
// objects are out) when called from a fiber. Returns the number of
// violations seen.
int hammer(gofer::pool<tracked>& p, std::uint64_t me, int rounds, bool in_fiber) {
  int bad = 0;
  for (int i = 0; i < rounds; ++i) {
    const int n = 1 + (i % 3);
    gofer::pooled<tracked> held[3];
    for (int k = 0; k < n; ++k) {
      held[k] = p.get();
      if (!take(*held[k], me)) ++bad;
    }
    if (in_fiber && i % 7 == 0) gofer::this_fiber::yield();
    for (int k = n; k-- > 0;) {
      if (!give(*held[k], me)) ++bad;
      if (i % 5 == 0) {
        p.put(held[k].release());  // the explicit way back
      } else {
        held[k].reset();
      }
    }
  }
  return bad;
}

}  // namespace

TEST_CASE("a default pool makes value-initialised objects", "[pool]") {
  gofer::pool<std::vector<int>> p;
  auto h = p.get();
  REQUIRE(h);
  CHECK(h->empty());
  gofer::pool<int> q;
  CHECK(*q.get() == 0);
  gofer::run([&] { CHECK(*q.get() == 0); });
}

TEST_CASE("a factory returning T makes the new objects", "[pool]") {
  struct no_default {
    explicit no_default(int v) : v(v) {}
    int v;
  };
  static_assert(!std::is_default_constructible_v<gofer::pool<no_default>>,
                "pool() needs T{}");
  int calls = 0;
  gofer::pool<no_default> p([&] {
    ++calls;
    return no_default(7);
  });
  auto h = p.get();
  CHECK(h->v == 7);
  CHECK(calls == 1);
  gofer::pool<std::string> s([] { return std::string(100, 'x'); });
  CHECK(s.get()->size() == 100);
}

TEST_CASE("a factory may return a unique_ptr, and a null one gives an empty handle", "[pool]") {
  gofer::pool<int> p([] { return std::make_unique<int>(42); });
  CHECK(*p.get() == 42);
  gofer::pool<int> none([] { return std::unique_ptr<int>(); });
  auto h = none.get();
  CHECK_FALSE(h);
  CHECK(h.get() == nullptr);
  CHECK(h.release() == nullptr);
}

TEST_CASE("an exception from the factory reaches the caller of get", "[pool]") {
  bool fail = true;
  gofer::pool<int> p([&]() -> int {
    if (fail) throw std::runtime_error("no objects today");
    return 5;
  });
  CHECK_THROWS_AS(p.get(), std::runtime_error);
  fail = false;
  CHECK(*p.get() == 5);
}

TEST_CASE("put then get reuses the object without calling the factory again", "[pool]") {
  // A fiber that does not block keeps its P, so it must get back exactly what
  // it put; a plain thread alone on the pool does too (the shared layer is
  // LIFO). Both are the steady state that must not allocate.
  std::atomic<int> calls{0};
  auto cycle = [&](gofer::pool<counted>& p) {
    counted* first = p.get().get();  // the temporary handle gives it back
    bool same = true;
    for (int i = 0; i < 10000; ++i) {
      auto h = p.get();
      same = same && h.get() == first;
    }
    return same;
  };
  SECTION("plain thread") {
    gofer::pool<counted> p([&] {
      calls.fetch_add(1);
      return counted();
    });
    CHECK(cycle(p));
    CHECK(calls.load() == 1);
  }
  SECTION("fibers") {
    gofer::test::for_each_sched([&](auto&&) {
      calls.store(0);
      gofer::pool<counted> p([&] {
        calls.fetch_add(1);
        return counted();
      });
      CHECK(cycle(p));
      CHECK(calls.load() == 1);
    });
  }
}

TEST_CASE("put of nullptr is ignored", "[pool]") {
  auto check = [] {
    int calls = 0;
    gofer::pool<int> p([&] { return ++calls; });
    p.put(nullptr);
    p.put(std::unique_ptr<int>());
    auto h = p.get();
    REQUIRE(h);
    CHECK(*h == 1);
    CHECK(calls == 1);
  };
  check();
  gofer::run(check);
}

TEST_CASE("release takes the object out of the pool", "[pool]") {
  const int base = counted::live.load();
  std::unique_ptr<counted> kept;
  {
    gofer::pool<counted> p;
    auto h = p.get();
    counted* raw = h.get();
    kept = h.release();
    CHECK_FALSE(h);
    CHECK(kept.get() == raw);
    auto h2 = p.get();  // not the released one: the pool no longer has it
    CHECK(h2.get() != raw);
  }
  // The pool deleted only what it owned.
  CHECK(counted::live.load() == base + 1);
  kept.reset();
  CHECK(counted::live.load() == base);
}

TEST_CASE("pooled handles move, and assignment gives the old object back", "[pool]") {
  gofer::pool<int> p;
  gofer::pooled<int> empty;
  CHECK_FALSE(empty);
  empty.reset();  // no-op

  auto a = p.get();
  int* ra = a.get();
  gofer::pooled<int> b(std::move(a));
  CHECK_FALSE(a);
  CHECK(b.get() == ra);

  auto c = p.get();
  int* rc = c.get();
  REQUIRE(rc != ra);
  c = std::move(b);  // rc goes back to the pool; c now holds ra
  CHECK(c.get() == ra);
  CHECK_FALSE(b);
  auto& self = c;
  c = std::move(self);  // self-move keeps the object
  CHECK(c.get() == ra);
  {
    auto d = p.get();  // LIFO on a lone thread: the one just returned
    CHECK(d.get() == rc);
  }
  c.reset();
  CHECK_FALSE(c);
  auto e = p.get();
  CHECK(e.get() == ra);
  *e = 3;
  CHECK(*e.get() == 3);
}

TEST_CASE("many fibers hammering one pool never share an object", "[pool]") {
  gofer::test::for_each_sched([](auto&&) {
    const int fibers = 32, rounds = gofer::test::scaled(2000);
    std::atomic<int> made{0}, bad{0};
    gofer::pool<tracked> p([&] {
      made.fetch_add(1);
      return std::make_unique<tracked>();
    });
    gofer::wait_group wg;
    wg.add(fibers);
    for (int f = 0; f < fibers; ++f) {
      gofer::go([&, f] {
        bad.fetch_add(hammer(p, 1 + f, rounds, true));
        wg.done();
      });
    }
    wg.wait();
    CHECK(bad.load() == 0);
    // Reuse happened: each round takes up to 3 objects; nearly all must have
    // come from the pool.
    CHECK(made.load() < fibers * rounds / 4);
  });
}

TEST_CASE("objects handed between fibers through a channel go back to the pool", "[pool]") {
  // Producers get, consumers drop: objects are put on other Ps than the ones
  // that got them, so per-P caches overflow into the shared layer and refill
  // from it. Plain writes to the object on both sides check that the pool
  // orders one holder's accesses before the next holder's.
  gofer::test::for_each_sched([](auto&&) {
    const int producers = 4, per_producer = gofer::test::scaled(5000);
    std::atomic<int> bad{0}, made{0};
    gofer::pool<tracked> p([&] {
      made.fetch_add(1);
      return std::make_unique<tracked>();
    });
    gofer::chan<gofer::pooled<tracked>> ch(8);
    gofer::wait_group sent, consumed;
    sent.add(producers);
    consumed.add(producers);
    for (int i = 0; i < producers; ++i) {
      gofer::go([&, i] {
        for (int k = 0; k < per_producer; ++k) {
          auto h = p.get();
          if (!take(*h, 100 + i)) bad.fetch_add(1);
          h->owner = 0;  // handed over
          ch.send(std::move(h));
        }
        sent.done();
      });
      gofer::go([&, i] {
        for (auto& h : ch) {  // ++ destroys the handle: back to the pool
          if (h->owner != 0) bad.fetch_add(1);
          h->owner = 200 + i;
          if (!give(*h, 200 + i)) bad.fetch_add(1);
        }
        consumed.done();
      });
    }
    sent.wait();
    ch.close();
    consumed.wait();
    CHECK(bad.load() == 0);
    CHECK(made.load() < producers * per_producer / 4);
  });
}

TEST_CASE("plain threads and fibers share one pool", "[pool]") {
  gofer::test::for_each_sched([](auto&&) {
    const int threads = 2, fibers = 8, rounds = gofer::test::scaled(3000);
    std::atomic<int> bad{0};
    gofer::pool<tracked> p;
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] { bad.fetch_add(hammer(p, 1000 + t, rounds, false)); });
    }
    gofer::wait_group wg;
    wg.add(fibers);
    for (int f = 0; f < fibers; ++f) {
      gofer::go([&, f] {
        bad.fetch_add(hammer(p, 1 + f, rounds, true));
        wg.done();
      });
    }
    wg.wait();
    gofer::blocking([&] {
      for (auto& t : ts) t.join();
    });
    CHECK(bad.load() == 0);
  });
}

TEST_CASE("two runtimes at once share one pool", "[pool]") {
  // One runtime owns the per-P caches; the other's fibers must use the shared
  // layer, never the owner's slots with the same P index.
  gofer::pool<tracked> p;
  std::atomic<int> bad{0}, started{0}, overlapped{0};
  auto body = [&](std::uint64_t id_base) {
    return [&, id_base] {
      started.fetch_add(1);
      // Both runtimes must be running at once, or the test proves nothing.
      if (gofer::test::eventually([&] { return started.load() == 2; })) overlapped.fetch_add(1);
      const int fibers = 8, rounds = gofer::test::scaled(3000);
      gofer::wait_group wg;
      wg.add(fibers);
      for (int f = 0; f < fibers; ++f) {
        gofer::go([&, f] {
          bad.fetch_add(hammer(p, id_base + f, rounds, true));
          wg.done();
        });
      }
      wg.wait();
    };
  };
  gofer::options o;
  o.procs = 2;
  std::thread other([&] { gofer::run(body(1000), o); });
  gofer::run(body(1), o);
  other.join();
  CHECK(overlapped.load() == 2);
  CHECK(bad.load() == 0);
}

TEST_CASE("a runtime started after the first one ended takes over its cached objects", "[pool]") {
  // The first run leaves objects in its P's cache. If the pool stayed bound
  // to the dead runtime they would be stranded and the second run would have
  // to make new ones.
  int made = 0;
  gofer::pool<int> p([&] { return ++made; });
  gofer::options o;
  o.procs = 1;
  gofer::run(
      [&] {
        std::vector<gofer::pooled<int>> hs;
        for (int i = 0; i < 4; ++i) hs.push_back(p.get());
      },
      o);
  REQUIRE(made == 4);
  o.procs = 2;
  gofer::run(
      [&] {
        std::vector<gofer::pooled<int>> hs;
        for (int i = 0; i < 4; ++i) hs.push_back(p.get());
      },
      o);
  CHECK(made == 4);
}

TEST_CASE("the pool keeps a bounded number of objects after a burst of puts", "[pool]") {
  using pool_t = gofer::pool<counted>;
  const int burst = 10000;
  const int base = counted::live.load();
  SECTION("plain thread") {
    pool_t p;
    for (int i = 0; i < burst; ++i) p.put(std::make_unique<counted>());
    CHECK(counted::live.load() - base <= int(2 * pool_t::shared_capacity));
  }
  SECTION("fibers") {
    gofer::test::for_each_sched([&](const gofer::test::sched_config& c) {
      pool_t p;
      const int fibers = 4;
      gofer::wait_group wg;
      wg.add(fibers);
      for (int f = 0; f < fibers; ++f) {
        gofer::go([&] {
          for (int i = 0; i < burst / fibers; ++i) p.put(std::make_unique<counted>());
          wg.done();
        });
      }
      wg.wait();
      const int bound = int(c.procs * pool_t::per_p_capacity + 2 * pool_t::shared_capacity);
      CHECK(counted::live.load() - base <= bound);
    });
  }
  CHECK(counted::live.load() == base);
}

TEST_CASE("objects the pool did not need for two rotations are deleted", "[pool]") {
  using pool_t = gofer::pool<counted>;
  const int base = counted::live.load();
  pool_t p;
  for (int i = 0; i < 100; ++i) p.put(std::make_unique<counted>());
  CHECK(counted::live.load() - base == 100);
  // Steady traffic that needs one object at a time: every get and put is one
  // shared-layer operation on a plain thread; three periods are enough for
  // the 99 surplus objects to be demoted to the victim generation and then
  // dropped with it.
  for (std::uint32_t i = 0; i < 3 * pool_t::rotation_period; ++i) {
    auto h = p.get();
  }
  CHECK(counted::live.load() - base <= 2);
}

TEST_CASE("destroying the pool deletes the objects it caches", "[pool]") {
  const int base = counted::live.load();
  SECTION("plain thread") {
    {
      gofer::pool<counted> p;
      for (int i = 0; i < 10; ++i) p.put(std::make_unique<counted>());
      CHECK(counted::live.load() == base + 10);
    }
    CHECK(counted::live.load() == base);
  }
  SECTION("fibers on every P, plus a thread") {
    gofer::test::for_each_sched([&](auto&&) {
      {
        gofer::pool<counted> p;
        const int fibers = 16;
        gofer::wait_group wg;
        wg.add(fibers);
        for (int f = 0; f < fibers; ++f) {
          gofer::go([&, f] {
            {
              std::vector<gofer::pooled<counted>> hs;
              for (int i = 0; i < 1 + f % 20; ++i) hs.push_back(p.get());
              if (f % 2) gofer::this_fiber::yield();
            }  // back to the pool, on whichever P this fiber is on now
            wg.done();
          });
        }
        std::thread t([&] { p.put(std::make_unique<counted>()); });
        wg.wait();
        gofer::blocking([&] { t.join(); });
        CHECK(counted::live.load() > base);
      }
      CHECK(counted::live.load() == base);
    });
  }
}
