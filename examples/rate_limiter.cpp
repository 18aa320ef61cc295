// A token-bucket rate limiter (Go's "rate limiting" pattern): a ticker drops a
// token into a buffered channel at a steady rate, and each request takes one
// before it is served. A burst up to the bucket's size passes at once; after
// that, requests go at the ticker's pace. A token that finds the bucket full
// is dropped, so idle time does not bank more than a burst.
#include <gofer/gofer.hpp>

#include <chrono>
#include <cstdio>

int main() {
  using namespace std::chrono;
  using namespace std::chrono_literals;
  return gofer::run([] {
    constexpr int burst = 3, requests = 9;
    constexpr auto every = 20ms;

    gofer::chan<gofer::unit> tokens(burst);
    for (int i = 0; i < burst; ++i) tokens.send({});  // the bucket starts full

    // The clock starts before the ticker, so no tick can come early by it.
    const auto start = steady_clock::now();
    gofer::ticker tick(every);
    gofer::chan<gofer::unit> quit;
    gofer::wait_group refiller;
    refiller.add(1);
    gofer::go([&] {
      DEFER(refiller.done());
      for (bool stop = false; !stop;) {
        gofer::select(gofer::on_recv(tick.c(), [&] { tokens.try_send({}); }),
                      gofer::on_recv(quit, [&] { stop = true; }));
      }
    });

    int too_early = 0;
    for (int i = 1; i <= requests; ++i) {
      tokens.recv();
      const auto at = steady_clock::now() - start;
      std::printf("request %d served at %3lld ms\n", i,
                  static_cast<long long>(duration_cast<milliseconds>(at).count()));
      // Past the burst, request i cannot come before (i - burst) ticks.
      if (i > burst && at < (i - burst) * every) ++too_early;
    }
    quit.close();
    refiller.wait();
    tick.stop();
    if (too_early != 0) std::printf("%d requests beat the limit\n", too_early);
    return too_early == 0 ? 0 : 1;
  });
}
