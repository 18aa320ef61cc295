// Publish/subscribe through a broker fiber that owns the subscriber list, as
// Go programs write it: subscribe, unsubscribe and publish are messages to
// the broker; each subscriber has a buffered channel of its own; stopping the
// broker closes every subscriber's channel, which ends their range-for. Half
// the subscribers leave halfway, while the broker keeps publishing.
#include <gofer/gofer.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace {

// A handle, as a channel is: copies talk to the same broker, so a fiber can
// hold its own copy instead of a reference into main's frame.
class broker {
 public:
  broker() {
    gofer::go([sub = sub_, unsub = unsub_, pub = pub_, stop = stop_] {
      std::vector<gofer::chan<std::string>> chans;
      for (bool running = true; running;) {
        gofer::select(gofer::on_recv(sub, [&](std::optional<gofer::chan<std::string>> c) { chans.push_back(*c); }),
                      gofer::on_recv(unsub,
                                     [&](std::optional<gofer::chan<std::string>> c) {
                                       auto at = std::find(chans.begin(), chans.end(), *c);
                                       if (at != chans.end()) {
                                         at->close();
                                         chans.erase(at);
                                       }
                                     }),
                      gofer::on_recv(pub,
                                     [&](std::optional<std::string> m) {
                                       for (auto& c : chans) c.send(*m);
                                     }),
                      gofer::on_recv(stop, [&] { running = false; }));
      }
      for (auto& c : chans) c.close();
    });
  }
  gofer::chan<std::string> subscribe() {
    gofer::chan<std::string> c(4);
    sub_.send(c);
    return c;
  }
  // The broker closes c once it has taken the request. It may be blocked
  // sending to c meanwhile, so the caller must keep receiving from c until
  // then (the classic way a pub/sub deadlocks).
  void unsubscribe(const gofer::chan<std::string>& c) {
    gofer::select(gofer::on_send(unsub_, c), gofer::on_recv(stop_));
  }
  void publish(std::string m) { pub_.send(std::move(m)); }
  void stop() { stop_.close(); }

 private:
  gofer::chan<gofer::chan<std::string>> sub_, unsub_;
  gofer::chan<std::string> pub_;
  gofer::chan<> stop_;
};

}  // namespace

int main() {
  return gofer::run([] {
    broker b;
    constexpr int subscribers = 10;
    gofer::chan<std::string> reports(subscribers);
    gofer::wait_group subscribed;
    subscribed.add(subscribers);
    for (int i = 0; i < subscribers; ++i) {
      gofer::go([b, &subscribed, reports, i]() mutable {
        auto c = b.subscribe();
        subscribed.done();
        int got = 0;
        std::string last;
        const bool leaves = i % 2 == 1;
        for (const std::string& m : c) {
          ++got, last = m;
          if (leaves && got == 50) gofer::go([b, c]() mutable { b.unsubscribe(c); });  // and drain until closed
        }
        std::string line = "subscriber " + std::to_string(i) + ": ";
        if (leaves) {
          line += got >= 50 ? "left after 50 messages or more" : "left EARLY";
        } else {
          line += std::to_string(got) + " messages, last \"" + last + "\"";
        }
        reports.send(line);
      });
    }
    subscribed.wait();  // every subscription has reached the broker: sub_ is unbuffered
    for (int m = 1; m <= 100; ++m) b.publish("news " + std::to_string(m));
    b.stop();
    std::vector<std::string> lines;
    for (int i = 0; i < subscribers; ++i) lines.push_back(*reports.recv());
    std::sort(lines.begin(), lines.end());
    for (const auto& l : lines) std::printf("%s\n", l.c_str());
  });
}
