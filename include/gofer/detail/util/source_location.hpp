// The call site a `go`, `run` or leak_check records ("created by file:line"):
// std::source_location where the standard library provides it, otherwise the
// compilers' __builtin_FILE/__builtin_LINE behind the two member functions
// gofer reads, file_name() and line().
//
// The fallback is not hypothetical: libstdc++ 12 defines std::source_location
// only for compilers with __builtin_source_location, which clang gained in 15,
// so clang 14 on Debian 12 has the header but not the type.
#pragma once

#include <cstdint>
#include <version>
#if defined(__cpp_lib_source_location)
#include <source_location>
#endif

namespace gofer::detail {

// Always defined, so that the suite checks it under every compiler and not
// only under the one that needs it.
//
// current() is constexpr, not consteval as std::source_location::current is:
// clang 14 rejects a consteval function in a default argument ("cannot take
// address of consteval function"), and GCC 12 evaluates a consteval call there
// where the default argument is written rather than where it is used. As a
// constexpr function in a default argument, both compilers evaluate its own
// defaulted __builtin_* arguments at the outermost call: the user's line.
class builtin_source_location {
 public:
  static constexpr builtin_source_location current(
      const char* file = __builtin_FILE(), std::uint_least32_t line = __builtin_LINE()) noexcept {
    builtin_source_location l;
    l.file_ = file;
    l.line_ = line;
    return l;
  }

  constexpr builtin_source_location() noexcept = default;
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr std::uint_least32_t line() const noexcept { return line_; }

 private:
  const char* file_ = "";
  std::uint_least32_t line_ = 0;
};

#if defined(__cpp_lib_source_location)
using source_location = std::source_location;
#else
using source_location = builtin_source_location;
#endif

}  // namespace gofer::detail
