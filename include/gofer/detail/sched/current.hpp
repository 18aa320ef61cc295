// The current M (and through it the current P and fiber) of the calling thread.
//
// Why an out-of-line accessor: a fiber may park on one thread and resume on
// another. Compilers treat the address of a thread_local as constant within a
// function and may compute it once, before a context switch, then use it after
// the fiber has moved: it would then read the old thread's M. Every read goes
// through current_machine(), which is never inlined and contains an opaque asm
// barrier, so no caller can cache its result across a call that may switch.
// Callers must not keep the returned pointer across such a call either.
#pragma once

#include "gofer/detail/config.hpp"

namespace gofer::detail {

class machine;

inline thread_local machine* tls_machine = nullptr;

GOFER_NOINLINE inline machine* current_machine() noexcept {
  asm volatile("" ::: "memory");
  return tls_machine;
}

GOFER_NOINLINE inline void set_current_machine(machine* m) noexcept {
  asm volatile("" ::: "memory");
  tls_machine = m;
}

}  // namespace gofer::detail
