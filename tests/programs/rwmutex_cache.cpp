// A read-mostly cache behind a reader/writer lock, as Go programs guard a
// map with sync.RWMutex: many readers at once with std::shared_lock, a
// writer alone with std::unique_lock, and a value made of two fields that a
// writer updates together across a park, so a reader that got in beside a
// writer would see them disagree. Writers are not starved by the stream of
// readers: the readers keep reading until every write is done, so were the
// writers starved the program would never end.
#include <gofer/gofer.hpp>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>

namespace {

struct entry {
  long version = 0;
  std::string text = "v0";  // always "v<version>"
};

}  // namespace

int main() {
  return gofer::run([] {
    gofer::rw_mutex mu;
    std::map<int, entry> cache;  // guarded by mu
    for (int k = 0; k < 8; ++k) cache[k] = entry{};

    std::atomic<long> reads{0}, torn{0};
    std::atomic<bool> writers_done{false};
    gofer::wait_group wg;
    for (int r = 0; r < 50; ++r) {
      wg.add(1);
      gofer::go([&, r] {
        DEFER(wg.done());
        for (int i = 0; !writers_done || i < 200; ++i) {
          std::shared_lock lock(mu);
          const entry& e = cache.at((r + i) % 8);
          const long v = e.version;
          gofer::this_fiber::yield();  // hold the read lock across a park
          std::string expected = "v";
          expected += std::to_string(v);
          if (e.text != expected || e.version != v) torn.fetch_add(1);
          reads.fetch_add(1);
        }
      });
    }
    gofer::wait_group writing;
    for (int w = 0; w < 4; ++w) {
      writing.add(1);
      gofer::go([&, w] {
        DEFER(writing.done());
        for (int i = 0; i < 50; ++i) {
          std::unique_lock lock(mu);
          entry& e = cache.at((w * 3 + i) % 8);
          ++e.version;
          gofer::this_fiber::yield();  // half-written while parked
          e.text = "v" + std::to_string(e.version);
        }
      });
    }
    writing.wait();
    writers_done = true;
    wg.wait();
    long versions = 0;
    for (auto& [k, e] : cache) versions += e.version;
    std::printf("writes: %ld; torn reads: %ld; %s\n", versions, torn.load(),
                reads.load() >= 50 * 200 ? "readers read throughout" : "TOO FEW reads");
  });
}
