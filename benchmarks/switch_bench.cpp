// The cost of a switch: the bare context switch with no scheduler (the floor
// every scheduled switch is measured against), and yield ping-pong between two
// fibers on one P (the floor plus the scheduler's own work per switch).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <gofer/detail/arch/context.hpp>
#include <gofer/gofer.hpp>

#include "support/fixture.hpp"

namespace {

namespace arch = gofer::detail::arch;

struct bare_pair {
  arch::context thread;
  arch::context fiber;
};

[[noreturn]] void bare_partner(void* arg) {
  arch::on_context_entry();
  auto* pair = static_cast<bare_pair*>(arg);
  for (;;) arch::switch_context(pair->fiber, pair->thread);
}

void switch_bare(benchmark::State& state) {
  constexpr std::size_t stack_size = 64 * 1024;
  auto stack = std::make_unique<std::byte[]>(stack_size);
  bare_pair pair;
  arch::init_thread_context(pair.thread);
  arch::make_context(pair.fiber, stack.get(), stack_size, &bare_partner, &pair);
  // The first entry runs the partner's prologue and faults in its stack page;
  // neither belongs in the steady state.
  arch::switch_context(pair.thread, pair.fiber);

  const auto t0 = gofer_bench::steady::now();
  for (auto _ : state) arch::switch_context(pair.thread, pair.fiber);
  const double elapsed = gofer_bench::ns_since(t0);
  // There and back: two switches per iteration.
  gofer_bench::report_per_unit(state, "ns_per_switch", elapsed,
                               2.0 * static_cast<double>(state.iterations()));
  // The partner stays suspended for good; its stack goes with `stack`.
  arch::destroy_context(pair.fiber);
}
BENCHMARK(switch_bare)->UseRealTime();

// Two fibers on one P, each yielding in a loop: every yield hands the P to the
// other, so one yield is one switch. The timed loop runs in the main fiber;
// the partner counts its own yields so the figure divides by what happened
// rather than by what should have.
void yield_pingpong(benchmark::State& state) {
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        std::atomic<bool> stop{false};
        std::atomic<std::uint64_t> partner_yields{0};
        gofer::wait_group partner_done;
        partner_done.add(1);
        gofer::go([&] {
          while (!stop.load(std::memory_order_relaxed)) {
            gofer::this_fiber::yield();
            partner_yields.fetch_add(1, std::memory_order_relaxed);
          }
          partner_done.done();
        });
        gofer::this_fiber::yield();  // let the partner start before timing

        const std::uint64_t before = partner_yields.load(std::memory_order_relaxed);
        const auto t0 = gofer_bench::steady::now();
        for (auto _ : state) gofer::this_fiber::yield();
        const double elapsed = gofer_bench::ns_since(t0);
        const std::uint64_t partner = partner_yields.load(std::memory_order_relaxed) - before;

        stop.store(true, std::memory_order_relaxed);
        partner_done.wait();
        gofer_bench::report_per_unit(
            state, "ns_per_switch", elapsed,
            static_cast<double>(state.iterations()) + static_cast<double>(partner));
      },
      gofer::options{.procs = procs});
}
BENCHMARK(yield_pingpong)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

}  // namespace
