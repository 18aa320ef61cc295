// Fan-in with select and a timeout: several talkers feed one listener, which
// stops listening after a quiet spell, as in Go's "Go Concurrency Patterns".
#include <gofer/gofer.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

namespace {

// Says its name `times` times, pausing between messages, then closes.
gofer::recv_chan<std::string> talker(std::string name, int times, std::chrono::milliseconds pause) {
  gofer::chan<std::string> out;
  gofer::go([=] {
    for (int i = 0; i < times; ++i) {
      out.send(name + " " + std::to_string(i));
      gofer::this_fiber::sleep_for(pause);
    }
    out.close();
  });
  return out;
}

}  // namespace

int main() {
  return gofer::run([] {
    gofer::recv_chan<std::string> joe = talker("joe", 5, 2ms);
    gofer::recv_chan<std::string> ann = talker("ann", 3, 3ms);
    int heard = 0;
    bool quiet = false;
    while (!quiet) {
      // A closed talker's channel is replaced by the nil channel, which is
      // never ready: the select then waits on the others only.
      gofer::select(
          gofer::on_recv(joe, [&](std::optional<std::string> m) {
            if (!m) { joe = gofer::nil; return; }
            std::printf("%s\n", m->c_str());
            ++heard;
          }),
          gofer::on_recv(ann, [&](std::optional<std::string> m) {
            if (!m) { ann = gofer::nil; return; }
            std::printf("%s\n", m->c_str());
            ++heard;
          }),
          gofer::on_timeout(100ms, [&] {
            std::printf("quiet for 100 ms: done\n");
            quiet = true;
          }));
    }
    std::printf("heard %d messages\n", heard);
    return heard == 8 ? 0 : 1;
  });
}
