// notify_signals: delivers signals to channels (Go's os/signal.Notify).
//
//   gofer::chan<int> sig(1);
//   gofer::notify_signals(sig, {SIGINT, SIGTERM});
//   int s = *sig.recv();   // the program goes on past Ctrl-C to shut down
//
// As in Go:
//   - Delivery never blocks: a signal arriving while the channel's buffer is
//     full is dropped for that channel, so give it a buffer.
//   - A signal with a subscriber no longer takes its default action (SIGINT
//     no longer ends the program); stop_signals(ch) gives it back once no
//     channel wants it.
//   - While any channel is subscribed, run() reports no deadlock: a signal
//     from outside may still wake a fiber.
// And what a C++ program needs besides: a handler the program installed
// before (a function, not SIG_DFL or SIG_IGN) keeps being called, after the
// signal is queued for the channels.
//
// How: the handler does only what is async-signal-safe — it writes the signal
// number to a pipe. A helper thread reads the pipe and does the sends.
// Synchronous fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL) belong to the
// faulting thread, and SIGSEGV to the stack overflow report: they are refused,
// as are SIGKILL and SIGSTOP, which cannot be caught.
#pragma once

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <initializer_list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "gofer/chan.hpp"
#include "gofer/detail/diag/own_threads.hpp"

namespace gofer {

namespace detail {

class signal_hub {
 public:
  // Never destroyed: the helper thread and the handler may run while static
  // destructors do.
  static signal_hub& instance() {
    static signal_hub* h = [] {
      auto* hub = new signal_hub;
      // A forked child has no relay thread: it starts its own on its next
      // subscription. The lock is held across fork so the child's copy of
      // it is never locked by a thread that does not exist there.
      ::pthread_atfork([] { instance().mu_.lock(); }, [] { instance().mu_.unlock(); },
                       [] {
                         instance().started_ = false;
                         instance().mu_.unlock();
                       });
      return hub;
    }();
    return *h;
  }

  void subscribe(send_chan<int> ch, std::initializer_list<int> listed) {
    if (!ch) throw std::invalid_argument("gofer::notify_signals: nil channel");
    std::vector<int> signals(listed);
    if (signals.empty()) {
      // Go's Notify(c) with no signals: every signal a channel can take. Not
      // the two glibc keeps for itself below SIGRTMIN (thread cancellation
      // and set*id), which no program sends.
      for (int s = 1; s < NSIG; ++s) {
        const bool reserved = s >= 32 && s < SIGRTMIN;
        if (relayable(s) && !reserved) signals.push_back(s);
      }
    }
    for (int s : signals) {
      if (s <= 0 || s >= NSIG || !relayable(s))
        throw std::invalid_argument("gofer::notify_signals: signal " + std::to_string(s) +
                                    " cannot be delivered to a channel");
    }
    std::lock_guard lk(mu_);
    start();
    auto it = std::find_if(subs_.begin(), subs_.end(), [&](const sub& x) { return x.ch == ch; });
    if (it == subs_.end()) {
      subs_.push_back({ch, {}});
      it = subs_.end() - 1;
      signal_subscriptions.fetch_add(1, std::memory_order_acq_rel);
    }
    for (int s : signals) {
      if (it->wants[slot(s)]) continue;
      it->wants[slot(s)] = true;
      if (users_[slot(s)]++ == 0) install(s);
    }
  }

  // Catchable, and not a fault that belongs to the thread that raised it.
  static bool relayable(int s) noexcept {
    return s != SIGKILL && s != SIGSTOP && s != SIGSEGV && s != SIGBUS && s != SIGFPE &&
           s != SIGILL;
  }

  void unsubscribe(send_chan<int> ch) {
    std::lock_guard lk(mu_);
    auto it = std::find_if(subs_.begin(), subs_.end(), [&](const sub& x) { return x.ch == ch; });
    if (it == subs_.end()) return;
    for (int s = 1; s < NSIG; ++s) {
      if (it->wants[slot(s)] && --users_[slot(s)] == 0) restore(s);
    }
    subs_.erase(it);
    signal_subscriptions.fetch_sub(1, std::memory_order_acq_rel);
  }

