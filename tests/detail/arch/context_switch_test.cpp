// The contract every context-switch backend keeps, run against each one
// present: the native assembly backend and the ucontext fallback must behave
// alike, so the fallback can stand in wherever the assembly is missing.
#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <unistd.h>
#include <unwind.h>

#include <cfenv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

#include <gofer/detail/arch/context.hpp>

namespace arch = gofer::detail::arch;

namespace {

// Fiber stacks as the runtime gives them: mmap'd, with a PROT_NONE page below
// so that an overflow faults instead of quietly corrupting a neighbour.
class test_stack {
 public:
  explicit test_stack(std::size_t size)
      : page_(static_cast<std::size_t>(sysconf(_SC_PAGESIZE))), size_(size) {
    map_ = mmap(nullptr, page_ + size_, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (map_ == MAP_FAILED) throw std::runtime_error("mmap of a test stack failed");
    mprotect(map_, page_, PROT_NONE);
  }
  test_stack(const test_stack&) = delete;
  test_stack& operator=(const test_stack&) = delete;
  ~test_stack() {
    // An abandoned fiber leaves ASan's redzone marks behind; a later mapping
    // at the same address must not inherit them.
    arch::sanitizer::unpoison_stack(bottom(), size_);
    munmap(map_, page_ + size_);
  }

  char* bottom() const { return static_cast<char*>(map_) + page_; }
  std::size_t size() const { return size_; }
  std::uintptr_t lo() const { return reinterpret_cast<std::uintptr_t>(bottom()); }
  std::uintptr_t hi() const { return lo() + size_; }
  bool contains(std::uintptr_t a) const { return a >= lo() && a < hi(); }

 private:
  void* map_ = nullptr;
  std::size_t page_;
  std::size_t size_;
};

constexpr std::size_t stack_size = 256 * 1024;

// The floating-point control state a context owns: the rounding mode as the
// C library sees it, and the raw control register(s) behind it, which also
// hold flush-to-zero and (x87) precision, which fesetround cannot show.
struct fp_state {
  int round = 0;
  std::uint64_t control = 0;
  bool operator==(const fp_state&) const = default;
};

#if defined(__x86_64__)
// MXCSR in the low half without its sticky status flags (bits 0-5), the x87
// control word above it.
std::uint64_t read_fp_control() {
  std::uint32_t mxcsr = 0;
  std::uint16_t cw = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(cw));
  return (mxcsr & ~std::uint32_t{0x3F}) | (std::uint64_t{cw} << 32);
}
void write_fp_control(std::uint64_t c) {
  auto mxcsr = static_cast<std::uint32_t>(c);
  auto cw = static_cast<std::uint16_t>(c >> 32);
  asm volatile("ldmxcsr %0" : : "m"(mxcsr));
  asm volatile("fldcw %0" : : "m"(cw));
}
constexpr std::uint64_t default_fp_control = 0x1F80 | (std::uint64_t{0x037F} << 32);
// Flush-to-zero and denormals-are-zero in MXCSR; x87 precision cut to double.
std::uint64_t with_odd_bits(std::uint64_t c) { return (c | 0x8040) & ~(std::uint64_t{0x100} << 32); }
#elif defined(__aarch64__)
std::uint64_t read_fp_control() {
  std::uint64_t fpcr = 0;
  asm volatile("mrs %0, fpcr" : "=r"(fpcr));
  return fpcr;
}
void write_fp_control(std::uint64_t c) { asm volatile("msr fpcr, %0" : : "r"(c)); }
constexpr std::uint64_t default_fp_control = 0;
// Flush-to-zero (FZ) and default-NaN (DN).
std::uint64_t with_odd_bits(std::uint64_t c) { return c | (1u << 24) | (1u << 25); }
#else
std::uint64_t read_fp_control() { return 0; }
void write_fp_control(std::uint64_t) {}
constexpr std::uint64_t default_fp_control = 0;
std::uint64_t with_odd_bits(std::uint64_t c) { return c; }
#endif

fp_state read_fp_state() { return {std::fegetround(), read_fp_control()}; }

// Restores the thread's floating-point environment however a section ends, so
// no other test inherits a changed rounding mode.
class fenv_guard {
 public:
  fenv_guard() { std::fegetenv(&saved_); }
  fenv_guard(const fenv_guard&) = delete;
  fenv_guard& operator=(const fenv_guard&) = delete;
  ~fenv_guard() { std::fesetenv(&saved_); }

