// Timeouts everywhere, as Go programs bound every wait: select against
// time.After (Go by Example's "Timeouts"), a loop that ends after a spell of
// silence, context deadlines (their own, inherited, already past), a socket
// read deadline and a semaphore acquire bounded by a context. Each timeout
// here is either certain to fire (nothing can arrive first) or certain not
// to matter (the value is already there), so the output is fixed.
#include <gofer/gofer.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

int main() {
  return gofer::run([] {
    // A result that comes too late: the worker answers only after main has
    // given up.
    gofer::chan<std::string> c1(1);
    gofer::chan<> release;
    gofer::go([c1, release] {
      release.recv();
      c1.send("result 1");
    });
    gofer::select(gofer::on_recv(c1, [](std::optional<std::string> r) { std::printf("%s\n", r->c_str()); }),
                  gofer::on_timeout(5ms, [] { std::printf("timeout 1\n"); }));
    release.close();

    // A result that is there in time.
    gofer::chan<std::string> c2(1);
    gofer::go([c2] { c2.send("result 2"); });
    gofer::select(gofer::on_recv(c2, [](std::optional<std::string> r) { std::printf("%s\n", r->c_str()); }),
                  gofer::on_timeout(1h, [] { std::printf("timeout 2\n"); }));

    // Receive until the sender falls silent for 5 ms. Its five values are
    // all buffered before the loop starts, so none can be late: a select
    // takes its timeout only when no channel case is ready.
    gofer::chan<int> ticks(5);
    gofer::chan<> sent;
    gofer::go([ticks, sent] {
      for (int i = 0; i < 5; ++i) ticks.send(i);
      sent.close();
      gofer::chan<> never;
      never.recv();  // quiet from now on, but never closes
    });
    sent.recv();
    int got = 0;
    for (bool quiet = false; !quiet;)
      gofer::select(gofer::on_recv(ticks, [&] { ++got; }), gofer::on_timeout(5ms, [&] { quiet = true; }));
    std::printf("received %d before the silence\n", got);

    // A context deadline ends a wait on something that never comes.
    {
      auto [ctx, cancel] = gofer::with_timeout(gofer::context::background(), 5ms);
      gofer::chan<int> never;
      gofer::select(gofer::on_recv(never), gofer::on_recv(ctx.done()));
      std::printf("context: %s\n", ctx.err().message().c_str());

      // A child asking for an hour inherits its parent's 5 ms, and is
      // cancelled with it.
      auto [child, cancel_child] = gofer::with_timeout(ctx, 1h);
      std::printf("child deadline is the parent's: %s; child: %s\n",
                  child.deadline() == ctx.deadline() ? "yes" : "no", child.err().message().c_str());
    }
    {
      auto [ctx, cancel] = gofer::with_deadline(gofer::context::background(), std::chrono::steady_clock::now() - 1s);
      std::printf("a deadline already past: %s\n", ctx.err() == gofer::errc::deadline_exceeded ? "cancelled at once" : "LIVE");
    }

    // A read deadline on a socket whose peer says nothing.
    {
      auto l = gofer::net::listener::listen("127.0.0.1:0");
      auto c = gofer::net::dial("127.0.0.1:" + std::to_string(l.port()));
      auto peer = l.accept();
      c.set_read_deadline(std::chrono::steady_clock::now() + 5ms);
      char buf[16];
      try {
        c.read(std::span<char>(buf));
        std::printf("read returned\n");
      } catch (const std::system_error& e) {
        std::printf("read: %s\n", e.code() == std::errc::timed_out ? "timed out" : e.what());
      }
    }

    // A semaphore whose holder never lets go, waited for under a deadline.
    {
      gofer::semaphore sem(2);
      sem.acquire(2);
      auto [ctx, cancel] = gofer::with_timeout(gofer::context::background(), 5ms);
      std::error_code e = sem.acquire(ctx, 1);
      std::printf("semaphore: %s\n", e ? e.message().c_str() : "acquired");
    }
  });
}
