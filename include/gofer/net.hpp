// gofer::net: TCP listeners and connections whose blocking calls park only the
// calling fiber (Go's net package, over the runtime's epoll netpoller).
//
// Every socket is non-blocking. An operation first tries the system call; on
// EAGAIN it parks on the socket's poll_desc until epoll reports an edge, the
// deadline passes or the socket is closed, then tries again. From a plain
// thread the same calls block the thread, served by the default runtime's
// netpoller.
//
// Errors are std::system_error. A passed deadline throws one whose code
// compares equal to std::errc::timed_out, from every call in its direction,
// even one that would not have to wait; the conn stays usable, and moving the
// deadline lets the next call go ahead, as in Go. Using a closed conn
// or listener throws errc::bad_file_descriptor ("use of closed network
// connection", Go's net.ErrClosed).
//
// Concurrency: any number of fibers may use one conn at once, as in Go; reads
// are serialised among themselves, and so are writes, so each write's bytes
// go out contiguously.
//
// A socket belongs to the runtime it was made in (a plain thread's, to the
// default runtime): that runtime's netpoller wakes its waiters. Closing or
// destroying it after that runtime has ended is safe; reading, writing or
// accepting on it then is not (nothing would ever wake the call).
#pragma once

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "gofer/blocking.hpp"
#include "gofer/context.hpp"
#include "gofer/detail/net/poll_desc.hpp"
#include "gofer/runtime.hpp"
#include "gofer/sync/mutex.hpp"

namespace gofer::net {

namespace detail {

using gofer::detail::io_dir;
using gofer::detail::io_wait_result;
using gofer::detail::poll_desc;

[[noreturn]] inline void throw_errno(int e, const std::string& what) {
  throw std::system_error(e, std::generic_category(), what);
}

[[noreturn]] inline void throw_closed(const char* op) {
  throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor),
                          std::string(op) + ": use of closed network connection");
}

[[noreturn]] inline void throw_timeout(const char* op) {
  throw std::system_error(std::make_error_code(std::errc::timed_out),
                          std::string(op) + ": i/o timeout");
}

// The runtime whose netpoller serves sockets made here: the calling fiber's,
// or the default runtime's for a plain thread.
inline gofer::detail::runtime_impl* poll_runtime() { return gofer::detail::runtime_for_go(); }

struct sock_addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
};

inline std::string format(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  std::uint16_t port = 0;
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return "?";
}

// Splits "host:port", "[v6]:port" or ":port" (Go's net.SplitHostPort), and
// checks the port.
inline void split_host_port(std::string_view address, std::string& host, std::string& port) {
  auto bad = [&](const char* why) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "address " + std::string(address) + ": " + why);
  };
  if (!address.empty() && address.front() == '[') {
    auto close = address.find(']');
    if (close == std::string_view::npos) bad("missing ']'");
    if (close + 1 >= address.size() || address[close + 1] != ':') bad("missing port");
    host = std::string(address.substr(1, close - 1));
    port = std::string(address.substr(close + 2));
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos) bad("missing port");
    host = std::string(address.substr(0, colon));
    if (host.find(':') != std::string::npos) bad("too many colons");
    port = std::string(address.substr(colon + 1));
  }
  if (port.empty()) bad("missing port");
  // A decimal number in 0..65535, as Go's parsePort takes it. getaddrinfo
  // would read it with strtoul and keep the low 16 bits: ":99999" would
  // listen on 34463, ":-1" on 65535.
  unsigned long n = 0;
  for (char c : port) {
    if (c < '0' || c > '9') bad("invalid port");
    n = n * 10 + static_cast<unsigned long>(c - '0');
    if (n > 65535) bad("invalid port");
  }
}

// Resolves an address to every address it names, in getaddrinfo's order of
// preference. Numeric hosts are parsed here; names go through getaddrinfo on
// a blocking-call thread. An empty host means every local address when
// listening (dual-stack [::] where the kernel allows it) and the loopback
// address when dialling, as in Go.
inline std::vector<sock_addr> resolve_all(std::string_view address, bool passive) {
  std::string host, port;
  split_host_port(address, host, port);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  const char* node = host.empty() ? nullptr : host.c_str();
  if (host.empty() && passive) hints.ai_family = AF_INET6;  // [::], dual-stack
  addrinfo* res = nullptr;
  hints.ai_flags |= AI_NUMERICHOST;
  int rc = ::getaddrinfo(node, port.c_str(), &hints, &res);
  if (rc == EAI_NONAME && node != nullptr) {
    hints.ai_flags &= ~AI_NUMERICHOST;
    rc = gofer::blocking([&] { return ::getaddrinfo(node, port.c_str(), &hints, &res); });
  }
  if (rc != 0) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "address " + std::string(address) + ": " + ::gai_strerror(rc));
  }
  std::vector<sock_addr> all;
  for (const addrinfo* r = res; r != nullptr; r = r->ai_next) {
    if (r->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sock_addr a;
    std::memcpy(&a.ss, r->ai_addr, r->ai_addrlen);
    a.len = r->ai_addrlen;
    all.push_back(a);
  }
  ::freeaddrinfo(res);
  if (all.empty()) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "address " + std::string(address) + ": no address");
  }
  return all;
}

