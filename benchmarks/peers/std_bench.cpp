// The same workloads with plain OS threads: what a program gets without any
// fiber library. "procs:N" confines the threads to N CPUs, the analogue of a
// runtime with N Ps.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "support/fixture.hpp"

namespace {

// Two threads sharing one CPU, each calling sched_yield in a loop: with both
// runnable and one CPU, every yield is a kernel context switch to the other.
void yield_pingpong(benchmark::State& state) {
  gofer_bench::cpu_limit limit(static_cast<unsigned>(state.range(0)));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> partner_yields{0};
  std::thread partner([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      std::this_thread::yield();
      partner_yields.fetch_add(1, std::memory_order_relaxed);
    }
  });
  while (partner_yields.load(std::memory_order_relaxed) == 0) std::this_thread::yield();

  const std::uint64_t before = partner_yields.load(std::memory_order_relaxed);
  const auto t0 = gofer_bench::steady::now();
  for (auto _ : state) std::this_thread::yield();
  const double elapsed = gofer_bench::ns_since(t0);
  const std::uint64_t partner_count = partner_yields.load(std::memory_order_relaxed) - before;

  stop.store(true, std::memory_order_relaxed);
  partner.join();
  gofer_bench::report_per_unit(
      state, "ns_per_switch", elapsed,
      static_cast<double>(state.iterations()) + static_cast<double>(partner_count));
}
BENCHMARK(yield_pingpong)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

void spawn_join(benchmark::State& state) {
  gofer_bench::cpu_limit limit(static_cast<unsigned>(state.range(0)));
  const auto t0 = gofer_bench::steady::now();
  for (auto _ : state) {
    std::thread t([] {});
    t.join();
  }
  gofer_bench::report_per_unit(state, "ns_per_fiber", gofer_bench::ns_since(t0),
                               static_cast<double>(state.iterations()));
}
BENCHMARK(spawn_join)->Apply(gofer_bench::sweep_procs)->UseRealTime();

void spawn_batch_1000(benchmark::State& state) {
  constexpr int batch = 1000;
  gofer_bench::cpu_limit limit(static_cast<unsigned>(state.range(0)));
  std::vector<std::thread> threads;
  threads.reserve(batch);
  const auto t0 = gofer_bench::steady::now();
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) threads.emplace_back([] {});
    for (auto& t : threads) t.join();
    threads.clear();
  }
  gofer_bench::report_per_unit(state, "ns_per_fiber", gofer_bench::ns_since(t0),
                               static_cast<double>(state.iterations()) * batch);
}
BENCHMARK(spawn_batch_1000)->Apply(gofer_bench::sweep_procs)->UseRealTime();

void sleep_1ms(benchmark::State& state) {
  gofer_bench::cpu_limit limit(static_cast<unsigned>(state.range(0)));
  std::vector<double> took;
  took.reserve(4096);
  for (auto _ : state) {
    const auto t0 = gofer_bench::steady::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    took.push_back(gofer_bench::ns_since(t0));
  }
  gofer_bench::report_distribution_us(state, std::move(took));
}
BENCHMARK(sleep_1ms)->Apply(gofer_bench::sweep_procs)->UseRealTime();

}  // namespace
