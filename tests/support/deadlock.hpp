// Helpers for tests of what a deadlock leaves behind: run() reports it and
// throws deadlock_error in the main fiber, and the program may go on.
#pragma once

#include <chrono>
#include <cstdlib>
#include <functional>
#include <gofer/gofer.hpp>

#include "subprocess.hpp"

namespace gofer::test {

// Starts a fiber that runs `take` (a lock, say) and then sleeps for good;
// returns once `take` has returned.
inline void hold_for_good(const std::function<void()>& take) {
  gofer::chan<int> taken(1);
  gofer::go([take, taken] {
    take();
    taken.send(1);
    gofer::chan<int>(gofer::nil).recv();
  });
  taken.recv();
}

// In a child process: gofer::run(main), which must end in a deadlock_error;
// then `after` checks what is left and returns the child's exit status (0
// when all is well; 1 means run() did not report a deadlock).
inline child_result run_into_deadlock(const std::function<void()>& main,
                                      const std::function<int()>& after) {
  return run_in_child(
      [&] {
        try {
          gofer::run(main);
        } catch (const gofer::deadlock_error&) {
          std::_Exit(after());
        }
        std::_Exit(1);
      },
      std::chrono::seconds(20));
}

}  // namespace gofer::test
