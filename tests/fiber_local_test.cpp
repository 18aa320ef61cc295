// fiber_local<T>: one instance per fiber (not per thread), kept across
// parks and moves between threads, destroyed when the fiber's function
// returns; plain threads get their own.
#include <atomic>
#include <catch2/catch.hpp>
#include <gofer/gofer.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/runtime_fixture.hpp"

namespace {

std::atomic<int> alive{0};

struct counted {
  int value = 0;
  counted() { alive.fetch_add(1); }
  ~counted() { alive.fetch_sub(1); }
};

}  // namespace

TEST_CASE("each fiber has its own instance, kept across parks and threads", "[fiber_local]") {
  gofer::test::for_each_sched([](auto&&) {
    gofer::fiber_local<std::string> tag;
    constexpr int n = 200;
    std::atomic<int> wrong{0};
    gofer::chan<int> tick;  // unbuffered: every send is a park and a hand-off
    gofer::wait_group wg;
    wg.add(n);
    for (int i = 0; i < n; ++i) {
      gofer::go([&, i] {
        if (!tag->empty()) wrong.fetch_add(1);  // value-initialised, not another fiber's
        *tag = "fiber " + std::to_string(i);
        for (int k = 0; k < 5; ++k) {
          if (i % 2 == 0) {
            tick.send(k);
          } else {
            tick.recv();
          }
          gofer::this_fiber::yield();
          if (*tag != "fiber " + std::to_string(i)) wrong.fetch_add(1);
        }
        wg.done();
      });
    }
    wg.wait();
    CHECK(wrong.load() == 0);
    CHECK(tag->empty());  // main's own instance was never written
  });
}

TEST_CASE("a fiber's instances are destroyed when its function returns", "[fiber_local]") {
  gofer::run([] {
    gofer::fiber_local<counted> a;
    gofer::fiber_local<counted> b;
    alive = 0;
    gofer::chan<> go_on, started;
    gofer::chan<> finished(1);
    gofer::go([&] {
      a->value = 1;
      b->value = 2;
      started.send({});
      go_on.recv();
      finished.send({});
    });
    started.recv();
    CHECK(alive.load() == 2);  // created on first use, still held while it runs
    go_on.send({});
    finished.recv();
    CHECK(gofer::test::eventually([] { return alive.load() == 0; }));
  });
}

TEST_CASE("plain threads have their own instance", "[fiber_local]") {
  gofer::fiber_local<int> v;
  *v = 7;
  int seen_in_thread = -1;
  std::thread([&] {
    seen_in_thread = *v;
    *v = 9;
  }).join();
  CHECK(seen_in_thread == 0);
  CHECK(*v == 7);
  gofer::run([&] { CHECK(*v == 0); });  // main fiber: not the thread's instance
}
