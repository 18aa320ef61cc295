// The HTTP example, driven as a user would: requests over real loopback
// sockets, good clients served while bad ones get their 4xx and are cut off,
// slow clients dropped by the header timeout, shutdown draining in-flight
// requests; the program itself, run as its own process, for its flags, its
// errors and how soon it exits after SIGTERM. And the parser on its own, for
// the cases a socket cannot reach precisely.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <gofer/gofer.hpp>
#include <memory>
#include <string>
#include <vector>

#include "http_server/http_parser.hpp"
#include "http_server/server.hpp"
#include "support/conn_io.hpp"
#include "support/eventually.hpp"

using namespace std::chrono_literals;

namespace {

const std::string hello_request = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";

struct response {
  int status = 0;
  std::string head;
  std::string body;
};

// Reads one response (Content-Length framed) from c, keeping what follows in
// `pending`. status 0: the connection ended first.
response read_response(gofer::net::conn& c, std::string& pending) {
  char buf[4096];
  for (;;) {
    auto end = pending.find("\r\n\r\n");
    if (end != std::string::npos) {
      response r;
      r.head = pending.substr(0, end + 4);
      r.status = std::stoi(r.head.substr(9, 3));
      std::size_t len = 0;
      auto cl = r.head.find("Content-Length: ");
      if (cl != std::string::npos) len = std::stoul(r.head.substr(cl + 16));
      while (pending.size() < end + 4 + len) {
        std::size_t n = c.read(std::span<char>(buf));
        if (n == 0) return {};
        pending.append(buf, n);
      }
      r.body = pending.substr(end + 4, len);
      pending.erase(0, end + 4 + len);
      return r;
    }
    std::size_t n = c.read(std::span<char>(buf));
    if (n == 0) return {};
    pending.append(buf, n);
  }
}

// True once the server has closed c (EOF or reset), within c's deadline.
bool closed_by_server(gofer::net::conn& c) {
  char buf[256];
  try {
    while (c.read(std::span<char>(buf)) != 0) {
    }
    return true;
  } catch (const std::system_error& e) {
    return e.code() != std::errc::timed_out;
  }
}

// A server on a free port for the body's duration, shut down after it.
template <class Body>
void with_server(http::server_options opt, Body body) {
  gofer::run(
      [&] {
        auto l = gofer::net::listener::listen("127.0.0.1:0");
        const std::string addr = "127.0.0.1:" + std::to_string(l.port());
        auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
        http::server srv(opt);
        gofer::wait_group served;
        served.add(1);
        gofer::go([&, ctx = ctx] {
          srv.serve(l, ctx);
          served.done();
        });
        body(addr, srv, cancel);
        cancel();
        served.wait();
      },
      {.procs = 2});
}

gofer::net::conn connect(const std::string& addr) {
  auto c = gofer::net::dial(addr);
  c.set_deadline(std::chrono::steady_clock::now() + 10s);
  return c;
}

using gofer::test::read_n;

#ifdef GOFER_HTTP_SERVER_PROGRAM
// The example program, run as its users run it: a process of its own, its
// stdout and stderr kept apart. Every wait is bounded; a program still
// running when the object goes is killed.
class program {
 public:
  explicit program(std::vector<std::string> args) {
    std::string path = GOFER_HTTP_SERVER_PROGRAM;
    std::vector<char*> argv{path.data()};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2], err[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec: this process
      // has threads. The signal mask survives exec; the test's must not.
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    fds_[0] = out[0];
    fds_[1] = err[0];
  }
  program(const program&) = delete;
  program& operator=(const program&) = delete;
  ~program() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);
  }

  pid_t pid() const { return pid_; }

  // Reads its output until stdout holds `text`; false if `patience` passes
  // or the program closes its stdout first.
  bool wait_for_stdout(std::string_view text, std::chrono::milliseconds patience) {
    return pump([&] { return out.find(text) != std::string::npos; }, patience);
  }

  // Reads its output to the end and reaps it; false if it is still running
  // after `patience` (it is killed then).
  bool wait_exit(std::chrono::milliseconds patience) {
    bool ended = pump([&] { return fds_[0] < 0 && fds_[1] < 0; }, patience);
    if (!ended) ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    if (WIFEXITED(status)) exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) signal = WTERMSIG(status);
    return ended;
  }

  std::string out, err;  // what it wrote so far
  int exit_code = -1;    // once it exited
  int signal = 0;        // once it was killed by a signal

 private:
  template <class Pred>
  bool pump(Pred done, std::chrono::milliseconds patience) {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (!done()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p[2] = {{fds_[0], POLLIN, 0}, {fds_[1], POLLIN, 0}};  // fd -1 is skipped
      if (fds_[0] < 0 && fds_[1] < 0) return false;
      if (::poll(p, 2, static_cast<int>(left.count())) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (p[i].revents == 0) continue;
        char buf[4096];
        ssize_t n = ::read(fds_[i], buf, sizeof buf);
        if (n > 0) {
          (i == 0 ? out : err).append(buf, static_cast<std::size_t>(n));
        } else {
          ::close(fds_[i]);
          fds_[i] = -1;
        }
      }
    }
    return true;
  }

  pid_t pid_ = -1;
  int fds_[2] = {-1, -1};
  bool reaped_ = false;
};

