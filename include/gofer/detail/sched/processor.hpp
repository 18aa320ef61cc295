// P: the right to run fibers, and the per-P state that makes running them
// cheap: the local run queue, the timer heap, a stack cache and a block of
// fiber ids. In gofer each M owns one P for its whole life (blocking system
// calls go through blocking() on separate threads, so an M never needs to hand
// its P over as Go's Ms do around syscalls).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "gofer/detail/sched/run_queue.hpp"
#include "gofer/detail/stack/slab.hpp"
#include "gofer/detail/time/timer_heap.hpp"
#include "gofer/detail/util/fast_rand.hpp"

namespace gofer::detail {

class machine;

struct processor {
  unsigned index = 0;
  machine* m = nullptr;  // the M that owns this P; fixed after start
  run_queue runq;        // owner pushes; anyone steals
  timer_heap timers;     // any thread adds/removes under its lock

  // Owner only (the M running this P).
  // Schedules left until the next look at the global queue and the poller
  // (scheduler.hpp says why every 61st); a countdown is cheaper than a
  // modulo of a tick count.
  static constexpr std::uint32_t fair_check_period = 61;
  std::uint32_t until_fair_check = fair_check_period;
  // The monotonic clock as this P last read it: refreshed whenever it checks
  // its timers, every 61st schedule, and when its M wakes from idle. Parking
  // stamps fibers with it instead of reading a clock: a clock read costs tens
  // of nanoseconds on virtual machines, a large share of a whole park.
  std::int64_t clock_ns = 0;
  // clock_ns was read just before this P's M went back to its loop (a park
  // that found a timer due, a wake from idle): the loop's timer check takes
  // it instead of reading the clock again.
  bool clock_fresh = false;
  fast_rand rng;
  // Recently freed stacks, reused first (their top pages are still hot).
  static constexpr std::size_t stack_cache_max = 64;
  stack_slot stack_cache[stack_cache_max];
  std::size_t stack_cached = 0;
  std::uint64_t next_id = 0;  // ids handed out in blocks, so spawning does not
  std::uint64_t end_id = 0;   // touch a shared counter every time (Go's goidcache)

  // Fibers spawned minus fibers exited on this P. Only the owner writes, so a
  // plain load+store suffices; other threads sum all Ps' counters (each may be
  // negative: a fiber can exit on another P than it started on).
  std::atomic<std::int64_t> live{0};

  // For the monitor thread (scheduler.hpp, monitor_main), written by the owner
  // with relaxed stores: the fiber this P runs (null on its M's own stack),
  // how many switches it has made and how many fibers were spawned on it.
  // While neither count moves, the fiber it runs holds it (see the monitor's
  // essay for when that is reported).
  std::atomic<fiber*> running{nullptr};
  std::atomic<std::uint64_t> switches{0};
  std::atomic<std::uint64_t> spawns{0};
  std::atomic<std::uint64_t> steals{0};  // successful steals, for schedtrace

  void note_switch(fiber* f) noexcept {
    running.store(f, std::memory_order_relaxed);
    switches.store(switches.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void note_spawn() noexcept {
    spawns.store(spawns.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void add_live(std::int64_t d) noexcept {
    live.store(live.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }
};

}  // namespace gofer::detail