// The one address to listen on: the first IPv4 one if there is one, as Go's
// Listen("tcp", ...) picks ("localhost:80" listens on 127.0.0.1, not ::1).
inline sock_addr resolve(std::string_view address, bool passive) {
  std::vector<sock_addr> all = resolve_all(address, passive);
  for (const sock_addr& a : all)
    if (a.ss.ss_family == AF_INET) return a;
  return all.front();
}

template <class Clock, class Dur>
std::int64_t to_monotonic_ns(std::chrono::time_point<Clock, Dur> t) {
  if (t == std::chrono::time_point<Clock, Dur>::max()) return gofer::detail::never;
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    return ns < 0 ? 0 : ns;
  } else {
    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(t - Clock::now()).count();
    return gofer::detail::deadline_after_ns(left);
  }
}

// Holds one in-flight operation on a descriptor (see poll_desc::refs).
class op_guard {
 public:
  op_guard(poll_desc* pd, const char* op) : pd_(pd) {
    if (pd_ == nullptr || !pd_->begin_op()) throw_closed(op);
  }
  ~op_guard() { pd_->end_op(); }
  op_guard(const op_guard&) = delete;
  op_guard& operator=(const op_guard&) = delete;

 private:
  poll_desc* pd_;
};

inline int new_socket(int family) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, "socket");
  return fd;
}

// What a conn and a listener share: the descriptor and its poll_desc, closed
// by close() or the destructor.
class socket_base {
 public:
  socket_base() noexcept = default;
  socket_base(socket_base&& o) noexcept : pd_(std::exchange(o.pd_, nullptr)) {}
  socket_base& operator=(socket_base&& o) noexcept {
    if (this != &o) {
      release();
      pd_ = std::exchange(o.pd_, nullptr);
    }
    return *this;
  }
  ~socket_base() { release(); }

  // Closes the socket; wakes every fiber blocked on it, whose call then
  // throws. Idempotent.
  void close() noexcept {
    if (pd_ != nullptr) pd_->close();
  }
  explicit operator bool() const noexcept { return pd_ != nullptr; }
  // The fd, for setsockopt and the like; -1 if none.
  int native_handle() const noexcept { return pd_ != nullptr ? pd_->fd : -1; }

  std::string local_address() const { return name(&::getsockname); }

 protected:
  explicit socket_base(int fd) {
    try {
      pd_ = poll_desc::open(fd, poll_runtime());
    } catch (...) {
      ::close(fd);
      throw;
    }
  }
  std::string name(int (*get)(int, sockaddr*, socklen_t*)) const {
    op_guard g(pd_, "address");
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (get(pd_->fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) throw_errno(errno, "address");
    return format(reinterpret_cast<sockaddr*>(&ss));
  }
  void release() noexcept {
    if (pd_ == nullptr) return;
    pd_->close();
    poll_desc::recycle(pd_);
    pd_ = nullptr;
  }

  poll_desc* pd_ = nullptr;
};

}  // namespace detail

class conn;
namespace detail {
inline conn dial_one(const context& ctx, const sock_addr& a, std::string_view address);
}  // namespace detail

// A TCP connection. Move-only; closes on destruction.
class conn : public detail::socket_base {
 public:
  conn() noexcept = default;
  conn(conn&&) noexcept = default;
  conn& operator=(conn&&) noexcept = default;

  // Reads at least one byte, up to buf.size(); returns 0 at the end of the
  // stream (and for an empty buf).
  std::size_t read(std::span<std::byte> buf) {
    detail::op_guard g(pd_, "read");
    if (buf.empty()) return 0;
    std::lock_guard lk(pd_->read_mu);
    // A short read emptied the socket's receive queue: anything arriving
    // since brings a new edge, so wait for it first instead of spending a
    // read() on EAGAIN (a request-response conn would every time). Not once
    // the peer has hung up: its end of stream may have come with the data,
    // in the edge already consumed. (Epoll reports the socket's state when
    // it hands the edge over, so a hang-up before then shows in that edge,
    // and one after it brings an edge of its own.) The wait looks at the
    // deadline first; a read that goes straight to the socket looks here.
    if (pd_->drained && !pd_->hup.load(std::memory_order_acquire)) {
      wait(detail::io_dir::read, "read");
    } else if (pd_->deadline_passed(detail::io_dir::read)) {
      detail::throw_timeout("read");
    }
    for (;;) {
      if (pd_->closed()) detail::throw_closed("read");
      ssize_t n = ::read(pd_->fd, buf.data(), buf.size());
      if (n > 0) {
        pd_->drained = static_cast<std::size_t>(n) < buf.size();
        return static_cast<std::size_t>(n);
      }
      if (n == 0) return 0;
      if (errno == EINTR) continue;
      if (errno != EAGAIN) detail::throw_errno(errno, "read");
      wait(detail::io_dir::read, "read");
    }
  }
  std::size_t read(std::span<char> buf) { return read(std::as_writable_bytes(buf)); }

