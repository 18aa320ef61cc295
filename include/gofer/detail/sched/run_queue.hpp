// A P's local run queue: a bounded lock-free ring plus the runnext slot
// (as runq/runnext in Go's runtime/proc.go).
//
// Invariants:
//   - Only the owning M pushes (writes tail and the slots between tail and
//     head + capacity). Any M may take from the head: the owner pops one,
//     thieves take half; both claim by CAS on head, so an entry is taken once.
//   - tail - head is in [0, capacity]; head and tail only grow (mod 2^32).
//   - A thief reads slots before its CAS on head; a slot it read may be
//     overwritten by the owner meanwhile only if head moved, and then its CAS
//     fails, so a stale read is never used. The slots are atomics for this.
//   - runnext holds the fiber the running one just woke (a channel partner):
//     it runs next on this P, before the queue, which keeps ping-pong pairs on
//     one core and one cache. It is stolen only as a last resort.
//   - An exclusive queue (the only P of its runtime) has no thieves, so the
//     owner claims entries with plain loads and stores: a locked instruction
//     per pop is a third of the cost of a yield.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <new>
#include <utility>

#include "gofer/detail/config.hpp"
#include "gofer/detail/fiber.hpp"
#include "gofer/detail/util/cache_line.hpp"
#include "gofer/detail/util/spinlock.hpp"

namespace gofer::detail {

class run_queue {
 public:
  // 256 as Go: enough to absorb bursts of spawns between steals, small enough
  // that stealing half is quick. Overflow spills half to the global queue.
  static constexpr std::uint32_t capacity = 256;
  // How long a thief lets a victim run its runnext first (grab_into).
  static constexpr long runnext_grace_ns = 3000;

  // Set before the runtime starts when no other P can ever steal.
  void set_exclusive(bool e) noexcept { exclusive_ = e; }

