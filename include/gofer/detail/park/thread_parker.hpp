// How an OS thread (not a fiber) waits: a one-shot futex flag.
//
// unpark() may be called before park(); the flag remembers it. The object may
// be destroyed as soon as park() returns, even while unpark() is still inside
// futex_wake: the wake then targets memory that is still mapped (a thread's
// stack) and at worst wakes nobody, which futex allows.
#pragma once

#include <atomic>
#include <cstdint>

#include "gofer/detail/util/futex.hpp"

namespace gofer::detail {

class thread_parker {
 public:
  void park() noexcept {
    while (state_.load(std::memory_order_acquire) == 0) futex_wait(&state_, 0);
  }
  // False when the deadline (monotonic ns) passed first.
  bool park_until(std::int64_t deadline_ns, std::int64_t (*now)()) noexcept {
    while (state_.load(std::memory_order_acquire) == 0) {
      std::int64_t left = deadline_ns - now();
      if (left <= 0) return state_.load(std::memory_order_acquire) != 0;
      futex_wait(&state_, 0, left);
    }
    return true;
  }
  void unpark() noexcept {
    state_.store(1, std::memory_order_release);
    futex_wake(&state_);
  }
  bool notified() const noexcept { return state_.load(std::memory_order_acquire) != 0; }
  void reset() noexcept { state_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint32_t> state_{0};
};

}  // namespace gofer::detail
