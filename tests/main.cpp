// The test runner. $GOFER_SCHED_SEED, when set, puts every runtime the tests
// start into the randomised scheduling mode with that seed (read by the
// runtime itself); it is printed so a failure can be reproduced.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>

int main(int argc, char* argv[]) {
  if (const char* seed = std::getenv("GOFER_SCHED_SEED")) {
    std::printf("randomised scheduling, GOFER_SCHED_SEED=%s\n", seed);
  }
  return Catch::Session().run(argc, argv);
}
