// Stack overflow is never silent: it names the fiber and aborts.
//
// With guard pages, the overflowing access faults on the guard; a SIGSEGV
// handler, running on an alternate signal stack (the fiber's own stack is the
// one that is exhausted), recognises the guard of the running fiber's stack and
// prints "gofer: stack overflow in fiber N (name)". Any other fault goes to the
// handler that was installed before (or the default action).
//
// Without guard pages, every switch away from a fiber checks its canary (the
// zero words at the far end, see slab.hpp) and its stack pointer.
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "gofer/detail/fiber.hpp"

namespace gofer::detail {

// Set by the scheduler: the fiber the calling thread runs (null on g0 or a
// plain thread). A hook, so this layer needs nothing from the scheduler's.
// Atomic: every runtime sets it as it starts, and runtimes may start on
// several threads at once; a lock-free atomic pointer is safe to read in a
// signal handler.
using running_fiber_fn = fiber* (*)() noexcept;
inline std::atomic<running_fiber_fn> running_fiber_hook{nullptr};

inline void write_all(int fd, const char* s, std::size_t n) noexcept {
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

inline void write_str(int fd, const char* s) noexcept { write_all(fd, s, std::strlen(s)); }

// Async-signal-safe: no allocation, no stdio.
[[noreturn]] inline void report_overflow(const fiber* f) noexcept {
  char buf[64];
  char* p = buf + sizeof buf;
  std::uint64_t id = f->id.load(std::memory_order_relaxed);
  do {
    *--p = static_cast<char>('0' + id % 10);
    id /= 10;
  } while (id != 0);
  write_str(2, "gofer: stack overflow in fiber ");
  write_all(2, p, static_cast<std::size_t>(buf + sizeof buf - p));
  char name[max_fiber_name];
  std::size_t n = f->copy_name(name, sizeof name);
  write_str(2, " (");
  write_all(2, name, n);
  write_str(2, ")\n");
  if (const char* file = f->created_file.load(std::memory_order_relaxed)) {
    write_str(2, "created by ");
    write_str(2, file);
    write_str(2, "\n");
  }
  std::abort();
}

inline void check_stack(const fiber* f) noexcept {
  char probe;
  if (!f->stack.canary_intact() ||
      static_cast<void*>(&probe) < f->stack.usable_bottom())
    report_overflow(f);
}

inline struct sigaction previous_segv_action;

inline void overflow_signal_handler(int sig, siginfo_t* info, void* uctx) {
  running_fiber_fn hook = running_fiber_hook.load(std::memory_order_relaxed);
  fiber* f = hook != nullptr ? hook() : nullptr;
  if (f != nullptr && f->stack.guarded) {
    auto* addr = static_cast<char*>(info->si_addr);
    auto* bottom = static_cast<char*>(f->stack.bottom);
    // The guard page, or just below it: a large frame may skip the guard.
    if (addr < bottom && addr >= bottom - 64 * 1024) report_overflow(f);
  }
  const struct sigaction& prev = previous_segv_action;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction != nullptr) {
      prev.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN &&
             prev.sa_handler != nullptr) {
    prev.sa_handler(sig);
    return;
  }
  // Default action: restore it and return, so the access faults again and the
  // process dies of SIGSEGV as it would have without us.
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGSEGV, &dfl, nullptr);
}

inline void install_overflow_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa{};
    sa.sa_sigaction = &overflow_signal_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &previous_segv_action);
  });
}

// An alternate signal stack for the calling thread, for its lifetime.
class alt_signal_stack {
 public:
  alt_signal_stack() {
    size_ = 64 * 1024;
    mem_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem_ == MAP_FAILED) {
      mem_ = nullptr;
      return;
    }
    stack_t ss{};
    ss.ss_sp = mem_;
    ss.ss_size = size_;
    if (::sigaltstack(&ss, &old_) != 0) {
      ::munmap(mem_, size_);
      mem_ = nullptr;
    }
  }
  ~alt_signal_stack() {
    if (mem_ == nullptr) return;
    stack_t ss{};
    ss.ss_flags = SS_DISABLE;
    ::sigaltstack(&ss, nullptr);
    ::munmap(mem_, size_);
  }
  alt_signal_stack(const alt_signal_stack&) = delete;
  alt_signal_stack& operator=(const alt_signal_stack&) = delete;

 private:
  void* mem_ = nullptr;
  std::size_t size_ = 0;
  stack_t old_{};
};

}  // namespace gofer::detail
