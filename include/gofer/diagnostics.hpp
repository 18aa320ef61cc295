// Looking inside a running program: how many fibers live, what each is doing
// (Go's runtime.NumGoroutine and the goroutine dump), and the deadlock error.
#pragma once

#include <cstddef>
#include <mutex>
#include <ostream>

#include "gofer/detail/diag/deadlock_error.hpp"
#include "gofer/detail/diag/fiber_dump.hpp"
#include "gofer/detail/park/park.hpp"

namespace gofer {

// Live fibers, main included. Inside a fiber: of its runtime; elsewhere: of
// every runtime in the process.
inline std::size_t num_fibers() {
  if (detail::runtime_impl* rt = detail::current_runtime()) {
    return static_cast<std::size_t>(rt->live_fibers());
  }
  std::int64_t n = 0;
  std::lock_guard lk(detail::runtime_registry_mu);
  for (detail::runtime_impl* rt : detail::runtime_registry) n += rt->live_fibers();
  return static_cast<std::size_t>(n);
}

// One entry per live fiber of every runtime: id, name, state, what it waits on
// and for how long, and "created by file:line".
inline void dump_fibers(std::ostream& os) { detail::dump_all_runtimes(os); }

}  // namespace gofer
