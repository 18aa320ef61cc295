// Rob Pike's "Daisy-chain" (Chinese whispers) from "Go Concurrency
// Patterns": n fibers in a line (the argument, 4,000 by default), each
// passing on one more than it received; the first value goes in at the right
// end and comes out of the left. Twice, the second time with the chain built
// from the other end, so the fibers start in the opposite order to the one
// the value travels in. (The talk's chain is 100,000 long; ThreadSanitizer,
// which tracks every fiber as a thread, stops a program at 8,128 of them
// and makes each one dear, so its build runs a shorter chain.)
#include <gofer/gofer.hpp>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

void whisper(gofer::send_chan<int> left, gofer::recv_chan<int> right) { left.send(1 + *right.recv()); }

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 4000;
  return gofer::run([n] {
    gofer::chan<int> leftmost;
    gofer::chan<int> right = leftmost, left = leftmost;
    for (int i = 0; i < n; ++i) {
      right = gofer::chan<int>();
      gofer::go(whisper, left, right);
      left = right;
    }
    gofer::go([right] { right.send(1); });
    const int first = *leftmost.recv();
    std::printf("%s\n", first == n + 1 ? "n + 1 came out" : "WRONG");

    std::vector<gofer::chan<int>> links(static_cast<std::size_t>(n) + 1);
    for (int i = n - 1; i >= 0; --i) gofer::go(whisper, links[static_cast<std::size_t>(i)], links[static_cast<std::size_t>(i) + 1]);
    links.back().send(1);
    const int second = *links.front().recv();
    std::printf("%s\n", second == n + 1 ? "n + 1 came out" : "WRONG");
  });
}
