// x/sync/semaphore's own example, a worker pool with bounded parallelism:
// acquire one unit before starting each job, release it when the job ends,
// then acquire the whole weight to wait for the last ones. The program
// checks that no more than the limit ever ran at once. Then weights: a heavy
// job waits until it fits, and a request heavier than the whole semaphore
// waits for its context and fails with the context's error (x/sync's rule)
// without holding up the requests that can be served.
#include <gofer/gofer.hpp>

#include "parked.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <vector>

using namespace std::chrono_literals;

namespace {

int collatz_steps(int n) {
  int steps = 0;
  for (; n != 1; ++steps) n = n % 2 == 0 ? n / 2 : 3 * n + 1;
  return steps;
}

}  // namespace

int main() {
  return gofer::run([] {
    const auto ctx = gofer::context::todo();
    constexpr int max_workers = 4;
    gofer::semaphore sem(max_workers);
    std::vector<int> out(32);
    std::atomic<int> running{0}, most{0};
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (sem.acquire(ctx, 1)) break;
      gofer::go([&, i] {
        DEFER(sem.release(1));
        int now = running.fetch_add(1) + 1;
        for (int m = most.load(); now > m && !most.compare_exchange_weak(m, now);) {}
        gofer::this_fiber::yield();  // let the others pile up
        out[i] = collatz_steps(static_cast<int>(i) + 1);
        running.fetch_sub(1);
      });
    }
    if (std::error_code e = sem.acquire(ctx, max_workers)) std::printf("failed to acquire: %s\n", e.message().c_str());
    for (int v : out) std::printf("%d ", v);
    std::printf("\n%s %d at once\n", most.load() <= max_workers ? "never more than" : "MORE than", max_workers);
    sem.release(max_workers);

    // Weighted: three light jobs hold 3 of 4; a heavy one (3) waits for them.
    sem.acquire(3);
    std::atomic<bool> heavy_ran{false};
    gofer::chan<> heavy_done;
    gofer::go([&] {
      sem.acquire(3);
      heavy_ran = true;
      sem.release(3);
      heavy_done.close();
    });
    until_parked(1, "semaphore.acquire");
    // One unit is free, but a waiter is queued: x/sync serves in order.
    std::printf("heavy job %s while the light ones hold 3; try_acquire(1) behind it: %s\n",
                heavy_ran ? "RAN" : "waits", sem.try_acquire(1) ? "TRUE" : "false");
    sem.release(3);
    heavy_done.recv();
    std::printf("heavy job ran once they let go\n");

    // Heavier than the semaphore: waits for its context, fails with its
    // error, and light requests are served meanwhile (were they queued
    // behind it, they would wait for good: the context is cancelled only
    // after them).
    auto [doomed_ctx, cancel] = gofer::with_cancel(gofer::context::background());
    gofer::chan<std::error_code> too_heavy(1);
    gofer::go([&, c = doomed_ctx] { too_heavy.send(sem.acquire(c, max_workers + 1)); });
    until_parked(1);
    for (int i = 0; i < 10; ++i) {
      sem.acquire(1);
      sem.release(1);
    }
    std::printf("light requests served meanwhile; try_acquire(%d) is %s\n", max_workers + 1,
                sem.try_acquire(max_workers + 1) ? "TRUE" : "false");
    cancel();
    std::error_code e = *too_heavy.recv();
    std::printf("acquire(%d), its context cancelled: %s\n", max_workers + 1, e ? e.message().c_str() : "ACQUIRED");
  });
}
