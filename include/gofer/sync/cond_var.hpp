// cond_var: a condition variable for gofer::mutex (and any other lock with
// lock()/unlock()), as Go's sync.Cond. notify_one wakes the longest waiter
// (FIFO); notify_all wakes every waiter.
//
// No lost wake-up, as Go's notifyList does it: wait() takes a ticket before it
// releases the user's lock, and a notify consumes tickets in order. A waiter
// may then queue itself after the notify that was meant for it has already
// run (it was between unlock and queueing); it finds its ticket consumed and
// returns at once. So a notify issued after a waiter's unlock always reaches
// that waiter or a later one, never nobody, and the user's lock is never held
// while parking.
//
// Spurious wake-ups do not happen here, but as with every condition variable
// the condition must be rechecked after waking (another fiber may have taken
// the state in between): use the predicate form.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "gofer/detail/diag/deadlock_error.hpp"
#include "gofer/detail/park/waiter.hpp"
#include "gofer/detail/util/intrusive_list.hpp"
#include "gofer/detail/util/spinlock.hpp"
#include "gofer/sync/mutex.hpp"

namespace gofer {

class cond_var {
 public:
  cond_var() noexcept = default;
  cond_var(const cond_var&) = delete;
  // Fibers still queued are asleep for good (a Go program may end with
  // goroutines blocked on a condition declared in main): the queue goes with
  // the cond_var, so their runtime, when it ends, does not touch it.
  ~cond_var() {
    std::lock_guard lk(mu_);
    while (waiters_.pop_front() != nullptr) {
    }
  }
  cond_var& operator=(const cond_var&) = delete;

  // Releases `lock`, waits for a notify, and takes `lock` again. The lock must
  // be held. If the deadlock detector interrupts the wait, deadlock_error is
  // thrown with the lock not held (retaking it could only deadlock again).
  template <class Lock>
  void wait(Lock& lock) {
    const std::uint32_t ticket = next_ticket_.fetch_add(1, std::memory_order_acq_rel);
    lock.unlock();
    wait_for_ticket(ticket);
    lock.lock();
  }

  template <class Lock, class Pred>
  void wait(Lock& lock, Pred pred) {
    while (!pred()) wait(lock);
  }

  void notify_one() noexcept {
    // Nobody has taken a ticket since the last notify: nothing to do, and no
    // lock taken (the common case of a signal nobody waits for).
    if (next_ticket_.load(std::memory_order_acquire) == notified_.load(std::memory_order_relaxed))
      return;
    mu_.lock();
    const std::uint32_t t = notified_.load(std::memory_order_relaxed);
    if (t == next_ticket_.load(std::memory_order_relaxed)) {
      mu_.unlock();
      return;
    }
    notified_.store(t + 1, std::memory_order_relaxed);
    // The waiter holding ticket t may not have queued yet; then it will see
    // its ticket consumed when it does.
    ticket_waiter* found = nullptr;
    for (ticket_waiter* w = waiters_.front(); w != nullptr; w = waiters_.next(w)) {
      if (w->ticket == t) {
        waiters_.remove(w);
        found = w;
        break;
      }
    }
    mu_.unlock();
    if (found != nullptr) {
      found->granted = true;
      found->wake();
    }
  }

  void notify_all() noexcept {
    if (next_ticket_.load(std::memory_order_acquire) == notified_.load(std::memory_order_relaxed))
      return;
    mu_.lock();
    notified_.store(next_ticket_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    // Oldest first, so FIFO holds here too and fibers resume in a
    // predictable order.
    detail::waiter* list = nullptr;
    detail::waiter** tail = &list;
    while (ticket_waiter* w = waiters_.pop_front()) {
      w->wake_link = nullptr;
      *tail = w;
      tail = &w->wake_link;
    }
    mu_.unlock();
    while (list != nullptr) {
      detail::waiter* w = list;
      list = w->wake_link;
      w->granted = true;
      w->wake();  // last touch of w
    }
  }

 private:
  struct ticket_waiter : detail::waiter {
    std::uint32_t ticket = 0;
  };

  // Tickets wrap around; compare by distance, as serial numbers.
  static bool before(std::uint32_t a, std::uint32_t b) noexcept {
    return static_cast<std::int32_t>(a - b) < 0;
  }

  void wait_for_ticket(std::uint32_t ticket) {
    detail::maybe_yield_randomly();
    ticket_waiter w;
    w.ticket = ticket;
    mu_.lock();
    if (before(ticket, notified_.load(std::memory_order_relaxed))) {
      mu_.unlock();  // notified between our unlock and here
      return;
    }
    waiters_.push_back(&w);
    bool interrupted;
    {
      // A cond_var may outlive the runtime; its queue must not keep a
      // pointer into a stack the runtime frees.
      // (When that happens nothing else runs: an unqueued waiter's cond_var
      // may be gone, see the destructor, and must not be touched.)
      detail::abandon_scope unlink(w.f, [&] {
        if (w.linked()) leave_queue(w);
      });
      interrupted = w.block(mu_, detail::wait_reason::cond_var);
    }
    if (!interrupted) return;
    // Interrupted by the deadlock detector, which runs when nothing else
    // does: no notify can race with taking the waiter out.
    leave_queue(w);
    if (!w.granted) throw deadlock_error();
  }

  // Takes w off the queue if it is still there: its fiber was interrupted,
  // or the runtime is ending with it parked.
  void leave_queue(ticket_waiter& w) noexcept {
    std::lock_guard lk(mu_);
    if (w.linked()) waiters_.remove(&w);
  }

  std::atomic<std::uint32_t> next_ticket_{0};  // the ticket the next wait() takes
  std::atomic<std::uint32_t> notified_{0};     // tickets before this one are consumed
  detail::spinlock mu_;                        // guards waiters_ and writes of notified_
  detail::intrusive_list<ticket_waiter> waiters_;
};

}  // namespace gofer
