// The randomised scheduling mode, for tests: $GOFER_SCHED_SEED=n makes each P
// sometimes skip runnext, steal from victims in a seed-determined order and
// yield at park points, so a test explores many interleavings instead of the
// one a quiet machine always produces (Go's race mode does the same with its
// scheduler). A failure is reproducible with the seed it printed (fully so at
// procs = 1; with more Ps the OS still interleaves the threads).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>

namespace gofer::detail {

// How many runtimes of the process run in the randomised mode: while none
// does, the extra yields at blocking points cost one load and no more.
inline std::atomic<int> randomised_runtimes{0};

struct sched_randomizer {
  std::uint64_t seed = 0;  // 0 = off

  bool enabled() const noexcept { return seed != 0; }
  std::uint64_t seed_for(unsigned p) const noexcept {
    return (seed != 0 ? seed : 0x2545F4914F6CDD1Dull) * 0x9E3779B97F4A7C15ull + p + 1;
  }

  static sched_randomizer from_environment() noexcept {
    sched_randomizer r;
    if (const char* s = std::getenv("GOFER_SCHED_SEED")) r.seed = std::strtoull(s, nullptr, 10);
    return r;
  }
};

}  // namespace gofer::detail
