// once: runs a function exactly once however many fibers or threads ask,
// as Go's sync.Once, with std::call_once's rule for exceptions.
//
// Every call() returns only after the function has finished: a caller that
// loses the race waits on the mutex for the winner, so it never sees a half
// initialised result. That is why this is not a bare CAS on the flag (Go's
// comment on Once.Do explains the same trap). The flag is read with acquire
// on the fast path: a done once costs one load and a branch.
//
// If f throws, the exception reaches its caller and the once stays not done,
// so a later call tries again (std::call_once's rule; Go's Once would count
// the panicking call as done).
#pragma once

#include <atomic>
#include <mutex>
#include <utility>

#include "gofer/sync/mutex.hpp"

namespace gofer {

class once {
 public:
  constexpr once() noexcept = default;
  once(const once&) = delete;
  once& operator=(const once&) = delete;

  template <class F>
  void call(F&& f) {
    if (done_.load(std::memory_order_acquire)) [[likely]]
      return;
    call_slow(std::forward<F>(f));
  }

  bool done() const noexcept { return done_.load(std::memory_order_acquire); }

 private:
  template <class F>
  void call_slow(F&& f) {
    std::lock_guard lk(m_);
    if (done_.load(std::memory_order_relaxed)) return;
    std::forward<F>(f)();
    done_.store(true, std::memory_order_release);
  }

  std::atomic<bool> done_{false};
  mutex m_;
};

}  // namespace gofer