 private:
  std::fenv_t saved_;
};

}  // namespace

template <>
struct Catch::StringMaker<fp_state> {
  static std::string convert(const fp_state& s) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "{round %d, control %#llx}", s.round,
                  static_cast<unsigned long long>(s.control));
    return buf;
  }
};

// Callee-saved registers can only be checked from assembly: compiled code
// keeps no promise to hold a value in a register across a call. The probe
// loads a distinct pattern (base + register number) into every callee-saved
// register, calls fn(arg), and returns a bit per register that came back
// different. With fn switching away and back, a switch that loses a register
// shows as a set bit.
#if defined(__x86_64__) || defined(__aarch64__)
#define GOFER_TEST_HAVE_PROBE 1
using probe_fn = void (*)(void*);
extern "C" __attribute__((visibility("hidden"))) std::uint64_t gofer_test_probe_callee_saved(
    probe_fn fn, void* arg, std::uint64_t base);
#endif

// clang-format off
#if defined(__x86_64__)
#define GOFER_TEST_SET(reg, n) "  leaq " #n "(%rdx), %" #reg "\n"
#define GOFER_TEST_CHECK(reg, n, bit) \
  "  leaq " #n "(%rcx), %rdx\n  cmpq %rdx, %" #reg "\n  je 1f\n  orl $" #bit ", %eax\n1:\n"
#define GOFER_TEST_PUSH(reg) \
  "  pushq %" #reg "\n  .cfi_adjust_cfa_offset 8\n  .cfi_rel_offset " #reg ", 0\n"
#define GOFER_TEST_POP(reg) \
  "  popq %" #reg "\n  .cfi_adjust_cfa_offset -8\n  .cfi_restore " #reg "\n"
__asm__(
    ".pushsection .text\n"
    ".globl gofer_test_probe_callee_saved\n"
    ".hidden gofer_test_probe_callee_saved\n"
    ".type gofer_test_probe_callee_saved,@function\n"
    ".p2align 4\n"
    "gofer_test_probe_callee_saved:\n"
    "  .cfi_startproc\n"
    GOFER_TEST_PUSH(rbp) GOFER_TEST_PUSH(rbx) GOFER_TEST_PUSH(r12)
    GOFER_TEST_PUSH(r13) GOFER_TEST_PUSH(r14) GOFER_TEST_PUSH(r15)
    // Six pushes leave rsp 8 off a 16-byte boundary; the pad fixes that and
    // holds the base across the call.
    "  subq $8, %rsp\n"
    "  .cfi_adjust_cfa_offset 8\n"
    "  movq %rdx, (%rsp)\n"
    "  movq %rdi, %rax\n"
    "  movq %rsi, %rdi\n"
    GOFER_TEST_SET(rbx, 3) GOFER_TEST_SET(rbp, 5) GOFER_TEST_SET(r12, 12)
    GOFER_TEST_SET(r13, 13) GOFER_TEST_SET(r14, 14) GOFER_TEST_SET(r15, 15)
    "  callq *%rax\n"
    "  movq (%rsp), %rcx\n"
    "  xorl %eax, %eax\n"
    GOFER_TEST_CHECK(rbx, 3, 1) GOFER_TEST_CHECK(rbp, 5, 2) GOFER_TEST_CHECK(r12, 12, 4)
    GOFER_TEST_CHECK(r13, 13, 8) GOFER_TEST_CHECK(r14, 14, 16) GOFER_TEST_CHECK(r15, 15, 32)
    "  addq $8, %rsp\n"
    "  .cfi_adjust_cfa_offset -8\n"
    GOFER_TEST_POP(r15) GOFER_TEST_POP(r14) GOFER_TEST_POP(r13)
    GOFER_TEST_POP(r12) GOFER_TEST_POP(rbx) GOFER_TEST_POP(rbp)
    "  ret\n"
    "  .cfi_endproc\n"
    ".size gofer_test_probe_callee_saved, .-gofer_test_probe_callee_saved\n"
    ".popsection\n");