  // Owner only. False when full.
  bool push(fiber* f) noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_relaxed);
    if (t - h >= capacity) return false;
    slots_[t % capacity].store(f, std::memory_order_relaxed);
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Owner only: takes half of the queue (for the global queue on overflow).
  // Returns the count written to out (room for capacity / 2).
  std::uint32_t take_half(fiber** out) noexcept {
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      std::uint32_t t = tail_.load(std::memory_order_relaxed);
      std::uint32_t n = (t - h) / 2;
      if (n == 0) return 0;
      for (std::uint32_t i = 0; i < n; ++i)
        out[i] = slots_[(h + i) % capacity].load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(h, h + n, std::memory_order_acq_rel,
                                      std::memory_order_relaxed))
        return n;
    }
  }

  // Owner only: runnext first, then the head of the queue. The exclusive
  // case inline (a few plain loads and stores, on every schedule of a
  // one-P runtime), the shared one out of line.
  fiber* pop() noexcept {
    if (exclusive_) {
      if (fiber* next = runnext_.load(std::memory_order_relaxed)) {
        runnext_.store(nullptr, std::memory_order_relaxed);
        return next;
      }
      std::uint32_t h = head_.load(std::memory_order_relaxed);
      if (tail_.load(std::memory_order_relaxed) == h) return nullptr;
      fiber* f = slots_[h % capacity].load(std::memory_order_relaxed);
      head_.store(h + 1, std::memory_order_relaxed);
      return f;
    }
    return pop_shared();
  }

  // Owner only: makes f runnext; returns the fiber it displaced (or null).
  fiber* set_runnext(fiber* f) noexcept {
    if (exclusive_) {
      fiber* old = runnext_.load(std::memory_order_relaxed);
      runnext_.store(f, std::memory_order_relaxed);
      return old;
    }
    return runnext_.exchange(f, std::memory_order_acq_rel);
  }

  // Any M: moves about half of victim's queue into this one (owned by the
  // caller, and empty), returns one of them to run now, or null.
  fiber* steal_from(run_queue& victim, bool take_runnext) noexcept {
    std::uint32_t t = tail_.load(std::memory_order_relaxed);
    std::uint32_t n = victim.grab_into(slots_, t, take_runnext);
    if (n == 0) return nullptr;
    --n;
    fiber* f = slots_[(t + n) % capacity].load(std::memory_order_relaxed);
    if (n != 0) tail_.store(t + n, std::memory_order_release);
    return f;
  }

  // Any thread; a hint (may be stale by the time it is used).
  std::uint32_t size() const noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_acquire);
    return t - h + (runnext_.load(std::memory_order_relaxed) != nullptr ? 1 : 0);
  }
  bool empty() const noexcept { return size() == 0; }

  // For the monitor (any thread; a snapshot): the head's index, whether
  // anything is queued from it, and runnext. Taking a queued fiber, by the
  // owner or a thief, moves the head; pushing one does not: while the head
  // stays and the queue is not empty, the fiber at the head has waited.
  struct peek_result {
    std::uint32_t head;
    bool queued;
    fiber* runnext;
  };
  peek_result peek() const noexcept {
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_acquire);
    return {h, t != h, runnext_.load(std::memory_order_relaxed)};
  }

 private:
  // pop() when thieves may take from this queue at the same time.
  GOFER_NOINLINE fiber* pop_shared() noexcept {
    fiber* next = runnext_.load(std::memory_order_relaxed);
    if (next != nullptr &&
        runnext_.compare_exchange_strong(next, nullptr, std::memory_order_acquire))
      return next;
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      std::uint32_t t = tail_.load(std::memory_order_relaxed);
      if (t == h) return nullptr;
      fiber* f = slots_[h % capacity].load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel,
                                      std::memory_order_relaxed))
        return f;
    }
  }

  std::uint32_t grab_into(std::atomic<fiber*>* dst, std::uint32_t dst_tail,
                          bool take_runnext) noexcept {
    bool waited = false;  // for runnext, once per call: the thief has its own work to look at
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      std::uint32_t t = tail_.load(std::memory_order_acquire);
      std::uint32_t n = t - h;
      n -= n / 2;
      if (n == 0) {
        if (!take_runnext || waited) return 0;
        fiber* next = runnext_.load(std::memory_order_acquire);
        if (next == nullptr) return 0;
        // The owner is most likely about to run it (it just woke it): give
        // it time first, as Go does, or a pair of fibers handing work to
        // each other gets pulled apart over two Ms, and every hand-off
        // between them then crosses CPUs and often a futex wake. Like Go,
        // sleep 3 us, which Linux's default timer slack makes about 50: long
        // enough for the owner to get to it, and asleep rather than spinning,
        // so an owner sharing this CPU runs. If the owner queued more
        // meanwhile (a fiber spawning in a loop), steal those: the thief stays
        // busy instead of parking and being woken again per fiber.
        std::timespec pause{0, runnext_grace_ns};
        ::nanosleep(&pause, nullptr);
        waited = true;
        if (tail_.load(std::memory_order_acquire) != t) continue;
        // Only the fiber waited for: one the owner put there since is as
        // fresh as this one was.
        if (!runnext_.compare_exchange_strong(next, nullptr, std::memory_order_acq_rel)) return 0;
        dst[dst_tail % capacity].store(next, std::memory_order_relaxed);
        return 1;
      }
      if (n > capacity / 2) continue;  // read h and t at different moments; retry
      for (std::uint32_t i = 0; i < n; ++i) {
        fiber* f = slots_[(h + i) % capacity].load(std::memory_order_relaxed);
        dst[(dst_tail + i) % capacity].store(f, std::memory_order_relaxed);
      }
      if (head_.compare_exchange_weak(h, h + n, std::memory_order_acq_rel,
                                      std::memory_order_relaxed))
        return n;
    }
  }

  bool exclusive_ = false;
  alignas(cache_line) std::atomic<std::uint32_t> head_{0};
  alignas(cache_line) std::atomic<std::uint32_t> tail_{0};
  std::atomic<fiber*> runnext_{nullptr};
  alignas(cache_line) std::atomic<fiber*> slots_[capacity] = {};
};

