// GOFER_DEFER / DEFER: scope exit, LIFO, also during unwinding.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include <gofer/defer.hpp>

TEST_CASE("defers run at scope exit in LIFO order", "[defer]") {
  std::string log;
  {
    GOFER_DEFER(log += "a");
    DEFER(log += "b");
    log += "body;";
  }
  CHECK(log == "body;ba");
}

TEST_CASE("defers run when an exception unwinds the scope", "[defer]") {
  std::string log;
  try {
    DEFER(log += "cleanup");
    throw std::runtime_error("x");
  } catch (const std::runtime_error&) {
    log += ";caught";
  }
  CHECK(log == "cleanup;caught");
}

TEST_CASE("a defer in a loop body runs every iteration", "[defer]") {
  int closed = 0;
  for (int i = 0; i < 3; ++i) {
    DEFER(++closed);
    CHECK(closed == i);
  }
  CHECK(closed == 3);
}

TEST_CASE("a defer sees variables by reference at exit time", "[defer]") {
  int v = 1;
  int seen = 0;
  {
    DEFER(seen = v);
    v = 2;
  }
  CHECK(seen == 2);
}
