// The soak: thousands of fibers each doing a random series of operations
// drawn from every primitive at once, so that the primitives meet in the
// orders no test of one primitive writes down: channels buffered and not,
// sent and received directly, in selects, with timeouts and defaults, and
// closed; timers stopped and reset, tickers, AfterFunc; contexts cancelled
// and timed out, with AfterFunc on them; mutex, rw_mutex, cond_var,
// semaphore, wait_group, once, err_group and pool; exceptions thrown and
// caught around parks; blocking() calls; fibers spawning fibers.
//
// Phase one runs every fiber to its end and checks what can be counted:
// values through the shared channels are conserved (sent = received +
// left in buffers, by count and by sum), mutex-protected counters equal the
// increments made, a rw_mutex's reader never sees a writer's half-done
// update, a semaphore never has more than its size out, each once ran its
// function once, a stopped timer or AfterFunc never delivers, an err_group
// returns one of the failures its tasks made, a pooled object is never held
// twice, and no exception is lost or swapped. Phase two then runs the same
// mix in new runtimes whose main returns at a random moment, leaving the
// others in whatever state they are in; the process must still end cleanly.
//
// Every choice comes from the seed, so a failing run can be replayed (the
// interleaving too, with the same $GOFER_SCHED_SEED and $GOFER_PROCS):
//   soak [--seed N] [--fibers N] [--ops N] [--abandon-runs N] [--skip op,op]
// The seed defaults to $GOFER_SOAK_SEED, else to one drawn from the clock; it
// is printed first, and again with the whole command on failure.
#include <gofer/gofer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// splitmix64: small, seedable, good enough to pick operations.
struct rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }
  bool chance(int percent) { return below(100) < percent; }
  std::chrono::microseconds us(int max) { return std::chrono::microseconds(below(max + 1)); }
};

std::atomic<long> violations{0};

void violation(const std::string& what) {
  if (violations.fetch_add(1) < 20) std::fprintf(stderr, "soak: violation: %s\n", what.c_str());
}

void check(bool ok, const char* what) {
  if (!ok) violation(what);
}

// Parks the caller one way or another, or not at all.
void maybe_park(rng& r) {
  switch (r.below(4)) {
    case 0: gofer::this_fiber::yield(); break;
    case 1: gofer::this_fiber::sleep_for(r.us(50)); break;
    default: break;
  }
}

struct pooled_obj {
  std::atomic<int> holders{0};
  long payload = 0;
};

struct after_func_state {
  std::atomic<int> ran{0};
  gofer::chan<> signal{1};
};

// Everything the fibers of one run share.
struct world {
  gofer::context root;

  // Shared channels: every value sent is counted and summed, so are those
  // received; whatever is left in a buffer at the end makes up the
  // difference.
  std::vector<gofer::chan<long>> chans;
  std::atomic<long> sent_n{0}, sent_sum{0}, recv_n{0}, recv_sum{0};

  std::array<gofer::mutex, 4> mus;
  std::array<long, 4> counters{};  // counters[i] guarded by mus[i]
  std::atomic<long> increments{0};

  gofer::rw_mutex rw;
  long rw_x = 0, rw_y = 0;  // guarded by rw; equal whenever it is free

  gofer::mutex q_mu;
  gofer::cond_var q_not_empty, q_not_full;
  std::deque<long> q;  // guarded by q_mu
  std::atomic<long> q_push_sum{0}, q_pop_sum{0};

  static constexpr int sem_size = 4;
  gofer::semaphore sem{sem_size};
  std::atomic<int> sem_out{0};

  std::array<gofer::once, 8> onces;
  std::array<std::atomic<int>, 8> once_runs{};

  gofer::pool<pooled_obj> pool;

  gofer::mutex stopped_mu;
  std::vector<std::shared_ptr<after_func_state>> stopped;  // guarded by stopped_mu

  world() {
    for (int cap : {0, 0, 0, 1, 2, 4, 8, 32}) chans.emplace_back(static_cast<std::size_t>(cap));
  }
};

// ---- the operations --------------------------------------------------------

