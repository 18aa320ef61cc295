// Fan-out and fan-in, in the shapes of Rob Pike's "Go Concurrency Patterns":
// generators that talk until told to quit (and answer the quit, a round
// trip), a fan-in by select that multiplexes them onto one channel, then many
// producers and many consumers on one channel, where every value sent is
// received exactly once.
#include <gofer/gofer.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace {

// "boring": sends "<name> <i>" until quit delivers something, then answers
// on quit with a last word.
gofer::recv_chan<std::string> boring(std::string name, gofer::chan<std::string> quit) {
  gofer::chan<std::string> c;
  gofer::go([=] {
    for (int i = 0;; ++i) {
      bool quitting = false;
      gofer::select(gofer::on_send(c, name + " " + std::to_string(i)),
                    gofer::on_recv(quit, [&] { quitting = true; }));
      if (quitting) {
        quit.send(name + " says bye");
        return;
      }
    }
  });
  return c;
}

// fanIn with select: whichever input is ready goes out next.
gofer::recv_chan<std::string> fan_in(gofer::recv_chan<std::string> a, gofer::recv_chan<std::string> b,
                                     gofer::recv_chan<gofer::unit> stop) {
  gofer::chan<std::string> out;
  gofer::go([=] {
    for (;;) {
      std::optional<std::string> v;
      if (gofer::select(gofer::on_recv(a, [&](std::optional<std::string> s) { v = std::move(s); }),
                        gofer::on_recv(b, [&](std::optional<std::string> s) { v = std::move(s); }),
                        gofer::on_recv(stop)) == 2)
        return;
      if (gofer::select(gofer::on_send(out, *v), gofer::on_recv(stop)) == 1) return;
    }
  });
  return out;
}

}  // namespace

int main() {
  return gofer::run([] {
    gofer::chan<std::string> quit_joe, quit_ann;
    gofer::chan<gofer::unit> stop;
    auto c = fan_in(boring("Joe", quit_joe), boring("Ann", quit_ann), stop);
    std::map<std::string, int> next{{"Joe", 0}, {"Ann", 0}};
    int out_of_order = 0;
    for (int i = 0; i < 20; ++i) {
      std::string msg = *c.recv();
      std::string who = msg.substr(0, 3);
      // Each generator's own messages arrive in its order.
      if (std::stoi(msg.substr(4)) != next[who]++) ++out_of_order;
    }
    stop.close();
    quit_joe.send("");
    quit_ann.send("");
    std::printf("%s\n%s\n", quit_joe.recv()->c_str(), quit_ann.recv()->c_str());
    std::printf("20 messages, %s\n", out_of_order == 0 ? "each talker's in its order" : "SOME OUT OF ORDER");

    // Fan-out: 8 producers, 5 consumers, one channel.
    constexpr int producers = 8, consumers = 5, per_producer = 2000;
    gofer::chan<int> work(16);
    gofer::chan<long> subtotals(consumers);
    gofer::wait_group producing;
    producing.add(producers);
    for (int p = 0; p < producers; ++p) {
      gofer::go([&producing, work, p] {
        DEFER(producing.done());
        for (int i = 0; i < per_producer; ++i) work.send(p * per_producer + i);
      });
    }
    gofer::go([&producing, work] {
      producing.wait();
      work.close();
    });
    std::atomic<long> received{0};
    for (int k = 0; k < consumers; ++k) {
      gofer::go([work, subtotals, &received] {
        long sum = 0;
        for (int v : work) sum += v, received.fetch_add(1);
        subtotals.send(sum);
      });
    }
    long total = 0;
    for (int k = 0; k < consumers; ++k) total += *subtotals.recv();
    const long n = producers * per_producer;
    std::printf("%ld values received, sum %s\n", received.load(), total == n * (n - 1) / 2 ? "conserved" : "WRONG");
    return out_of_order == 0 && total == n * (n - 1) / 2 ? 0 : 1;
  });
}
