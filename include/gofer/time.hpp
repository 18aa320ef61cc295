// Timers and tickers that deliver on channels, as Go's time package:
// after (time.After), tick (time.Tick), timer (time.NewTimer), ticker
// (time.NewTicker) and after_func (time.AfterFunc).
//
// They run on the timer heap of a runtime's P: the calling fiber's runtime, or
// the default runtime when called from a plain thread. An idle runtime sleeps
// until its earliest timer, so a pending timer costs no CPU.
//
// Go 1.23's semantics: the channel of a timer or ticker holds at most one
// value, and after stop() or reset() returns no value from before the call is
// received (stop and reset drain the channel, and a firing that lost the race
// with them is dropped). A timer due when it is armed (after(0), reset(0))
// delivers at once, as Go 1.23's receive and select run an expired timer
// themselves. A timer or ticker that is destroyed keeps running, as in Go,
// while anything can still see it fire; one that nothing can stop, reset or
// receive from any more leaves the timer heap unfired, as Go 1.23's garbage
// collector takes such timers: a select over after(1h) in a loop holds no
// timer for the hour. (An expired timer that has not fired yet because its P
// is busy is not run by a receive: see docs/go-to-gofer.md.)
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

#include "gofer/chan.hpp"
#include "gofer/detail/util/counted_ref.hpp"
#include "gofer/detail/util/small_alloc.hpp"
#include "gofer/go.hpp"
#include "gofer/runtime.hpp"
#include "gofer/this_fiber.hpp"

namespace gofer {

using steady_time = std::chrono::steady_clock::time_point;

namespace detail {

// What a timer runs instead of sending, for after_func. Called once per firing,
// each time in a fiber of its own.
struct timer_func {
  virtual ~timer_func() = default;
  virtual void call() = 0;
};

// A timer's state, shared by the user's handles and (while it is armed) the
// timer heap, which holds one reference of its own.
//
// Under mu: active (armed and not yet fired or stopped), period, when, and the
// arming itself. A firing takes mu and does nothing unless the timer is still
// active and has not been armed again since this firing was taken off the
// heap (then it is back in a heap, and that later firing is the one that
// counts).
class chan_timer final : public timer_node {
 public:
  chan_timer(runtime_impl* rt, std::int64_t period, std::unique_ptr<timer_func> func)
      : rt_(rt), period_(period), func_(std::move(func)), c_(1) {
    fire = &chan_timer::on_fire;
    drop = [](timer_node* n) { static_cast<chan_timer*>(n)->dropped(); };
    // A channel timer whose handles and channel are all gone can deliver to
    // nobody: the heap may drop it. Not an after_func: its firing runs code.
    abandoned = [](const timer_node* n) noexcept {
      auto* t = static_cast<const chan_timer*>(n);
      return !t->func_ && t->unobserved();
    };
  }
  // Made by whoever calls after() and often freed by the M whose heap fired
  // it: the same traffic as a channel's state.
  GOFER_SMALL_ALLOC_OPERATORS

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  recv_chan<steady_time> channel() const noexcept { return c_; }

  // Arms the timer to fire `after_ns` from now (and then every period).
  void start(std::int64_t after_ns) {
    {
      std::lock_guard lk(mu_);
      arm_after(after_ns);
    }
    rt_->drop_swept_timers();
  }

  // Disarms; true if this prevented a firing, or discarded a value nobody had
  // received yet (Go 1.23's Stop).
  bool stop() {
    bool stopped;
    bool removed;
    {
      std::lock_guard lk(mu_);
      stopped = active_;
      active_ = false;
      removed = timer_heap::remove(this);
      if (!func_ && c_.try_recv().has_value()) stopped = true;
    }
    if (removed) release();  // the heap's reference
    return stopped;
  }

