// The fiber control block (Go's g).
//
// A fiber lives at the top of its own stack: spawning allocates nothing but
// the stack (which usually comes from the P's cache), and the block is
// recycled with it. Below the block sits the fiber's callable; the usable
// stack starts below that.
//
//   top of slot ->  | fiber (this struct,  |
//                   |  its name inside)    |
//                   | callable storage     |
//                   | ...stack grows down  |
//   bottom      ->  | canary (or guard)    |
//
// Fields read from other threads (by dump_fibers and the monitor's report:
// id, state, reason, since, name, creation site) are atomics: a reader may
// look while the fiber changes, or exits and its slot is reused by a new
// fiber, and must see each field whole. That is why the name's bytes live in
// the block, at a place nothing but set_name ever writes: were they below it,
// a reader holding a fiber that has just exited could read them while the
// next fiber of that slot writes its callable or its frames there, a data
// race. A reader racing with reuse may still see a mix of two fibers' fields;
// each reader says how it copes (a dump re-reads, the monitor re-checks that
// the fiber still runs). Everything else belongs to whoever currently runs or
// holds the fiber (the parking protocol hands it over).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "gofer/detail/arch/context.hpp"
#include "gofer/detail/arch/eh_globals.hpp"
#include "gofer/detail/stack/slab.hpp"
#include "gofer/detail/wait_reason.hpp"

namespace gofer::detail {

class runtime_impl;

enum class fiber_state : std::uint8_t {
  free = 0,  // the slot holds no fiber (zero: an untouched stack reads as free)
  runnable = 1,
  running = 2,
  waiting = 3,
};

inline const char* fiber_state_name(fiber_state s) noexcept {
  switch (s) {
    case fiber_state::free: return "dead";
    case fiber_state::runnable: return "runnable";
    case fiber_state::running: return "running";
    case fiber_state::waiting: return "waiting";
  }
  return "?";
}

// Longest name kept; longer names are cut (the dump shows the start). A
// multiple of 8: the block stores it in words.
inline constexpr std::size_t max_fiber_name = 256;

// One step of a parked fiber's clean-up, should its runtime be destroyed
// while it waits. Lives on the fiber's stack, in the blocking call's frame.
struct abandon_hook {
  void (*run)(void* arg) = nullptr;
  void* arg = nullptr;
  abandon_hook* next = nullptr;
};

// Destroys a fiber's fiber_local values; set by fiber_local.hpp when it is
// first used, so a program without fiber_local pays one null test per exit.
inline std::atomic<void (*)(void*)> destroy_fiber_locals{nullptr};

struct fiber {
  // Fields are grouped by cache line (a fiber block is 64-byte aligned): a
  // switch, a park and a wake touch only the first two lines. With many
  // fibers each block is cold when its fiber comes round again, so every
  // line a switch touches is a cache miss.

  // Line 1: what a switch reads.
  arch::context ctx;
  stack_slot stack;
  runtime_impl* rt = nullptr;

  // Line 2: what parking, waking and running the fiber read and write.
  std::atomic<fiber_state> state{fiber_state::free};
  std::atomic<wait_reason> reason{wait_reason::none};
  bool interrupted = false;  // woken by the deadlock detector, not by its waker
  bool counted = true;       // included in num_fibers
  bool started = false;
  // The monitor reported it holding its P (at most once per fiber).
  std::atomic<bool> long_run_reported{false};
  // It switched away holding C++ exception state, kept in `eh` below: the
  // one test a resuming fiber makes (see eh_globals.hpp).
  bool eh_saved = false;
  std::atomic<std::int64_t> wait_since{0};  // monotonic ns, about when it parked (see park.hpp)

  // Set while parked in a queue that may outlive the runtime (a channel, the
  // semaphore table, a semaphore, a cond_var): unlinks the fiber's waiters if the runtime
  // is destroyed with the fiber still parked, so no queue keeps a pointer into
  // freed stacks. A stack, innermost first: one blocking call may park inside
  // another (semaphore::acquire(ctx) parks in a select). See abandon_scope.
  abandon_hook* on_abandon = nullptr;

