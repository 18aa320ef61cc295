// sync.Pool as Go programs use it for scratch buffers (fmt's printers,
// encoding/json's encoders): take a buffer, use it across a park, reset it,
// give it back. A hundred fibers do so a hundred times each; no buffer is
// ever held by two fibers at once, every one comes back clean, and the pool
// makes far fewer buffers than it hands out. Also the RAII handle's release()
// (the buffer leaves the pool for good) and put() of one made elsewhere.
#include <gofer/gofer.hpp>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

namespace {

struct buffer {
  std::string data;
  std::atomic<int> holders{0};
};

}  // namespace

int main() {
  return gofer::run([] {
    std::atomic<int> made{0}, shared{0}, dirty{0};
    gofer::pool<buffer> buffers([&] {
      made.fetch_add(1);
      return std::make_unique<buffer>();
    });

    constexpr int fibers = 100, uses = 100;
    gofer::wait_group wg;
    wg.add(fibers);
    for (int f = 0; f < fibers; ++f) {
      gofer::go([&, f] {
        DEFER(wg.done());
        for (int i = 0; i < uses; ++i) {
          auto b = buffers.get();
          if (b->holders.fetch_add(1) != 0) shared.fetch_add(1);
          if (!b->data.empty()) dirty.fetch_add(1);
          b->data = "fiber " + std::to_string(f) + " use " + std::to_string(i);
          const std::string mine = b->data;
          gofer::this_fiber::yield();  // others take buffers meanwhile
          if (b->data != mine) shared.fetch_add(1);
          b->data.clear();
          b->holders.fetch_sub(1);
        }  // b goes back to the pool here
      });
    }
    wg.wait();
    std::printf("%d uses; buffers shared %d times, handed out dirty %d times; %s\n", fibers * uses, shared.load(),
                dirty.load(), made.load() < fibers * uses / 10 ? "few buffers made" : "TOO MANY made");

    std::unique_ptr<buffer> kept = buffers.get().release();
    kept->data = "mine now";
    auto fresh = std::make_unique<buffer>();
    buffers.put(std::move(fresh));
    buffers.put(nullptr);  // ignored
    std::printf("released buffer holds \"%s\"\n", kept->data.c_str());
  });
}
