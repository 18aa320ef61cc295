// A program that deadlocks and does not catch it: the producer forgets to
// close its channel, so main's range-for waits for a value that never comes
// while every other fiber is asleep too. As Go's "fatal error: all
// goroutines are asleep - deadlock!", the runtime says so on stderr with a
// dump of the fibers, and the deadlock_error thrown in main, uncaught, ends
// the program through std::terminate (abort).
#include <gofer/gofer.hpp>

int main() {
  return gofer::run([] {
    gofer::chan<int> jobs(3);
    gofer::go(gofer::fiber_options{.name = "producer"}, [jobs] {
      for (int j = 1; j <= 3; ++j) jobs.send(j);
      // Missing: jobs.close();
    });
    gofer::go(gofer::fiber_options{.name = "idle"}, [] {
      gofer::chan<> never;
      never.recv();
    });
    int sum = 0;
    for (int j : jobs) sum += j;
    return sum;
  });
}
