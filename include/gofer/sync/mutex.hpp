// mutex: mutual exclusion that parks the fiber, never the thread, with Go's
// sync.Mutex fairness (normal and starvation modes).
//
// One 32-bit state word: bit 0 locked, bit 1 woken (a waiter was woken and
// is on its way, so unlock need not wake another), bit 2 starving, the rest
// the number of parked waiters. The waiters themselves sit in the runtime
// semaphore (detail/park/sema.hpp), keyed by the address of sema_; that keeps
// the object at 8 bytes and lets it be destroyed right after an unlock, as
// Go allows.
//
// Normal mode: a woken waiter competes with fibers that are just arriving,
// and usually loses (they are running already); it then queues at the front.
// That keeps the lock cheap under contention but may starve a waiter. So a
// waiter that has waited over 1 ms switches the mutex to starvation mode:
// unlock hands the lock straight to the first waiter, arrivals queue at the
// back without trying, and the mode ends when the last waiter is served or
// one that got the lock had waited under 1 ms. With cooperative fibers this
// bounds the wait of every fiber whose holder ever parks or yields; a holder
// that relocks in a tight loop without either keeps its P, and its
// competitors on that P wait for it, as they would for any running fiber.
//
// Spinning: while the lock is held by a fiber running on another P, a
// contender spins a few short rounds before parking, as Go's canSpin allows
// (several Ps, another one running, nothing else runnable on its own).
// Parking costs two context switches and a wake-up; a critical section is
// usually shorter than that.
//
// As in Go a mutex is not owned: any fiber or thread may unlock it. Unlocking
// an unlocked mutex is a fatal error.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "gofer/detail/diag/deadlock_error.hpp"
#include "gofer/detail/diag/panic.hpp"
#include "gofer/detail/park/sema.hpp"
#include "gofer/detail/time/timer_heap.hpp"
#include "gofer/detail/util/spinlock.hpp"

namespace gofer {

namespace detail {

struct sync_inspector;

// Whether a contender for a lock should spin (iteration `iter`) rather than
// park. Shared by mutex and rw_mutex.
inline bool can_spin(int iter) noexcept {
  constexpr int max_spin_rounds = 4;  // Go's active_spin
  if (iter >= max_spin_rounds) return false;
  machine* m = current_machine();
  if (m == nullptr || m->cur == nullptr || m->p == nullptr) {
    // A plain thread: spinning pays only with another CPU to release the lock.
    static const bool multicore = std::thread::hardware_concurrency() > 1;
    return multicore;
  }
  return m->rt->procs() > 1 && m->rt->others_running() && m->p->runq.empty();
}

inline void spin_round() noexcept {
  constexpr int pauses = 30;  // Go's active_spin_cnt
  for (int i = 0; i < pauses; ++i) cpu_relax();
}

}  // namespace detail

class mutex {
 public:
  constexpr mutex() noexcept = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  void lock() {
    std::uint32_t expected = 0;
    if (state_.compare_exchange_weak(expected, locked, std::memory_order_acquire,
                                     std::memory_order_relaxed)) [[likely]]
      return;
    lock_slow();
  }

