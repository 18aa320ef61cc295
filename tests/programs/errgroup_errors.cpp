// Errors through an err_group, the ways Go code returns them from g.Go: a
// std::error_code for an error that is a code, an exception for one that
// carries a message (Go's fmt.Errorf("fetch %s: %w", url, err)), including a
// type of the program's own whose fields the caller reads back. wait()
// returns the first error_code, or rethrows the first exception as its own
// type. SetLimit bounds the fibers running at once (go() waits for a free
// slot, try_go() says no), and the group's context is cancelled by the first
// failure, which the other tasks see.
#include <gofer/gofer.hpp>

#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>

namespace {

// An error with fields, as a Go program defines a struct type implementing error.
struct fetch_error : std::runtime_error {
  fetch_error(std::string u, int s) : std::runtime_error("fetch " + u + ": status " + std::to_string(s)), url(std::move(u)), status(s) {}
  std::string url;
  int status;
};

}  // namespace

int main() {
  return gofer::run([] {
    {
      gofer::err_group g;
      g.go([] { return std::error_code{}; });
      g.go([] { return std::make_error_code(std::errc::permission_denied); });
      std::error_code e = g.wait();
      std::printf("error_code: %s\n", e.message().c_str());
    }
    {
      gofer::err_group g;
      std::atomic<int> saw_cancel{0};
      g.go([] {
        gofer::this_fiber::yield();
        throw fetch_error("https://example.com/missing", 404);
      });
      for (int i = 0; i < 3; ++i) {
        g.go([&] {
          g.ctx().done().recv();  // works until the group gives up
          saw_cancel.fetch_add(1);
        });
      }
      try {
        g.wait();
      } catch (const fetch_error& e) {
        std::printf("exception: %s (url %s, status %d)\n", e.what(), e.url.c_str(), e.status);
      }
      std::printf("tasks that saw the group's context cancelled: %d\n", saw_cancel.load());
    }
    {
      gofer::err_group g;
      g.set_limit(2);
      std::atomic<int> running{0}, most{0};
      gofer::chan<> gate;
      for (int i = 0; i < 2; ++i) {
        g.go([&] {
          int now = running.fetch_add(1) + 1;
          for (int m = most.load(); now > m && !most.compare_exchange_weak(m, now);) {}
          gate.recv();
          running.fetch_sub(1);
        });
      }
      std::printf("try_go with both slots taken: %s\n", g.try_go([] {}) ? "STARTED" : "refused");
      gofer::go([gate] { gate.close(); });
      for (int i = 0; i < 10; ++i) {
        g.go([&] {  // waits for a free slot
          int now = running.fetch_add(1) + 1;
          for (int m = most.load(); now > m && !most.compare_exchange_weak(m, now);) {}
          gofer::this_fiber::yield();
          running.fetch_sub(1);
        });
      }
      std::error_code e = g.wait();
      std::printf("limit 2: %s at once; %s\n", most.load() <= 2 ? "never more than 2" : "MORE than 2",
                  e ? e.message().c_str() : "no error");
    }
  });
}
