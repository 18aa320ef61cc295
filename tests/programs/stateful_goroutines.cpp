// Go by Example, "Stateful Goroutines": one fiber owns a map and serves reads
// and writes sent to it as requests carrying their own reply channels; a
// hundred readers and ten writers share it without a lock. Go's version runs
// for a second and counts what got done; this one does a fixed number of
// operations, so the counts are exact. The owner is left in its select when
// main returns, as in Go.
#include <gofer/gofer.hpp>

#include <atomic>
#include <cstdio>
#include <map>

namespace {

struct read_op {
  int key;
  gofer::chan<int> resp;
};
struct write_op {
  int key;
  int val;
  gofer::chan<bool> resp;
};

// A small deterministic generator per fiber: rand.Intn without a shared state.
struct lcg {
  unsigned long long s;
  int next(int n) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int>((s >> 33) % static_cast<unsigned long long>(n));
  }
};

}  // namespace

int main() {
  return gofer::run([] {
    std::atomic<long> read_ops{0}, write_ops{0}, bad_reads{0};
    gofer::chan<read_op> reads;
    gofer::chan<write_op> writes;

    gofer::go([reads, writes] {
      std::map<int, int> state;
      for (;;) {
        // Nobody closes either channel: the optionals always hold a request.
        gofer::select(gofer::on_recv(reads, [&](std::optional<read_op> r) {
                        if (r) r->resp.send(state[r->key]);
                      }),
                      gofer::on_recv(writes, [&](std::optional<write_op> w) {
                        if (!w) return;
                        state[w->key] = w->val;
                        w->resp.send(true);
                      }));
      }
    });

    gofer::wait_group wg;
    for (int r = 0; r < 100; ++r) {
      wg.add(1);
      gofer::go([&, r] {
        DEFER(wg.done());
        lcg rng{static_cast<unsigned long long>(r) + 1};
        for (int i = 0; i < 50; ++i) {
          read_op op{rng.next(5), gofer::chan<int>()};
          reads.send(op);
          int v = *op.resp.recv();
          // Writers only ever store values below 100.
          if (v < 0 || v >= 100) bad_reads.fetch_add(1);
          read_ops.fetch_add(1);
          if (i % 8 == 0) gofer::this_fiber::yield();
        }
      });
    }
    for (int w = 0; w < 10; ++w) {
      wg.add(1);
      gofer::go([&, w] {
        DEFER(wg.done());
        lcg rng{static_cast<unsigned long long>(w) + 1000};
        for (int i = 0; i < 20; ++i) {
          write_op op{rng.next(5), rng.next(100), gofer::chan<bool>()};
          writes.send(op);
          op.resp.recv();
          write_ops.fetch_add(1);
        }
      });
    }
    wg.wait();
    std::printf("readOps: %ld\nwriteOps: %ld\nbad reads: %ld\n", read_ops.load(), write_ops.load(),
                bad_reads.load());
    return bad_reads.load() == 0 ? 0 : 1;
  });
}