  // stop(), then arm again to fire `after_ns` from now, with a new period if
  // `period` is not negative.
  bool reset(std::int64_t after_ns, std::int64_t period) {
    bool stopped;
    {
      std::lock_guard lk(mu_);
      stopped = active_;
      active_ = false;
      if (timer_heap::remove(this)) release();
      if (!func_ && c_.try_recv().has_value()) stopped = true;
      if (period >= 0) period_ = period;
      arm_after(after_ns);
    }
    rt_->drop_swept_timers();
    return stopped;
  }

 private:
  ~chan_timer() = default;

  // Taken out of its heap unfired, as a runtime ends (timer_heap::clear), or
  // swept there once nothing could observe it: the heap lets go of it. An
  // after_func's function is destroyed unrun: it may hold what holds this
  // timer (a context's deadline holds its node, which holds the timer), a
  // circle that only the firing or a stop() would have broken.
  void dropped() noexcept {
    std::unique_ptr<timer_func> unrun;
    {
      std::lock_guard lk(mu_);
      active_ = false;
      unrun = std::move(func_);
    }
    unrun.reset();  // the program's code: with the lock released
    release();      // the heap's reference
  }

  // With mu held and the timer in no heap.
  void arm(std::int64_t due) {
    this->when = due;
    active_ = true;
    retain();  // for the heap
    rt_->add_timer(this);
  }

  // With mu held and the timer in no heap: arms it to fire after_ns from now.
  // A channel timer that is due already delivers at once, as Go's receive
  // runs an expired timer itself (maybeRunChan): its value is ready for the
  // very next receive or select, rather than after a trip through the heap
  // and a park of whoever waits for it.
  void arm_after(std::int64_t after_ns) {
    const std::int64_t due = deadline_after_ns(after_ns);
    if (after_ns <= 0 && period_ == 0 && !func_) {
      this->when = due;
      active_ = false;
      deliver(due);
      return;
    }
    arm(due);
  }

  // With mu held: puts the time in the channel. If it is full (nobody
  // received the last tick) the value is dropped, as Go's ticker does.
  void deliver(std::int64_t ns) { c_.try_send(steady_time(std::chrono::nanoseconds(ns))); }

  static void on_fire(timer_node* n, std::int64_t now) {
    auto* t = static_cast<chan_timer*>(n);
    bool run_func = false;
    {
      std::lock_guard lk(t->mu_);
      if (t->active_ && t->heap.load(std::memory_order_acquire) == nullptr) {
        if (t->period_ > 0 && !t->unobserved()) {
          // The next tick keeps the schedule; after a long stall it skips the
          // ticks that were missed rather than firing them in a burst.
          std::int64_t next = t->when + t->period_;
          if (next <= now) next = now + t->period_;
          t->arm(next);
        } else {
          t->active_ = false;
        }
        if (t->func_) {
          run_func = true;
        } else {
          t->deliver(now);
        }
      }
    }
    // With the lock released: taking a stack may make system calls, and
    // stop() and reset() spin on the lock meanwhile. The firing is decided.
    if (run_func)
      t->rt_->spawn([r = counted_ref(t)] { r->func_->call(); },
                    runtime_impl::spawn_args{.name = "after_func"});
    t->release();  // the reference of the heap this firing was taken from
  }

  // A timer or ticker nobody can stop, reset or receive from: only the heap
  // (or the firing that took it off) and its own channel handle are left.
  // Nothing can make a new handle from none, so once true it stays true.
  bool unobserved() const noexcept {
    return refs_.load(std::memory_order_acquire) == 1 &&
           c_.detail_state()->use_count() == 1;
  }

  std::atomic<std::uint32_t> refs_{1};
  spinlock mu_;
  runtime_impl* rt_;
  bool active_ = false;     // guarded by mu_
  std::int64_t period_;     // guarded by mu_; 0 for a one-shot timer
  std::unique_ptr<timer_func> func_;
  chan<steady_time> c_;
};

class timer_handle {
 public:
  explicit timer_handle(chan_timer* t) noexcept : t_(t) {}
  timer_handle(const timer_handle& o) noexcept : t_(o.t_) { t_->retain(); }
  timer_handle& operator=(const timer_handle& o) noexcept {
    timer_handle copy(o);
    std::swap(t_, copy.t_);
    return *this;
  }
  ~timer_handle() { t_->release(); }
  chan_timer* operator->() const noexcept { return t_; }

