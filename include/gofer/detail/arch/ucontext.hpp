// The portable context-switch backend: POSIX getcontext/makecontext/swapcontext
// (the role Boost.Context's fiber_ucontext plays). Slow: swapcontext saves and
// restores the signal mask with a system call on every switch. So it is used
// only on targets without an assembly backend, or when GOFER_FORCE_UCONTEXT
// asks for it; it is always compiled so the contract test holds both backends
// to the same rules.
//
// A suspended context is a pointer to a ucontext_t that lives on the suspended
// stack itself: a local of jump() for a context that has run, and a block
// placed at the top of the stack by make() for a new one. Either way it lives
// exactly as long as the context is suspended and needs no allocation.
//
// Because swapcontext carries the signal mask with the context, a fiber that
// resumes on another thread takes the mask it was suspended with there. The
// threads that run fibers must therefore all block the same signals.
#pragma once

#include <ucontext.h>

#include <cfenv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "gofer/detail/config.hpp"

// jump() must carry no ThreadSanitizer instrumentation at all, not even the
// function entry/exit calls that keep TSan's per-fiber shadow call stack.
// context.hpp switches TSan to the target fiber before calling jump(), so an
// instrumented jump() would push its entry onto the target fiber's shadow
// stack and pop its exit from whichever fiber swapcontext returns into. When
// the compiler inlines jump() on one side of a switch and not on the other,
// those no longer pair up: one fiber's shadow stack grows by a frame per
// switch and the other's falls below its base, and TSan's runtime crashes
// when it next copies that stack. GCC's no_sanitize("thread") drops the whole
// TSan pass, entry/exit included; Clang keeps entry/exit under no_sanitize and
// drops them only under disable_sanitizer_instrumentation.
#if defined(__clang__) && defined(__has_attribute)
#if __has_attribute(disable_sanitizer_instrumentation)
#define GOFER_UCONTEXT_NO_TSAN __attribute__((disable_sanitizer_instrumentation))
#endif
#endif
#ifndef GOFER_UCONTEXT_NO_TSAN
#define GOFER_UCONTEXT_NO_TSAN __attribute__((no_sanitize("thread")))
#endif

namespace gofer::detail::arch::ucontext {

struct backend {
  static constexpr const char* name = "ucontext";

  // What make() leaves at the top of a new stack.
  struct start_block {
    ucontext_t uc;
    void (*fn)(void*);
    void* arg;
  };

  static void* make(void* stack_bottom, std::size_t size, void (*fn)(void*), void* arg) noexcept {
    auto top = reinterpret_cast<std::uintptr_t>(stack_bottom) + size;
    auto at = (top - sizeof(start_block)) & ~std::uintptr_t{alignof(start_block) - 1};
    auto* b = ::new (reinterpret_cast<void*>(at)) start_block{};
    b->fn = fn;
    b->arg = arg;
    getcontext(&b->uc);
    b->uc.uc_stack.ss_sp = stack_bottom;
    b->uc.uc_stack.ss_size = (at - reinterpret_cast<std::uintptr_t>(stack_bottom)) & ~std::size_t{15};
    b->uc.uc_stack.ss_flags = 0;
    // Never used: fn does not return.
    b->uc.uc_link = nullptr;
    // makecontext passes only int arguments, so the 64-bit address travels as
    // two 32-bit halves.
    auto addr = reinterpret_cast<std::uintptr_t>(b);
    makecontext(&b->uc, reinterpret_cast<void (*)()>(&trampoline), 2,
                static_cast<unsigned>(static_cast<std::uint64_t>(addr) >> 32),
                static_cast<unsigned>(addr & 0xffffffffu));
    return &b->uc;
  }

  // `here` must be on the real stack: under ASan's use-after-return detection
  // an address-taken local moves to a heap "fake frame", and exit_context tells
  // ASan to free the leaving context's fake frames before this swapcontext
  // writes into `here`.
  // Never inlined, and free of TSan instrumentation (see GOFER_UCONTEXT_NO_TSAN):
  // between context.hpp's __tsan_switch_to_fiber and the stack switch nothing
  // may touch TSan's state, so that every switch, on either side, leaves both
  // fibers' shadow call stacks exactly as it found them.
  __attribute__((no_sanitize_address, noinline)) GOFER_UCONTEXT_NO_TSAN static void jump(
      void** save_sp, void* to_sp) noexcept {
    ucontext_t here;
    // ASan's swapcontext interceptor clears the shadow of the target's
    // uc_stack; this one is resumed only by a later jump, and must not name a
    // random range.
    here.uc_stack.ss_sp = nullptr;
    here.uc_stack.ss_size = 0;
    here.uc_stack.ss_flags = 0;
    *save_sp = &here;
    swapcontext(&here, static_cast<ucontext_t*>(to_sp));
  }

 private:
  static void trampoline(unsigned hi, unsigned lo) noexcept {
    auto* b = reinterpret_cast<start_block*>(
        static_cast<std::uintptr_t>((static_cast<std::uint64_t>(hi) << 32) | lo));
    // getcontext copied the creating thread's FP environment; a new context
    // starts from the default one instead, as the assembly backends do, so a
    // fiber does not depend on where it was created.
    std::fesetenv(FE_DFL_ENV);
#if defined(__aarch64__)
    // glibc's default environment keeps the FPCR bits <fenv.h> cannot name
    // (default-NaN, alternative half-precision); a new thread has them clear.
    __asm__ volatile("msr fpcr, xzr");
#endif
    b->fn(b->arg);
    std::abort();  // fn must not return
  }
};

}  // namespace gofer::detail::arch::ucontext
