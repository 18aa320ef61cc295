// A P's timers: a 4-ary min-heap ordered by deadline (as Go's per-P timer heap
// in runtime/time.go).
//
// Invariants:
//   - Every field of the heap and the `index` of every timer in it are guarded
//     by the heap's lock; `heap` is null for a timer in no heap.
//   - next_when mirrors the earliest deadline (INT64_MAX when empty). It is
//     written under the lock and read without it, by idle Ms deciding how long
//     to sleep: a stale value only makes them wake early or check again.
//   - A timer is fired at most once per add: it leaves the heap under the lock
//     before its callback runs (without the lock), so a remove() racing with
//     the firing sees it gone and reports false.
//   - A timer that nothing can observe any more (abandoned) may leave the heap
//     unfired: add() sweeps such timers out whenever the heap has doubled
//     since the last sweep, so they cost O(1) per add, and the heap keeps no
//     more than twice what can still matter. As Go 1.23's garbage collector
//     takes unreferenced timers: select over after(1h) in a loop must not
//     hold a million timers for an hour. Swept timers wait in a list, and
//     next_when reads as due, until run_expired drops them: add() may be
//     called with other locks held (a select's channels), and dropping a
//     timer frees what it owns.
// 4-ary rather than binary: shallower, so sift-down touches fewer cache lines
// (Go made the same choice).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <limits>
#include <mutex>
#include <utility>
#include <vector>

#include "gofer/detail/util/spinlock.hpp"

namespace gofer::detail {

inline std::int64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// A few nanoseconds instead of twenty, at tick resolution (1-4 ms): for
// "waiting since" in dumps, where nobody needs better.
inline std::int64_t coarse_monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();

class timer_heap;

struct timer_node {
  std::int64_t when = 0;
  // Runs on a scheduler thread, so it must be short. `now` is the clock
  // reading by which the timer was found due (when <= now): a firing that
  // needs the time uses it rather than reading the clock once more.
  void (*fire)(timer_node*, std::int64_t now) = nullptr;
  // Called for a timer still pending when its heap is destroyed, or swept out
  // as abandoned, to give back what the heap held (a reference, for a channel
  // timer). May be null.
  void (*drop)(timer_node*) = nullptr;
  // True once nothing can stop, reset or observe the timer's firing any more:
  // the heap may then drop it without firing it. Once true, it must stay true.
  // Null: never.
  bool (*abandoned)(const timer_node*) noexcept = nullptr;
  std::atomic<timer_heap*> heap{nullptr};
  std::int32_t index = -1;
  timer_node* swept_next = nullptr;  // swept out, waiting to be dropped
};

class timer_heap {
 public:
  timer_heap() = default;
  timer_heap(const timer_heap&) = delete;
  timer_heap& operator=(const timer_heap&) = delete;
  ~timer_heap() { clear(); }

  // Takes every timer out unfired, for a runtime that ends: each is left in
  // no heap (stopping one later is a harmless no-op) and dropped. The
  // runtime calls it while its fibers' stacks are still mapped, since a
  // pending sleep's or select's timer lives in a parked fiber's frame.
  void clear() noexcept {
    std::vector<timer_node*> left;
    timer_node* swept;
    {
      std::lock_guard lk(mu_);
      swept = std::exchange(swept_, nullptr);
      left.swap(heap_);
      for (timer_node* t : left) {
        t->index = -1;
        t->heap.store(nullptr, std::memory_order_release);
      }
      publish();
    }
    for (timer_node* t : left) {
      if (t->drop != nullptr) t->drop(t);
    }
    drop_swept(swept);
  }

  // Returns true when t became the earliest timer (the caller may need to wake
  // an M that sleeps until a later deadline).
  bool add(timer_node* t) noexcept {
    std::lock_guard lk(mu_);
    t->index = static_cast<std::int32_t>(heap_.size());
    heap_.push_back(t);
    sift_up(heap_.size() - 1);
    t->heap.store(this, std::memory_order_release);
    if (heap_.size() >= sweep_at_) sweep();
    publish();
    return heap_[0] == t;
  }

  // False when t is in no heap (it fired already, or was never added).
  static bool remove(timer_node* t) noexcept {
    for (;;) {
      timer_heap* h = t->heap.load(std::memory_order_acquire);
      if (h == nullptr) return false;
      std::lock_guard lk(h->mu_);
      if (t->heap.load(std::memory_order_relaxed) != h) continue;
      h->remove_at(static_cast<std::size_t>(t->index));
      h->publish();
      return true;
    }
  }

  // Fires every timer due at `now`; returns how many. Drops swept timers.
  int run_expired(std::int64_t now) noexcept {
    int n = 0;
    while (next_when_.load(std::memory_order_acquire) <= now) {
      timer_node* t = nullptr;
      timer_node* swept;
      {
        std::lock_guard lk(mu_);
        swept = std::exchange(swept_, nullptr);
        if (swept == nullptr) {
          if (heap_.empty() || heap_[0]->when > now) {
            publish();
            break;
          }
          t = heap_[0];
          remove_at(0);
        }
        publish();
      }
      if (swept != nullptr) {
        drop_swept(swept);
        continue;
      }
      t->fire(t, now);
      ++n;
    }
    return n;
  }

