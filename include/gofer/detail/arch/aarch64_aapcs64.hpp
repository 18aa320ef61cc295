// The context switch for AArch64 (AAPCS64), as header-only assembly.
//
// The same scheme as x86_64_sysv.hpp: the switch stores the callee-saved
// registers (x19-x28, the frame pointer x29, the link register x30, the low
// halves d8-d15 of v8-v15) and FPCR in a frame on the current stack, saves sp,
// loads the other context's sp and restores its frame. FPCR (rounding mode,
// flush-to-zero) travels with the fiber because fibers move between threads;
// writing it can stall, so it is written only when it differs.
//
// GCC does not support naked functions on AArch64, so the code is a top-level
// asm statement per symbol in a COMDAT group with an .ifndef guard (see
// x86_64_sysv.hpp for why both).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gofer/detail/config.hpp"

// Frame layout (bytes from sp), shared by make() and the asm.
#define GOFER_A64_OFF_X19 0
#define GOFER_A64_OFF_X21 16
#define GOFER_A64_OFF_X23 32
#define GOFER_A64_OFF_X25 48
#define GOFER_A64_OFF_X27 64
#define GOFER_A64_OFF_FP 80   // x29, then x30 (lr) at 88
#define GOFER_A64_OFF_D8 96
#define GOFER_A64_OFF_D10 112
#define GOFER_A64_OFF_D12 128
#define GOFER_A64_OFF_D14 144
#define GOFER_A64_OFF_FPCR 160
#define GOFER_A64_FRAME 176   // a multiple of 16: sp stays aligned

extern "C" {
__attribute__((visibility("hidden"))) void gofer_switch_aarch64(void** save_sp, void* to_sp);
__attribute__((visibility("hidden"))) void gofer_entry_aarch64();
}

#define GOFER_A64_S(x) GOFER_STRINGIFY(x)

