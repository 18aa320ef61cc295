// The mirror of the C++ runtime's per-thread exception state: it reads what
// std::current_exception() and std::uncaught_exceptions() read, and moving it
// out of the thread and back is all a fiber needs to keep its own, whichever
// C++ runtime (libstdc++ or libc++abi) the program is built with.
#include <catch2/catch.hpp>

#include <exception>
#include <stdexcept>
#include <thread>

#include <gofer/detail/arch/eh_globals.hpp>

namespace arch = gofer::detail::arch;

namespace {

struct tagged {
  int tag;
};

int tag_of(const std::exception_ptr& e) {
  if (!e) return -1;
  try {
    std::rethrow_exception(e);
  } catch (const tagged& t) {
    return t.tag;
  } catch (...) {
  }
  return -1;
}

}  // namespace

TEST_CASE("eh_globals is empty exactly when no exception is handled or unwinding", "[arch][eh]") {
  arch::eh_globals* g = arch::thread_eh_globals();
  CHECK(g == arch::thread_eh_globals());  // one per thread, for its lifetime
  CHECK(g->empty());
  try {
    throw tagged{1};
  } catch (const tagged&) {
    CHECK_FALSE(g->empty());
    CHECK(g->caught != nullptr);
    CHECK(g->uncaught == 0);
    void* outer = g->caught;
    try {
      throw tagged{2};
    } catch (const tagged&) {
      CHECK(g->caught != outer);  // the innermost first
    }
    CHECK(g->caught == outer);
  }
  CHECK(g->empty());

  struct reads_while_unwinding {
    arch::eh_globals* g;
    unsigned* uncaught;
    ~reads_while_unwinding() { *uncaught = g->uncaught; }
  };
  unsigned during = 0;
  try {
    reads_while_unwinding r{g, &during};
    throw tagged{3};
  } catch (const tagged&) {
  }
  CHECK(during == 1);
  CHECK(g->empty());

  arch::eh_globals* other = nullptr;
  std::thread([&] { other = arch::thread_eh_globals(); }).join();
  CHECK(other != g);
}

TEST_CASE("moving eh_globals out of the thread and back carries the exception", "[arch][eh]") {
  arch::eh_globals* g = arch::thread_eh_globals();
  int rethrown = -1;
  int meanwhile = -1;
  bool clean_meanwhile = false;
  try {
    throw tagged{7};
  } catch (const tagged& first) {
    // As a fiber switching away inside this handler.
    arch::eh_globals saved = *g;
    *g = arch::eh_globals{};
    clean_meanwhile = std::current_exception() == nullptr && std::uncaught_exceptions() == 0;
    // Whatever runs meanwhile handles exceptions of its own.
    try {
      throw tagged{8};
    } catch (const tagged&) {
      meanwhile = tag_of(std::current_exception());
    }
    CHECK(g->empty());
    // As the fiber resuming.
    *g = saved;
    try {
      throw;
    } catch (const tagged& again) {
      CHECK(&again == &first);
      rethrown = again.tag;
    }
  }
  CHECK(clean_meanwhile);
  CHECK(meanwhile == 8);
  CHECK(rethrown == 7);
  CHECK(g->empty());
}
