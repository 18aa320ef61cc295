// Stack overflow is never silent: it names the fiber and aborts.
//
// Two checks, both on whatever the stacks' layout (slab.hpp):
//   - A SIGSEGV handler, installed by every runtime that starts and running
//     on the alternate signal stack each M sets up (the fiber's own stack is
//     the one that is exhausted). A fault is an overflow of the fiber the
//     faulting thread runs when
//       * the address lies in that fiber's guard page or canary zone, or at
//         most `overflow_reach` below them: a frame that crossed the bottom
//         touches those first, or skips the guard by up to a frame; or
//       * the interrupted stack pointer lies below the fiber's usable stack
//         and the address near it (from `overflow_reach` below it up to the
//         stack's top): a single frame larger than what was left, or, in a
//         canary slab, a recursion that ran on through the stacks below until
//         something faulted. Nothing but an overflow runs a fiber with its
//         stack pointer below its stack, unless the fiber's code switched to
//         a stack of its own; asking for the fault to be near the stack
//         pointer keeps that code's other faults (a null pointer) its own.
//     Then it prints "gofer: stack overflow in fiber N (name)" and where the
//     fiber was created, and aborts. Every other fault goes to the handler
//     that was installed before gofer's, or gets the default action, as if
//     gofer's were not there. A program that installs its own handler after
//     a runtime started replaces gofer's, and gets every fault; the next
//     runtime to start puts gofer's back in front of it.
//   - Every switch away from a fiber compares its stack pointer with the
//     stack's usable bottom and, in a canary slab, reads the canary
//     (slab.hpp says what each misses).
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "gofer/detail/config.hpp"
#include "gofer/detail/fiber.hpp"

