// The state behind a channel handle, as Go's hchan (runtime/chan.go).
//
// Invariants, under `mu`:
//   - At most one of sendq and recvq holds waiters that can still proceed
//     (stale select waiters, already claimed by another case, may linger until
//     their owner removes them).
//   - recvq non-empty implies the buffer is empty; sendq non-empty implies the
//     buffer is full (for an unbuffered channel, "full" always holds).
//   - Once closed, nothing enters sendq, and both queues are emptied by close.
//
// A sender that finds a waiting receiver hands its value straight into the
// receiver's slot; a receiver that finds a waiting sender takes its value (or,
// when buffered and full, takes the head of the buffer and lets the sender's
// value in at the tail, so FIFO order holds). A value never passes through the
// buffer when someone is already waiting for it.
//
// count, nsendq, nrecvq and closed are written under mu but also read without
// it, by the non-blocking fast paths (a try_recv on an empty channel, a
// select with a default) and by size(). As in chan.go, such a read may be
// stale but never wrong in a way a caller could tell: closed never goes back
// to false, and a "nothing ready" answer was true at the moment of the read.
//
// Waking: whoever takes a waiter off a queue fills in its outcome and wakes it
// after releasing mu, and touches it no more after that (the waiter lives on
// the blocked party's stack).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "gofer/detail/park/waiter.hpp"
#include "gofer/detail/util/intrusive_list.hpp"
#include "gofer/detail/util/small_alloc.hpp"
#include "gofer/detail/util/spinlock.hpp"

namespace gofer::detail {

struct chan_waiter;

// One blocked send, receive or select: who to wake, and, for a select, which
// of its cases got there first.
struct chan_sync {
  waiter w;                         // the blocked fiber or thread
  bool is_select = false;
  std::atomic<bool> done{false};    // select only: claimed by the first waker
  chan_waiter* fired = nullptr;     // written by the winning waker before wake
  bool timed_out = false;           // select only: the on_timeout case won

  // True if the caller may complete this operation (always for a plain
  // send/recv; for a select, only for the first of its cases to get here).
  bool claim() noexcept {
    if (!is_select) return true;
    bool expected = false;
    return done.compare_exchange_strong(expected, true, std::memory_order_acq_rel,
                                        std::memory_order_acquire);
  }
};

class chan_base;

// One case of a blocked operation in one channel queue (Go's sudog).
struct chan_waiter : list_node {
  chan_sync* sync = nullptr;
  chan_base* c = nullptr;
  // A send: the T to move from. A receive: the std::optional<T> to fill.
  void* elem = nullptr;
  std::uint32_t case_index = 0;
  bool is_send = false;
  bool success = false;  // set by the waker: a value moved (false: closed)
  bool last_of_orphan = false;  // its select deletes c (see chan_base::release)
};

class chan_base {
 public:
  explicit chan_base(std::size_t cap) noexcept : cap_(cap) {}
  chan_base(const chan_base&) = delete;
  chan_base& operator=(const chan_base&) = delete;
  virtual ~chan_base() = default;
  // Made by one fiber and often freed by another, on another M.
  GOFER_SMALL_ALLOC_OPERATORS

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    {
      // The last handle is gone, but fibers may still be queued here, asleep
      // for good: they wait through a handle that died under them (captured
      // by reference from a frame that has returned, as main's when run()
      // ends with fibers left blocked). Each takes itself off when its
      // runtime ends or its select completes; the last one deletes the
      // channel (see unlink).
      std::lock_guard lk(mu);
      if (!sendq_.empty() || !recvq_.empty()) {
        orphaned_ = true;
        return;
      }
    }
    delete this;
  }

  // How many handles refer to the channel (a ticker stops once it alone does).
  std::uint32_t use_count() const noexcept { return refs_.load(std::memory_order_acquire); }
  std::size_t capacity() const noexcept { return cap_; }
  std::size_t size() const noexcept { return count_.load(std::memory_order_relaxed); }
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

