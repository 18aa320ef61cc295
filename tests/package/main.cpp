// A consumer of gofer as a package: only the public header and the
// gofer::gofer target.
#include <gofer/gofer.hpp>

#include <atomic>
#include <cstdio>

int main() {
  int result = gofer::run([] {
    std::atomic<int> sum{0};
    gofer::wait_group wg;
    for (int i = 1; i <= 10; ++i) {
      wg.add(1);
      gofer::go([&, i] {
        sum += i;
        wg.done();
      });
    }
    wg.wait();
    return sum.load();
  });
  std::printf("consumer: sum %d\n", result);
  return result == 55 ? 0 : 1;
}
