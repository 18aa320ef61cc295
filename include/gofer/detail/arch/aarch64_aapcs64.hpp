// The context switch for AArch64 (AAPCS64), as header-only assembly.
//
// The scheme of x86_64_sysv.hpp: a suspended context is its stack pointer. The
// switch stores what AAPCS64 makes callee-saved (x19-x28, the frame pointer
// x29, the link register x30, and d8-d15: only the low 64 bits of v8-v15 are
// preserved by the ABI, so the compiler never expects more) plus FPCR in one
// frame on the current stack, saves sp, loads the other context's sp and
// restores that frame. FPCR (rounding mode, flush-to-zero, default-NaN) travels
// with the fiber because a fiber may resume on another thread, whose settings
// must not leak into it nor its into the thread. Writing FPCR can serialise the
// pipeline and it almost never differs, so it is written only when it does.
// FPSR (the sticky exception flags) is not carried, as on x86-64 only control
// state is.
//
// Header-only: GCC 12 has no naked functions on AArch64, so each symbol is one
// top-level asm statement in a COMDAT group keyed by its name (the linker keeps
// one copy however many translation units include this header), wrapped in
// `.ifndef` so that LTO or a unity build pasting several translation units'
// top-level asm into one assembler input does not see a duplicate label. The
// symbols are weak, as an inline function's are: clang's ThinLTO reads the
// symbols of top-level asm without their group, and takes two strong copies
// for a duplicate definition. They are hidden so each shared object keeps a
// private copy.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gofer/detail/config.hpp"

// Frame layout in bytes from the saved sp, shared by the asm and make() and
// checked against `frame` below. Registers go in pairs because stp/ldp move
// two at a time.
#define GOFER_A64_OFF_X19 0    // make(): the entry function
#define GOFER_A64_OFF_X20 8    // make(): the entry argument
#define GOFER_A64_OFF_X21 16
#define GOFER_A64_OFF_X23 32
#define GOFER_A64_OFF_X25 48
#define GOFER_A64_OFF_X27 64
#define GOFER_A64_OFF_FP 80    // x29
#define GOFER_A64_OFF_LR 88    // x30: where the switch returns to
#define GOFER_A64_OFF_D8 96
#define GOFER_A64_OFF_D10 112
#define GOFER_A64_OFF_D12 128
#define GOFER_A64_OFF_D14 144
#define GOFER_A64_OFF_FPCR 160
#define GOFER_A64_FRAME 176    // a multiple of 16: AArch64 faults on a misaligned sp

extern "C" {
// Saves the current context into *save_sp and resumes `to_sp`.
__attribute__((visibility("hidden"))) void gofer_switch_aarch64(void** save_sp, void* to_sp);
// First code a new context runs: calls x19(x20) and never returns.
__attribute__((visibility("hidden"))) void gofer_entry_aarch64();
}

