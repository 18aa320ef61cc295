// One of two translation units that include gofer.hpp; see CMakeLists.txt.
#include <gofer/gofer.hpp>

#include <cstdio>

int from_b();

int from_a() {
  return gofer::run([] {
    int v = 0;
    gofer::wait_group wg;
    wg.add(1);
    gofer::go([&] {
      v = 20;
      wg.done();
    });
    wg.wait();
    return v;
  });
}

int main() {
  int a = from_a();
  int b = from_b();
  std::printf("a=%d b=%d\n", a, b);
  return a == 20 && b == 22 ? 0 : 1;
}
