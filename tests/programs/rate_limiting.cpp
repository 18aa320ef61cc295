// Go by Example, "Rate Limiting": requests served one per tick of a
// time.Tick channel, then a bursty limiter that lets three through at once
// and refills from a ticker. The refilling fiber runs forever, as in Go: main
// ends while it waits on its ticker or on the full limiter.
//
// Go's version ticks every 200 ms; this one every 5 ms. A tick never comes
// early, so request k of the steady stream is served no sooner than k ticks
// after the ticker was made, and the bursty ones after the first three wait a
// tick each. Those lower bounds are what the program checks: they hold
// however slow the machine is.
#include <gofer/gofer.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

int main() {
  return gofer::run([] {
    constexpr auto period = 5ms;
    int late = 0;

    gofer::chan<int> requests(5);
    for (int i = 1; i <= 5; ++i) requests.send(i);
    requests.close();

    const auto start = std::chrono::steady_clock::now();
    auto limiter = gofer::tick(period);
    for (int req : requests) {
      limiter.recv();
      const auto served = std::chrono::steady_clock::now();
      const bool on_time = served - start >= req * period;
      late += on_time ? 0 : 1;
      std::printf("request %d%s\n", req, on_time ? "" : " served EARLY");
    }

    gofer::chan<std::chrono::steady_clock::time_point> bursty_limiter(3);
    for (int i = 0; i < 3; ++i) bursty_limiter.send(std::chrono::steady_clock::now());
    const auto burst_start = std::chrono::steady_clock::now();
    gofer::go([bursty_limiter, period] {
      for (auto t : gofer::tick(period)) bursty_limiter.send(t);
    });

    gofer::chan<int> bursty_requests(5);
    for (int i = 1; i <= 5; ++i) bursty_requests.send(i);
    bursty_requests.close();
    for (int req : bursty_requests) {
      bursty_limiter.recv();
      const auto served = std::chrono::steady_clock::now();
      // The first three go at once; each later one waits for a tick.
      const bool on_time = req <= 3 || served - burst_start >= (req - 3) * period;
      late += on_time ? 0 : 1;
      std::printf("bursty request %d%s\n", req, on_time ? "" : " served EARLY");
    }
    return late == 0 ? 0 : 1;
  });
}