namespace gofer::detail {

// Set by the scheduler: the fiber the calling thread runs (null on g0 or a
// plain thread). A hook, so this layer needs nothing from the scheduler's.
// Atomic: every runtime sets it as it starts, and runtimes may start on
// several threads at once; a lock-free atomic pointer is safe to read in a
// signal handler.
using running_fiber_fn = fiber* (*)() noexcept;
inline std::atomic<running_fiber_fn> running_fiber_hook{nullptr};

// How far below a stack's bottom (or below the stack pointer) a fault still
// counts as that stack's overflow: the largest frame whose first touch lands
// that far, generously.
inline constexpr std::uintptr_t overflow_reach = 64 * 1024;

// A message built without allocation, for a signal handler.
class report_buffer {
 public:
  void add(const char* s, std::size_t n) noexcept {
    n = std::min(n, sizeof buf_ - len_);
    std::memcpy(buf_ + len_, s, n);
    len_ += n;
  }
  void add(const char* s) noexcept { add(s, std::strlen(s)); }
  void add(std::uint64_t v) noexcept {
    char digits[24];
    char* p = digits + sizeof digits;
    do {
      *--p = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    add(p, static_cast<std::size_t>(digits + sizeof digits - p));
  }
  void write_to(int fd) const noexcept {
    const char* s = buf_;
    std::size_t n = len_;
    while (n > 0) {
      ssize_t w = ::write(fd, s, n);
      if (w <= 0) return;
      s += w;
      n -= static_cast<std::size_t>(w);
    }
  }

 private:
  char buf_[1536];
  std::size_t len_ = 0;
};

// The thread writing a report (0: none yet). One report per process: an
// overflow that jumped its guard may have written over a neighbouring
// fiber's saved registers, and another M that resumes that fiber faults on
// them, perhaps in a way that looks like an overflow of that fiber too. Such
// a fault waits for the abort that ends the first report, so that the
// report, not a second one or a bare SIGSEGV, ends the process.
inline std::atomic<long> overflow_reporter{0};

[[noreturn]] inline void wait_for_the_report() noexcept {
  for (;;) ::pause();
}

// Async-signal-safe: no allocation, no stdio. Reads only the fiber's block
// and name, which sit at the top of its stack, far from the end that
// overflowed. One write, so that the report is out before anything else
// the overflow broke can end the process.
[[noreturn]] inline void report_overflow(const fiber* f) noexcept {
  const long self = ::syscall(SYS_gettid);
  long none = 0;
  // The same thread may come back here: a report from a switch runs on the
  // overflowed stack, and may fault below it.
  if (!overflow_reporter.compare_exchange_strong(none, self, std::memory_order_relaxed) && none != self)
    wait_for_the_report();
  report_buffer r;
  r.add("gofer: stack overflow in fiber ");
  r.add(f->id.load(std::memory_order_relaxed));
  char name[max_fiber_name];
  const std::size_t n = f->copy_name(name, sizeof name);
  r.add(" (");
  r.add(name, n);
  r.add(")\ncreated by ");
  const char* file = f->created_file.load(std::memory_order_relaxed);
  r.add(file != nullptr ? file : "?");
  r.add(":");
  r.add(f->created_line.load(std::memory_order_relaxed));
  r.add("\nits stack holds ");
  r.add(f->stack.size / 1024);
  r.add(" KiB: a deeper one comes from fiber_options::stack_size or options::stack_size\n");
  r.write_to(2);
  std::abort();
}

// The stack pointer, read from the register: the address of a local would
// not do, as in a caller with alloca or a variable-length array (the frames
// most likely to overflow) the compiler keeps locals above the dynamic part.
inline std::uintptr_t current_stack_pointer() noexcept {
  std::uintptr_t sp;
#if GOFER_CPU_X86_64
  asm volatile("mov %%rsp, %0" : "=r"(sp));
#elif GOFER_CPU_AARCH64
  asm volatile("mov %0, sp" : "=r"(sp));
#else
  sp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
#endif
  return sp;
}

// What the switch itself may still push below the stack pointer that
// check_stack reads: its saved registers and the exception-state save's
// frame. Overflowing there would fault with the next fiber already current,
// and be reported as that fiber's (or, from the M's own stack, not at all).
inline constexpr std::uintptr_t switch_frame_margin = 256;

// At every switch away from f, on f's stack.
inline void check_stack(const fiber* f) noexcept {
  if (current_stack_pointer() <
          reinterpret_cast<std::uintptr_t>(f->stack.usable_bottom()) + switch_frame_margin ||
      !f->stack.canary_intact())
    report_overflow(f);
}

// The stack pointer of the interrupted code, or 0 where it is not read.
inline std::uintptr_t interrupted_stack_pointer([[maybe_unused]] const void* uctx) noexcept {
#if GOFER_CPU_X86_64
  return static_cast<std::uintptr_t>(static_cast<const ucontext_t*>(uctx)->uc_mcontext.gregs[REG_RSP]);
#elif GOFER_CPU_AARCH64
  return static_cast<std::uintptr_t>(static_cast<const ucontext_t*>(uctx)->uc_mcontext.sp);
#else
  return 0;
#endif
}

// Whether a fault at `addr`, with the stack pointer at `sp` (0: unknown), is
// an overflow of the stack `s` (see the header).
inline bool is_overflow(const stack_slot& s, std::uintptr_t addr, std::uintptr_t sp) noexcept {
  const auto bottom = reinterpret_cast<std::uintptr_t>(s.bottom);
  const auto usable = reinterpret_cast<std::uintptr_t>(s.usable_bottom());
  const auto top = reinterpret_cast<std::uintptr_t>(s.top());
  const std::uintptr_t floor = bottom > overflow_reach + page_size() ? bottom - overflow_reach - page_size() : 0;
  if (addr < usable && addr >= floor) return true;
  if (sp == 0 || sp >= usable) return false;
  return addr < top && addr >= (sp > overflow_reach ? sp - overflow_reach : 0);
}

// The action gofer's handler found in place; guarded by overflow_handler_mu,
// and read by the handler, which a change never races: a change happens only
// while gofer's handler is not installed.
inline struct sigaction previous_segv_action;
inline std::mutex overflow_handler_mu;

// Whether this thread is in the handler found in place, called from gofer's.
// That handler may be one installed after gofer's, which passes on to gofer's
// as its own previous one (a second runtime then put gofer's back in front):
// a fault passed around that circle ends in the default action instead.
inline thread_local bool passing_segv_on = false;

inline void overflow_signal_handler(int sig, siginfo_t* info, void* uctx) {
  running_fiber_fn hook = running_fiber_hook.load(std::memory_order_relaxed);
  fiber* f = hook != nullptr ? hook() : nullptr;
  if (f != nullptr && is_overflow(f->stack, reinterpret_cast<std::uintptr_t>(info->si_addr),
                                  interrupted_stack_pointer(uctx)))
    report_overflow(f);
  const long reporter = overflow_reporter.load(std::memory_order_relaxed);
  // Not the reporter's own fault (a report that faults): that one goes on
  // to the previous handler, rather than wait for itself forever.
  if (reporter != 0 && reporter != ::syscall(SYS_gettid)) wait_for_the_report();
  const struct sigaction& prev = previous_segv_action;
  if (!passing_segv_on) {
    if (prev.sa_flags & SA_SIGINFO) {
      if (prev.sa_sigaction != nullptr) {
        passing_segv_on = true;
        prev.sa_sigaction(sig, info, uctx);
        passing_segv_on = false;
        return;
      }
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN &&
               prev.sa_handler != nullptr) {
      passing_segv_on = true;
      prev.sa_handler(sig);
      passing_segv_on = false;
      return;
    }
  }
  // Default action: restore it and return, so the access faults again and the
  // process dies of SIGSEGV as it would have without us. A SIGSEGV sent by
  // kill() or raise() faults nowhere: sent again, it stays pending until this
  // handler returns, then takes the default action.
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGSEGV, &dfl, nullptr);
  if (info->si_code <= 0) ::raise(sig);
}

// Puts gofer's handler in front of whatever handles SIGSEGV now, unless it
// is there already. Called by every runtime as it starts, not once per
// process: a handler installed since (a test framework's, a forked child's
// reset to the default) would otherwise leave overflows to a bare SIGSEGV.
inline void install_overflow_handler() {
  std::lock_guard lk(overflow_handler_mu);
  struct sigaction current{};
  if (::sigaction(SIGSEGV, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) != 0 && current.sa_sigaction == &overflow_signal_handler) return;
  previous_segv_action = current;
  struct sigaction sa{};
  sa.sa_sigaction = &overflow_signal_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGSEGV, &sa, nullptr);
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
