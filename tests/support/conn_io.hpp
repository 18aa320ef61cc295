// Reading a gofer::net::conn in the tests that talk to a server.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include <gofer/net.hpp>

namespace gofer::test {

// Reads exactly n bytes, or fewer if the connection ends first.
inline std::string read_n(gofer::net::conn& c, std::size_t n) {
  std::string s(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    std::size_t k = c.read(std::span<char>(s.data() + got, n - got));
    if (k == 0) break;
    got += k;
  }
  s.resize(got);
  return s;
}

}  // namespace gofer::test