// Runs the program with args to its end, within 30 s.
std::unique_ptr<program> run_program(std::vector<std::string> args) {
  auto p = std::make_unique<program>(std::move(args));
  REQUIRE(p->wait_exit(30s));
  return p;
}
#endif

}  // namespace

TEST_CASE("http: GET / answers the hello over keep-alive, several times", "[http]") {
  with_server({}, [](const std::string& addr, http::server&, auto&) {
    auto c = connect(addr);
    std::string pending;
    for (int i = 0; i < 3; ++i) {
      c.write(hello_request);
      response r = read_response(c, pending);
      CHECK(r.status == 200);
      CHECK(r.body == "Hello, World!");
      CHECK(r.head.find("Connection: close") == std::string::npos);
    }
  });
}

TEST_CASE("http: pipelined requests are answered in order", "[http]") {
  with_server({}, [](const std::string& addr, http::server&, auto&) {
    auto c = connect(addr);
    c.write(
        "GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
        "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n");
    std::string pending;
    CHECK(read_response(c, pending).status == 200);
    CHECK(read_response(c, pending).status == 404);
    response stats = read_response(c, pending);
    CHECK(stats.status == 200);
    CHECK(stats.body.find("\"connections\": 1") != std::string::npos);
    CHECK(stats.body.find("\"requests\": 3") != std::string::npos);
  });
}

