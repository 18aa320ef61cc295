// Read access to the state words of gofer's locks, for tests that check a
// lock is left exactly as it should be (the friend declared in mutex.hpp).
#pragma once

#include <cstdint>
#include <gofer/sync/mutex.hpp>
#include <gofer/sync/rw_mutex.hpp>

namespace gofer::detail {

struct sync_inspector {
  static constexpr std::uint32_t mutex_locked = gofer::mutex::locked;
  static constexpr std::int32_t max_readers = gofer::rw_mutex::max_readers;

  static std::uint32_t state(const gofer::mutex& m) { return m.state_.load(); }
  static std::uint32_t sema(const gofer::mutex& m) { return m.sema_.load(); }

  static std::int32_t reader_count(const gofer::rw_mutex& rw) { return rw.reader_count_.load(); }
  static std::int32_t reader_wait(const gofer::rw_mutex& rw) { return rw.reader_wait_.load(); }
  static std::uint32_t reader_sem(const gofer::rw_mutex& rw) { return rw.reader_sem_.load(); }
  static std::uint32_t writer_sem(const gofer::rw_mutex& rw) { return rw.writer_sem_.load(); }
  static const gofer::mutex& writers(const gofer::rw_mutex& rw) { return rw.w_; }
};

}  // namespace gofer::detail