void op_chan(world& w, rng& r, int) {
  const auto& c = w.chans[static_cast<std::size_t>(r.below(static_cast<int>(w.chans.size())))];
  const long v = r.below(1000);
  switch (r.below(4)) {
    case 0:
      gofer::select(gofer::on_send(c, v, [&] { w.sent_n++, w.sent_sum += v; }), gofer::on_timeout(r.us(300)));
      break;
    case 1:
      gofer::select(gofer::on_recv(c,
                                   [&](std::optional<long> got) {
                                     check(got.has_value(), "a shared channel reported closed");
                                     if (got) w.recv_n++, w.recv_sum += *got;
                                   }),
                    gofer::on_timeout(r.us(300)));
      break;
    case 2:
      if (c.try_send(v)) w.sent_n++, w.sent_sum += v;
      break;
    default:
      if (auto got = c.try_recv()) w.recv_n++, w.recv_sum += *got;
  }
}

void op_select(world& w, rng& r, int) {
  const auto n = static_cast<int>(w.chans.size());
  const auto& a = w.chans[static_cast<std::size_t>(r.below(n))];
  const auto& b = w.chans[static_cast<std::size_t>(r.below(n))];
  const auto& d = w.chans[static_cast<std::size_t>(r.below(n))];
  const gofer::chan<long> nil_chan(gofer::nil);
  const long v = r.below(1000), u = r.below(1000);
  auto got = [&](std::optional<long> x) {
    check(x.has_value(), "a shared channel reported closed in a select");
    if (x) w.recv_n++, w.recv_sum += *x;
  };
  if (r.chance(50)) {
    gofer::select(gofer::on_send(a, v, [&] { w.sent_n++, w.sent_sum += v; }), gofer::on_recv(b, got),
                  gofer::on_send(d, u, [&] { w.sent_n++, w.sent_sum += u; }),
                  gofer::on_recv(nil_chan, [](auto) { violation("a nil channel's case was chosen"); }),
                  gofer::on_timeout(r.us(300)));
  } else {
    gofer::select(gofer::on_recv(a, got), gofer::on_send(b, v, [&] { w.sent_n++, w.sent_sum += v; }),
                  gofer::on_default());
  }
}

void op_close(world&, rng& r, int) {
  // A private pipeline: the producer closes, the consumer ranges.
  gofer::chan<long> c(static_cast<std::size_t>(r.below(4)));
  const int n = r.below(20);
  gofer::go([c, n] {
    for (long i = 1; i <= n; ++i) c.send(i);
    c.close();
  });
  long sum = 0;
  for (long v : c) sum += v;
  check(sum == static_cast<long>(n) * (n + 1) / 2, "values lost in a closed pipeline");
  try {
    c.send(1);
    violation("send on a closed channel did not throw");
  } catch (const gofer::closed_channel_error&) {
  }
  // Closing wakes every receiver.
  gofer::chan<> done;
  gofer::wait_group wg;
  const int k = 1 + r.below(4);
  wg.add(k);
  for (int i = 0; i < k; ++i) {
    gofer::go([done, &wg] {
      check(!done.recv().has_value(), "a closed chan<> delivered a value");
      wg.done();
    });
  }
  maybe_park(r);
  done.close();
  wg.wait();
}

bool value_ready(const gofer::recv_chan<gofer::steady_time>& c) {
  return gofer::select(gofer::on_recv(c), gofer::on_default()) == 0;
}

void op_timer(world&, rng& r, int) {
  gofer::timer t(r.us(500));
  switch (r.below(4)) {
    case 0: t.c().recv(); break;
    case 1:
      maybe_park(r);
      t.stop();
      check(!value_ready(t.c()), "a stopped timer delivered");
      break;
    case 2:
      maybe_park(r);
      t.reset(r.us(500));
      t.c().recv();
      break;
    default:
      t.stop();
      maybe_park(r);
      t.reset(r.us(200));
      t.c().recv();
      t.stop();
      check(!value_ready(t.c()), "a timer stopped after firing delivered again");
  }
}

void op_ticker(world&, rng& r, int) {
  gofer::ticker tk(std::chrono::microseconds(100 + r.below(400)));
  tk.c().recv();
  if (r.chance(50)) tk.reset(std::chrono::microseconds(100 + r.below(400)));
  tk.c().recv();
  tk.stop();
  check(!value_ready(tk.c()), "a stopped ticker delivered");
}

void op_after_func(world& w, rng& r, int) {
  auto st = std::make_shared<after_func_state>();
  auto t = gofer::after_func(r.us(500), [st] {
    st->ran++;
    st->signal.try_send({});
  });
  maybe_park(r);
  if (r.chance(60) && t.stop()) {
    std::lock_guard lock(w.stopped_mu);
    w.stopped.push_back(st);  // checked at the end: it must never run
  } else {
    st->signal.recv();
    check(st->ran == 1, "an AfterFunc ran other than once");
  }
}

