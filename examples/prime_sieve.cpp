// The concurrent prime sieve of the Go tour: a chain of filter fibers, one per
// prime found, each passing on the numbers its prime does not divide. Closing
// `quit` stops the generator; its close then runs down the chain, so every
// fiber ends before main does.
#include <gofer/gofer.hpp>

#include <cstdio>

namespace {

// Sends 2, 3, 4, … until quit is closed, then closes out.
void generate(gofer::send_chan<int> out, gofer::recv_chan<gofer::unit> quit) {
  for (int i = 2;; ++i) {
    bool stop = false;
    gofer::select(gofer::on_send(out, i), gofer::on_recv(quit, [&] { stop = true; }));
    if (stop) break;
  }
  out.close();
}

// Copies the values from in to out, removing those divisible by prime, until
// in is closed; then closes out.
void filter(gofer::recv_chan<int> in, gofer::send_chan<int> out, int prime) {
  for (int v : in) {
    if (v % prime != 0) out.send(v);
  }
  out.close();
}

}  // namespace

int main() {
  return gofer::run([] {
    gofer::chan<> quit;
    gofer::chan<int> ch;
    gofer::go(generate, ch, quit);
    int last = 0;
    for (int i = 0; i < 100; ++i) {
      int prime = *ch.recv();
      std::printf("%d\n", prime);
      last = prime;
      gofer::chan<int> next;
      gofer::go(filter, ch, next, prime);
      ch = next;
    }
    quit.close();
    for (int v : ch) (void)v;  // what was in flight when the generator stopped
    return last == 541 ? 0 : 1;  // the 100th prime
  });
}
