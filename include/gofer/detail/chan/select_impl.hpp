// select, as Go's selectgo (runtime/select.go).
//
// 1. Visit the channel cases in a random order (a fresh permutation per call,
//    so that among ready cases the choice is uniform) with every involved
//    channel locked, in address order so that two selects over the same
//    channels cannot deadlock each other. The first case that can proceed
//    does, and wins.
// 2. If none can and there is a default, take it. A timeout of zero counts as
//    ready here, as `case <-time.After(0)` would be a moment later.
// 3. Otherwise queue one waiter per case, all pointing at one chan_sync, and
//    park once; the locks are released only after the switch (the commit
//    step of park), and the timeout's timer armed there too. Whoever wakes the
//    select first claims its chan_sync (an atomic flag); a waker that finds a
//    waiter of an already-claimed select drops it and looks further.
// 4. After waking, lock the channels again and take the losing waiters off
//    their queues.
//
// No case loses a value: a send case's value is moved from only if it was
// delivered, and a receive case's slot is filled only for the winner.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>
#include <type_traits>
#include <utility>

#include "gofer/detail/chan/chan_ops.hpp"
#include "gofer/detail/chan/chan_state.hpp"
#include "gofer/detail/time/timer_heap.hpp"
#include "gofer/detail/util/fast_rand.hpp"
#include "gofer/this_fiber.hpp"

namespace gofer::detail {

enum class case_kind : std::uint8_t { recv, send, fallback, timeout };

// One case as the algorithm sees it, whatever its element type.
struct case_desc {
  case_kind kind = case_kind::recv;
  chan_base* c = nullptr;     // null: a nil channel (never ready)
  void* elem = nullptr;       // receive: std::optional<T>*; send: T*
  std::int64_t timeout_ns = 0;
};

struct select_result {
  std::size_t index;
  bool got;  // a receive: a value (false: closed and drained)
};

// Scratch space for one select over n cases. The waiters' storage is raw:
// they are constructed only if the select blocks, so a select that does not
// (the common case, and the whole point of a default) pays nothing for them.
struct select_scratch {
  std::span<std::uint16_t> order;  // n
  std::span<std::uint16_t> locks;  // n
  void* waiters;                   // room for n chan_waiters
};

template <std::size_t N>
struct waiter_storage {
  alignas(chan_waiter) unsigned char bytes[N * sizeof(chan_waiter)];
};
static_assert(std::is_trivially_destructible_v<chan_waiter>);

inline fast_rand& select_rng() noexcept {
  if (machine* m = current_machine(); m != nullptr && m->p != nullptr) return m->p->rng;
  thread_local fast_rand rng(reinterpret_cast<std::uintptr_t>(&rng) * 0x9E3779B97F4A7C15ull);
  return rng;
}

class select_locks {
 public:
  select_locks(const case_desc* cs, std::span<const std::uint16_t> order) noexcept
      : cs_(cs), order_(order) {}
  void lock() noexcept {
    chan_base* prev = nullptr;
    for (std::uint16_t i : order_) {
      chan_base* c = cs_[i].c;
      if (c != prev) c->mu.lock();
      prev = c;
    }
  }
  // Highest address first, and a channel that appears in several cases is
  // unlocked at its lowest position: so the last unlock is of the lowest
  // channel and is the very last thing this does. After a park, that is what
  // keeps the commit from reading this object and the order (both on the
  // parked fiber's stack) once the fiber may have been woken: it re-locks
  // from the lowest channel up, so it cannot get past that lock before the
  // commit is done. (Unlocking a repeated channel at its highest position
  // instead would leave reads of the lower entries after the last unlock.)
  void unlock() noexcept {
    for (std::size_t k = order_.size(); k-- > 0;) {
      chan_base* c = cs_[order_[k]].c;
      if (k > 0 && cs_[order_[k - 1]].c == c) continue;  // unlocked at k - 1
      c->mu.unlock();
    }
  }