void op_context(world& w, rng& r, int) {
  auto [parent, cancel_parent] = gofer::with_cancel(w.root);
  gofer::context ctx = parent;
  gofer::cancel_func cancel = cancel_parent;
  if (r.chance(50)) {
    auto [c, f] = gofer::with_timeout(parent, r.us(500));
    ctx = c, cancel = f;
  }
  auto st = std::make_shared<after_func_state>();
  auto handle = gofer::after_func(ctx, [st] {
    st->ran++;
    st->signal.try_send({});
  });
  if (r.chance(40)) gofer::go([c = r.chance(50) ? cancel_parent : cancel] { c(); });
  gofer::select(gofer::on_recv(ctx.done()), gofer::on_timeout(r.us(800)));
  if (ctx.err()) {
    check(ctx.err() == gofer::errc::canceled || ctx.err() == gofer::errc::deadline_exceeded,
          "a context ended with an unknown error");
    if (ctx.err() == gofer::errc::deadline_exceeded)
      check(ctx.deadline() && std::chrono::steady_clock::now() >= *ctx.deadline(),
            "a context's deadline was exceeded before it");
  }
  cancel_parent();
  check(ctx.err().operator bool(), "cancelling the parent left the child live");
  check(!ctx.done().recv().has_value(), "a context's done channel delivered a value");
  st->signal.recv();  // AfterFunc runs once the context is done
  check(st->ran == 1, "a context's AfterFunc ran other than once");
  check(!handle.stop(), "stopping an AfterFunc that ran returned true");
}

void op_mutex(world& w, rng& r, int) {
  const auto i = static_cast<std::size_t>(r.below(4));
  std::lock_guard lock(w.mus[i]);
  const long v = w.counters[i];
  maybe_park(r);
  w.counters[i] = v + 1;
  w.increments++;
}

void op_rw(world& w, rng& r, int) {
  if (r.chance(25)) {
    std::unique_lock lock(w.rw);
    ++w.rw_x;
    maybe_park(r);
    ++w.rw_y;
  } else {
    std::shared_lock lock(w.rw);
    const long x = w.rw_x;
    maybe_park(r);
    check(x == w.rw_y && x == w.rw_x, "a reader saw a writer's half-done update");
  }
}

void op_cond(world& w, rng& r, int) {
  // This fiber pushes k values; a partner pops k (any k, not these): with
  // as many pops as pushes in all, nobody waits for good.
  const int k = 1 + r.below(4);
  gofer::chan<> partner_done;
  gofer::go([&w, k, partner_done] {
    for (int i = 0; i < k; ++i) {
      std::unique_lock lock(w.q_mu);
      w.q_not_empty.wait(lock, [&] { return !w.q.empty(); });
      w.q_pop_sum += w.q.front();
      w.q.pop_front();
      w.q_not_full.notify_one();
    }
    partner_done.close();
  });
  for (int i = 0; i < k; ++i) {
    const long v = r.below(1000);
    std::unique_lock lock(w.q_mu);
    w.q_not_full.wait(lock, [&] { return w.q.size() < 4; });
    w.q.push_back(v);
    w.q_push_sum += v;
    if (r.chance(50)) {
      w.q_not_empty.notify_one();
    } else {
      w.q_not_empty.notify_all();
    }
  }
  partner_done.recv();
}

void op_sem(world& w, rng& r, int) {
  const int n = 1 + r.below(3);
  bool got = false;
  switch (r.below(3)) {
    case 0:
      w.sem.acquire(n);
      got = true;
      break;
    case 1: {
      auto [ctx, cancel] = gofer::with_timeout(w.root, r.us(300));
      got = !w.sem.acquire(ctx, n);
      break;
    }
    default: got = w.sem.try_acquire(n);
  }
  if (!got) return;
  check(w.sem_out.fetch_add(n) + n <= world::sem_size, "a semaphore gave out more than its size");
  maybe_park(r);
  w.sem_out.fetch_sub(n);
  w.sem.release(n);
}

void op_sem_heavy(world& w, rng& r, int) {
  // Heavier than the whole semaphore: x/sync waits for the context and
  // fails with its error, without holding up anyone else.
  auto [ctx, cancel] = gofer::with_timeout(w.root, r.us(300));
  std::error_code e = w.sem.acquire(ctx, world::sem_size + 1);
  check(e == gofer::errc::deadline_exceeded, "an acquire heavier than the semaphore did not fail with its context");
  check(!w.sem.try_acquire(world::sem_size + 1), "try_acquire heavier than the semaphore succeeded");
}

