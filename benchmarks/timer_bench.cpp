// How long a 1 ms sleep really takes: the timer heap's precision plus the time
// for an idle M to wake up and resume the sleeper. The tail matters more than
// the mean (a ticker or a timeout is only as good as its worst firing), so the
// mean, median and 99th percentile are reported.

#include <chrono>
#include <vector>

#include <gofer/gofer.hpp>

#include "support/fixture.hpp"

namespace {

void sleep_1ms(benchmark::State& state) {
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        std::vector<double> took;
        took.reserve(4096);
        for (auto _ : state) {
          const auto t0 = gofer_bench::steady::now();
          gofer::this_fiber::sleep_for(std::chrono::milliseconds(1));
          took.push_back(gofer_bench::ns_since(t0));
        }
        gofer_bench::report_distribution_us(state, std::move(took));
      },
      gofer::options{.procs = procs});
}
BENCHMARK(sleep_1ms)->Apply(gofer_bench::sweep_procs)->UseRealTime();

}  // namespace