  // Drops the timers a sweep took out, now rather than at the next
  // run_expired: for a caller that holds no lock (a channel timer's owner,
  // armed in a loop that never parks, would otherwise pile them up).
  void drop_swept_now() noexcept {
    if (next_when_.load(std::memory_order_acquire) != 0) return;  // none swept
    timer_node* swept;
    {
      std::lock_guard lk(mu_);
      swept = std::exchange(swept_, nullptr);
      publish();
    }
    drop_swept(swept);
  }

  std::int64_t next_when() const noexcept { return next_when_.load(std::memory_order_acquire); }
  // Whether a timer that something waits for is due by `now` (any thread; a
  // snapshot). Swept timers make next_when read as due, but nothing waits
  // for them; while they are there, the earliest live deadline is not seen.
  bool live_timer_due(std::int64_t now) const noexcept {
    const std::int64_t w = next_when_.load(std::memory_order_acquire);
    return w != 0 && w <= now;
  }
  std::size_t size() {
    std::lock_guard lk(mu_);
    return heap_.size();
  }

 private:
  // Sweeps start at this size; smaller heaps are not worth a pass.
  static constexpr std::size_t min_sweep = 64;

  void publish() noexcept {
    // Swept timers read as due at once: whoever runs this heap's timers next
    // drops them.
    const std::int64_t w = swept_ != nullptr ? 0 : heap_.empty() ? never : heap_[0]->when;
    next_when_.store(w, std::memory_order_release);
  }

  // With the lock held: takes every abandoned timer out onto swept_ and
  // rebuilds the heap from the rest (O(size)).
  void sweep() noexcept {
    std::size_t kept = 0;
    for (timer_node* x : heap_) {
      if (x->abandoned != nullptr && x->abandoned(x)) {
        x->index = -1;
        x->heap.store(nullptr, std::memory_order_release);
        x->swept_next = swept_;
        swept_ = x;
      } else {
        heap_[kept++] = x;
      }
    }
    heap_.resize(kept);
    for (std::size_t i = 0; i < kept; ++i) heap_[i]->index = static_cast<std::int32_t>(i);
    if (kept > 1) {
      for (std::size_t i = (kept - 2) / 4 + 1; i-- > 0;) sift_down(i);
    }
    sweep_at_ = std::max(min_sweep, 2 * kept);
  }

  static void drop_swept(timer_node* t) noexcept {
    while (t != nullptr) {
      timer_node* next = t->swept_next;  // t may be gone once dropped
      t->swept_next = nullptr;
      if (t->drop != nullptr) t->drop(t);
      t = next;
    }
  }
  void remove_at(std::size_t i) noexcept {
    timer_node* t = heap_[i];
    // heap = null hands the node back to whoever sees it (remove() or a
    // re-arm on another P): every write to it must come before.
    t->index = -1;
    t->heap.store(nullptr, std::memory_order_release);
    std::size_t last = heap_.size() - 1;
    if (i != last) {
      heap_[i] = heap_[last];
      heap_[i]->index = static_cast<std::int32_t>(i);
    }
    heap_.pop_back();
    if (i < heap_.size()) {
      sift_up(i);
      sift_down(i);
    }
  }
  void sift_up(std::size_t i) noexcept {
    timer_node* t = heap_[i];
    while (i > 0) {
      std::size_t parent = (i - 1) / 4;
      if (heap_[parent]->when <= t->when) break;
      heap_[i] = heap_[parent];
      heap_[i]->index = static_cast<std::int32_t>(i);
      i = parent;
    }
    heap_[i] = t;
    t->index = static_cast<std::int32_t>(i);
  }
  void sift_down(std::size_t i) noexcept {
    timer_node* t = heap_[i];
    const std::size_t n = heap_.size();
    for (;;) {
      std::size_t c = 4 * i + 1;
      if (c >= n) break;
      std::size_t best = c;
      for (std::size_t k = c + 1; k < c + 4 && k < n; ++k)
        if (heap_[k]->when < heap_[best]->when) best = k;
      if (heap_[best]->when >= t->when) break;
      heap_[i] = heap_[best];
      heap_[i]->index = static_cast<std::int32_t>(i);
      i = best;
    }
    heap_[i] = t;
    t->index = static_cast<std::int32_t>(i);
  }

  spinlock mu_;
  std::vector<timer_node*> heap_;  // guarded by mu_
  timer_node* swept_ = nullptr;    // guarded by mu_: abandoned, to be dropped
  std::size_t sweep_at_ = min_sweep;  // guarded by mu_
  std::atomic<std::int64_t> next_when_{never};
};

}  // namespace gofer::detail