void op_wait_group(world&, rng& r, int) {
  gofer::wait_group wg;
  std::atomic<int> finished{0};
  const int k = r.below(6);
  wg.add(k);
  for (int i = 0; i < k; ++i) {
    gofer::go([&wg, &finished, park = r.below(3)] {
      if (park == 1) gofer::this_fiber::yield();
      finished++;
      wg.done();
    });
  }
  wg.wait();
  check(finished == k, "wait_group.wait returned before every done()");
}

void op_once(world& w, rng& r, int) {
  const auto i = static_cast<std::size_t>(r.below(static_cast<int>(w.onces.size())));
  w.onces[i].call([&] {
    w.once_runs[i]++;
    maybe_park(r);
  });
  check(w.onces[i].done(), "once.call returned before its function finished");
  // A function that fails the first time: the caller gets the exception and
  // the next call tries again.
  gofer::once retry;
  int calls = 0;
  try {
    retry.call([&] {
      ++calls;
      maybe_park(r);
      throw std::runtime_error("first try");
    });
    violation("a once's exception was lost");
  } catch (const std::runtime_error& e) {
    check(std::strcmp(e.what(), "first try") == 0, "a once rethrew another exception");
  }
  retry.call([&] { ++calls; });
  check(calls == 2 && retry.done(), "a once did not retry after its function threw");
}

void op_err_group(world& w, rng& r, int id) {
  gofer::err_group g(w.root);
  const int limit = r.below(4);
  if (limit > 0) g.set_limit(limit);
  const int k = 1 + r.below(5);
  std::set<std::string> thrown;
  bool returned_code = false;
  for (int i = 0; i < k; ++i) {
    const int kind = r.below(10);
    const std::string msg = "task " + std::to_string(id) + "." + std::to_string(i);
    if (kind == 0) thrown.insert(msg);
    if (kind == 1) returned_code = true;
    g.go([&g, kind, msg, park = r.below(4), wait = r.us(300)]() -> std::error_code {
      if (park == 0) gofer::this_fiber::yield();
      switch (kind) {
        case 0: throw std::runtime_error(msg);
        case 1: return std::make_error_code(std::errc::io_error);
        case 2: gofer::select(gofer::on_recv(g.ctx().done()), gofer::on_timeout(wait)); return {};
        default: return {};
      }
    });
  }
  try {
    std::error_code e = g.wait();
    if (e) {
      check(returned_code && e == std::errc::io_error, "an err_group returned an error no task returned");
    } else {
      check(thrown.empty() && !returned_code, "an err_group lost its tasks' failure");
    }
  } catch (const std::runtime_error& e) {
    check(thrown.count(e.what()) == 1, "an err_group rethrew an exception no task threw");
  }
  check(g.ctx().err().operator bool(), "an err_group's context is live after wait()");
}

void op_pool(world& w, rng& r, int) {
  auto p = w.pool.get();
  check(p->holders.fetch_add(1) == 0, "a pooled object was handed to two holders");
  p->payload = r.below(1000);
  const long mine = p->payload;
  maybe_park(r);
  check(p->payload == mine, "a pooled object changed under its holder");
  p->holders.fetch_sub(1);
  if (r.chance(10)) {
    auto kept = p.release();  // leaves the pool's care: freed here
  }
}

void op_except(world&, rng& r, int id) {
  const std::string mine = "fiber " + std::to_string(id);
  try {
    try {
      throw std::runtime_error(mine);
    } catch (const std::runtime_error& e) {
      maybe_park(r);
      gofer::this_fiber::yield();
      check(e.what() == mine, "a caught exception changed across a park");
      check(std::current_exception() != nullptr, "current_exception() empty after a park");
      try {
        gofer::this_fiber::sleep_for(r.us(50));
        throw;
      } catch (const std::runtime_error& again) {
        check(again.what() == mine, "`throw;` after a park rethrew another fiber's exception");
        throw;
      }
    }
  } catch (const std::runtime_error& outer) {
    maybe_park(r);
    check(outer.what() == mine, "an outer handler caught another fiber's exception");
  } catch (...) {
    violation("`throw;` after a park threw something else");
  }
  check(std::current_exception() == nullptr, "current_exception() not empty after the handlers");
  struct parks_in_destructor {
    ~parks_in_destructor() {
      check(std::uncaught_exceptions() == 1, "uncaught_exceptions() wrong while unwinding");
      gofer::this_fiber::yield();
      check(std::uncaught_exceptions() == 1, "uncaught_exceptions() wrong after parking while unwinding");
    }
  };
  try {
    parks_in_destructor p;
    throw std::logic_error(mine);
  } catch (const std::logic_error& e) {
    check(e.what() == mine, "an exception unwound through a parking destructor changed");
  }
  check(std::uncaught_exceptions() == 0, "uncaught_exceptions() not 0 after the handlers");
}