 private:
  chan_timer* t_;
};

}  // namespace detail

// time.Timer: delivers the time once on c(), after the duration.
class timer {
 public:
  template <class Rep, class Period>
  explicit timer(std::chrono::duration<Rep, Period> d)
      : t_(new detail::chan_timer(detail::runtime_for_go(), 0, nullptr)) {
    t_->start(detail::duration_ns(d));
  }

  recv_chan<steady_time> c() const noexcept { return t_->channel(); }
  // Prevents the timer from firing. True if it was still pending (or had
  // fired but its value was not yet received: that value is discarded).
  bool stop() { return t_->stop(); }
  // Stops it, then arms it to fire after d. Returns what stop() would have.
  template <class Rep, class Period>
  bool reset(std::chrono::duration<Rep, Period> d) {
    return t_->reset(detail::duration_ns(d), -1);
  }

 private:
  template <class F>
  friend timer after_func_impl(std::int64_t, F&&);
  explicit timer(detail::chan_timer* t) noexcept : t_(t) {}
  detail::timer_handle t_;
};

// time.Ticker: delivers the time on c() every period; a slow receiver misses
// ticks rather than queueing them.
class ticker {
 public:
  template <class Rep, class Period>
  explicit ticker(std::chrono::duration<Rep, Period> d)
      : t_(new detail::chan_timer(detail::runtime_for_go(), check_period(d), nullptr)) {
    t_->start(detail::duration_ns(d));
  }

  recv_chan<steady_time> c() const noexcept { return t_->channel(); }
  void stop() { t_->stop(); }
  template <class Rep, class Period>
  void reset(std::chrono::duration<Rep, Period> d) {
    const std::int64_t p = check_period(d);
    t_->reset(p, p);
  }

 private:
  template <class Rep, class Period>
  static std::int64_t check_period(std::chrono::duration<Rep, Period> d) {
    const std::int64_t p = detail::duration_ns(d);
    if (p <= 0) throw std::invalid_argument("gofer: non-positive interval for ticker");
    return p;
  }
  detail::timer_handle t_;
};

// time.After: a channel that receives the time once, after d.
template <class Rep, class Period>
recv_chan<steady_time> after(std::chrono::duration<Rep, Period> d) {
  return timer(d).c();
}

// time.Tick: a channel that receives the time every d, for good (it stops
// once nothing holds the channel). For d <= 0 the nil channel, as Go's Tick
// returns nil (only a ticker refuses such a period).
template <class Rep, class Period>
recv_chan<steady_time> tick(std::chrono::duration<Rep, Period> d) {
  if (detail::duration_ns(d) <= 0) return recv_chan<steady_time>(nil);
  return ticker(d).c();
}

template <class F>
timer after_func_impl(std::int64_t ns, F&& f) {
  struct holder final : detail::timer_func {
    explicit holder(F&& g) : fn(std::forward<F>(g)) {}
    void call() override { fn(); }
    std::decay_t<F> fn;
  };
  auto* t = new detail::chan_timer(detail::runtime_for_go(), 0,
                                   std::make_unique<holder>(std::forward<F>(f)));
  t->start(ns);
  return timer(t);
}

// time.AfterFunc: runs f in a fiber of its own after d. stop() before then
// prevents it; the returned timer's c() never receives anything.
template <class Rep, class Period, class F>
timer after_func(std::chrono::duration<Rep, Period> d, F&& f) {
  return after_func_impl(detail::duration_ns(d), std::forward<F>(f));
}

}  // namespace gofer
