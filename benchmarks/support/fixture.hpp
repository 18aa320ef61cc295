// What every benchmark binary shares: the procs sweep, clocks, the process's
// memory and CPU figures, and the statistics reported as counters.
//
// Deliberately independent of gofer, so the peer binaries (std, Boost.Fiber)
// register exactly the same cases and measure them with exactly the same code.
//
// Naming: a case is "<workload>/procs:<N>" (or "<workload>/n:<N>"), the same
// string for every implementation; compare.py pairs implementations by it.
// Figures go out as counters whose names carry their unit (ns_per_switch,
// KiB_per_fiber, p99_us, …); the Go twins report the same names through
// b.ReportMetric. The per-iteration time Google Benchmark prints is not used,
// because several workloads do more than one unit of work per iteration.
#pragma once

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace gofer_bench {

// CPUs this process may run on. The affinity mask rather than
// hardware_concurrency(): under taskset or a container's cpuset the sweep must
// not ask for more parallelism than there is.
inline unsigned cpu_count() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  return 1;
}

// The procs sweep: powers of two below the CPU count, then the CPU count
// itself (1, 2, 4, 6 on six CPUs), so the single-P fast paths, the first
// cross-P hand-offs and the whole machine are all measured. Beyond the CPU
// count Ms would only time-share cores, which measures the kernel.
inline std::vector<unsigned> procs_sweep() {
  std::vector<unsigned> out;
  const unsigned n = cpu_count();
  for (unsigned p = 1; p < n; p *= 2) out.push_back(p);
  out.push_back(n);
  return out;
}

// Registers one case per entry of procs_sweep(), named "<workload>/procs:N".
inline void sweep_procs(benchmark::internal::Benchmark* b) {
  b->ArgName("procs");
  for (unsigned p : procs_sweep()) b->Arg(p);
}

// Registers the single case "<workload>/procs:N".
template <unsigned N>
void fixed_procs(benchmark::internal::Benchmark* b) {
  b->ArgName("procs");
  b->Arg(N);
}

// Registers "<workload>/procs:N" for each N listed, whatever the CPU count:
// for workloads whose acceptance targets name their procs.
template <unsigned... N>
void fixed_procs_list(benchmark::internal::Benchmark* b) {
  b->ArgName("procs");
  (b->Arg(N), ...);
}

// Parked-fiber populations: a large one, and the million of the target.
inline void parked_counts(benchmark::internal::Benchmark* b) {
  b->ArgName("n");
  b->Arg(100'000);
  b->Arg(1'000'000);
}

using steady = std::chrono::steady_clock;

inline double ns_since(steady::time_point t0) {
  return std::chrono::duration<double, std::nano>(steady::now() - t0).count();
}

// A figure per unit of work (a switch, a fiber), from our own clock around the
// timed loop: Google Benchmark does not expose the loop's elapsed time, and its
// per-iteration time would conflate units with iterations.
inline void report_per_unit(benchmark::State& state, const char* name, double elapsed_ns,
                            double units) {
  if (units > 0) state.counters[name] = benchmark::Counter(elapsed_ns / units);
}

// Mean, median and 99th percentile of a sample, in microseconds.
inline void report_distribution_us(benchmark::State& state, std::vector<double> ns) {
  if (ns.empty()) return;
  std::sort(ns.begin(), ns.end());
  double sum = 0;
  for (double x : ns) sum += x;
  auto at = [&](double q) {
    auto i = static_cast<std::size_t>(q * static_cast<double>(ns.size() - 1) + 0.5);
    return ns[std::min(i, ns.size() - 1)];
  };
  state.counters["mean_us"] = benchmark::Counter(sum / static_cast<double>(ns.size()) / 1e3);
  state.counters["p50_us"] = benchmark::Counter(at(0.50) / 1e3);
  state.counters["p99_us"] = benchmark::Counter(at(0.99) / 1e3);
  state.counters["samples"] = benchmark::Counter(static_cast<double>(ns.size()));
}

// A field of /proc/self/status or /proc/meminfo, in KiB (0 if absent).
inline long proc_kib(const char* file, const char* field) {
  std::ifstream in(file);
  std::string line;
  const std::size_t len = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, len, field) == 0 && line.size() > len && line[len] == ':') {
      return std::strtol(line.c_str() + len + 1, nullptr, 10);
    }
  }
  return 0;
}

inline long rss_kib() { return proc_kib("/proc/self/status", "VmRSS"); }
inline long mem_available_kib() { return proc_kib("/proc/meminfo", "MemAvailable"); }

// A parked population must fit in memory with room to spare: on a machine
// without swap, overshooting means the OOM killer, and it may pick another
// process than this one. 8 KiB per fiber is above what any implementation
// measured here needs.
inline bool room_for_parked(benchmark::State& state, long n) {
  const long need = n * 8 + 256 * 1024;
  const long have = mem_available_kib();
  if (have >= need) return true;
  char msg[160];
  std::snprintf(msg, sizeof msg, "needs about %ld MiB free memory, %ld MiB available", need / 1024,
                have / 1024);
  state.SkipWithError(msg);
  return false;
}

// CPU time (user + system) consumed by every thread of the process so far.
inline double process_cpu_ns() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv_ns = [](const timeval& tv) { return tv.tv_sec * 1e9 + tv.tv_usec * 1e3; };
  return tv_ns(ru.ru_utime) + tv_ns(ru.ru_stime);
}

// Confines the calling thread (and the threads it creates from now on) to the
// first `procs` CPUs it may use, and restores the previous mask on
// destruction: the OS-thread analogue of running with `procs` Ps.
class cpu_limit {
 public:
  explicit cpu_limit(unsigned procs) {
    sched_getaffinity(0, sizeof saved_, &saved_);
    cpu_set_t set;
    CPU_ZERO(&set);
    unsigned taken = 0;
    for (int c = 0; c < CPU_SETSIZE && taken < procs; ++c) {
      if (CPU_ISSET(c, &saved_)) {
        CPU_SET(c, &set);
        ++taken;
      }
    }
    sched_setaffinity(0, sizeof set, &set);
  }
  ~cpu_limit() { sched_setaffinity(0, sizeof saved_, &saved_); }
  cpu_limit(const cpu_limit&) = delete;
  cpu_limit& operator=(const cpu_limit&) = delete;

 private:
  cpu_set_t saved_;
};

}  // namespace gofer_bench
