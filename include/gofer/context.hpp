// context: cancellation, deadlines and request-scoped values, as Go's context
// package.
//
//   auto [ctx, cancel] = gofer::with_timeout(parent, 100ms);
//   GOFER_DEFER(cancel());
//   gofer::select(gofer::on_recv(ctx.done()), gofer::on_recv(results, ...));
//   if (ctx.err() == gofer::errc::deadline_exceeded) ...
//
// A context is an immutable value: a counted pointer to a node in a tree whose
// root is background() or todo(). Every with_* call adds a node on top of its
// parent; nothing ever changes a node except its own cancellation.
//
// The tree, and why it has two kinds of edges. A child points up to its parent
// (for value lookups and deadlines), and that pointer keeps the parent alive.
// Cancellation flows down, so each cancellable node also keeps a list of the
// cancellable nodes (and after_func registrations) nearest below it; that list
// does not own its members in the user's sense. As in Go, a child's
// cancellation never reaches its parent, and a cancelled child leaves its
// parent's list in O(1) (the list is intrusive and doubly linked).
//
// Why two reference counts. Go can leave a child that is never cancelled in
// its parent's list: the garbage collector sees through it once nothing else
// refers to it... except it does not, the list refers to it, which is why
// `go vet` insists on calling cancel. C++ users will not always call cancel,
// and a long-lived parent with a million short-lived children must not grow.
// So a node counts `handles` (contexts, cancel functions and child nodes that
// refer to it: whoever can still observe or cause its cancellation) apart from
// `refs` (memory: the handles together hold one, a parent's list holds one, a
// pending deadline timer holds one, a running cancellation holds one). When the
// last handle goes, the node leaves its parent's list and stops its timer; it
// is freed when the last memory reference goes. One exception keeps Go's
// semantics: if a done() channel obtained from the node is still held, the
// node stays registered (as it would in Go) and closes that channel when its
// parent is cancelled or its deadline passes.
//
// Locking. Each cancellable node has a spinlock guarding its err, its done
// channel's creation, its timer and its children list. No code path ever holds
// two of them: cancellation takes the node's lock only to publish err and
// splice its children list out in O(1) (after err is set nobody else touches
// that list: a child that wants to leave checks the parent's err first), then
// closes the done channel, stops the timer and walks the spliced children with
// no lock held. A woken fiber that cancels its own child or drops it needs the
// parent's lock only briefly. The walk is iterative (a chain of spliced lists),
// so deep trees do not recurse.
//
// err() and done() agree, as Go promises: once done() is closed err() is set,
// and once err() is set done() is closed. err is published before the channel
// is closed (outside the lock); err() therefore waits for that close when it
// sees err set on a node whose done channel exists (a few instructions, unless
// the cancelling thread was preempted).
//
// The done channel is created on first use (an unbuffered chan<>), or is a
// shared, already-closed channel when the node was cancelled first: a context
// that nobody waits on costs no channel, and cancelling it closes none.
//
// Deadlines run on the runtime's timer heap through time.hpp's after_func:
// the timer is stopped when the context is cancelled early or abandoned, so
// nothing lingers in the heap.
//
// Threads and fibers: every operation works from both; a plain thread may
// block on ctx.done().recv(). after_func's f, and the deadline's cancellation,
// run in fibers of their own (on the runtime of whoever cancels, or the
// default runtime when that is a plain thread).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "gofer/chan.hpp"
#include "gofer/detail/util/counted_ref.hpp"
#include "gofer/detail/util/small_alloc.hpp"
#include "gofer/detail/util/spinlock.hpp"
#include "gofer/runtime.hpp"
#include "gofer/this_fiber.hpp"
#include "gofer/time.hpp"

namespace gofer {

// Why a context was cancelled: Go's context.Canceled and DeadlineExceeded.
enum class errc { canceled = 1, deadline_exceeded };

}  // namespace gofer

template <>
struct std::is_error_code_enum<gofer::errc> : std::true_type {};

