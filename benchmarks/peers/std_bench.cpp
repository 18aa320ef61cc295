// The same workloads with plain OS threads: what a program gets without any
// fiber library. "procs:N" confines the threads to N CPUs, the analogue of a
// runtime with N Ps.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <semaphore>
#include <shared_mutex>
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

// The queue a program without channels writes: a ring under one mutex, with
// a condition variable for each direction and a closed flag, notifying after
// every push and pop. pop() returns false once closed and drained.
class bounded_queue {
 public:
  explicit bounded_queue(std::size_t capacity) : ring_(capacity) {}

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
  std::mutex mu_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::vector<int> ring_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  bool closed_ = false;
};

// gofer's stream_4p4c with threads for fibers and the queue above for the
// channel: n ints split among 4 producers, 4 consumers draining until the
// queue is closed. The whole run is one batch of n, as in gofer's; starting
// the threads is inside the clock, as spawning is there.
void stream_through_queue(benchmark::State& state) {
  constexpr int producers = 4;
  constexpr int consumers = 4;
  gofer_bench::cpu_limit limit(static_cast<unsigned>(state.range(0)));
  const std::int64_t n = state.max_iterations;
  std::atomic<std::int64_t> received{0};
  double elapsed = 0;
  while (state.KeepRunningBatch(n)) {
    bounded_queue q(128);
    std::vector<std::thread> producer_threads;
    std::vector<std::thread> consumer_threads;
    const auto t0 = gofer_bench::steady::now();
    for (int k = 0; k < consumers; ++k) {
      consumer_threads.emplace_back([&] {
        std::int64_t mine = 0;
        int v;
        while (q.pop(v)) {
          benchmark::DoNotOptimize(v);
          ++mine;
        }
        received.fetch_add(mine, std::memory_order_relaxed);
      });
    }
    for (int p = 0; p < producers; ++p) {
      const std::int64_t share = n / producers + (p < n % producers ? 1 : 0);
      producer_threads.emplace_back([&q, share] {
        for (std::int64_t i = 0; i < share; ++i) q.push(static_cast<int>(i));
      });
    }
    for (auto& t : producer_threads) t.join();
    q.close();
    for (auto& t : consumer_threads) t.join();
    elapsed = gofer_bench::ns_since(t0);
  }

  if (received.load(std::memory_order_relaxed) != n) {
    state.SkipWithError("the consumers did not receive every message exactly once");
    return;
  }
  gofer_bench::report_per_unit(state, "ns_per_msg", elapsed, static_cast<double>(n));
}
void stream_4p4c(benchmark::State& state) { stream_through_queue(state); }
BENCHMARK(stream_4p4c)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// The twins of sync_bench.cpp. Go's b.RunParallel shape with threads: the
// run's n operations split among `workers` threads confined to procs CPUs,
// the figure the wall time over n. There is no twin of wait_group_uncontended
// (std::latch is single-use), pool_get_put or context_cancel_1000.

template <class Body>
double run_threads(std::int64_t n, int workers, Body body) {
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(workers));
  const auto t0 = gofer_bench::steady::now();
  for (int k = 0; k < workers; ++k) {
    const std::int64_t share = n / workers + (k < n % workers ? 1 : 0);
    threads.emplace_back([&body, share] { body(share); });
  }
  for (auto& t : threads) t.join();
  return gofer_bench::ns_since(t0);
}

// The whole run is one batch of n; `round(n)` returns its wall time, or a
// negative number with the error already set.
template <class Round>
void timed_batch(benchmark::State& state, const char* counter, Round round) {
  gofer_bench::cpu_limit limit(static_cast<unsigned>(state.range(0)));
  const std::int64_t n = state.max_iterations;
  double elapsed = 0;
  while (state.KeepRunningBatch(n)) elapsed = round(n);
  if (elapsed < 0) return;
  gofer_bench::report_per_unit(state, counter, elapsed, static_cast<double>(n));
}

template <class T>
struct alignas(128) padded {
  T value;
};

