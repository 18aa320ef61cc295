// Go by Example, "Worker Pools": three workers take five jobs from a buffered
// channel, each job takes a while, results come back on another channel.
// Go's version sleeps a second per job to show that the five jobs take two
// rounds, not five; this one sleeps 5 ms. Which worker takes which job is
// the scheduler's choice, so the log is sorted by job before it is printed.
#include <gofer/gofer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct event {
  int job;
  int worker;
  bool finished;
};

gofer::mutex log_mu;
std::vector<event> log_events;  // guarded by log_mu

void note(int job, int worker, bool finished) {
  std::lock_guard lock(log_mu);
  log_events.push_back({job, worker, finished});
}

void worker(int id, gofer::recv_chan<int> jobs, gofer::send_chan<int> results) {
  for (int j : jobs) {
    note(j, id, false);
    gofer::this_fiber::sleep_for(5ms);
    note(j, id, true);
    results.send(j * 2);
  }
}

}  // namespace

int main() {
  return gofer::run([] {
    constexpr int num_jobs = 5;
    gofer::chan<int> jobs(num_jobs);
    gofer::chan<int> results(num_jobs);
    const auto start = std::chrono::steady_clock::now();
    for (int w = 1; w <= 3; ++w) gofer::go(worker, w, jobs, results);
    for (int j = 1; j <= num_jobs; ++j) jobs.send(j);
    jobs.close();
    int sum = 0;
    for (int a = 1; a <= num_jobs; ++a) sum += *results.recv();
    const auto took = std::chrono::steady_clock::now() - start;

    std::lock_guard lock(log_mu);
    std::stable_sort(log_events.begin(), log_events.end(),
                     [](const event& a, const event& b) { return a.job < b.job; });
    int bad = 0;
    for (std::size_t i = 0; i + 1 < log_events.size(); i += 2) {
      const event& s = log_events[i];
      const event& f = log_events[i + 1];
      // One worker both started and finished each job, in that order.
      bool same = s.job == f.job && s.worker == f.worker && !s.finished && f.finished;
      std::printf("job %d: started and finished by %s\n", s.job, same ? "one worker" : "DIFFERENT workers");
      bad += same ? 0 : 1;
    }
    std::printf("%zu events, sum of results %d\n", log_events.size(), sum);
    // Five 5 ms jobs on three workers take at least two rounds.
    if (took < 10ms) {
      std::fprintf(stderr, "five jobs on three workers took only %lld us\n",
                   static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
      return 1;
    }
    return bad == 0 ? 0 : 1;
  });
}
