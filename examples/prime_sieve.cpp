// The concurrent prime sieve of the Go tour: a chain of filter fibers, one per
// prime found, each passing on the numbers its prime does not divide.
#include <gofer/gofer.hpp>

#include <cstdio>

namespace {

// Sends 2, 3, 4, … forever. When main returns, the generator and the filters
// are left parked and abandoned, as goroutines are in Go.
void generate(gofer::send_chan<int> out) {
  for (int i = 2;; ++i) out.send(i);
}

// Copies the values from in to out, removing those divisible by prime.
void filter(gofer::recv_chan<int> in, gofer::send_chan<int> out, int prime) {
  for (int v : in) {
    if (v % prime != 0) out.send(v);
  }
}

}  // namespace

int main() {
  return gofer::run([] {
    gofer::chan<int> ch;
    gofer::go(generate, ch);
    int last = 0;
    for (int i = 0; i < 100; ++i) {
      int prime = *ch.recv();
      std::printf("%d\n", prime);
      last = prime;
      gofer::chan<int> next;
      gofer::go(filter, ch, next, prime);
      ch = next;
    }
    return last == 541 ? 0 : 1;  // the 100th prime
  });
}
