// select: Go's select statement.
//
//   std::size_t i = gofer::select(
//       gofer::on_recv(in, [&](std::optional<int> v) { ... }),  // nullopt: closed
//       gofer::on_send(out, 42, [&] { ... }),
//       gofer::on_timeout(100ms, [&] { ... }));
//
// Blocks until one case can proceed, runs that case's handler and returns its
// index. Among ready cases the choice is uniformly random; a case on the nil
// channel is never ready; on_default makes select non-blocking. A send case on
// a closed channel throws closed_channel_error, as Go panics.
//
// A case refers to its channel without owning it: keep the channel alive while
// the case is in use (a select_case, the dynamic form's type-erased case, does
// own a reference, so it may be kept and reused in later selects).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "gofer/chan.hpp"
#include "gofer/detail/chan/select_impl.hpp"

namespace gofer {

namespace detail {

struct no_handler {
  void operator()() const noexcept {}
};

template <class T, class F>
class recv_case {
 public:
  recv_case(chan_state<T>* c, F f) : c_(c), f_(std::move(f)) {}
  case_desc describe() noexcept {
    slot_.reset();
    return {case_kind::recv, c_, &slot_, 0};
  }
  void run(const select_result&) {
    if constexpr (std::is_invocable_v<F&, std::optional<T>>) {
      f_(std::move(slot_));
    } else {
      static_assert(std::is_invocable_v<F&>,
                    "on_recv handler must be callable as f() or f(std::optional<T>)");
      f_();
    }
  }
  chan_base* channel() const noexcept { return c_; }
  static constexpr case_kind describe_kind() noexcept { return case_kind::recv; }

 private:
  chan_state<T>* c_;
  F f_;
  std::optional<T> slot_;
};

template <class T, class F>
class send_case {
 public:
  send_case(chan_state<T>* c, T v, F f) : c_(c), value_(std::move(v)), f_(std::move(f)) {}
  case_desc describe() noexcept { return {case_kind::send, c_, &value_, 0}; }
  void run(const select_result&) {
    static_assert(std::is_invocable_v<F&>, "on_send handler must be callable as f()");
    f_();
  }
  chan_base* channel() const noexcept { return c_; }
  static constexpr case_kind describe_kind() noexcept { return case_kind::send; }
  // The value still to send (moved from once a select delivered it).
  T& value() noexcept { return value_; }

 private:
  chan_state<T>* c_;
  T value_;
  F f_;
};

template <class F>
class default_case {
 public:
  explicit default_case(F f) : f_(std::move(f)) {}
  case_desc describe() noexcept { return {case_kind::fallback, nullptr, nullptr, 0}; }
  void run(const select_result&) { f_(); }
  chan_base* channel() const noexcept { return nullptr; }

 private:
  F f_;
};

template <class F>
class timeout_case {
 public:
  timeout_case(std::int64_t ns, F f) : ns_(ns), f_(std::move(f)) {}
  case_desc describe() noexcept { return {case_kind::timeout, nullptr, nullptr, ns_}; }
  void run(const select_result&) { f_(); }
  chan_base* channel() const noexcept { return nullptr; }