#elif defined(__aarch64__)
#define GOFER_TEST_SAVE(a, b, off) \
  "  stp " #a ", " #b ", [sp, #" #off "]\n" \
  "  .cfi_rel_offset " #a ", " #off "\n  .cfi_rel_offset " #b ", " #off "+8\n"
#define GOFER_TEST_LOAD(a, b, off) "  ldp " #a ", " #b ", [sp, #" #off "]\n"
#define GOFER_TEST_SET_X(reg, n) "  add " #reg ", x2, #" #n "\n"
#define GOFER_TEST_SET_D(reg, n) "  add x10, x2, #" #n "\n  fmov " #reg ", x10\n"
#define GOFER_TEST_CHECK_X(reg, n, bit) \
  "  add x11, x10, #" #n "\n  cmp " #reg ", x11\n  cset x12, ne\n  orr x0, x0, x12, lsl #" #bit "\n"
#define GOFER_TEST_CHECK_D(reg, n, bit) \
  "  add x11, x10, #" #n "\n  fmov x13, " #reg "\n  cmp x13, x11\n  cset x12, ne\n" \
  "  orr x0, x0, x12, lsl #" #bit "\n"
__asm__(
    ".pushsection .text\n"
    ".globl gofer_test_probe_callee_saved\n"
    ".hidden gofer_test_probe_callee_saved\n"
    ".type gofer_test_probe_callee_saved,%function\n"
    ".p2align 4\n"
    "gofer_test_probe_callee_saved:\n"
    "  .cfi_startproc\n"
    "  sub sp, sp, #176\n"
    "  .cfi_def_cfa_offset 176\n"
    GOFER_TEST_SAVE(x19, x20, 0) GOFER_TEST_SAVE(x21, x22, 16) GOFER_TEST_SAVE(x23, x24, 32)
    GOFER_TEST_SAVE(x25, x26, 48) GOFER_TEST_SAVE(x27, x28, 64) GOFER_TEST_SAVE(x29, x30, 80)
    GOFER_TEST_SAVE(d8, d9, 96) GOFER_TEST_SAVE(d10, d11, 112) GOFER_TEST_SAVE(d12, d13, 128)
    GOFER_TEST_SAVE(d14, d15, 144)
    "  str x2, [sp, #160]\n"
    "  mov x9, x0\n"
    "  mov x0, x1\n"
    GOFER_TEST_SET_X(x19, 19) GOFER_TEST_SET_X(x20, 20) GOFER_TEST_SET_X(x21, 21)
    GOFER_TEST_SET_X(x22, 22) GOFER_TEST_SET_X(x23, 23) GOFER_TEST_SET_X(x24, 24)
    GOFER_TEST_SET_X(x25, 25) GOFER_TEST_SET_X(x26, 26) GOFER_TEST_SET_X(x27, 27)
    GOFER_TEST_SET_X(x28, 28) GOFER_TEST_SET_X(x29, 29)
    GOFER_TEST_SET_D(d8, 108) GOFER_TEST_SET_D(d9, 109) GOFER_TEST_SET_D(d10, 110)
    GOFER_TEST_SET_D(d11, 111) GOFER_TEST_SET_D(d12, 112) GOFER_TEST_SET_D(d13, 113)
    GOFER_TEST_SET_D(d14, 114) GOFER_TEST_SET_D(d15, 115)
    "  blr x9\n"
    "  ldr x10, [sp, #160]\n"
    "  mov x0, xzr\n"
    GOFER_TEST_CHECK_X(x19, 19, 0) GOFER_TEST_CHECK_X(x20, 20, 1) GOFER_TEST_CHECK_X(x21, 21, 2)
    GOFER_TEST_CHECK_X(x22, 22, 3) GOFER_TEST_CHECK_X(x23, 23, 4) GOFER_TEST_CHECK_X(x24, 24, 5)
    GOFER_TEST_CHECK_X(x25, 25, 6) GOFER_TEST_CHECK_X(x26, 26, 7) GOFER_TEST_CHECK_X(x27, 27, 8)
    GOFER_TEST_CHECK_X(x28, 28, 9) GOFER_TEST_CHECK_X(x29, 29, 10)
    GOFER_TEST_CHECK_D(d8, 108, 11) GOFER_TEST_CHECK_D(d9, 109, 12)
    GOFER_TEST_CHECK_D(d10, 110, 13) GOFER_TEST_CHECK_D(d11, 111, 14)
    GOFER_TEST_CHECK_D(d12, 112, 15) GOFER_TEST_CHECK_D(d13, 113, 16)
    GOFER_TEST_CHECK_D(d14, 114, 17) GOFER_TEST_CHECK_D(d15, 115, 18)
    GOFER_TEST_LOAD(x19, x20, 0) GOFER_TEST_LOAD(x21, x22, 16) GOFER_TEST_LOAD(x23, x24, 32)
    GOFER_TEST_LOAD(x25, x26, 48) GOFER_TEST_LOAD(x27, x28, 64) GOFER_TEST_LOAD(x29, x30, 80)
    GOFER_TEST_LOAD(d8, d9, 96) GOFER_TEST_LOAD(d10, d11, 112) GOFER_TEST_LOAD(d12, d13, 128)
    GOFER_TEST_LOAD(d14, d15, 144)
    "  add sp, sp, #176\n"
    "  .cfi_def_cfa_offset 0\n"
    "  ret\n"
    "  .cfi_endproc\n"
    ".size gofer_test_probe_callee_saved, .-gofer_test_probe_callee_saved\n"
    ".popsection\n");
