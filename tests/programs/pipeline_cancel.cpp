// The Go blog's "Pipelines and cancellation": gen -> sq (fanned out to
// several fibers) -> merge, every stage taking a done channel. The consumer
// takes only one value and returns; closing done must let every stage
// upstream return too, instead of leaving them blocked on sends nobody will
// receive. Then the same pipeline run to the end.
#include <gofer/gofer.hpp>

#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <vector>

using namespace std::chrono_literals;

namespace {

using done_chan = gofer::recv_chan<gofer::unit>;

// Sends on out unless done is closed first; false if it was.
bool send_or_done(const gofer::chan<long>& out, long v, const done_chan& done) {
  return gofer::select(gofer::on_send(out, v), gofer::on_recv(done)) == 0;
}

gofer::recv_chan<long> gen(done_chan done, std::vector<long> nums) {
  gofer::chan<long> out;
  gofer::go([=] {
    DEFER(out.close());
    for (long n : nums)
      if (!send_or_done(out, n, done)) return;
  });
  return out;
}

gofer::recv_chan<long> sq(done_chan done, gofer::recv_chan<long> in) {
  gofer::chan<long> out;
  gofer::go([=] {
    DEFER(out.close());
    for (long n : in)
      if (!send_or_done(out, n * n, done)) return;
  });
  return out;
}

gofer::recv_chan<long> merge(done_chan done, std::vector<gofer::recv_chan<long>> cs) {
  gofer::chan<long> out;
  auto wg = std::make_shared<gofer::wait_group>();
  wg->add(static_cast<int>(cs.size()));
  for (const auto& c : cs) {
    gofer::go([=] {
      DEFER(wg->done());
      for (long n : c)
        if (!send_or_done(out, n, done)) return;
    });
  }
  gofer::go([=] {
    wg->wait();
    out.close();
  });
  return out;
}

// Waits, boundedly, until only main is left: every stage has returned.
bool only_main_left() {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (gofer::num_fibers() != 1) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    gofer::this_fiber::sleep_for(100us);
  }
  return true;
}

}  // namespace

int main() {
  return gofer::run([] {
    {
      gofer::chan<gofer::unit> done;
      auto in = gen(done, {2, 3});
      auto out = merge(done, {sq(done, in), sq(done, in)});
      long first = *out.recv();
      std::printf("first value is %s\n", first == 4 || first == 9 ? "4 or 9" : "WRONG");
      done.close();  // the other value is never received
    }
    std::printf("after closing done, every stage returned: %s\n", only_main_left() ? "yes" : "NO");

    {
      gofer::chan<gofer::unit> done;
      DEFER(done.close());
      std::vector<long> nums;
      for (long i = 1; i <= 1000; ++i) nums.push_back(i);
      auto in = gen(done, nums);
      std::vector<gofer::recv_chan<long>> workers;
      for (int i = 0; i < 4; ++i) workers.push_back(sq(done, in));
      long sum = 0, count = 0;
      for (long v : merge(done, workers)) sum += v, ++count;
      std::printf("%ld squares, sum %ld\n", count, sum);
    }
    std::printf("after the full run, every stage returned: %s\n", only_main_left() ? "yes" : "NO");
  });
}