// A std::mutex of its own per thread, one thread per CPU.
void mutex_uncontended(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  timed_batch(state, "ns_per_lock", [&](std::int64_t n) {
    return run_threads(n, workers, [](std::int64_t share) {
      padded<std::mutex> mu;
      for (std::int64_t i = 0; i < share; ++i) {
        mu.value.lock();
        mu.value.unlock();
        benchmark::ClobberMemory();
      }
    });
  });
}
BENCHMARK(mutex_uncontended)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// Eight threads, one std::mutex, an empty critical section.
void mutex_contended_8(benchmark::State& state) {
  constexpr int workers = 8;
  timed_batch(state, "ns_per_lock", [&](std::int64_t n) {
    std::mutex mu;
    return run_threads(n, workers, [&mu](std::int64_t share) {
      for (std::int64_t i = 0; i < share; ++i) {
        mu.lock();
        mu.unlock();
        benchmark::ClobberMemory();
      }
    });
  });
}
BENCHMARK(mutex_contended_8)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// Eight threads on one std::shared_mutex: every tenth operation of each a
// write lock, the rest read locks.
void rw_mutex_read90_8(benchmark::State& state) {
  constexpr int workers = 8;
  timed_batch(state, "ns_per_op", [&](std::int64_t n) {
    std::shared_mutex rw;
    return run_threads(n, workers, [&rw](std::int64_t share) {
      int foo = 0;
      for (std::int64_t i = 0; i < share; ++i) {
        if (++foo % 10 == 0) {
          rw.lock();
          rw.unlock();
        } else {
          rw.lock_shared();
          rw.unlock_shared();
        }
        benchmark::ClobberMemory();
      }
      benchmark::DoNotOptimize(foo);
    });
  });
}
BENCHMARK(rw_mutex_read90_8)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// std::call_once on one shared flag, one thread per CPU.
void once_done(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  timed_batch(state, "ns_per_call", [&](std::int64_t n) {
    std::once_flag flag;
    std::int64_t ran = 0;
    const double elapsed = run_threads(n, workers, [&flag, &ran](std::int64_t share) {
      for (std::int64_t i = 0; i < share; ++i) {
        std::call_once(flag, [&ran] { ++ran; });
        benchmark::ClobberMemory();
      }
    });
    if (ran != 1) {
      state.SkipWithError("call_once did not run its function exactly once");
      return -1.0;
    }
    return elapsed;
  });
}
BENCHMARK(once_done)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// Channel or mutex, 1, between threads: the counter under a std::mutex.
void counter_mutex_8(benchmark::State& state) {
  constexpr int workers = 8;
  timed_batch(state, "ns_per_increment", [&](std::int64_t n) {
    std::mutex mu;
    std::int64_t counter = 0;
    const double elapsed = run_threads(n, workers, [&mu, &counter](std::int64_t share) {
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
BENCHMARK(counter_mutex_8)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// Channel or mutex, 2, between threads: the counter owned by one thread that
// pops increments from the queue above (the channel a program without
// channels writes), pushed by eight threads.
void counter_chan_8(benchmark::State& state) {
  constexpr int workers = 8;
  timed_batch(state, "ns_per_increment", [&](std::int64_t n) {
    bounded_queue inc(128);
    std::int64_t counter = 0;
    const auto t0 = gofer_bench::steady::now();
    std::thread owner([&] {
      int d;
      while (inc.pop(d)) counter += d;
    });
    run_threads(n, workers, [&inc](std::int64_t share) {
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
BENCHMARK(counter_chan_8)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// Channel or mutex, 3: gofer's queue_cond_4p4c runs this file's queue on
// gofer::mutex and gofer::cond_var between fibers; here it is the original,
// between threads (the same run as stream_4p4c, under the other name so each
// gofer row has its twin).
void queue_cond_4p4c(benchmark::State& state) { stream_through_queue(state); }
BENCHMARK(queue_cond_4p4c)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// A std::counting_semaphore of its own per thread: acquire, release.
void semaphore_uncontended(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  timed_batch(state, "ns_per_op", [&](std::int64_t n) {
    return run_threads(n, workers, [](std::int64_t share) {
      struct alignas(128) padded_semaphore {
        std::counting_semaphore<> value{1};
      } sem;
      for (std::int64_t i = 0; i < share; ++i) {
        sem.value.acquire();
        sem.value.release();
        benchmark::ClobberMemory();
      }
    });
  });
}
BENCHMARK(semaphore_uncontended)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

}  // namespace