#endif
// clang-format on

namespace {

// Distinct, implausible values for the two sides, so neither side's pattern can
// pass for the other's.
constexpr std::uint64_t thread_base = 0x6f6f6f6f00000000;
constexpr std::uint64_t fiber_base = 0x3c3c3c3c00000000;

// A thread context, a fiber context and a second fiber context, with what the
// fibers observed; the checks run on the thread, because a failed assertion
// throws and an exception must not leave a fiber.
template <class Backend>
struct harness {
  using context = arch::basic_context<Backend>;

  context thread;
  context fiber;
  context second;
  test_stack fiber_stack{stack_size};
  test_stack second_stack{stack_size};

  long to_fiber = 0;
  long to_thread = 0;
  double fiber_sum = 0;
  std::uint64_t fiber_mask = 0;
  std::uintptr_t frame = 0;
  std::uintptr_t local = 0;
  std::uintptr_t deepest = 0;
  fp_state fiber_initial, fiber_set, fiber_later, second_initial;
  std::string trace;
  int unwind_result = 0;
  int unwind_frames = 0;
  bool first_caught = false;
  bool second_caught = false;
  int uncaught = -1;

  harness() { arch::init_thread_context(thread); }
  harness(const harness&) = delete;
  harness& operator=(const harness&) = delete;
  ~harness() {
    arch::destroy_context(fiber);
    arch::destroy_context(second);
  }