  // Writes all of buf, or throws (a passed deadline, a reset peer, close()).
  // Never raises SIGPIPE.
  std::size_t write(std::span<const std::byte> buf) {
    detail::op_guard g(pd_, "write");
    std::lock_guard lk(pd_->write_mu);
    if (pd_->deadline_passed(detail::io_dir::write)) detail::throw_timeout("write");
    std::size_t done = 0;
    while (done < buf.size()) {
      if (pd_->closed()) detail::throw_closed("write");
      ssize_t n = ::send(pd_->fd, buf.data() + done, buf.size() - done, MSG_NOSIGNAL);
      if (n >= 0) {
        done += static_cast<std::size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) detail::throw_errno(errno, "write");
      wait(detail::io_dir::write, "write");
    }
    return done;
  }
  std::size_t write(std::string_view s) {
    return write(std::as_bytes(std::span(s.data(), s.size())));
  }

  // Deadlines are absolute; time_point::max() means none. A deadline in the
  // past times out the blocked and the following calls at once.
  template <class Clock, class Dur>
  void set_deadline(std::chrono::time_point<Clock, Dur> t) {
    set_read_deadline(t);
    set_write_deadline(t);
  }
  template <class Clock, class Dur>
  void set_read_deadline(std::chrono::time_point<Clock, Dur> t) {
    detail::op_guard g(pd_, "set_read_deadline");
    pd_->set_deadline(detail::io_dir::read, detail::to_monotonic_ns(t));
  }
  template <class Clock, class Dur>
  void set_write_deadline(std::chrono::time_point<Clock, Dur> t) {
    detail::op_guard g(pd_, "set_write_deadline");
    pd_->set_deadline(detail::io_dir::write, detail::to_monotonic_ns(t));
  }

  // Shuts down the sending side (TCP FIN): the peer reads EOF while this
  // side can still read (Go's TCPConn.CloseWrite).
  void close_write() {
    detail::op_guard g(pd_, "close_write");
    if (::shutdown(pd_->fd, SHUT_WR) != 0) detail::throw_errno(errno, "close_write");
  }

  std::string remote_address() const { return name(&::getpeername); }

 private:
  friend class listener;
  friend conn detail::dial_one(const context&, const detail::sock_addr&, std::string_view);
  explicit conn(int fd) : socket_base(fd) {}

  void wait(detail::io_dir d, const char* op) {
    switch (pd_->wait(d)) {
      case detail::io_wait_result::ready:
        return;
      case detail::io_wait_result::closed:
        detail::throw_closed(op);
      case detail::io_wait_result::timed_out:
        detail::throw_timeout(op);
    }
  }
};

// A TCP listening socket. Move-only; closes on destruction.
class listener : public detail::socket_base {
 public:
  listener() noexcept = default;
  listener(listener&&) noexcept = default;
  listener& operator=(listener&&) noexcept = default;

