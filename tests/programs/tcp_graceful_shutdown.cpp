// A TCP server that shuts down gracefully on SIGTERM, as Go servers do with
// signal.NotifyContext and http.Server.Shutdown: stop accepting, wake the
// idle connections so they close, let a request in flight finish and send
// its reply, then wait for every handler, bounded by a grace period. The
// program sends itself the signal once a slow request is in flight, and
// talks to the server over loopback on a port the kernel picks.
#include <gofer/gofer.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Reads one '\n'-terminated line; empty at the end of the stream.
std::string read_line(gofer::net::conn& c, std::string& pending) {
  char buf[256];
  for (;;) {
    if (auto nl = pending.find('\n'); nl != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      return line;
    }
    std::size_t n = c.read(std::span<char>(buf));
    if (n == 0) return {};
    pending.append(buf, n);
  }
}

struct server {
  gofer::net::listener l = gofer::net::listener::listen("127.0.0.1:0");
  gofer::context ctx;  // cancelled when the shutdown starts
  gofer::wait_group handlers;
  gofer::chan<> slow_started{1};
  std::atomic<int> served{0};

  void handle(std::shared_ptr<gofer::net::conn> c) {
    DEFER(handlers.done());
    // An idle connection is woken by a read deadline in the past when the
    // shutdown starts; a busy one finishes its request first.
    auto wake = gofer::after_func(ctx, [c] { c->set_read_deadline(std::chrono::steady_clock::now()); });
    DEFER(wake.stop());
    std::string pending;
    try {
      for (;;) {
        std::string line = read_line(*c, pending);
        if (line.empty()) return;  // the client hung up
        if (line == "slow") {
          slow_started.send({});
          gofer::this_fiber::sleep_for(20ms);  // the request's work, under way while the shutdown starts
        }
        c->write("done: " + line + "\n");
        served.fetch_add(1);
        if (ctx.err()) return;  // shutting down: no next request
      }
    } catch (const std::system_error& e) {
      if (!ctx.err()) throw;  // a real failure; the deadline was the shutdown's
    }
  }

  void accept_loop() {
    for (;;) {
      std::shared_ptr<gofer::net::conn> c;
      try {
        c = std::make_shared<gofer::net::conn>(l.accept());
      } catch (const std::system_error&) {
        return;  // the listener is closed: shutting down
      }
      handlers.add(1);
      gofer::go([this, c] { handle(c); });
    }
  }
};

}  // namespace

int main() {
  return gofer::run([] {
    gofer::chan<int> signals(1);
    gofer::notify_signals(signals, {SIGTERM});
    auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
    server s;
    s.ctx = ctx;
    const std::string addr = "127.0.0.1:" + std::to_string(s.l.port());
    gofer::wait_group accepting;
    accepting.add(1);
    gofer::go([&] {
      DEFER(accepting.done());
      s.accept_loop();
    });

    // Three clients that each make a request and then stay connected, idle.
    std::vector<gofer::net::conn> idle;
    for (int i = 1; i <= 3; ++i) {
      auto c = gofer::net::dial(addr);
      c.write("hello " + std::to_string(i) + "\n");
      std::string pending;
      std::printf("client %d got \"%s\"\n", i, read_line(c, pending).c_str());
      idle.push_back(std::move(c));
    }
    // A client whose request is in flight when the signal comes.
    auto slow = gofer::net::dial(addr);
    slow.write("slow\n");
    s.slow_started.recv();
    ::raise(SIGTERM);

    // The shutdown, as the signal starts it.
    std::printf("signal %s\n", *signals.recv() == SIGTERM ? "SIGTERM" : "other");
    cancel();
    s.l.close();
    gofer::chan<> stopped;
    gofer::go([&] {
      accepting.wait();
      s.handlers.wait();
      stopped.close();
    });
    gofer::select(gofer::on_recv(stopped, [] { std::printf("every handler returned\n"); }),
                  gofer::on_timeout(10s, [] { std::printf("grace period over, handlers still running\n"); }));

    std::string pending;
    std::printf("slow client got \"%s\" during the shutdown\n", read_line(slow, pending).c_str());
    for (auto& c : idle) {
      std::string rest;
      std::printf("idle client: %s\n", read_line(c, rest).empty() ? "closed by the server" : "got MORE");
    }
    try {
      gofer::net::dial(addr);
      std::printf("a new connection was accepted\n");
    } catch (const std::system_error&) {
      std::printf("new connections are refused\n");
    }
    std::printf("requests served: %d\n", s.served.load());
  });
}
