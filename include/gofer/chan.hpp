// Channels: Go's chan T, as a typed, reference-counted handle.
//
//   gofer::chan<int> c;         // make(chan int), unbuffered
//   gofer::chan<int> b(16);     // make(chan int, 16)
//   gofer::chan<int> n(gofer::nil);   // var n chan int: blocks forever
//   gofer::chan<> done;         // chan struct{}: stores no payload
//
// Copies of a chan refer to the same channel, as in Go; operations are const.
// send_chan<T> and recv_chan<T> are the directional views (chan<- T, <-chan T).
// Works between fibers, between OS threads, and across the two: a fiber that
// blocks parks, a thread that blocks sleeps on a futex.
#pragma once

#include <cstddef>
#include <iterator>
#include <optional>
#include <type_traits>
#include <utility>

#include "gofer/detail/chan/chan_ops.hpp"
#include "gofer/detail/chan/chan_state.hpp"
#include "gofer/errors.hpp"

namespace gofer {

struct nil_t {
  explicit constexpr nil_t(int) {}
};
inline constexpr nil_t nil{0};

// The element of chan<>: Go's struct{}.
struct unit {
  friend constexpr bool operator==(unit, unit) noexcept { return true; }
};

template <class T = unit>
class chan;
template <class T>
class send_chan;
template <class T>
class recv_chan;

namespace detail {

// The shared part of chan, send_chan and recv_chan: one counted reference to
// the channel's state (or none: the nil channel).
template <class T>
class chan_handle {
  static_assert(std::is_move_constructible_v<T>, "gofer::chan<T>: T must be movable");
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "gofer::chan<T>: T's move constructor must be noexcept (values are moved "
                "between fibers while the channel is locked)");
  static_assert(std::is_nothrow_destructible_v<T>, "gofer::chan<T>: T must not throw on destruction");

 public:
  chan_handle() noexcept = default;
  explicit chan_handle(chan_state<T>* s) noexcept : s_(s) {}
  chan_handle(const chan_handle& o) noexcept : s_(o.s_) {
    if (s_ != nullptr) s_->retain();
  }
  chan_handle(chan_handle&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  chan_handle& operator=(chan_handle o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~chan_handle() {
    if (s_ != nullptr) s_->release();
  }

  // The channel's state, for select and the views. Null for the nil channel.
  chan_state<T>* detail_state() const noexcept { return s_; }

  explicit operator bool() const noexcept { return s_ != nullptr; }
  std::size_t size() const noexcept { return s_ != nullptr ? s_->size() : 0; }
  std::size_t capacity() const noexcept { return s_ != nullptr ? s_->capacity() : 0; }

  friend bool operator==(const chan_handle& a, const chan_handle& b) noexcept {
    return a.s_ == b.s_;
  }

 protected:
  chan_handle share() const noexcept { return chan_handle(*this); }

  void do_send(T&& v) const { chan_send(s_, &v); }
  bool do_try_send(T&& v) const { return chan_try_send(s_, &v); }
  bool do_try_send_copy(const T& v) const {
    // Copy only when the send can go through: a full channel must not pay for
    // a copy it discards. The copy is made under no lock; whether it is
    // delivered is decided afresh.
    if (s_ == nullptr) return false;
    if (s_->send_would_block() && !s_->closed()) return false;
    T copy(v);
    return chan_try_send(s_, &copy);
  }
  std::optional<T> do_recv() const {
    std::optional<T> out;
    chan_recv(s_, &out);
    return out;
  }
  std::optional<T> do_try_recv() const {
    std::optional<T> out;
    chan_try_recv(s_, &out);
    return out;
  }
  void do_close() const {
    if (s_ == nullptr) throw closed_channel_error("gofer: close of nil channel");
    if (!s_->close()) throw closed_channel_error("gofer: close of closed channel");
  }
  bool is_closed() const noexcept { return s_ != nullptr && s_->closed(); }

 private:
  chan_state<T>* s_ = nullptr;
};

// for (T& v : ch): receives until the channel is closed and drained.
template <class T>
class chan_iterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  using pointer = T*;
  using reference = T&;

  chan_iterator() = default;
  explicit chan_iterator(chan_state<T>* c) : c_(c) { ++*this; }

  T& operator*() const noexcept { return *cur_; }
  T* operator->() const noexcept { return &*cur_; }
  chan_iterator& operator++() {
    cur_.reset();
    if (!chan_recv(c_, &cur_)) done_ = true;
    return *this;
  }
  void operator++(int) { ++*this; }
  friend bool operator==(const chan_iterator& it, std::default_sentinel_t) noexcept {
    return it.done_;
  }

 private:
  chan_state<T>* c_ = nullptr;
  mutable std::optional<T> cur_;
  bool done_ = false;
};

}  // namespace detail

template <class T>
class chan : public detail::chan_handle<T> {
  using base = detail::chan_handle<T>;

