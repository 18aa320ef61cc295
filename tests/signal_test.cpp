// notify_signals / stop_signals: delivery to channels, the program's own
// handler kept, default actions suspended and restored, misuse refused, and
// a fiber waiting for a signal not taken for a deadlock.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <gofer/gofer.hpp>
#include <stdexcept>
#include <string>

#include "support/subprocess.hpp"

using namespace std::chrono_literals;

namespace {

// The received signal, or 0 if none came within 10 s.
int recv_signal(gofer::chan<int>& ch) {
  int got = 0;
  gofer::select(gofer::on_recv(ch, [&](std::optional<int> v) { got = v.value_or(-1); }),
                gofer::on_timeout(10s));
  return got;
}

std::atomic<int> own_handler_calls{0};

}  // namespace

TEST_CASE("a raised signal arrives on every channel subscribed to it", "[signal]") {
  gofer::run([] {
    gofer::chan<int> a(4), b(4);
    gofer::notify_signals(a, {SIGUSR1});
    gofer::notify_signals(b, {SIGUSR1, SIGUSR2});
    ::raise(SIGUSR1);
    CHECK(recv_signal(a) == SIGUSR1);
    CHECK(recv_signal(b) == SIGUSR1);
    ::raise(SIGUSR2);
    CHECK(recv_signal(b) == SIGUSR2);
    gofer::stop_signals(a);
    gofer::stop_signals(b);
    CHECK_FALSE(a.try_recv().has_value());  // SIGUSR2 never went to a
  });
}

TEST_CASE("the program's own handler keeps running, and comes back after stop_signals",
          "[signal]") {
  struct sigaction own {
  }, saved{};
  own.sa_handler = [](int) { own_handler_calls.fetch_add(1); };
  sigemptyset(&own.sa_mask);
  REQUIRE(::sigaction(SIGUSR2, &own, &saved) == 0);
  own_handler_calls = 0;
  gofer::run([] {
    gofer::chan<int> ch(4);
    gofer::notify_signals(ch, {SIGUSR2});
    ::raise(SIGUSR2);
    CHECK(recv_signal(ch) == SIGUSR2);
    CHECK(own_handler_calls.load() == 1);  // ran in the handler, before raise returned
    gofer::stop_signals(ch);
    ::raise(SIGUSR2);
    CHECK(own_handler_calls.load() == 2);
    CHECK_FALSE(ch.try_recv().has_value());
  });
  ::sigaction(SIGUSR2, &saved, nullptr);
}

TEST_CASE("a subscribed SIGINT no longer ends the program, and does again after stop",
          "[signal][child]") {
  auto r = gofer::test::run_in_child([] {
    gofer::run([] {
      gofer::chan<int> ch(1);
      gofer::notify_signals(ch, {SIGINT, SIGTERM});
      ::raise(SIGINT);
      std::fprintf(stderr, "received %d\n", recv_signal(ch));
      gofer::stop_signals(ch);
      ::raise(SIGINT);  // default action again: the process ends here
      std::fprintf(stderr, "still alive\n");
    });
  });
  INFO(r.err);
  CHECK(r.err.find("received " + std::to_string(SIGINT)) != std::string::npos);
  CHECK(r.signal == SIGINT);
  CHECK(r.err.find("still alive") == std::string::npos);
}

TEST_CASE("a fiber waiting for a signal is not a deadlock", "[signal][child][deadlock]") {
  if (gofer::test::under_emulator()) {
    WARN("skipped: the emulator's threads keep the deadlock detector quiet anyway");
    return;
  }
  // The child waits with nothing else alive; the parent sends the signal only
  // once the child says it is waiting, and well after the detector would
  // have spoken (it looks within 100 ms).
  bool sent = false;
  auto r = gofer::test::run_in_child(
      [] {
        gofer::run([] {
          gofer::chan<int> ch(1);
          gofer::notify_signals(ch, {SIGUSR1});
          std::fprintf(stderr, "waiting\n");
          std::fflush(stderr);
          std::fprintf(stderr, "got %d\n", *ch.recv());
        });
      },
      std::chrono::seconds(30),
      [&](pid_t pid, const std::string& out) {
        if (!sent && out.find("waiting") != std::string::npos) {
          ::usleep(400'000);  // the detector's window, not a synchronisation
          ::kill(pid, SIGUSR1);
          sent = true;
        }
      });
  INFO(r.err);
  CHECK(r.exited);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("got " + std::to_string(SIGUSR1)) != std::string::npos);
  CHECK(r.err.find("deadlock") == std::string::npos);
}

TEST_CASE("no signals listed means every signal a channel can take, as Notify(c)",
          "[signal][child]") {
  auto r = gofer::test::run_in_child([] {
    gofer::run([] {
      gofer::chan<int> ch(4);
      gofer::notify_signals(ch, {});
      // One whose default ends the program, one ignored by default, and a
      // real-time one.
      for (int s : {SIGHUP, SIGWINCH, SIGRTMIN + 1}) {
        ::raise(s);
        std::fprintf(stderr, "sent %d received %d\n", s, recv_signal(ch));
      }
      gofer::stop_signals(ch);
      ::raise(SIGHUP);  // the default action again: the process ends here
      std::fprintf(stderr, "still alive\n");
    });
  });
  INFO(r.err);
  for (int s : {SIGHUP, SIGWINCH, SIGRTMIN + 1}) {
    const std::string n = std::to_string(s);
    CHECK(r.err.find("sent " + n + " received " + n + "\n") != std::string::npos);
  }
  CHECK(r.signal == SIGHUP);
  CHECK(r.err.find("still alive") == std::string::npos);
}

TEST_CASE("signals that cannot go to a channel are refused", "[signal]") {
  gofer::chan<int> ch(1);
  CHECK_THROWS_AS(gofer::notify_signals(ch, {SIGKILL}), std::invalid_argument);
  CHECK_THROWS_AS(gofer::notify_signals(ch, {SIGSTOP}), std::invalid_argument);
  CHECK_THROWS_AS(gofer::notify_signals(ch, {SIGSEGV}), std::invalid_argument);
  CHECK_THROWS_AS(gofer::notify_signals(gofer::chan<int>(gofer::nil), {SIGUSR1}),
                  std::invalid_argument);
}