// The unwind info describes the frame at every instruction, so a debugger, a
// profiler or a signal handler stopping inside the switch still unwinds: after
// sp moves to the other context, the same layout describes that context's
// frame, which is where this call will return.
// clang-format off
__asm__(
    ".ifndef gofer_switch_aarch64\n"
    ".pushsection .text.gofer_switch_aarch64,\"axG\",%progbits,gofer_switch_aarch64,comdat\n"
    ".weak gofer_switch_aarch64\n"
    ".hidden gofer_switch_aarch64\n"
    ".type gofer_switch_aarch64,%function\n"
    ".p2align 4\n"
    "gofer_switch_aarch64:\n"
    "  .cfi_startproc\n"
    "  sub sp, sp, #" GOFER_STRINGIFY(GOFER_A64_FRAME) "\n"
    "  .cfi_def_cfa_offset " GOFER_STRINGIFY(GOFER_A64_FRAME) "\n"
    "  stp x19, x20, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_X19) "]\n"
    "  .cfi_rel_offset x19, " GOFER_STRINGIFY(GOFER_A64_OFF_X19) "\n"
    "  .cfi_rel_offset x20, " GOFER_STRINGIFY(GOFER_A64_OFF_X19) "+8\n"
    "  stp x21, x22, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_X21) "]\n"
    "  .cfi_rel_offset x21, " GOFER_STRINGIFY(GOFER_A64_OFF_X21) "\n"
    "  .cfi_rel_offset x22, " GOFER_STRINGIFY(GOFER_A64_OFF_X21) "+8\n"
    "  stp x23, x24, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_X23) "]\n"
    "  .cfi_rel_offset x23, " GOFER_STRINGIFY(GOFER_A64_OFF_X23) "\n"
    "  .cfi_rel_offset x24, " GOFER_STRINGIFY(GOFER_A64_OFF_X23) "+8\n"
    "  stp x25, x26, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_X25) "]\n"
    "  .cfi_rel_offset x25, " GOFER_STRINGIFY(GOFER_A64_OFF_X25) "\n"
    "  .cfi_rel_offset x26, " GOFER_STRINGIFY(GOFER_A64_OFF_X25) "+8\n"
    "  stp x27, x28, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_X27) "]\n"
    "  .cfi_rel_offset x27, " GOFER_STRINGIFY(GOFER_A64_OFF_X27) "\n"
    "  .cfi_rel_offset x28, " GOFER_STRINGIFY(GOFER_A64_OFF_X27) "+8\n"
    "  stp x29, x30, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_FP) "]\n"
    "  .cfi_rel_offset x29, " GOFER_STRINGIFY(GOFER_A64_OFF_FP) "\n"
    "  .cfi_rel_offset x30, " GOFER_STRINGIFY(GOFER_A64_OFF_LR) "\n"
    "  stp d8, d9, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_D8) "]\n"
    "  .cfi_rel_offset d8, " GOFER_STRINGIFY(GOFER_A64_OFF_D8) "\n"
    "  .cfi_rel_offset d9, " GOFER_STRINGIFY(GOFER_A64_OFF_D8) "+8\n"
    "  stp d10, d11, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_D10) "]\n"
    "  .cfi_rel_offset d10, " GOFER_STRINGIFY(GOFER_A64_OFF_D10) "\n"
    "  .cfi_rel_offset d11, " GOFER_STRINGIFY(GOFER_A64_OFF_D10) "+8\n"
    "  stp d12, d13, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_D12) "]\n"
    "  .cfi_rel_offset d12, " GOFER_STRINGIFY(GOFER_A64_OFF_D12) "\n"
    "  .cfi_rel_offset d13, " GOFER_STRINGIFY(GOFER_A64_OFF_D12) "+8\n"
    "  stp d14, d15, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_D14) "]\n"
    "  .cfi_rel_offset d14, " GOFER_STRINGIFY(GOFER_A64_OFF_D14) "\n"
    "  .cfi_rel_offset d15, " GOFER_STRINGIFY(GOFER_A64_OFF_D14) "+8\n"
    "  mrs x10, fpcr\n"
    "  str x10, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_FPCR) "]\n"
    "  mov x9, sp\n"
    "  str x9, [x0]\n"
    "  mov sp, x1\n"
    "  ldr x9, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_FPCR) "]\n"
    "  cmp x9, x10\n"
    "  b.eq 1f\n"
    "  msr fpcr, x9\n"
    "1:\n"
    "  ldp x19, x20, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_X19) "]\n"
    "  ldp x21, x22, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_X21) "]\n"
    "  ldp x23, x24, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_X23) "]\n"
    "  ldp x25, x26, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_X25) "]\n"
    "  ldp x27, x28, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_X27) "]\n"
    "  ldp x29, x30, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_FP) "]\n"
    "  ldp d8, d9, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_D8) "]\n"
    "  ldp d10, d11, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_D10) "]\n"
    "  ldp d12, d13, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_D12) "]\n"
    "  ldp d14, d15, [sp, #" GOFER_STRINGIFY(GOFER_A64_OFF_D14) "]\n"
    "  add sp, sp, #" GOFER_STRINGIFY(GOFER_A64_FRAME) "\n"
    // The slots are now below sp, where a signal frame may overwrite them:
    // from here on the registers themselves hold the values.
    "  .cfi_def_cfa_offset 0\n"
    "  .cfi_restore x19\n"
    "  .cfi_restore x20\n"
    "  .cfi_restore x21\n"
    "  .cfi_restore x22\n"
    "  .cfi_restore x23\n"
    "  .cfi_restore x24\n"
    "  .cfi_restore x25\n"
    "  .cfi_restore x26\n"
    "  .cfi_restore x27\n"
    "  .cfi_restore x28\n"
    "  .cfi_restore x29\n"
    "  .cfi_restore x30\n"
    "  .cfi_restore d8\n"
    "  .cfi_restore d9\n"
    "  .cfi_restore d10\n"
    "  .cfi_restore d11\n"
    "  .cfi_restore d12\n"
    "  .cfi_restore d13\n"
    "  .cfi_restore d14\n"
    "  .cfi_restore d15\n"
    "  ret\n"
    "  .cfi_endproc\n"
    ".size gofer_switch_aarch64, .-gofer_switch_aarch64\n"
    ".popsection\n"
    ".endif\n");