 public:
  // make(chan T, capacity); 0 is unbuffered. A capacity whose buffer's size
  // does not fit in a size_t throws std::length_error, as Go's make panics.
  explicit chan(std::size_t capacity = 0) : base(new detail::chan_state<T>(capacity)) {}
  // The nil channel: every send and receive blocks forever; never ready in select.
  chan(nil_t) noexcept {}

  // Blocks until a receiver takes v (unbuffered) or v is buffered. Throws
  // closed_channel_error if the channel is or becomes closed.
  void send(T v) const { this->do_send(std::move(v)); }
  // Blocks until a value arrives; std::nullopt once closed and drained.
  std::optional<T> recv() const { return this->do_recv(); }
  // Never blocks: false when the send would block, v then untouched. Throws
  // closed_channel_error on a closed channel.
  bool try_send(T&& v) const { return this->do_try_send(std::move(v)); }
  bool try_send(const T& v) const { return this->do_try_send_copy(v); }
  // Never blocks: std::nullopt when nothing is ready (empty, or closed and
  // drained; select with on_default tells the two apart).
  std::optional<T> try_recv() const { return this->do_try_recv(); }
  // Receivers drain what is buffered, then get std::nullopt; blocked senders
  // throw. Throws closed_channel_error if closed already or nil.
  void close() const { this->do_close(); }
  bool closed() const noexcept { return this->is_closed(); }

  detail::chan_iterator<T> begin() const { return detail::chan_iterator<T>(this->detail_state()); }
  std::default_sentinel_t end() const noexcept { return {}; }

  operator send_chan<T>() const noexcept { return send_chan<T>(this->share()); }
  operator recv_chan<T>() const noexcept { return recv_chan<T>(this->share()); }
};

// chan<- T: the sending end only.
template <class T>
class send_chan : public detail::chan_handle<T> {
  using base = detail::chan_handle<T>;
  friend class chan<T>;
  explicit send_chan(base b) noexcept : base(std::move(b)) {}

 public:
  send_chan(nil_t) noexcept {}

  void send(T v) const { this->do_send(std::move(v)); }
  bool try_send(T&& v) const { return this->do_try_send(std::move(v)); }
  bool try_send(const T& v) const { return this->do_try_send_copy(v); }
  void close() const { this->do_close(); }
};

// <-chan T: the receiving end only.
template <class T>
class recv_chan : public detail::chan_handle<T> {
  using base = detail::chan_handle<T>;
  friend class chan<T>;
  explicit recv_chan(base b) noexcept : base(std::move(b)) {}

 public:
  recv_chan(nil_t) noexcept {}

  std::optional<T> recv() const { return this->do_recv(); }
  std::optional<T> try_recv() const { return this->do_try_recv(); }
  bool closed() const noexcept { return this->is_closed(); }
  detail::chan_iterator<T> begin() const { return detail::chan_iterator<T>(this->detail_state()); }
  std::default_sentinel_t end() const noexcept { return {}; }
};

}  // namespace gofer
