// Go's concurrent prime sieve (the doc's classic, from the Go playground): a
// generator fiber and a chain of filter fibers, one per prime found, each
// passing on what its prime does not divide. main takes the first hundred
// primes and returns, leaving the generator and a hundred filters blocked on
// their channels, as the Go program does.
#include <gofer/gofer.hpp>

#include <cstdio>

namespace {

void generate(gofer::send_chan<int> ch) {
  for (int i = 2;; ++i) ch.send(i);
}

void filter(gofer::recv_chan<int> in, gofer::send_chan<int> out, int prime) {
  for (;;) {
    int i = *in.recv();
    if (i % prime != 0) out.send(i);
  }
}

}  // namespace

int main() {
  return gofer::run([] {
    gofer::chan<int> ch;
    gofer::go(generate, ch);
    for (int i = 0; i < 100; ++i) {
      int prime = *ch.recv();
      std::printf("%d%c", prime, i % 10 == 9 ? '\n' : ' ');
      gofer::chan<int> ch1;
      gofer::go(filter, ch, ch1, prime);
      ch = ch1;
    }
  });
}
