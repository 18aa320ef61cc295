// What the sync primitives cost, in the shapes of the Go benchmarks that
// Go's own figures come from (sync/mutex_test.go, rwmutex_test.go,
// waitgroup_test.go, once_test.go): a lock nobody else wants, one lock wanted
// by eight fibers, a read-mostly rw_mutex, a wait_group round, a done once.
// Then the choice the card puts to a user, channel or mutex: a counter bumped
// by eight fibers under a mutex beside the same counter owned by one fiber
// that receives the increments over a channel, and a queue built from a mutex
// and a cond_var beside the same stream over a channel (stream_4p4c in
// chan_bench.cpp).
//
// Go's figures come from b.RunParallel: GOMAXPROCS × parallelism goroutines
// share b.N operations and ns/op is the wall time over b.N, so at procs:2
// two workers running side by side halve it. run_parallel below is that
// shape: `workers` fibers share the run's n operations, and every figure is
// the wall time over n. The Go twins (peers/go/sync_test.go) call
// b.RunParallel itself.
//
// Each benchmark owns one runtime for all its iterations, and the whole run
// is one batch of n, split among the fibers as RunParallel splits b.N.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include <gofer/gofer.hpp>

#include "support/fixture.hpp"
#include "support/stream.hpp"

namespace {

// b.RunParallel: `workers` fibers share n operations, body(share) running
// one fiber's share. Returns the wall time until the last has finished.
// Spawning is inside the clock, as RunParallel's goroutines are; against
// millions of operations it does not show.
template <class Body>
double run_parallel(std::int64_t n, int workers, Body body) {
  gofer::wait_group finished;
  const auto t0 = gofer_bench::steady::now();
  finished.add(workers);
  for (int k = 0; k < workers; ++k) {
    const std::int64_t share = n / workers + (k < n % workers ? 1 : 0);
    gofer::go([&body, &finished, share] {
      body(share);
      finished.done();
    });
  }
  finished.wait();
  return gofer_bench::ns_since(t0);
}

// One runtime of `procs` Ps for the whole benchmark; `round(n)` times one
// run of n operations and returns its wall time, or a negative number with
// the error already set.
template <class Round>
void in_runtime(benchmark::State& state, const char* counter, Round round) {
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        const std::int64_t n = state.max_iterations;
        double elapsed = 0;
        while (state.KeepRunningBatch(n)) elapsed = round(n);
        if (elapsed < 0) return;
        gofer_bench::report_per_unit(state, counter, elapsed, static_cast<double>(n));
      },
      gofer::options{.procs = procs});
}

// Go's PaddedMutex and friends: each worker's object on a cache line (two,
// for the adjacent-line prefetcher) of its own.
template <class T>
struct alignas(128) padded {
  T value;
};

// The floor under every lock here: the two locked instructions of
// mutex_uncontended's fast path (a CAS in, an atomic subtraction out) on a
// bare atomic, in the same loop. No peer has a twin; it measures the machine,
// so that mutex_uncontended can be read as overhead over it.
void lock_floor(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  in_runtime(state, "ns_per_lock", [&](std::int64_t n) {
    return run_parallel(n, workers, [](std::int64_t share) {
      padded<std::atomic<std::uint32_t>> word{};
      for (std::int64_t i = 0; i < share; ++i) {
        std::uint32_t expected = 0;
        word.value.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                           std::memory_order_relaxed);
        word.value.fetch_sub(1, std::memory_order_release);
        benchmark::ClobberMemory();
      }
    });
  });
}
BENCHMARK(lock_floor)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// One atomic read-modify-write on a line no other CPU touches: the least that
// any operation synchronising with other threads pays (a mutex's acquire, a
// channel operation's lock, a wait_group count) in designs like gofer's and
// Go's. compare.py builds the floors it prints under the absolute targets
// from this, switch_bare and fresh_page.
void rmw_floor(benchmark::State& state) {
  padded<std::atomic<std::uint64_t>> word{};
  const auto t0 = gofer_bench::steady::now();
  for (auto _ : state) {
    word.value.fetch_add(1, std::memory_order_acq_rel);
    benchmark::ClobberMemory();
  }
  gofer_bench::report_per_unit(state, "ns_per_rmw", gofer_bench::ns_since(t0),
                               static_cast<double>(state.iterations()));
}
BENCHMARK(rmw_floor)->UseRealTime();

