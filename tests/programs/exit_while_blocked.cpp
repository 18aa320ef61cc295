// main returns while other fibers are blocked in every kind of wait, on
// objects that live in main's own frame and so die with it: channel sends and
// receives, the nil channel, a select, locks, a condition variable, a
// semaphore, a wait group, a once whose function never returns, a context
// that is never cancelled, a ticker. Go ends the program there and so must
// gofer: exit status 0, main's output intact, nothing on stderr.
#include <gofer/gofer.hpp>

#include "parked.hpp"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <shared_mutex>

using namespace std::chrono_literals;

int main() {
  return gofer::run([] {
    gofer::chan<int> a, b, never, full(1), nil_chan(gofer::nil);
    full.send(0);
    gofer::mutex mu;
    gofer::rw_mutex rw;
    gofer::cond_var cv;
    gofer::mutex cv_mu;
    gofer::semaphore sem(1);
    gofer::wait_group wg;
    gofer::once once;
    gofer::ticker slow_ticker(1h);
    // Not a structured binding: clang before 16 cannot capture one.
    const auto cancellable = gofer::with_cancel(gofer::context::background());
    const gofer::context& ctx = cancellable.first;

    mu.lock();
    rw.lock();
    sem.acquire();
    wg.add(1);

    gofer::go([&] { a.recv(); });
    gofer::go([&] { b.send(1); });
    gofer::go([&] { full.send(1); });
    gofer::go([&] { nil_chan.recv(); });
    gofer::go([&] { gofer::select(gofer::on_recv(never), gofer::on_send(full, 2), gofer::on_recv(ctx.done())); });
    gofer::go([&] { std::lock_guard lock(mu); });
    gofer::go([&] { std::shared_lock lock(rw); });
    gofer::go([&] { std::lock_guard lock(rw); });
    gofer::go([&] {
      std::unique_lock lock(cv_mu);
      cv.wait(lock);
    });
    gofer::go([&] { sem.acquire(); });
    gofer::go([&] { wg.wait(); });
    gofer::go([&] { once.call([&] { nil_chan.send(1); }); });
    gofer::go([&] { ctx.done().recv(); });
    gofer::go([&] { slow_ticker.c().recv(); });
    gofer::go([] { gofer::tick(1h).recv(); });

    // A second writer waits first for the writers' own mutex, as in Go's
    // RWMutex.Lock, and a second once.call for the once's: each shows as a
    // mutex.lock.
    until_parked(2, "mutex.lock");
    until_parked(1, "rw_mutex.lock_shared");
    until_parked(1, "cond_var.wait");
    until_parked(1, "semaphore.acquire");
    until_parked(1, "wait_group.wait");
    until_parked(1, "select");
    until_parked(2, "chan send");
    until_parked(2, "chan (nil)");  // the nil receive and the once's function
    gofer::go([&] { once.call([] {}); });
    until_parked(3, "mutex.lock");
    until_parked(4, "chan receive");  // a, the context and the two tickers
    std::printf("main returns while %d fibers wait\n", count_parked());
  });
}
