// Runs a body in a child process and reports how it ended and what it printed
// on stderr: for the reports that end a process (stack overflow, an exception
// escaping a fiber, SIGQUIT) and for deadlock detection, which needs a process
// with no threads but the runtime's own. The child is killed after a deadline.
// run_program runs a whole program instead (exec), for how a program ends.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace gofer::test {

struct child_result {
  bool exited = false;    // by exit(); then exit_code is set
  int exit_code = -1;
  int signal = 0;         // killed by this signal
  bool timed_out = false;
  std::string err;        // everything written to stderr
};

// True under a user-mode emulator (the AArch64 tests run under qemu-user): it
// adds threads of its own to the process, which the deadlock detector rightly
// counts as threads that may still wake a fiber.
inline bool under_emulator() {
  FILE* f = std::fopen("/proc/thread-self/comm", "r");
  if (f == nullptr) return false;
  char name[64] = {};
  bool qemu = std::fgets(name, sizeof name, f) != nullptr && std::string(name).rfind("qemu-", 0) == 0;
  std::fclose(f);
  return qemu;
}

// Milliseconds from now until `end` (zero or less once it has passed).
inline long long ms_until(std::chrono::steady_clock::time_point end) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now())
      .count();
}

// Waits for the child `pid` and records how it ended in r (a child_result
// or a program_result).
template <class Result>
void reap(pid_t pid, Result& r) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) {
    r.exited = true;
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
}

// `body` runs in the child; when it returns the child exits with status 0.
// `on_output`, if given, runs in the parent each time the child writes to
// stderr, with everything written so far (to send it a signal once it says
// it is ready, say).
inline child_result run_in_child(
    const std::function<void()>& body, std::chrono::seconds deadline = std::chrono::seconds(30),
    const std::function<void(pid_t, const std::string&)>& on_output = {}) {
  int fds[2];
  if (::pipe(fds) != 0) std::abort();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::dup2(fds[1], 2);
    ::dup2(fds[1], 1);  // keep the test framework's own output out of the parent's
    ::close(fds[1]);
    // The test framework reports fatal signals itself; in the child they must
    // act as they would in a plain program, so the parent sees them.
    for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTERM, SIGINT}) {
      struct sigaction dfl{};
      dfl.sa_handler = SIG_DFL;
      sigemptyset(&dfl.sa_mask);
      ::sigaction(sig, &dfl, nullptr);
    }
    body();
    std::_Exit(0);
  }
  ::close(fds[1]);
  child_result r;
  auto end = std::chrono::steady_clock::now() + deadline;
  char buf[4096];
  for (;;) {
    const long long left = ms_until(end);
    if (left <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    r.err.append(buf, static_cast<std::size_t>(n));
    if (on_output) on_output(pid, r.err);
  }
  ::close(fds[0]);
  reap(pid, r);
  return r;
}

struct program_result {
  bool exited = false;  // by exit(); then exit_code is set
  int exit_code = -1;
  int signal = 0;       // killed by this signal
  bool timed_out = false;
  std::string out;      // everything written to stdout
  std::string err;      // everything written to stderr
};

// Runs the program at argv[0] with these arguments, in a fresh process as a
// user runs it (exec, so exit handlers, stdio buffers and a leak checker act
// as in any program), and reports how it ended and what it printed. It is
// killed after `deadline`.
inline program_result run_program(const std::vector<std::string>& argv,
                                  std::chrono::seconds deadline = std::chrono::seconds(60)) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) std::abort();
  pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  program_result r;
  auto end = std::chrono::steady_clock::now() + deadline;
  pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* into[2] = {&r.out, &r.err};
  int open = 2;
  char buf[4096];
  while (open > 0) {
    const long long left = ms_until(end);
    if (left <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(p, 2, static_cast<int>(left)) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || p[i].revents == 0) continue;
      ssize_t n = ::read(p[i].fd, buf, sizeof buf);
      if (n > 0) {
        into[i]->append(buf, static_cast<std::size_t>(n));
      } else {
        ::close(p[i].fd);
        p[i].fd = -1;
        --open;
      }
    }
  }
  for (auto& x : p)
    if (x.fd >= 0) ::close(x.fd);
  reap(pid, r);
  return r;
}

}  // namespace gofer::test
