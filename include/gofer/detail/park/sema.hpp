// The runtime semaphore under mutex and rw_mutex, as Go's runtime/sema.go.
// (wait_group keeps a waiter stack of its own; see wait_group.hpp.)
//
// The count lives in the user's object; the queue of waiters does not: it is
// in a fixed table of roots hashed by the count's address. That is what makes
// the Go lifetimes hold: release() touches the user's object only before it
// makes a waiter able to return (a fetch_add, and try-acquires while a waiter
// for that address is still queued, which keeps the object alive), and after
// that only the root, which outlives everything. So a mutex may be destroyed
// the moment its waiter gets in, while the unlock that let it in is still
// inside release().
//
// Invariants (per root, under its lock): q holds the blocked waiters of every
// address hashing here, FIFO per address; nwait counts them. nwait is also
// read without the lock by release(): acquire() increments it before its last
// try, release() adds to the count before reading it, both sequentially
// consistent, so a release never misses a waiter that is about to block.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "gofer/detail/diag/deadlock_error.hpp"
#include "gofer/detail/park/waiter.hpp"
#include "gofer/detail/util/cache_line.hpp"
#include "gofer/detail/util/intrusive_list.hpp"
#include "gofer/detail/util/spinlock.hpp"

namespace gofer::detail {

struct alignas(cache_line) sema_root {
  spinlock mu;
  intrusive_list<waiter> q;          // guarded by mu
  std::atomic<std::uint32_t> nwait{0};
};

// 251, prime, as Go: spreads addresses that share low bits.
inline constexpr std::size_t sema_table_size = 251;
inline sema_root sema_table[sema_table_size];

inline sema_root& sema_root_for(const void* addr) noexcept {
  return sema_table[(reinterpret_cast<std::uintptr_t>(addr) >> 3) % sema_table_size];
}

inline bool sema_try_acquire(std::atomic<std::uint32_t>* addr) noexcept {
  std::uint32_t v = addr->load(std::memory_order_relaxed);
  while (v > 0) {
    if (addr->compare_exchange_weak(v, v - 1, std::memory_order_acquire,
                                    std::memory_order_relaxed))
      return true;
  }
  return false;
}

// Waits until *addr > 0, then decrements it. Throws deadlock_error if the
// deadlock detector interrupts the wait. A lifo waiter queues ahead of the
// others for its address: mutex uses it for a waiter that was woken, lost the
// race for the lock, and must not go back behind everyone who came later.
inline void sema_acquire(std::atomic<std::uint32_t>* addr, wait_reason reason,
                         bool lifo = false) {
  if (sema_try_acquire(addr)) return;
  maybe_yield_randomly();
  sema_root& root = sema_root_for(addr);
  waiter w;
  w.key = addr;
  root.mu.lock();
  root.nwait.fetch_add(1, std::memory_order_seq_cst);
  if (sema_try_acquire(addr)) {
    root.nwait.fetch_sub(1, std::memory_order_seq_cst);
    root.mu.unlock();
    return;
  }
  if (lifo) {
    // Ahead of the first waiter for the same address; waiters of other
    // addresses hashed to this root keep their places.
    waiter* first = root.q.front();
    while (first != nullptr && first->key != addr) first = root.q.next(first);
    if (first != nullptr) {
      root.q.insert_before(first, &w);
    } else {
      root.q.push_back(&w);
    }
  } else {
    root.q.push_back(&w);
  }
  bool interrupted;
  {
    abandon_scope unlink(w.f, [&] {
      std::lock_guard lk(root.mu);
      if (w.linked()) {
        root.q.remove(&w);
        root.nwait.fetch_sub(1, std::memory_order_seq_cst);
      }
    });
    interrupted = w.block(root.mu, reason);
  }
  if (!interrupted) return;  // granted: release() took the count for us
  root.mu.lock();
  if (w.linked()) {
    root.q.remove(&w);
    root.nwait.fetch_sub(1, std::memory_order_seq_cst);
  }
  root.mu.unlock();
  if (!w.granted) throw deadlock_error();
}

// Adds n to *addr and hands the count to up to n queued waiters, in order.
inline void sema_release(std::atomic<std::uint32_t>* addr, std::uint32_t n) noexcept {
  addr->fetch_add(n, std::memory_order_seq_cst);
  sema_root& root = sema_root_for(addr);
  if (root.nwait.load(std::memory_order_seq_cst) == 0) return;
  waiter* to_wake = nullptr;
  waiter** tail = &to_wake;
  root.mu.lock();
  for (waiter* w = root.q.front(); w != nullptr;) {
    waiter* next = root.q.next(w);
    if (w->key == addr) {
      if (!sema_try_acquire(addr)) break;
      root.q.remove(w);
      root.nwait.fetch_sub(1, std::memory_order_seq_cst);
      w->granted = true;
      *tail = w;
      tail = &w->wake_link;
    }
    w = next;
  }
  root.mu.unlock();
  while (to_wake != nullptr) {
    waiter* w = to_wake;
    to_wake = w->wake_link;
    w->wake();  // last touch of w
  }
}

}  // namespace gofer::detail
