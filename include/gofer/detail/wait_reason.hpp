// Why a fiber is parked: shown by dump_fibers and the deadlock report.
//
// A closed list. Values are never reused or renumbered (add at the end), so a
// dump read next to an older build still means the same thing.
#pragma once

#include <cstdint>

namespace gofer::detail {

enum class wait_reason : std::uint8_t {
  none = 0,
  sleep = 1,
  wait_group = 2,
  chan_send = 3,
  chan_recv = 4,
  select = 5,
  select_no_cases = 6,
  mutex = 7,
  rw_mutex_read = 8,
  rw_mutex_write = 9,
  cond_var = 10,
  semaphore = 11,
  once = 12,
  blocking_call = 13,
  io_read = 14,
  io_write = 15,
  chan_nil = 16,
  timer = 17,
};

inline const char* wait_reason_name(wait_reason r) noexcept {
  switch (r) {
    case wait_reason::none: return "";
    case wait_reason::sleep: return "sleep";
    case wait_reason::wait_group: return "wait_group.wait";
    case wait_reason::chan_send: return "chan send";
    case wait_reason::chan_recv: return "chan receive";
    case wait_reason::select: return "select";
    case wait_reason::select_no_cases: return "select (no cases)";
    case wait_reason::mutex: return "mutex.lock";
    case wait_reason::rw_mutex_read: return "rw_mutex.lock_shared";
    case wait_reason::rw_mutex_write: return "rw_mutex.lock";
    case wait_reason::cond_var: return "cond_var.wait";
    case wait_reason::semaphore: return "semaphore.acquire";
    case wait_reason::once: return "once.call";
    case wait_reason::blocking_call: return "blocking call";
    case wait_reason::io_read: return "IO wait (read)";
    case wait_reason::io_write: return "IO wait (write)";
    case wait_reason::chan_nil: return "chan (nil)";
    case wait_reason::timer: return "timer";
  }
  return "?";
}

}  // namespace gofer::detail
