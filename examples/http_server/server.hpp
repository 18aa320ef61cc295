// The example HTTP/1.1 server: one fiber per connection, keep-alive and
// pipelining, timeouts through deadlines, graceful shutdown through a context.
//
// Routes: "/" answers "Hello, World!" (13 bytes); "/slow" sleeps (?ms=N, 1000
// by default) to show that a slow request holds up nobody else; "/stats"
// reports fibers, open connections and requests served. A server may be given
// its own handler instead.
//
// Shutdown (Go's Server.Shutdown, then Server.Close): cancelling the serve
// context closes the listener, closes idle connections, lets requests in
// flight finish and answers them with "Connection: close". Once the grace
// period is over it closes every connection left, cancels the context its
// handlers were given, and returns at once, as Go's Shutdown returns when its
// context expires: a handler still running does not hold up the program's end.
#pragma once

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <gofer/gofer.hpp>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>

#include "http_parser.hpp"

namespace http {

struct server_options {
  limits parse;
  // From the first byte of a request to the end of its headers (Go's
  // ReadHeaderTimeout): a client that trickles its headers is dropped.
  std::chrono::milliseconds read_header_timeout{5000};
  // How long a keep-alive connection may sit between requests.
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds write_timeout{10000};
  // How long shutdown lets requests in flight finish before it closes their
  // connections and returns.
  std::chrono::milliseconds shutdown_grace{5000};
};

// A handler's answer. The server adds Date, Content-Type, Content-Length and,
// where it applies, Connection.
struct reply {
  int code;
  const char* reason;
  const char* type;
  std::string body;
};

// Answers one request. The context is cancelled when shutdown's grace period
// ends and the request's connection is closed under it (Go's Request.Context
// after Server.Close): a handler that waits should wait on it too.
using handler = std::function<reply(const request&, const gofer::context&)>;

// The server itself; `server` below is its handle. Every fiber it starts
// holds a reference to it rather than a pointer: a handler left running after
// serve() returns (one that ignores its context) still finds everything it
// touches alive, even once the handle is gone.
class server_core : public std::enable_shared_from_this<server_core> {
 public:
  server_core(server_options o, handler h) : opt_(o), handle_(std::move(h)) {
    std::tie(handler_ctx_, cancel_handlers_) = gofer::with_cancel(gofer::context::background());
  }

  std::size_t serve(gofer::net::listener& l, const gofer::context& ctx) {
    std::shared_ptr<server_core> self = shared_from_this();
    gofer::wait_group acceptor;
    acceptor.add(1);
    gofer::go([&l, &acceptor, self] {
      for (;;) {
        gofer::net::conn c;
        try {
          c = l.accept();
        } catch (const std::system_error&) {
          if (self->shutting_down_.load()) break;
          // Out of descriptors and the like: back off briefly, as Go does.
          gofer::this_fiber::sleep_for(std::chrono::milliseconds(5));
          continue;
        }
        self->conn_fibers_.add(1);
        gofer::go([self, c = std::move(c)]() mutable {
          self->serve_conn(c);
          self->conn_fibers_.done();
        });
      }
      acceptor.done();
    });
    ctx.done().recv();
    shutting_down_.store(true);
    l.close();
    acceptor.wait();
    close_idle();
    // Let requests in flight finish, within the grace period. The fiber that
    // waits for them owns what it uses: if the grace runs out it is left
    // waiting, parked on the wait group until the last handler returns or
    // the program ends.
    gofer::chan<> drained(1);
    gofer::go([self, drained] {
      self->conn_fibers_.wait();
      drained.send({});
    });
    if (gofer::select(gofer::on_recv(drained), gofer::on_timeout(opt_.shutdown_grace)) == 0)
      return 0;
    // Closing wakes every fiber blocked on its socket, and cancelling the
    // handlers' context wakes every handler that waits on it; one that waits
    // on neither (a computation, a plain sleep) is not waited for here, as
    // Go's Shutdown does not wait past its deadline.
    return close_all();
  }

  std::int64_t connections() const { return open_.load(); }
  std::int64_t requests() const { return requests_.load(); }

 private:
  struct conn_entry {
    gofer::net::conn* c;
    std::atomic<bool> idle{true};  // between requests: shutdown may close it at once
  };

