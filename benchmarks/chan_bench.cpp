// What a channel costs: the round trip over unbuffered channels (a rendezvous
// and a wake-up each way), the throughput of a buffered channel with one
// producer and one consumer (the path that needs no wake-up until the buffer
// fills or drains), and with four of each (the same channel contended).
// stream_4p4c is the last workload again under the name the std twin shares:
// the same stream of ints through a mutex and condition-variable queue
// between OS threads, which is what a program without channels writes.
//
// Each benchmark owns one runtime for all its iterations: the timed loop runs
// in the runtime's main fiber, so the runtime's start and stop stay outside it.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

#include <gofer/gofer.hpp>

#include "support/fixture.hpp"
#include "support/stream.hpp"

namespace {

constexpr std::size_t buffer = 128;

// Two fibers bounce an int over two unbuffered channels: one iteration is a
// send and a receive each way. The partner ranges over ping, so closing ping
// is what ends it.
void chan_pingpong(benchmark::State& state) {
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        gofer::chan<int> ping;
        gofer::chan<int> pong;
        gofer::wait_group partner_done;
        partner_done.add(1);
        gofer::go([&] {
          for (int v : ping) pong.send(v);
          partner_done.done();
        });

        int i = 0;
        const auto t0 = gofer_bench::steady::now();
        for (auto _ : state) {
          ping.send(i++);
          benchmark::DoNotOptimize(pong.recv());
        }
        const double elapsed = gofer_bench::ns_since(t0);

        ping.close();
        partner_done.wait();
        gofer_bench::report_per_unit(state, "ns_per_roundtrip", elapsed,
                                     static_cast<double>(state.iterations()));
      },
      gofer::options{.procs = procs});
}
BENCHMARK(chan_pingpong)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// The main fiber produces, one send per iteration; the consumer ranges over
// the channel. The clock stops once the consumer has drained the buffer, so
// every message counted has also been received.
void chan_buffered_1p1c(benchmark::State& state) {
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        gofer::chan<int> c(buffer);
        gofer::wait_group drained;
        drained.add(1);
        std::int64_t received = 0;
        gofer::go([&] {
          for (int v : c) {
            benchmark::DoNotOptimize(v);
            ++received;
          }
          drained.done();
        });

        int i = 0;
        const auto t0 = gofer_bench::steady::now();
        for (auto _ : state) c.send(i++);
        c.close();
        drained.wait();
        const double elapsed = gofer_bench::ns_since(t0);

        if (received != state.iterations()) {
          state.SkipWithError("the consumer did not receive every message");
          return;
        }
        gofer_bench::report_per_unit(state, "ns_per_msg", elapsed, static_cast<double>(received));
      },
      gofer::options{.procs = procs});
}
BENCHMARK(chan_buffered_1p1c)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// `producers` fibers send n ints in all through one channel of `buffer` to
// `consumers` fibers (support/stream.hpp). The whole run is one batch of n:
// with several producers the main fiber cannot be the one sending, and the
// split is only possible once the count is known.
void many_to_many(benchmark::State& state, int producers, int consumers) {
  // A chan seen through stream_through's queue interface.
  struct chan_queue {
    gofer::chan<int> c{buffer};
    void push(int v) { c.send(v); }
    bool pop(int& v) {
      std::optional<int> got = c.recv();
      if (got) v = *got;
      return got.has_value();
    }
    void close() { c.close(); }
  };
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        const std::int64_t n = state.max_iterations;
        double elapsed = 0;
        while (state.KeepRunningBatch(n)) {
          chan_queue q;
          elapsed = gofer_bench::stream_through(q, n, producers, consumers);
        }
        if (elapsed < 0) {
          state.SkipWithError("the consumers did not receive every message exactly once");
          return;
        }
        gofer_bench::report_per_unit(state, "ns_per_msg", elapsed, static_cast<double>(n));
      },
      gofer::options{.procs = procs});
}

void chan_buffered_4p4c(benchmark::State& state) { many_to_many(state, 4, 4); }
BENCHMARK(chan_buffered_4p4c)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

void stream_4p4c(benchmark::State& state) { many_to_many(state, 4, 4); }
BENCHMARK(stream_4p4c)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

}  // namespace
