// A program whose main ends while another fiber is in a given state, for
// runtime_test.cpp, which runs it as a user would (a process of its own) and
// checks how it ends: Go's program simply ends there.
//
//   gofer_main_returns <shape> <procs> <how>
//
// shape: where the other fiber is when main ends —
//   sleep           this_fiber::sleep_for(1h)
//   select_timeout  select(on_recv(c), on_timeout(1h))
//   after_func      an after_func(1h, f) pending (no fiber yet: f waits in the timer)
//   conn_read       conn.read on a socket nobody writes
//   blocking        a blocking() call that returns only after main has ended
//   context         a receive on the done() of a context with a 1h deadline,
//                   whose parent main cancels after the end
//   outside_chan    a receive, and a select, on channels made before the
//                   runtime, which main closes after the end
//   signal          a receive on a channel subscribed to SIGUSR1, which
//                   main raises after the end
//   spin            computing in a loop that never parks
// how: run        return gofer::run(main)
//      run_twice  the same, twice in a row
//      runtime    a gofer::runtime destroyed while its fiber is there
//
// Each fiber owns heap memory in its frame (a string, a channel), which an
// abandoned fiber never frees: a leak checker must not report it. The output
// is printed without flushing, so a crash on the way out would lose it. It
// exits with status 3 (main's result) and prints "before after" once per
// runtime.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include <gofer/gofer.hpp>

using namespace std::chrono_literals;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "main_returns: %s\n", what);
  std::fflush(stderr);
  std::_Exit(1);
}

// A pause between two looks at what another fiber did: a fiber's sleep
// in a fiber, the thread's elsewhere.
void pause() {
  if (gofer::this_fiber::in_fiber()) {
    gofer::this_fiber::sleep_for(100us);
  } else {
    std::this_thread::sleep_for(100us);
  }
}

// Until n fibers are parked with `reason` (as dump_fibers names it), or fail.
void until_parked(int n, std::string_view reason) {
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  for (;;) {
    std::ostringstream dump;
    gofer::dump_fibers(dump);
    const std::string text = dump.str();
    const std::string needle = "[waiting: " + std::string(reason) + ",";
    int seen = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
      ++seen;
    if (seen >= n) return;
    if (std::chrono::steady_clock::now() > give_up) {
      std::fputs(text.c_str(), stderr);
      fail("the fiber never got where main should leave it");
    }
    pause();
  }
}

std::atomic<bool> spinning{false};
gofer::cancel_func cancel_parent;
gofer::chan<int> outside;
gofer::chan<int> outside_too;
std::atomic<std::uint64_t> spins{0};
int pipe_fds[2] = {-1, -1};
std::uint64_t blocking_done_before = 0;

