// The scheduler: Go's G-M-P model for stackful C++ fibers.
//
// G (fiber.hpp) is a fiber; P (processor.hpp) is the right to run fibers, with
// a local run queue; M (machine.hpp) is an OS thread. A runtime has `procs` Ps
// and exactly as many Ms, each M owning one P for life. Go's Ms hand their P to
// another M around blocking system calls; gofer does not block its Ms (blocking
// calls go through blocking(), network I/O through the netpoller), so that
// machinery, and the thread churn it brings, is not needed.
//
// Designs not taken, and why:
//   - One global queue under a lock: every spawn and wake-up contends on it;
//     that is what Go's scheduler before 1.1 did, and it did not scale.
//   - Per-M queues with no stealing: one M's burst leaves the others idle.
//   - Waking an idle M for every new runnable fiber: with N runnable fibers
//     and N idle Ms, most wake only to find the work taken (a thundering herd
//     that burns CPU in futex calls). Hence the spinning protocol below.
//
// Finding work (find_runnable, on the M's own stack):
//   1. Every 61st schedule, the global queue first, so a P busy with its own
//      queue still lets fibers readied from outside run. 61 is Go's number: a
//      prime, so the check does not fall into step with periodic workloads,
//      and rare enough to cost nothing.
//   2. The local queue (runnext first), then the global queue (taking a batch).
//   3. Due timers of every P.
//   4. The netpoller, without blocking, if fibers wait on sockets and no M is
//      blocked in epoll already.
//   5. Steal half of a random victim's queue, 4 rounds; runnext only in the
//      last round (the victim's M is likely about to run it).
//   6. Nothing: go idle until woken or until the earliest timer is due; one
//      idle M at a time does so in epoll_wait when fibers wait on sockets,
//      the others on a futex.
//
// Spinning (the protocol that keeps work from being lost without waking every
// M for every fiber):
//   - An M looking for work to steal is "spinning"; at most about half the busy
//     Ps' count of Ms spin at once (2 * nmspinning < procs - npidle), as Go.
//   - Making a fiber runnable (ready, spawn) wakes an idle M only if none is
//     spinning: a spinning M will find the fiber anyway. The woken M starts
//     spinning.
//   - A spinning M that finds work stops spinning and, if it was the last
//     spinner, wakes another M: there may be more work.
//   - Going idle: the M first puts itself on the idle list (npidle++), then
//     stops spinning (nmspinning--), then looks at every queue once more.
//     ready() writes a queue, then reads npidle and nmspinning; the idle path
//     writes those, then reads the queues. Both sides use sequentially
//     consistent operations, so at least one of them sees the other: either
//     the waker sees an idle M and no spinner and wakes it, or the M sees the
//     work and takes itself off the idle list.
//
// Timers: each P has a heap. An idle M sleeps until the earliest deadline of all
// Ps; adding a timer earlier than every sleeping M's deadline wakes one.
//
// Parking (park.hpp) is the only way a fiber stops running other than exiting
// or yielding; all blocking primitives build on it.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <new>
#include <string_view>
#include <thread>
#include <vector>

#include "gofer/detail/arch/context.hpp"
#include "gofer/detail/diag/own_threads.hpp"
#include "gofer/detail/diag/panic.hpp"
#include "gofer/detail/fiber.hpp"
#include "gofer/detail/sched/current.hpp"
#include "gofer/detail/sched/machine.hpp"
#include "gofer/detail/sched/netpoll.hpp"
#include "gofer/detail/sched/processor.hpp"
#include "gofer/detail/sched/random_order.hpp"
#include "gofer/detail/stack/overflow.hpp"
#include "gofer/detail/stack/slab.hpp"
#include "gofer/detail/time/timer_heap.hpp"
#include "gofer/detail/util/futex.hpp"
#include "gofer/detail/util/spinlock.hpp"

namespace gofer::detail {

struct runtime_config {
  unsigned procs = 1;
  // The monitor reports a fiber that holds its P longer than this (0: never).
  std::int64_t long_run_ns = 10'000'000;
  // The monitor prints scheduler counters this often (0: never); from
  // $GOFER_DEBUG=schedtrace=<ms>, as Go's GODEBUG.
  std::int64_t schedtrace_ns = 0;
  std::size_t stack_size = default_stack_size;
  guard_policy guards = guard_policy::automatic;
  bool detect_deadlock = true;
  bool dump_on_sigquit = true;
  sched_randomizer random;  // randomised mode for tests (off unless seeded)
};

// Process-wide fiber ids: handed to Ps in blocks of 16 (Go's goidcache), so
// only one spawn in 16 touches this shared counter.
inline std::atomic<std::uint64_t> next_fiber_id_block{1};
inline constexpr std::uint64_t fiber_id_block = 16;

// A T made at compile time (constant initialization: usable from any static
// initializer) and never destroyed (usable from any static destructor).
template <class T>
union never_destroyed {
  T value;
  constexpr never_destroyed() : value() {}
  ~never_destroyed() {}
};

// Every live runtime, for the SIGQUIT dump and num_fibers from outside. Never
// destroyed: a runtime whose M outlived run() leaves it when that M stops,
// which may be while the program's static destructors run.
class runtime_impl;
inline std::mutex runtime_registry_mu;
inline constinit never_destroyed<std::vector<runtime_impl*>> runtime_registry_storage;
// Guarded by runtime_registry_mu.
inline std::vector<runtime_impl*>& runtime_registry = runtime_registry_storage.value;

// How long the end of a runtime waits for a busy M (one still running a
// fiber that neither parks nor finishes) before it leaves that M running on
// its own (runtime_impl::stop). The monitor's long-run threshold: a fiber it
// would not report for holding its P is waited for, so in every ordinary
// program run() still returns with each M joined and the runtime freed (each
// M stops as soon as the fiber it runs parks or finishes). Only a fiber that
// computes for longer is left behind, where Go would have ended it with the
// process. Not zero: an M a few microseconds from a park would then be left
// to free the runtime itself, racing the program's exit, for nothing.
inline constexpr std::int64_t stop_grace_ns = 10'000'000;
inline std::atomic<std::uint32_t> next_runtime_serial{1};

class runtime_impl {
 public:
  explicit runtime_impl(const runtime_config& cfg)
      : cfg_(cfg),
        serial_(next_runtime_serial.fetch_add(1, std::memory_order_relaxed)),
        slabs_(cfg.stack_size, cfg.guards) {
    if (cfg_.random.enabled()) randomised_runtimes.fetch_add(1, std::memory_order_relaxed);
    if (cfg_.procs == 0) cfg_.procs = 1;
    holders_.store(cfg_.procs + 1, std::memory_order_relaxed);
    running_fiber_hook.store(
        []() noexcept -> fiber* {
          machine* m = tls_machine;  // in a signal handler: no switch can intervene
          return m != nullptr ? m->cur : nullptr;
        },
        std::memory_order_relaxed);
    install_overflow_handler();  // whatever the stacks' layout: see overflow.hpp
    ps_.reserve(cfg_.procs);
    ms_.reserve(cfg_.procs);
    for (unsigned i = 0; i < cfg_.procs; ++i) {
      ps_.push_back(std::make_unique<processor>());
      ms_.push_back(std::make_unique<machine>());
      processor& p = *ps_.back();
      machine& m = *ms_.back();
      p.index = i;
      p.m = &m;
      p.rng.seed(cfg_.random.seed_for(i));
      p.runq.set_exclusive(cfg_.procs == 1);
      p.clock_ns = monotonic_ns();
      m.rt = this;
      m.p = &p;
      m.index = i;
      m.parked_until.store(never, std::memory_order_relaxed);
    }
    {
      std::lock_guard lk(runtime_registry_mu);
      runtime_registry.push_back(this);
    }
    for (auto& m : ms_) {
      machine* mp = m.get();
      mp->thread = std::thread([this, mp] { machine_main(mp); });
    }
    if (cfg_.long_run_ns > 0 || cfg_.schedtrace_ns > 0) monitor_ = std::thread([this] { monitor_main(); });
  }

