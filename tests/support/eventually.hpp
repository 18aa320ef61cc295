// Bounded waits on the event itself: poll a condition, letting fibers run
// between polls, and give up after a deadline instead of hanging the suite.
// On failure the fibers are dumped, so a stuck test says where it is stuck.
#pragma once

#include <chrono>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>

#include <gofer/gofer.hpp>

namespace gofer::test {

inline constexpr std::chrono::seconds default_patience{20};

// ThreadSanitizer tracks every fiber like a thread and stops at 8128 of them
// (and runs ten times slower): stress sizes shrink under it.
template <class T>
constexpr T scaled(T n) {
#if GOFER_TSAN
  return n / 10 > 0 ? n / 10 : n;
#else
  return n;
#endif
}

template <class Pred>
bool eventually(Pred&& pred, std::chrono::milliseconds patience = default_patience) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::cerr << "eventually: condition still false after " << patience.count() << " ms\n";
      gofer::dump_fibers(std::cerr);
      return false;
    }
    if (gofer::this_fiber::in_fiber()) {
      gofer::this_fiber::sleep_for(std::chrono::microseconds(200));
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  return true;
}

// How many fibers are parked for `reason`, as dump_fibers names it
// ("mutex.lock", "semaphore.acquire", ...): for tests that must not act
// until a fiber is really blocked, not merely about to block.
inline int fibers_waiting(std::string_view reason) {
  std::ostringstream dump;
  gofer::dump_fibers(dump);
  const std::string text = dump.str();
  const std::string needle = "[waiting: " + std::string(reason) + ",";
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace gofer::test