 private:
  const case_desc* cs_;
  std::span<const std::uint16_t> order_;
};

// The timer of an on_timeout case: it competes with the channels to claim
// the select, and says when it no longer touches the select's stack.
struct select_timer : timer_node {
  chan_sync* sync = nullptr;
  std::atomic<bool> finished{false};
};

inline void select_timer_fire(timer_node* n, std::int64_t) {
  auto* t = static_cast<select_timer*>(n);
  chan_sync* sync = t->sync;
  if (sync->claim()) {
    sync->timed_out = true;
    fiber* f = sync->w.f;
    f->rt->ready(f);  // last touch: the select may return now
  } else {
    // A channel won; its waker wakes the select, which waits for this.
    t->finished.store(true, std::memory_order_release);
  }
}

inline select_result select_run(const case_desc* cs, std::size_t n, select_scratch s) {
  std::int64_t fallback = -1;
  std::int64_t timeout = -1;
  std::size_t npoll = 0;
  for (std::size_t i = 0; i < n; ++i) {
    switch (cs[i].kind) {
      case case_kind::fallback:
        fallback = static_cast<std::int64_t>(i);
        break;
      case case_kind::timeout:
        if (timeout < 0 || cs[i].timeout_ns < cs[static_cast<std::size_t>(timeout)].timeout_ns)
          timeout = static_cast<std::int64_t>(i);
        break;
      default:
        if (cs[i].c != nullptr) s.order[npoll++] = static_cast<std::uint16_t>(i);
    }
  }
  const std::int64_t deadline =
      timeout < 0 ? never : deadline_after_ns(cs[static_cast<std::size_t>(timeout)].timeout_ns);

  // One channel and a default: Go's selectnbsend / selectnbrecv, lock-free
  // when the channel is not ready.
  if (npoll == 1 && fallback >= 0 && timeout < 0) {
    const case_desc& d = cs[s.order[0]];
    if (d.kind == case_kind::send) {
      if (chan_try_send(d.c, d.elem)) return {s.order[0], false};
    } else {
      int r = chan_try_recv(d.c, d.elem);
      if (r != 0) return {s.order[0], r > 0};
    }
    return {static_cast<std::size_t>(fallback), false};
  }
  if (npoll == 0) {
    if (fallback >= 0) return {static_cast<std::size_t>(fallback), false};
    if (timeout >= 0) {
      sleep_until_ns(deadline);
      return {static_cast<std::size_t>(timeout), false};
    }
    block_forever(wait_reason::select_no_cases);
  }

  maybe_yield_randomly();
  // Poll order: a uniformly random permutation (Fisher-Yates).
  auto order = s.order.first(npoll);
  fast_rand& rng = select_rng();
  for (std::size_t i = npoll; i > 1; --i) {
    std::size_t j = rng.below(static_cast<std::uint32_t>(i));
    std::swap(order[i - 1], order[j]);
  }
  // Lock order: by channel address (insertion sort: n is small).
  auto locks = s.locks.first(npoll);
  std::copy(order.begin(), order.end(), locks.begin());
  for (std::size_t i = 1; i < npoll; ++i) {
    std::uint16_t x = locks[i];
    std::size_t j = i;
    for (; j > 0 && cs[locks[j - 1]].c > cs[x].c; --j) locks[j] = locks[j - 1];
    locks[j] = x;
  }
  select_locks all(cs, locks);
  all.lock();

  for (std::uint16_t i : order) {
    const case_desc& d = cs[i];
    chan_waiter* to_wake = nullptr;
    if (d.kind == case_kind::send) {
      if (d.c->closed_locked()) {
        all.unlock();
        throw_send_on_closed();
      }
      if (d.c->send_locked(d.elem, &to_wake)) {
        all.unlock();
        if (to_wake != nullptr) to_wake->sync->w.wake();
        return {i, false};
      }
    } else {
      bool got = false;
      if (d.c->recv_locked(d.elem, &got, &to_wake)) {
        all.unlock();
        if (to_wake != nullptr) to_wake->sync->w.wake();
        return {i, got};
      }
    }
  }
  if (fallback >= 0) {
    all.unlock();
    return {static_cast<std::size_t>(fallback), false};
  }
  if (timeout >= 0 && deadline <= monotonic_ns()) {
    all.unlock();
    return {static_cast<std::size_t>(timeout), false};
  }

  // Block on every case at once.
  chan_sync sync;
  sync.is_select = true;
  std::span<chan_waiter> ws(static_cast<chan_waiter*>(s.waiters), npoll);
  for (std::size_t k = 0; k < npoll; ++k) {
    const case_desc& d = cs[locks[k]];
    chan_waiter& w = *::new (static_cast<void*>(&ws[k])) chan_waiter;
    w.sync = &sync;
    w.c = d.c;
    w.elem = d.elem;
    w.case_index = locks[k];
    w.is_send = d.kind == case_kind::send;
    d.c->enqueue(&w);
  }
  select_timer timer;
  timer.sync = &sync;
  timer.when = deadline;
  timer.fire = &select_timer_fire;
  fiber* f = sync.w.f;
  if (f == nullptr) {
    all.unlock();
    if (timeout < 0) {
      sync.w.tp.park();
    } else if (!sync.w.tp.park_until(deadline, &monotonic_ns)) {
      if (sync.claim()) {
        sync.timed_out = true;
      } else {
        sync.w.tp.park();  // a waker claimed it first: wait until it is done with us
      }
    }
  } else {
    struct commit_args {
      select_locks* all;
      select_timer* timer;
      bool armed;
    } args{&all, &timer, timeout >= 0};
    abandon_scope unlink(f, [ws] {
      for (chan_waiter& w : ws) leave(w.c, &w);
    });
    park(
        [](void* a, fiber* self) {
          auto* c = static_cast<commit_args*>(a);
          // The timer first: once the locks are released a channel may claim
          // the select, and it may then return, timer and all.
          if (c->armed) self->rt->add_timer(c->timer);
          c->all->unlock();
          return true;
        },
        &args, wait_reason::select);
  }

  // Take the losing waiters off their queues.
  all.lock();
  bool orphans = false;
  for (chan_waiter& w : ws) {
    if (w.c->unlink(&w)) [[unlikely]]
      orphans = w.last_of_orphan = true;
  }
  all.unlock();
  if (orphans) [[unlikely]] {
    for (chan_waiter& w : ws)
      if (w.last_of_orphan) delete std::exchange(w.c, nullptr);
  }
  if (timeout >= 0 && f != nullptr && !sync.timed_out) {
    if (!timer_heap::remove(&timer)) {
      // It fired and lost: wait until it has stopped touching `sync`.
      for (int spins = 0; !timer.finished.load(std::memory_order_acquire); ++spins) {
        if (spins < 64) {
          cpu_relax();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  if (sync.timed_out) return {static_cast<std::size_t>(timeout), false};
  if (sync.fired == nullptr) {
    // Woken by the deadlock detector, which runs only when nothing else can
    // run: no waker can be on its way.
    throw deadlock_error();
  }
  chan_waiter* won = sync.fired;
  if (won->is_send && !won->success) throw_send_on_closed();
  return {won->case_index, won->success};
}

}  // namespace gofer::detail
