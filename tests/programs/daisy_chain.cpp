// Rob Pike's "Daisy-chain" (Chinese whispers) from "Go Concurrency
// Patterns": four thousand fibers in a line, each passing on one more than
// it received; the first value goes in at the right end and comes out of the
// left. Twice, the second time with the chain built from the other end, so
// the fibers start in the opposite order to the one the value travels in.
// (The talk's chain is 100,000 long; ThreadSanitizer, which tracks every
// fiber as a thread, stops a program at 8,128, and both chains may be alive
// at once.)
#include <gofer/gofer.hpp>

#include <cstdio>
#include <vector>

namespace {

void whisper(gofer::send_chan<int> left, gofer::recv_chan<int> right) { left.send(1 + *right.recv()); }

}  // namespace

int main() {
  return gofer::run([] {
    constexpr int n = 4000;
    gofer::chan<int> leftmost;
    gofer::chan<int> right = leftmost, left = leftmost;
    for (int i = 0; i < n; ++i) {
      right = gofer::chan<int>();
      gofer::go(whisper, left, right);
      left = right;
    }
    gofer::go([right] { right.send(1); });
    std::printf("%d\n", *leftmost.recv());

    std::vector<gofer::chan<int>> links(n + 1);
    for (int i = n - 1; i >= 0; --i) gofer::go(whisper, links[i], links[i + 1]);
    links[n].send(1);
    std::printf("%d\n", *links[0].recv());
  });
}
