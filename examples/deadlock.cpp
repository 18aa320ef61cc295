// A deadlock, and run() reporting it as Go does.
//
// The producer forgets to close the channel, so the consumer's range-for
// waits for a fourth value that will never come. Every fiber is then asleep
// with nothing left that could wake one: run() prints
// "gofer: all fibers are asleep - deadlock!" with a dump of every fiber (what
// each waits on, where it was created) and throws gofer::deadlock_error in
// main, which can report it and exit cleanly.
#include <cstdio>
#include <gofer/gofer.hpp>

int main() {
  return gofer::run([] {
    gofer::chan<int> jobs(3);
    gofer::go(gofer::fiber_options{.name = "producer"}, [jobs] {
      for (int j = 1; j <= 3; ++j) jobs.send(j);
      // Missing: jobs.close();
    });
    int sum = 0;
    try {
      for (int j : jobs) sum += j;  // never ends: nobody closes jobs
    } catch (const gofer::deadlock_error& e) {
      std::printf("main caught: %s (sum so far %d)\n", e.what(), sum);
      return sum == 6 ? 0 : 1;
    }
    return 1;
  });
}
