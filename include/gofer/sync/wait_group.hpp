// wait_group: waits for a collection of fibers (or threads) to finish, as Go's
// sync.WaitGroup.
//
// State: one 64-bit word, the counter in the high half and the number of
// waiters in the low half, so add() learns both in one atomic step and knows
// whether anyone must be woken when the counter reaches zero. Waiters block on
// the runtime semaphore (detail/park/sema.hpp), whose queue lives outside this
// object: a wait_group may be destroyed as soon as wait() returns, even while
// the done() that released it is still returning.
//
// The tempting wrong version keeps a plain counter and a waiter list under a
// lock: the last done() must then touch the list (and the lock) after the
// count hits zero, by which time the waiter may have returned and destroyed
// the object.
#pragma once

#include <atomic>
#include <cstdint>
#include <stdexcept>

#include "gofer/detail/park/sema.hpp"

namespace gofer {

class wait_group {
 public:
  wait_group() = default;
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;

  // Adds n (may be negative) to the counter; at zero, releases every waiter.
  // A counter that would go negative throws std::logic_error and is left as
  // it was.
  void add(int n = 1) {
    const std::uint64_t delta = static_cast<std::uint64_t>(static_cast<std::int64_t>(n)) << 32;
    std::uint64_t s = state_.fetch_add(delta, std::memory_order_acq_rel) + delta;
    const auto v = static_cast<std::int32_t>(s >> 32);
    const auto w = static_cast<std::uint32_t>(s);
    if (v < 0) {
      state_.fetch_sub(delta, std::memory_order_acq_rel);
      throw std::logic_error("gofer: negative wait_group counter");
    }
    if (v > 0 || w == 0) return;
    // Counter at zero with waiters: nobody else can change the word now
    // (a concurrent add from zero with waiters is misuse, as in Go), so reset
    // it and release them.
    state_.store(0, std::memory_order_relaxed);
    detail::sema_release(&sema_, w);
  }

  void done() { add(-1); }

  // Blocks until the counter is zero.
  void wait() {
    std::uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      if ((s >> 32) == 0) return;
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        detail::sema_acquire(&sema_, detail::wait_reason::wait_group);
        return;
      }
    }
  }

 private:
  std::atomic<std::uint64_t> state_{0};  // counter << 32 | waiters
  std::atomic<std::uint32_t> sema_{0};
};

}  // namespace gofer