  void start(void (*fn)(void*)) {
    arch::make_context(fiber, fiber_stack.bottom(), fiber_stack.size(), fn, this);
  }
  void start_second(void (*fn)(void*)) {
    arch::make_context(second, second_stack.bottom(), second_stack.size(), fn, this);
  }
  void resume() { arch::switch_context(thread, fiber); }
  void yield() { arch::switch_context(fiber, thread); }
  [[noreturn]] void finish() {
    arch::exit_context(fiber, thread);
  }
};

// Not instrumented, so that under ASan the local stays on the real stack
// instead of moving to a heap-allocated fake frame.
__attribute__((no_sanitize_address)) GOFER_NOINLINE void note_local(std::uintptr_t& out) {
  volatile char local = 0;
  out = reinterpret_cast<std::uintptr_t>(&local);
}

// Each level takes `bytes` of the stack and touches both ends of it; returns
// the lowest address reached. The size is a run-time value because ASan moves
// fixed-size locals, even a constant alloca, to heap fake frames when it looks
// for use-after-return, and the point is to use the fiber's own stack.
GOFER_NOINLINE std::uintptr_t dig(int levels, std::size_t bytes) {
  auto* block = static_cast<volatile char*>(__builtin_alloca(bytes));
  block[0] = static_cast<char>(levels);
  block[bytes - 1] = static_cast<char>(levels);
  auto here = reinterpret_cast<std::uintptr_t>(block);
  if (levels == 0) return here;
  std::uintptr_t deeper = dig(levels - 1, bytes);
  // Using the block after the call keeps this frame alive through it.
  return block[0] == static_cast<char>(levels) ? deeper : 0;
}

GOFER_NOINLINE void throw_from_depth(int levels, const char* what) {
  if (levels == 0) throw std::runtime_error(what);
  throw_from_depth(levels - 1, what);
}

_Unwind_Reason_Code count_frame(_Unwind_Context*, void* frames) {
  return ++*static_cast<int*>(frames) > 100 ? _URC_NORMAL_STOP : _URC_NO_REASON;
}

GOFER_NOINLINE int unwind_from_here(int& frames) {
  return static_cast<int>(_Unwind_Backtrace(&count_frame, &frames));
}

}  // namespace

