// What a fiber costs: to start and join one at a time (the latency of `go`
// plus a wait_group), to start a batch (the throughput of `go`), and to keep a
// great many parked (memory, and the time to create and release them). And
// what the machine charges for a fresh page, which bounds the last from below.
//
// Each benchmark owns one runtime for all its iterations: the timed loop runs
// in the runtime's main fiber, so the runtime's start and stop stay outside it.

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include <gofer/gofer.hpp>

#include "support/fixture.hpp"

namespace {

void spawn_join(benchmark::State& state) {
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        gofer::wait_group wg;  // reused, as the Go twin reuses its WaitGroup
        const auto t0 = gofer_bench::steady::now();
        for (auto _ : state) {
          wg.add(1);
          gofer::go([&wg] { wg.done(); });
          wg.wait();
        }
        gofer_bench::report_per_unit(state, "ns_per_fiber", gofer_bench::ns_since(t0),
                                     static_cast<double>(state.iterations()));
      },
      gofer::options{.procs = procs});
}
BENCHMARK(spawn_join)->Apply(gofer_bench::sweep_procs)->UseRealTime();

void spawn_batch_1000(benchmark::State& state) {
  constexpr int batch = 1000;
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        gofer::wait_group wg;
        const auto t0 = gofer_bench::steady::now();
        for (auto _ : state) {
          wg.add(batch);
          for (int i = 0; i < batch; ++i) gofer::go([&wg] { wg.done(); });
          wg.wait();
        }
        gofer_bench::report_per_unit(state, "ns_per_fiber", gofer_bench::ns_since(t0),
                                     static_cast<double>(state.iterations()) * batch);
      },
      gofer::options{.procs = procs});
}
BENCHMARK(spawn_batch_1000)->Apply(gofer_bench::sweep_procs)->UseRealTime();

// N fibers, each parked on one shared gate. Reported:
//   spawn_s        from the first go() until every fiber has reached the gate
//   KiB_per_fiber  resident memory added by the parked population, per fiber
//   exit_s         from opening the gate until every fiber has finished
// Default runtime options: this is what a program that never tunes gets.
void parked_fibers(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  if (!gofer_bench::room_for_parked(state, n)) return;
  gofer::run([&] {
    for (auto _ : state) {
      gofer::wait_group reached;
      gofer::wait_group gate;
      gofer::wait_group finished;
      reached.add(static_cast<int>(n));
      gate.add(1);
      finished.add(static_cast<int>(n));
      const long rss_before = gofer_bench::rss_kib();

      const auto t0 = gofer_bench::steady::now();
      for (std::int64_t i = 0; i < n; ++i) {
        gofer::go([&] {
          reached.done();
          gate.wait();
          finished.done();
        });
      }
      reached.wait();
      const double spawn_ns = gofer_bench::ns_since(t0);
      const long rss_after = gofer_bench::rss_kib();

      const auto t1 = gofer_bench::steady::now();
      gate.done();
      finished.wait();
      const double exit_ns = gofer_bench::ns_since(t1);

      state.counters["spawn_s"] = benchmark::Counter(spawn_ns / 1e9);
      state.counters["exit_s"] = benchmark::Counter(exit_ns / 1e9);
      state.counters["KiB_per_fiber"] = benchmark::Counter(
          static_cast<double>(rss_after - rss_before) / static_cast<double>(n));
    }
  });
}
BENCHMARK(parked_fibers)->Apply(gofer_bench::parked_counts)->Iterations(1)->UseRealTime();

// The cheapest way known here to get a page of fresh anonymous memory
// written: one MADV_POPULATE_WRITE for a whole run of pages (a system call
// instead of a fault per page), then the first write to each, which under a
// hypervisor still pays the host's own first touch. Where the kernel lacks
// MADV_POPULATE_WRITE (before 5.14) the writes fault as usual. gofer gives
// every fiber a stack of its own, so a parked fiber holds at least one such
// page (4 KiB each, measured): n of them, spread over the CPUs at best, bound
// parked_fibers' spawn_s from below for that design. No runtime here: it
// measures the machine.
void fresh_page(benchmark::State& state) {
  constexpr std::size_t pages = 20000;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t bytes = pages * page;
  for (auto _ : state) {
    void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      state.SkipWithError("mmap failed");
      return;
    }
    // Pages of their own, not parts of a huge page.
    ::madvise(m, bytes, MADV_NOHUGEPAGE);
    auto* base = static_cast<volatile char*>(m);
    const auto t0 = gofer_bench::steady::now();
    // gofer's stack header defines the name where the C library lacks it.
    ::madvise(m, bytes, MADV_POPULATE_WRITE);  // if refused, the writes fault
    for (std::size_t i = 0; i < pages; ++i) base[i * page] = 1;
    const double ns = gofer_bench::ns_since(t0);
    ::munmap(m, bytes);
    state.counters["us_per_page"] = benchmark::Counter(ns / 1000.0 / pages);
  }
}
BENCHMARK(fresh_page)->Iterations(1)->UseRealTime();

}  // namespace