 private:
  std::int64_t ns_;
  F f_;
};

template <class C>
struct is_case : std::false_type {};
template <class T, class F>
struct is_case<recv_case<T, F>> : std::true_type {};
template <class T, class F>
struct is_case<send_case<T, F>> : std::true_type {};
template <class F>
struct is_case<default_case<F>> : std::true_type {};
template <class F>
struct is_case<timeout_case<F>> : std::true_type {};

}  // namespace detail

// case v, ok := <-ch: f() or f(std::optional<T>) (std::nullopt: closed).
template <class T, class F = detail::no_handler>
detail::recv_case<T, F> on_recv(const chan<T>& ch, F f = {}) {
  return {ch.detail_state(), std::move(f)};
}
template <class T, class F = detail::no_handler>
detail::recv_case<T, F> on_recv(const recv_chan<T>& ch, F f = {}) {
  return {ch.detail_state(), std::move(f)};
}

// case ch <- v: f() once v is delivered. v converts to T.
template <class T, class F = detail::no_handler>
detail::send_case<T, F> on_send(const chan<T>& ch, std::type_identity_t<T> v, F f = {}) {
  return {ch.detail_state(), std::move(v), std::move(f)};
}
template <class T, class F = detail::no_handler>
detail::send_case<T, F> on_send(const send_chan<T>& ch, std::type_identity_t<T> v, F f = {}) {
  return {ch.detail_state(), std::move(v), std::move(f)};
}

// default: taken when no other case is ready; select then never blocks.
template <class F = detail::no_handler>
detail::default_case<F> on_default(F f = {}) {
  return detail::default_case<F>(std::move(f));
}

// case <-time.After(d): taken when no other case got ready within d.
template <class Rep, class Period, class F = detail::no_handler>
detail::timeout_case<F> on_timeout(std::chrono::duration<Rep, Period> d, F f = {}) {
  return {detail::duration_ns(d), std::move(f)};
}

// A case of any kind, type-erased, for the dynamic form (Go's reflect.Select).
// Owns a reference to its channel, and may be reused in later selects. A send
// case sends the same value each time, as a reflect.SelectCase does: it keeps
// a copy to send again. A value of a move-only type can be sent only once;
// a select given that case again throws std::logic_error.
class select_case {
 public:
  template <class C>
    requires detail::is_case<std::remove_cvref_t<C>>::value
  select_case(C&& c) : p_(std::make_unique<holder<std::remove_cvref_t<C>>>(std::forward<C>(c))) {}

  select_case(select_case&&) noexcept = default;
  select_case& operator=(select_case&&) noexcept = default;

  detail::case_desc describe() { return p_->describe(); }
  void run(const detail::select_result& r) { p_->run(r); }

