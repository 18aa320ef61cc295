// err_group: a group of fibers working on parts of one task, as
// golang.org/x/sync/errgroup.
//
//   gofer::err_group g(ctx);
//   g.set_limit(8);                       // at most 8 at a time
//   for (auto& url : urls) g.go([&, url] { return fetch(g.ctx(), url); });
//   if (std::error_code e = g.wait()) ...   // the first failure
//
// A function may return void or std::error_code, or throw. The first failure
// in time wins: it is recorded and cancels ctx() (with the error as its
// cause, so the others can stop early), and wait() returns it, or rethrows it
// if it was an exception. Later failures are dropped. wait() also cancels
// ctx(), as Go's Wait does: the context belongs to the group's work.
//
// The limit is a token bucket: a buffered chan<> whose capacity is the limit.
// go() sends a token before it starts a fiber (so it blocks, like errgroup's
// Go, while the group is full) and the fiber receives one back when it ends;
// try_go() sends only if that cannot block. A channel rather than a counter
// because go() must block and be woken, from fibers and threads alike, and
// channels already do that; a counter would need a semaphore beside it.
//
// Lifetime: the group must outlive its fibers; the destructor waits for them
// (as std::jthread joins) rather than leave them with a dangling group, but
// discards their result: call wait() to see it.
#pragma once

#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include "gofer/chan.hpp"
#include "gofer/context.hpp"
#include "gofer/detail/util/spinlock.hpp"
#include "gofer/go.hpp"
#include "gofer/sync/wait_group.hpp"

namespace gofer {

class err_group {
 public:
  // ctx() derives from background().
  err_group() : err_group(context::background()) {}
  // ctx() derives from parent, so cancelling parent cancels it too.
  explicit err_group(const context& parent) {
    auto [ctx, cancel] = with_cancel_cause(parent);
    ctx_ = std::move(ctx);
    cancel_ = std::move(cancel);
  }
  err_group(const err_group&) = delete;
  err_group& operator=(const err_group&) = delete;
  ~err_group() {
    // As std::jthread asks its thread to stop before joining: fibers that
    // watch ctx() would otherwise keep the destructor waiting forever.
    cancel_(errc::canceled);
    wg_.wait();
  }

  // Cancelled on the first failure, and by wait().
  const context& ctx() const noexcept { return ctx_; }

  // Runs f in a new fiber, blocking first while the group is at its limit.
  template <class F>
  void go(F&& f) {
    check_callable<F>();
    if (limit_ == 0)
      throw std::logic_error("gofer: err_group::go with a limit of 0 would block forever");
    const chan<unit> sem = sem_;  // one token bucket from send to return
    // Active from before it waits for a slot, so set_limit sees it.
    active_.fetch_add(1, std::memory_order_acq_rel);
    if (sem) {
      try {
        sem.send(unit{});
      } catch (...) {
        active_.fetch_sub(1, std::memory_order_acq_rel);
        throw;
      }
    }
    start(sem, std::forward<F>(f));
  }

  // Runs f in a new fiber unless the group is at its limit: then false, and f
  // is not called.
  template <class F>
  bool try_go(F&& f) {
    check_callable<F>();
    if (limit_ == 0) return false;
    const chan<unit> sem = sem_;
    active_.fetch_add(1, std::memory_order_acq_rel);
    if (sem && !sem.try_send(unit{})) {
      active_.fetch_sub(1, std::memory_order_acq_rel);
      return false;
    }
    start(sem, std::forward<F>(f));
    return true;
  }

  // At most n of the group's fibers at a time; n < 0: no limit. Throws
  // std::logic_error while any of the group's fibers is still running, as Go
  // panics.
  void set_limit(int n) {
    if (const int a = active_.load(std::memory_order_acquire); a != 0)
      throw std::logic_error("gofer: err_group::set_limit while " + std::to_string(a) +
                             " of the group's fibers are still active");
    limit_ = n;
    sem_ = n > 0 ? chan<unit>(static_cast<std::size_t>(n)) : chan<unit>(nil);
  }

  // Waits for every fiber started by go/try_go, cancels ctx(), then returns
  // the first failure ({} if none) or rethrows it if it was an exception.
  std::error_code wait() {
    wg_.wait();
    cancel_(err_ ? err_ : std::error_code(errc::canceled));
    if (ex_) std::rethrow_exception(ex_);
    return err_;
  }

 private:
  template <class F>
  static constexpr void check_callable() {
    using R = std::invoke_result_t<std::decay_t<F>&>;
    static_assert(std::is_void_v<R> || std::is_convertible_v<R, std::error_code>,
                  "gofer::err_group: f must return void or std::error_code");
  }

  // With a slot taken and the fiber counted active.
  template <class F>
  void start(const chan<unit>& sem, F&& f) {
    wg_.add(1);
    try {
      gofer::go([this, sem, fn = std::optional<std::decay_t<F>>(std::forward<F>(f))]() mutable {
        run(*fn);
        // f's captures die before wait() may return: they may refer to
        // what its caller frees next.
        fn.reset();
        finish(sem);
      });
    } catch (...) {
      finish(sem);
      throw;
    }
  }

  template <class Fn>
  void run(Fn& fn) noexcept {
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<Fn&>>) {
        fn();
      } else if (std::error_code e = fn()) {
        fail(e, nullptr);
      }
    } catch (...) {
      fail({}, std::current_exception());
    }
  }

  void fail(std::error_code e, std::exception_ptr ex) noexcept {
    {
      std::lock_guard lk(mu_);
      if (failed_) return;
      failed_ = true;
      err_ = e;
      ex_ = std::move(ex);
    }
    // An exception has no error_code: the others see plain canceled.
    cancel_(e ? e : std::error_code(errc::canceled));
  }

  // Last touch of *this is wg_.done(): a waiter may destroy the group then.
  void finish(const chan<unit>& sem) {
    if (sem) sem.recv();
    active_.fetch_sub(1, std::memory_order_acq_rel);
    wg_.done();
  }

  context ctx_;
  cancel_cause_func cancel_;
  wait_group wg_;
  std::atomic<int> active_{0};  // fibers started and not finished
  int limit_ = -1;              // as set_limit; not to be changed concurrently with go
  chan<unit> sem_{nil};         // the token bucket; nil without a limit
  detail::spinlock mu_;         // guards the first failure
  bool failed_ = false;
  std::error_code err_;
  std::exception_ptr ex_;
};

}  // namespace gofer
