// The threads that run blocking(f) calls, off the scheduler's Ms, so a fiber
// doing file I/O or calling a blocking C library parks instead of stalling the
// M and every fiber queued behind it. Threads are made on demand and leave
// after 10 s without work; one pool serves every runtime.
#pragma once

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "gofer/detail/diag/own_threads.hpp"

namespace gofer::detail {

struct blocking_job {
  void (*run)(blocking_job*) = nullptr;  // runs the call, then wakes its fiber (last touch)
};

class blocking_pool {
 public:
  static blocking_pool& instance() {
    // Never destroyed: detached workers may still use it during exit.
    static blocking_pool* pool = new blocking_pool;
    return *pool;
  }

  // Jobs run to their end, past their last touch of the job and of its
  // fiber: for tests that must know a call abandoned by its runtime is over.
  std::uint64_t completed() {
    std::lock_guard lk(mu_);
    return completed_;
  }

  void submit(blocking_job* j) {
    std::unique_lock lk(mu_);
    jobs_.push_back(j);
    if (idle_ > 0) {
      cv_.notify_one();
      return;
    }
    lk.unlock();
    std::thread([this] { worker(); }).detach();
  }

 private:
  void worker() {
    pthread_setname_np(pthread_self(), "gofer-blocking");
    own_thread_scope own(0);
    std::unique_lock lk(mu_);
    for (;;) {
      while (jobs_.empty()) {
        ++idle_;
        bool got = cv_.wait_for(lk, std::chrono::seconds(10), [&] { return !jobs_.empty(); });
        --idle_;
        if (!got) return;
      }
      blocking_job* j = jobs_.front();
      jobs_.pop_front();
      lk.unlock();
      j->run(j);
      lk.lock();
      ++completed_;
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<blocking_job*> jobs_;  // guarded by mu_
  unsigned idle_ = 0;               // guarded by mu_
  std::uint64_t completed_ = 0;     // guarded by mu_
};

}  // namespace gofer::detail
