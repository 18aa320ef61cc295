// counted_ref: one reference from construction to destruction, carried by a
// move, so a callable that is destroyed without running still gives it back.
#include <catch2/catch.hpp>

#include <utility>

#include <gofer/detail/util/counted_ref.hpp>

namespace {
struct counted {
  int refs = 1;
  void retain() { ++refs; }
  void release() { --refs; }
};
}  // namespace

TEST_CASE("counted_ref holds one reference, moves it, and gives it back once",
          "[counted_ref]") {
  counted c;
  {
    gofer::detail::counted_ref<counted> a(&c);
    CHECK(c.refs == 2);
    auto callable = [r = std::move(a)] { return r->refs; };
    CHECK(c.refs == 2);  // moved, not retained again
    CHECK(callable() == 2);
  }  // the callable is destroyed without having been asked to release
  CHECK(c.refs == 1);
}
