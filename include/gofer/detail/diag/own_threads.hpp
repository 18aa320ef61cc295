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
#include <mutex>
#include <vector>

namespace gofer::detail {

struct own_thread {
  long tid;
  unsigned serial;  // the runtime it belongs to; 0: it serves every runtime
};

inline std::mutex own_threads_mu;
inline std::vector<own_thread> own_threads;  // guarded by own_threads_mu

inline long current_tid() noexcept { return ::syscall(SYS_gettid); }

// Registers the calling thread for its lifetime.
class own_thread_scope {
 public:
  explicit own_thread_scope(unsigned serial) : tid_(current_tid()) {
    std::lock_guard lk(own_threads_mu);
    own_threads.push_back({tid_, serial});
  }
  own_thread_scope(const own_thread_scope&) = delete;
  own_thread_scope& operator=(const own_thread_scope&) = delete;
  ~own_thread_scope() {
    std::lock_guard lk(own_threads_mu);
    std::erase_if(own_threads, [&](const own_thread& t) { return t.tid == tid_; });
  }

 private:
  long tid_;
};

// True if `tid` is one of gofer's threads that serves runtime `serial`.
inline bool is_own_thread(long tid, unsigned serial) {
  std::lock_guard lk(own_threads_mu);
  return std::any_of(own_threads.begin(), own_threads.end(), [&](const own_thread& t) {
    return t.tid == tid && (t.serial == 0 || t.serial == serial);
  });
}

}  // namespace gofer::detail
