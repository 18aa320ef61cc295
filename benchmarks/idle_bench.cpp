// What a runtime with nothing to do costs: the CPU its Ms burn while the only
// fiber sleeps. An idle runtime must sleep in the kernel, not poll; anything
// above a fraction of a percent of one CPU is a busy loop or a too-short
// timeout somewhere.

#include <chrono>

#include <gofer/gofer.hpp>

#include "support/fixture.hpp"

namespace {

void idle_cpu(benchmark::State& state) {
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        // Startup (Ms spinning for work as they come up) is not idleness.
        gofer::this_fiber::sleep_for(std::chrono::milliseconds(100));
        for (auto _ : state) {
          const double cpu0 = gofer_bench::process_cpu_ns();
          const auto t0 = gofer_bench::steady::now();
          gofer::this_fiber::sleep_for(std::chrono::seconds(2));
          const double wall = gofer_bench::ns_since(t0);
          const double cpu = gofer_bench::process_cpu_ns() - cpu0;
          state.counters["cpu_pct"] = benchmark::Counter(100.0 * cpu / wall);
        }
      },
      gofer::options{.procs = procs});
}
BENCHMARK(idle_cpu)->Apply(gofer_bench::fixed_procs<2>)->Iterations(1)->UseRealTime();

}  // namespace
