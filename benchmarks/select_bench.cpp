// What a select costs: blocking on two unbuffered channels that take turns
// (enqueue on both, a wake-up, dequeue from both), polling an empty channel
// with a default case (the lock-free fast path, which a loop may run millions
// of times a second), a select over time.After(0) (a timer made due, so ready
// when the select polls), and a select whose hour-long time.After loses to a
// ready channel (the timeout a server arms per request and never reaches).
//
// Each benchmark owns one runtime for all its iterations: the timed loop runs
// in the runtime's main fiber, so the runtime's start and stop stay outside it.

#include <chrono>
#include <cstdint>

#include <gofer/gofer.hpp>

#include "support/fixture.hpp"

namespace {

// The main fiber selects over two unbuffered channels, once per iteration;
// the sender alternates between them. The sender sends exactly as many
// values as the loop will receive, so it ends by itself and no send is ever
// left blocked on a channel being closed (which would throw, as Go panics).
void select2_unbuffered(benchmark::State& state) {
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        gofer::chan<int> a;
        gofer::chan<int> b;
        gofer::wait_group sender_done;
        sender_done.add(1);
        const std::int64_t n = state.max_iterations;
        gofer::go([&] {
          for (std::int64_t i = 0; i < n; ++i) (i % 2 == 0 ? a : b).send(static_cast<int>(i));
          sender_done.done();
        });

        std::int64_t from_a = 0;
        const auto t0 = gofer_bench::steady::now();
        for (auto _ : state) {
          if (gofer::select(gofer::on_recv(a), gofer::on_recv(b)) == 0) ++from_a;
        }
        const double elapsed = gofer_bench::ns_since(t0);

        sender_done.wait();
        a.close();
        b.close();
        benchmark::DoNotOptimize(from_a);
        gofer_bench::report_per_unit(state, "ns_per_select", elapsed,
                                     static_cast<double>(state.iterations()));
      },
      gofer::options{.procs = procs});
}
BENCHMARK(select2_unbuffered)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

// Nothing is ever sent on c, so every select takes the default case.
void select_default_empty(benchmark::State& state) {
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        gofer::chan<int> c;
        const auto t0 = gofer_bench::steady::now();
        for (auto _ : state) {
          benchmark::DoNotOptimize(gofer::select(gofer::on_recv(c), gofer::on_default()));
        }
        gofer_bench::report_per_unit(state, "ns_per_select", gofer_bench::ns_since(t0),
                                     static_cast<double>(state.iterations()));
        c.close();
      },
      gofer::options{.procs = procs});
}
BENCHMARK(select_default_empty)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

// Go's select { case <-c: case <-time.After(0): } with c never ready: each
// iteration makes a fresh timer that is due at once. As in Go 1.23, its value
// is ready when the select polls (Go's older runtimes, Debian 12's 1.19
// among them, park the selecting goroutine until the timer heap fires).
void select_after0(benchmark::State& state) {
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        gofer::chan<int> c;
        std::int64_t timed_out = 0;
        const auto t0 = gofer_bench::steady::now();
        for (auto _ : state) {
          if (gofer::select(gofer::on_recv(c),
                            gofer::on_recv(gofer::after(std::chrono::milliseconds(0)))) == 1) {
            ++timed_out;
          }
        }
        const double elapsed = gofer_bench::ns_since(t0);
        c.close();
        if (timed_out != state.iterations()) {
          state.SkipWithError("a select over a channel nobody sends on did not time out");
          return;
        }
        gofer_bench::report_per_unit(state, "ns_per_select", elapsed,
                                     static_cast<double>(state.iterations()));
      },
      gofer::options{.procs = procs});
}
BENCHMARK(select_after0)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

// Go's select { case <-c: case <-time.After(time.Hour): } with c always
// ready: the timeout a server puts on every request and never reaches. Each
// iteration arms an hour-long timer that nothing can observe once its select
// has returned; what it costs is the arming and getting rid of it.
void select_timeout_unused(benchmark::State& state) {
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        gofer::chan<int> c(1);
        std::int64_t data_first = 0;
        int i = 0;
        const auto t0 = gofer_bench::steady::now();
        for (auto _ : state) {
          c.send(i++);
          if (gofer::select(gofer::on_recv(c),
                            gofer::on_recv(gofer::after(std::chrono::hours(1)))) == 0)
            ++data_first;
        }
        const double elapsed = gofer_bench::ns_since(t0);
        if (data_first != state.iterations()) {
          state.SkipWithError("a select with a ready channel took its hour-long timeout");
          return;
        }
        gofer_bench::report_per_unit(state, "ns_per_select", elapsed,
                                     static_cast<double>(state.iterations()));
      },
      gofer::options{.procs = procs});
}
BENCHMARK(select_timeout_unused)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

}  // namespace
