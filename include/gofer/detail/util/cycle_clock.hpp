// A timestamp that costs about a nanosecond (the CPU's cycle counter), for
// "waiting since" in fiber dumps, where a clock_gettime per park would be a
// visible share of a park's cost. Converted to nanoseconds only when a dump
// is printed, by a rate measured against the monotonic clock at that time.
#pragma once

#include <cstdint>
#include <ctime>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace gofer::detail {

inline std::uint64_t cycle_now() noexcept {
#if defined(__x86_64__)
  return __rdtsc();
#elif defined(__aarch64__)
  std::uint64_t v;
  asm volatile("mrs %0, cntvct_el0" : "=r"(v));
  return v;
#else
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + ts.tv_nsec;
#endif
}

// Ticks per nanosecond, measured once over ~10 ms (on first use: a dump).
inline double cycles_per_ns() noexcept {
  static const double rate = [] {
    auto mono = [] {
      timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    };
    std::int64_t t0 = mono();
    std::uint64_t c0 = cycle_now();
    timespec pause{0, 10'000'000};
    nanosleep(&pause, nullptr);
    std::int64_t t1 = mono();
    std::uint64_t c1 = cycle_now();
    double r = static_cast<double>(c1 - c0) / static_cast<double>(t1 - t0);
    return r > 0 ? r : 1.0;
  }();
  return rate;
}

// Nanoseconds elapsed since the cycle timestamp `then`.
inline std::int64_t cycles_since_ns(std::uint64_t then) noexcept {
  std::uint64_t now = cycle_now();
  if (now <= then) return 0;
  return static_cast<std::int64_t>(static_cast<double>(now - then) / cycles_per_ns());
}

}  // namespace gofer::detail