void op_blocking(world&, rng& r, int) {
  const int x = r.below(1000);
  if (r.chance(80)) {
    check(gofer::blocking([x] { return x * 2; }) == x * 2, "blocking() returned another value");
  } else {
    try {
      gofer::blocking([x]() -> int { throw std::runtime_error("blocking " + std::to_string(x)); });
      violation("blocking() lost its call's exception");
    } catch (const std::runtime_error& e) {
      check(e.what() == "blocking " + std::to_string(x), "blocking() rethrew another exception");
    }
  }
}

void op_sleep(world&, rng& r, int) {
  if (r.chance(50)) {
    gofer::this_fiber::sleep_for(r.us(200));
  } else {
    gofer::this_fiber::yield();
  }
}

using op_fn = void (*)(world&, rng&, int);
struct named_op {
  const char* name;
  op_fn fn;
};
const named_op all_ops[] = {
    {"chan", op_chan},       {"select", op_select}, {"close", op_close},       {"timer", op_timer},
    {"ticker", op_ticker},   {"after_func", op_after_func},                   {"context", op_context},
    {"mutex", op_mutex},     {"rw", op_rw},         {"cond", op_cond},         {"sem", op_sem},
    {"sem_heavy", op_sem_heavy},                    {"wait_group", op_wait_group},
    {"once", op_once},       {"err_group", op_err_group},                     {"pool", op_pool},
    {"except", op_except},   {"blocking", op_blocking},                       {"sleep", op_sleep},
};

std::vector<named_op> chosen_ops;
std::array<std::atomic<long>, std::size(all_ops)> op_counts{};  // by chosen_ops index, every phase


// One fiber's life: `ops` operations, each caught so one surprise does not
// hide the rest. Some operations run in a fiber of their own, spawned here.
void worker(world& w, std::uint64_t seed, int id, int ops) {
  rng r{seed ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(id + 1))};
  for (int i = 0; i < ops; ++i) {
    const named_op& op = chosen_ops[static_cast<std::size_t>(r.below(static_cast<int>(chosen_ops.size())))];
    op_counts[static_cast<std::size_t>(&op - chosen_ops.data())]++;
    try {
      if (r.chance(5)) {
        gofer::chan<> done;
        gofer::go([&w, &op, seed = r.next(), id, done] {
          rng child{seed};
          try {
            op.fn(w, child, id);
          } catch (const std::exception& e) {
            violation(std::string("unexpected exception in ") + op.name + ": " + e.what());
          }
          done.close();
        });
        done.recv();
      } else {
        op.fn(w, r, id);
      }
    } catch (const std::exception& e) {
      violation(std::string("unexpected exception in ") + op.name + ": " + e.what());
    }
  }
}

struct config {
  std::uint64_t seed = 0;
  int fibers = 2000;
  int ops = 30;
  int abandon_runs = 3;
  std::string skip;
};

std::string replay_command(const config& c) {
  std::ostringstream s;
  if (const char* p = std::getenv("GOFER_PROCS")) s << "GOFER_PROCS=" << p << ' ';
  if (const char* p = std::getenv("GOFER_SCHED_SEED")) s << "GOFER_SCHED_SEED=" << p << ' ';
  s << "soak --seed " << c.seed << " --fibers " << c.fibers << " --ops " << c.ops << " --abandon-runs "
    << c.abandon_runs;
  if (!c.skip.empty()) s << " --skip " << c.skip;
  return s.str();
}

