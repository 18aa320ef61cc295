// Helper for tests of sync objects that die under fibers parked on them for
// good: a Go program may end with goroutines blocked on a WaitGroup or a Cond
// declared in a frame that has returned. The runtime that then ends must leave
// the dead object alone.
#pragma once

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <utility>

#include <gofer/gofer.hpp>

#include "eventually.hpp"
#include "subprocess.hpp"

namespace gofer::test {

// In a child process, in a runtime of one P: builds a T from `args` in raw
// memory, runs `park(T&)` in a fiber (which parks fibers on it) until
// `parked()` holds, destroys the T and refills its memory with ones, as a
// reused frame might be (a locked spinlock, a bogus pointer: a touch hangs or
// crashes the child), then ends the runtime. Exit status 0 when nothing
// touched the dead object, 2 when the fibers never parked.
template <class T, class... Args>
child_result end_runtime_over_dead(const std::function<void(T&)>& park,
                                   const std::function<bool()>& parked, Args&&... args) {
  return run_in_child(
      [&] {
        {
          gofer::runtime rt({.procs = 1});
          alignas(T) unsigned char mem[sizeof(T)];
          T* obj = ::new (static_cast<void*>(mem)) T(std::forward<Args>(args)...);
          rt.go([&] { park(*obj); });
          if (!eventually(parked)) std::_Exit(2);
          obj->~T();
          std::memset(mem, 0xff, sizeof mem);
        }
        std::_Exit(0);
      },
      std::chrono::seconds(20));
}

}  // namespace gofer::test
