// A broadcast hub: every message goes to every subscriber, each through its
// own buffered channel. The hub never blocks on a subscriber: one whose
// buffer is full is too slow, and is dropped (its channel closed) instead of
// holding everybody else up.
//
// Two subscribers keep up; a third never reads. Exits 0 when the two got
// every message in order and the third was dropped once its buffer filled.
#include <cstdio>
#include <gofer/gofer.hpp>
#include <string>
#include <vector>

namespace {

class hub {
 public:
  // A channel that receives every message published from now on, until the
  // hub closes it (the subscriber fell behind, or the hub stopped).
  gofer::recv_chan<std::string> subscribe(std::size_t buffer) {
    gofer::chan<std::string> ch(buffer);
    subscribe_.send(ch);
    return ch;
  }
  void publish(std::string msg) { publish_.send(std::move(msg)); }
  void stop() { publish_.close(); }

  // The hub's loop; run it in a fiber of its own.
  void run() {
    std::vector<gofer::chan<std::string>> subs;
    for (bool open = true; open;) {
      gofer::select(
          gofer::on_recv(subscribe_,
                         [&](std::optional<gofer::chan<std::string>> s) { subs.push_back(*s); }),
          gofer::on_recv(publish_, [&](std::optional<std::string> msg) {
            if (!msg) {
              open = false;
              return;
            }
            std::erase_if(subs, [&](gofer::chan<std::string>& s) {
              if (s.try_send(*msg)) return false;
              s.close();  // full: too slow, dropped
              return true;
            });
          }));
    }
    for (auto& s : subs) s.close();
  }

 private:
  gofer::chan<gofer::chan<std::string>> subscribe_;
  gofer::chan<std::string> publish_;
};

}  // namespace

int main() {
  return gofer::run([] {
    hub h;
    gofer::wait_group hub_done, readers;
    hub_done.add(1);
    gofer::go([&] {
      h.run();
      hub_done.done();
    });
    constexpr int messages = 100;
    std::vector<int> in_order(2, 0);
    readers.add(2);
    for (int i = 0; i < 2; ++i) {
      gofer::go([&, i, ch = h.subscribe(messages)] {
        int expected = 0;
        for (const std::string& m : ch)
          if (m == "message " + std::to_string(expected)) ++expected;
        in_order[i] = expected;
        readers.done();
      });
    }
    auto slow = h.subscribe(4);  // never read until the end
    for (int n = 0; n < messages; ++n) h.publish("message " + std::to_string(n));
    h.stop();
    hub_done.wait();
    readers.wait();
    int slow_got = 0;
    for (const std::string& m : slow) slow_got += !m.empty();
    std::printf(
        "fast subscribers got %d and %d of %d in order; the slow one got %d, then was dropped\n",
        in_order[0], in_order[1], messages, slow_got);
    return in_order[0] == messages && in_order[1] == messages && slow_got == 4 ? 0 : 1;
  });
}
