// gofer::testing::leak_check: silent when every fiber started in its scope
// has finished (also one still finishing when the scope ends), a report
// naming the leaked fiber otherwise, and an abort when nobody asked.
#include <catch2/catch.hpp>
#include <chrono>
#include <gofer/gofer.hpp>
#include <string>

#include "support/eventually.hpp"
#include "support/subprocess.hpp"

using namespace std::chrono_literals;

TEST_CASE("leak_check passes when the scope's fibers have finished", "[testing]") {
  gofer::run([] {
    gofer::testing::leak_check leaks;
    gofer::chan<int> ch;
    gofer::go([ch] { ch.send(1); });
    CHECK(ch.recv() == 1);  // the sender may still be exiting: within the grace
    CHECK(leaks.verify());
    CHECK(leaks.report().empty());
  });
}

TEST_CASE("leak_check reports a fiber left blocked, with its dump", "[testing]") {
  gofer::run([] {
    gofer::chan<int> never(gofer::nil);
    gofer::chan<int> quit;
    {
      gofer::testing::leak_check leaks(50ms);
      gofer::go(gofer::fiber_options{.name = "forgotten"},
                [never, quit] { gofer::select(gofer::on_recv(never), gofer::on_recv(quit)); });
      CHECK_FALSE(leaks.verify());
      const std::string& r = leaks.report();
      INFO(r);
      CHECK(r.find("gofer: 1 fiber leaked by the scope of the leak_check at") != std::string::npos);
      CHECK(r.find("testing_test.cpp") != std::string::npos);
      CHECK(r.find("\"forgotten\" [waiting: select") != std::string::npos);
    }
    // Let it go, and see it gone: fibers still alive when main returns are
    // abandoned without unwinding, and its copies of the channels would leak.
    quit.close();
    CHECK(gofer::test::eventually([] { return gofer::num_fibers() == 1; }));
  });
}

TEST_CASE("leak_check that nobody verified aborts on a leak", "[testing][child]") {
  auto r = gofer::test::run_in_child([] {
    gofer::run([] {
      gofer::chan<int> quit;
      {
        gofer::testing::leak_check leaks(50ms);
        gofer::go([quit] { quit.recv(); });
      }
      quit.close();
    });
  });
  INFO(r.err);
  CHECK(r.signal == SIGABRT);
  CHECK(r.err.find("1 fiber leaked") != std::string::npos);
  CHECK(r.err.find("chan receive") != std::string::npos);
}
