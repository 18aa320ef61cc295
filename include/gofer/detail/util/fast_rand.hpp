// A small, fast, seedable PRNG (wyrand) for steal order, select order and the
// randomised scheduling mode. Not for anything that needs to be unpredictable.
#pragma once

#include <cstdint>

namespace gofer::detail {

class fast_rand {
 public:
  explicit fast_rand(std::uint64_t seed = 0x9E3779B97F4A7C15ull) noexcept : state_(seed) {}
  std::uint64_t next() noexcept {
    state_ += 0xa0761d6478bd642full;
    __uint128_t m = static_cast<__uint128_t>(state_) * (state_ ^ 0xe7037ed1a0b428dbull);
    return static_cast<std::uint64_t>(m >> 64) ^ static_cast<std::uint64_t>(m);
  }
  // Uniform in [0, n) without division (Lemire's multiply-shift).
  std::uint32_t below(std::uint32_t n) noexcept {
    return static_cast<std::uint32_t>((static_cast<std::uint64_t>(next() & 0xffffffffu) * n) >> 32);
  }
  void seed(std::uint64_t s) noexcept { state_ = s; }

 private:
  std::uint64_t state_;
};

}  // namespace gofer::detail
