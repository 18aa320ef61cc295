// Compiler, architecture and sanitizer detection for gofer, in one place.
//
// Every platform decision the rest of the library makes reads one of the
// macros below; nothing else tests __x86_64__ or __SANITIZE_ADDRESS__ directly.
// Overrides:
//   GOFER_FORCE_UCONTEXT  use the portable ucontext switch even where an
//                         assembly backend exists (slow: a syscall per switch).
#pragma once

#if defined(__x86_64__) && !defined(GOFER_FORCE_UCONTEXT)
#define GOFER_ARCH_X86_64 1
#elif defined(__aarch64__) && !defined(GOFER_FORCE_UCONTEXT)
#define GOFER_ARCH_AARCH64 1
#else
#define GOFER_ARCH_UCONTEXT 1
#endif

// The CPU, whatever the switch backend: the stack overflow handler reads the
// stack pointer out of a signal's saved registers.
#if defined(__x86_64__)
#define GOFER_CPU_X86_64 1
#elif defined(__aarch64__)
#define GOFER_CPU_AARCH64 1
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GOFER_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define GOFER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(GOFER_ASAN)
#define GOFER_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(GOFER_TSAN)
#define GOFER_TSAN 1
#endif

#define GOFER_NOINLINE __attribute__((noinline))
#define GOFER_ALWAYS_INLINE inline __attribute__((always_inline))
#define GOFER_LIKELY(x) __builtin_expect(!!(x), 1)
#define GOFER_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GOFER_STRINGIFY_(x) #x
#define GOFER_STRINGIFY(x) GOFER_STRINGIFY_(x)
