// The floor for benchmarks/http_load: the least work a server can do per
// request on this kernel, so that the load generator's own ceiling and the
// kernel's share of a request show beside gofer's and Go's figures.
//
// One thread, no runtime: edge-triggered epoll, and per readable event one
// read and one write answering every request end ("\r\n\r\n") it holds with
// the same bytes examples/http_server sends for "/". It trusts its client:
// no parsing, no request bodies, no limits, no timeouts, and a write the
// socket cannot take whole drops the connection. It is a measuring stick, not
// a server: never expose it.
//
// Usage: epoll_hello [host:port] (default 127.0.0.1:0); prints the port.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

// What examples/http_server answers to "GET /": the same headers, in the
// same order, with the Date formatted once a second.
const std::string& response() {
  static std::string text;
  static std::time_t last = 0;
  std::time_t now = std::time(nullptr);
  if (now != last) {
    std::tm tm;
    gmtime_r(&now, &tm);
    char date[64];
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    text = std::string("HTTP/1.1 200 OK\r\nDate: ") + date +
           "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\r\n"
           "Hello, World!";
    last = now;
  }
  return text;
}

int listen_on(const char* spec) {
  std::string_view s = spec;
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos) {
    std::fprintf(stderr, "epoll_hello: address %s: missing port\n", spec);
    std::exit(1);
  }
  std::string host(s.substr(0, colon));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(spec + colon + 1)));
  if (inet_pton(AF_INET, host.empty() ? "0.0.0.0" : host.c_str(), &addr.sin_addr) != 1) {
    std::fprintf(stderr, "epoll_hello: address %s: not an IPv4 address\n", spec);
    std::exit(1);
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  if (listen(fd, SOMAXCONN) != 0) die("listen");
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("listening on %d\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  const int lfd = listen_on(argc > 1 ? argv[1] : "127.0.0.1:0");
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) die("epoll_ctl");

  // By fd: how many bytes of "\r\n\r\n" the connection's last read ended
  // with, so a request end split across reads still counts.
  std::vector<int> matched;
  epoll_event events[256];
  char buf[16384];
  std::string out;
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event cev{};
          cev.events = EPOLLIN | EPOLLET | EPOLLRDHUP;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          if (static_cast<std::size_t>(c) >= matched.size()) matched.resize(c + 1024);
          matched[c] = 0;
        }
        continue;
      }
      // Read until a read comes back short: the socket was empty then, and
      // any later data raises a new edge. No extra read to see EAGAIN.
      bool gone = false;
      for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
          gone = r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
          break;
        }
        int& m = matched[fd];
        out.clear();
        for (ssize_t k = 0; k < r; ++k) {
          const char want = (m % 2 == 0) ? '\r' : '\n';
          if (buf[k] == want) {
            if (++m == 4) {
              out += response();
              m = 0;
            }
          } else {
            m = buf[k] == '\r' ? 1 : 0;
          }
        }
        if (!out.empty() &&
            send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
          gone = true;
          break;
        }
        if (r < static_cast<ssize_t>(sizeof buf)) break;
      }
      if (gone) {
        close(fd);
      }
    }
  }
}
