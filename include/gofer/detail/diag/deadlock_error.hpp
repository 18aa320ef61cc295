// The exception run() raises in its main fiber when every fiber is asleep and
// nothing can wake one (Go's "all goroutines are asleep - deadlock!").
#pragma once

#include <stdexcept>

namespace gofer {

class deadlock_error : public std::runtime_error {
 public:
  deadlock_error() : std::runtime_error("gofer: all fibers are asleep - deadlock!") {}
};

}  // namespace gofer
