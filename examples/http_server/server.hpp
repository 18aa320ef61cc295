// The example HTTP/1.1 server: one fiber per connection, keep-alive and
// pipelining, timeouts through deadlines, graceful shutdown through a context.
//
// Routes: "/" answers "Hello, World!" (13 bytes); "/slow" sleeps (?ms=N, 1000
// by default) to show that a slow request holds up nobody else; "/stats"
// reports fibers, open connections and requests served.
//
// Shutdown (Go's Server.Shutdown): cancelling the serve context closes the
// listener, closes idle connections, lets requests in flight finish and
// answers them with "Connection: close", and force-closes what is left after
// the grace period.
#pragma once

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <gofer/gofer.hpp>
#include <list>
#include <string>
#include <string_view>

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
  std::chrono::milliseconds shutdown_grace{5000};
};

class server {
 public:
  explicit server(server_options o = {}) : opt_(o) {}

  // Accepts on l until ctx is cancelled, then shuts down as described above
  // and returns once every connection is closed.
  void serve(gofer::net::listener& l, const gofer::context& ctx) {
    gofer::wait_group conns, acceptor;
    acceptor.add(1);
    gofer::go([&] {
      for (;;) {
        gofer::net::conn c;
        try {
          c = l.accept();
        } catch (const std::system_error&) {
          if (shutting_down_.load()) break;
          // Out of descriptors and the like: back off briefly, as Go does.
          gofer::this_fiber::sleep_for(std::chrono::milliseconds(5));
          continue;
        }
        conns.add(1);
        gofer::go([this, &conns, c = std::move(c)]() mutable {
          serve_conn(c);
          conns.done();
        });
      }
      acceptor.done();
    });
    ctx.done().recv();
    shutting_down_.store(true);
    l.close();
    acceptor.wait();
    close_idle();
    // Let requests in flight finish, within the grace period.
    gofer::chan<> drained(1);
    gofer::go([&] {
      conns.wait();
      drained.send({});
    });
    if (gofer::select(gofer::on_recv(drained), gofer::on_timeout(opt_.shutdown_grace)) != 0) {
      close_all();
      drained.recv();
    }
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
    // Small, and on the stack rather than in `in`: an idle connection's
    // memory is mostly the stack pages its fiber has touched, and a typical
    // request fits in one read of this size anyway.
    char buf[1024];
    for (;;) {
      std::size_t consumed = 0;
      parse_status st = parse_into(in, opt_.parse, req, consumed);
      if (st == parse_status::incomplete) {
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
                        std::string(reason(status_code(st))) + "\n", false, false);
        c.write(out);
        return;  // what follows a malformed request cannot be trusted
      }
      in.erase(0, consumed);
      header_deadline_set = false;
      requests_.fetch_add(1);
      reply rep = handle(req);
      // Decided after the handler ran: a shutdown that began meanwhile makes
      // this the connection's last answer (as Go's Server.Shutdown does).
      const bool keep = req.keep_alive && !shutting_down_.load();
      append_response(out, rep.code, rep.reason, rep.type, rep.body, keep, req.method == "HEAD");
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

  struct reply {
    int code;
    const char* reason;
    const char* type;
    std::string body;
  };

  reply handle(const request& req) {
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
      gofer::this_fiber::sleep_for(std::chrono::milliseconds(ms));
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
                              std::string_view type, std::string_view body, bool keep, bool head) {
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

  void close_all() {
    std::lock_guard lk(mu_);
    for (auto& e : conns_) e.c->close();
  }

  server_options opt_;
  gofer::mutex mu_;
  std::list<conn_entry> conns_;  // guarded by mu_
  std::atomic<bool> shutting_down_{false};
  std::atomic<std::int64_t> open_{0};
  std::atomic<std::int64_t> requests_{0};
};

}  // namespace http
