// wait_group: waits for a collection of fibers (or threads) to finish, as Go's
// sync.WaitGroup.
//
// State: one 64-bit word, the counter in the high half and the number of
// registered waiters in the low half, so add() learns both in one atomic step
// and knows whether anyone must be woken when the counter reaches zero; plus a
// lock-free stack of the waiters themselves.
//
// Waiting: register in the word (CAS, only while the counter is non-zero),
// then push a waiter onto the stack and park. A fiber pushes itself only once
// it is switched out (in park's commit step): pushed earlier, the last done()
// could wake it while it is still running. So done() may briefly see fewer
// waiters on the stack than the word counted, and waits for the rest to land;
// they are at most a few instructions away (the far side of a switch, or an
// OS thread between two stores).
//
// Counting: each waiter records how many waiters the stack holds from it
// down, so done() learns how many it took from the head alone. Counting by
// walking the list cost a cache and TLB miss per waiter (each lives on its
// own fiber's stack): a third of the time releasing 300,000 parked fibers
// took. A pusher may read that count from the head it is pushing onto: the
// head is a waiter of the current round, which nobody wakes before every
// registered waiter, the pusher included, has landed.
//
// Reuse: unlike Go's, a wait_group may take an add() for its next round
// while the waiters of the last one are still returning; the last done() has
// taken every one of them off the word and the stack before it resets it, so
// the rounds cannot mix, and there is nothing to report.
//
// Lifetime, as Go promises: a wait_group may be destroyed as soon as wait()
// returns, even while the done() that released it is still returning. The
// last done() touches the object only before it wakes anyone: it takes the
// whole stack, resets the word, then wakes the waiters from its private copy.
//
// The tempting wrong version keeps a plain counter and a waiter list under a
// mutex: the last done() must then unlock after the count hits zero, by which
// time a waiter that saw the zero may have returned and destroyed the mutex.
//
// Fibers asleep for good: a runtime may end with a fiber parked in wait()
// (main returned first, as a Go program may), and the wait_group may outlive
// it, or die before it. Ending, the runtime takes the fiber's waiter off the
// stack, so a later done() does not wake a freed stack; dying, the wait_group
// marks its waiters as taken, so the runtime then leaves the dead object
// alone. Both happen when nothing else uses the wait_group: a done() racing
// with the end of the runtime whose fiber it would wake is not supported.
#pragma once

#include <atomic>
#include <cstdint>
#include <stdexcept>

#include "gofer/detail/config.hpp"
#include "gofer/detail/diag/deadlock_error.hpp"
#include "gofer/detail/park/park.hpp"
#include "gofer/detail/park/waiter.hpp"
#include "gofer/detail/util/spinlock.hpp"

namespace gofer {

class wait_group {
  struct wg_waiter : detail::waiter {
    std::uint32_t depth = 0;  // waiters on the stack from this one down
  };

 public:
  wait_group() = default;
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;
  // Waiters still registered are fibers asleep for good (see the header).
  // One may not have landed on the stack yet: it pushes itself once switched
  // out, a few instructions away, as done() knows; wait for it, or it would
  // land unmarked on a dead object.
  ~wait_group() {
    const auto registered = static_cast<std::uint32_t>(state_.load(std::memory_order_acquire));
    for (;;) {
      std::uint32_t landed = 0;
      for (detail::waiter* x = head_.load(std::memory_order_acquire); x != nullptr;
           x = x->wake_link, ++landed)
        x->granted = true;  // marking one twice is harmless
      if (landed >= registered) return;
      detail::cpu_relax();
    }
  }

  // Adds n (may be negative) to the counter; at zero, releases every waiter.
  //
  // Misuse throws std::logic_error: a counter that would go negative, or an
  // add that starts a new round while the last done() of the previous one is
  // still releasing its waiters (Go's "Add called concurrently with Wait").
  // As in Go the check follows the atomic add, which keeps done() to one
  // locked instruction; the add is then undone. So a refused add leaves the
  // counter as it was, though a done() or wait() racing with the misuse may
  // glimpse it in between.
  void add(int n = 1) {
    const std::uint64_t s = state_.fetch_add(delta_of(n), std::memory_order_acq_rel) + delta_of(n);
    // The common case in one test, the rest out of line: a counter that did
    // not go negative, and nobody waiting.
    constexpr std::uint64_t negative_or_waiters = std::uint64_t{1} << 63 | 0xFFFF'FFFFu;
    if ((s & negative_or_waiters) == 0) [[likely]]
      return;
    add_slow(n, s);
  }