  // "127.0.0.1:8080", "[::1]:0", ":8080" (every address), "localhost:0".
  // Port 0 picks a free port; port() says which. A malformed address, a port
  // that is not a decimal number in 0..65535, or a host that does not
  // resolve throws errc::invalid_argument.
  static listener listen(std::string_view address, int backlog = SOMAXCONN) {
    detail::sock_addr a = detail::resolve(address, true);
    int fd = ::socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && errno == EAFNOSUPPORT && a.ss.ss_family == AF_INET6 &&
        address.substr(0, address.rfind(':')).empty()) {
      // ":port" on a host without IPv6: every IPv4 address instead.
      a = detail::resolve("0.0.0.0" + std::string(address), true);
      fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) detail::throw_errno(errno, "listen " + std::string(address));
    int one = 1, zero = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (a.ss.ss_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
      // ":port" and "[::]:port" take IPv4 too, as Go's do.
      if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len) != 0 || ::listen(fd, backlog) != 0) {
      int e = errno;
      ::close(fd);
      detail::throw_errno(e, "listen " + std::string(address));
    }
    return listener(fd);
  }

  // Waits for the next connection. Throws errc::bad_file_descriptor once the
  // listener is closed, also in a fiber blocked here when close() is called.
  conn accept() {
    detail::op_guard g(pd_, "accept");
    std::lock_guard lk(pd_->read_mu);
    if (pd_->deadline_passed(detail::io_dir::read)) detail::throw_timeout("accept");
    for (;;) {
      if (pd_->closed()) detail::throw_closed("accept");
      int fd = ::accept4(pd_->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as Go
        return conn(fd);
      }
      // The peer gave up while queued, or a transient shortage: try again
      // (Go's accept loop does the same).
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) detail::throw_errno(errno, "accept");
      switch (pd_->wait(detail::io_dir::read)) {
        case detail::io_wait_result::ready:
          break;
        case detail::io_wait_result::closed:
          detail::throw_closed("accept");
        case detail::io_wait_result::timed_out:
          detail::throw_timeout("accept");
      }
    }
  }

  // accept() times out once t passes (Go's TCPListener.SetDeadline);
  // time_point::max() means never.
  template <class Clock, class Dur>
  void set_deadline(std::chrono::time_point<Clock, Dur> t) {
    detail::op_guard g(pd_, "set_deadline");
    pd_->set_deadline(detail::io_dir::read, detail::to_monotonic_ns(t));
  }

  std::uint16_t port() const {
    std::string a = local_address();
    return static_cast<std::uint16_t>(std::stoul(a.substr(a.rfind(':') + 1)));
  }

 private:
  explicit listener(int fd) : socket_base(fd) {}
};

namespace detail {
// Connects to one resolved address; `address` names it in errors.
inline conn dial_one(const context& ctx, const sock_addr& a, std::string_view address) {
  conn c(new_socket(a.ss.ss_family));
  int fd = c.native_handle();
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return c;
  if (errno != EINPROGRESS) throw_errno(errno, "dial " + std::string(address));

  // Cancellation reaches the parked connect as a past write deadline (what
  // Go's net does). The watcher may run after this returns: it touches the
  // descriptor only under `state`'s lock, and only while `done` is false.
  struct watch_state {
    gofer::detail::spinlock mu;
    poll_desc* pd;
    bool done = false;
  };
  auto state = std::make_shared<watch_state>();
  state->pd = c.pd_;
  if (auto d = ctx.deadline()) c.pd_->set_deadline(io_dir::write, to_monotonic_ns(*d));
  after_func_handle watch;
  if (ctx.done()) {
    watch = after_func(ctx, [state] {
      std::lock_guard lk(state->mu);
      if (!state->done) state->pd->set_deadline(io_dir::write, 0);
    });
  }
  auto finish = [&] {
    watch.stop();
    std::lock_guard lk(state->mu);
    state->done = true;
  };
  for (;;) {
    io_wait_result r = c.pd_->wait(io_dir::write);
    if (r != io_wait_result::ready) {
      finish();
      if (auto e = ctx.err()) throw std::system_error(e, "dial " + std::string(address));
      if (r == io_wait_result::closed) throw_closed("dial");
      throw_timeout("dial");
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err == EINPROGRESS || err == EALREADY) continue;  // a spurious edge
    if (err == 0) {
      // A write edge may mean only that the handshake is still running on a
      // loopback race; getpeername tells a finished connect apart.
      sockaddr_storage ss;
      socklen_t sl = sizeof ss;
      if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &sl) != 0 && errno == ENOTCONN)
        continue;
    }
    finish();
    if (err != 0) throw_errno(err, "dial " + std::string(address));
    c.pd_->set_deadline(io_dir::write, gofer::detail::never);
    return c;
  }
}

// Tries each address in turn until one accepts, as Go's dialer does; the
// error is the first address's. Stops at once when ctx ends.
inline conn dial_any(const context& ctx, const std::vector<sock_addr>& addrs,
                     std::string_view address) {
  std::exception_ptr first;
  for (const sock_addr& a : addrs) {
    try {
      return dial_one(ctx, a, address);
    } catch (const std::system_error&) {
      if (ctx.err()) throw;
      if (!first) first = std::current_exception();
    }
  }
  std::rethrow_exception(first);
}
}  // namespace detail

// Connects to address ("host:port", "[v6]:port"), trying each address the
// host resolves to until one accepts (so "localhost" reaches a server on
// 127.0.0.1 also where it resolves to ::1 first). Cancelling ctx, or its
// deadline passing, aborts a pending connect with ctx.err() (which compares
// equal to std::errc::operation_canceled or std::errc::timed_out).
inline conn dial(const context& ctx, std::string_view address) {
  if (auto e = ctx.err()) throw std::system_error(e, "dial " + std::string(address));
  return detail::dial_any(ctx, detail::resolve_all(address, false), address);
}

inline conn dial(std::string_view address) { return dial(context::background(), address); }

}  // namespace gofer::net
