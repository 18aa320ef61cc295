// The same workloads on Boost.Fiber with its defaults: the round-robin
// scheduler of the calling thread (one thread, hence procs:1 only) and the
// default stack allocator, which is what a program that does not tune gets.

#include <chrono>
#include <cstdint>
#include <vector>

#include <boost/fiber/all.hpp>

#include "support/fixture.hpp"

namespace {

void yield_pingpong(benchmark::State& state) {
  bool stop = false;
  std::uint64_t partner_yields = 0;
  boost::fibers::fiber partner([&] {
    while (!stop) {
      boost::this_fiber::yield();
      ++partner_yields;
    }
  });
  boost::this_fiber::yield();  // let the partner start before timing

  const std::uint64_t before = partner_yields;
  const auto t0 = gofer_bench::steady::now();
  for (auto _ : state) boost::this_fiber::yield();
  const double elapsed = gofer_bench::ns_since(t0);
  const std::uint64_t partner_count = partner_yields - before;

  stop = true;
  partner.join();
  gofer_bench::report_per_unit(
      state, "ns_per_switch", elapsed,
      static_cast<double>(state.iterations()) + static_cast<double>(partner_count));
}
BENCHMARK(yield_pingpong)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

void spawn_join(benchmark::State& state) {
  const auto t0 = gofer_bench::steady::now();
  for (auto _ : state) {
    boost::fibers::fiber f([] {});
    f.join();
  }
  gofer_bench::report_per_unit(state, "ns_per_fiber", gofer_bench::ns_since(t0),
                               static_cast<double>(state.iterations()));
}
BENCHMARK(spawn_join)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

void spawn_batch_1000(benchmark::State& state) {
  constexpr int batch = 1000;
  std::vector<boost::fibers::fiber> fibers;
  fibers.reserve(batch);
  const auto t0 = gofer_bench::steady::now();
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) fibers.emplace_back([] {});
    for (auto& f : fibers) f.join();
    fibers.clear();
  }
  gofer_bench::report_per_unit(state, "ns_per_fiber", gofer_bench::ns_since(t0),
                               static_cast<double>(state.iterations()) * batch);
}
BENCHMARK(spawn_batch_1000)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

void sleep_1ms(benchmark::State& state) {
  std::vector<double> took;
  took.reserve(4096);
  for (auto _ : state) {
    const auto t0 = gofer_bench::steady::now();
    boost::this_fiber::sleep_for(std::chrono::milliseconds(1));
    took.push_back(gofer_bench::ns_since(t0));
  }
  gofer_bench::report_distribution_us(state, std::move(took));
}
BENCHMARK(sleep_1ms)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

}  // namespace
