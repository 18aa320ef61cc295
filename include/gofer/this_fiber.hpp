// Operations on the calling fiber (std::this_thread's counterpart). Each also
// works on a plain thread, where it acts on the thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>

#include "gofer/detail/park/park.hpp"
#include "gofer/detail/time/timer_heap.hpp"

namespace gofer::detail {

struct sleep_timer : timer_node {
  fiber* sleeper = nullptr;
};

// Parks the calling fiber until the monotonic clock reads `when` (ns).
inline void sleep_until_ns(std::int64_t when) {
  fiber* self = current_fiber();
  if (self == nullptr) {
    std::int64_t left = when - monotonic_ns();
    if (left > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(left));
    return;
  }
  maybe_yield_randomly();
  if (when <= monotonic_ns()) return;  // as Go's time.Sleep(d <= 0)
  sleep_timer t;
  t.when = when;
  t.sleeper = self;
  t.fire = [](timer_node* n, std::int64_t) {
    fiber* f = static_cast<sleep_timer*>(n)->sleeper;
    f->rt->ready(f);  // last touch of the timer: the sleeper may return now
  };
  // The timer goes into the heap only once this fiber is switched out, so it
  // cannot fire (and ready the fiber) while the fiber is still running.
  park(
      [](void* arg, fiber* f) {
        f->rt->add_timer(static_cast<sleep_timer*>(arg));
        return true;
      },
      &t, wait_reason::sleep);
}

// The monotonic time `ns` from now, saturating: a huge duration never wraps
// into the past.
inline std::int64_t deadline_after_ns(std::int64_t ns) noexcept {
  std::int64_t now = monotonic_ns();
  if (ns <= 0) return now;
  if (ns >= never - now) return never - 1;
  return now + ns;
}

// A duration in nanoseconds, clamped to [0, never].
template <class Rep, class Period>
std::int64_t duration_ns(std::chrono::duration<Rep, Period> d) noexcept {
  auto ns = std::chrono::duration_cast<std::chrono::duration<double, std::nano>>(d).count();
  if (ns <= 0) return 0;
  if (ns >= static_cast<double>(never)) return never;
  return static_cast<std::int64_t>(ns);
}

template <class Rep, class Period>
std::int64_t deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
  return deadline_after_ns(duration_ns(d));
}

}  // namespace gofer::detail

namespace gofer::this_fiber {

// Lets other runnable fibers run; returns at once when there are none.
inline void yield() noexcept {
  detail::machine* m = detail::current_machine();
  if (m != nullptr && m->cur != nullptr) {
    detail::runtime_impl::yield(m);
  } else {
    std::this_thread::yield();
  }
}

template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  detail::sleep_until_ns(detail::deadline_after(d));
}

template <class Clock, class Dur>
void sleep_until(std::chrono::time_point<Clock, Dur> t) {
  sleep_for(t - Clock::now());
}

// The fiber's id (unique in the process, never 0), or 0 outside a fiber.
inline std::uint64_t id() noexcept {
  detail::fiber* f = detail::current_fiber();
  return f != nullptr ? f->id.load(std::memory_order_relaxed) : 0;
}

inline bool in_fiber() noexcept { return detail::current_fiber() != nullptr; }

}  // namespace gofer::this_fiber
