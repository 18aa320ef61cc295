// Go by Example's "Timers" and "Tickers", and the Go 1.23 rules around them
// that programs come to rely on: a stopped timer never fires, a value that
// was due but not received is discarded by stop() and reset(), a stopped
// ticker sends nothing more, a reset ticker ticks at its new period. Where
// the program must show that something did not happen, it waits past the
// moment it would have: that wait is the point, and a few milliseconds long.
#include <gofer/gofer.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

namespace {

// Whether a value is ready on c now, taking it if so.
bool ready(const gofer::recv_chan<gofer::steady_time>& c) {
  return gofer::select(gofer::on_recv(c), gofer::on_default()) == 0;
}

}  // namespace

int main() {
  return gofer::run([] {
    gofer::timer timer1(2ms);
    timer1.c().recv();
    std::printf("Timer 1 fired\n");

    std::atomic<bool> fired2{false};
    gofer::timer timer2(20ms);
    gofer::go([c = timer2.c(), &fired2] {
      c.recv();
      fired2 = true;
    });
    if (timer2.stop()) std::printf("Timer 2 stopped\n");
    gofer::this_fiber::sleep_for(25ms);  // past the moment it would have fired
    std::printf("Timer 2 %s\n", fired2 ? "FIRED" : "never fired");

    gofer::ticker ticker(2ms);
    gofer::chan<> done;
    gofer::chan<int> ticks;
    gofer::go([&ticker, done, ticks] {
      int n = 0;
      // A tick may come before main stops the ticker: its report then
      // gives way to done, or main and this fiber would wait on each other.
      for (bool running = true; running;)
        gofer::select(gofer::on_recv(done, [&] { running = false; }), gofer::on_recv(ticker.c(), [&] {
                        ++n;
                        if (gofer::select(gofer::on_send(ticks, n), gofer::on_recv(done)) == 1) running = false;
                      }));
    });
    for (int i = 0; i < 3; ++i) std::printf("Tick %d\n", *ticks.recv());
    ticker.stop();
    done.send({});
    std::printf("Ticker stopped\n");
    gofer::this_fiber::sleep_for(5ms);  // two periods: a running ticker would have ticked
    std::printf("after stop: %s\n", ready(ticker.c()) ? "a TICK" : "no tick");

    // A value that was due but not received is discarded by stop().
    gofer::timer t3(1ms);
    gofer::this_fiber::sleep_for(3ms);
    const bool stopped = t3.stop();
    std::printf("stop after the due time returns %s; then %s\n", stopped ? "true" : "false",
                ready(t3.c()) ? "a STALE value" : "no stale value");

    // reset() rearms; the value due before it is not received.
    gofer::timer t4(1ms);
    gofer::this_fiber::sleep_for(3ms);
    t4.reset(1h);
    std::printf("reset after the due time: %s\n", ready(t4.c()) ? "a STALE value" : "no stale value");
    t4.reset(1ms);
    t4.c().recv();
    std::printf("reset to 1 ms: fired\n");

    // A ticker reset from an hour to 1 ms ticks.
    gofer::ticker slow(1h);
    slow.reset(1ms);
    slow.c().recv();
    slow.c().recv();
    slow.stop();
    std::printf("reset ticker ticked twice\n");

    // AfterFunc stopped in time never runs its function.
    std::atomic<int> ran{0};
    auto af = gofer::after_func(1h, [&] { ran.fetch_add(1); });
    std::printf("AfterFunc stop: %s; ran %d\n", af.stop() ? "true" : "false", ran.load());
    gofer::chan<> ran_soon;
    gofer::after_func(1ms, [ran_soon] { ran_soon.close(); });
    ran_soon.recv();
    std::printf("AfterFunc after 1 ms ran\n");
  });
}