__asm__(
    ".ifndef gofer_entry_aarch64\n"
    ".pushsection .text.gofer_entry_aarch64,\"axG\",%progbits,gofer_entry_aarch64,comdat\n"
    ".weak gofer_entry_aarch64\n"
    ".hidden gofer_entry_aarch64\n"
    ".type gofer_entry_aarch64,%function\n"
    ".p2align 4\n"
    "gofer_entry_aarch64:\n"
    "  .cfi_startproc\n"
    // The outermost frame of a fiber. An undefined return address tells
    // DWARF unwinders (exceptions, debuggers, sanitizer reports) that the
    // chain ends here; a zero frame pointer and link register tell the
    // frame-pointer walkers (ASan's fast unwinder, perf) the same.
    "  .cfi_undefined x30\n"
    "  mov x29, xzr\n"
    "  mov x30, xzr\n"
    "  mov x0, x20\n"
    "  blr x19\n"
    // fn must not return; if it does, trap here rather than run off into
    // whatever follows.
    "  brk #0x1\n"
    "  .cfi_endproc\n"
    ".size gofer_entry_aarch64, .-gofer_entry_aarch64\n"
    ".popsection\n"
    ".endif\n");
// clang-format on

namespace gofer::detail::arch::aarch64 {

// The saved frame as C++ sees it; the static_asserts keep the macros above,
// which the asm uses, honest.
struct frame {
  std::uint64_t x19, x20, x21, x22, x23, x24, x25, x26, x27, x28;
  std::uint64_t fp, lr;
  std::uint64_t d8, d9, d10, d11, d12, d13, d14, d15;
  std::uint64_t fpcr;
  std::uint64_t unused;  // keeps the frame a multiple of 16
};
static_assert(offsetof(frame, x19) == GOFER_A64_OFF_X19);
static_assert(offsetof(frame, x20) == GOFER_A64_OFF_X20);
static_assert(offsetof(frame, x21) == GOFER_A64_OFF_X21);
static_assert(offsetof(frame, x23) == GOFER_A64_OFF_X23);
static_assert(offsetof(frame, x25) == GOFER_A64_OFF_X25);
static_assert(offsetof(frame, x27) == GOFER_A64_OFF_X27);
static_assert(offsetof(frame, fp) == GOFER_A64_OFF_FP);
static_assert(offsetof(frame, lr) == GOFER_A64_OFF_LR);
static_assert(offsetof(frame, d8) == GOFER_A64_OFF_D8);
static_assert(offsetof(frame, d10) == GOFER_A64_OFF_D10);
static_assert(offsetof(frame, d12) == GOFER_A64_OFF_D12);
static_assert(offsetof(frame, d14) == GOFER_A64_OFF_D14);
static_assert(offsetof(frame, fpcr) == GOFER_A64_OFF_FPCR);
static_assert(sizeof(frame) == GOFER_A64_FRAME && GOFER_A64_FRAME % 16 == 0);

struct backend {
  static constexpr const char* name = "aarch64_aapcs64";

  // Prepares a context that, when first resumed, returns into
  // gofer_entry_aarch64, which calls fn(arg) with sp at the 16-byte-aligned top
  // of the stack. fn must never return.
  static void* make(void* stack_bottom, std::size_t size, void (*fn)(void*), void* arg) noexcept {
    auto top = (reinterpret_cast<std::uintptr_t>(stack_bottom) + size) & ~std::uintptr_t{15};
    auto* f = reinterpret_cast<frame*>(top - sizeof(frame));
    // FPCR 0 is what a new thread starts with: round to nearest, no
    // flush-to-zero, no default NaN, no traps. A fiber must not inherit
    // whatever the creating thread happened to set.
    *f = frame{};
    f->x19 = reinterpret_cast<std::uint64_t>(fn);
    f->x20 = reinterpret_cast<std::uint64_t>(arg);
    f->lr = reinterpret_cast<std::uint64_t>(&gofer_entry_aarch64);
    return f;
  }

  static void jump(void** save_sp, void* to_sp) noexcept { gofer_switch_aarch64(save_sp, to_sp); }
};

}  // namespace gofer::detail::arch::aarch64