  runtime_impl(const runtime_impl&) = delete;
  runtime_impl& operator=(const runtime_impl&) = delete;

  // Ends the runtime for its owner (run(), ~runtime), as a unique_ptr's
  // deleter: stops the Ms, waiting up to stop_grace_ns for those still
  // running a fiber, and frees the runtime at once if every M stopped. An M
  // still busy then (its fiber computes without parking: Go's program would
  // end there) is left running, detached, and the runtime with it: that M
  // never runs another fiber, and the last M to stop frees the runtime
  // (machine_main). Meanwhile the runtime stays registered, so its threads
  // count as any other thread for the deadlock rule (they might still wake a
  // fiber) and a pool stays bound to it (pool.hpp). Deliberately not leaked:
  // a program may call run() again and again, each time leaving a fiber that
  // ends a second later.
  //
  // With an M left running, the other fibers are abandoned here, on the
  // owner's thread, rather than by the destructor whenever the M stops: what
  // they wait on may outlive the runtime (a channel, a semaphore made before
  // it), and the program, once run() has returned, may destroy it at any
  // time. Only the fibers those Ms still run are left to the destructor.
  struct deleter {
    void operator()(runtime_impl* rt) const noexcept {
      if (rt->stop(stop_grace_ns) > 0) {
        rt->drop_timers();
        rt->abandon(rt->live_fibers(rt->fibers_left_running()));
        rt->linger();
      }
      rt->release_holder();
    }
  };

  // Stops the Ms (each as soon as the fiber it runs parks or finishes) and
  // abandons every fiber still alive: callables that never started are
  // destroyed, started fibers' frames are dropped without unwinding (as Go
  // abandons goroutines when main returns), and so are the exceptions such a
  // fiber was handling or unwinding for (its saved eh state): their objects
  // leak, as everything else those frames own does. Freeing them would mean
  // running their destructors, user code, for a fiber that never resumes.
  // Waking such a fiber afterwards (a wait_group it waits on, done() from a
  // thread) is undefined.
  //
  // What may still point into an abandoned fiber's frame, and how each lets
  // go before the stacks are unmapped:
  //   - the Ps' timer heaps (a sleep's or a select's timer lives in the
  //     frame): emptied first, unfired;
  //   - queues that outlive the runtime (a channel, a semaphore, the
  //     semaphore table, a cond_var, a wait_group, a poll descriptor): the
  //     fiber's abandon hooks take its waiters off them (park.hpp);
  //   - a blocking() call still running on a helper thread, which will
  //     write its result into the frame: its hook keeps the stack mapped for
  //     good (keep_stack) and the helper thread, finding the call
  //     abandoned, leaves the runtime alone;
  //   - wakers from outside the runtime already in ready() (counted by
  //     ready_from_outside): waited for. One that took a waiter off its
  //     queue before the hook could, but has not reached ready() yet, is not
  //     seen: waking a fiber just as its runtime ends is as undefined as
  //     waking it after. blocking() claims its wake-up, so its helper
  //     threads never do that.
  // The run queues hold fiber pointers but are only freed, never read.
  //
  // Frames are dropped, so what they own (a string, a channel's last handle)
  // is never freed, as everything a goroutine holds when main returns is
  // gone only with the process. In a LeakSanitizer build the abandoned
  // stacks therefore stay mapped and are scanned as roots: what they hold is
  // kept by design, not lost, and reporting it would hide the leaks that are.
  ~runtime_impl() {
    stop();
    if (cfg_.random.enabled()) randomised_runtimes.fetch_sub(1, std::memory_order_relaxed);
    {
      std::lock_guard lk(runtime_registry_mu);
      std::erase(runtime_registry, this);
    }
    drop_timers();
    const std::vector<fiber*> left = live_fibers({});
    abandon(left);
    std::vector<stack_slot> own;
    {
      std::lock_guard lk(own_mu_);
      own.swap(own_stacks_);
    }
    for (fiber* f : left) {
#if GOFER_ASAN
      if (f->started) keep_frames_for_leak_check(f);
#endif
      arch::destroy_context(f->ctx);
      f->state.store(fiber_state::free, std::memory_order_release);
    }
    std::vector<stack_slot> kept_slabs;
    for (const stack_slot& s : kept_) {
      if (s.own_mapping) {
        std::erase_if(own, [&](const stack_slot& o) { return o.bottom == s.bottom; });
      } else {
        kept_slabs.push_back(s);
      }
    }
    slabs_.retain(std::move(kept_slabs));
    for (auto& s : own) free_own_stack(s);
  }

  // For an abandon hook (see the destructor): f's stack stays mapped for the
  // rest of the process, because something outside the runtime still uses
  // it. Called only while the runtime ends, by the thread that ends it.
  void keep_stack(fiber* f) { kept_.push_back(f->stack); }

 private:
  // Takes every pending timer out of the Ps' heaps unfired (timer_heap::clear).
  // Each heap has its lock: a fiber left running may still add to one.
  void drop_timers() noexcept {
    for (auto& p : ps_) p->timers.clear();
  }

  // Every fiber not yet exited, but those of `skip`. Only once no M runs
  // any other fiber (after stop()): a fiber's state may change meanwhile
  // (a fiber left running wakes another), but no block is being made, as
  // spawn() makes none once the runtime stops.
  std::vector<fiber*> live_fibers(const std::vector<fiber*>& skip) {
    std::vector<fiber*> live;
    auto note = [&](const stack_slot& s) {
      fiber* f = fiber_of_slot(s);
      if (f->state.load(std::memory_order_acquire) != fiber_state::free &&
          std::find(skip.begin(), skip.end(), f) == skip.end())
        live.push_back(f);
    };
    slabs_.for_each_carved(note);
    std::lock_guard lk(own_mu_);
    for (const stack_slot& s : own_stacks_) note(s);
    return live;
  }

  // The fibers that the Ms stop() left running still run: a P that runs a
  // fiber once every other M has stopped is such an M's.
  std::vector<fiber*> fibers_left_running() const {
    std::vector<fiber*> running;
    for (const auto& p : ps_) {
      if (fiber* f = p->running.load(std::memory_order_acquire)) running.push_back(f);
    }
    return running;
  }

  // Destroys the callables of fibers that never started and runs the abandon
  // hooks of parked ones (see the destructor), each once. Outside the slab
  // lock: a callable's or a channel's destructor is the program's code.
  void abandon(const std::vector<fiber*>& fibers) {
    for (fiber* f : fibers) {
      if (!f->started && f->discard != nullptr) {
        f->discard(f);
        f->discard = nullptr;
      }
      if (f->state.load(std::memory_order_acquire) == fiber_state::waiting) {
        for (abandon_hook* h = f->on_abandon; h != nullptr; h = h->next) h->run(h->arg);
        f->on_abandon = nullptr;
      }
    }
    // A waker that took an abandoned fiber's waiter off its queue before the
    // hook could is still in ready(); once none is, nothing reaches a stack.
    while (outside_wakers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }

#if GOFER_ASAN
  // In a LeakSanitizer build: f's frames (from its saved stack pointer up)
  // stay mapped and are scanned for pointers. See the destructor.
  void keep_frames_for_leak_check(fiber* f) {
    auto* top = static_cast<char*>(f->stack.top());
    auto* lo = static_cast<char*>(f->stack.usable_bottom());
    auto* sp = static_cast<char*>(f->ctx.sp);
    if (sp > lo && sp < top) lo = sp;
    arch::sanitizer::keep_as_leak_root(lo, static_cast<std::size_t>(top - lo));
    keep_stack(f);
  }
#endif

 public:

  const runtime_config& config() const noexcept { return cfg_; }
  unsigned procs() const noexcept { return cfg_.procs; }
  std::uint32_t serial() const noexcept { return serial_; }
  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }

