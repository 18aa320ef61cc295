// main returns while fibers wait on sockets: one in accept, one in read on a
// connection whose peer is silent, one in write to a peer that never reads
// (its buffers full), and the peer's own side parked in read too. As a Go
// server ends when main returns, the program ends at once, with main's output
// and nothing on stderr.
//
// Each fiber owns its socket, as each goroutine of a Go server owns its
// conn. A socket that was main's local would be closed as main's frame
// unwinds, and the fiber reading it would wake to an exception (see "main's
// end" in docs/go-to-gofer.md).
#include <gofer/gofer.hpp>

#include "parked.hpp"

#include <cstdio>
#include <string>
#include <vector>

int main() {
  return gofer::run([] {
    auto l = gofer::net::listener::listen("127.0.0.1:0");
    const std::string addr = "127.0.0.1:" + std::to_string(l.port());
    auto quiet = gofer::net::dial(addr);
    auto flooded = gofer::net::dial(addr);
    auto server_quiet = l.accept();
    auto server_flooded = l.accept();

    gofer::go([l = std::move(l)]() mutable { l.accept(); });
    gofer::go([c = std::move(server_quiet)]() mutable {
      char buf[64];
      c.read(std::span<char>(buf));
    });
    gofer::go([c = std::move(quiet)]() mutable {
      char buf[64];
      c.read(std::span<char>(buf));
    });
    gofer::go([c = std::move(flooded)]() mutable {
      const std::vector<char> chunk(1 << 16, 'x');
      for (;;) c.write(std::string_view(chunk.data(), chunk.size()));
    });
    gofer::go([c = std::move(server_flooded)] {  // holds the other end open, never reading
      gofer::chan<> never;
      never.recv();
    });
    until_parked(3, "IO wait (read)");
    until_parked(1, "IO wait (write)");
    std::printf("main returns while 4 fibers wait on sockets\n");
  });
}
