// The runner for every test executable. Deliberately no more than Catch2's own
// session: the randomised scheduling mode is switched on by the runtime itself
// from $GOFER_SCHED_SEED, so the runner needs no options of its own. Anything
// that every test executable must do before the tests run belongs here.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

int main(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
