// Runs a test body as the main fiber of a fresh runtime, once per
// configuration: procs 1, 2 and 4, and procs 2 in the randomised scheduling
// mode. After the body, every fiber it started must have finished and every
// stack must be back (only main's is in use), checked with a bounded wait:
// a test that leaks a fiber fails here, with a dump.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gofer/gofer.hpp>

#include "eventually.hpp"

namespace gofer::test {

struct sched_config {
  unsigned procs;
  std::uint64_t seed;  // 0: the environment's ($GOFER_SCHED_SEED) or off
  std::string label() const {
    return "procs=" + std::to_string(procs) + (seed != 0 ? " seed=" + std::to_string(seed) : "");
  }
};

inline std::vector<sched_config> sched_configs() {
  std::uint64_t seed = 7;
  if (const char* s = std::getenv("GOFER_SCHED_SEED")) seed = std::strtoull(s, nullptr, 10) + 1;
  return {{1, 0}, {2, 0}, {4, 0}, {2, seed}};
}

inline std::size_t stacks_in_use() {
  if (auto* rt = detail::current_runtime()) return rt->stacks_in_use();
  return 0;
}

// Runs body() in `fibers` fibers and `threads` plain threads at once, and
// returns when every one has finished: for primitives that must work between
// fibers, between threads, and across the two.
template <class Body>
void in_fibers_and_threads(int fibers, int threads, Body body) {
  gofer::wait_group wg;
  wg.add(fibers + threads);
  for (int i = 0; i < fibers; ++i) {
    gofer::go([&] {
      body();
      wg.done();
    });
  }
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) {
    ts.emplace_back([&] {
      body();
      wg.done();
    });
  }
  wg.wait();
  for (auto& t : ts) t.join();
}

template <class Body>
void for_each_sched(Body&& body) {
  for (const auto& c : sched_configs()) {
    INFO(c.label());
    gofer::options o;
    o.procs = c.procs;
    o.sched_seed = c.seed;
    bool clean = false;
    gofer::run(
        [&] {
          body(c);
          clean = eventually([] { return gofer::num_fibers() == 1 && stacks_in_use() == 1; });
        },
        o);
    CHECK(clean);
  }
}

}  // namespace gofer::test
