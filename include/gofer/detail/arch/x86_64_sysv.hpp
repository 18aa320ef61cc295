// The context switch for x86-64 System V, as header-only assembly.
//
// A suspended context is its stack pointer. The switch pushes the registers the
// ABI makes callee-saved (rbp, rbx, r12-r15) and the floating-point control
// state (MXCSR and the x87 control word) onto the current stack, stores the
// stack pointer, loads the other one and pops the same frame. The FP control
// state travels with the fiber because a fiber may resume on another thread,
// whose rounding mode or exception masks must not leak into it. Loading it is
// the slow part of a switch (fldcw and ldmxcsr stall the pipeline), and it
// almost never differs between two contexts, so each is loaded only when the
// incoming value differs from the outgoing one.
//
// Header-only: the code is one top-level asm statement that emits the function
// into a COMDAT group keyed by its name, so the linker keeps one copy however
// many translation units include this header (as it does for inline functions).
// The `.ifndef` guard stops a duplicate label when LTO or a unity build pastes
// several translation units' top-level asm into one assembler input. The symbol
// is weak, as the compilers make an inline function's: clang's ThinLTO reads
// the symbols of top-level asm without their group, and took two strong copies
// for a duplicate definition. It is hidden so each shared object keeps its own
// private copy.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gofer/detail/config.hpp"

// Frame layout, lowest address first; shared by the C++ side (make) and the asm.
#define GOFER_X64_OFF_FPCTRL 0   // MXCSR (4 bytes) then x87 control word (2 bytes)
#define GOFER_X64_OFF_R15 8
#define GOFER_X64_OFF_R14 16
#define GOFER_X64_OFF_R13 24     // make(): the entry function
#define GOFER_X64_OFF_R12 32     // make(): the entry argument
#define GOFER_X64_OFF_RBX 40
#define GOFER_X64_OFF_RBP 48
#define GOFER_X64_OFF_RET 56     // where the switch returns to
#define GOFER_X64_FRAME 64

extern "C" {
// Saves the current context into *save_sp and resumes `to_sp`.
__attribute__((visibility("hidden"))) void gofer_switch_x86_64(void** save_sp, void* to_sp);
// First code a new context runs: calls r13(r12) and never returns.
__attribute__((visibility("hidden"))) void gofer_entry_x86_64();
}

// clang-format off
__asm__(
    ".ifndef gofer_switch_x86_64\n"
    ".pushsection .text.gofer_switch_x86_64,\"axG\",@progbits,gofer_switch_x86_64,comdat\n"
    ".weak gofer_switch_x86_64\n"
    ".hidden gofer_switch_x86_64\n"
    ".type gofer_switch_x86_64,@function\n"
    ".p2align 4\n"
    "gofer_switch_x86_64:\n"
    "  .cfi_startproc\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  subq $8, %rsp\n"
    "  stmxcsr " GOFER_STRINGIFY(GOFER_X64_OFF_FPCTRL) "(%rsp)\n"
    "  fnstcw " GOFER_STRINGIFY(GOFER_X64_OFF_FPCTRL) "+4(%rsp)\n"
    "  movl (%rsp), %eax\n"
    "  movzwl 4(%rsp), %ecx\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  cmpl (%rsp), %eax\n"
    "  je 1f\n"
    "  ldmxcsr (%rsp)\n"
    "1:\n"
    "  cmpw 4(%rsp), %cx\n"
    "  je 2f\n"
    "  fldcw 4(%rsp)\n"
    "2:\n"
    "  addq $8, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    "  .cfi_endproc\n"
    ".size gofer_switch_x86_64, .-gofer_switch_x86_64\n"
    ".popsection\n"
    ".endif\n"
    ".ifndef gofer_entry_x86_64\n"
    ".pushsection .text.gofer_entry_x86_64,\"axG\",@progbits,gofer_entry_x86_64,comdat\n"
    ".weak gofer_entry_x86_64\n"
    ".hidden gofer_entry_x86_64\n"
    ".type gofer_entry_x86_64,@function\n"
    ".p2align 4\n"
    "gofer_entry_x86_64:\n"
    "  .cfi_startproc\n"
    // The outermost frame of a fiber: an undefined return address tells
    // unwinders, debuggers and sanitizers that the chain ends here.
    "  .cfi_undefined rip\n"
    "  xorl %ebp, %ebp\n"
    "  movq %r12, %rdi\n"
    "  callq *%r13\n"
    "  ud2\n"
    "  .cfi_endproc\n"
    ".size gofer_entry_x86_64, .-gofer_entry_x86_64\n"
    ".popsection\n"
    ".endif\n");
// clang-format on

namespace gofer::detail::arch::x86_64 {

struct backend {
  static constexpr const char* name = "x86_64_sysv";

  // Prepares a context that, when first resumed, calls fn(arg) on the given
  // stack. fn must never return.
  static void* make(void* stack_bottom, std::size_t size, void (*fn)(void*), void* arg) noexcept {
    auto top = (reinterpret_cast<std::uintptr_t>(stack_bottom) + size) & ~std::uintptr_t{15};
    // 16 bytes of zeros above the frame: a null return address and frame
    // pointer for the entry frame. Then the frame itself; after its `ret`
    // rsp == top - 16, which is 16-byte aligned as the ABI wants at a call.
    auto* frame = reinterpret_cast<unsigned char*>(top - 16 - GOFER_X64_FRAME);
    auto put = [frame](int off, std::uint64_t v) {
      *reinterpret_cast<std::uint64_t*>(frame + off) = v;
    };
    // Default control state: all FP exceptions masked, round to nearest,
    // x87 at extended precision (what a new thread starts with).
    put(GOFER_X64_OFF_FPCTRL, 0x1F80ull | (0x037Full << 32));
    put(GOFER_X64_OFF_R15, 0);
    put(GOFER_X64_OFF_R14, 0);
    put(GOFER_X64_OFF_R13, reinterpret_cast<std::uint64_t>(fn));
    put(GOFER_X64_OFF_R12, reinterpret_cast<std::uint64_t>(arg));
    put(GOFER_X64_OFF_RBX, 0);
    put(GOFER_X64_OFF_RBP, 0);
    put(GOFER_X64_OFF_RET, reinterpret_cast<std::uint64_t>(&gofer_entry_x86_64));
    put(GOFER_X64_FRAME, 0);
    put(GOFER_X64_FRAME + 8, 0);
    return frame;
  }

  static void jump(void** save_sp, void* to_sp) noexcept { gofer_switch_x86_64(save_sp, to_sp); }
};

}  // namespace gofer::detail::arch::x86_64