// Phase one: every fiber to its end, then the checks.
void checked_run(const config& c) {
  gofer::run([&] {
    world w;
    gofer::wait_group wg;
    wg.add(c.fibers);
    for (int id = 0; id < c.fibers; ++id) {
      gofer::go([&w, &wg, &c, id] {
        worker(w, c.seed, id, c.ops);
        wg.done();
      });
    }
    gofer::chan<> all_done;
    gofer::go([&wg, all_done] {
      wg.wait();
      all_done.close();
    });
    // A bound on the whole phase, so a hang says where everyone was.
    gofer::select(gofer::on_recv(all_done), gofer::on_timeout(120s, [&] {
                    std::fprintf(stderr, "soak: phase one did not finish in 120 s; the fibers:\n");
                    gofer::dump_fibers(std::cerr);
                    std::fprintf(stderr, "soak: replay with: %s\n", replay_command(c).c_str());
                    std::_Exit(1);
                  }));

    for (auto& ch : w.chans)
      while (auto v = ch.try_recv()) w.recv_n++, w.recv_sum += *v;
    check(w.sent_n == w.recv_n, "values sent on the shared channels were not all received");
    check(w.sent_sum == w.recv_sum, "the values received differ from those sent");
    long total = 0;
    for (std::size_t i = 0; i < w.mus.size(); ++i) {
      std::lock_guard lock(w.mus[i]);
      total += w.counters[i];
    }
    check(total == w.increments, "mutex-protected counters lost increments");
    check(w.rw_x == w.rw_y, "a rw_mutex writer's update was left half done");
    check(w.q.empty() && w.q_push_sum == w.q_pop_sum, "values pushed through the cond_var queue were lost");
    check(w.sem_out == 0 && w.sem.try_acquire(world::sem_size), "the semaphore did not get all its units back");
    w.sem.release(world::sem_size);
    for (std::size_t i = 0; i < w.onces.size(); ++i)
      check(w.once_runs[i] <= 1 && (w.once_runs[i] == 1) == w.onces[i].done(), "a once ran its function twice");
    // Past every AfterFunc's moment: those stopped in time never ran.
    gofer::this_fiber::sleep_for(2ms);
    std::lock_guard lock(w.stopped_mu);
    for (const auto& st : w.stopped) check(st->ran == 0, "an AfterFunc stopped in time ran");
  });
}

// Phase two: main returns at a random moment, the others mid-operation.
// They hold the world through a shared_ptr, as Go's garbage collector would
// keep it alive for them; main's frame holds nothing they use.
void abandoned_run(const config& c, int round) {
  rng r{c.seed + 7919ULL * static_cast<std::uint64_t>(round + 1)};
  const int fibers = std::max(1, c.fibers / 4);
  const int yields = r.below(200);
  const auto wait = r.us(3000);
  gofer::run([&] {
    auto w = std::make_shared<world>();
    for (int id = 0; id < fibers; ++id) {
      gofer::go([w, seed = r.next(), id, ops = c.ops] {
        for (;;) worker(*w, seed, id, ops);
      });
    }
    for (int i = 0; i < yields; ++i) gofer::this_fiber::yield();
    gofer::this_fiber::sleep_for(wait);
  });
}

bool parse(int argc, char** argv, config& c) {
  bool seeded = false;
  if (const char* s = std::getenv("GOFER_SOAK_SEED")) c.seed = std::strtoull(s, nullptr, 10), seeded = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return false;
    std::string v = argv[++i];
    if (a == "--seed") {
      c.seed = std::strtoull(v.c_str(), nullptr, 10), seeded = true;
    } else if (a == "--fibers") {
      c.fibers = std::atoi(v.c_str());
    } else if (a == "--ops") {
      c.ops = std::atoi(v.c_str());
    } else if (a == "--abandon-runs") {
      c.abandon_runs = std::atoi(v.c_str());
    } else if (a == "--skip") {
      c.skip = v;
    } else {
      return false;
    }
  }
  if (!seeded)
    c.seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) % 1000000;
  for (const named_op& op : all_ops)
    if (("," + c.skip + ",").find("," + std::string(op.name) + ",") == std::string::npos) chosen_ops.push_back(op);
  return c.fibers > 0 && c.ops >= 0 && !chosen_ops.empty();
}

}  // namespace

int main(int argc, char** argv) {
  config c;
  if (!parse(argc, argv, c)) {
    std::fprintf(stderr, "usage: soak [--seed N] [--fibers N] [--ops N] [--abandon-runs N] [--skip op,op]\n");
    return 2;
  }
  std::printf("soak: %s\n", replay_command(c).c_str());
  std::fflush(stdout);  // said before anything can crash
  checked_run(c);
  for (int round = 0; round < c.abandon_runs; ++round) abandoned_run(c, round);
  if (violations != 0) {
    std::fprintf(stderr, "soak: FAILED with %ld violations; replay with: %s\n", violations.load(),
                 replay_command(c).c_str());
    return 1;
  }
  std::printf("soak: ok; operations run:");
  for (std::size_t i = 0; i < chosen_ops.size(); ++i) std::printf(" %s %ld", chosen_ops[i].name, op_counts[i].load());
  std::printf("\n");
  return 0;
}