namespace gofer {

namespace detail {

// Messages as Go's. Beyond identity, the codes are equivalent to the generic
// conditions a C++ caller tests for: deadline_exceeded to std::errc::timed_out
// (Go's DeadlineExceeded is a net.Error whose Timeout() is true, and gofer's
// I/O deadlines report timed_out too), canceled to std::errc::operation_canceled.
class context_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "gofer.context"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::canceled:
        return "context canceled";
      case errc::deadline_exceeded:
        return "context deadline exceeded";
    }
    return "unknown context error";
  }
  bool equivalent(int c, const std::error_condition& cond) const noexcept override {
    if (cond.category() == std::generic_category()) {
      if (c == static_cast<int>(errc::canceled))
        return cond.value() == static_cast<int>(std::errc::operation_canceled);
      if (c == static_cast<int>(errc::deadline_exceeded))
        return cond.value() == static_cast<int>(std::errc::timed_out);
    }
    return default_error_condition(c) == cond;
  }
};

}  // namespace detail

inline const std::error_category& context_category() noexcept {
  static const detail::context_category_impl c;
  return c;
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), context_category()};
}

// A key for with_value / value. Each key object is a distinct key (compared
// by address), as Go's unexported key types are; T is the type of its values.
template <class T>
class context_key {
 public:
  explicit context_key(std::string_view name = {}) : name_(name) {}
  context_key(const context_key&) = delete;
  context_key& operator=(const context_key&) = delete;
  // For printing only.
  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
};

class context;

namespace detail {

class ctx_cancel_node;

// A node of the context tree. See the header comment for the two counts.
class ctx_node {
 public:
  struct root_tag {};
  explicit ctx_node(root_tag) noexcept : immortal(true) {}
  // Takes over one handle on `p` (the child's pointer to its parent).
  explicit ctx_node(ctx_node* p) noexcept
      : parent(p), canceller(p->canceller), deadline(p->deadline) {}
  ctx_node(const ctx_node&) = delete;
  ctx_node& operator=(const ctx_node&) = delete;
  virtual ~ctx_node() = default;
  // Children are typically made by one fiber and dropped by the fibers that
  // watch them, on other Ms.
  GOFER_SMALL_ALLOC_OPERATORS

  // The value stored by a with_value node, whose key is `key`.
  virtual const void* value() const noexcept { return nullptr; }
  // The last handle is gone (see drop_handle).
  virtual void abandoned() noexcept {}

