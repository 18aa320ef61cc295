// Go's `select {}`: a fiber that has nothing more to do but must not return
// (a server's main loop lives in other fibers; a helper whose deferred work
// must never run) parks for good with gofer::select() and no cases. main
// finishes its work and returns while that fiber is parked, and the program
// ends normally.
#include <gofer/gofer.hpp>

#include "parked.hpp"

#include <cstdio>

int main() {
  return gofer::run([] {
    gofer::chan<int> results;
    for (int i = 0; i < 4; ++i) {
      gofer::go([results, i] {
        results.send(i * i);
        gofer::select();  // select {}
      });
    }
    int sum = 0;
    for (int i = 0; i < 4; ++i) sum += *results.recv();
    until_parked(4, "select (no cases)");
    std::printf("sum %d; main returns while 4 fibers sit in select {}\n", sum);
  });
}
