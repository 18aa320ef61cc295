// The other half of a two-TU program; see CMakeLists.txt.
#include <gofer/gofer.hpp>

int from_b() {
  return gofer::run(
      [] {
        int v = 0;
        gofer::wait_group wg;
        wg.add(1);
        gofer::go([&] {
          gofer::this_fiber::yield();
          v = 22;
          wg.done();
        });
        wg.wait();
        return v;
      },
      {.procs = 2});
}
