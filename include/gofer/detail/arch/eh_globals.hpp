// The C++ runtime's per-thread exception state, which a fiber carries across
// switches as it carries its registers.
//
// The Itanium C++ ABI (§2.2.2, "Caught Exception Stack"; followed by
// libstdc++'s libsupc++ and by libc++abi alike) keeps, per thread, the chain
// of exceptions currently being handled (what std::current_exception() and
// `throw;` use) and the count of exceptions thrown and not yet caught (what
// std::uncaught_exceptions() returns). A fiber that parks inside a catch
// block, or in a destructor run by unwinding, and resumes, perhaps on another
// thread, must find its own state there, and the fibers that ran in between
// must not see it. So the scheduler moves the state out of the thread into the
// fiber when the fiber switches away, and back when it resumes (switch_away in
// scheduler.hpp).
//
// The state is almost always empty at a switch: a fiber seldom parks inside a
// handler. The switch therefore only tests the thread's state for emptiness
// (two loads from a line the thread owns), and a resuming fiber restores only
// if it saved something, which a flag on a line every switch touches anyway
// says. Nothing is copied otherwise.
#pragma once

#include <cstdint>
#include <exception>  // whichever C++ library this is: __GLIBCXX__ or _LIBCPP_VERSION

// Both runtimes export __cxa_get_globals, but only libstdc++ declares it in
// <cxxabi.h> (libc++abi keeps it in a private header). This declaration is
// the same as libstdc++'s, exception specification included, so a program may
// include <cxxabi.h> as well, before or after.
namespace __cxxabiv1 {
struct __cxa_eh_globals;
#if defined(__GLIBCXX__)
extern "C" __cxa_eh_globals* __cxa_get_globals() noexcept;
#else
extern "C" __cxa_eh_globals* __cxa_get_globals();
#endif
}  // namespace __cxxabiv1

namespace gofer::detail::arch {

// A mirror of __cxa_eh_globals, whose definition the runtimes keep private;
// only the ABI fixes its layout. The pointer is an opaque chain (each
// __cxa_exception links to the next): only ever copied, never followed.
struct eh_globals {
  void* caught = nullptr;     // caughtExceptions: the innermost exception being handled
  unsigned int uncaught = 0;  // uncaughtExceptions
#if defined(__arm__) && !defined(__USING_SJLJ_EXCEPTIONS__) && !defined(__ARM_DWARF_EH__)
  // The ARM EHABI adds the chain of exceptions being propagated (32-bit ARM,
  // reachable through the ucontext backend only).
  void* propagating = nullptr;
#endif

  // Every switch asks: one test of the fields or'ed together, rather than a
  // branch per field.
  bool empty() const noexcept {
    std::uintptr_t any = reinterpret_cast<std::uintptr_t>(caught) | uncaught;
#if defined(__arm__) && !defined(__USING_SJLJ_EXCEPTIONS__) && !defined(__ARM_DWARF_EH__)
    any |= reinterpret_cast<std::uintptr_t>(propagating);
#endif
    return any == 0;
  }
};

#if defined(__x86_64__) || defined(__aarch64__)
static_assert(sizeof(eh_globals) == 16, "the Itanium ABI's __cxa_eh_globals: a pointer and an unsigned int");
#endif

// The calling thread's state. Read once per OS thread and kept: libstdc++
// declares __cxa_get_globals `const`, so a compiler may reuse one call's
// result anywhere in the calling function, across a switch to another thread
// too (the thread_local rule of current.hpp applies to it as well).
inline eh_globals* thread_eh_globals() noexcept {
  return reinterpret_cast<eh_globals*>(__cxxabiv1::__cxa_get_globals());
}

}  // namespace gofer::detail::arch