 private:
  struct base {
    virtual ~base() = default;
    virtual detail::case_desc describe() = 0;
    virtual void run(const detail::select_result&) = 0;
  };
  // What a case needs to be selected again: nothing, except for a send, whose
  // delivery moved its value out. That is put back from a copy kept aside
  // before the case's next select.
  template <class C>
  struct reuse {
    explicit reuse(C&) {}
    void before_select(C&) {}
    void after_run() {}
  };
  template <class T, class F>
  struct reuse<detail::send_case<T, F>> {
    static constexpr bool resendable =
        std::is_copy_constructible_v<T> && std::is_copy_assignable_v<T>;
    explicit reuse(detail::send_case<T, F>& c) {
      if constexpr (resendable) kept.emplace(c.value());
    }
    void before_select(detail::send_case<T, F>& c) {
      if (!sent) return;
      if constexpr (resendable) {
        c.value() = *kept;
      } else {
        throw std::logic_error(
            "gofer: select: a send case of a move-only type was reused after it sent its value");
      }
      sent = false;
    }
    void after_run() { sent = true; }  // chosen means delivered
    std::optional<T> kept;
    bool sent = false;
  };
  template <class C>
  struct holder final : base {
    explicit holder(C c) : c_(std::move(c)), reuse_(c_) {
      if (detail::chan_base* ch = c_.channel()) ch->retain();
    }
    ~holder() override {
      if (detail::chan_base* ch = c_.channel()) ch->release();
    }
    detail::case_desc describe() override {
      reuse_.before_select(c_);
      return c_.describe();
    }
    void run(const detail::select_result& r) override {
      reuse_.after_run();
      c_.run(r);
    }
    C c_;
    reuse<C> reuse_;
  };
  std::unique_ptr<base> p_;
};

namespace detail {
template <>
struct is_case<select_case> : std::true_type {};

template <class C>
struct is_default_case : std::false_type {};
template <class F>
struct is_default_case<default_case<F>> : std::true_type {};
template <class C>
struct is_chan_case : std::false_type {};
template <class T, class F>
struct is_chan_case<recv_case<T, F>> : std::true_type {};
template <class T, class F>
struct is_chan_case<send_case<T, F>> : std::true_type {};

// One channel case and a default (Go's selectnbrecv / selectnbsend): when the
// channel is certainly not ready, take the default without touching a lock
// or building the general select. True if it did.
template <class C, class D>
bool default_if_not_ready(C& c, D& d) {
  const chan_base* ch = c.channel();
  const bool not_ready = ch == nullptr ||
                         (c.describe_kind() == case_kind::recv ? ch->recv_would_block()
                                                               : ch->send_would_block());
  // closed is read after readiness, as in chan.go: open at the later read
  // means open and not ready at the earlier one.
  if (!not_ready || (ch != nullptr && ch->closed())) return false;
  d.run(select_result{0, false});
  return true;
}
}  // namespace detail

// select {}: no case can ever proceed, so the caller parks for good (wait
// reason "select (no cases)"). A fiber so parked is asleep for the deadlock
// rule: if nothing else can run, run() reports the deadlock and this throws
// deadlock_error in main. When run()'s main returns it is abandoned like any
// other. A plain thread sleeps forever, as a Go program's main goroutine
// would. The return type is the other form's, so generic code may pass an
// empty pack; it never returns.
[[noreturn]] inline std::size_t select() {
  detail::block_forever(detail::wait_reason::select_no_cases);
}

// Blocks until one case can proceed, runs its handler, returns its index.
template <class... Cases>
  requires(sizeof...(Cases) > 0 && (detail::is_case<std::remove_cvref_t<Cases>>::value && ...))
std::size_t select(Cases&&... cases) {
  constexpr std::size_t n = sizeof...(Cases);
  static_assert(n < 65536, "too many select cases");
  if constexpr (n == 2) {
    auto&& [c0, c1] = std::forward_as_tuple(cases...);
    using C0 = std::remove_cvref_t<decltype(c0)>;
    using C1 = std::remove_cvref_t<decltype(c1)>;
    if constexpr (detail::is_chan_case<C0>::value && detail::is_default_case<C1>::value) {
      if (detail::default_if_not_ready(c0, c1)) return 1;
    } else if constexpr (detail::is_default_case<C0>::value && detail::is_chan_case<C1>::value) {
      if (detail::default_if_not_ready(c1, c0)) return 0;
    }
  }
  detail::case_desc descs[n] = {cases.describe()...};
  std::array<std::uint16_t, n> order;
  std::array<std::uint16_t, n> locks;
  detail::waiter_storage<n> waiters;
  const detail::select_result r = detail::select_run(descs, n, {order, locks, waiters.bytes});
  std::size_t i = 0;
  ((i++ == r.index ? (cases.run(r), 0) : 0), ...);
  return r.index;
}

// The dynamic form: the cases are chosen at run time.
inline std::size_t select(std::span<select_case> cases) {
  const std::size_t n = cases.size();
  if (n >= 65536) throw std::length_error("gofer: too many select cases");
  constexpr std::size_t small = 8;
  std::array<detail::case_desc, small> descs_small;
  std::array<std::uint16_t, 2 * small> idx_small;
  detail::waiter_storage<small> waiters_small;
  std::vector<detail::case_desc> descs_big;
  std::vector<std::uint16_t> idx_big;
  std::unique_ptr<detail::waiter_storage<1>[]> waiters_big;
  std::span<detail::case_desc> descs(descs_small.data(), n);
  std::span<std::uint16_t> idx(idx_small.data(), 2 * n);
  void* waiters = waiters_small.bytes;
  if (n > small) {
    descs_big.resize(n);
    idx_big.resize(2 * n);
    waiters_big = std::make_unique_for_overwrite<detail::waiter_storage<1>[]>(n);
    descs = descs_big;
    idx = idx_big;
    waiters = waiters_big.get();
  }
  if (n == 0) detail::block_forever(detail::wait_reason::select_no_cases);
  for (std::size_t i = 0; i < n; ++i) descs[i] = cases[i].describe();
  const detail::select_result r =
      detail::select_run(descs.data(), n, {idx.first(n), idx.subspan(n, n), waiters});
  cases[r.index].run(r);
  return r.index;
}

}  // namespace gofer
