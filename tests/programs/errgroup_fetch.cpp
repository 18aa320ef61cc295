// errgroup with a context, as x/sync's example fetches URLs: every fetch runs
// in the group; the first failure cancels the group's context, which cuts
// off the fetches still waiting (context.AfterFunc closes their connection,
// as net/http aborts a request whose context ends), and wait() rethrows the
// failure with its message. The server is in the same program, on a loopback
// port the kernel picks.
#include <gofer/gofer.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// Reads until the peer closes, or until a newline when `line` is set.
std::string read_all(gofer::net::conn& c, bool line) {
  std::string got;
  char buf[512];
  while (std::size_t n = c.read(std::span<char>(buf))) {
    got.append(buf, n);
    if (line && got.find('\n') != std::string::npos) break;
  }
  return got;
}

// "GET <path>\n" -> a body, a "500" for /broken, and for /slow nothing until
// the client gives up.
void serve(gofer::net::listener& l) {
  for (;;) {
    gofer::net::conn c;
    try {
      c = l.accept();
    } catch (const std::system_error&) {
      return;  // closed
    }
    gofer::go([c = std::move(c)]() mutable {
      std::string req = read_all(c, true);
      if (req.rfind("GET ", 0) != 0 || req.find('\n') == std::string::npos) return;  // hung up before asking
      std::string path = req.substr(4, req.find('\n') - 4);
      if (path == "/slow") {
        read_all(c, false);  // holds the reply until the client hangs up
        return;
      }
      c.write(path == "/broken" ? std::string("500") : "200 body of " + path);
    });
  }
}

std::string fetch(const gofer::context& ctx, const std::string& addr, const std::string& path) {
  auto c = std::make_shared<gofer::net::conn>(gofer::net::dial(ctx, addr));
  auto stop = gofer::after_func(ctx, [c] { c->close(); });
  DEFER(stop.stop());
  c->write("GET " + path + "\n");
  std::string reply = read_all(*c, false);
  if (reply.rfind("200 ", 0) != 0) throw std::runtime_error("fetch " + path + ": server says " + reply);
  return reply.substr(4);
}

}  // namespace

int main() {
  return gofer::run([] {
    auto l = gofer::net::listener::listen("127.0.0.1:0");
    const std::string addr = "127.0.0.1:" + std::to_string(l.port());
    gofer::wait_group server;
    server.add(1);
    gofer::go([&] {
      DEFER(server.done());
      serve(l);
    });

    {
      gofer::err_group g;
      std::vector<std::string> paths = {"/a", "/b", "/c", "/d", "/e"};
      std::vector<std::string> bodies(paths.size());
      for (std::size_t i = 0; i < paths.size(); ++i)
        g.go([&, i] { bodies[i] = fetch(g.ctx(), addr, paths[i]); });
      g.wait();
      for (const std::string& b : bodies) std::printf("%s\n", b.c_str());
    }

    {
      gofer::err_group g;
      std::atomic<int> cut_off{0};
      for (int i = 0; i < 3; ++i) {
        g.go([&] {
          try {
            fetch(g.ctx(), addr, "/slow");
          } catch (const std::system_error&) {
            if (g.ctx().err() == gofer::errc::canceled) cut_off.fetch_add(1);
            throw;
          }
        });
      }
      g.go([&] { fetch(g.ctx(), addr, "/broken"); });
      try {
        g.wait();
        std::printf("no error\n");
      } catch (const std::runtime_error& e) {
        std::printf("error: %s\n", e.what());
      }
      std::printf("slow fetches cut off by the cancelled context: %d\n", cut_off.load());
    }

    l.close();
    server.wait();
  });
}
