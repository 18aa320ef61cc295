// For the programs that end while other fibers are in a given state: waits
// until the fiber dump shows at least n fibers parked (with `reason` in their
// wait reason, e.g. "sleep", "chan receive"), so that main returns while they
// are certainly there, not probably. Gives up loudly after ten seconds.
#pragma once

#include <gofer/gofer.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>

inline int count_parked(std::string_view reason = {}) {
  std::ostringstream dump;
  gofer::dump_fibers(dump);
  const std::string text = dump.str();
  const std::string needle = "[waiting: " + std::string(reason);
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

inline void until_parked(int n, std::string_view reason = {}) {
  using namespace std::chrono_literals;
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (count_parked(reason) < n) {
    if (std::chrono::steady_clock::now() > give_up) {
      std::ostringstream dump;
      gofer::dump_fibers(dump);
      std::fprintf(stderr, "never saw %d fibers parked on \"%.*s\":\n%s", n, static_cast<int>(reason.size()),
                   reason.data(), dump.str().c_str());
      std::exit(1);
    }
    gofer::this_fiber::sleep_for(100us);
  }
}
