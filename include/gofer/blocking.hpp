// blocking(f): runs a blocking call (file I/O, a blocking C library) on a
// helper thread while the calling fiber parks, so the M keeps running other
// fibers. Returns f's result; an exception from f is rethrown in the caller.
// Outside a fiber it simply calls f.
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>

#include "gofer/detail/park/park.hpp"
#include "gofer/detail/sched/blocking_pool.hpp"

namespace gofer {

template <class F>
auto blocking(F&& f) -> std::invoke_result_t<F> {
  using R = std::invoke_result_t<F>;
  detail::fiber* self = detail::current_fiber();
  if (self == nullptr) return std::invoke(std::forward<F>(f));

  // References come back as pointers, values in an optional.
  using stored = std::conditional_t<std::is_reference_v<R>, std::remove_reference_t<R>*,
                                    std::conditional_t<std::is_void_v<R>, char, R>>;
  // Who has the last word on the job, once f has returned: the helper thread
  // (it readies the fiber) or the runtime's end (the fiber was abandoned
  // meanwhile, see the hook below). Exchanged once by each side.
  enum : int { running, finished, abandoned };
  struct job : detail::blocking_job {
    F* fn;
    detail::fiber* waiter;
    std::optional<stored> result;
    std::exception_ptr error;
    std::atomic<int> state{running};
  } j;
  j.fn = std::addressof(f);
  j.waiter = self;
  j.run = [](detail::blocking_job* base) {
    auto* jb = static_cast<job*>(base);
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(std::forward<F>(*jb->fn));
      } else if constexpr (std::is_reference_v<R>) {
        jb->result.emplace(std::addressof(std::invoke(std::forward<F>(*jb->fn))));
      } else {
        jb->result.emplace(std::invoke(std::forward<F>(*jb->fn)));
      }
    } catch (...) {
      jb->error = std::current_exception();
    }
    detail::fiber* w = jb->waiter;
    // The runtime ended while f ran: it left this frame mapped for good, and
    // the runtime is gone.
    if (jb->state.exchange(finished, std::memory_order_acq_rel) == abandoned) return;
    w->rt->ready(w);  // last touch of the job: the caller may return now
  };
  self->rt->add_pending_blocking(1);
  {
    // The runtime ends with this fiber parked here (main returned): f may
    // still be running on its helper thread, writing into this frame.
    detail::abandon_scope abandon(self, [&j, self] {
      if (j.state.exchange(abandoned, std::memory_order_acq_rel) == running) {
        self->rt->keep_stack(self);
        return;
      }
      // f has returned and its thread is readying this fiber: wait until
      // ready() has counted itself in with the runtime (it does so before it
      // marks the fiber runnable), so the runtime's end waits for it.
      while (self->state.load(std::memory_order_acquire) != detail::fiber_state::runnable)
        std::this_thread::yield();
    });
    detail::park(
        [](void* arg, detail::fiber*) {
          detail::blocking_pool::instance().submit(static_cast<job*>(arg));
          return true;
        },
        &j, detail::wait_reason::blocking_call);
  }
  self->rt->add_pending_blocking(-1);
  if (j.error) std::rethrow_exception(j.error);
  if constexpr (std::is_void_v<R>) {
    return;
  } else if constexpr (std::is_reference_v<R>) {
    return static_cast<R>(**j.result);
  } else {
    return std::move(*j.result);
  }
}

}  // namespace gofer
