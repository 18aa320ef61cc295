// Formats dump_fibers and the deadlock report: one entry per live fiber with
// its id, name, state, what it waits on and for how long, and where it was
// created, in the spirit of Go's goroutine dump.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include "gofer/detail/sched/scheduler.hpp"
#include "gofer/detail/time/timer_heap.hpp"

namespace gofer::detail {

struct fiber_snapshot {
  std::uint64_t id;
  std::string name;
  fiber_state state;
  wait_reason reason;
  std::int64_t waited_ns;
  const char* file;
  std::uint32_t line;
};

// Reads only the blocks' atomics (fiber.hpp). A fiber may exit while it is
// read and its slot start the next one: a changed id after the read says so,
// and the slot is read again, so one entry does not mix two fibers. The
// reads are acquire loads, so the second look at the id comes after them.
inline std::vector<fiber_snapshot> snapshot_fibers(runtime_impl& rt) {
  std::vector<fiber_snapshot> out;
  rt.for_each_fiber([&](fiber* f) {
    fiber_snapshot s;
    for (int attempt = 0; attempt < 4; ++attempt) {
      s.id = f->id.load(std::memory_order_acquire);
      char name[max_fiber_name];
      s.name.assign(name, f->copy_name(name, sizeof name));
      s.state = f->state.load(std::memory_order_acquire);
      s.reason = f->reason.load(std::memory_order_acquire);
      s.waited_ns = std::max<std::int64_t>(
          0, monotonic_ns() - f->wait_since.load(std::memory_order_acquire));
      s.file = f->created_file.load(std::memory_order_acquire);
      s.line = f->created_line.load(std::memory_order_acquire);
      if (f->id.load(std::memory_order_relaxed) == s.id) break;
    }
    if (s.state != fiber_state::free) out.push_back(std::move(s));
  });
  std::sort(out.begin(), out.end(),
            [](const fiber_snapshot& a, const fiber_snapshot& b) { return a.id < b.id; });
  return out;
}

inline void format_duration(std::ostream& os, std::int64_t ns) {
  if (ns < 0) ns = 0;
  if (ns < 1'000'000'000) {
    os << ns / 1'000'000 << " ms";
  } else if (ns < 120'000'000'000) {
    os << ns / 1'000'000'000 << " s";
  } else {
    os << ns / 60'000'000'000 << " minutes";
  }
}

inline void format_fiber(std::ostream& os, const fiber_snapshot& s) {
  os << "fiber " << s.id;
  if (!s.name.empty()) os << " \"" << s.name << "\"";
  os << " [" << fiber_state_name(s.state);
  if (s.state == fiber_state::waiting && s.reason != wait_reason::none) {
    os << ": " << wait_reason_name(s.reason) << ", ";
    format_duration(os, s.waited_ns);
  }
  os << "]:\n\tcreated by " << (s.file != nullptr ? s.file : "?") << ':' << s.line << "\n\n";
}

inline void dump_runtime(std::ostream& os, runtime_impl& rt) {
  for (const auto& s : snapshot_fibers(rt)) format_fiber(os, s);
}

// Every runtime of the process; a header per runtime when there are several.
inline void dump_all_runtimes(std::ostream& os) {
  std::lock_guard lk(runtime_registry_mu);
  bool several = runtime_registry.size() > 1;
  for (runtime_impl* rt : runtime_registry) {
    if (several) os << "runtime " << rt->serial() << " (procs " << rt->procs() << "):\n";
    dump_runtime(os, *rt);
  }
}

}  // namespace gofer::detail