// Go's BenchmarkMutexUncontended: one fiber per P, each with a mutex of its
// own, lock and unlock in a loop. The fast path: one CAS in, one atomic
// subtraction out.
void mutex_uncontended(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  in_runtime(state, "ns_per_lock", [&](std::int64_t n) {
    return run_parallel(n, workers, [](std::int64_t share) {
      padded<gofer::mutex> mu;
      for (std::int64_t i = 0; i < share; ++i) {
        mu.value.lock();
        mu.value.unlock();
        benchmark::ClobberMemory();
      }
    });
  });
}
BENCHMARK(mutex_uncontended)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// Go's BenchmarkMutex with parallelism set so that eight goroutines share
// one mutex whatever GOMAXPROCS is: eight fibers, one mutex, an empty
// critical section. At procs:1 the fibers take turns and never meet the lock
// held (nobody is preempted); at procs:2 the two running ones fight over it.
void mutex_contended_8(benchmark::State& state) {
  constexpr int workers = 8;
  in_runtime(state, "ns_per_lock", [&](std::int64_t n) {
    gofer::mutex mu;
    return run_parallel(n, workers, [&mu](std::int64_t share) {
      for (std::int64_t i = 0; i < share; ++i) {
        mu.lock();
        mu.unlock();
        benchmark::ClobberMemory();
      }
    });
  });
}
BENCHMARK(mutex_contended_8)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// Go's BenchmarkRWMutexWrite10 (benchmarkRWMutex(b, 0, 10)) with eight
// goroutines: every tenth operation of each fiber is a write lock, the rest
// read locks, all with empty critical sections.
void rw_mutex_read90_8(benchmark::State& state) {
  constexpr int workers = 8;
  in_runtime(state, "ns_per_op", [&](std::int64_t n) {
    gofer::rw_mutex rw;
    return run_parallel(n, workers, [&rw](std::int64_t share) {
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

// Go's BenchmarkWaitGroupUncontended: one fiber per P, each with a
// wait_group of its own; an operation is add(1), done() and a wait() that
// finds the counter at zero and returns at once.
void wait_group_uncontended(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  in_runtime(state, "ns_per_op", [&](std::int64_t n) {
    return run_parallel(n, workers, [](std::int64_t share) {
      padded<gofer::wait_group> wg;
      for (std::int64_t i = 0; i < share; ++i) {
        wg.value.add(1);
        wg.value.done();
        wg.value.wait();
        benchmark::ClobberMemory();
      }
    });
  });
}
BENCHMARK(wait_group_uncontended)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// Go's BenchmarkOnce: one fiber per P calling one shared once with an empty
// function; all but the first call find it done (one acquire load).
void once_done(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  in_runtime(state, "ns_per_call", [&](std::int64_t n) {
    gofer::once o;
    std::int64_t ran = 0;
    const double elapsed = run_parallel(n, workers, [&o, &ran](std::int64_t share) {
      for (std::int64_t i = 0; i < share; ++i) {
        o.call([&ran] { ++ran; });
        benchmark::ClobberMemory();
      }
    });
    if (ran != 1) {
      state.SkipWithError("the once did not run its function exactly once");
      return -1.0;
    }
    return elapsed;
  });
}
BENCHMARK(once_done)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// Channel or mutex, 1: a counter that eight fibers increment n times in all,
// guarded by a gofer::mutex. The std twin guards it with a std::mutex between
// eight threads.
void counter_mutex_8(benchmark::State& state) {
  constexpr int workers = 8;
  in_runtime(state, "ns_per_increment", [&](std::int64_t n) {
    gofer::mutex mu;
    std::int64_t counter = 0;
    const double elapsed = run_parallel(n, workers, [&mu, &counter](std::int64_t share) {
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

// Channel or mutex, 2: the same counter owned by one fiber, which ranges over
// a channel of increments that eight fibers send to; the clock stops once it
// has counted them all. Buffered as the stream benchmarks are (128), which is
// what a program that cares about the cost would write.
void counter_chan_8(benchmark::State& state) {
  constexpr int workers = 8;
  in_runtime(state, "ns_per_increment", [&](std::int64_t n) {
    gofer::chan<int> inc(128);
    gofer::wait_group owner_done;
    std::int64_t counter = 0;
    const auto t0 = gofer_bench::steady::now();
    owner_done.add(1);
    gofer::go([&] {
      for (int d : inc) counter += d;
      owner_done.done();
    });
    run_parallel(n, workers, [&inc](std::int64_t share) {
      for (std::int64_t i = 0; i < share; ++i) inc.send(1);
    });
    inc.close();
    owner_done.wait();
    const double elapsed = gofer_bench::ns_since(t0);
    if (counter != n) {
      state.SkipWithError("the owner did not count every increment");
      return -1.0;
    }
    return elapsed;
  });
}
BENCHMARK(counter_chan_8)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// The queue of std_bench.cpp (a ring under one lock, a condition variable for
// each direction, a notify after every push and pop) on gofer::mutex and
// gofer::cond_var, so fibers can block on it without blocking their thread.
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
  gofer::mutex mu_;
  gofer::cond_var not_full_;
  gofer::cond_var not_empty_;
  std::vector<int> ring_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  bool closed_ = false;
};

// Channel or mutex, 3: stream_4p4c's stream (n ints, 4 producers, 4
// consumers, room for 128) through cond_queue instead of a chan. The std twin
// runs the same queue on std::mutex and std::condition_variable between
// threads (its stream_4p4c), Boost.Fiber on its own mutex and condition
// variable, Go on sync.Mutex and sync.Cond.
void queue_cond_4p4c(benchmark::State& state) {
  constexpr int producers = 4;
  constexpr int consumers = 4;
  in_runtime(state, "ns_per_msg", [&](std::int64_t n) {
    cond_queue q(128);
    const double elapsed = gofer_bench::stream_through(q, n, producers, consumers);
    if (elapsed < 0) state.SkipWithError("the consumers did not receive every message exactly once");
    return elapsed;
  });
}
BENCHMARK(queue_cond_4p4c)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// Go's BenchmarkPool with a 64-byte object: one fiber per P, one shared pool;
// an operation takes an object and gives it back (the handle's destructor
// puts it). The Go twin's New allocates a *[64]byte, as this pool's default
// factory allocates the array.
void pool_get_put(benchmark::State& state) {
  using object = std::array<std::byte, 64>;
  const int workers = static_cast<int>(state.range(0));
  in_runtime(state, "ns_per_op", [&](std::int64_t n) {
    gofer::pool<object> p;
    return run_parallel(n, workers, [&p](std::int64_t share) {
      for (std::int64_t i = 0; i < share; ++i) {
        gofer::pooled<object> x = p.get();
        benchmark::DoNotOptimize(x.get());
      }
    });
  });
}
BENCHMARK(pool_get_put)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// A weighted semaphore nobody else wants: one fiber per P, each with a
// semaphore of its own (size 1); an operation is acquire(1) and release(1).
// Go's golang.org/x/sync/semaphore is not in the standard library, so the Go
// twin is the idiomatic buffered-channel semaphore; the std twin is
// std::counting_semaphore.
void semaphore_uncontended(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  in_runtime(state, "ns_per_op", [&](std::int64_t n) {
    return run_parallel(n, workers, [](std::int64_t share) {
      struct alignas(128) padded_semaphore {
        gofer::semaphore value{1};
      } sem;
      for (std::int64_t i = 0; i < share; ++i) {
        sem.value.acquire(1);
        sem.value.release(1);
        benchmark::ClobberMemory();
      }
    });
  });
}
BENCHMARK(semaphore_uncontended)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

// One cancellation reaching many fibers: a context with 1000 children, each
// watched by a fiber blocked on its done(). The clock runs from cancel() to
// the last watcher's return (each cancels its own child on the way out, as
// Go's vet asks), so it covers the walk over the children, closing 1000
// done channels and waking 1000 fibers. Building the tree and parking the
// watchers is outside it.
void context_cancel_1000(benchmark::State& state) {
  constexpr int watchers = 1000;
  const auto procs = static_cast<unsigned>(state.range(0));
  gofer::run(
      [&] {
        double elapsed = 0;
        for (auto _ : state) {
          auto [parent, cancel] = gofer::with_cancel(gofer::context::background());
          gofer::wait_group ready;
          gofer::wait_group finished;
          ready.add(watchers);
          finished.add(watchers);
          for (int k = 0; k < watchers; ++k) {
            auto [child, child_cancel] = gofer::with_cancel(parent);
            gofer::go([&ready, &finished, child = std::move(child),
                       child_cancel = std::move(child_cancel)] {
              gofer::recv_chan<gofer::unit> done = child.done();
              ready.done();
              done.recv();
              child_cancel();
              finished.done();
            });
          }
          ready.wait();
          const auto t0 = gofer_bench::steady::now();
          cancel();
          finished.wait();
          elapsed += gofer_bench::ns_since(t0);
        }
        gofer_bench::report_per_unit(state, "ns_per_watcher", elapsed,
                                     static_cast<double>(state.iterations()) * watchers);
      },
      gofer::options{.procs = procs});
}
BENCHMARK(context_cancel_1000)->Apply(gofer_bench::fixed_procs_list<1, 2>)->UseRealTime();

}  // namespace