// The runtime-wide FIFO for fibers readied from outside any P (OS threads,
// other runtimes) and for local-queue overflow. Checked by every P at least
// every 61st schedule (scheduler.hpp says why 61).
//
// A growable ring of pointers rather than a list linked through the fibers:
// a waker that readies thousands of fibers at once (a context cancel, a
// wait_group release) spills most of them here, and a list would write one
// cold fiber block per push and walk a dependent chain of cold blocks per
// take; the ring touches only its own consecutive slots. The ring doubles when
// full and is given back when it drains from a large size, so a burst does not
// hold its memory.
class global_queue {
 public:
  global_queue() = default;
  global_queue(const global_queue&) = delete;
  global_queue& operator=(const global_queue&) = delete;
  ~global_queue() { delete[] ring_; }

  void push(fiber* f) noexcept { push_batch(&f, 1); }

  // Grows the ring outside the lock: the allocation and the copy of a large
  // ring would otherwise keep every other M spinning. Running out of memory
  // here is fatal: the fibers cannot be left unqueued, and the callers
  // (readying a fiber) cannot fail.
  void push_batch(fiber* const* fs, std::uint32_t n) noexcept {
    fiber** spare = nullptr;
    std::uint32_t spare_cap = 0;
    for (;;) {
      fiber** old = nullptr;
      std::uint32_t want = 0;
      {
        std::lock_guard lk(mu_);
        if (count_ + n > cap_ && count_ + n <= spare_cap) {
          for (std::uint32_t i = 0; i < count_; ++i) spare[i] = ring_[(head_ + i) & (cap_ - 1)];
          old = std::exchange(ring_, std::exchange(spare, nullptr));
          cap_ = spare_cap;
          head_ = 0;
        }
        if (count_ + n <= cap_) {
          for (std::uint32_t i = 0; i < n; ++i) push_locked(fs[i]);
        } else {
          want = cap_ == 0 ? 256 : cap_;
          while (want < count_ + n) want *= 2;
        }
      }
      delete[] spare;  // none left, or too small for what came in meanwhile
      if (want == 0) {
        delete[] old;
        return;
      }
      spare = new (std::nothrow) fiber*[want];
      if (spare == nullptr) fatal_out_of_memory("the global run queue");
      spare_cap = want;
    }
  }
  // Takes up to max fibers; returns the first, pushes the rest with put().
  template <class Put>
  fiber* pop_batch(std::uint32_t max, Put&& put) noexcept {
    if (size_.load(std::memory_order_acquire) == 0) return nullptr;
    fiber** drained = nullptr;
    fiber* first = nullptr;
    {
      std::lock_guard lk(mu_);
      std::uint32_t n = std::min(max, count_);
      if (n == 0) return nullptr;
      first = ring_[head_];
      for (std::uint32_t i = 1; i < n; ++i) put(ring_[(head_ + i) & (cap_ - 1)]);
      head_ = (head_ + n) & (cap_ - 1);
      count_ -= n;
      size_.store(count_, std::memory_order_release);
      if (count_ == 0 && cap_ > keep_capacity) {
        drained = ring_;
        ring_ = nullptr;
        cap_ = head_ = 0;
      }
    }
    delete[] drained;  // outside the lock: the allocator may take its own
    return first;
  }
  std::uint32_t size() const noexcept { return size_.load(std::memory_order_acquire); }

 private:
  // A ring this large or smaller is kept when the queue drains.
  static constexpr std::uint32_t keep_capacity = 1024;

  void push_locked(fiber* f) noexcept {
    ring_[(head_ + count_) & (cap_ - 1)] = f;
    ++count_;
    size_.store(count_, std::memory_order_release);
  }

  spinlock mu_;
  fiber** ring_ = nullptr;  // cap_ slots, cap_ a power of two; guarded by mu_
  std::uint32_t cap_ = 0;   // guarded by mu_
  std::uint32_t head_ = 0;  // guarded by mu_
  std::uint32_t count_ = 0;  // guarded by mu_
  std::atomic<std::uint32_t> size_{0};  // count_, written under mu_, read anywhere as a hint
};

}  // namespace gofer::detail