TEMPLATE_TEST_CASE("a context switch keeps the contract", "[arch]", arch::native_backend,
                   arch::ucontext::backend) {
  using H = harness<TestType>;
  INFO("backend: " << TestType::name);
  fenv_guard restore_fenv;
  H h;

  SECTION("ping-pong carries values both ways, and values live across switches survive") {
    h.start(+[](void* p) {
      arch::on_context_entry();
      auto& h = *static_cast<H*>(p);
      double sum = 0.5;
      for (;;) {
        long in = h.to_fiber;
        sum += static_cast<double>(in) * 0.25;
        h.fiber_sum = sum;
        h.to_thread = in * 3 + 1;
        h.yield();
      }
    });
    constexpr long rounds = 10000;
    double sum = 0.5;
    long mismatches = 0;
    for (long i = 0; i < rounds; ++i) {
      h.to_fiber = i;
      h.resume();
      sum += static_cast<double>(i) * 0.25;
      if (h.to_thread != i * 3 + 1 || h.fiber_sum != sum) ++mismatches;
    }
    CHECK(mismatches == 0);
    CHECK(sum == 0.5 + 0.25 * static_cast<double>(rounds * (rounds - 1) / 2));
  }

#if GOFER_TEST_HAVE_PROBE
  SECTION("every callee-saved register survives a switch, in both directions") {
    h.start(+[](void* p) {
      arch::on_context_entry();
      auto& h = *static_cast<H*>(p);
      for (;;) {
        h.fiber_mask |= gofer_test_probe_callee_saved(
            +[](void* q) { static_cast<H*>(q)->yield(); }, &h, fiber_base);
      }
    });
    std::uint64_t thread_mask = 0;
    for (int i = 0; i < 100; ++i) {
      thread_mask |= gofer_test_probe_callee_saved(
          +[](void* q) { static_cast<H*>(q)->resume(); }, &h, thread_base);
      h.resume();
    }
    CHECK(thread_mask == 0);
    CHECK(h.fiber_mask == 0);
  }
#endif

  SECTION("the floating-point control state belongs to the context that set it") {
    const fp_state defaults{FE_TONEAREST, default_fp_control};
    REQUIRE(read_fp_state() == defaults);
    h.start(+[](void* p) {
      arch::on_context_entry();
      auto& h = *static_cast<H*>(p);
      h.fiber_initial = read_fp_state();
      std::fesetround(FE_UPWARD);
      write_fp_control(with_odd_bits(read_fp_control()));
      h.fiber_set = read_fp_state();
      h.yield();
      h.fiber_later = read_fp_state();
      h.finish();
    });
    h.resume();
    CHECK(h.fiber_initial == defaults);
    CHECK(h.fiber_set.round == FE_UPWARD);
    CHECK(h.fiber_set.control != defaults.control);
    CHECK(read_fp_state() == defaults);  // the fiber's state did not leak out

    std::fesetround(FE_DOWNWARD);
    const fp_state thread_set = read_fp_state();
    h.resume();
    CHECK(h.fiber_later == h.fiber_set);  // nor did the thread's leak in
    CHECK(read_fp_state() == thread_set);

    // A new context starts from the defaults, not from its creator's state.
    write_fp_control(with_odd_bits(read_fp_control()));
    h.start_second(+[](void* p) {
      arch::on_context_entry();
      auto& h = *static_cast<H*>(p);
      h.second_initial = read_fp_state();
      arch::exit_context(h.second, h.thread);
    });
    arch::switch_context(h.thread, h.second);
    CHECK(h.second_initial == defaults);
  }

  SECTION("a fiber runs on the stack it was given, 16-byte aligned at entry") {
    h.start(+[](void* p) {
      arch::on_context_entry();
      auto& h = *static_cast<H*>(p);
      h.frame = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
      note_local(h.local);
      h.finish();
    });
    h.resume();
    CHECK(h.fiber_stack.contains(h.frame));
    CHECK(h.fiber_stack.contains(h.local));
    // The frame address is the stack pointer at entry rounded by a fixed
    // amount that keeps 16-byte alignment on both ABIs (x86-64: entry sp is
    // 8 off, and the pushed frame pointer makes it 0; AArch64: sp itself).
    CHECK(h.frame % 16 == 0);
  }

  SECTION("a fiber switches straight to another fiber and back") {
    h.start(+[](void* p) {
      arch::on_context_entry();
      auto& h = *static_cast<H*>(p);
      h.trace += 'a';
      h.start_second(+[](void* q) {
        arch::on_context_entry();
        auto& h = *static_cast<H*>(q);
        h.trace += 'b';
        arch::switch_context(h.second, h.fiber);
        h.trace += 'd';
        // Leaves for the thread, not for the fiber that resumed it.
        arch::exit_context(h.second, h.thread);
      });
      arch::switch_context(h.fiber, h.second);
      h.trace += 'c';
      arch::switch_context(h.fiber, h.second);
      h.trace += 'f';
      h.finish();
    });
    h.resume();
    h.trace += 'e';
    h.resume();
    CHECK(h.trace == "abcdef");
  }

  SECTION("exceptions thrown and caught inside a fiber work, across switches") {
    h.start(+[](void* p) {
      arch::on_context_entry();
      auto& h = *static_cast<H*>(p);
      try {
        throw_from_depth(8, "first");
      } catch (const std::runtime_error& e) {
        h.first_caught = std::string(e.what()) == "first";
      }
      try {
        // Suspended inside a try block while the thread throws its own.
        h.yield();
        throw_from_depth(8, "second");
      } catch (const std::runtime_error& e) {
        h.second_caught = std::string(e.what()) == "second";
      }
      h.uncaught = std::uncaught_exceptions();
      h.finish();
    });
    h.resume();
    bool thread_caught = false;
    try {
      throw_from_depth(4, "thread");
    } catch (const std::runtime_error&) {
      thread_caught = true;
    }
    h.resume();
    CHECK(h.first_caught);
    CHECK(h.second_caught);
    CHECK(thread_caught);
    CHECK(h.uncaught == 0);
    CHECK(std::uncaught_exceptions() == 0);
  }

  SECTION("deep recursion fits in a 256 KiB stack") {
    h.start(+[](void* p) {
      arch::on_context_entry();
      auto& h = *static_cast<H*>(p);
      volatile std::size_t kib = 1024;
      h.deepest = dig(160, kib);
      h.finish();
    });
    h.resume();
    CHECK(h.fiber_stack.contains(h.deepest));
    CHECK(h.fiber_stack.hi() - h.deepest >= 160 * 1024);
  }

  SECTION("a backtrace from inside a fiber ends at its entry") {
    h.start(+[](void* p) {
      arch::on_context_entry();
      auto& h = *static_cast<H*>(p);
      h.unwind_result = unwind_from_here(h.unwind_frames);
      h.finish();
    });
    h.resume();
    CHECK(h.unwind_result == _URC_END_OF_STACK);
    CHECK(h.unwind_frames > 0);
    CHECK(h.unwind_frames < 10);
  }
}
