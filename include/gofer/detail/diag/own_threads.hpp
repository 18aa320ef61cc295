// The OS threads gofer itself starts, by kernel thread id, so that the
// deadlock check can tell them from the program's own threads (any of which
// might still wake a fiber).
//
// Thread names cannot tell: a thread inherits the name of the thread that
// created it, so a std::thread started from inside a fiber would carry an M's
// name and pass for one of the runtime's.
#pragma once

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <span>
#include <vector>

namespace gofer::detail {

struct own_thread {
  long tid;
  unsigned serial;  // the runtime it belongs to; 0: it serves every runtime
  long pid;         // a child of fork() inherits entries for threads it lacks
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
    r.threads.push_back({tid_, serial, ::getpid()});
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

// The threads of this process now (the "Threads:" line of /proc/self/status),
// or -1 if that cannot be read.
inline long process_threads() noexcept {
  const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[8192];
  std::size_t len = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf + len, sizeof buf - 1 - len);
    if (n <= 0) break;
    len += static_cast<std::size_t>(n);
  }
  ::close(fd);
  buf[len] = '\0';
  const char* line = std::strstr(buf, "\nThreads:");
  return line != nullptr ? std::strtol(line + 9, nullptr, 10) : -1;
}

// Whether a thread of this process other than the caller and the threads of
// the runtimes in `serials` lives: one that might still make a fiber
// runnable. Errs towards yes: a gofer thread not yet registered, or
// deregistered but not yet gone, counts as another thread.
//
// It counts rather than lists. A listing of /proc/self/task ends early when
// the thread it has reached exits meanwhile (the kernel walks on from that
// thread), so it misses live threads whenever threads exit as the deadlock
// check looks, which is how a program's last threads end. The count is exact,
// and while the registry is locked every thread in it is alive (each
// registers once running and deregisters before it ends), so the difference
// is the number of the others.
inline bool other_threads_alive(std::span<const unsigned> serials) {
  const long self = current_tid();
  const long pid = ::getpid();
  auto& r = own_threads();
  std::lock_guard lk(r.mu);
  const long all = process_threads();
  if (all < 0) return true;
  // One entry per thread: each registers once, for its lifetime.
  const auto own = std::count_if(r.threads.begin(), r.threads.end(), [&](const own_thread& t) {
    return t.pid == pid && t.tid != self &&
           (t.serial == 0 || std::find(serials.begin(), serials.end(), t.serial) != serials.end());
  });
  return all - 1 - own > 0;
}

}  // namespace gofer::detail
