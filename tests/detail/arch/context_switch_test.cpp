// One contract for every context-switch backend present: the native assembly
// one and the ucontext fallback must behave the same.
#include <catch2/catch.hpp>

#include <cfenv>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include <gofer/detail/arch/context.hpp>

namespace arch = gofer::detail::arch;

namespace {

template <class Backend>
struct harness {
  using context = arch::basic_context<Backend>;
  static constexpr std::size_t stack_size = 256 * 1024;

  context thread_ctx;
  context fiber_ctx;
  context other_ctx;
  std::unique_ptr<char[]> stack{new char[stack_size]};
  std::unique_ptr<char[]> other_stack{new char[stack_size]};

  // What the fiber saw, reported back to the thread.
  long counter = 0;
  double fp_seen = 0;
  std::uintptr_t local_addr = 0;
  std::uintptr_t entry_sp_mod16 = 1;
  int rounding_in_fiber = 0;
  bool caught = false;
  bool other_ran = false;
  long deep = 0;

  harness() { arch::init_thread_context(thread_ctx); }

  void start(void (*fn)(void*)) {
    arch::make_context(fiber_ctx, stack.get(), stack_size, fn, this);
  }
  void resume() { arch::switch_context(thread_ctx, fiber_ctx); }
  void back() { arch::switch_context(fiber_ctx, thread_ctx); }
};

long recurse(long n) {
  volatile char pad[256];
  pad[0] = static_cast<char>(n);
  return n == 0 ? pad[0] : recurse(n - 1) + 1;
}

}  // namespace

TEMPLATE_TEST_CASE("context switch contract", "[arch]", arch::native_backend,
                   arch::ucontext::backend) {
  using H = harness<TestType>;
  H h;
  INFO("backend " << TestType::name);

  SECTION("ping-pong carries state both ways, registers and FP values survive") {
    h.start([](void* p) {
      arch::on_context_entry();
      auto* self = static_cast<H*>(p);
      volatile double live = 1.25;  // kept across switches
      for (;;) {
        ++self->counter;
        self->fp_seen = live * static_cast<double>(self->counter);
        self->back();
      }
    });
    volatile double mine = 3.5;
    long regs[4] = {11, 22, 33, 44};
    for (int i = 1; i <= 1000; ++i) {
      h.resume();
      REQUIRE(h.counter == i);
      REQUIRE(h.fp_seen == 1.25 * i);
    }
    CHECK(mine == 3.5);
    CHECK(regs[0] + regs[1] + regs[2] + regs[3] == 110);
  }

  SECTION("the fiber runs on the stack it was given, aligned as the ABI wants") {
    h.start([](void* p) {
      arch::on_context_entry();
      auto* self = static_cast<H*>(p);
      char local;
      self->local_addr = reinterpret_cast<std::uintptr_t>(&local);
      alignas(16) char probe[16];
      self->entry_sp_mod16 = reinterpret_cast<std::uintptr_t>(probe) % 16;
      self->back();
      std::abort();
    });
    h.resume();
    auto lo = reinterpret_cast<std::uintptr_t>(h.stack.get());
    CHECK(h.local_addr > lo);
    CHECK(h.local_addr < lo + H::stack_size);
    CHECK(h.entry_sp_mod16 == 0);
  }

  SECTION("the rounding mode belongs to the context that set it") {
    REQUIRE(std::fegetround() == FE_TONEAREST);
    h.start([](void* p) {
      arch::on_context_entry();
      auto* self = static_cast<H*>(p);
      std::fesetround(FE_UPWARD);
      self->back();
      self->rounding_in_fiber = std::fegetround();
      self->back();
      std::abort();
    });
    h.resume();
    CHECK(std::fegetround() == FE_TONEAREST);  // the fiber's mode did not leak out
    std::fesetround(FE_DOWNWARD);
    h.resume();
    CHECK(h.rounding_in_fiber == FE_UPWARD);  // nor did the thread's leak in
    CHECK(std::fegetround() == FE_DOWNWARD);
    std::fesetround(FE_TONEAREST);
  }

  SECTION("a fiber switches directly to another fiber, exceptions stay inside") {
    h.start([](void* p) {
      arch::on_context_entry();
      auto* self = static_cast<H*>(p);
      try {
        throw std::runtime_error("inside");
      } catch (const std::runtime_error&) {
        self->caught = true;
      }
      self->deep = recurse(500);
      arch::make_context(self->other_ctx, self->other_stack.get(), H::stack_size,
                         [](void* q) {
                           arch::on_context_entry();
                           auto* s = static_cast<H*>(q);
                           s->other_ran = true;
                           arch::exit_context(s->other_ctx, s->fiber_ctx);
                         },
                         self);
      arch::switch_context(self->fiber_ctx, self->other_ctx);
      self->back();
      std::abort();
    });
    h.resume();
    CHECK(h.caught);
    CHECK(h.deep == 500);
    CHECK(h.other_ran);
  }
}
