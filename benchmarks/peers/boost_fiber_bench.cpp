// The same workloads on Boost.Fiber with its defaults: the round-robin
// scheduler of the calling thread (one thread, hence procs:1 only) and the
// default stack allocator, which is what a program that does not tune gets.
// Boost.Fiber has channels but no select, so the select workloads have no twin
// here; nor a shared mutex, once, wait group or pool, so of the sync workloads
// only the mutex, counter and queue ones have one.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
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

using boost::fibers::channel_op_status;

// Two fibers bounce an int over two unbuffered channels: one iteration is a
// push and a pop each way.
void chan_pingpong(benchmark::State& state) {
  boost::fibers::unbuffered_channel<int> ping;
  boost::fibers::unbuffered_channel<int> pong;
  boost::fibers::fiber partner([&] {
    int v;
    while (ping.pop(v) == channel_op_status::success) pong.push(v);
  });

  int i = 0;
  int back;
  const auto t0 = gofer_bench::steady::now();
  for (auto _ : state) {
    ping.push(i++);
    pong.pop(back);
    benchmark::DoNotOptimize(back);
  }
  const double elapsed = gofer_bench::ns_since(t0);

  ping.close();
  partner.join();
  gofer_bench::report_per_unit(state, "ns_per_roundtrip", elapsed,
                               static_cast<double>(state.iterations()));
}
BENCHMARK(chan_pingpong)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

// buffered_channel keeps one slot of its ring empty, so a capacity of 128
// (it must be a power of two) buffers 127 values: the nearest it gets to
// gofer's and Go's 128.
constexpr std::size_t buffer = 128;

void chan_buffered_1p1c(benchmark::State& state) {
  boost::fibers::buffered_channel<int> c(buffer);
  std::int64_t received = 0;
  boost::fibers::fiber consumer([&] {
    int v;
    while (c.pop(v) == channel_op_status::success) {
      benchmark::DoNotOptimize(v);
      ++received;
    }
  });

  int i = 0;
  const auto t0 = gofer_bench::steady::now();
  for (auto _ : state) c.push(i++);
  c.close();
  consumer.join();
  const double elapsed = gofer_bench::ns_since(t0);

  if (received != state.iterations()) {
    state.SkipWithError("the consumer did not receive every message");
    return;
  }
  gofer_bench::report_per_unit(state, "ns_per_msg", elapsed, static_cast<double>(received));
}
BENCHMARK(chan_buffered_1p1c)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

// n values split among the producers, the whole run one batch, as in gofer's.
void many_to_many(benchmark::State& state, int producers, int consumers) {
  const std::int64_t n = state.max_iterations;
  std::int64_t received = 0;
  double elapsed = 0;
  while (state.KeepRunningBatch(n)) {
    boost::fibers::buffered_channel<int> c(buffer);
    std::vector<boost::fibers::fiber> producer_fibers;
    std::vector<boost::fibers::fiber> consumer_fibers;
    const auto t0 = gofer_bench::steady::now();
    for (int k = 0; k < consumers; ++k) {
      consumer_fibers.emplace_back([&] {
        int v;
        while (c.pop(v) == channel_op_status::success) {
          benchmark::DoNotOptimize(v);
          ++received;
        }
      });
    }
    for (int p = 0; p < producers; ++p) {
      const std::int64_t share = n / producers + (p < n % producers ? 1 : 0);
      producer_fibers.emplace_back([&c, share] {
        for (std::int64_t i = 0; i < share; ++i) c.push(static_cast<int>(i));
      });
    }
    for (auto& f : producer_fibers) f.join();
    c.close();
    for (auto& f : consumer_fibers) f.join();
    elapsed = gofer_bench::ns_since(t0);
  }

  if (received != n) {
    state.SkipWithError("the consumers did not receive every message exactly once");
    return;
  }
  gofer_bench::report_per_unit(state, "ns_per_msg", elapsed, static_cast<double>(n));
}

void chan_buffered_4p4c(benchmark::State& state) { many_to_many(state, 4, 4); }
BENCHMARK(chan_buffered_4p4c)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

void stream_4p4c(benchmark::State& state) { many_to_many(state, 4, 4); }
BENCHMARK(stream_4p4c)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

// The twins of sync_bench.cpp, on this thread's scheduler: the run's n
// operations split among `workers` fibers, the figure the wall time over n.
template <class Body>
double run_fibers(std::int64_t n, int workers, Body body) {
  std::vector<boost::fibers::fiber> fibers;
  fibers.reserve(static_cast<std::size_t>(workers));
  const auto t0 = gofer_bench::steady::now();
  for (int k = 0; k < workers; ++k) {
    const std::int64_t share = n / workers + (k < n % workers ? 1 : 0);
    fibers.emplace_back([&body, share] { body(share); });
  }
  for (auto& f : fibers) f.join();
  return gofer_bench::ns_since(t0);
}

// The whole run is one batch of n; `round(n)` returns its wall time, or a
// negative number with the error already set.
template <class Round>
void timed_batch(benchmark::State& state, const char* counter, Round round) {
  const std::int64_t n = state.max_iterations;
  double elapsed = 0;
  while (state.KeepRunningBatch(n)) elapsed = round(n);
  if (elapsed < 0) return;
  gofer_bench::report_per_unit(state, counter, elapsed, static_cast<double>(n));
}