  bool try_lock() noexcept {
    std::uint32_t old = state_.load(std::memory_order_relaxed);
    // Locked, or starving (the lock belongs to the first waiter): fail.
    if ((old & (locked | starving)) != 0) return false;
    return state_.compare_exchange_strong(old, old | locked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  void unlock() noexcept {
    std::uint32_t now = state_.fetch_sub(locked, std::memory_order_release) - locked;
    if (now != 0) [[unlikely]]
      unlock_slow(now);
  }

 private:
  static constexpr std::uint32_t locked = 1;
  static constexpr std::uint32_t woken = 2;
  static constexpr std::uint32_t starving = 4;
  static constexpr int waiter_shift = 3;
  static constexpr std::uint32_t one_waiter = 1u << waiter_shift;
  static constexpr std::int64_t starvation_threshold_ns = 1'000'000;

  void lock_slow() {
    std::int64_t wait_start = 0;
    bool is_starving = false;  // this waiter has waited over the threshold
    bool awoke = false;        // this waiter owns the woken bit
    int iter = 0;
    std::uint32_t old = state_.load(std::memory_order_relaxed);
    for (;;) {
      // Spin only in normal mode: in starvation mode the lock goes to the
      // first waiter, so spinning cannot win it.
      if ((old & (locked | starving)) == locked && detail::can_spin(iter)) {
        // Claim the woken bit so unlock does not wake a parked waiter that
        // would only lose to us.
        if (!awoke && (old & woken) == 0 && (old >> waiter_shift) != 0 &&
            state_.compare_exchange_weak(old, old | woken, std::memory_order_relaxed)) {
          awoke = true;
        }
        detail::spin_round();
        ++iter;
        old = state_.load(std::memory_order_relaxed);
        continue;
      }
      std::uint32_t next = old;
      if ((old & starving) == 0) next |= locked;  // never grab a starving mutex
      if ((old & (locked | starving)) != 0) next += one_waiter;
      // Switch to starvation mode, but only while it is locked: unlock expects
      // waiters in starvation mode, and an unlocked mutex may have none.
      if (is_starving && (old & locked) != 0) next |= starving;
      if (awoke) next &= ~woken;  // we are either taking the lock or parking
      if (!state_.compare_exchange_weak(old, next, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
        continue;
      }
      if ((old & (locked | starving)) == 0) return;  // locked it
      // Queued. A waiter that was woken before goes back to the front.
      const bool requeue = wait_start != 0;
      if (wait_start == 0) wait_start = detail::monotonic_ns();
      try {
        detail::sema_acquire(&sema_, detail::wait_reason::mutex, requeue);
      } catch (const deadlock_error&) {
        forget_waiter();
        throw;
      }
      is_starving = is_starving || detail::monotonic_ns() - wait_start > starvation_threshold_ns;
      old = state_.load(std::memory_order_relaxed);
      if ((old & starving) != 0) {
        // Handed off: unlock left the lock to us and did not count us out.
        std::uint32_t delta = locked - one_waiter;
        // Leave starvation mode if we waited briefly or are the last waiter:
        // staying in it would make later arrivals queue behind nobody.
        if (!is_starving || (old >> waiter_shift) == 1) delta -= starving;
        state_.fetch_add(delta, std::memory_order_acquire);
        return;
      }
      awoke = true;
      iter = 0;
    }
  }

  // Counts out a waiter the deadlock detector took away, so that whoever
  // catches the deadlock_error finds the mutex consistent: an unlock then
  // neither wakes nobody (leaving the woken bit and a semaphore count behind,
  // which would later let a waiter in on a lock that was handed to another)
  // nor keeps starvation mode with no one left to hand the lock to. Only
  // run()'s main fiber is interrupted, when nothing else runs, so no unlock
  // races with this.
  void forget_waiter() noexcept {
    std::uint32_t old = state_.load(std::memory_order_relaxed);
    for (;;) {
      std::uint32_t next = old - one_waiter;
      if ((next >> waiter_shift) == 0) next &= ~starving;
      if (state_.compare_exchange_weak(old, next, std::memory_order_relaxed)) return;
    }
  }

  void unlock_slow(std::uint32_t now) noexcept {
    if (((now + locked) & locked) == 0) detail::fatal("unlock of unlocked mutex");
    if ((now & starving) != 0) {
      // Hand the lock to the first waiter. The locked bit stays clear, but
      // arrivals see starving and queue instead of taking it.
      detail::sema_release(&sema_, 1);
      return;
    }
    std::uint32_t old = now;
    for (;;) {
      // No waiters, or someone has the lock already, or a woken waiter is on
      // its way (or it starves, and the lock goes to the first waiter anyway):
      // nobody to wake.
      if ((old >> waiter_shift) == 0 || (old & (locked | woken | starving)) != 0) return;
      if (state_.compare_exchange_weak(old, (old - one_waiter) | woken,
                                       std::memory_order_relaxed)) {
        detail::sema_release(&sema_, 1);
        return;
      }
    }
  }

  friend struct detail::sync_inspector;  // tests look at the state words

  std::atomic<std::uint32_t> state_{0};
  std::atomic<std::uint32_t> sema_{0};
};

}  // namespace gofer
