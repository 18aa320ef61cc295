// The OS threads gofer itself starts, by kernel thread id, so that the
// deadlock check can tell them from the program's own threads (any of which
// might still wake a fiber).
//
// Thread names cannot tell: a thread inherits the name of the thread that
// created it, so a std::thread started from inside a fiber would carry an M's
// name and pass for one of the runtime's.
//
// In sanitizer builds the sanitizer's runtime has threads of its own too
// (ThreadSanitizer's background thread, started with a process's first
// thread and again in a child it forks; the RSS-limit thread of any of them
// when asked for), which wake no fiber. They cannot be registered, and their
// names are inherited too, so they are recognised by what the sanitizers'
// runtimes do to every thread they start themselves (internal_start_thread
// in sanitizer_common): the thread blocks every signal ("otherwise it can
// steal user signals"), and it waits in a system call made by the runtime's
// own code, not through the C library as any interceptor or user code does.
// See sanitizer_thread.
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

#include "gofer/detail/config.hpp"

#if GOFER_ASAN || GOFER_TSAN
#include <dirent.h>
#include <dlfcn.h>
#include <sanitizer/common_interface_defs.h>
#include <signal.h>

#include <cstdint>
#include <cstdio>
#endif

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

// Reads a small /proc file into buf as a C string; its length, or -1.
inline long read_proc_file(const char* path, char* buf, std::size_t cap) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  std::size_t len = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf + len, cap - 1 - len);
    if (n <= 0) break;
    len += static_cast<std::size_t>(n);
  }
  ::close(fd);
  buf[len] = '\0';
  return static_cast<long>(len);
}

// The threads of this process now (the "Threads:" line of /proc/self/status),
// or -1 if that cannot be read.
inline long process_threads() noexcept {
  char buf[8192];
  if (read_proc_file("/proc/self/status", buf, sizeof buf) < 0) return -1;
  const char* line = std::strstr(buf, "\nThreads:");
  return line != nullptr ? std::strtol(line + 9, nullptr, 10) : -1;
}

#if GOFER_ASAN || GOFER_TSAN
// Whether thread `tid` of this process is one the sanitizer's runtime
// started for itself (see the header). Both signs are needed:
//   - every standard signal blocked (1 to 30; SIGKILL and SIGSTOP cannot be,
//     and runtimes differ on SIGSYS and the C library's real-time ones). A
//     program may block signals in its own threads too, typically all of them
//     in a thread that takes them with sigwait;
//   - and waiting in a system call whose instruction lies in the object that
//     holds the sanitizer's runtime (its shared library, or the executable
//     when it is linked in statically). A program's threads, the sigwait one
//     included, make their calls through the C library, a shared object of
//     its own, even when an interceptor stands in between.
// A thread caught running, or whose files cannot be read, is not recognised:
// the deadlock check then gives up this time and looks again later.
inline bool sanitizer_thread(long tid) noexcept {
  char path[64];
  char buf[4096];
  std::snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
  if (read_proc_file(path, buf, sizeof buf) < 0) return false;
  const char* blk = std::strstr(buf, "\nSigBlk:");
  if (blk == nullptr) return false;
  const unsigned long long blocked = std::strtoull(blk + 8, nullptr, 16);
  unsigned long long standard = 0;
  for (int sig = 1; sig <= 30; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) standard |= 1ull << (sig - 1);
  }
  if ((blocked & standard) != standard) return false;
  // "nr arg1 ... arg6 sp pc" while in a system call; "running" otherwise.
  std::snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
  if (read_proc_file(path, buf, sizeof buf) <= 0 || buf[0] == 'r') return false;
  const char* pc_text = std::strrchr(buf, ' ');
  if (pc_text == nullptr) return false;
  const auto pc = static_cast<std::uintptr_t>(std::strtoull(pc_text + 1, nullptr, 16));
  Dl_info at{}, runtime{};
  if (::dladdr(reinterpret_cast<void*>(pc), &at) == 0) return false;
  if (::dladdr(reinterpret_cast<void*>(&__sanitizer_print_stack_trace), &runtime) == 0)
    return false;
  return at.dli_fbase != nullptr && at.dli_fbase == runtime.dli_fbase;
}

// The sanitizer's own threads alive now, other than the caller and the
// threads in `skip`. They live as long as the process (the background thread
// is stopped only for sandboxes), so counting them a moment before the
// process's threads are counted counts each once.
template <class Skip>
long sanitizer_threads(long self, Skip&& skip) noexcept {
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return 0;
  long n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const long tid = std::strtol(e->d_name, nullptr, 10);
    if (tid != self && !skip(tid) && sanitizer_thread(tid)) ++n;
  }
  ::closedir(d);
  return n;
}
#else
template <class Skip>
constexpr long sanitizer_threads(long, Skip&&) noexcept {
  return 0;
}
#endif

// Whether a thread of this process other than the caller, the threads of
// the runtimes in `serials` and the sanitizer's own lives: one that might
// still make a fiber runnable. Errs towards yes: a gofer thread not yet
// registered, or deregistered but not yet gone, counts as another thread.
//
// It counts rather than lists. A listing of /proc/self/task ends early when
// the thread it has reached exits meanwhile (the kernel walks on from that
// thread), so it misses live threads whenever threads exit as the deadlock
// check looks, which is how a program's last threads end. The count is exact,
// and while the registry is locked every thread in it is alive (each
// registers once running and deregisters before it ends), so the difference
// is the number of the others. (The sanitizer's threads are found by a
// listing, which may miss one: that errs towards yes as well.)
inline bool other_threads_alive(std::span<const unsigned> serials) {
  const long self = current_tid();
  const long pid = ::getpid();
  auto& r = own_threads();
  std::lock_guard lk(r.mu);
  // Registered threads are left out of the sanitizer's count: a thread of a
  // runtime started where every signal is blocked inherits the mask.
  const long sanitizer = sanitizer_threads(self, [&](long tid) {
    return std::any_of(r.threads.begin(), r.threads.end(),
                       [&](const own_thread& t) { return t.pid == pid && t.tid == tid; });
  });
  const long all = process_threads();
  if (all < 0) return true;
  // One entry per thread: each registers once, for its lifetime.
  const auto own = std::count_if(r.threads.begin(), r.threads.end(), [&](const own_thread& t) {
    return t.pid == pid && t.tid != self &&
           (t.serial == 0 || std::find(serials.begin(), serials.end(), t.serial) != serials.end());
  });
  return all - 1 - own - sanitizer > 0;
}

}  // namespace gofer::detail
