// A worker pool: jobs go out on one channel, results come back on another,
// and closing a quit channel tells every worker to stop early.
#include <gofer/gofer.hpp>

#include <cstdio>

namespace {

struct result {
  int job;
  long value;
};

long collatz_steps(long n) {
  long steps = 0;
  for (; n != 1; ++steps) n = n % 2 == 0 ? n / 2 : 3 * n + 1;
  return steps;
}

void worker(int id, gofer::recv_chan<int> jobs, gofer::send_chan<result> results,
            gofer::recv_chan<gofer::unit> quit, gofer::wait_group& wg) {
  DEFER(wg.done());
  for (;;) {
    bool stop = false;
    gofer::select(
        gofer::on_recv(jobs, [&](std::optional<int> j) {
          if (!j) {
            stop = true;  // no more jobs
            return;
          }
          results.send({*j, collatz_steps(*j)});
        }),
        gofer::on_recv(quit, [&] { stop = true; }));
    if (stop) break;
  }
  std::printf("worker %d stops\n", id);
}

}  // namespace

int main() {
  return gofer::run([] {
    constexpr int workers = 4;
    constexpr int njobs = 1000;
    gofer::chan<int> jobs(16);
    gofer::chan<result> results(16);
    gofer::chan<> quit;
    gofer::wait_group wg;
    wg.add(workers);
    for (int i = 0; i < workers; ++i) gofer::go(worker, i, jobs, results, quit, std::ref(wg));
    wg.add(1);  // the producer too: it must not be left blocked on a full queue
    gofer::go([jobs, quit, &wg] {
      DEFER(wg.done());
      for (int j = 1; j <= njobs; ++j) {
        bool stop = false;
        gofer::select(gofer::on_send(jobs, j), gofer::on_recv(quit, [&] { stop = true; }));
        if (stop) break;
      }
      jobs.close();
    });
    // Take the first 500 results, then tell the workers to quit: any job still
    // queued is dropped. Results in flight are drained so no worker is left
    // blocked on a send.
    long longest = 0;
    for (int i = 0; i < 500; ++i) {
      result r = *results.recv();
      if (r.value > longest) longest = r.value;
    }
    quit.close();
    gofer::go([&] {
      wg.wait();
      results.close();
    });
    int late = 0;
    for (result r : results) {
      (void)r;
      ++late;
    }
    std::printf("longest chain among the first 500 results: %ld steps; %d late results\n",
                longest, late);
    return longest > 0 ? 0 : 1;
  });
}
