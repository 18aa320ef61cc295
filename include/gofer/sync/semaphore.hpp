// semaphore: a weighted semaphore, as golang.org/x/sync/semaphore.Weighted.
//
// FIFO, strictly: a request is served only when every earlier one has been,
// even if a later, smaller one would fit now. Otherwise a stream of small
// requests could starve a large one forever.
//
// Two kinds of waiter share the queue. acquire(n) parks (a fiber) or blocks
// on a futex (a thread). acquire(ctx, n) must also wake when the context is
// cancelled, so it selects on ctx.done() and a one-slot channel of its own;
// release() grants it by sending on that channel while still holding the
// lock, so "granted" and "taken off the queue" are one event for the waiter
// to check when it races with cancellation. The lock order is semaphore, then
// channel; the waiter takes the semaphore lock only after its select is over.
//
// A request for more than the semaphore's size can never be granted. As in
// x/sync, acquire(ctx, n) then waits for ctx to be done and returns its
// error, without joining the queue: a request doomed to fail must not hold up
// the ones behind it. Without a context nothing could end that wait, so
// acquire(n) throws std::invalid_argument; try_acquire(n) returns false. A
// negative amount is a logic error everywhere (std::invalid_argument).
#pragma once

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

#include "gofer/chan.hpp"
#include "gofer/context.hpp"
#include "gofer/detail/diag/deadlock_error.hpp"
#include "gofer/detail/park/waiter.hpp"
#include "gofer/detail/util/intrusive_list.hpp"
#include "gofer/detail/util/spinlock.hpp"
#include "gofer/select.hpp"

namespace gofer {

class semaphore {
 public:
  explicit semaphore(std::int64_t n) : size_(n) {
    if (n < 0) throw std::invalid_argument("gofer: semaphore of negative size");
  }
  semaphore(const semaphore&) = delete;
  // Fibers still queued are asleep for good (as in ~cond_var): the queue
  // goes with the semaphore, so their runtime, when it ends, does not touch it.
  ~semaphore() {
    std::lock_guard lk(mu_);
    while (waiters_.pop_front() != nullptr) {
    }
  }
  semaphore& operator=(const semaphore&) = delete;

  // Blocks until n can be taken, after every earlier request.
  void acquire(std::int64_t n = 1) {
    check_negative(n);
    if (n > size_) {
      throw std::invalid_argument("gofer: semaphore acquire of " + std::to_string(n) +
                                  " exceeds its size " + std::to_string(size_) +
                                  " and could never return");
    }
    mu_.lock();
    if (fits_now(n)) {
      cur_ += n;
      mu_.unlock();
      return;
    }
    weighted_waiter w;
    w.n = n;
    waiters_.push_back(&w);
    bool interrupted;
    {
      // Runs when the runtime ends with this fiber parked, when nothing else
      // runs: a waiter no longer queued may have outlived its semaphore.
      detail::abandon_scope unlink(w.f, [&] {
        if (w.linked()) leave_queue(w);
      });
      interrupted = w.block(mu_, detail::wait_reason::semaphore);
    }
    if (!interrupted) return;  // granted
    // Interrupted by the deadlock detector, which runs when nothing else
    // does: no release can race with taking the waiter out.
    leave_queue(w);
    if (!w.granted) throw deadlock_error();
  }

  // As acquire(n), but gives up when ctx is done: returns ctx.err() and
  // leaves the count as it was. A context done before the call fails it even
  // if n is available, as Go's does. n above the size only waits for ctx.
  std::error_code acquire(const context& ctx, std::int64_t n = 1) {
    check_negative(n);
    const recv_chan<unit> done = ctx.done();
    mu_.lock();
    if (done.closed()) {
      mu_.unlock();
      return ctx.err();
    }
    if (fits_now(n)) {
      cur_ += n;
      mu_.unlock();
      return {};
    }
    if (n > size_) {
      // Outside the queue, so it holds up nobody. A context that is never
      // done (background()) has the nil channel: this waits for good, and
      // the deadlock rule applies as to any other wait.
      mu_.unlock();
      done.recv();
      return ctx.err();
    }
    chan<unit> ready(1);
    weighted_waiter w;
    w.n = n;
    w.ready = &ready;
    waiters_.push_back(&w);
    mu_.unlock();

    std::size_t chosen;
    {
      detail::abandon_scope unlink(detail::current_fiber(), [&] {
        if (w.linked()) leave_queue(w);
      });
      try {
        chosen = select(on_recv(done), on_recv(ready));
      } catch (...) {
        give_up(w);  // w must not outlive its place in the queue
        throw;
      }
    }
    if (chosen == 1) {
      // Granted; but if ctx is done too, cancellation wins, as in Go: the
      // caller sees one consistent outcome whatever the wake-up order.
      if (!done.closed()) return {};
      release(n);
      return ctx.err();
    }
    give_up(w);
    return ctx.err();
  }