// Starts the shape's fiber through `spawn` (gofer::go or runtime::go) and
// returns once it is in place. In a fiber when `in_fiber`.
template <class Spawn>
void start(std::string_view shape, Spawn spawn, unsigned procs, bool in_fiber) {
  if (shape == "sleep") {
    spawn([] {
      std::string owned(100, 's');
      gofer::this_fiber::sleep_for(1h);
      fail(owned.c_str());
    });
    until_parked(1, "sleep");
  } else if (shape == "select_timeout") {
    spawn([] {
      std::string owned(100, 't');
      gofer::chan<int> c;
      gofer::select(gofer::on_recv(c), gofer::on_timeout(1h));
      fail(owned.c_str());
    });
    until_parked(1, "select");
  } else if (shape == "after_func") {
    // Needs a runtime of the caller's: from a plain thread it would go to the
    // default runtime, which never ends.
    spawn([] {
      gofer::chan<int> c(1);
      gofer::after_func(1h, [owned = std::string(100, 'a'), c] { fail(owned.c_str()); });
    });
    // The spawned fiber has armed the timer and ended.
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (gofer::num_fibers() > (in_fiber ? 1u : 0u)) {
      if (std::chrono::steady_clock::now() > give_up) fail("after_func never armed");
      pause();
    }
  } else if (shape == "conn_read") {
    spawn([] {
      auto l = gofer::net::listener::listen("127.0.0.1:0");
      auto client = gofer::net::dial("127.0.0.1:" + std::to_string(l.port()));
      auto server = l.accept();
      std::byte buf[64];
      (void)server.read(buf);
      fail("read returned");
    });
    until_parked(1, "IO wait (read)");
  } else if (shape == "blocking") {
    if (::pipe(pipe_fds) != 0) fail("pipe");
    blocking_done_before = gofer::detail::blocking_pool::instance().completed();
    spawn([] {
      std::string owned(100, 'b');
      char c = gofer::blocking([&owned] {
        char got = 0;
        if (::read(pipe_fds[0], &got, 1) != 1) fail("read from the pipe");
        owned[0] = got;  // into the frame of a fiber whose runtime has ended
        return got;
      });
      fail(c == 'x' ? "blocking returned after main ended" : "blocking returned");
    });
    until_parked(1, "blocking call");
  } else if (shape == "context") {
    // A child with a deadline of a parent that main cancels after the end.
    auto [parent, cancel] = gofer::with_cancel(gofer::context::background());
    cancel_parent = cancel;
    spawn([parent = parent] {
      auto [ctx, cancel_child] = gofer::with_timeout(parent, 1h);
      ctx.done().recv();
      fail("done");
    });
    until_parked(1, "chan receive");
  } else if (shape == "outside_chan") {
    // Channels made before the runtime, which main closes after its end.
    spawn([] { (void)outside.recv(); fail("received"); });
    spawn([] {
      gofer::select(gofer::on_recv(outside), gofer::on_recv(outside_too),
                    gofer::on_timeout(1h));
      fail("selected");
    });
    until_parked(1, "chan receive");
    until_parked(1, "select");
  } else if (shape == "signal") {
    // A channel that the signal relay keeps sending to after the end.
    spawn([] {
      gofer::chan<int> sig(1);
      gofer::notify_signals(sig, {SIGUSR1});
      (void)sig.recv();
      fail("signalled");
    });
    until_parked(1, "chan receive");
  } else if (shape == "spin") {
    spawn([] {
      std::string owned(100, 'p');
      spinning.store(true);
      for (;;) spins.fetch_add(owned.size(), std::memory_order_relaxed);
    });
    // With one P, main's fiber cannot wait for it: the spinner would never
    // give the P back. There main just returns; the spinner may have started.
    if (!in_fiber || procs > 1) {
      const auto give_up = std::chrono::steady_clock::now() + 20s;
      while (!spinning.load()) {
        if (std::chrono::steady_clock::now() > give_up) fail("the spinner never started");
        pause();
      }
    }
  } else {
    fail("unknown shape");
  }
}

// After the runtime has ended: what the shape needs to be over.
void finish(std::string_view shape) {
  if (shape == "blocking") {
    // The call returns now, its runtime gone; wait until its helper thread
    // is past its last touch of the job, so a touch of freed memory would
    // happen before the program ends.
    if (::write(pipe_fds[1], "x", 1) != 1) fail("write to the pipe");
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (gofer::detail::blocking_pool::instance().completed() == blocking_done_before) {
      if (std::chrono::steady_clock::now() > give_up) fail("the blocking call never ended");
      std::this_thread::sleep_for(100us);
    }
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
  } else if (shape == "context") {
    cancel_parent();  // reaches the child whose waiter was abandoned
  } else if (shape == "outside_chan") {
    // Once per runtime: the channels are made again for the next.
    outside.close();
    outside_too.close();
    outside = gofer::chan<int>();
    outside_too = gofer::chan<int>();
  } else if (shape == "signal") {
    // The relay sends to the channels in the order they subscribed: once
    // this one has the signal, the abandoned fiber's channel has had it.
    gofer::chan<int> mine(1);
    gofer::notify_signals(mine, {SIGUSR1});
    ::raise(SIGUSR1);
    if (mine.recv() != SIGUSR1) fail("no signal");
    gofer::stop_signals(mine);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) fail("usage: gofer_main_returns <shape> <procs> <how>");
  const std::string_view shape = argv[1];
  const auto procs = static_cast<unsigned>(std::atoi(argv[2]));
  const std::string_view how = argv[3];
  // The monitor may rightly report the spinner as holding its P, if main
  // takes a while to return; whether it does is the machine's timing, so it
  // is off: stderr must stay empty.
  const gofer::options opts{.procs = procs, .report_long_runs = shape != "spin"};

  if (how == "runtime") {
    {
      gofer::runtime rt(opts);
      start(shape, [&rt](auto f) { rt.go(std::move(f)); }, procs, false);
      std::printf("before");
    }
    std::printf(" after");
    finish(shape);
    return 3;
  }
  const int times = how == "run_twice" ? 2 : 1;
  if (how != "run" && times != 2) fail("unknown how");
  int result = 0;
  for (int i = 0; i < times; ++i) {
    spinning.store(false);
    result = gofer::run(
        [&] {
          start(shape, [](auto f) { gofer::go(std::move(f)); }, procs, true);
          std::printf("before");
          return 3;
        },
        opts);
    std::printf(" after");
    finish(shape);
  }
  return result;
}
