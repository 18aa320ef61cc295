// The same workloads with plain OS threads: what a program gets without any
// fiber library. "procs:N" confines the threads to N CPUs, the analogue of a
// runtime with N Ps.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
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
void stream_4p4c(benchmark::State& state) {
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
BENCHMARK(stream_4p4c)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

}  // namespace