  std::atomic<std::size_t> handles{1};
  std::atomic<std::size_t> refs{1};       // the handles together hold one
  ctx_node* parent = nullptr;             // holds a handle on it; null for a root
  ctx_cancel_node* canceller = nullptr;   // nearest cancellable node (self for one); null: never cancelled
  std::optional<steady_time> deadline;    // the earliest along the path to the root
  const void* key = nullptr;              // a with_value node's key
  const bool immortal = false;            // background and todo: never counted, never freed
};

inline void drop_handle(ctx_node* n) noexcept;

// Frees n if this was its last memory reference; returns its parent, on which
// the caller must then drop the handle n held (iteratively: a deep chain must
// not recurse).
[[nodiscard]] inline ctx_node* unref(ctx_node* n) noexcept {
  if (n->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return nullptr;
  ctx_node* p = n->parent;
  delete n;
  return p;
}

inline void release_ref(ctx_node* n) noexcept {
  if (ctx_node* p = unref(n)) drop_handle(p);
}

inline void drop_handle(ctx_node* n) noexcept {
  while (n != nullptr && !n->immortal) {
    if (n->handles.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    n->abandoned();
    n = unref(n);
  }
}

inline ctx_node* ctx_background() noexcept {
  static ctx_node* n = new ctx_node(ctx_node::root_tag{});
  return n;
}
inline ctx_node* ctx_todo() noexcept {
  static ctx_node* n = new ctx_node(ctx_node::root_tag{});
  return n;
}

// One counted handle on a node.
class ctx_handle {
 public:
  ctx_handle() noexcept = default;
  explicit ctx_handle(ctx_node* adopt) noexcept : n_(adopt) {}
  ctx_handle(const ctx_handle& o) noexcept : n_(o.n_) {
    if (n_ != nullptr && !n_->immortal) n_->handles.fetch_add(1, std::memory_order_relaxed);
  }
  ctx_handle(ctx_handle&& o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
  ctx_handle& operator=(ctx_handle o) noexcept {
    std::swap(n_, o.n_);
    return *this;
  }
  ~ctx_handle() {
    if (n_ != nullptr) drop_handle(n_);
  }
  ctx_node* get() const noexcept { return n_; }
  ctx_node* release() noexcept { return std::exchange(n_, nullptr); }

 private:
  ctx_node* n_ = nullptr;
};

// A member of a cancellable node's children list: a cancellable child context
// or an after_func registration.
struct ctx_child {
  ctx_child* prev = nullptr;
  ctx_child* next = nullptr;
  ctx_cancel_node* reg = nullptr;  // whose list; fixed before registering
  bool linked = false;             // guarded by reg->mu; stale once reg is cancelled

  // reg was cancelled and has handed this member (with the list's memory
  // reference) to the cancelling thread. Children of this member's own go on
  // `work`.
  virtual void parent_cancelled(std::error_code err, std::error_code cause,
                                struct ctx_chain& work) noexcept = 0;
  // Gives back the list's memory reference.
  virtual void release_link() noexcept = 0;

 protected:
  ~ctx_child() = default;
};

// A chain of ctx_child through `next`: a children list, or the work still to
// do in a cancellation.
struct ctx_chain {
  ctx_child* head = nullptr;
  ctx_child* tail = nullptr;
  void append(const ctx_chain& c) noexcept {
    if (c.head == nullptr) return;
    if (tail != nullptr) {
      tail->next = c.head;
    } else {
      head = c.head;
    }
    tail = c.tail;
  }
};

// Waits until ch is closed: its closer is between two of its own steps.
inline void wait_closed(const chan<unit>& ch) noexcept {
  for (int i = 0; !ch.closed(); ++i) {
    if (i < 64) {
      cpu_relax();
    } else {
      this_fiber::yield();
    }
  }
}

// Go's closedchan: the done channel of a node cancelled before anyone asked.
inline const chan<unit>& closed_chan() {
  static const chan<unit>* c = [] {
    auto* ch = new chan<unit>();
    ch->close();
    return ch;
  }();
  return *c;
}

// with_cancel, with_deadline, with_cancel_cause: a node that can be cancelled.
//
// Guarded by mu: the children list and nchildren (until err is set; then they
// belong to the cancelling thread), linked of each child, timer, and the
// creation of done. err_ and done_made_ are written under mu and read without
// it; cause_ and done_ are written once, before err_ or done_made_ publish
// them.
class ctx_cancel_node final : public ctx_node, public ctx_child {
 public:
  explicit ctx_cancel_node(ctx_node* p) noexcept : ctx_node(p) {
    reg = canceller;  // the parent's nearest cancellable node
    canceller = this;
  }

  bool cancelled() const noexcept { return err_.load(std::memory_order_acquire) != 0; }

  std::error_code err() const noexcept {
    const int e = err_.load(std::memory_order_acquire);
    if (e == 0) return {};
    if (done_made_.load(std::memory_order_acquire)) wait_closed(done_);
    return make_error_code(static_cast<errc>(e));
  }

  std::error_code cause() const noexcept {
    if (!cancelled()) return {};
    return cause_;
  }

  recv_chan<unit> done() {
    if (!done_made_.load(std::memory_order_acquire)) make_done();
    return done_;
  }

  // Links this node into its parent's list, or cancels it at once if the
  // parent is cancelled already. Before the node is shared.
  void attach() noexcept {
    if (reg == nullptr) return;
    refs.fetch_add(1, std::memory_order_relaxed);  // the list's
    if (reg->link(this)) return;
    cancel(reg->err(), reg->cause(), false);
    refs.fetch_sub(1, std::memory_order_relaxed);  // not the last: the caller holds a handle
  }

  // Cancels this node and everything below it. The caller keeps the node
  // alive. No lock is held on return, nor while any channel is closed.
  void cancel(std::error_code err, std::error_code cause, bool remove_from_parent) noexcept {
    ctx_chain work;
    if (!cancel_self(err, cause, work)) return;
    if (remove_from_parent) detach_from_parent();
    for (ctx_child* c = work.head; c != nullptr;) {
      c->parent_cancelled(err, cause, work);
      ctx_child* after = c->next;  // read after: c may have appended to the chain's tail
      c->release_link();
      c = after;
    }
  }

  // A new member for the list; false (and not linked) if this node is
  // cancelled. The caller has taken the list's memory reference.
  bool link(ctx_child* c) noexcept {
    std::lock_guard lk(mu);
    if (err_.load(std::memory_order_relaxed) != 0) return false;
    c->prev = children_.tail;
    c->next = nullptr;
    if (children_.tail != nullptr) {
      children_.tail->next = c;
    } else {
      children_.head = c;
    }
    children_.tail = c;
    c->linked = true;
    ++nchildren_;
    return true;
  }

  // Takes c out of the list; false if it was not in it (any more). The caller
  // then gives back the list's reference (if true).
  bool unlink(ctx_child* c) noexcept {
    std::lock_guard lk(mu);
    if (err_.load(std::memory_order_relaxed) != 0 || !c->linked) return false;
    (c->prev != nullptr ? c->prev->next : children_.head) = c->next;
    (c->next != nullptr ? c->next->prev : children_.tail) = c->prev;
    c->prev = c->next = nullptr;
    c->linked = false;
    --nchildren_;
    return true;
  }

  // A deadline timer for this node (with_deadline), unless it is cancelled
  // already: then the timer is stopped here.
  void set_timer(timer t) {
    {
      std::lock_guard lk(mu);
      if (err_.load(std::memory_order_relaxed) == 0) {
        timer_.emplace(std::move(t));
        return;
      }
    }
    t.stop();
  }

  std::size_t child_count() noexcept {
    std::lock_guard lk(mu);
    return nchildren_;
  }

  spinlock mu;

 private:
  void parent_cancelled(std::error_code err, std::error_code cause, ctx_chain& work) noexcept override {
    cancel_self(err, cause, work);
  }
  void release_link() noexcept override { release_ref(this); }

  // Publishes err, takes the children list, then (unlocked) closes done and
  // stops the timer. False if the node was cancelled already.
  bool cancel_self(std::error_code err, std::error_code cause, ctx_chain& work) noexcept {
    std::optional<timer> t;
    bool close;
    {
      std::lock_guard lk(mu);
      if (err_.load(std::memory_order_relaxed) != 0) return false;
      cause_ = cause ? cause : err;
      err_.store(err.value(), std::memory_order_release);
      close = done_made_.load(std::memory_order_relaxed);
      work.append(children_);
      children_ = {};
      nchildren_ = 0;
      t.swap(timer_);
    }
    if (close) done_.close();
    if (t) t->stop();
    return true;
  }

  void detach_from_parent() noexcept {
    if (reg != nullptr && reg->unlink(this)) release_ref(this);  // never the last: the caller holds one
  }

  void abandoned() noexcept override {
    std::optional<timer> t;
    {
      std::lock_guard lk(mu);
      // Cancelled: out of the list and the timer stopped already.
      if (err_.load(std::memory_order_relaxed) != 0) return;
      // Somebody still holds the done channel: stay registered, as Go would,
      // so that it is closed when the parent is cancelled or the deadline
      // passes (the node is freed then).
      if (done_made_.load(std::memory_order_relaxed) && done_.detail_state()->use_count() > 1) return;
      t.swap(timer_);
    }
    if (t) t->stop();
    detach_from_parent();
  }

  void make_done() {
    const chan<unit>& closed = closed_chan();
    chan<unit> fresh(nil);
    if (err_.load(std::memory_order_acquire) == 0) fresh = chan<unit>();  // allocate unlocked
    std::lock_guard lk(mu);
    if (done_made_.load(std::memory_order_relaxed)) return;
    // err is monotonic: unset now means it was unset above, so fresh exists.
    done_ = err_.load(std::memory_order_relaxed) != 0 ? closed : std::move(fresh);
    done_made_.store(true, std::memory_order_release);
  }

  std::atomic<int> err_{0};   // an errc, 0 while live
  std::error_code cause_;
  std::atomic<bool> done_made_{false};
  chan<unit> done_{nil};
  ctx_chain children_;
  std::size_t nchildren_ = 0;
  std::optional<timer> timer_;
};

// The deadline timer's function: holds a memory reference to its node, so a
// timer that fires after every handle is gone still finds it.
class ctx_deadline_fire {
 public:
  explicit ctx_deadline_fire(ctx_cancel_node* n) noexcept : n_(n) {
    n_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  ctx_deadline_fire(ctx_deadline_fire&& o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
  ctx_deadline_fire& operator=(ctx_deadline_fire&&) = delete;
  ~ctx_deadline_fire() {
    if (n_ != nullptr) release_ref(n_);
  }
  void operator()() const noexcept { n_->cancel(errc::deadline_exceeded, {}, true); }

 private:
  ctx_cancel_node* n_;
};

template <class T>
class ctx_value_node final : public ctx_node {
 public:
  ctx_value_node(ctx_node* p, const void* k, T v) : ctx_node(p), v_(std::move(v)) { key = k; }
  const void* value() const noexcept override { return &v_; }

 private:
  T v_;
};

// without_cancel: keeps the parent for its values only.
class ctx_detached_node final : public ctx_node {
 public:
  explicit ctx_detached_node(ctx_node* p) noexcept : ctx_node(p) {
    canceller = nullptr;
    deadline.reset();
  }
};

// An after_func registration. Memory references: the handles together hold
// one, the parent's list one, a fiber running f one. It holds a context handle,
// which keeps that context registered while f may still run (as in Go, where
// the registration is reachable from the parent).
class ctx_after_func_base : public ctx_child {
 public:
  explicit ctx_after_func_base(ctx_handle ctx) noexcept : ctx_(std::move(ctx)) {
    reg = ctx_.get()->canceller;
  }
  ctx_after_func_base(const ctx_after_func_base&) = delete;
  ctx_after_func_base& operator=(const ctx_after_func_base&) = delete;
  virtual ~ctx_after_func_base() = default;

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void attach() {
    if (reg == nullptr) return;  // a context that is never cancelled: f never runs
    retain();                    // the list's
    if (!reg->link(this)) {
      fire();
      release();
    }
  }

  // True if this stopped f from running.
  bool stop() noexcept {
    int armed = 0;
    if (!state_.compare_exchange_strong(armed, stopped, std::memory_order_acq_rel)) return false;
    if (reg != nullptr && reg->unlink(this)) release();
    return true;
  }

 protected:
  virtual void call() = 0;

 private:
  static constexpr int fired = 1, stopped = 2;

  void fire() {
    int armed = 0;
    if (!state_.compare_exchange_strong(armed, fired, std::memory_order_acq_rel)) return;
    runtime_for_go()->spawn([r = counted_ref(this)] { r->call(); },
                            runtime_impl::spawn_args{.name = "context.after_func"});
  }
  void parent_cancelled(std::error_code, std::error_code, ctx_chain&) noexcept override { fire(); }
  void release_link() noexcept override { release(); }

  std::atomic<std::size_t> refs_{1};
  std::atomic<int> state_{0};  // 0 armed, then fired or stopped
  ctx_handle ctx_;
};

template <class F>
class ctx_after_func final : public ctx_after_func_base {
 public:
  template <class G>
  ctx_after_func(ctx_handle ctx, G&& g) : ctx_after_func_base(std::move(ctx)), f_(std::forward<G>(g)) {}

 private:
  void call() override { f_(); }
  F f_;
};

struct ctx_access;

}  // namespace detail

// A context: done(), err(), deadline() and value(). Copies share one node. A
// default-constructed context is background() (Go has no usable zero Context;
// this is the useful choice for members of a class).
class context {
 public:
  context() noexcept : h_(detail::ctx_background()) {}
  context(const context&) noexcept = default;
  context& operator=(const context&) noexcept = default;
  // A moved-from context is background(), never a dangling handle.
  context(context&& o) noexcept : h_(std::move(o.h_)) { o.h_ = detail::ctx_handle(detail::ctx_background()); }
  context& operator=(context&& o) noexcept {
    if (this != &o) {
      h_ = std::move(o.h_);
      o.h_ = detail::ctx_handle(detail::ctx_background());
    }
    return *this;
  }

  // The root of every tree: never cancelled, no values, no deadline.
  static context background() noexcept { return context(detail::ctx_background()); }
  // The same as background(), for code that does not yet know which context
  // to use.
  static context todo() noexcept { return context(detail::ctx_todo()); }

  // Closed when this context is cancelled. The nil channel (never ready) for
  // one that cannot be cancelled: background(), todo(), without_cancel().
  recv_chan<unit> done() const {
    detail::ctx_cancel_node* c = h_.get()->canceller;
    if (c == nullptr) return nil;
    return c->done();
  }
  // {} while live; then errc::canceled or errc::deadline_exceeded.
  std::error_code err() const noexcept {
    detail::ctx_cancel_node* c = h_.get()->canceller;
    return c != nullptr ? c->err() : std::error_code{};
  }
  // When it will be cancelled by a deadline: its own or an ancestor's.
  std::optional<steady_time> deadline() const noexcept { return h_.get()->deadline; }
  // The value of the nearest with_value for key, or null.
  template <class T>
  const T* value(const context_key<T>& key) const noexcept {
    for (const detail::ctx_node* n = h_.get(); n != nullptr; n = n->parent) {
      if (n->key == &key) return static_cast<const T*>(n->value());
    }
    return nullptr;
  }

 private:
  friend struct detail::ctx_access;
  explicit context(detail::ctx_node* adopt) noexcept : h_(adopt) {}
  detail::ctx_handle h_;
};

namespace detail {

struct ctx_access {
  static ctx_node* node(const context& c) noexcept { return c.h_.get(); }
  // The parent's handle, moved into a new child (the moved-from context is
  // left as background()).
  static ctx_node* take(context& c) noexcept {
    ctx_node* n = c.h_.release();
    c.h_ = ctx_handle(ctx_background());
    return n;
  }
  static context adopt(ctx_node* n) noexcept { return context(n); }
};

// A handle on a cancellable node, for cancel_func and cancel_cause_func.
class ctx_canceller_handle {
 public:
  ctx_canceller_handle() noexcept = default;
  explicit ctx_canceller_handle(ctx_cancel_node* n) noexcept : h_(n) {
    n->handles.fetch_add(1, std::memory_order_relaxed);
  }
  void cancel(std::error_code cause) const noexcept {
    if (auto* n = static_cast<ctx_cancel_node*>(h_.get())) n->cancel(errc::canceled, cause, true);
  }

 private:
  ctx_handle h_;
};

// For tests: how many cancellable children and after_func registrations hang
// off the context's nearest cancellable node.
inline std::size_t context_child_count(const context& c) noexcept {
  ctx_cancel_node* n = ctx_access::node(c)->canceller;
  return n != nullptr ? n->child_count() : 0;
}

inline std::pair<context, ctx_cancel_node*> new_cancel_node(
    context& parent, std::optional<steady_time> deadline = std::nullopt) {
  auto* n = new ctx_cancel_node(ctx_access::node(parent));
  ctx_access::take(parent);  // n now holds the parent's handle
  if (deadline) n->deadline = deadline;
  context ctx = ctx_access::adopt(n);
  n->attach();
  return {std::move(ctx), n};
}

}  // namespace detail

// Cancels its context: idempotent, thread-safe, callable from any fiber or
// thread, and a no-op when default-constructed.
class cancel_func {
 public:
  cancel_func() noexcept = default;
  void operator()() const noexcept { h_.cancel({}); }

 private:
  friend std::pair<context, cancel_func> with_cancel(context);
  template <class Clock, class Dur>
  friend std::pair<context, cancel_func> with_deadline(context, std::chrono::time_point<Clock, Dur>);
  explicit cancel_func(detail::ctx_cancel_node* n) noexcept : h_(n) {}
  detail::ctx_canceller_handle h_;
};

// with_cancel_cause's function: f(cause) cancels with that cause ({} means
// errc::canceled, as Go's nil); err() still says canceled.
class cancel_cause_func {
 public:
  cancel_cause_func() noexcept = default;
  void operator()(std::error_code cause) const noexcept { h_.cancel(cause); }

 private:
  friend std::pair<context, cancel_cause_func> with_cancel_cause(context);
  explicit cancel_cause_func(detail::ctx_cancel_node* n) noexcept : h_(n) {}
  detail::ctx_canceller_handle h_;
};

// A child cancelled when cancel is called or the parent is cancelled.
inline std::pair<context, cancel_func> with_cancel(context parent) {
  auto [ctx, n] = detail::new_cancel_node(parent);
  return {std::move(ctx), cancel_func(n)};
}

inline std::pair<context, cancel_cause_func> with_cancel_cause(context parent) {
  auto [ctx, n] = detail::new_cancel_node(parent);
  return {std::move(ctx), cancel_cause_func(n)};
}

// A child also cancelled, with errc::deadline_exceeded, at d. A parent whose
// deadline is earlier governs (then this is with_cancel, as Go); a deadline
// already past cancels the child before this returns.
template <class Clock, class Dur>
std::pair<context, cancel_func> with_deadline(context parent, std::chrono::time_point<Clock, Dur> d) {
  static_assert(std::is_same_v<Clock, std::chrono::steady_clock>,
                "gofer::with_deadline: deadlines are std::chrono::steady_clock time points");
  const auto when = std::chrono::time_point_cast<steady_time::duration>(d);
  if (auto pd = parent.deadline(); pd && *pd <= when) return with_cancel(std::move(parent));
  auto [ctx, n] = detail::new_cancel_node(parent, when);
  cancel_func cancel(n);
  const auto left = when - std::chrono::steady_clock::now();
  if (left <= steady_time::duration::zero()) {
    n->cancel(errc::deadline_exceeded, {}, true);
  } else if (!n->cancelled()) {
    n->set_timer(gofer::after_func(left, detail::ctx_deadline_fire(n)));
  }
  return {std::move(ctx), std::move(cancel)};
}

// with_deadline(parent, now + d), saturating: a huge d is no deadline to
// speak of rather than an overflow into the past.
template <class Rep, class Period>
std::pair<context, cancel_func> with_timeout(context parent, std::chrono::duration<Rep, Period> d) {
  const std::int64_t ns = detail::duration_ns(d);  // clamped to [0, never]
  const steady_time now = std::chrono::steady_clock::now();
  const steady_time when = ns >= std::chrono::nanoseconds(steady_time::max() - now).count()
                               ? steady_time::max()
                               : now + std::chrono::nanoseconds(ns);
  return with_deadline(std::move(parent), when);
}

// A child carrying value for key. T comes from the key, not the argument, so
// with_value(ctx, string_key, "x") stores a std::string.
template <class T>
context with_value(context parent, const context_key<T>& key, std::type_identity_t<T> value) {
  auto* n = new detail::ctx_value_node<T>(detail::ctx_access::node(parent), &key, std::move(value));
  detail::ctx_access::take(parent);
  return detail::ctx_access::adopt(n);
}

// A child with the parent's values that is never cancelled and has no
// deadline (Go's WithoutCancel).
inline context without_cancel(context parent) {
  auto* n = new detail::ctx_detached_node(detail::ctx_access::node(parent));
  detail::ctx_access::take(parent);
  return detail::ctx_access::adopt(n);
}

// Why ctx was cancelled: the cause given to a cancel_cause_func (or inherited
// from the ancestor whose cancellation reached ctx); otherwise err().
inline std::error_code cause(const context& ctx) {
  detail::ctx_cancel_node* c = detail::ctx_access::node(ctx)->canceller;
  if (c == nullptr || !ctx.err()) return {};
  return c->cause();
}

// Go's AfterFunc's stop function, as a handle. Copies refer to one
// registration; destroying them does not stop f.
class after_func_handle {
 public:
  after_func_handle() noexcept = default;
  after_func_handle(const after_func_handle& o) noexcept : a_(o.a_) {
    if (a_ != nullptr) a_->retain();
  }
  after_func_handle(after_func_handle&& o) noexcept : a_(std::exchange(o.a_, nullptr)) {}
  after_func_handle& operator=(after_func_handle o) noexcept {
    std::swap(a_, o.a_);
    return *this;
  }
  ~after_func_handle() {
    if (a_ != nullptr) a_->release();
  }
  // Keeps f from running. True if this stopped it; false if f was started
  // already or stop() was called before.
  bool stop() noexcept { return a_ != nullptr && a_->stop(); }

 private:
  template <class F>
  friend after_func_handle after_func(context, F&&);
  explicit after_func_handle(detail::ctx_after_func_base* a) noexcept : a_(a) {}
  detail::ctx_after_func_base* a_ = nullptr;
};

// Runs f once, in a fiber of its own, after ctx is cancelled (at once if it is
// already). Go's context.AfterFunc.
template <class F>
after_func_handle after_func(context ctx, F&& f) {
  static_assert(std::is_invocable_v<std::decay_t<F>&>, "gofer::after_func: f must be callable as f()");
  detail::ctx_handle h(detail::ctx_access::take(ctx));
  auto* a = new detail::ctx_after_func<std::decay_t<F>>(std::move(h), std::forward<F>(f));
  after_func_handle handle(a);
  a->attach();
  return handle;
}

}  // namespace gofer