TEST_CASE("http: bad requests get their status and lose their connection, others go on", "[http]") {
  struct bad_case {
    const char* name;
    std::string request;
    int status;
  };
  const std::vector<bad_case> cases = {
      {"garbage", "HELLO THERE\r\n\r\n", 400},
      {"bare LF", "GET / HTTP/1.1\nHost: t\n\n", 400},
      {"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400},
      {"headers over 8 KiB",
       "GET / HTTP/1.1\r\nHost: t\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", 431},
      {"body over the limit", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n",
       413},
      {"unsupported method", "BREW / HTTP/1.1\r\nHost: t\r\n\r\n", 501},
      {"HTTP/2 as text", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505},
  };
  with_server({}, [&](const std::string& addr, http::server&, auto&) {
    // A good client keeps getting its answers all along, on one connection.
    auto good = connect(addr);
    std::string good_pending;
    for (const auto& bc : cases) {
      INFO(bc.name);
      auto c = connect(addr);
      c.write(bc.request);
      std::string pending;
      response r = read_response(c, pending);
      CHECK(r.status == bc.status);
      CHECK(r.head.find("Connection: close") != std::string::npos);
      CHECK(closed_by_server(c));
      good.write(hello_request);
      CHECK(read_response(good, good_pending).status == 200);
    }
  });
}

TEST_CASE("http: a client that trickles its headers is dropped, others are served", "[http]") {
  http::server_options opt;
  opt.read_header_timeout = 200ms;
  with_server(opt, [](const std::string& addr, http::server&, auto&) {
    auto slow = connect(addr);
    slow.write(std::string_view("GET / HTTP/1.1\r\n"));
    auto t0 = std::chrono::steady_clock::now();
    // Keeps sending a byte now and then, never finishing the headers.
    bool dropped = false;
    for (int i = 0; i < 100 && !dropped; ++i) {
      gofer::this_fiber::sleep_for(50ms);
      try {
        slow.write(std::string_view("X"));
      } catch (const std::system_error&) {
        dropped = true;
      }
      auto good = connect(addr);
      good.write(hello_request);
      std::string pending;
      CHECK(read_response(good, pending).status == 200);
    }
    if (!dropped) dropped = closed_by_server(slow);
    CHECK(dropped);
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  });
}

TEST_CASE("http: one slow request holds nobody else up", "[http]") {
  with_server({}, [](const std::string& addr, http::server&, auto&) {
    auto slow = connect(addr);
    slow.write(std::string_view("GET /slow?ms=2000 HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
      auto c = connect(addr);
      c.write(hello_request);
      std::string pending;
      CHECK(read_response(c, pending).status == 200);
    }
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);  // all served while /slow sleeps
    std::string pending;
    CHECK(read_response(slow, pending).status == 200);
  });
}

TEST_CASE("http: shutdown finishes requests in flight, closes idle ones, refuses new", "[http]") {
  with_server({}, [](const std::string& addr, http::server& srv, auto& cancel) {
    auto idle = connect(addr);
    idle.write(hello_request);
    std::string idle_pending;
    REQUIRE(read_response(idle, idle_pending).status == 200);

    auto busy = connect(addr);
    busy.write(std::string_view("GET /slow?ms=500 HTTP/1.1\r\nHost: t\r\n\r\n"));
    // Shut down once the slow request is being served (it is in /slow's sleep).
    REQUIRE(gofer::test::eventually([&] { return srv.requests() == 2; }));
    cancel();
    CHECK(closed_by_server(idle));
    std::string pending;
    response r = read_response(busy, pending);
    CHECK(r.status == 200);
    CHECK(r.body == "slow\n");
    CHECK(r.head.find("Connection: close") != std::string::npos);
    CHECK(closed_by_server(busy));
    CHECK_THROWS_AS(gofer::net::dial(addr), std::system_error);
  });
}

TEST_CASE("http: past the grace period serve() returns, though a handler ignores its context",
          "[http]") {
  std::atomic<bool> handler_done{false};
  gofer::run(
      [&] {
        auto l = gofer::net::listener::listen("127.0.0.1:0");
        const std::string addr = "127.0.0.1:" + std::to_string(l.port());
        auto [ctx, cancel] = gofer::with_cancel(gofer::context::background());
        http::server_options opt;
        opt.shutdown_grace = 200ms;
        // Waits on neither its context nor its connection.
        auto srv = std::make_unique<http::server>(
            opt, [&](const http::request&, const gofer::context&) {
              gofer::this_fiber::sleep_for(3s);
              handler_done = true;
              return http::reply{200, "OK", "text/plain", "late\n"};
            });
        std::size_t cut = 0;
        gofer::chan<> served(1);
        gofer::go([&, ctx = ctx] {
          cut = srv->serve(l, ctx);
          served.send({});
        });
        auto c = connect(addr);
        c.write(hello_request);
        REQUIRE(gofer::test::eventually([&] { return srv->requests() == 1; }));
        const auto t0 = std::chrono::steady_clock::now();
        cancel();
        CHECK(closed_by_server(c));
        REQUIRE(gofer::select(gofer::on_recv(served), gofer::on_timeout(10s)) == 0);
        const auto took = std::chrono::steady_clock::now() - t0;
        CHECK(took >= 200ms);
        CHECK(took < 2s);  // not the handler's 3 s
        CHECK(cut == 1);
        CHECK_FALSE(handler_done);
        // The server goes while its handler still runs: what the handler's
        // fiber uses is its own. Wait for it to finish (and its connection's
        // fiber, and the one that waited for it), so that this run ends with
        // no fiber left asleep.
        srv.reset();
        CHECK(gofer::test::eventually([&] { return handler_done.load(); }));
        CHECK(gofer::test::eventually([] { return gofer::num_fibers() == 1; }));
      },
      {.procs = 2});
}

TEST_CASE("http: a handler that waits on its context ends when the grace period does", "[http]") {
  http::server_options opt;
  opt.shutdown_grace = 200ms;
  with_server(opt, [](const std::string& addr, http::server& srv, auto& cancel) {
    auto slow = connect(addr);
    slow.write(std::string_view("GET /slow?ms=30000 HTTP/1.1\r\nHost: t\r\n\r\n"));
    REQUIRE(gofer::test::eventually([&] { return srv.requests() == 1; }));
    cancel();
    CHECK(closed_by_server(slow));
    // /slow waits on its context: its connection's fiber ends with it, not
    // 30 s later.
    CHECK(gofer::test::eventually([&] { return srv.connections() == 0; }, 5s));
  });
}

TEST_CASE("http: Expect: 100-continue is answered before the body is read", "[http]") {
  with_server({}, [](const std::string& addr, http::server&, auto&) {
    auto c = connect(addr);
    c.write(std::string_view(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
    // The client waits for this before it sends the body: it must come now,
    // not when the header timeout cuts the connection.
    const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
    CHECK(read_n(c, interim.size()) == interim);
    c.write(std::string_view("hello"));
    std::string pending;
    response r = read_response(c, pending);
    CHECK(r.status == 405);  // the example takes no POST, but has read its body
    CHECK(r.head.find("Connection: close") == std::string::npos);
    // The body was consumed whole: the connection serves the next request.
    c.write(hello_request);
    r = read_response(c, pending);
    CHECK(r.status == 200);
    CHECK(r.body == "Hello, World!");
  });
}

TEST_CASE("http: HTTP/1.0 keep-alive is kept, and the answer says so", "[http]") {
  with_server({}, [](const std::string& addr, http::server&, auto&) {
    auto c = connect(addr);
    std::string pending;
    for (int i = 0; i < 2; ++i) {
      c.write(std::string_view("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
      response r = read_response(c, pending);
      CHECK(r.status == 200);
      CHECK(r.body == "Hello, World!");
      // Without it an HTTP/1.0 client takes the connection as closing.
      CHECK(r.head.find("\r\nConnection: keep-alive\r\n") != std::string::npos);
    }
    c.write(std::string_view("GET / HTTP/1.0\r\n\r\n"));
    response r = read_response(c, pending);
    CHECK(r.status == 200);
    CHECK(r.head.find("keep-alive") == std::string::npos);
    CHECK(closed_by_server(c));
  });
}

#ifdef GOFER_HTTP_SERVER_PROGRAM

TEST_CASE("http_server: SIGTERM with a request in flight exits after the grace period",
          "[http][child]") {
  program server({"--grace=300ms", "127.0.0.1:0"});
  REQUIRE(server.wait_for_stdout("\n", 10s));
  INFO("stdout: " << server.out << "stderr: " << server.err);
  REQUIRE(server.out.rfind("listening on ", 0) == 0);
  const std::string addr = "127.0.0.1:" + server.out.substr(13, server.out.size() - 14);

  // A request that would take 30 s, seen by the server before the signal:
  // /stats counts it (and itself) once the slow one is being served.
  auto slow = connect(addr);
  slow.write(std::string_view("GET /slow?ms=30000 HTTP/1.1\r\nHost: t\r\n\r\n"));
  int probes = 0;
  REQUIRE(gofer::test::eventually([&] {
    auto c = connect(addr);
    c.write(std::string_view("GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    std::string pending;
    response r = read_response(c, pending);
    ++probes;
    auto at = r.body.find("\"requests\": ");
    return at != std::string::npos && std::stoi(r.body.substr(at + 12)) > probes;
  }, 10s));

  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(::kill(server.pid(), SIGTERM) == 0);
  // It may finish within the grace period; then it is cut off, as Go's
  // Shutdown and the program's end do it.
  CHECK(closed_by_server(slow));
  const auto closed = std::chrono::steady_clock::now() - t0;
  REQUIRE(server.wait_exit(20s));
  const auto exited = std::chrono::steady_clock::now() - t0;
  INFO("stderr: " << server.err);
  INFO("closed after " << std::chrono::duration_cast<std::chrono::milliseconds>(closed).count()
                       << " ms, exited after "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(exited).count()
                       << " ms");
  // A clean exit: main returns while the cut-off handler may still be
  // parked, its timer armed, and the program's end must leave it be.
  CHECK(server.signal == 0);
  CHECK(server.exit_code == 0);
  CHECK(closed >= 300ms);
  CHECK(exited < 300ms + 1700ms);  // the grace and a margin, not the handler's 30 s
  CHECK(server.err.find("grace period over: closed 1 connection in flight") != std::string::npos);
}

TEST_CASE("http_server: -h and --help print the usage on stdout and exit 0", "[http][child]") {
  for (const char* flag : {"-h", "--help", "-help"}) {
    INFO(flag);
    auto p = run_program({flag});
    CHECK(p->exit_code == 0);
    CHECK(p->out.rfind("usage: http_server [flags] [address]\n", 0) == 0);
    CHECK(p->out.find("-grace duration") != std::string::npos);
    CHECK(p->err.empty());
  }
}

TEST_CASE("http_server: a bad command line is a usage error, exit 2", "[http][child]") {
  struct bad_case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<bad_case> cases = {
      {{"--nosuch"}, "http_server: flag provided but not defined: --nosuch\n"},
      {{"--grace=soon"}, "http_server: invalid value \"soon\" for flag -grace\n"},
      {{"--grace"}, "http_server: flag needs an argument: -grace\n"},
      {{"-grace", "5"}, "http_server: invalid value \"5\" for flag -grace\n"},
      {{"8080"}, "http_server: address \"8080\": missing port\n"},
      {{"127.0.0.1:99999"}, "http_server: address \"127.0.0.1:99999\": invalid port\n"},
      {{"127.0.0.1:-1"}, "http_server: address \"127.0.0.1:-1\": invalid port\n"},
      {{"[::1:80"}, "http_server: address \"[::1:80\": missing ']'\n"},
      {{":0", ":1"}, "http_server: too many arguments, from \":1\"\n"},
  };
  for (const auto& bc : cases) {
    INFO(bc.args[0]);
    auto p = run_program(bc.args);
    INFO("stderr: " << p->err);
    CHECK(p->exit_code == 2);
    CHECK(p->err.rfind(bc.message, 0) == 0);
    CHECK(p->err.find("usage: http_server") != std::string::npos);
    CHECK(p->out.empty());
  }
}

TEST_CASE("http_server: an address it cannot listen on is an error, exit 1", "[http][child]") {
  // A port in use, by this test.
  auto taken = gofer::net::listener::listen("127.0.0.1:0");
  const std::string in_use = "127.0.0.1:" + std::to_string(taken.port());
  auto p = run_program({in_use});
  INFO("stderr: " << p->err);
  CHECK(p->exit_code == 1);
  CHECK(p->err == "http_server: listen " + in_use + ": " +
                      std::generic_category().message(EADDRINUSE) + "\n");
  CHECK(p->out.empty());

  // A host that does not resolve (".invalid" never does, RFC 2606).
  p = run_program({"no-such-host.invalid:80"});
  INFO("stderr: " << p->err);
  CHECK(p->exit_code == 1);
  CHECK(p->err.rfind("http_server: listen no-such-host.invalid:80: ", 0) == 0);
  CHECK(p->err.find("terminate") == std::string::npos);
}

#endif

// ---- The parser alone ---------------------------------------------------------

TEST_CASE("http parser: a complete request, its headers and body", "[http]") {
  std::string raw =
      "POST /submit?x=1 HTTP/1.1\r\nHost: example\r\nContent-Length: 5\r\n"
      "Connection: keep-alive\r\n\r\nhelloGET";
  auto r = http::parse(raw);
  REQUIRE(r.status == http::parse_status::complete);
  CHECK(r.consumed == raw.size() - 3);
  CHECK(r.req.method == "POST");
  CHECK(r.req.target == "/submit?x=1");
  CHECK(r.req.body == "hello");
  REQUIRE(r.req.header("HOST") != nullptr);
  CHECK(*r.req.header("host") == "example");
  CHECK(r.req.keep_alive);
}

TEST_CASE("http parser: every prefix of a request is incomplete, never an error", "[http]") {
  std::string raw = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
  for (std::size_t n = 0; n < raw.size(); ++n) {
    INFO(n);
    CHECK(http::parse(std::string_view(raw).substr(0, n)).status == http::parse_status::incomplete);
  }
  CHECK(http::parse(raw).status == http::parse_status::complete);
}

TEST_CASE("http parser: keep-alive follows the version and Connection", "[http]") {
  CHECK_FALSE(http::parse("GET / HTTP/1.0\r\n\r\n").req.keep_alive);
  CHECK(http::parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").req.keep_alive);
  CHECK_FALSE(http::parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").req.keep_alive);
}

TEST_CASE("http parser: Expect: 100-continue is seen once the headers are whole, in 1.1",
          "[http]") {
  using ps = http::parse_status;
  const http::limits lim;
  http::request req;  // reused, as the server does
  std::size_t consumed = 0;
  // The headers are whole, the body is not: the client waits for a go-ahead.
  CHECK(http::parse_into(
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\n",
            lim, req, consumed) == ps::incomplete);
  CHECK(req.expect_continue);
  // The headers are not whole yet.
  CHECK(http::parse_into("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n",
                         lim, req, consumed) == ps::incomplete);
  CHECK_FALSE(req.expect_continue);
  // HTTP/1.0: the expectation is ignored (RFC 9110 §10.1.1).
  CHECK(http::parse_into("POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", lim,
                         req, consumed) == ps::incomplete);
  CHECK_FALSE(req.expect_continue);
  // No body: nothing to wait for.
  CHECK(http::parse_into(
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n",
            lim, req, consumed) == ps::complete);
  CHECK_FALSE(req.expect_continue);
  // A body too large gets its final status instead.
  CHECK(http::parse_into(
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9999999\r\nExpect: 100-continue\r\n\r\n",
            lim, req, consumed) == ps::body_too_large);
  CHECK_FALSE(req.expect_continue);
}

TEST_CASE("http parser: what request smuggling relies on is refused", "[http]") {
  using ps = http::parse_status;
  CHECK(http::parse(
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
            .status == ps::bad_request);
  CHECK(http::parse(
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
            .status == ps::bad_request);
  CHECK(http::parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n").status ==
        ps::not_implemented);
  CHECK(http::parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n").status ==
        ps::bad_request);
  CHECK(http::parse("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n").status == ps::bad_request);
  CHECK(http::parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status == ps::bad_request);
  CHECK(http::parse(std::string("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 30)).status ==
        ps::bad_request);
  CHECK(http::parse("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n").status == ps::bad_request);
}
