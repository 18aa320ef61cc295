// The portable context-switch backend: POSIX ucontext (as Boost.Context's
// fiber_ucontext). Slow — swapcontext saves and restores the signal mask with
// a system call on every switch — so it is used only on targets without an
// assembly backend, or when GOFER_FORCE_UCONTEXT asks for it. It is always
// compiled, so the contract test can hold both backends to the same rules.
//
// A suspended context is a pointer to a ucontext_t that lives on the suspended
// stack itself: a local of jump() for a running context, and a block at the
// top of the stack for a new one.
#pragma once

#include <ucontext.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace gofer::detail::arch::ucontext {

struct backend {
  static constexpr const char* name = "ucontext";

  struct start_block {
    ucontext_t uc;
    void (*fn)(void*);
    void* arg;
  };

  // makecontext passes int arguments only: the block's address travels in
  // two 32-bit halves.
  static void trampoline(unsigned hi, unsigned lo) {
    auto* b = reinterpret_cast<start_block*>((static_cast<std::uintptr_t>(hi) << 32) |
                                             static_cast<std::uintptr_t>(lo));
    b->fn(b->arg);
    std::abort();  // fn never returns
  }

  static void* make(void* stack_bottom, std::size_t size, void (*fn)(void*), void* arg) noexcept {
    auto top = (reinterpret_cast<std::uintptr_t>(stack_bottom) + size - sizeof(start_block)) &
               ~std::uintptr_t{63};
    auto* b = ::new (reinterpret_cast<void*>(top)) start_block{};
    b->fn = fn;
    b->arg = arg;
    getcontext(&b->uc);
    b->uc.uc_stack.ss_sp = stack_bottom;
    b->uc.uc_stack.ss_size = static_cast<std::size_t>(top - reinterpret_cast<std::uintptr_t>(stack_bottom)) & ~std::size_t{15};
    b->uc.uc_link = nullptr;
    auto addr = reinterpret_cast<std::uintptr_t>(b);
    makecontext(&b->uc, reinterpret_cast<void (*)()>(&trampoline), 2,
                static_cast<unsigned>(addr >> 32), static_cast<unsigned>(addr & 0xffffffffu));
    return &b->uc;
  }

  static void jump(void** save_sp, void* to_sp) noexcept {
    ucontext_t here;
    *save_sp = &here;
    swapcontext(&here, static_cast<ucontext_t*>(to_sp));
  }
};

}  // namespace gofer::detail::arch::ucontext
