// The timer heap: ordering, removal, firing once, and next_when.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <vector>

#include <gofer/detail/time/timer_heap.hpp>

using gofer::detail::never;
using gofer::detail::timer_heap;
using gofer::detail::timer_node;

namespace {
struct recorded : timer_node {
  std::vector<std::int64_t>* log = nullptr;
  std::int64_t fired_at = 0;  // the `now` the firing was given
};
void record(timer_node* t, std::int64_t now) {
  auto* r = static_cast<recorded*>(t);
  r->log->push_back(r->when);
  r->fired_at = now;
}
}  // namespace

TEST_CASE("timers fire in deadline order, each once", "[timer_heap]") {
  timer_heap h;
  std::vector<std::int64_t> fired;
  std::vector<recorded> ts(500);
  std::mt19937 rng(42);
  for (auto& t : ts) {
    t.when = rng() % 10000 + 1;
    t.fire = &record;
    t.log = &fired;
  }
  CHECK(h.next_when() == never);
  for (auto& t : ts) h.add(&t);
  std::int64_t min_when = std::min_element(ts.begin(), ts.end(), [](auto& a, auto& b) {
                            return a.when < b.when;
                          })->when;
  CHECK(h.next_when() == min_when);
  CHECK(h.run_expired(5000) == static_cast<int>(std::count_if(
                                   ts.begin(), ts.end(), [](auto& t) { return t.when <= 5000; })));
  for (auto& t : ts) CHECK(t.fired_at == (t.when <= 5000 ? 5000 : 0));
  h.run_expired(20000);
  CHECK(fired.size() == ts.size());
  CHECK(std::is_sorted(fired.begin(), fired.end()));
  CHECK(h.next_when() == never);
  CHECK(h.run_expired(1'000'000) == 0);
}

TEST_CASE("removed timers never fire and removing twice reports false", "[timer_heap]") {
  timer_heap h;
  std::vector<std::int64_t> fired;
  std::vector<recorded> ts(100);
  for (std::size_t i = 0; i < ts.size(); ++i) {
    ts[i].when = static_cast<std::int64_t>(i + 1);
    ts[i].fire = &record;
    ts[i].log = &fired;
    h.add(&ts[i]);
  }
  for (std::size_t i = 0; i < ts.size(); i += 2) CHECK(timer_heap::remove(&ts[i]));
  CHECK_FALSE(timer_heap::remove(&ts[0]));
  CHECK(h.next_when() == 2);
  h.run_expired(1000);
  CHECK(fired.size() == 50);
  for (auto w : fired) CHECK(w % 2 == 0);
  CHECK_FALSE(timer_heap::remove(&ts[1]));  // already fired
}

TEST_CASE("add reports whether the timer became the earliest", "[timer_heap]") {
  timer_heap h;
  timer_node a, b, c;
  a.when = 10;
  b.when = 20;
  c.when = 5;
  CHECK(h.add(&a));
  CHECK_FALSE(h.add(&b));
  CHECK(h.add(&c));
  timer_heap::remove(&a);
  timer_heap::remove(&b);
  timer_heap::remove(&c);
}

namespace {
struct sweepable : timer_node {
  bool gone = false;     // what abandoned() reports
  bool dropped = false;  // drop was called
  bool fired = false;
};
}  // namespace

TEST_CASE("abandoned timers are swept out as the heap grows, then dropped unfired",
          "[timer_heap]") {
  timer_heap h;
  std::vector<sweepable> ts(1000);
  for (std::size_t i = 0; i < ts.size(); ++i) {
    auto& t = ts[i];
    t.when = static_cast<std::int64_t>(ts.size() - i);  // later ones are earlier
    t.fire = [](timer_node* n, std::int64_t) { static_cast<sweepable*>(n)->fired = true; };
    t.drop = [](timer_node* n) { static_cast<sweepable*>(n)->dropped = true; };
    t.abandoned = [](const timer_node* n) noexcept { return static_cast<const sweepable*>(n)->gone; };
  }
  // Every other timer is abandoned as soon as it is in: the heap never holds
  // more than about twice the live ones.
  std::size_t most = 0;
  for (std::size_t i = 0; i < ts.size(); ++i) {
    h.add(&ts[i]);
    ts[i].gone = i % 2 == 0;
    most = std::max(most, h.size());
  }
  CHECK(most <= 2 * (ts.size() / 2) + 64);
  // Swept ones read as due until dropped; drop_swept_now drops them at once.
  CHECK(h.next_when() == 0);
  h.drop_swept_now();
  CHECK(h.next_when() > 0);
  // The rest fire in order; every abandoned one is dropped or fires, never both.
  CHECK(h.run_expired(1'000'000) > 0);
  for (auto& t : ts) {
    CHECK_FALSE((t.fired && t.dropped));
    if (!t.gone) CHECK(t.fired);
  }
  CHECK(h.next_when() == never);
  // A timer that is not abandoned is never swept, however many adds come.
  timer_heap h2;
  std::vector<sweepable> live(500);
  for (auto& t : live) {
    t.when = 5;
    t.abandoned = [](const timer_node* n) noexcept { return static_cast<const sweepable*>(n)->gone; };
    h2.add(&t);
  }
  CHECK(h2.size() == live.size());
  for (auto& t : live) timer_heap::remove(&t);
}
