// The OS threads gofer itself starts, by kernel thread id, so that the
// deadlock check can tell them from the program's own threads (any of which
// might still wake a fiber).
//
// Thread names cannot tell: a thread inherits the name of the thread that
// created it, so a std::thread started from inside a fiber would carry an M's
// name and pass for one of the runtime's.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

namespace gofer::detail {

struct own_thread {
  long tid;
  unsigned serial;  // the runtime it belongs to; 0: it serves every runtime
};

// Never destroyed: a blocking-call worker is a detached thread that may
// leave (and unregister) while static destructors run after main returns.
struct own_thread_registry {
  std::mutex mu;
  std::vector<own_thread> threads;  // guarded by mu
};
inline own_thread_registry& own_threads() {
  static own_thread_registry* r = new own_thread_registry;
  return *r;
}

inline long current_tid() noexcept { return ::syscall(SYS_gettid); }

// Registers the calling thread for its lifetime.
class own_thread_scope {
 public:
  explicit own_thread_scope(unsigned serial) : tid_(current_tid()) {
    auto& r = own_threads();
    std::lock_guard lk(r.mu);
    r.threads.push_back({tid_, serial});
  }
  own_thread_scope(const own_thread_scope&) = delete;
  own_thread_scope& operator=(const own_thread_scope&) = delete;
  ~own_thread_scope() {
    auto& r = own_threads();
    std::lock_guard lk(r.mu);
    std::erase_if(r.threads, [&](const own_thread& t) { return t.tid == tid_; });
  }

 private:
  long tid_;
};

// Channels subscribed to signals (notify_signals): a fiber waiting on one
// can be woken from outside the process, so while any exists the deadlock
// check reports nothing (as Go, whose signal receiver keeps checkdead quiet).
inline std::atomic<int> signal_subscriptions{0};

// True if `tid` is one of gofer's threads that serves runtime `serial`.
inline bool is_own_thread(long tid, unsigned serial) {
  auto& r = own_threads();
  std::lock_guard lk(r.mu);
  return std::any_of(r.threads.begin(), r.threads.end(), [&](const own_thread& t) {
    return t.tid == tid && (t.serial == 0 || t.serial == serial);
  });
}

}  // namespace gofer::detail
