// Selects the context-switch backend and wraps it with the sanitizer hooks.
//
// Every backend is a struct with the same static interface:
//   static constexpr const char* name;
//   static void* make(void* stack_bottom, std::size_t size, void (*fn)(void*), void* arg);
//       a suspended context that, when resumed, calls fn(arg) on that stack; fn never returns
//   static void jump(void** save_sp, void* to_sp);
//       suspends the caller into *save_sp and resumes to_sp
// x86_64_sysv.hpp and aarch64_aapcs64.hpp are the fast ones; ucontext.hpp is the
// portable fallback (forced with GOFER_FORCE_UCONTEXT) and a second backend the
// contract test runs against.
#pragma once

#include <cstddef>

#include <pthread.h>

#include "gofer/detail/arch/sanitizer_hooks.hpp"
#include "gofer/detail/config.hpp"

#if GOFER_ARCH_X86_64
#include "gofer/detail/arch/x86_64_sysv.hpp"
#elif GOFER_ARCH_AARCH64
#include "gofer/detail/arch/aarch64_aapcs64.hpp"
#endif
#include "gofer/detail/arch/ucontext.hpp"

namespace gofer::detail::arch {

#if GOFER_ARCH_X86_64
using native_backend = x86_64::backend;
#elif GOFER_ARCH_AARCH64
using native_backend = aarch64::backend;
#else
using native_backend = ucontext::backend;
#endif

// One execution context: a fiber's, or an OS thread's own (the scheduler loop).
template <class Backend>
struct basic_context {
  void* sp = nullptr;
  sanitizer::stack_info stack;
};

using context = basic_context<native_backend>;

// Turns the calling thread's own stack into a context that fibers can switch
// back to. ASan needs that stack's bounds to accept the switch back.
template <class Backend>
void init_thread_context(basic_context<Backend>& c) noexcept {
  c.sp = nullptr;
  c.stack = {};
  c.stack.tsan_fiber = sanitizer::current_thread_fiber();
#if GOFER_ASAN
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    c.stack.bottom = addr;
    c.stack.size = size;
    pthread_attr_destroy(&attr);
  }
#endif
}

template <class Backend>
void make_context(basic_context<Backend>& c, void* stack_bottom, std::size_t size,
                  void (*fn)(void*), void* arg) noexcept {
  sanitizer::unpoison_stack(stack_bottom, size);
  c.sp = Backend::make(stack_bottom, size, fn, arg);
  c.stack.bottom = stack_bottom;
  c.stack.size = size;
  c.stack.tsan_fiber = sanitizer::create_fiber();
}

// Releases what make_context acquired; never on the running context.
template <class Backend>
void destroy_context(basic_context<Backend>& c) noexcept {
  sanitizer::destroy_fiber(c.stack.tsan_fiber);
  c.stack.tsan_fiber = nullptr;
}

// Suspends `from` and resumes `to`; returns when something switches back to `from`.
template <class Backend>
inline void switch_context(basic_context<Backend>& from, basic_context<Backend>& to) noexcept {
  void* fake_stack = nullptr;
  sanitizer::before_switch(&fake_stack, to.stack);
  Backend::jump(&from.sp, to.sp);
  sanitizer::after_switch(fake_stack);
}

// Leaves `from` for good: it is never resumed, so ASan may drop its fake frames.
template <class Backend>
[[noreturn]] inline void exit_context(basic_context<Backend>& from,
                                      basic_context<Backend>& to) noexcept {
  sanitizer::before_switch(nullptr, to.stack);
  Backend::jump(&from.sp, to.sp);
  __builtin_unreachable();
}

// Must be the first call in every entry function passed to make_context.
inline void on_context_entry() noexcept { sanitizer::after_switch(nullptr); }

}  // namespace gofer::detail::arch
