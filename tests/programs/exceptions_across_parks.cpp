// Exceptions caught, held and rethrown across parks, as ordinary C++ code
// does once it runs in fibers: a handler that logs over a channel or sleeps
// before retrying, a `throw;` after such a wait, a destructor that waits for
// something while the stack unwinds. The C++ runtime keeps the exceptions
// being handled, and the count of those in flight, per thread; a fiber that
// parks inside a handler may resume on another thread, or find another fiber
// has thrown on its own in between. Each fiber must still see its own.
#include <gofer/gofer.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

namespace {

std::atomic<int> wrong{0};

void expect(bool ok, const char* what, int id) {
  if (!ok) {
    wrong.fetch_add(1);
    std::fprintf(stderr, "fiber %d: %s\n", id, what);
  }
}

std::string message_of(const std::exception_ptr& p) {
  try {
    std::rethrow_exception(p);
  } catch (const std::exception& e) {
    return e.what();
  }
}

// Parks the calling fiber one way or another.
void park(int id, int round) {
  switch ((id + round) % 3) {
    case 0: gofer::this_fiber::yield(); break;
    case 1: gofer::this_fiber::sleep_for(100us); break;
    default: {
      gofer::chan<int> c;
      gofer::go([c] { c.send(1); });
      c.recv();
    }
  }
}

// Waits for something while the stack unwinds through it.
struct parks_when_destroyed {
  int id;
  ~parks_when_destroyed() {
    expect(std::uncaught_exceptions() == 1, "uncaught_exceptions() != 1 before parking in a destructor", id);
    park(id, 1);
    expect(std::uncaught_exceptions() == 1, "uncaught_exceptions() != 1 after parking in a destructor", id);
  }
};

void handler_parks_then_rethrows(int id) {
  const std::string mine = "error from fiber " + std::to_string(id);
  try {
    try {
      throw std::runtime_error(mine);
    } catch (const std::exception& e) {
      park(id, 0);
      expect(e.what() == mine, "the caught object changed across a park", id);
      expect(std::current_exception() != nullptr, "current_exception() empty after a park", id);
      if (auto p = std::current_exception()) expect(message_of(p) == mine, "current_exception() is another fiber's", id);
      try {
        park(id, 2);
        throw;  // rethrows the exception this handler is handling
      } catch (const std::runtime_error& again) {
        expect(again.what() == mine, "`throw;` rethrew another fiber's exception", id);
        throw;
      }
    }
  } catch (const std::runtime_error& outer) {
    park(id, 3);
    expect(outer.what() == mine, "the outer handler caught another fiber's exception", id);
  }
  expect(std::current_exception() == nullptr, "current_exception() not empty after the handlers", id);

  try {
    parks_when_destroyed guard{id};
    throw std::runtime_error(mine);
  } catch (const std::runtime_error& e) {
    expect(e.what() == mine, "unwinding through a parking destructor lost the exception", id);
  }
  expect(std::uncaught_exceptions() == 0, "uncaught_exceptions() not 0 at the end", id);
}

}  // namespace

int main() {
  return gofer::run([] {
    constexpr int fibers = 200;
    gofer::wait_group wg;
    wg.add(fibers);
    for (int i = 0; i < fibers; ++i) {
      gofer::go([&wg, i] {
        DEFER(wg.done());
        for (int round = 0; round < 3; ++round) handler_parks_then_rethrows(i);
      });
    }
    // main too holds an exception while the others run.
    try {
      throw std::logic_error("main's own");
    } catch (const std::logic_error& e) {
      wg.wait();
      expect(std::string(e.what()) == "main's own", "main's exception changed while it waited", -1);
      expect(std::current_exception() != nullptr, "main's current_exception() empty after waiting", -1);
    }
    std::printf("%d fibers x 3 rounds: %s\n", fibers, wrong.load() == 0 ? "every fiber saw its own exception" : "WRONG");
    return wrong.load() == 0 ? 0 : 1;
  });
}
