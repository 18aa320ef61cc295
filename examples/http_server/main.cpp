// An HTTP/1.1 server on gofer: one fiber per connection, graceful shutdown on
// SIGINT or SIGTERM. `http_server -help` says how to run it (usage_text below).
//
// It prints "listening on <port>" once it accepts connections. Exit status,
// as a Go program built on the flag package: 0 after a shutdown, 2 for a bad
// command line (an unknown flag, a malformed address or duration), 1 when it
// cannot listen (a host that does not resolve, a port in use).
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <gofer/gofer.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "server.hpp"

namespace {

constexpr const char* usage_text =
    "usage: http_server [flags] [address]\n"
    "\n"
    "Serves HTTP/1.1 on address, \"host:port\", \"[v6]:port\" or \":port\" (default\n"
    "\":8080\"; port 0 picks a free one), and prints \"listening on <port>\". SIGINT\n"
    "or SIGTERM shuts it down: it stops accepting, lets requests in flight finish\n"
    "within the grace period, then closes every connection and exits.\n"
    "\n"
    "Routes: / (a hello), /slow?ms=N (answers after N ms), /stats.\n"
    "\n"
    "Flags (one dash or two; a value after '=' or as the next argument):\n"
    "  -grace duration  how long shutdown waits for requests in flight (default 5s);\n"
    "                   durations as Go writes them: 200ms, 5s, 1m30s\n"
    "  -self-check      serve on a free port, request from itself, shut down by\n"
    "                   SIGTERM; exit 0 if all went well\n"
    "  -h, -help        print this and exit\n";

struct options {
  std::string address = ":8080";
  std::chrono::milliseconds grace{5000};
  bool self_check = false;
};

// A duration as Go's time.ParseDuration reads it: decimal numbers, each with
// a unit (ns, us, µs, ms, s, m, h), as in "1m30s" or "1.5s"; "0" alone too.
// Not negative.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view s) {
  if (s == "0") return std::chrono::nanoseconds(0);
  if (s.empty()) return std::nullopt;
  long double total = 0;
  while (!s.empty()) {
    std::size_t digits = 0;
    while (digits < s.size() && ((s[digits] >= '0' && s[digits] <= '9') || s[digits] == '.'))
      ++digits;
    std::string number(s.substr(0, digits));
    if (number.empty() || number == "." || number.find('.') != number.rfind('.'))
      return std::nullopt;
    s.remove_prefix(digits);
    long double unit = 0;
    for (auto [name, ns] : {std::pair<std::string_view, long double>{"ns", 1}, {"us", 1e3},
                            {"\xC2\xB5s", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}}) {
      // In this order, "ms" is tried before "m" and "s".
      if (s.substr(0, name.size()) == name) {
        unit = ns;
        s.remove_prefix(name.size());
        break;
      }
    }
    if (unit == 0) return std::nullopt;
    total += std::strtold(number.c_str(), nullptr) * unit;
  }
  if (total > 9.2e18L) return std::nullopt;  // beyond int64 nanoseconds, as Go refuses
  return std::chrono::nanoseconds(static_cast<std::int64_t>(total));
}

// Why address is not one listen() takes ("" when it is): "host:port",
// "[v6]:port" or ":port", the port a decimal number in 0..65535. Checked here
// so that a malformed address is a usage error (exit 2), told apart from an
// address that is well formed but cannot be listened on (exit 1).
std::string address_problem(std::string_view a) {
  std::string_view port;
  if (!a.empty() && a.front() == '[') {
    auto close = a.find(']');
    if (close == std::string_view::npos) return "missing ']'";
    if (close + 1 >= a.size() || a[close + 1] != ':') return "missing port";
    port = a.substr(close + 2);
  } else {
    auto colon = a.rfind(':');
    if (colon == std::string_view::npos) return "missing port";
    if (a.substr(0, colon).find(':') != std::string_view::npos) return "too many colons";
    port = a.substr(colon + 1);
  }
  if (port.empty()) return "missing port";
  unsigned long n = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return "invalid port";
    n = n * 10 + static_cast<unsigned long>(c - '0');
    if (n > 65535) return "invalid port";
  }
  return "";
}

// A command line error: what is wrong, then the usage, on stderr (as Go's
// flag package prints them).
int usage_error(const std::string& what) {
  std::fprintf(stderr, "http_server: %s\n%s", what.c_str(), usage_text);
  return 2;
}

// Go's flag package, in small: flags before the address, "-name", "--name",
// "-name=value" or "-name value"; "--" ends the flags. Returns the exit status
// to end with, or nothing to go on and serve.
std::optional<int> parse_args(int argc, char** argv, options& opt) {
  int i = 1;
  for (; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') break;  // the address
    std::string_view name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string_view> value;
    if (auto eq = name.find('='); eq != std::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name == "h" || name == "help") {
      std::fputs(usage_text, stdout);
      return 0;
    }
    if (name == "self-check") {
      if (value) return usage_error("flag -self-check takes no value");
      opt.self_check = true;
    } else if (name == "grace") {
      if (!value) {
        if (i + 1 == argc) return usage_error("flag needs an argument: -grace");
        value = argv[++i];
      }
      auto d = parse_duration(*value);
      if (!d) return usage_error("invalid value \"" + std::string(*value) + "\" for flag -grace");
      opt.grace = std::chrono::ceil<std::chrono::milliseconds>(*d);
    } else {
      return usage_error("flag provided but not defined: " + std::string(arg));
    }
  }
  if (i < argc) {
    if (opt.self_check) return usage_error("-self-check takes no address");
    opt.address = argv[i++];
    if (std::string why = address_problem(opt.address); !why.empty())
      return usage_error("address \"" + opt.address + "\": " + why);
  }
  if (i < argc) return usage_error("too many arguments, from \"" + std::string(argv[i]) + "\"");
  if (opt.self_check) opt.address = "127.0.0.1:0";
  return std::nullopt;
}

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
  options opt;
  if (auto status = parse_args(argc, argv, opt)) return *status;
  return gofer::run([&] {
    gofer::net::listener listener;
    try {
      listener = gofer::net::listener::listen(opt.address);
    } catch (const std::system_error& e) {
      // As Go's "listen tcp <addr>: <reason>", naming the address once: the
      // library's message begins with it already, after "listen " when bind
      // or listen failed and after "address " when the lookup did.
      std::string what = e.what();
      const std::string prefix = "listen " + opt.address + ": ";
      for (const std::string& named : {prefix, "address " + opt.address + ": "})
        if (what.rfind(named, 0) == 0) what.erase(0, named.size());
      std::fprintf(stderr, "http_server: %s%s\n", prefix.c_str(), what.c_str());
      return 1;
    }
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
    if (opt.self_check) {
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
    http::server_options so;
    so.shutdown_grace = opt.grace;
    http::server srv(so);
    // Past the grace period serve() returns with requests still in flight;
    // their connections are closed, and returning from here ends the program
    // with their handlers, as a Go program ends with its goroutines.
    if (std::size_t cut = srv.serve(listener, ctx))
      std::fprintf(stderr, "grace period over: closed %zu connection%s in flight\n", cut,
                   cut == 1 ? "" : "s");
    gofer::stop_signals(signals);
    std::fprintf(stderr, "served %lld requests\n", static_cast<long long>(srv.requests()));
    return ok ? 0 : 1;
  });
}
