// Parking: how a fiber stops running until something makes it runnable
// (Go's gopark / goready).
//
// park(commit, arg, reason) switches away from the calling fiber and runs
// commit(arg, fiber) on the far side of the switch, once the fiber's registers
// are saved. commit is where the fiber becomes findable by its waker, usually
// by releasing the lock that guards the wait queue it was put on. Doing that
// before the switch would let another M resume a fiber whose context is still
// being saved; holding the lock across the switch would block other Ms on a
// lock whose holder is not running. If commit returns false the park is
// cancelled and the fiber made runnable again (the condition it waited for
// came true in between).
//
// The time a fiber has waited, shown by dump_fibers, counts from its P's
// cached clock (processor::clock_ns), not from a clock read here; so it may
// overstate the wait by as much as the P ran since it last refreshed that
// clock: its last 61 schedules at most.
//
// A fiber is woken by runtime_impl::ready(f). park() returns true when the
// deadlock detector woke the fiber instead of its waker: the caller must then
// take its waiter out of whatever queue holds it and throw deadlock_error.
#pragma once

#include <mutex>
#include <utility>

#include "gofer/detail/fiber.hpp"
#include "gofer/detail/sched/scheduler.hpp"
#include "gofer/detail/wait_reason.hpp"

namespace gofer::detail {

// The fiber running on the calling thread, or null (plain thread, or g0).
inline fiber* current_fiber() noexcept {
  machine* m = current_machine();
  return m != nullptr ? m->cur : nullptr;
}

inline runtime_impl* current_runtime() noexcept {
  machine* m = current_machine();
  return m != nullptr ? m->rt : nullptr;
}

inline bool park(bool (*commit)(void*, fiber*), void* arg, wait_reason reason) noexcept {
  machine* m = current_machine();
  fiber* self = m->cur;
  self->reason.store(reason, std::memory_order_relaxed);
  self->wait_since.store(m->p->clock_ns, std::memory_order_relaxed);
  self->state.store(fiber_state::waiting, std::memory_order_relaxed);
  post_action a;
  a.kind = post_kind::park;
  a.prev = self;
  a.commit = commit;
  a.arg = arg;
  runtime_impl::reschedule(m, a);
  self->reason.store(wait_reason::none, std::memory_order_relaxed);
  bool interrupted = self->interrupted;
  self->interrupted = false;
  return interrupted;
}

// Parks, releasing `lock` once the fiber is safely switched out.
template <class Lock>
bool park_unlock(Lock& lock, wait_reason reason) noexcept {
  return park(
      [](void* l, fiber*) {
        static_cast<Lock*>(l)->unlock();
        return true;
      },
      &lock, reason);
}

// For the scope of a blocking call: runs fn if the runtime is destroyed while
// the calling fiber is parked in it, to take the fiber's waiters off queues
// that outlive the runtime. Nothing on a plain thread (f null).
template <class Fn>
class abandon_scope {
 public:
  abandon_scope(fiber* f, Fn fn) noexcept : f_(f), fn_(std::move(fn)) {
    if (f_ == nullptr) return;
    hook_.run = [](void* self) { static_cast<abandon_scope*>(self)->fn_(); };
    hook_.arg = this;
    hook_.next = f_->on_abandon;
    f_->on_abandon = &hook_;
  }
  abandon_scope(const abandon_scope&) = delete;
  abandon_scope& operator=(const abandon_scope&) = delete;
  ~abandon_scope() {
    if (f_ != nullptr) f_->on_abandon = hook_.next;
  }

 private:
  fiber* f_;
  Fn fn_;
  abandon_hook hook_;
};

// In the randomised mode, sometimes yields before a blocking operation, so
// tests see the operation's other interleavings. Call it before taking locks.
inline void maybe_yield_randomly() noexcept {
  if (randomised_runtimes.load(std::memory_order_relaxed) == 0) return;
  machine* m = current_machine();
  if (m == nullptr || m->cur == nullptr || !m->rt->config().random.enabled()) return;
  if (m->p->rng.below(4) == 0) runtime_impl::yield(m);
}

}  // namespace gofer::detail
