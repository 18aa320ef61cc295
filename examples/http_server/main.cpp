// An HTTP/1.1 server on gofer: one fiber per connection, graceful shutdown on
// SIGINT or SIGTERM.
//
//   http_server [address]        serve (default ":8080"; ":0" picks a port)
//   http_server --self-check     serve on a free port, make a request to it,
//                                shut down by SIGTERM, exit 0 if all went well
//
// It prints "listening on <port>" once it accepts connections.
#include <signal.h>

#include <cstdio>
#include <gofer/gofer.hpp>
#include <string>

#include "server.hpp"

namespace {

// One request over a fresh connection: GET / must answer 200 and the hello.
bool request_hello(std::uint16_t port) {
  auto c = gofer::net::dial("127.0.0.1:" + std::to_string(port));
  c.set_deadline(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  c.write(std::string_view("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
  std::string reply;
  char buf[1024];
  while (std::size_t n = c.read(std::span<char>(buf))) reply.append(buf, n);
  return reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0 && reply.ends_with("\r\n\r\nHello, World!");
}

}  // namespace

int main(int argc, char** argv) {
  const bool self_check = argc > 1 && std::string_view(argv[1]) == "--self-check";
  const std::string address = self_check ? "127.0.0.1:0" : (argc > 1 ? argv[1] : ":8080");
  return gofer::run([&] {
    auto listener = gofer::net::listener::listen(address);
    std::printf("listening on %u\n", listener.port());
    std::fflush(stdout);

    auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
    gofer::chan<int> signals(1);
    gofer::notify_signals(signals, {SIGINT, SIGTERM});
    gofer::go([&, cancel = cancel] {
      if (auto s = signals.recv()) std::fprintf(stderr, "signal %d: shutting down\n", *s);
      cancel();
    });

    bool ok = true;
    if (self_check) {
      gofer::go([&] {
        try {
          ok = request_hello(listener.port());
        } catch (const std::exception& e) {
          std::fprintf(stderr, "self-check: %s\n", e.what());
          ok = false;
        }
        ::kill(::getpid(), SIGTERM);
      });
    }
    http::server srv;
    srv.serve(listener, ctx);
    gofer::stop_signals(signals);
    std::fprintf(stderr, "served %lld requests\n", static_cast<long long>(srv.requests()));
    return ok ? 0 : 1;
  });
}
