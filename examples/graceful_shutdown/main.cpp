// Graceful shutdown: workers take jobs until their context is cancelled, then
// finish the job in hand and stop. Here a timeout stands in for the signal a
// server would wait for (see gofer::notify_signals), and after_func logs the
// moment the shutdown starts, as context.AfterFunc would.
#include <gofer/context.hpp>
#include <gofer/gofer.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <tuple>

using namespace std::chrono_literals;

namespace {

// Handles jobs until ctx is cancelled; a job already taken is finished.
void worker(gofer::context ctx, gofer::recv_chan<int> jobs, std::atomic<int>& handled,
            gofer::wait_group& wg) {
  GOFER_DEFER(wg.done());
  for (;;) {
    std::optional<int> job;
    bool stop = false;
    gofer::select(gofer::on_recv(jobs, [&](std::optional<int> j) { job = j; stop = !j; }),
                  gofer::on_recv(ctx.done(), [&] { stop = true; }));
    if (stop) return;
    gofer::this_fiber::sleep_for(2ms);  // the work itself
    handled.fetch_add(1);
  }
}

}  // namespace

int main() {
  return gofer::run([] {
    // Shut down after 100 ms. Not `auto [ctx, cancel] = ...`: clang before 16
    // lets no lambda name a structured binding, and GOFER_DEFER's is a lambda.
    gofer::context ctx;
    gofer::cancel_func cancel;
    std::tie(ctx, cancel) = gofer::with_timeout(gofer::context::background(), 100ms);
    GOFER_DEFER(cancel());
    gofer::chan<> logged(1);
    gofer::after_func(ctx, [logged] {
      std::puts("shutdown requested: draining workers");
      logged.send({});
    });

    constexpr int workers = 4;
    gofer::chan<int> jobs;
    std::atomic<int> handled{0};
    gofer::wait_group wg;
    wg.add(workers);
    for (int i = 0; i < workers; ++i) gofer::go(worker, ctx, jobs, std::ref(handled), std::ref(wg));

    // The producer: more jobs than the workers can finish in time. It stops
    // offering them once the context is cancelled.
    int offered = 0;
    for (bool open = true; open;) {
      gofer::select(gofer::on_send(jobs, offered, [&] { ++offered; }),
                    gofer::on_recv(ctx.done(), [&] { open = false; }));
    }
    wg.wait();  // every worker has finished its last job
    logged.recv();
    std::printf("stopped: %s; %s jobs handled, none left half done\n",
                ctx.err().message().c_str(), handled.load() == offered ? "all taken" : "not all");
    return handled.load() == offered && handled.load() > 0 ? 0 : 1;
  });
}