  void done() { add(-1); }

  // Blocks until the counter is zero.
  void wait() {
    if ((state_.load(std::memory_order_acquire) >> 32) == 0) [[likely]]
      return;
    wait_slow();
  }

 private:
  // n in the counter's half of the state word.
  static constexpr std::uint64_t delta_of(int n) noexcept {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(n)) << 32;
  }

  GOFER_NOINLINE void add_slow(int n, std::uint64_t s) {
    const auto v = static_cast<std::int32_t>(s >> 32);
    const auto w = static_cast<std::uint32_t>(s);
    if (v < 0) {
      state_.fetch_sub(delta_of(n), std::memory_order_acq_rel);
      throw std::logic_error("gofer: negative wait_group counter");
    }
    if (n > 0 && v == n && w != 0) {
      // Waiters are registered but the counter was zero: the last done() is
      // releasing them right now, and its reset of the word will erase this
      // add (so it is not undone here). An add that starts a new round must
      // happen before the wait that watches it, or after that wait returned.
      throw std::logic_error(
          "gofer: wait_group misuse: add called concurrently with the wait it releases");
    }
    if (v > 0 || w == 0) return;
    // Counter at zero with w waiters. Nothing else may change the word now (an
    // add from zero while waiters remain is misuse, as in Go): collect all w.
    // Usually all have landed and one exchange takes them; waiters that
    // land later come as further stacks, each walked to join the list.
    wg_waiter* list = nullptr;
    std::uint32_t got = 0;
    while (got < w) {
      wg_waiter* taken = head_.exchange(nullptr, std::memory_order_acquire);
      if (taken == nullptr) {
        detail::cpu_relax();
        continue;
      }
      got += taken->depth;
      if (list != nullptr) {
        detail::waiter* last = taken;
        while (last->wake_link != nullptr) last = last->wake_link;
        last->wake_link = list;
      }
      list = taken;
    }
    state_.store(0, std::memory_order_release);
    detail::waiter* x = list;
    while (x != nullptr) {  // `this` may be gone once the first wake lands
      detail::waiter* next = x->wake_link;
      x->granted = true;
      x->wake();
      x = next;
    }
  }

  GOFER_NOINLINE void wait_slow() {
    std::uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      if ((s >> 32) == 0) return;
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
        break;
    }
    wg_waiter w;
    if (w.f == nullptr) {
      push(&w);
      w.tp.park();
      return;
    }
    struct commit_args {
      wait_group* wg;
      wg_waiter* w;
    } args{this, &w};
    bool interrupted;
    {
      // A waiter not yet granted is still on the stack of a live wait_group
      // (the destructor grants the ones it leaves behind).
      detail::abandon_scope leave(w.f, [&] {
        if (!w.granted) unlink(&w);
      });
      interrupted = detail::park(
          [](void* a, detail::fiber*) {
            auto* c = static_cast<commit_args*>(a);
            c->wg->push(c->w);
            return true;
          },
          &args, detail::wait_reason::wait_group);
    }
    if (interrupted && !w.granted) {
      // Only the deadlock detector wakes a waiter that was not granted, and it
      // does so when nothing else runs: unregistering cannot race.
      unlink(&w);
      throw deadlock_error();
    }
  }

  // Acquire on every look at the head: the pusher reads its depth.
  void push(wg_waiter* w) noexcept {
    wg_waiter* h = head_.load(std::memory_order_acquire);
    do {
      w->wake_link = h;
      w->depth = (h == nullptr ? 0 : h->depth) + 1;
    } while (
        !head_.compare_exchange_weak(h, w, std::memory_order_acq_rel, std::memory_order_acquire));
  }

  // Takes w off the stack and out of the count, when nothing else uses the
  // wait_group (the deadlock detector's interrupt, or the end of w's runtime).
  void unlink(wg_waiter* w) noexcept {
    detail::waiter* rest = head_.exchange(nullptr, std::memory_order_acquire);
    while (rest != nullptr) {
      auto* x = static_cast<wg_waiter*>(rest);
      rest = x->wake_link;
      if (x != w) push(x);
    }
    state_.fetch_sub(1, std::memory_order_acq_rel);
  }

  std::atomic<std::uint64_t> state_{0};  // counter << 32 | registered waiters
  std::atomic<wg_waiter*> head_{nullptr};  // waiters that have parked (or are about to)
};

}  // namespace gofer
