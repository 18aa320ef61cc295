// The waiter (Go's sudog): one blocked party in one wait queue.
//
// A waiter is either a fiber (blocking = park, waking = ready on its own
// runtime) or an OS thread (blocking = futex, waking = unpark). Every blocking
// primitive queues waiters of this one type, which is why all of them work
// between fibers and plain threads in any mix. It is many-to-many: a fiber in
// a select has one waiter per case, and a queue holds waiters of many fibers.
//
// A waiter lives on the blocked party's stack. Whoever wakes it takes it off
// its queue first (under the queue's lock), records the outcome in it, and
// calls wake() last: after wake() the waiter, and possibly the object it
// waited on, may be gone.
#pragma once

#include "gofer/detail/park/park.hpp"
#include "gofer/detail/park/thread_parker.hpp"
#include "gofer/detail/util/intrusive_list.hpp"

namespace gofer::detail {

struct waiter : list_node {
  fiber* f = nullptr;  // null: an OS thread, parked on tp
  thread_parker tp;
  const void* key = nullptr;  // what it waits on (sema address, …)
  bool granted = false;       // set by the waker before wake()
  waiter* wake_link = nullptr;  // the waker's private list, after dequeueing

  waiter() noexcept : f(current_fiber()) {}

  // Blocks; `lock` (held, guarding the queue this waiter is on) is released
  // once blocking is safe. Returns true if interrupted by the deadlock detector.
  template <class Lock>
  bool block(Lock& lock, wait_reason reason) noexcept {
    if (f != nullptr) return park_unlock(lock, reason);
    lock.unlock();
    tp.park();
    return false;
  }

  void wake() noexcept {
    if (f != nullptr) {
      f->rt->ready(f);
    } else {
      tp.unpark();
    }
  }
};

}  // namespace gofer::detail