// clang-format off
__asm__(
    ".ifndef gofer_switch_aarch64\n"
    ".pushsection .text.gofer_switch_aarch64,\"axG\",%progbits,gofer_switch_aarch64,comdat\n"
    ".globl gofer_switch_aarch64\n"
    ".hidden gofer_switch_aarch64\n"
    ".type gofer_switch_aarch64,%function\n"
    ".p2align 4\n"
    "gofer_switch_aarch64:\n"
    "  .cfi_startproc\n"
    "  sub sp, sp, #" GOFER_A64_S(GOFER_A64_FRAME) "\n"
    "  stp x19, x20, [sp, #" GOFER_A64_S(GOFER_A64_OFF_X19) "]\n"
    "  stp x21, x22, [sp, #" GOFER_A64_S(GOFER_A64_OFF_X21) "]\n"
    "  stp x23, x24, [sp, #" GOFER_A64_S(GOFER_A64_OFF_X23) "]\n"
    "  stp x25, x26, [sp, #" GOFER_A64_S(GOFER_A64_OFF_X25) "]\n"
    "  stp x27, x28, [sp, #" GOFER_A64_S(GOFER_A64_OFF_X27) "]\n"
    "  stp x29, x30, [sp, #" GOFER_A64_S(GOFER_A64_OFF_FP) "]\n"
    "  stp d8, d9, [sp, #" GOFER_A64_S(GOFER_A64_OFF_D8) "]\n"
    "  stp d10, d11, [sp, #" GOFER_A64_S(GOFER_A64_OFF_D10) "]\n"
    "  stp d12, d13, [sp, #" GOFER_A64_S(GOFER_A64_OFF_D12) "]\n"
    "  stp d14, d15, [sp, #" GOFER_A64_S(GOFER_A64_OFF_D14) "]\n"
    "  mrs x10, fpcr\n"
    "  str x10, [sp, #" GOFER_A64_S(GOFER_A64_OFF_FPCR) "]\n"
    "  mov x9, sp\n"
    "  str x9, [x0]\n"
    "  mov sp, x1\n"
    "  ldr x9, [sp, #" GOFER_A64_S(GOFER_A64_OFF_FPCR) "]\n"
    "  cmp x9, x10\n"
    "  b.eq 1f\n"
    "  msr fpcr, x9\n"
    "1:\n"
    "  ldp x19, x20, [sp, #" GOFER_A64_S(GOFER_A64_OFF_X19) "]\n"
    "  ldp x21, x22, [sp, #" GOFER_A64_S(GOFER_A64_OFF_X21) "]\n"
    "  ldp x23, x24, [sp, #" GOFER_A64_S(GOFER_A64_OFF_X23) "]\n"
    "  ldp x25, x26, [sp, #" GOFER_A64_S(GOFER_A64_OFF_X25) "]\n"
    "  ldp x27, x28, [sp, #" GOFER_A64_S(GOFER_A64_OFF_X27) "]\n"
    "  ldp x29, x30, [sp, #" GOFER_A64_S(GOFER_A64_OFF_FP) "]\n"
    "  ldp d8, d9, [sp, #" GOFER_A64_S(GOFER_A64_OFF_D8) "]\n"
    "  ldp d10, d11, [sp, #" GOFER_A64_S(GOFER_A64_OFF_D10) "]\n"
    "  ldp d12, d13, [sp, #" GOFER_A64_S(GOFER_A64_OFF_D12) "]\n"
    "  ldp d14, d15, [sp, #" GOFER_A64_S(GOFER_A64_OFF_D14) "]\n"
    "  add sp, sp, #" GOFER_A64_S(GOFER_A64_FRAME) "\n"
    "  ret\n"
    "  .cfi_endproc\n"
    ".size gofer_switch_aarch64, .-gofer_switch_aarch64\n"
    ".popsection\n"
    ".endif\n"
    ".ifndef gofer_entry_aarch64\n"
    ".pushsection .text.gofer_entry_aarch64,\"axG\",%progbits,gofer_entry_aarch64,comdat\n"
    ".globl gofer_entry_aarch64\n"
    ".hidden gofer_entry_aarch64\n"
    ".type gofer_entry_aarch64,%function\n"
    ".p2align 4\n"
    "gofer_entry_aarch64:\n"
    "  .cfi_startproc\n"
    // The outermost frame of a fiber: no caller to unwind to.
    "  .cfi_undefined x30\n"
    "  mov x29, #0\n"
    "  mov x30, #0\n"
    "  mov x0, x20\n"
    "  blr x19\n"
    "  brk #0\n"
    "  .cfi_endproc\n"
    ".size gofer_entry_aarch64, .-gofer_entry_aarch64\n"
    ".popsection\n"
    ".endif\n");
// clang-format on

namespace gofer::detail::arch::aarch64 {

struct backend {
  static constexpr const char* name = "aarch64_aapcs64";

  // A context that, when first resumed, runs gofer_entry_aarch64, which calls
  // fn(arg) (from x19 and x20) with a zero frame pointer and link register.
  static void* make(void* stack_bottom, std::size_t size, void (*fn)(void*), void* arg) noexcept {
    auto top = (reinterpret_cast<std::uintptr_t>(stack_bottom) + size) & ~std::uintptr_t{15};
    auto* frame = reinterpret_cast<unsigned char*>(top - 16 - GOFER_A64_FRAME);
    auto put = [frame](int off, std::uint64_t v) {
      *reinterpret_cast<std::uint64_t*>(frame + off) = v;
    };
    for (int off = 0; off < GOFER_A64_FRAME + 16; off += 8) put(off, 0);
    put(GOFER_A64_OFF_X19, reinterpret_cast<std::uint64_t>(fn));
    put(GOFER_A64_OFF_X19 + 8, reinterpret_cast<std::uint64_t>(arg));
    put(GOFER_A64_OFF_FP + 8, reinterpret_cast<std::uint64_t>(&gofer_entry_aarch64));
    // FPCR 0: round to nearest, no flush-to-zero, exceptions untrapped — what
    // a new thread starts with.
    return frame;
  }

  static void jump(void** save_sp, void* to_sp) noexcept { gofer_switch_aarch64(save_sp, to_sp); }
};

}  // namespace gofer::detail::arch::aarch64
