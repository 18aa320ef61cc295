// Ten fibers, each sleeping a different time, joined by a wait_group: the
// shape of `go f(); wg.Wait()` in gofer.
#include <gofer/gofer.hpp>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

int main() {
  return gofer::run([] {
    std::vector<int> order;
    std::mutex mu;  // fibers may run in parallel on several Ps
    gofer::wait_group wg;
    for (int i = 9; i >= 0; --i) {
      wg.add(1);
      gofer::go(gofer::fiber_options{.name = "sleeper"}, [&, i] {
        DEFER(wg.done());
        gofer::this_fiber::sleep_for(std::chrono::milliseconds(5 * i));
        std::lock_guard lk(mu);
        order.push_back(i);
      });
    }
    wg.wait();
    for (int i : order) std::printf("fiber %d woke\n", i);
    std::printf("%zu fibers left (main)\n", gofer::num_fibers());
    return order.size() == 10 ? 0 : 1;
  });
}
