// A program written the way users write them, compiled under the strict
// warnings a user's project may turn on (see CMakeLists.txt here). Including a
// header checks its non-template code; the templates (chan<T>, select, go,
// timers, context, the sync family) are only checked once a program
// instantiates them, which is what this one does. It is compiled, not run:
// what each piece does is tested elsewhere.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <gofer/gofer.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct job {
  int id;
  std::string name;
};

void producer(gofer::send_chan<job> out, int n) {
  DEFER(out.close());
  for (int i = 0; i < n; ++i) out.send({i, "job " + std::to_string(i)});
}

std::error_code fetch(const gofer::context& ctx, std::chrono::milliseconds latency) {
  std::error_code err;
  gofer::select(gofer::on_recv(ctx.done(), [&] { err = ctx.err(); }),
                gofer::on_timeout(latency, [] {}));
  return err;
}

const gofer::context_key<std::string> request_id;

// An echo over loopback: one fiber serves, the caller dials.
std::string echo_once() {
  auto l = gofer::net::listener::listen("127.0.0.1:0");
  gofer::go([&l] {
    gofer::net::conn c = l.accept();
    char buf[64];
    std::size_t n = c.read(buf);
    c.write(std::string_view(buf, n));
  });
  gofer::net::conn c = gofer::net::dial(l.local_address());
  c.set_deadline(std::chrono::steady_clock::now() + 1s);
  c.write("ping");
  char buf[64];
  return std::string(buf, c.read(buf));
}

}  // namespace

int main() {
  return gofer::run([]() -> int {
    gofer::chan<job> jobs(8);
    gofer::chan<long> results;
    gofer::chan<> quit;
    gofer::go(producer, jobs, 100);

    gofer::wait_group wg;
    wg.add(4);
    for (int w = 0; w < 4; ++w) {
      gofer::go(gofer::fiber_options{.name = "worker"}, [&, w] {
        DEFER(wg.done());
        for (job j : jobs)
          results.send(static_cast<long>(j.id * w) + static_cast<long>(j.name.size()));
      });
    }
    gofer::go([&] {
      wg.wait();
      results.close();
    });
    long sum = 0;
    for (long r : results) sum += r;

    // A ticker's loop with and without its value: a range-for needs a
    // variable, and one left unused must be marked so (as for any range).
    int ticks = 0;
    for (auto t : gofer::tick(1ms)) {
      if (t.time_since_epoch().count() > 0 && ++ticks == 2) break;
    }
    for ([[maybe_unused]] auto t : gofer::tick(1ms)) {
      if (++ticks == 4) break;
    }

    int got = 0;
    std::size_t index = gofer::select(
        gofer::on_recv(quit, [&] { got = -1; }),
        gofer::on_recv(gofer::after(1ms),
                       [&](std::optional<gofer::steady_time> at) { got = at.has_value() ? 1 : 0; }),
        gofer::on_default([] {}));
    (void)index;

    gofer::timer t(10ms);
    t.stop();
    t.reset(1ms);
    t.c().recv();
    gofer::ticker every(1ms);
    every.c().recv();
    every.stop();
    gofer::timer later = gofer::after_func(1ms, [] {});
    later.stop();

    auto [ctx, cancel] = gofer::with_timeout(gofer::context::background(), 50ms);
    auto valued = gofer::with_value(ctx, request_id, "r-1");
    gofer::err_group g(valued);
    g.set_limit(2);
    for (int i = 0; i < 3; ++i)
      g.go([&g, i] { return fetch(g.ctx(), std::chrono::milliseconds(i)); });
    std::error_code err = g.wait();
    cancel();

    gofer::mutex mu;
    gofer::rw_mutex rw;
    gofer::cond_var cv;
    gofer::once once;
    gofer::semaphore sem(4);
    gofer::pool<std::vector<char>> buffers;
    gofer::fiber_local<int> local;
    bool ready = false;
    gofer::go([&] {
      std::lock_guard lk(mu);
      ready = true;
      cv.notify_all();
    });
    {
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return ready; });
    }
    { std::shared_lock lk(rw); }
    once.call([] { std::puts("once"); });
    sem.acquire(2);
    sem.release(2);
    {
      auto buf = buffers.get();
      buf->push_back('x');
    }
    local.get() = 7;
    gofer::this_fiber::yield();
    gofer::this_fiber::sleep_for(1ms);
    int answer = gofer::blocking([] { return 42; });
    std::string echoed = echo_once();

    gofer::chan<int> sig(1);
    gofer::notify_signals(sig, {SIGUSR1});
    gofer::stop_signals(sig);

    std::printf("%ld %d %d %d %d %s %s\n", sum, ticks, got, answer, local.get(),
                err.message().c_str(), echoed.c_str());
    return 0;
  });
}