  void serve_conn(gofer::net::conn& c) {
    open_.fetch_add(1);
    std::list<conn_entry>::iterator self;
    {
      std::lock_guard lk(mu_);
      self = conns_.emplace(conns_.end());
      self->c = &c;
    }
    try {
      if (!shutting_down_.load()) serve_requests(c, *self);
    } catch (const std::system_error&) {
      // Timed out, reset by the peer, or closed by shutdown: drop it.
    }
    {
      std::lock_guard lk(mu_);
      conns_.erase(self);
    }
    c.close();
    open_.fetch_sub(1);
  }

  void serve_requests(gofer::net::conn& c, conn_entry& entry) {
    std::string in, out;
    request req;  // reused: a keep-alive connection parses without allocating
    c.set_read_deadline(std::chrono::steady_clock::now() + opt_.idle_timeout);
    // The header timeout runs from the first bytes of a request; it is set
    // only once a read has left a request incomplete, so the usual request
    // that arrives whole costs no deadline of its own.
    bool header_deadline_set = false;
    bool continue_sent = false;  // "100 Continue" went out for the request being read
    // Small, and on the stack rather than in `in`: an idle connection's
    // memory is mostly the stack pages its fiber has touched, and a typical
    // request fits in one read of this size anyway.
    char buf[1024];
    for (;;) {
      std::size_t consumed = 0;
      parse_status st = parse_into(in, opt_.parse, req, consumed);
      if (st == parse_status::incomplete) {
        // Its headers are in and acceptable, and the client waits for this
        // before it sends the body (RFC 9110 §10.1.1). Go sends it when the
        // handler first reads the body; this server reads every body before
        // its handler runs, so it sends it now, behind any answers to
        // pipelined requests before it. A request whose body came along
        // anyway needs none, and one refused on its headers got its final
        // status instead.
        if (req.expect_continue && !continue_sent) {
          out += "HTTP/1.1 100 Continue\r\n\r\n";
          continue_sent = true;
        }
        // Answers to pipelined requests go out together, once no whole
        // request is left to answer.
        if (!out.empty()) {
          c.set_write_deadline(std::chrono::steady_clock::now() + opt_.write_timeout);
          c.write(out);
          out.clear();
        }
        if (!in.empty() && !header_deadline_set) {
          c.set_read_deadline(std::chrono::steady_clock::now() + opt_.read_header_timeout);
          header_deadline_set = true;
        }
        std::size_t n = c.read(std::span<char>(buf));
        if (n == 0) return;  // the client closed
        if (in.empty()) set_busy(entry, true);
        in.append(buf, n);
        continue;
      }
      if (st != parse_status::complete) {
        append_response(out, status_code(st), reason(status_code(st)), "text/plain",
                        std::string(reason(status_code(st))) + "\n", false, false, false);
        c.write(out);
        return;  // what follows a malformed request cannot be trusted
      }
      in.erase(0, consumed);
      header_deadline_set = false;
      continue_sent = false;
      requests_.fetch_add(1);
      reply rep = handle_ ? handle_(req, handler_ctx_) : route(req, handler_ctx_);
      // Decided after the handler ran: a shutdown that began meanwhile makes
      // this the connection's last answer (as Go's Server.Shutdown does).
      const bool keep = req.keep_alive && !shutting_down_.load();
      // HTTP/1.0 closes after each answer unless the answer says otherwise.
      const bool say_keep_alive = keep && req.minor_version == 0;
      append_response(out, rep.code, rep.reason, rep.type, rep.body, keep, say_keep_alive,
                      req.method == "HEAD");
      if (!keep) {
        c.write(out);
        return;
      }
      if (in.empty()) {
        set_busy(entry, false);
        if (shutting_down_.load()) {  // raced with close_idle: finish here
          c.write(out);
          return;
        }
        c.set_read_deadline(std::chrono::steady_clock::now() + opt_.idle_timeout);
      }
    }
  }

