// M: an OS worker thread that runs fibers on its P.
//
// The M's own stack (g0, the thread's stack) runs the scheduler loop; fibers
// switch directly to one another when the next one is already known, and back
// to g0 only when the M must look further (steal, poll timers, sleep).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "gofer/detail/arch/context.hpp"
#include "gofer/detail/fiber.hpp"
#include "gofer/detail/sched/processor.hpp"

namespace gofer::detail {

// What the next context must do once the previous fiber's registers are saved
// (Go's gopark unlockf, mcall's fn). Making a fiber visible to others (runnable,
// or findable by a waker) before its context is saved would let another M
// resume a half-saved fiber; so that step is deferred to the far side of the
// switch.
enum class post_kind : std::uint8_t { none, requeue, park, exit };

struct post_action {
  post_kind kind = post_kind::none;
  fiber* prev = nullptr;
  // park: publishes the fiber to its waker (typically: unlock). Returning false
  // cancels the park: the fiber is made runnable again.
  bool (*commit)(void* arg, fiber* prev) = nullptr;
  void* arg = nullptr;
};

class runtime_impl;

class machine {
 public:
  runtime_impl* rt = nullptr;
  processor* p = nullptr;
  unsigned index = 0;
  arch::context g0;
  fiber* cur = nullptr;  // the fiber this M is running; null on g0
  // This thread's C++ exception state, which switch_away moves between the
  // thread and its fibers. Fetched once by the M's thread: see eh_globals.hpp.
  arch::eh_globals* eh = nullptr;
  post_action post;      // set just before a switch, consumed just after
  bool spinning = false;  // looking for work; counted in runtime nmspinning
  bool idle = false;      // in the runtime's idle list; guarded by its idle lock

  // Futex word an idle M sleeps on: 1 = woken by wake_processor or stop.
  std::atomic<std::uint32_t> wake_word{0};
  // Blocked in epoll_wait: woken through the netpoller, not the futex.
  std::atomic<bool> in_poll{false};
  // When this idle M will wake by itself (monotonic ns), `never` if not.
  std::atomic<std::int64_t> parked_until{0};
  // Times this M left idleness: the deadlock detector's proof of activity.
  std::atomic<std::uint64_t> wakeups{0};
  // Futex word: 1 once the M has left its loop for good (stop() waits on it
  // for a while before it leaves a busy M running).
  std::atomic<std::uint32_t> exited{0};
  std::thread thread;
  // Its kernel thread id, set once it runs: the monitor looks at its state.
  std::atomic<long> tid{0};
};

}  // namespace gofer::detail
