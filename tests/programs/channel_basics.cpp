// Go by Example's channel pages in one program: unbuffered and buffered
// channels, synchronisation on a done channel, directions, select over two
// channels, non-blocking sends and receives, closing a channel to say "no
// more jobs", ranging over a channel, and the nil-channel idiom of a merge
// loop: a case whose channel has closed is switched off by making it nil.
#include <gofer/gofer.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

void ping(gofer::send_chan<std::string> pings, std::string msg) { pings.send(msg); }

void pong(gofer::recv_chan<std::string> pings, gofer::send_chan<std::string> pongs) { pongs.send(*pings.recv()); }

// Merges two channels until both are closed; a closed one goes nil.
std::vector<int> merge(gofer::recv_chan<int> a, gofer::recv_chan<int> b) {
  std::vector<int> out;
  while (a || b) {
    gofer::select(gofer::on_recv(a,
                                 [&](std::optional<int> v) {
                                   if (v) {
                                     out.push_back(*v);
                                   } else {
                                     a = gofer::nil;
                                   }
                                 }),
                  gofer::on_recv(b, [&](std::optional<int> v) {
                    if (v) {
                      out.push_back(*v);
                    } else {
                      b = gofer::nil;
                    }
                  }));
  }
  return out;
}

}  // namespace

int main() {
  return gofer::run([] {
    gofer::chan<std::string> messages;
    gofer::go([messages] { messages.send("ping"); });
    std::printf("%s\n", messages.recv()->c_str());

    gofer::chan<std::string> buffered(2);
    buffered.send("buffered");
    buffered.send("channel");
    const std::string first = *buffered.recv();
    std::printf("%s %s\n", first.c_str(), buffered.recv()->c_str());

    gofer::chan<bool> done(1);
    gofer::go([done] {
      std::printf("working...");
      done.send(true);
    });
    done.recv();
    std::printf("done\n");

    gofer::chan<std::string> pings(1), pongs(1);
    ping(pings, "passed message");
    pong(pings, pongs);
    std::printf("%s\n", pongs.recv()->c_str());

    gofer::chan<std::string> c1, c2;
    gofer::go([c1] { c1.send("one"); });
    gofer::go([c2] { c2.send("two"); });
    std::vector<std::string> got;
    for (int i = 0; i < 2; ++i)
      gofer::select(gofer::on_recv(c1, [&](std::optional<std::string> m) { got.push_back(*m); }),
                    gofer::on_recv(c2, [&](std::optional<std::string> m) { got.push_back(*m); }));
    std::printf("received %s and %s\n", std::min(got[0], got[1]).c_str(), std::max(got[0], got[1]).c_str());

    gofer::chan<std::string> nobody;
    gofer::select(gofer::on_recv(nobody, [](auto) { std::printf("received message\n"); }),
                  gofer::on_default([] { std::printf("no message received\n"); }));
    gofer::select(gofer::on_send(nobody, std::string("hi"), [] { std::printf("sent message\n"); }),
                  gofer::on_default([] { std::printf("no message sent\n"); }));

    // The worker's lines and main's interleave as the scheduler runs them, so
    // the worker keeps its own and main prints them after its.
    gofer::chan<int> jobs(5);
    gofer::chan<std::vector<std::string>> all_done;
    gofer::go([jobs, all_done] {
      std::vector<std::string> log;
      for (;;) {
        if (auto j = jobs.recv()) {
          log.push_back("received job " + std::to_string(*j));
        } else {
          log.push_back("received all jobs");
          all_done.send(log);
          return;
        }
      }
    });
    for (int j = 1; j <= 3; ++j) {
      jobs.send(j);
      std::printf("sent job %d\n", j);
    }
    jobs.close();
    std::printf("sent all jobs\n");
    const std::vector<std::string> log = *all_done.recv();
    for (const std::string& line : log) std::printf("%s\n", line.c_str());
    auto more = jobs.recv();
    std::printf("received more jobs: %s\n", more ? "true" : "false");

    gofer::chan<std::string> queue(2);
    queue.send("one");
    queue.send("two");
    queue.close();
    for (const std::string& elem : queue) std::printf("%s\n", elem.c_str());

    gofer::chan<int> odd, even;
    gofer::go([odd] {
      for (int i = 1; i < 10; i += 2) odd.send(i);
      odd.close();
    });
    gofer::go([even] {
      for (int i = 0; i < 10; i += 2) even.send(i);
      even.close();
    });
    int sum = 0;
    for (int v : merge(odd, even)) sum += v;
    std::printf("merged until both closed: sum %d\n", sum);

    try {
      jobs.send(4);
    } catch (const gofer::closed_channel_error& e) {
      std::printf("send on a closed channel: %s\n", e.what());
    }
  });
}
