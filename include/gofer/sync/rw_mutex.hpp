// rw_mutex: a reader/writer lock for fibers and threads, as Go's
// sync.RWMutex. SharedMutex: std::shared_lock and std::unique_lock work.
//
// Writers are never starved: once a writer asks, new readers wait behind it.
// The writer announces itself by subtracting max_readers from reader_count_
// (so every later lock_shared sees a negative count and parks), then waits
// for the readers that were already in. It learns how many from the same
// atomic step, and those readers count themselves out of reader_wait_ as they
// leave; the last one wakes the writer. Its unlock adds max_readers back and
// wakes the readers that queued meanwhile, then lets the next writer in.
//
// Writers exclude each other with a gofer::mutex, so they take turns with
// its fairness. A read lock costs one atomic add in and one out.
//
// As Go's, a lock is not owned, and a reader must not lock_shared again while
// holding a read lock: a writer queued between the two would deadlock them.
#pragma once

#include <atomic>
#include <cstdint>

#include "gofer/detail/diag/deadlock_error.hpp"
#include "gofer/detail/diag/panic.hpp"
#include "gofer/detail/park/sema.hpp"
#include "gofer/sync/mutex.hpp"

namespace gofer {

class rw_mutex {
 public:
  constexpr rw_mutex() noexcept = default;
  rw_mutex(const rw_mutex&) = delete;
  rw_mutex& operator=(const rw_mutex&) = delete;

  void lock_shared() {
    if (reader_count_.fetch_add(1, std::memory_order_acquire) < 0) [[unlikely]] {
      // A writer is pending: wait for its unlock to let us in.
      try {
        detail::sema_acquire(&reader_sem_, detail::wait_reason::rw_mutex_read);
      } catch (const deadlock_error&) {
        // Interrupted by the deadlock detector (see mutex::forget_waiter):
        // this reader counted itself in, and must not stay counted.
        reader_count_.fetch_sub(1, std::memory_order_relaxed);
        throw;
      }
    }
  }

  bool try_lock_shared() noexcept {
    std::int32_t c = reader_count_.load(std::memory_order_relaxed);
    while (c >= 0) {
      if (reader_count_.compare_exchange_weak(c, c + 1, std::memory_order_acquire,
                                              std::memory_order_relaxed))
        return true;
    }
    return false;
  }

  void unlock_shared() noexcept {
    std::int32_t r = reader_count_.fetch_sub(1, std::memory_order_release) - 1;
    if (r < 0) [[unlikely]]
      unlock_shared_slow(r);
  }

  void lock() {
    w_.lock();
    // Announce the writer; r is the number of readers already in.
    std::int32_t r = reader_count_.fetch_sub(max_readers, std::memory_order_acq_rel);
    if (r != 0 && reader_wait_.fetch_add(r, std::memory_order_acq_rel) + r != 0) {
      try {
        detail::sema_acquire(&writer_sem_, detail::wait_reason::rw_mutex_write);
      } catch (const deadlock_error&) {
        // Interrupted by the deadlock detector while readers held the lock
        // (they never leave: their fibers are asleep for good). Withdraw:
        // no writer pending, and the writers' mutex free again.
        reader_count_.fetch_add(max_readers, std::memory_order_relaxed);
        reader_wait_.store(0, std::memory_order_relaxed);
        w_.unlock();
        throw;
      }
    }
  }

  bool try_lock() noexcept {
    if (!w_.try_lock()) return false;
    std::int32_t none = 0;
    if (!reader_count_.compare_exchange_strong(none, -max_readers, std::memory_order_acquire,
                                               std::memory_order_relaxed)) {
      w_.unlock();
      return false;
    }
    return true;
  }

  void unlock() noexcept {
    std::int32_t r = reader_count_.fetch_add(max_readers, std::memory_order_release) + max_readers;
    if (r >= max_readers) detail::fatal("unlock of unlocked rw_mutex");
    // Let in the readers that arrived while we held it, then the next writer.
    if (r > 0) detail::sema_release(&reader_sem_, static_cast<std::uint32_t>(r));
    w_.unlock();
  }

 private:
  static constexpr std::int32_t max_readers = 1 << 30;

  void unlock_shared_slow(std::int32_t r) noexcept {
    if (r + 1 == 0 || r + 1 == -max_readers) detail::fatal("unlock of unlocked rw_mutex");
    // A writer is pending; the last of the readers it waits for wakes it.
    if (reader_wait_.fetch_sub(1, std::memory_order_acq_rel) - 1 == 0) {
      detail::sema_release(&writer_sem_, 1);
    }
  }

  friend struct detail::sync_inspector;  // tests look at the counts

  mutex w_;                                  // held by the writer, pending or active
  std::atomic<std::uint32_t> writer_sem_{0};  // the writer waits here for readers to leave
  std::atomic<std::uint32_t> reader_sem_{0};  // readers wait here for the writer to finish
  std::atomic<std::int32_t> reader_count_{0};  // readers in; minus max_readers if a writer is pending
  std::atomic<std::int32_t> reader_wait_{0};   // readers the pending writer still waits for
};

}  // namespace gofer