void mutex_uncontended(benchmark::State& state) {
  timed_batch(state, "ns_per_lock", [&](std::int64_t n) {
    return run_fibers(n, 1, [](std::int64_t share) {
      boost::fibers::mutex mu;
      for (std::int64_t i = 0; i < share; ++i) {
        mu.lock();
        mu.unlock();
        benchmark::ClobberMemory();
      }
    });
  });
}
BENCHMARK(mutex_uncontended)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

// Eight fibers on one thread: they take turns, as gofer's do at procs:1.
void mutex_contended_8(benchmark::State& state) {
  timed_batch(state, "ns_per_lock", [&](std::int64_t n) {
    boost::fibers::mutex mu;
    return run_fibers(n, 8, [&mu](std::int64_t share) {
      for (std::int64_t i = 0; i < share; ++i) {
        mu.lock();
        mu.unlock();
        benchmark::ClobberMemory();
      }
    });
  });
}
BENCHMARK(mutex_contended_8)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

void counter_mutex_8(benchmark::State& state) {
  timed_batch(state, "ns_per_increment", [&](std::int64_t n) {
    boost::fibers::mutex mu;
    std::int64_t counter = 0;
    const double elapsed = run_fibers(n, 8, [&mu, &counter](std::int64_t share) {
      for (std::int64_t i = 0; i < share; ++i) {
        std::lock_guard lk(mu);
        ++counter;
      }
    });
    if (counter != n) {
      state.SkipWithError("the counter lost increments");
      return -1.0;
    }
    return elapsed;
  });
}
BENCHMARK(counter_mutex_8)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

void counter_chan_8(benchmark::State& state) {
  timed_batch(state, "ns_per_increment", [&](std::int64_t n) {
    boost::fibers::buffered_channel<int> inc(buffer);
    std::int64_t counter = 0;
    const auto t0 = gofer_bench::steady::now();
    boost::fibers::fiber owner([&] {
      int d;
      while (inc.pop(d) == channel_op_status::success) counter += d;
    });
    run_fibers(n, 8, [&inc](std::int64_t share) {
      for (std::int64_t i = 0; i < share; ++i) inc.push(1);
    });
    inc.close();
    owner.join();
    const double elapsed = gofer_bench::ns_since(t0);
    if (counter != n) {
      state.SkipWithError("the owner did not count every increment");
      return -1.0;
    }
    return elapsed;
  });
}
BENCHMARK(counter_chan_8)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

// std_bench.cpp's queue on Boost.Fiber's mutex and condition variable.
class cond_queue {
 public:
  explicit cond_queue(std::size_t capacity) : ring_(capacity) {}

  void push(int v) {
    std::unique_lock lk(mu_);
    not_full_.wait(lk, [&] { return size_ < ring_.size(); });
    ring_[(head_ + size_) % ring_.size()] = v;
    ++size_;
    lk.unlock();
    not_empty_.notify_one();
  }

  bool pop(int& v) {
    std::unique_lock lk(mu_);
    not_empty_.wait(lk, [&] { return size_ > 0 || closed_; });
    if (size_ == 0) return false;
    v = ring_[head_];
    head_ = (head_ + 1) % ring_.size();
    --size_;
    lk.unlock();
    not_full_.notify_one();
    return true;
  }

  void close() {
    {
      std::lock_guard lk(mu_);
      closed_ = true;
    }
    not_empty_.notify_all();
  }

 private:
  boost::fibers::mutex mu_;
  boost::fibers::condition_variable not_full_;
  boost::fibers::condition_variable not_empty_;
  std::vector<int> ring_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  bool closed_ = false;
};

void queue_cond_4p4c(benchmark::State& state) {
  constexpr int producers = 4;
  constexpr int consumers = 4;
  timed_batch(state, "ns_per_msg", [&](std::int64_t n) {
    cond_queue q(128);
    std::int64_t received = 0;
    std::vector<boost::fibers::fiber> producer_fibers;
    std::vector<boost::fibers::fiber> consumer_fibers;
    const auto t0 = gofer_bench::steady::now();
    for (int k = 0; k < consumers; ++k) {
      consumer_fibers.emplace_back([&] {
        int v;
        while (q.pop(v)) {
          benchmark::DoNotOptimize(v);
          ++received;
        }
      });
    }
    for (int p = 0; p < producers; ++p) {
      const std::int64_t share = n / producers + (p < n % producers ? 1 : 0);
      producer_fibers.emplace_back([&q, share] {
        for (std::int64_t i = 0; i < share; ++i) q.push(static_cast<int>(i));
      });
    }
    for (auto& f : producer_fibers) f.join();
    q.close();
    for (auto& f : consumer_fibers) f.join();
    const double elapsed = gofer_bench::ns_since(t0);
    if (received != n) {
      state.SkipWithError("the consumers did not receive every message exactly once");
      return -1.0;
    }
    return elapsed;
  });
}
BENCHMARK(queue_cond_4p4c)->Apply(gofer_bench::fixed_procs<1>)->UseRealTime();

}  // namespace
