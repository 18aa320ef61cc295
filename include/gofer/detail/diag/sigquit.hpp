// SIGQUIT (Ctrl-\) prints every fiber to stderr and exits with status 2, as a Go
// program does. The handler only bumps a futex word (async-signal-safe); a
// helper thread, started with the first runtime that asks for it, does the
// printing. Opt out with options::dump_on_sigquit = false; a handler that the
// program installed itself is never replaced.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "gofer/detail/diag/fiber_dump.hpp"
#include "gofer/detail/diag/own_threads.hpp"
#include "gofer/detail/util/futex.hpp"

namespace gofer::detail {

inline std::atomic<std::uint32_t> sigquit_word{0};

inline void sigquit_handler(int) {
  sigquit_word.fetch_add(1, std::memory_order_relaxed);
  futex_wake(&sigquit_word);
}

inline void install_sigquit_dump() {
  // Keyed by pid rather than a once-flag: a forked child inherits the handler
  // but not the thread, and needs its own.
  static std::mutex mu;
  static pid_t started_in = 0;
  std::lock_guard lk(mu);
  if (started_in == ::getpid()) return;
  struct sigaction old{};
  if (::sigaction(SIGQUIT, nullptr, &old) != 0) return;
  const bool ours = !(old.sa_flags & SA_SIGINFO) && old.sa_handler == &sigquit_handler;
  if (!ours && ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)) return;
  started_in = ::getpid();
  std::thread([] {
    pthread_setname_np(pthread_self(), "gofer-diag");
    own_thread_scope own(0);
    while (sigquit_word.load(std::memory_order_relaxed) == 0) futex_wait(&sigquit_word, 0);
    std::ostringstream os;
    os << "SIGQUIT: quit\n\n";
    dump_all_runtimes(os);
    std::cerr << os.str() << std::flush;
    std::_Exit(2);
  }).detach();
  if (!ours) {
    struct sigaction sa{};
    sa.sa_handler = &sigquit_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGQUIT, &sa, nullptr);
  }
}

}  // namespace gofer::detail