  // Takes n without blocking, only if no earlier request is waiting.
  bool try_acquire(std::int64_t n = 1) {
    check_negative(n);
    std::lock_guard lk(mu_);
    if (!fits_now(n)) return false;
    cur_ += n;
    return true;
  }

  // Returns n; throws std::logic_error (and changes nothing) if that is more
  // than is held.
  void release(std::int64_t n = 1) {
    if (n < 0) throw std::invalid_argument("gofer: semaphore release of a negative amount");
    detail::waiter* wake = nullptr;
    {
      std::lock_guard lk(mu_);
      if (n > cur_) throw std::logic_error("gofer: semaphore released more than held");
      cur_ -= n;
      wake = grant_waiters();
    }
    wake_all(wake);
  }

 private:
  struct weighted_waiter : detail::waiter {
    std::int64_t n = 0;
    const chan<unit>* ready = nullptr;  // acquire(ctx, n): granted by a send here
  };

  static void check_negative(std::int64_t n) {
    if (n < 0) throw std::invalid_argument("gofer: semaphore acquire of a negative amount");
  }

  // A waiter of acquire(ctx, n) that stops waiting: off the queue, or, if it
  // was granted meanwhile, the count given back.
  void give_up(weighted_waiter& w) noexcept {
    detail::waiter* wake = nullptr;
    mu_.lock();
    if (w.granted) {
      cur_ -= w.n;
      wake = grant_waiters();
    } else {
      const bool was_front = waiters_.front() == &w;
      waiters_.remove(&w);
      // Leaving the front may unblock the requests behind it.
      if (was_front && size_ > cur_) wake = grant_waiters();
    }
    mu_.unlock();
    wake_all(wake);
  }

  // Takes w off the queue if it is still there: its fiber was interrupted,
  // or the runtime is ending with it parked and its frame about to go.
  void leave_queue(weighted_waiter& w) noexcept {
    std::lock_guard lk(mu_);
    if (w.linked()) waiters_.remove(&w);
  }

  // Under mu_.
  bool fits_now(std::int64_t n) const noexcept { return size_ - cur_ >= n && waiters_.empty(); }

  // Under mu_: grants the longest waiters while they fit, in order. Waiters
  // of acquire(ctx, n) are signalled here; the others are returned, linked by
  // wake_link, for the caller to wake once it has dropped the lock.
  detail::waiter* grant_waiters() noexcept {
    detail::waiter* wake = nullptr;
    detail::waiter** tail = &wake;
    while (weighted_waiter* w = waiters_.front()) {
      if (size_ - cur_ < w->n) break;  // FIFO: nobody may overtake it
      cur_ += w->n;
      waiters_.remove(w);
      w->granted = true;
      if (w->ready != nullptr) {
        w->ready->try_send(unit{});  // one slot, one send: never full
      } else {
        *tail = w;
        tail = &w->wake_link;
      }
    }
    return wake;
  }

  static void wake_all(detail::waiter* list) noexcept {
    while (list != nullptr) {
      detail::waiter* w = list;
      list = w->wake_link;
      w->wake();  // last touch of w
    }
  }

  const std::int64_t size_;
  std::int64_t cur_ = 0;  // guarded by mu_
  detail::spinlock mu_;
  detail::intrusive_list<weighted_waiter> waiters_;  // guarded by mu_
};

}  // namespace gofer
