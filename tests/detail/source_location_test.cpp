// The call site `go`, `run` and leak_check record: a defaulted parameter whose
// value is the caller's file and line, with std::source_location or with the
// compilers' builtins where the standard library lacks it (clang 14 with
// libstdc++ 12). The builtin form is checked under every compiler.
#include <catch2/catch.hpp>
#include <cstdint>
#include <gofer/detail/util/source_location.hpp>
#include <string_view>

namespace {

using gofer::detail::builtin_source_location;

builtin_source_location builtin_here(
    builtin_source_location l = builtin_source_location::current()) {
  return l;
}

// go's overloads are templates taking the location after a forwarding
// reference, and a constructor (leak_check) takes it too.
template <class F>
builtin_source_location builtin_after(
    F&&, builtin_source_location l = builtin_source_location::current()) {
  return l;
}

struct builtin_recorder {
  explicit builtin_recorder(int, builtin_source_location l = builtin_source_location::current())
      : where(l) {}
  builtin_source_location where;
};

gofer::detail::source_location here(
    gofer::detail::source_location l = gofer::detail::source_location::current()) {
  return l;
}

bool ends_with_this_file(const char* file) {
  return std::string_view(file).ends_with("source_location_test.cpp");
}

}  // namespace

TEST_CASE("builtin_source_location as a default argument is the caller's file and line",
          "[source_location]") {
  const std::uint_least32_t line = __LINE__ + 1;
  const builtin_source_location a = builtin_here();
  CHECK(a.line() == line);
  CHECK(ends_with_this_file(a.file_name()));

  const std::uint_least32_t line_b = __LINE__ + 1;
  const builtin_source_location b = builtin_after([] {});
  CHECK(b.line() == line_b);
  CHECK(ends_with_this_file(b.file_name()));

  const std::uint_least32_t line_c = __LINE__ + 1;
  const builtin_recorder c(1);
  CHECK(c.where.line() == line_c);
  CHECK(ends_with_this_file(c.where.file_name()));

  constexpr builtin_source_location d = builtin_source_location::current();
  CHECK(d.line() == __LINE__ - 1);
}

TEST_CASE("detail::source_location as a default argument is the caller's file and line",
          "[source_location]") {
  const std::uint_least32_t line = __LINE__ + 1;
  const gofer::detail::source_location a = here();
  CHECK(a.line() == line);
  CHECK(ends_with_this_file(a.file_name()));
}
