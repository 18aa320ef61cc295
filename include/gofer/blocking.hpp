// blocking(f): runs a blocking call (file I/O, a blocking C library) on a
// helper thread while the calling fiber parks, so the M keeps running other
// fibers. Returns f's result; an exception from f is rethrown in the caller.
// Outside a fiber it simply calls f.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
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
  struct job : detail::blocking_job {
    F* fn;
    detail::fiber* waiter;
    std::optional<stored> result;
    std::exception_ptr error;
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
    w->rt->ready(w);  // last touch of the job: the caller may return now
  };
  self->rt->add_pending_blocking(1);
  detail::park(
      [](void* arg, detail::fiber*) {
        detail::blocking_pool::instance().submit(static_cast<job*>(arg));
        return true;
      },
      &j, detail::wait_reason::blocking_call);
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
