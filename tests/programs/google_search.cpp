// "Google Search 3.0" from Rob Pike's "Go Concurrency Patterns": web, image
// and video searches run at once, each sent to two replicas of which the
// first to answer wins, and the whole search gives up after a timeout. The
// slower replicas are left behind, as in the talk: blocked sending an answer
// nobody takes, or still "searching" (sleeping for an hour) when main ends.
//
// The talk's fake searches sleep a random time up to 100 ms. Here each
// replica's latency is fixed so the output is too: a replica either answers
// at once or takes an hour, and the video search has no fast replica, so the
// timeout cuts it off. The talk's timeout is 80 ms; this one is 250 ms, so
// that an answer given at once still comes first on a machine loaded with
// sanitizers and other builds.
#include <gofer/gofer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

using result = std::string;
using search = std::function<result(const std::string&)>;

search fake_search(std::string kind, std::string replica, std::chrono::milliseconds latency) {
  return [=](const std::string& query) {
    if (latency > 0ms) gofer::this_fiber::sleep_for(latency);
    return kind + " result for \"" + query + "\" from " + replica;
  };
}

// First: asks every replica, returns the first answer; the others' sends
// block for good (the talk's unbuffered channel).
result first(const std::string& query, std::vector<search> replicas) {
  gofer::chan<result> c;
  for (const search& s : replicas) gofer::go([=] { c.send(s(query)); });
  return *c.recv();
}

std::vector<result> google(const std::string& query, std::chrono::milliseconds timeout, bool& timed_out) {
  gofer::chan<result> c;
  gofer::go([=] { c.send(first(query, {fake_search("web", "replica 1", 1h), fake_search("web", "replica 2", 0ms)})); });
  gofer::go([=] { c.send(first(query, {fake_search("image", "replica 1", 0ms), fake_search("image", "replica 2", 1h)})); });
  gofer::go([=] { c.send(first(query, {fake_search("video", "replica 1", 1h), fake_search("video", "replica 2", 1h)})); });
  std::vector<result> results;
  auto deadline = gofer::after(timeout);
  timed_out = false;
  for (int i = 0; i < 3 && !timed_out; ++i) {
    gofer::select(gofer::on_recv(c, [&](std::optional<result> r) { results.push_back(*r); }),
                  gofer::on_recv(deadline, [&] { timed_out = true; }));
  }
  return results;
}

}  // namespace

int main() {
  return gofer::run([] {
    const auto start = std::chrono::steady_clock::now();
    bool timed_out = false;
    std::vector<result> results = google("golang", 250ms, timed_out);
    const auto took = std::chrono::steady_clock::now() - start;
    std::sort(results.begin(), results.end());  // arrival order is the scheduler's
    for (const result& r : results) std::printf("%s\n", r.c_str());
    if (timed_out) std::printf("timed out\n");
    // The timeout bounds the search from below too: it did not give up early.
    return took >= 250ms ? 0 : 1;
  });
}