  void (*run)(fiber*) = nullptr;      // runs the callable, then destroys it
  void* callable = nullptr;
  // This fiber's fiber_local values (fiber_local.hpp), destroyed when its
  // function returns; null until it first uses one.
  void* locals = nullptr;
  void (*discard)(fiber*) = nullptr;  // destroys a callable that never ran

  // Line 3: who it is, for dumps and reports.
  std::atomic<std::uint64_t> id{0};
  std::atomic<const char*> created_file{nullptr};
  std::atomic<std::uint32_t> created_line{0};
  std::atomic<std::uint32_t> name_len{0};
  // The name, in words (fewer atomic operations than bytes), on lines of
  // their own: only set_name writes them, and only a named fiber's spawn
  // touches them.
  static constexpr std::size_t name_words = max_fiber_name / 8;
  std::atomic<std::uint64_t> name[name_words];

  // Line 4: the exceptions it is handling or unwinding for while switched
  // out; valid while eh_saved.
  arch::eh_globals eh;

  // Makes a recycled (or zero) block ready for a new fiber. Field by field:
  // value-initialising the whole block compiles to a rep stos that costs more
  // than the rest of a spawn.
  void reset() noexcept {
    name_len.store(0, std::memory_order_relaxed);
    reason.store(wait_reason::none, std::memory_order_relaxed);
    on_abandon = nullptr;
    locals = nullptr;
    interrupted = false;
    long_run_reported.store(false, std::memory_order_relaxed);
    started = false;
    eh_saved = false;
  }

  // Keeps the first max_fiber_name bytes of src.
  void set_name(const char* src, std::size_t n) noexcept {
    if (n > max_fiber_name) n = max_fiber_name;
    for (std::size_t i = 0; i < n; i += 8) {
      std::uint64_t w = 0;
      std::memcpy(&w, src + i, std::min<std::size_t>(8, n - i));
      name[i / 8].store(w, std::memory_order_relaxed);
    }
    name_len.store(static_cast<std::uint32_t>(n), std::memory_order_release);
  }
  // A copy of the name (up to cap bytes) that is safe to take while the
  // fiber changes, from any thread: it reads only atomics of the block.
  // Acquire loads, so a reader's later look at whether the fiber changed
  // meanwhile (see fiber_dump.hpp) is not done before them.
  std::size_t copy_name(char* out, std::size_t cap) const noexcept {
    std::size_t n = name_len.load(std::memory_order_acquire);
    if (n > cap) n = cap;
    for (std::size_t i = 0; i < n; i += 8) {
      const std::uint64_t w = name[i / 8].load(std::memory_order_acquire);
      std::memcpy(out + i, &w, std::min<std::size_t>(8, n - i));
    }
    return n;
  }
};

// The grouping by cache line (see the struct).
static_assert(offsetof(fiber, rt) + sizeof(fiber::rt) <= 64);
static_assert(offsetof(fiber, discard) + sizeof(fiber::discard) <= 128);

// Where a fiber's block sits in its stack: near the top, aligned down, and
// lowered by a "colour" of 0 to 15 cache lines drawn from the stack's address.
// Stacks lie a power of two apart, so without it every fiber's block and its
// hottest frames would sit at one same offset in their pages; caches index
// their sets by that offset, and would keep only a few fibers' worth of those
// lines (with a thousand fibers woken in turn, most wakes missed to memory).
// A parked fiber's block and frames reach about 2.5 KiB below its stack's
// top at the largest colour (measured: a select with a timeout, the deepest
// common park), so it still fits the stack's top page, whose upper 3,840
// bytes are the stack's (slab.hpp).
inline fiber* fiber_of_slot(const stack_slot& s) noexcept {
  auto top = reinterpret_cast<std::uintptr_t>(s.top());
  // The top 4 bits of a Fibonacci hash of the 4 KiB block number: stacks side
  // by side get unrelated colours.
  const std::uint64_t block = top >> 12;
  const std::uintptr_t colour = (block * 0x9E3779B97F4A7C15ull) >> 60;
  return reinterpret_cast<fiber*>((top - colour * 64 - sizeof(fiber)) & ~std::uintptr_t{63});
}

}  // namespace gofer::detail