  // Lock-free: true when a receive would certainly block right now (Go's
  // empty()). A false answer means only "maybe not".
  bool recv_would_block() const noexcept {
    if (cap_ == 0) return nsendq_.load(std::memory_order_acquire) == 0;
    return count_.load(std::memory_order_acquire) == 0;
  }
  // Lock-free: true when a send to an open channel would certainly block.
  bool send_would_block() const noexcept {
    if (cap_ == 0) return nrecvq_.load(std::memory_order_acquire) == 0;
    return count_.load(std::memory_order_acquire) == cap_;
  }

  // With mu held. Each either completes the operation (returning true, and
  // maybe a waiter to wake after mu is released) or leaves everything as it
  // was. A receive from a closed, drained channel completes with *got false.
  virtual bool recv_locked(void* slot, bool* got, chan_waiter** to_wake) noexcept = 0;
  virtual bool send_locked(void* value, chan_waiter** to_wake) noexcept = 0;

  // With mu held: queue a waiter for this channel.
  void enqueue(chan_waiter* cw) noexcept {
    if (cw->is_send) {
      sendq_.push_back(cw);
      nsendq_.store(nsendq_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    } else {
      recvq_.push_back(cw);
      nrecvq_.store(nrecvq_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
  }
  // With mu held: take a waiter out if it is still queued. True when that
  // was the last waiter of a channel no handle refers to any more: the
  // caller deletes it once it has released mu.
  [[nodiscard]] bool unlink(chan_waiter* cw) noexcept {
    if (!cw->linked()) return false;
    if (cw->is_send) {
      sendq_.remove(cw);
      nsendq_.store(nsendq_.load(std::memory_order_relaxed) - 1, std::memory_order_release);
    } else {
      recvq_.remove(cw);
      nrecvq_.store(nrecvq_.load(std::memory_order_relaxed) - 1, std::memory_order_release);
    }
    if (orphaned_ && sendq_.empty() && recvq_.empty()) [[unlikely]] {
      orphaned_ = false;  // decided once
      return true;
    }
    return false;
  }

  // Closes the channel: every queued receiver gets "closed", every queued
  // sender wakes to throw. Returns false if it was closed already.
  bool close() noexcept {
    chan_waiter* wake_list = nullptr;
    {
      std::lock_guard lk(mu);
      if (closed_.load(std::memory_order_relaxed)) return false;
      closed_.store(true, std::memory_order_release);
      for (auto* q : {&recvq_, &sendq_}) {
        while (chan_waiter* cw = pop(*q)) {
          cw->success = false;
          cw->sync->fired = cw;
          cw->next = reinterpret_cast<list_node*>(wake_list);  // free once unlinked
          wake_list = cw;
        }
      }
    }
    while (wake_list != nullptr) {
      chan_waiter* cw = wake_list;
      wake_list = reinterpret_cast<chan_waiter*>(static_cast<list_node*>(cw->next));
      cw->next = nullptr;
      cw->sync->w.wake();  // last touch of cw
    }
    return true;
  }

  std::size_t count_locked() const noexcept { return count_.load(std::memory_order_relaxed); }
  bool closed_locked() const noexcept { return closed_.load(std::memory_order_relaxed); }

  spinlock mu;

 protected:
  // With mu held: the first waiter of q that its operation lets us complete,
  // taken off q; stale select cases found on the way are dropped from q.
  chan_waiter* pop(intrusive_list<chan_waiter>& q) noexcept {
    while (chan_waiter* cw = q.front()) {
      // Never the last waiter of an orphan: the caller holds a handle.
      (void)unlink(cw);
      if (cw->sync->claim()) return cw;
    }
    return nullptr;
  }
  intrusive_list<chan_waiter>& sendq() noexcept { return sendq_; }
  intrusive_list<chan_waiter>& recvq() noexcept { return recvq_; }
  void set_count(std::size_t n) noexcept { count_.store(n, std::memory_order_release); }

 private:
  std::atomic<std::uint32_t> refs_{1};
  const std::size_t cap_;
  std::atomic<std::size_t> count_{0};        // values in the buffer
  std::atomic<std::uint32_t> nsendq_{0};     // sendq_.size(), for lock-free reads
  std::atomic<std::uint32_t> nrecvq_{0};
  std::atomic<bool> closed_{false};
  bool orphaned_ = false;                    // guarded by mu: see release()
  intrusive_list<chan_waiter> sendq_;        // guarded by mu
  intrusive_list<chan_waiter> recvq_;        // guarded by mu
};

// The typed part: the ring buffer and the moves between slots. An empty T
// (gofer::unit, chan<>) keeps only the count.
template <class T>
class chan_state final : public chan_base {
  static constexpr bool stores_nothing = std::is_empty_v<T> && std::is_trivially_copyable_v<T>;

 public:
  explicit chan_state(std::size_t cap) : chan_base(cap) {
    if constexpr (!stores_nothing) {
      // As Go's makechan panics: a buffer whose size does not fit in a
      // size_t (a negative capacity converted, say) must not wrap around to
      // a small allocation.
      if (cap > std::numeric_limits<std::size_t>::max() / sizeof(T))
        throw std::length_error("gofer: chan capacity out of range");
      if (cap > 0) buf_ = static_cast<T*>(allocate_buffer(cap));
    }
  }
  ~chan_state() override {
    if constexpr (!stores_nothing) {
      // Values still buffered are destroyed with the channel.
      std::size_t n = count_locked();
      for (std::size_t i = 0; i < n; ++i) buf_[(recvx_ + i) % capacity()].~T();
      if (buf_ != nullptr) free_buffer(buf_, capacity());
    }
  }

  bool recv_locked(void* slot, bool* got, chan_waiter** to_wake) noexcept override {
    auto* out = static_cast<std::optional<T>*>(slot);
    if (chan_waiter* s = pop(sendq())) {
      T* from = static_cast<T*>(s->elem);
      if (capacity() == 0) {
        out->emplace(std::move(*from));
      } else {
        // Full buffer: take the head, the sender's value goes in at the tail
        // (which is the slot just freed, as the ring is full).
        take_head(out);
        put_tail(std::move(*from));
        set_count(count_locked() + 1);
      }
      s->success = true;
      s->sync->fired = s;
      *to_wake = s;
      *got = true;
      return true;
    }
    if (count_locked() > 0) {
      take_head(out);
      *got = true;
      return true;
    }
    if (closed_locked()) {
      *got = false;
      return true;
    }
    return false;
  }

  bool send_locked(void* value, chan_waiter** to_wake) noexcept override {
    T* from = static_cast<T*>(value);
    if (chan_waiter* r = pop(recvq())) {
      static_cast<std::optional<T>*>(r->elem)->emplace(std::move(*from));
      r->success = true;
      r->sync->fired = r;
      *to_wake = r;
      return true;
    }
    if (count_locked() < capacity()) {
      put_tail(std::move(*from));
      set_count(count_locked() + 1);
      return true;
    }
    return false;
  }

 private:
  void take_head(std::optional<T>* out) noexcept {
    if constexpr (stores_nothing) {
      out->emplace();
    } else {
      T& v = buf_[recvx_];
      out->emplace(std::move(v));
      v.~T();
    }
    if (++recvx_ == capacity()) recvx_ = 0;
    set_count(count_locked() - 1);
  }
  void put_tail(T&& v) noexcept {
    if constexpr (!stores_nothing) ::new (static_cast<void*>(buf_ + sendx_)) T(std::move(v));
    if (++sendx_ == capacity()) sendx_ = 0;
  }

  // A small buffer comes from the same per-thread caches as the state (a
  // timer's channel, cap 1, is made and freed with every after()), rounded
  // up to their 64-byte granule.
  static bool small_buffer(std::size_t cap) noexcept {
    return alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__ && small_alloc::cached(cap * sizeof(T));
  }
  static void* allocate_buffer(std::size_t cap) {
    if (small_buffer(cap)) return small_alloc::allocate(cap * sizeof(T));
    return ::operator new(cap * sizeof(T), std::align_val_t{alignof(T)});
  }
  static void free_buffer(void* p, std::size_t cap) noexcept {
    if (small_buffer(cap)) return small_alloc::deallocate(p, cap * sizeof(T));
    ::operator delete(p, std::align_val_t{alignof(T)});
  }

  T* buf_ = nullptr;        // capacity() raw slots, the live ones from recvx_
  std::size_t recvx_ = 0;   // guarded by mu
  std::size_t sendx_ = 0;   // guarded by mu
};

}  // namespace gofer::detail
