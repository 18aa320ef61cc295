// The classic goroutine leak, and gofer::testing::leak_check catching it.
//
// first_reply asks three replicas and returns the first answer. Given an
// unbuffered channel the two slower replicas block forever on their send:
// nobody will ever receive. leak_check reports them, with where they were
// created; the fix (a buffer for every replica) passes the same check.
//
// Exits 0 when the leak is caught and the fixed version is clean.
#include <chrono>
#include <cstdio>
#include <gofer/gofer.hpp>
#include <string>

using namespace std::chrono_literals;

namespace {

std::string query(int replica) {
  gofer::this_fiber::sleep_for(std::chrono::milliseconds(5 * replica));
  return "answer from replica " + std::to_string(replica);
}

// Asks every replica through `replies` and returns the first answer.
std::string first_reply(gofer::chan<std::string> replies) {
  for (int r = 1; r <= 3; ++r) gofer::go([replies, r] { replies.send(query(r)); });
  return *replies.recv();
}

}  // namespace

int main() {
  return gofer::run([] {
    bool caught = false, clean = false;
    gofer::chan<std::string> unbuffered;  // the losers block forever on it
    {
      gofer::testing::leak_check leaks(200ms);
      std::printf("leaky: %s\n", first_reply(unbuffered).c_str());
      caught = !leaks.verify();
      std::printf("%s", leaks.report().c_str());
    }
    // Only a demonstration: take the two stuck replies so their fibers end.
    unbuffered.recv();
    unbuffered.recv();
    {
      gofer::testing::leak_check leaks(200ms);
      std::printf("fixed: %s\n", first_reply(gofer::chan<std::string>(3)).c_str());
      clean = leaks.verify();
      std::printf("fixed version leaks nothing: %s\n", clean ? "yes" : "no");
    }
    return caught && clean ? 0 : 1;
  });
}
