// The exceptions gofer throws for misuse, with messages that say what was
// misused (Go panics with the same words).
#pragma once

#include <stdexcept>
#include <string>

#include "gofer/detail/diag/deadlock_error.hpp"

namespace gofer {

// A send on a closed channel, or a close of a closed or nil channel (Go's
// "send on closed channel", "close of closed channel", "close of nil channel").
class closed_channel_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {

[[noreturn]] inline void throw_send_on_closed() {
  throw closed_channel_error("gofer: send on closed channel");
}

}  // namespace detail

}  // namespace gofer