  // The example's routes.
  reply route(const request& req, const gofer::context& ctx) {
    std::string_view path = req.target;
    std::string_view query;
    if (auto q = path.find('?'); q != std::string_view::npos) {
      query = path.substr(q + 1);
      path = path.substr(0, q);
    }
    if (req.method != "GET" && req.method != "HEAD")
      return {405, "Method Not Allowed", "text/plain", "method not allowed\n"};
    if (path == "/") return {200, "OK", "text/plain; charset=utf-8", "Hello, World!"};
    if (path == "/slow") {
      long ms = 1000;
      if (query.substr(0, 3) == "ms=")
        ms = std::strtol(std::string(query.substr(3)).c_str(), nullptr, 10);
      if (ms < 0 || ms > 60000) ms = 1000;
      // Its connection closed under it, nobody is left to answer.
      if (gofer::select(gofer::on_recv(ctx.done()),
                        gofer::on_timeout(std::chrono::milliseconds(ms))) == 0)
        return {503, "Service Unavailable", "text/plain", "shutting down\n"};
      return {200, "OK", "text/plain", "slow\n"};
    }
    if (path == "/stats") {
      char body[160];
      std::snprintf(body, sizeof body,
                    "{\"fibers\": %lld, \"connections\": %lld, \"requests\": %lld}\n",
                    static_cast<long long>(gofer::num_fibers()),
                    static_cast<long long>(open_.load()), static_cast<long long>(requests_.load()));
      return {200, "OK", "application/json", body};
    }
    return {404, "Not Found", "text/plain", "404 page not found\n"};
  }

  static const char* reason(int code) {
    switch (code) {
      case 400:
        return "Bad Request";
      case 413:
        return "Content Too Large";
      case 431:
        return "Request Header Fields Too Large";
      case 501:
        return "Not Implemented";
      case 505:
        return "HTTP Version Not Supported";
      default:
        return "Error";
    }
  }

  static void append_response(std::string& out, int code, std::string_view reason,
                              std::string_view type, std::string_view body, bool keep,
                              bool say_keep_alive, bool head) {
    char num[24];
    out += "HTTP/1.1 ";
    out.append(num, std::to_chars(num, num + sizeof num, code).ptr);
    out += ' ';
    out += reason;
    out += "\r\nDate: ";
    out += http_date();
    out += "\r\nContent-Type: ";
    out += type;
    out += "\r\nContent-Length: ";
    out.append(num, std::to_chars(num, num + sizeof num, body.size()).ptr);
    out += "\r\n";
    if (!keep) out += "Connection: close\r\n";
    if (say_keep_alive) out += "Connection: keep-alive\r\n";
    out += "\r\n";
    if (!head) out += body;
  }

  // The Date header, formatted once a second per thread.
  static std::string_view http_date() {
    thread_local std::time_t last = 0;
    thread_local char text[64];
    std::time_t now = std::time(nullptr);
    if (now != last) {
      std::tm tm;
      gmtime_r(&now, &tm);
      std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
      last = now;
    }
    return text;
  }

  // Written without the list's lock: close_idle reads it under that lock,
  // and a conn that turns idle just after checks shutting_down_ itself.
  static void set_busy(conn_entry& e, bool busy) { e.idle.store(!busy); }

  void close_idle() {
    std::lock_guard lk(mu_);
    for (auto& e : conns_)
      if (e.idle) e.c->close();
  }

  // Closes every connection left and cancels the handlers' context; how
  // many connections it closed.
  std::size_t close_all() {
    std::size_t n = 0;
    {
      std::lock_guard lk(mu_);
      for (auto& e : conns_) {
        e.c->close();
        ++n;
      }
    }
    cancel_handlers_();
    return n;
  }

  const server_options opt_;
  const handler handle_;           // empty: route()
  gofer::context handler_ctx_;     // what handlers are given: cancelled by close_all
  gofer::cancel_func cancel_handlers_;
  gofer::wait_group conn_fibers_;  // one per connection, done when its fiber ends
  gofer::mutex mu_;
  std::list<conn_entry> conns_;  // guarded by mu_
  std::atomic<bool> shutting_down_{false};
  std::atomic<std::int64_t> open_{0};
  std::atomic<std::int64_t> requests_{0};
};

class server {
 public:
  // Without a handler, the example's own routes (see the top of the file).
  explicit server(server_options o = {}, handler h = {})
      : core_(std::make_shared<server_core>(o, std::move(h))) {}

  // Accepts on l until ctx is cancelled, then shuts down as described above.
  // Returns once every connection is closed, or when the grace period is
  // over, whichever comes first; then, how many connections were still open
  // with a request in flight and had to be cut off (0 when all finished in
  // time).
  std::size_t serve(gofer::net::listener& l, const gofer::context& ctx) {
    return core_->serve(l, ctx);
  }

  std::int64_t connections() const { return core_->connections(); }
  std::int64_t requests() const { return core_->requests(); }

 private:
  std::shared_ptr<server_core> core_;
};

}  // namespace http