  // Whether some other P is running fibers right now (Go's canSpin test,
  // gomaxprocs > npidle + nmspinning + 1): spinning on a lock only pays if
  // whoever holds it is running somewhere and may release it soon.
  bool others_running() const noexcept {
    return cfg_.procs > npidle_.load(std::memory_order_relaxed) +
                            nmspinning_.load(std::memory_order_relaxed) + 1;
  }

  // ---- Spawning -----------------------------------------------------------

  struct spawn_args {
    std::string_view name;
    std::size_t stack_size = 0;
    const char* file = nullptr;
    std::uint32_t line = 0;
    bool counted = true;
  };

  // Creates a fiber running fn() and makes it runnable. Returns it (for the
  // caller's bookkeeping only: it may already have run and exited when this
  // returns, unless the caller arranged otherwise). Once the runtime stops,
  // makes none and returns null: a fiber left running at the end (see
  // deleter) may still spawn, but nothing would ever run what it spawns.
  template <class Fn>
  fiber* spawn(Fn&& fn, const spawn_args& a) {
    using F = std::decay_t<Fn>;
    if (stopping_.load(std::memory_order_relaxed)) [[unlikely]]
      return nullptr;
    machine* m = current_machine();
    processor* p = (m != nullptr && m->rt == this) ? m->p : nullptr;
    stack_slot slot = take_stack(p, a.stack_size);
    fiber* f = fiber_of_slot(slot);
    f->reset();
    f->stack = slot;
    f->rt = this;
    f->counted = a.counted;
    f->id.store(take_id(p), std::memory_order_relaxed);
    f->created_file.store(a.file, std::memory_order_relaxed);
    f->created_line.store(a.line, std::memory_order_relaxed);

    // Below the block: the callable, then the usable stack.
    auto cursor = reinterpret_cast<std::uintptr_t>(f);
    cursor = (cursor - sizeof(F)) & ~(std::uintptr_t{alignof(F)} - 1);
#if GOFER_ASAN
    // The slot's last fiber never returned from its first frame (it left
    // through exit_context), whose redzones stay poisoned where a larger
    // callable than its own now goes. make_context clears the rest.
    arch::sanitizer::unpoison_stack(reinterpret_cast<void*>(cursor),
                                    reinterpret_cast<std::uintptr_t>(f) - cursor);
#endif
    F* callable = ::new (reinterpret_cast<void*>(cursor)) F(std::forward<Fn>(fn));
    f->callable = callable;
    f->run = [](fiber* self) {
      F* c = static_cast<F*>(self->callable);
      try {
        (*c)();
        c->~F();
      } catch (...) {
        report_panic(self, std::current_exception());
      }
    };
    f->discard = [](fiber* self) { static_cast<F*>(self->callable)->~F(); };
    if (!a.name.empty()) f->set_name(a.name.data(), a.name.size());
    cursor &= ~std::uintptr_t{15};
    auto* lo = static_cast<char*>(slot.usable_bottom());
    arch::make_context(f->ctx, lo, static_cast<std::size_t>(reinterpret_cast<char*>(cursor) - lo),
                       &fiber_entry, f);
    if (p != nullptr) p->note_spawn();  // for the monitor: spawning is not holding
    if (a.counted) {
      if (p != nullptr) {
        p->add_live(1);
      } else {
        outside_live_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    ready(f, /*as_next=*/true);
    return f;
  }

  // ---- Making fibers runnable ---------------------------------------------

  // Makes a parked or new fiber runnable. Callable from anywhere: a fiber of
  // this runtime (it goes to the caller's P, as runnext by default: the fiber
  // it woke runs next, keeping a ping-pong pair on one core), an M's scheduler
  // loop (timers), another runtime's fiber or a plain thread (the global
  // queue). Does not touch f after publishing it: f may run, exit and be
  // reused before this returns.
  void ready(fiber* f, bool as_next = true) noexcept {
    machine* m = current_machine();
    if (m == nullptr || m->rt != this) [[unlikely]] {
      ready_from_outside(f);
      return;
    }
    f->state.store(fiber_state::runnable, std::memory_order_relaxed);
    processor* p = m->p;
    if (cfg_.random.enabled() && p->rng.below(4) == 0) [[unlikely]]
      as_next = false;
    if (as_next) f = p->runq.set_runnext(f);
    if (f != nullptr) push_local(p, f);
    // With one P, its only M is the caller: there is no idle M to wake.
    if (cfg_.procs > 1) wake_processor();
  }

  // ---- Scheduling from a fiber --------------------------------------------

  // Called on the running fiber's stack, with the calling thread's M: stops
  // running the fiber and runs the next one (directly when one is at hand,
  // else through the M's loop). `act` runs once this fiber's context is
  // saved. Returns when the fiber is resumed, perhaps on another M.
  static void reschedule(machine* m, post_action act) noexcept {
    runtime_impl* rt = m->rt;
    fiber* next = rt->stopping() ? nullptr : rt->next_local(m, act.kind == post_kind::park);
    switch_away(m, next, act);
  }

  // Gives other runnable fibers a turn; returns at once if there are none.
  // m is the calling thread's M, which runs a fiber.
  static void yield(machine* m) noexcept {
    runtime_impl* rt = m->rt;
    fiber* next = nullptr;
    // While stopping, through g0 (next stays null), whose loop then ends.
    if (!rt->stopping()) {
      next = rt->next_local(m);
      if (next == nullptr) return;  // nobody else to run
    }
    fiber* self = m->cur;
    self->state.store(fiber_state::runnable, std::memory_order_relaxed);
    post_action act;
    act.kind = post_kind::requeue;
    act.prev = self;
    switch_away(m, next, act);
  }

  // ---- Timers -------------------------------------------------------------

  // Adds a timer to the calling M's P (or P 0 from outside). Wakes an idle M
  // when no sleeping M would wake in time for it.
  void add_timer(timer_node* t) noexcept {
    machine* m = current_machine();
    processor* p = (m != nullptr && m->rt == this) ? m->p : ps_[0].get();
    // Read before the add: once in the heap, t may fire on another M and
    // its owner (a sleeping fiber's frame, say) may be gone.
    const std::int64_t when = t->when;
    if (p->timers.add(t)) wake_for_timer(when);
  }

  // Frees, now, the abandoned timers the calling M's P (or P 0) swept out of
  // its heap. Only for a caller that holds no lock: see timer_heap.hpp.
  void drop_swept_timers() noexcept {
    machine* m = current_machine();
    processor* p = (m != nullptr && m->rt == this) ? m->p : ps_[0].get();
    p->timers.drop_swept_now();
  }

  // ---- Introspection ------------------------------------------------------

  std::int64_t live_fibers() const noexcept {
    std::int64_t n = outside_live_.load(std::memory_order_relaxed);
    for (auto& p : ps_) n += p->live.load(std::memory_order_relaxed);
    return n;
  }

  // Timers in the Ps' heaps (a racy snapshot), for tests.
  std::size_t pending_timers() {
    std::size_t n = 0;
    for (auto& p : ps_) n += p->timers.size();
    return n;
  }

  // Calls f(fiber*) for every fiber alive now (a racy snapshot: fibers may
  // come and go while it walks).
  template <class F>
  void for_each_fiber(F&& f) {
    auto visit = [&](const stack_slot& s) {
      fiber* fb = fiber_of_slot(s);
      if (fb->state.load(std::memory_order_acquire) != fiber_state::free) f(fb);
    };
    slabs_.for_each_carved(visit);
    std::lock_guard lk(own_mu_);
    for (auto& s : own_stacks_) visit(s);
  }

  // True when no fiber can run and nothing inside the runtime can make one
  // runnable: every M idle, no timer, no blocking call in flight.
  bool quiescent() const noexcept {
    if (npidle_.load(std::memory_order_seq_cst) != cfg_.procs) return false;
    if (global_.size() != 0) return false;
    if (pending_blocking_.load(std::memory_order_seq_cst) != 0) return false;
    if (netpoll_.has_waiters()) return false;  // I/O may arrive (Go counts the polling M as running)
    for (auto& p : ps_) {
      if (!p->runq.empty() || p->timers.next_when() != never) return false;
    }
    return true;
  }
  std::uint64_t activity() const noexcept {
    std::uint64_t n = 0;
    for (auto& m : ms_) n += m->wakeups.load(std::memory_order_acquire);
    return n;
  }
  // Futex word bumped each time the runtime becomes fully idle.
  std::atomic<std::uint32_t>& quiet_word() noexcept { return quiet_word_; }
  void add_pending_blocking(int d) noexcept {
    pending_blocking_.fetch_add(d, std::memory_order_seq_cst);
  }

  netpoller& netpoll() noexcept { return netpoll_; }
  // Called after queueing a waiter on an fd: makes sure some M will poll.
  // A fiber's own M will, once it runs out of work; a plain thread has no
  // M, and every M of this runtime may be asleep on its futex.
  void poke_poller() noexcept {
    if (!netpoll_.claimed()) wake_processor();
  }

  // Stacks that hold a fiber now (tests check that every stack came back).
  std::size_t stacks_in_use() {
    std::size_t n = 0;
    for_each_fiber([&](fiber*) { ++n; });
    return n;
  }

  // Stops the Ms: each leaves its loop as soon as the fiber it runs parks or
  // finishes, and is joined. One whose fiber still holds it after grace_ns
  // (or the caller's own M) is detached instead; returns how many were. An M
  // holds its fiber's thread as the monitor sees it (m_clock::held): it has
  // computed for grace_ns of its CPU time since stop began, or is blocked in
  // the kernel. One that the kernel merely did not run meanwhile, on a loaded
  // machine, is a few instructions from stopping, and is waited for. With
  // the default, waits for every M. Idempotent: a second call returns 0.
  unsigned stop(std::int64_t grace_ns = never) {
    if (stopped_.exchange(true)) return 0;
    stopping_.store(true, std::memory_order_seq_cst);
    for (auto& m : ms_) {
      {
        std::lock_guard lk(idle_mu_);
        if (m->idle) {
          std::erase(idle_, m.get());
          m->idle = false;
          npidle_.fetch_sub(1, std::memory_order_seq_cst);
        }
      }
      m->wake_word.store(1, std::memory_order_seq_cst);
      futex_wake(&m->wake_word);
    }
    netpoll_.interrupt();
    monitor_word_.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&monitor_word_, INT32_MAX);
    if (monitor_.joinable()) {
      if (monitor_.get_id() == std::this_thread::get_id()) {
        monitor_.detach();
      } else {
        monitor_.join();
      }
    }
    std::int64_t give_up = grace_ns == never ? never : monotonic_ns() + grace_ns;
    std::vector<std::int64_t> cpu_then;
    if (grace_ns != never) {
      for (auto& m : ms_) cpu_then.push_back(m_clock::of(*m).cpu_ns());
    }
    unsigned detached = 0;
    for (std::size_t i = 0; i < ms_.size(); ++i) {
      machine* m = ms_[i].get();
      if (!m->thread.joinable()) continue;
      const bool own = m->thread.get_id() == std::this_thread::get_id();
      while (!own && m->exited.load(std::memory_order_acquire) == 0) {
        std::int64_t left = -1;
        if (give_up != never) {
          left = give_up - monotonic_ns();
          if (left <= 0) {
            if (m_clock::of(*m).held(cpu_then[i], grace_ns)) break;
            give_up = monotonic_ns() + grace_ns / 4;  // not its fiber's doing: wait on
            continue;
          }
        }
        futex_wait(&m->exited, 0, left);
      }
      if (!own && m->exited.load(std::memory_order_acquire) != 0) {
        m->thread.join();
      } else {
        m->thread.detach();
        ++detached;
      }
    }
    return detached;
  }

  // One holder fewer: each M, and the owner until its deleter is done. The
  // last one frees the runtime.
  void release_holder() noexcept {
    if (holders_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // The owner leaves the runtime to a detached M (see deleter). In a
  // LeakSanitizer build, every fiber's stack is scanned from now on: the
  // program may end while the M still computes, and what its fibers' frames
  // hold is not lost. Before the owner's release_holder(): after it, the
  // runtime may be gone.
  void linger() {
#if GOFER_ASAN
    for_each_fiber([](fiber* f) {
      auto* lo = static_cast<char*>(f->stack.usable_bottom());
      auto* hi = static_cast<char*>(f->stack.top());
      arch::sanitizer::keep_as_leak_root(lo, static_cast<std::size_t>(hi - lo));
    });
#endif
  }

 private:
  // ---- The M's loop -------------------------------------------------------

  void machine_main(machine* m) {
    set_current_machine(m);
    m->eh = arch::thread_eh_globals();
    arch::init_thread_context(m->g0);
    char name[16];
    std::snprintf(name, sizeof name, "gofer-%u-m%u", serial_, m->index);
    pthread_setname_np(pthread_self(), name);
    own_thread_scope own(serial_);
    m->tid.store(current_tid(), std::memory_order_relaxed);
    // An idle M sleeps until the earliest timer; the kernel's default 50 us of
    // timer slack would add up to that much lateness to every sleep_for.
    ::prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    alt_signal_stack alt;  // for the overflow report, which runs on it
    for (;;) {
      fiber* f = find_runnable(m);
      if (f == nullptr) break;
      m->cur = f;
      m->p->note_switch(f);
      f->state.store(fiber_state::running, std::memory_order_relaxed);
      arch::switch_context(m->g0, f->ctx);
      run_post(m);
      m->p->note_switch(nullptr);
    }
    flush_stack_cache(m->p);
    set_current_machine(nullptr);
    m->exited.store(1, std::memory_order_release);
    futex_wake(&m->exited, INT32_MAX);
    // Last: once released, the runtime may be gone, freed by its owner or,
    // if this M was left running, by this very call.
    release_holder();
  }

  static void fiber_entry(void* arg) {
    arch::on_context_entry();
    fiber* f = static_cast<fiber*>(arg);
    run_post(current_machine());
    f->started = true;
    f->run(f);
    if (f->locals != nullptr) {
      // On the fiber's own stack and before it counts as finished, as a
      // thread's thread_local destructors run before it is joinable.
      destroy_fiber_locals.load(std::memory_order_acquire)(f->locals);
      f->locals = nullptr;
    }
    post_action act;
    act.kind = post_kind::exit;
    act.prev = f;
    reschedule(current_machine(), act);
    __builtin_unreachable();
  }

  // Switches from the running fiber to next (to the M's loop if null); `act`
  // runs on the far side.
  //
  // The thread's C++ exception state goes with the fiber (eh_globals.hpp): it
  // is moved into the fiber before the switch, so whatever runs next on this
  // thread starts with none, and moved back into whichever thread the fiber
  // resumes on, after that thread's post action (which belongs to the fiber
  // that left it, not to this one). A fiber's first run (fiber_entry) finds
  // the state empty for the same reason. machine_main needs nothing: g0
  // switches only from its loop, where it holds no exception state. A fiber
  // that exits holds none either (every handler of its function has ended);
  // were it to, the state would go into the dead fiber, never to the next.
  static void switch_away(machine* m, fiber* next, post_action act) noexcept {
    fiber* self = m->cur;
    check_stack(self);
    if (!m->eh->empty()) [[unlikely]]
      save_eh(self, m->eh);
    m->post = act;
    arch::context* to = &m->g0;
    m->cur = next;
    m->p->note_switch(next);
    if (next != nullptr) {
      next->state.store(fiber_state::running, std::memory_order_relaxed);
      to = &next->ctx;
    }
    if (act.kind == post_kind::exit) arch::exit_context(self->ctx, *to);
    arch::switch_context(self->ctx, *to);
    m = current_machine();
    run_post(m);
    if (self->eh_saved) [[unlikely]]
      restore_eh(self, m->eh);
  }

  // Out of line, as commit_park: the common switch carries no exception state.
  GOFER_NOINLINE static void save_eh(fiber* f, arch::eh_globals* thread) noexcept {
    f->eh = *thread;
    f->eh_saved = true;
    *thread = arch::eh_globals{};
  }

  GOFER_NOINLINE static void restore_eh(fiber* f, arch::eh_globals* thread) noexcept {
    *thread = f->eh;
    f->eh_saved = false;
  }

  // Reads in place only the fields its kind uses: every switch runs this.
  static void run_post(machine* m) noexcept {
    const post_kind kind = m->post.kind;
    if (kind == post_kind::none) return;
    m->post.kind = post_kind::none;  // the other fields are only read with a kind
    if (kind == post_kind::requeue) {
      m->rt->push_local(m->p, m->post.prev);
      // As Go's Gosched: the yielder may be followed by a fiber that never
      // parks, and an idle M must come and take the yielder, or it waits
      // on this P's queue until that fiber stops.
      if (m->rt->cfg_.procs > 1) m->rt->wake_processor();
    } else if (kind == post_kind::park) {
      commit_park(m, m->post);
    } else {
      m->rt->release_fiber(m->p, m->post.prev);
    }
  }

  // Out of line, as release_fiber: run_post, which every switch runs, stays
  // small and saves few registers.
  GOFER_NOINLINE static void commit_park(machine* m, const post_action& a) noexcept {
    if (!a.commit(a.arg, a.prev)) m->rt->ready(a.prev, false);
  }

  GOFER_NOINLINE void release_fiber(processor* p, fiber* f) noexcept {
    if (f->counted) p->add_live(-1);
    arch::destroy_context(f->ctx);
    stack_slot slot = f->stack;
    f->state.store(fiber_state::free, std::memory_order_release);
    give_stack(p, slot);
  }

  // The cheap part of finding work, usable on a fiber's stack: local queue and
  // global queue, plus this P's due timers.
  //
  // A fiber that is parking still holds what its commit step will release
  // (a channel's lock, say), and a timer callback may need exactly that (a
  // timer delivering on that channel). So while parking, due timers are not
  // run here: null sends the M through g0, where the commit runs first and
  // find_runnable then runs the timers.
  fiber* next_local(machine* m, bool parking = false) noexcept {
    processor* p = m->p;
    // What most schedules skip (timers pending, every 61st tick) is out of
    // line: the rest is all the scheduling work of a yield.
    if (--p->until_fair_check == 0 || p->timers.next_when() != never) [[unlikely]]
      return next_local_checked(m, parking);
    return local_then_global(p);
  }

  GOFER_NOINLINE fiber* next_local_checked(machine* m, bool parking) noexcept {
    processor* p = m->p;
    if (p->timers.next_when() != never) {
      p->clock_ns = monotonic_ns();
      if (p->timers.next_when() <= p->clock_ns) {
        if (parking) {  // the M's loop runs it, once this fiber is switched out
          p->clock_fresh = true;
          // A fair check due now happens at the next schedule: left at 0,
          // the countdown would wrap and skip it for 2^32 schedules.
          if (p->until_fair_check == 0) p->until_fair_check = 1;
          return nullptr;
        }
        p->timers.run_expired(p->clock_ns);
      }
    }
    if (p->until_fair_check == 0) {
      p->until_fair_check = processor::fair_check_period;
      p->clock_ns = monotonic_ns();
      if (global_.size() != 0) {
        if (fiber* f = take_global(p, 1)) return f;
      }
      // A P that never runs out of work would otherwise leave fibers whose
      // sockets became ready waiting until some M goes idle (Go has sysmon
      // poll for this). Not while parking: an event handler takes the lock
      // of the fd it reports, which a parking fiber may hold.
      if (!parking && netpoll_.has_waiters() && !netpoll_.claimed()) netpoll_.poll<16>(0);
    }
    return local_then_global(p);
  }

  fiber* local_then_global(processor* p) noexcept {
    if (fiber* f = p->runq.pop()) return f;
    if (global_.size() != 0) [[unlikely]]
      return take_global(p, run_queue::capacity / 2);
    return nullptr;
  }

  GOFER_NOINLINE fiber* take_global(processor* p, std::uint32_t max) noexcept {
    std::uint32_t n = std::min<std::uint32_t>(max, global_.size() / cfg_.procs + 1);
    return global_.pop_batch(n, [&](fiber* f) { push_local(p, f); });
  }

  // From outside the runtime: once f is queued it may run, let main return
  // and the runtime be destroyed while this call still wakes an M. The
  // destructor waits for outside_wakers_ to drop to zero. Counted in before
  // f is marked runnable: a runtime's end that sees a parked fiber turn
  // runnable knows its waker is counted (blocking.hpp relies on it).
  GOFER_NOINLINE void ready_from_outside(fiber* f) noexcept {
    outside_wakers_.fetch_add(1, std::memory_order_acq_rel);
    f->state.store(fiber_state::runnable, std::memory_order_release);
    global_.push(f);
    wake_processor();
    outside_wakers_.fetch_sub(1, std::memory_order_release);
  }

  void push_local(processor* p, fiber* f) noexcept {
    if (!p->runq.push(f)) [[unlikely]]
      spill_to_global(p, f);
  }

  // The local queue is full: move half of it, and f, to the global queue
  // (Go's runqputslow), so other Ps can take them without stealing from a
  // busy one.
  GOFER_NOINLINE void spill_to_global(processor* p, fiber* f) noexcept {
    fiber* batch[run_queue::capacity / 2 + 1];
    std::uint32_t n = p->runq.take_half(batch);
    batch[n++] = f;
    global_.push_batch(batch, n);
  }

  bool run_all_timers(processor* own) noexcept {
    bool any = false;
    std::int64_t now = 0;
    if (own->clock_fresh) {
      own->clock_fresh = false;
      now = own->clock_ns;
    }
    for (auto& p : ps_) {
      std::int64_t w = p->timers.next_when();
      if (w == never) continue;
      if (now == 0) now = monotonic_ns();
      if (w <= now && p->timers.run_expired(now) > 0) any = true;
    }
    return any;
  }

  fiber* find_runnable(machine* m) {
    for (;;) {
      if (stopping()) {
        if (m->spinning) {
          m->spinning = false;
          nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
        }
        return nullptr;
      }
      run_all_timers(m->p);
      if (fiber* f = next_local(m)) {
        if (m->spinning) reset_spinning(m);
        return f;
      }
      // Handlers ready the fibers they wake onto this P: look again.
      if (netpoll_.has_waiters() && !netpoll_.claimed() && netpoll_.poll(0) > 0) continue;
      if (m->spinning ||
          2 * nmspinning_.load(std::memory_order_seq_cst) <
              cfg_.procs - npidle_.load(std::memory_order_seq_cst)) {
        if (!m->spinning) {
          m->spinning = true;
          nmspinning_.fetch_add(1, std::memory_order_seq_cst);
        }
        if (fiber* f = steal_work(m)) {
          reset_spinning(m);
          return f;
        }
      }
      park_idle(m);
    }
  }

  void reset_spinning(machine* m) noexcept {
    m->spinning = false;
    if (nmspinning_.fetch_sub(1, std::memory_order_seq_cst) == 1) wake_processor();
  }

  fiber* steal_work(machine* m) noexcept {
    processor* p = m->p;
    const unsigned n = cfg_.procs;
    if (n == 1) return nullptr;
    for (int round = 0; round < 4; ++round) {
      unsigned start = p->rng.below(n);
      for (unsigned i = 0; i < n; ++i) {
        processor* v = ps_[(start + i) % n].get();
        if (v == p) continue;
        if (v->runq.empty()) continue;
        if (fiber* f = p->runq.steal_from(v->runq, round == 3)) {
          p->steals.store(p->steals.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
          return f;
        }
      }
      if (fiber* f = p->runq.pop()) return f;
    }
    return nullptr;
  }

  bool work_visible() const noexcept {
    if (global_.size() != 0) return true;
    for (auto& p : ps_)
      if (!p->runq.empty()) return true;
    return false;
  }

  std::int64_t earliest_timer() const noexcept {
    std::int64_t w = never;
    for (auto& p : ps_) w = std::min(w, p->timers.next_when());
    return w;
  }

  bool remove_from_idle(machine* m) {
    std::lock_guard lk(idle_mu_);
    if (!m->idle) return false;
    std::erase(idle_, m);
    m->idle = false;
    npidle_.fetch_sub(1, std::memory_order_seq_cst);
    return true;
  }

  // Puts the M to sleep until wake_processor picks it, the earliest timer is
  // due, or the runtime stops. Returns to find_runnable, which looks again.
  void park_idle(machine* m) {
    // Once on the idle list, m->spinning belongs to whoever takes m off it
    // (wake_processor hands the spinning role over through it), so read and
    // clear it before.
    const bool was_spinning = m->spinning;
    {
      std::lock_guard lk(idle_mu_);
      if (global_.size() != 0 || stopping()) return;
      m->spinning = false;
      idle_.push_back(m);
      m->idle = true;
      npidle_.fetch_add(1, std::memory_order_seq_cst);
    }
    if (was_spinning) nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
    // The re-check that closes the race with ready() (see the essay above).
    if (work_visible() || stopping()) {
      if (remove_from_idle(m)) {
        m->spinning = true;
        nmspinning_.fetch_add(1, std::memory_order_seq_cst);
        left_idle(m);
        return;
      }
      // Someone already took this M off the list and is waking it.
    }
    std::int64_t deadline = earliest_timer();
    m->parked_until.store(deadline, std::memory_order_seq_cst);
    if (deadline == never && npidle_.load(std::memory_order_seq_cst) == cfg_.procs) {
      // Fully idle: a good moment to hand idle stacks' memory back, and to let
      // the deadlock detector look.
      slabs_.trim_free();
      quiet_word_.fetch_add(1, std::memory_order_seq_cst);
      futex_wake(&quiet_word_, INT32_MAX);
    }
    for (;;) {
      if (m->wake_word.load(std::memory_order_acquire) != 0) break;
      std::int64_t left = -1;
      if (deadline != never) {
        left = deadline - monotonic_ns();
        if (left <= 0) break;
      }
      if (netpoll_.has_waiters() && netpoll_.try_claim()) {
        // in_poll and wake_word are a Dekker pair with wake_processor: either
        // it sees in_poll and interrupts the poll, or this sees its word.
        m->in_poll.store(true, std::memory_order_seq_cst);
        int n = 0;
        if (m->wake_word.load(std::memory_order_seq_cst) == 0) n = netpoll_.poll(left);
        m->in_poll.store(false, std::memory_order_seq_cst);
        netpoll_.release();
        if (n > 0) break;  // fibers were readied onto this P
        continue;
      }
      futex_wait(&m->wake_word, 0, left);
    }
    m->parked_until.store(never, std::memory_order_seq_cst);
    if (m->wake_word.load(std::memory_order_acquire) == 0 && !remove_from_idle(m)) {
      // Timed out, but a waker took this M off the idle list meanwhile: wait
      // for its word so the wake (and the spinning it handed over) is not lost.
      while (m->wake_word.load(std::memory_order_acquire) == 0) futex_wait(&m->wake_word, 0);
    }
    m->wake_word.store(0, std::memory_order_relaxed);
    left_idle(m);
    m->p->clock_ns = monotonic_ns();
    m->p->clock_fresh = true;
  }

  // m was counted idle and runs again, whichever way it left: the deadlock
  // check must see it (its proof of activity), and the monitor, which sleeps
  // while every M does, must wake.
  void left_idle(machine* m) noexcept {
    m->wakeups.fetch_add(1, std::memory_order_release);
    if (monitor_asleep_.load(std::memory_order_seq_cst)) {
      monitor_word_.fetch_add(1, std::memory_order_seq_cst);
      futex_wake(&monitor_word_, 1);
    }
  }

  // ---- The monitor (Go's sysmon, for diagnostics only) -------------------
  //
  // A thread per runtime that looks at every P every few milliseconds:
  //   - a fiber that holds its P while something waits for that P is
  //     reported, once per fiber: id, name, creation site. Scheduling is
  //     cooperative, so a fiber that computes without parking keeps what
  //     only its P can run waiting; Go preempts such a goroutine, gofer says
  //     which fiber it is. Both halves must hold for long_run_ns:
  //       held: the P runs the same fiber, and neither its switch count nor
  //         its spawn count has moved. A spawn counts as a hand-off: a
  //         fiber starting fibers in a loop is feeding the scheduler, and the
  //         fibers it queues wait by design, however slowly the machine
  //         maps their stacks. A yield that switches moves the switch count;
  //         one that returns at once needs no count: it found nothing the P
  //         could run (its queue, runnext, the global queue, its due timers
  //         are all looked at), so nothing has waited across it.
  //       waiting: something runnable that this P alone would run has
  //         waited the whole time, seen by marks that move when it is taken:
  //         a fiber at the head of its local queue (the head index moves
  //         when the owner or a thief takes one), else in runnext (the
  //         pointer changes), else, with one P, in the global queue (nobody
  //         else takes from it), else a timer of this P that is due (other
  //         Ms run due timers of every P when they look for work, so one
  //         due for that long waits for this P). With other Ps idle, thieves
  //         take a held P's queue at once: nothing waits, and a fiber that
  //         merely computes long is not reported; nor is one with nothing
  //         behind it at all, as the report would then be about nothing.
  //     The marks are sampled each tick, so a fiber queued and taken between
  //     two ticks is not seen; what counts is waiting that long.
  //     And the fiber must be what holds the P: its M's thread has also run
  //     for long_run_ns of CPU time meanwhile (its CPU clock says), or is
  //     blocked in a system call now (a plain blocking call holds the P as
  //     surely as a loop). Time the kernel did not run the M, on a loaded
  //     machine or a host that took the CPU away, is not the fiber's doing:
  //     a fiber spawning fibers in a loop, descheduled between two spawns,
  //     has not held its P; a fiber computing on a loaded machine is
  //     reported once it has computed that long.
  //   - with $GOFER_DEBUG=schedtrace=<ms>, one line of counters per period.
  // It sleeps on a futex while every M is idle, so an idle runtime stays at
  // zero CPU; an M leaving idleness wakes it (park_idle).
  void monitor_main() {
    own_thread_scope own(serial_);
    char name[16];
    std::snprintf(name, sizeof name, "gofer-%u-mon", serial_);
    pthread_setname_np(pthread_self(), name);
    struct seen {
      fiber* f = nullptr;
      std::uint64_t switches = 0;
      std::uint64_t spawns = 0;
      std::int64_t since = 0;  // when the monitor first saw f hold the P
      waiting_mark waiting;    // what it then saw waiting for the P
      std::int64_t waiting_since = 0;
      std::int64_t waiting_cpu = 0;  // the M's CPU time then
    };
    std::vector<seen> last(ps_.size());
    std::vector<m_clock> clocks;
    for (auto& m : ms_) clocks.push_back(m_clock::of(*m));
    std::int64_t next_trace = cfg_.schedtrace_ns > 0 ? monotonic_ns() + cfg_.schedtrace_ns : never;
    const std::int64_t tick = cfg_.long_run_ns > 0 ? std::max<std::int64_t>(cfg_.long_run_ns / 4, 1'000'000)
                                                   : cfg_.schedtrace_ns;
    while (!stopping()) {
      std::uint32_t w = monitor_word_.load(std::memory_order_seq_cst);
      std::int64_t wait = std::min<std::int64_t>(tick, next_trace - monotonic_ns());
      if (next_trace == never && npidle_.load(std::memory_order_seq_cst) == cfg_.procs) {
        // Every M idle: nothing can hold a P. Sleep until one wakes (the
        // store and the re-check pair with park_idle's wake, Dekker-style).
        monitor_asleep_.store(true, std::memory_order_seq_cst);
        if (npidle_.load(std::memory_order_seq_cst) == cfg_.procs && !stopping())
          futex_wait(&monitor_word_, w, -1);
        monitor_asleep_.store(false, std::memory_order_seq_cst);
        continue;
      }
      if (wait > 0) futex_wait(&monitor_word_, w, wait);
      const std::int64_t now = monotonic_ns();
      for (std::size_t i = 0; i < ps_.size(); ++i) {
        processor& p = *ps_[i];
        seen& s = last[i];
        fiber* f = p.running.load(std::memory_order_relaxed);
        const std::uint64_t sw = p.switches.load(std::memory_order_relaxed);
        const std::uint64_t sp = p.spawns.load(std::memory_order_relaxed);
        if (f != s.f || sw != s.switches || sp != s.spawns) {
          s = {f, sw, sp, now, {}, 0};
          continue;
        }
        if (f == nullptr || cfg_.long_run_ns <= 0) continue;
        const waiting_mark waits = waiting_for(p, now);
        if (waits.what == waiting_mark::nothing || waits != s.waiting) {
          s.waiting = waits;
          s.waiting_since = now;
          if (waits.what != waiting_mark::nothing) s.waiting_cpu = clocks[i].cpu_ns();
          continue;
        }
        if (now - s.waiting_since >= cfg_.long_run_ns &&
            clocks[i].held(s.waiting_cpu, cfg_.long_run_ns))
          report_long_run(p, f, sw, now - s.since, waits.what == waiting_mark::timer);
      }
      if (now >= next_trace) {
        print_schedtrace(now);
        next_trace = now + cfg_.schedtrace_ns;
      }
    }
  }

  // An M's thread as the monitor sees it: its CPU clock and its state.
  struct m_clock {
    const machine* m = nullptr;
    clockid_t clock{};
    bool have_clock = false;
    static m_clock of(machine& m) {
      m_clock c;
      c.m = &m;
      c.have_clock = ::pthread_getcpuclockid(m.thread.native_handle(), &c.clock) == 0;
      return c;
    }
    // CPU time the thread has used, in ns; 0 if unknown.
    std::int64_t cpu_ns() const noexcept {
      timespec ts{};
      if (!have_clock || ::clock_gettime(clock, &ts) != 0) return 0;
      return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    }
    // Whether the thread's fiber holds it (the monitor's essay): it has run
    // for `cpu` ns since its CPU time read `cpu0`, or it is blocked in the
    // kernel now. Without a clock, it is taken to have run.
    bool held(std::int64_t cpu0, std::int64_t cpu) const noexcept {
      if (!have_clock || cpu_ns() - cpu0 >= cpu) return true;
      const long tid = m->tid.load(std::memory_order_relaxed);
      char path[64];
      char buf[512];
      std::snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
      if (tid == 0 || read_proc_file(path, buf, sizeof buf) <= 0) return false;
      // "tid (comm) state ...": the comm may hold spaces and parentheses.
      const char* close = std::strrchr(buf, ')');
      return close != nullptr && close[1] == ' ' && (close[2] == 'S' || close[2] == 'D');
    }
  };

  // What waits for P p now, by the monitor's rule (see its essay), with a
  // mark that stays the same while that has not been taken.
  struct waiting_mark {
    enum kind : std::uint8_t { nothing, queued, runnext, global, timer } what = nothing;
    std::uintptr_t mark = 0;
    bool operator==(const waiting_mark&) const = default;
  };
  waiting_mark waiting_for(const processor& p, std::int64_t now) const noexcept {
    const run_queue::peek_result q = p.runq.peek();
    if (q.queued) return {waiting_mark::queued, q.head};
    if (q.runnext != nullptr)
      return {waiting_mark::runnext, reinterpret_cast<std::uintptr_t>(q.runnext)};
    if (cfg_.procs == 1 && global_.size() != 0) return {waiting_mark::global, 0};
    if (p.timers.live_timer_due(now))
      return {waiting_mark::timer, static_cast<std::uintptr_t>(p.timers.next_when())};
    return {};
  }

  // Reports f, which p has run without a switch since the monitor saw
  // `switches`, once per fiber. The monitor owns nothing of f: f may exit
  // and its slot start another fiber while this reads it. So it reads f only
  // once it has seen, under own_mu_, that p still runs f: then f's stack
  // stays mapped while the lock is held (a slab's stacks live as long as the
  // runtime; a stack of its own size is unmapped only after give_own_stack
  // took it off own_stacks_ under that lock, and f would have had to switch
  // away first). It copies what it prints from the block's atomics (see
  // fiber.hpp), then prints only if p still had not switched once the copy
  // was taken: the copy is then f's, not a mix with its slot's next fiber.
  void report_long_run(const processor& p, fiber* f, std::uint64_t switches, std::int64_t ns,
                       bool timers_wait) {
    auto still_running = [&] {
      return p.running.load(std::memory_order_relaxed) == f &&
             p.switches.load(std::memory_order_relaxed) == switches;
    };
    char fname[max_fiber_name];
    std::size_t n = 0;
    std::uint64_t id = 0;
    const char* file = nullptr;
    std::uint32_t line = 0;
    {
      std::lock_guard lk(own_mu_);
      if (!still_running()) return;
      // Acquire loads: the second look at p comes after them.
      id = f->id.load(std::memory_order_acquire);
      n = f->copy_name(fname, sizeof fname);
      file = f->created_file.load(std::memory_order_acquire);
      line = f->created_line.load(std::memory_order_acquire);
      if (!still_running() || f->long_run_reported.exchange(true, std::memory_order_relaxed))
        return;
    }
    std::fprintf(stderr,
                 "gofer: fiber %llu%s%.*s%s has held its P for %lld ms without parking or yielding; "
                 "%s (created by %s:%u)\n",
                 static_cast<unsigned long long>(id), n ? " \"" : "", static_cast<int>(n), fname,
                 n ? "\"" : "", static_cast<long long>(ns / 1'000'000),
                 timers_wait ? "timers due on its P wait" : "fibers queued behind it wait",
                 file != nullptr ? file : "?", line);
  }

  void print_schedtrace(std::int64_t now) {
    std::uint64_t steals = 0;
    std::uint32_t runnable = global_.size();
    std::string queues;
    for (auto& p : ps_) {
      steals += p->steals.load(std::memory_order_relaxed);
      std::uint32_t q = p->runq.size();
      runnable += q;
      queues += (queues.empty() ? "" : " ") + std::to_string(q);
    }
    std::fprintf(stderr,
                 "gofer: schedtrace runtime %u at %lld ms: procs=%u idle=%u spinning=%u runnable=%u "
                 "[global %u, local %s] steals=%llu fibers=%lld io_waiters=%d\n",
                 serial_, static_cast<long long>(now / 1'000'000), cfg_.procs,
                 npidle_.load(std::memory_order_relaxed), nmspinning_.load(std::memory_order_relaxed),
                 runnable, global_.size(), queues.c_str(), static_cast<unsigned long long>(steals),
                 static_cast<long long>(live_fibers()), netpoll_.waiters());
  }

  // Wakes an idle M to look for work, unless one is already spinning.
  void wake_processor() noexcept {
    // The work the caller just queued must be visible to an M going idle
    // before this reads npidle_ and nmspinning_: queue pushes are release
    // stores, which a later load may overtake (store-load reordering), and
    // then an M could go to sleep unseen by this call while it did not yet
    // see the work either. park_idle's side orders the same way with its
    // seq_cst read-modify-writes of npidle_ / nmspinning_ before it looks.
#if GOFER_TSAN
    // ThreadSanitizer does not model fences; a read-modify-write reads the
    // latest value in npidle_'s modification order, which is what the fence
    // and load together guarantee, and it understands that.
    if (npidle_.fetch_add(0, std::memory_order_seq_cst) == 0) return;
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (npidle_.load(std::memory_order_seq_cst) == 0) return;
#endif
    if (nmspinning_.load(std::memory_order_seq_cst) != 0) return;
    std::uint32_t zero = 0;
    if (!nmspinning_.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return;
    machine* m = nullptr;
    {
      std::lock_guard lk(idle_mu_);
      if (!idle_.empty()) {
        m = idle_.back();
        idle_.pop_back();
        m->idle = false;
        m->spinning = true;  // handed over with the wake
        npidle_.fetch_sub(1, std::memory_order_seq_cst);
      }
    }
    if (m == nullptr) {
      nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
      return;
    }
    m->wake_word.store(1, std::memory_order_seq_cst);
    if (m->in_poll.load(std::memory_order_seq_cst)) {
      netpoll_.interrupt();
    } else {
      futex_wake(&m->wake_word);
    }
  }

  void wake_for_timer(std::int64_t when) noexcept {
    if (npidle_.load(std::memory_order_seq_cst) == 0) return;
    for (auto& m : ms_) {
      if (m->parked_until.load(std::memory_order_seq_cst) <= when) return;  // wakes in time
    }
    wake_processor();
  }

  // ---- Stacks and ids -----------------------------------------------------

  // The per-P stack cache refills and spills in batches, so the slab lock is
  // taken once per 16 spawns or exits at most.
  static constexpr std::size_t stack_cache_batch = 16;

  // The common cases inline, the rest (a stack of another size, an empty or
  // full cache) out of line.
  stack_slot take_stack(processor* p, std::size_t size) {
    if (size != 0 && round_up(size, page_size()) != slabs_.stack_size()) [[unlikely]]
      return take_own_stack(size);
    if (p == nullptr) [[unlikely]]
      return slabs_.allocate();
    if (p->stack_cached == 0) [[unlikely]]
      refill_stack_cache(p);
    return p->stack_cache[--p->stack_cached];
  }

  void give_stack(processor* p, stack_slot s) noexcept {
    if (s.own_mapping) [[unlikely]] {
      give_own_stack(s);
      return;
    }
    if (p->stack_cached == processor::stack_cache_max) [[unlikely]]
      shrink_stack_cache(p);
    s.trimmed = false;
    p->stack_cache[p->stack_cached++] = s;
  }

  GOFER_NOINLINE stack_slot take_own_stack(std::size_t size) {
    stack_slot s = allocate_own_stack(size, cfg_.guards);
    std::lock_guard lk(own_mu_);
    own_stacks_.push_back(s);
    return s;
  }

  GOFER_NOINLINE void give_own_stack(const stack_slot& s) noexcept {
    {
      std::lock_guard lk(own_mu_);
      auto it = std::find_if(own_stacks_.begin(), own_stacks_.end(),
                             [&](const stack_slot& o) { return o.bottom == s.bottom; });
      if (it != own_stacks_.end()) own_stacks_.erase(it);
    }
    free_own_stack(s);
  }

  GOFER_NOINLINE void refill_stack_cache(processor* p) {
    slabs_.allocate_batch(p->stack_cache, stack_cache_batch);
    p->stack_cached = stack_cache_batch;
    // Outside the slab lock: each is a system call.
    for (std::size_t i = 0; i < stack_cache_batch; ++i) p->stack_cache[i].populate_top();
  }

  GOFER_NOINLINE void shrink_stack_cache(processor* p) noexcept {
    std::size_t keep = processor::stack_cache_max - stack_cache_batch * 2;
    slabs_.release_batch(p->stack_cache + keep, p->stack_cached - keep);
    p->stack_cached = keep;
  }

  void flush_stack_cache(processor* p) noexcept {
    slabs_.release_batch(p->stack_cache, p->stack_cached);
    p->stack_cached = 0;
  }

  static std::uint64_t take_id(processor* p) noexcept {
    if (p == nullptr) return next_fiber_id_block.fetch_add(1, std::memory_order_relaxed);
    if (p->next_id == p->end_id) {
      p->next_id = next_fiber_id_block.fetch_add(fiber_id_block, std::memory_order_relaxed);
      p->end_id = p->next_id + fiber_id_block;
    }
    return p->next_id++;
  }

  runtime_config cfg_;
  std::uint32_t serial_;
  std::vector<std::unique_ptr<processor>> ps_;
  std::vector<std::unique_ptr<machine>> ms_;
  global_queue global_;
  slab_allocator slabs_;
  std::mutex own_mu_;
  std::vector<stack_slot> own_stacks_;  // guarded by own_mu_: non-default-size stacks
  std::vector<stack_slot> kept_;        // the destructor's only: see keep_stack

  std::mutex idle_mu_;
  std::vector<machine*> idle_;  // guarded by idle_mu_
  alignas(cache_line) std::atomic<std::uint32_t> npidle_{0};
  alignas(cache_line) std::atomic<std::uint32_t> nmspinning_{0};
  alignas(cache_line) std::atomic<std::int64_t> outside_live_{0};
  std::atomic<std::int64_t> pending_blocking_{0};
  std::atomic<std::int32_t> outside_wakers_{0};  // ready() calls from outside in flight
  std::atomic<std::uint32_t> quiet_word_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  // The Ms still in machine_main, plus one for the owner until its deleter
  // is done (release_holder).
  std::atomic<unsigned> holders_{0};
  netpoller netpoll_;
  std::thread monitor_;
  std::atomic<std::uint32_t> monitor_word_{0};
  std::atomic<bool> monitor_asleep_{false};
};

}  // namespace gofer::detail