 private:
  // The tables below are indexed by signal number. Every number that reaches
  // one is in [1, NSIG): checked in subscribe, or handed to on_signal by the
  // kernel for a signal installed from there.
  static std::size_t slot(int s) noexcept { return static_cast<std::size_t>(s); }

  struct sub {
    send_chan<int> ch;
    std::array<bool, NSIG> wants;
  };

  void start() {
    if (started_) return;
    if (read_fd_ >= 0) {
      // In a forked child: the parent's pipe is shared with the parent.
      ::close(read_fd_);
      ::close(write_fd_.load(std::memory_order_relaxed));
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
      throw std::system_error(errno, std::generic_category(), "gofer::notify_signals: pipe");
    // A handler must never block: with the pipe full, a signal is dropped
    // (as Go drops one that finds its channel full).
    ::fcntl(fds[1], F_SETFL, O_NONBLOCK);
    read_fd_ = fds[0];
    write_fd_.store(fds[1], std::memory_order_release);
    std::thread([this] { relay(); }).detach();
    started_ = true;
  }

  void relay() {
    own_thread_scope own(0);  // serves every runtime; see signal_subscriptions
    for (;;) {
      unsigned char sig;
      ssize_t n = ::read(read_fd_, &sig, 1);
      if (n != 1) {
        if (n < 0 && errno == EINTR) continue;
        return;
      }
      std::lock_guard lk(mu_);
      for (auto& s : subs_) {
        if (s.wants[sig]) s.ch.try_send(static_cast<int>(sig));
      }
    }
  }

  void install(int s) {
    struct sigaction sa {};
    sa.sa_sigaction = &on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(s, &sa, &old_[slot(s)]) != 0) {
      --users_[slot(s)];
      throw std::system_error(errno, std::generic_category(), "gofer::notify_signals: sigaction");
    }
  }

  void restore(int s) { ::sigaction(s, &old_[slot(s)], nullptr); }

  static void on_signal(int s, siginfo_t* info, void* uctx) {
    const int saved = errno;
    signal_hub& h = instance();
    unsigned char b = static_cast<unsigned char>(s);
    [[maybe_unused]] ssize_t n = ::write(h.write_fd_.load(std::memory_order_acquire), &b, 1);
    // The program's own handler, if it had one, still runs.
    const struct sigaction& old = h.old_[slot(s)];
    if ((old.sa_flags & SA_SIGINFO) != 0) {
      if (old.sa_sigaction != nullptr) old.sa_sigaction(s, info, uctx);
    } else if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN &&
               old.sa_handler != nullptr) {
      old.sa_handler(s);
    }
    errno = saved;
  }

  std::mutex mu_;
  std::vector<sub> subs_;                     // guarded by mu_
  std::array<int, NSIG> users_{};             // guarded by mu_: subscribers per signal
  std::array<struct sigaction, NSIG> old_{};  // written under mu_ before the handler can run
  bool started_ = false;                      // guarded by mu_
  int read_fd_ = -1;
  std::atomic<int> write_fd_{-1};
};

}  // namespace detail

// Relays each listed signal to ch (Go's signal.Notify). Calling it again for
// the same channel adds signals to its set. An empty list means every signal
// that can go to a channel, as Notify(c) with none.
inline void notify_signals(send_chan<int> ch, std::initializer_list<int> signals) {
  detail::signal_hub::instance().subscribe(std::move(ch), signals);
}

// Stops relaying to ch (Go's signal.Stop); a signal that no channel wants any
// more takes back the handling it had before notify_signals. When it returns,
// ch receives no more signals.
inline void stop_signals(send_chan<int> ch) {
  detail::signal_hub::instance().unsubscribe(std::move(ch));
}

}  // namespace gofer
