// The many-to-many stream shared by stream_4p4c (through a chan) and
// queue_cond_4p4c (through a mutex + cond_var queue): n ints from
// `producers` fibers to `consumers` fibers, split among the producers as
// Go's benchmarks split b.N. Spawning is inside the clock; against millions
// of messages it does not show.
#pragma once

#include <atomic>
#include <cstdint>

#include <benchmark/benchmark.h>
#include <gofer/gofer.hpp>

#include "fixture.hpp"

namespace gofer_bench {

// q has push(int), pop(int&) -> bool (false once closed and drained) and
// close(). Returns the wall time in ns, or a negative number if the
// consumers did not receive every message exactly once.
template <class Queue>
double stream_through(Queue& q, std::int64_t n, int producers, int consumers) {
  std::atomic<std::int64_t> received{0};
  gofer::wait_group sent;
  gofer::wait_group drained;
  const auto t0 = steady::now();
  drained.add(consumers);
  for (int k = 0; k < consumers; ++k) {
    gofer::go([&] {
      std::int64_t mine = 0;
      int v;
      while (q.pop(v)) {
        benchmark::DoNotOptimize(v);
        ++mine;
      }
      received.fetch_add(mine, std::memory_order_relaxed);
      drained.done();
    });
  }
  sent.add(producers);
  for (int p = 0; p < producers; ++p) {
    const std::int64_t share = n / producers + (p < n % producers ? 1 : 0);
    gofer::go([&, share] {
      for (std::int64_t i = 0; i < share; ++i) q.push(static_cast<int>(i));
      sent.done();
    });
  }
  sent.wait();
  q.close();
  drained.wait();
  const double elapsed = ns_since(t0);
  return received.load(std::memory_order_relaxed) == n ? elapsed : -1.0;
}

}  // namespace gofer_bench
