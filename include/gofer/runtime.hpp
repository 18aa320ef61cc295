// The runtime: options, explicit runtimes, the default runtime and run() —
// the surface of Go's runtime package that a program starts from.
#pragma once

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "gofer/detail/diag/deadlock_error.hpp"
#include "gofer/detail/diag/fiber_dump.hpp"
#include "gofer/detail/diag/sigquit.hpp"
#include "gofer/detail/park/park.hpp"
#include "gofer/detail/sched/go_overloads.hpp"
#include "gofer/detail/sched/scheduler.hpp"
#include "gofer/detail/stack/slab.hpp"
#include "gofer/detail/util/source_location.hpp"

namespace gofer {

struct options {
  // Ps: how many fibers run in parallel. 0 = $GOFER_PROCS if set, else
  // num_cpu(). Fixed for the runtime's lifetime.
  unsigned procs = 0;
  // Bytes of stack per fiber. 0 = 256 KiB (1 MiB in sanitizer builds). Only
  // the pages a fiber touches cost memory: a parked fiber that has not
  // recursed costs one 4 KiB page whatever this says.
  std::size_t stack_size = 0;
  // Stack overflow checks. An overflow gofer sees ends the program with
  // "gofer: stack overflow in fiber N (name)" and the fiber's creation site
  // on stderr, then abort(). false (the default) chooses per stack: a guard
  // page below it wherever that is cheap, so that an overflowing frame
  // faults at once. On Linux 6.13 and later (MADV_GUARD_INSTALL) that is
  // every stack, at one system call (about 2 us) when the stack is first
  // carved (stacks are reused: spawning from a warm cache pays nothing), and
  // no memory or mapping. Older kernels guard with mprotect, which adds two
  // mappings per stack against vm.max_map_count (65,530 by default), so
  // only while the guards use at most a quarter of it (about 8,000 stacks);
  // stacks beyond get a canary, a zone at the far end checked at every
  // switch, which sees an overflow late and may miss one
  // (detail/stack/slab.hpp). Either way a million fibers fit. A single
  // frame larger than a page can also step over a guard and return unseen,
  // unless compiled with -fstack-clash-protection. true puts a guard on
  // every stack whatever it costs: with mprotect a process then runs out of
  // mappings near 32,000 fibers. A bool rather than a three-way choice: the
  // default suits nearly every program, and turning guards off would save
  // only that one system call per stack carved.
  bool guard_pages = false;
  // See run().
  bool detect_deadlock = true;
  // SIGQUIT prints every fiber to stderr and exits with status 2, as Go. Off
  // leaves SIGQUIT alone; a handler the program installed is never replaced.
  bool dump_on_sigquit = true;
  // Randomised scheduling for tests: sometimes skips runnext, varies steal
  // order and yields at park points, driven by this seed. 0 = the value of
  // $GOFER_SCHED_SEED if set, else off.
  std::uint64_t sched_seed = 0;
  // A monitor thread reports, once per fiber, a fiber that has held its P for
  // over 10 ms without parking, yielding or spawning while something only
  // that P would run waited all that time (scheduling is cooperative: the
  // fibers queued behind it, or its due timers, wait), with its name and
  // creation site: computing (10 ms of its thread's CPU time) or blocked in
  // a plain system call. A fiber computing with nothing behind it is not
  // reported.
  bool report_long_runs = true;
};

// How many fibers go() may start with; see go.hpp.
struct fiber_options {
  std::string_view name = {};  // for dumps; copied (up to 256 bytes)
  std::size_t stack_size = 0;  // 0 = the runtime's
};

// CPUs this process may use: the affinity mask, capped by the cgroup v2 CPU
// quota (cpu.max) of this process's cgroup and its ancestors, rounded up, as
// Go 1.25 computes its default GOMAXPROCS.
inline unsigned num_cpu() {
  cpu_set_t set;
  unsigned n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = static_cast<unsigned>(CPU_COUNT(&set));
  if (n == 0) n = static_cast<unsigned>(sysconf(_SC_NPROCESSORS_ONLN));
  if (n == 0) n = 1;
  std::ifstream cg("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(cg, line)) {
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  }
  if (!path.empty()) {
    double limit = 0;
    for (;;) {
      std::ifstream f("/sys/fs/cgroup" + path + "/cpu.max");
      std::string quota;
      double period = 0;
      if (f >> quota >> period && quota != "max" && period > 0) {
        double l = std::stod(quota) / period;
        if (limit == 0 || l < limit) limit = l;
      }
      if (path == "/" || path.empty()) break;
      auto slash = path.rfind('/');
      path = slash == 0 ? "/" : path.substr(0, slash);
    }
    if (limit > 0) {
      auto q = static_cast<unsigned>(std::ceil(limit));
      if (q < n) n = q < 1 ? 1 : q;
    }
  }
  return n;
}

namespace detail {

inline unsigned resolve_procs(unsigned requested) {
  if (requested != 0) return requested;
  if (const char* s = std::getenv("GOFER_PROCS")) {
    char* end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (end != s && v > 0 && v < 65536) return static_cast<unsigned>(v);
  }
  return num_cpu();
}

inline runtime_config make_config(const options& o) {
  runtime_config c;
  c.procs = resolve_procs(o.procs);
  c.stack_size = o.stack_size != 0 ? o.stack_size : default_stack_size;
  c.guards = o.guard_pages ? guard_policy::always : guard_policy::automatic;
  c.detect_deadlock = o.detect_deadlock;
  c.dump_on_sigquit = o.dump_on_sigquit;
  c.random = sched_randomizer::from_environment();
  c.long_run_ns = o.report_long_runs ? 10'000'000 : 0;
  // $GOFER_DEBUG: comma-separated settings, as Go's GODEBUG.
  if (const char* d = std::getenv("GOFER_DEBUG")) {
    std::string_view s(d);
    auto at = s.find("schedtrace=");
    if (at != std::string_view::npos) {
      long ms = std::strtol(d + at + 11, nullptr, 10);
      if (ms > 0) c.schedtrace_ns = static_cast<std::int64_t>(ms) * 1'000'000;
    }
  }
  if (o.sched_seed != 0) c.random.seed = o.sched_seed;
  return c;
}

// A runtime's owner: ends it through runtime_impl::deleter, which may leave
// it to a worker that is still busy.
using runtime_ptr = std::unique_ptr<runtime_impl, runtime_impl::deleter>;

inline runtime_ptr start_runtime(const options& o) {
  runtime_config cfg = make_config(o);
  if (cfg.dump_on_sigquit) install_sigquit_dump();
  return runtime_ptr(new runtime_impl(cfg));
}

template <class F, class... Args>
concept spawnable = std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>;

template <class F, class... Args>
void go_on(runtime_impl* rt, const fiber_options& o, const source_location& loc, F&& f,
           Args&&... args) {
  runtime_impl::spawn_args a;
  a.name = o.name;
  a.stack_size = o.stack_size;
  a.file = loc.file_name();
  a.line = loc.line();
  if constexpr (sizeof...(Args) == 0) {
    rt->spawn(std::forward<F>(f), a);
  } else {
    // Decay-copied as std::thread does; invoked as rvalues, so move-only
    // arguments and mutable lambdas work.
    rt->spawn([fn = std::forward<F>(f), ... xs = std::forward<Args>(args)]() mutable {
      std::invoke(std::move(fn), std::move(xs)...);
    }, a);
  }
}

runtime_impl* runtime_for_go();

}  // namespace detail

// An explicit scheduler instance with its own Ms and Ps.
class runtime {
 public:
  explicit runtime(options o = {}) : impl_(detail::start_runtime(o)) {}
  // Stops the workers, each as soon as the fiber it is running parks or
  // finishes, then abandons every fiber still alive, as Go abandons goroutines
  // when main returns: fibers that never started have their callables
  // destroyed; started ones are dropped without unwinding, whatever they wait
  // on (a sleep, a timer or ticker, a select's timeout, a context, a socket,
  // a lock or channel). Pending timers never fire, an after_func's function
  // is destroyed unrun. A blocking() call in flight runs to its end on its
  // helper thread, and its result is dropped. Nothing may wake such a fiber
  // afterwards.
  //
  // A worker whose fiber still computes without parking, for 10 ms of its
  // thread's CPU time after the destructor began (or is blocked in a plain
  // system call then), is not waited for: a program's end must not hang on a
  // loop (Go's would end there). The destructor abandons every other fiber,
  // then returns and leaves that worker's thread running, detached: it runs
  // that fiber until it parks or finishes, never another one (what it spawns
  // is dropped unrun), then stops and frees what the runtime still held. If
  // it never stops, the thread ends with the process. Such a fiber runs on
  // after its program thought it gone: it must not use what has been
  // destroyed since (main's locals, static objects once main has returned).
  // Until it stops, its thread counts for the deadlock rule of other
  // runtimes as any thread that might wake a fiber.
  ~runtime() = default;
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  GOFER_DETAIL_GO_ALL_ARITIES(, impl_.get())

  // The runtime that gofer::go uses from threads that are not fibers. Started
  // by the first use, with default options, and never destroyed (its workers
  // end with the process).
  static runtime& default_runtime() {
    static runtime* rt = new runtime(options{});
    return *rt;
  }

  unsigned procs() const noexcept { return impl_->procs(); }
  detail::runtime_impl& impl() noexcept { return *impl_; }

 private:
  detail::runtime_ptr impl_;
};

namespace detail {

inline runtime_impl* runtime_for_go() {
  if (runtime_impl* rt = current_runtime()) return rt;
  return &runtime::default_runtime().impl();
}

struct run_state {
  std::atomic<bool> done{false};
  int result = 0;
  std::exception_ptr error;
};

// A runtime seen with nothing to run and nothing pending, and its activity
// count then (see check_deadlock).
struct quiet_runtime {
  std::uint32_t serial;
  std::uint64_t activity;
};

// The runtimes other than `self` that are quiescent now. Their threads can
// make no fiber runnable until something outside them wakes one first: a
// plain thread, a signal, or a fiber of `self`.
inline std::vector<quiet_runtime> quiet_others(const runtime_impl& self) {
  std::vector<quiet_runtime> out;
  std::lock_guard lk(runtime_registry_mu);  // keeps each registered runtime alive
  for (const runtime_impl* r : runtime_registry) {
    if (r == &self) continue;
    const std::uint64_t activity = r->activity();
    if (r->quiescent()) out.push_back({r->serial(), activity});
  }
  return out;
}

// Whether each of `seen` is still registered, quiescent, and has not woken
// since.
inline bool still_quiet(const std::vector<quiet_runtime>& seen) {
  std::lock_guard lk(runtime_registry_mu);
  for (const quiet_runtime& q : seen) {
    auto it = std::find_if(runtime_registry.begin(), runtime_registry.end(),
                           [&](const runtime_impl* r) { return r->serial() == q.serial; });
    if (it == runtime_registry.end() || !(*it)->quiescent() || (*it)->activity() != q.activity)
      return false;
  }
  return true;
}

// Confirms a suspected deadlock and, if real, reports it and interrupts main.
// Quiescence must hold twice, 20 ms apart, with no M waking in between: a
// single look could fall between an M going idle and a thread readying a fiber.
// The second look comes after the check that no other thread lives: a thread
// may ready a fiber and exit just after the runtime was last seen quiet, and
// once no other thread is left, nothing else can make one runnable, so what
// the last look sees stays true. Other runtimes quiet at both looks count as
// asleep, their threads with them (a program that used the default runtime
// from a plain thread keeps that runtime's idle threads for good); one that
// is not makes the check give up, as any other live thread does.
inline bool check_deadlock(runtime_impl& rt, run_state& st, fiber* main_fiber) {
  std::uint64_t before = rt.activity();
  if (!rt.quiescent()) return false;
  const std::vector<quiet_runtime> others = quiet_others(rt);
  std::uint32_t q = rt.quiet_word().load(std::memory_order_seq_cst);
  futex_wait(&rt.quiet_word(), q, 20'000'000);
  if (st.done.load(std::memory_order_acquire)) return false;
  std::vector<unsigned> asleep{rt.serial()};
  for (const quiet_runtime& o : others) asleep.push_back(o.serial);
  if (other_threads_alive(asleep)) return false;
  if (signal_subscriptions.load(std::memory_order_acquire) != 0) return false;
  if (!still_quiet(others)) return false;
  if (!rt.quiescent() || rt.activity() != before) return false;
  std::ostringstream os;
  os << "gofer: all fibers are asleep - deadlock!\n\n";
  dump_runtime(os, rt);
  std::fputs(os.str().c_str(), stderr);
  std::fflush(stderr);
  main_fiber->interrupted = true;
  rt.ready(main_fiber, false);
  return true;
}

}  // namespace detail

// Starts a runtime with `o`, runs `main` as a fiber on it and returns when main
// returns: its int result, or 0. An exception from main propagates out of
// run(). Fibers still alive then are abandoned (see ~runtime) and waited for
// by nothing: a fiber computing without parking is left to finish on its own
// thread, which run() leaves running, detached (~runtime says what that
// thread may and may not do). When every fiber is parked and nothing can wake
// one (no timer, no blocking call or I/O in flight, no OS thread besides the
// runtime's own, a sanitizer's (see own_threads.hpp) and those of other
// runtimes just as quiet), run() prints
// "gofer: all fibers are asleep - deadlock!" and a fiber dump to stderr, and
// throws deadlock_error in the main fiber.
template <class F>
  requires std::invocable<F&>
int run(F&& main, options o = {},
        detail::source_location loc = detail::source_location::current()) {
  detail::runtime_ptr rt = detail::start_runtime(o);
  detail::run_state st;
  detail::runtime_impl::spawn_args a;
  a.name = "main";
  a.file = loc.file_name();
  a.line = loc.line();
  detail::runtime_impl* r = rt.get();
  detail::fiber* main_fiber = r->spawn(
      [&main, &st, r] {
        try {
          using R = std::invoke_result_t<F&>;
          if constexpr (std::is_convertible_v<R, int>) {
            st.result = static_cast<int>(std::invoke(main));
          } else {
            std::invoke(main);
          }
        } catch (...) {
          st.error = std::current_exception();
        }
        st.done.store(true, std::memory_order_release);
        r->quiet_word().fetch_add(1, std::memory_order_seq_cst);
        detail::futex_wake(&r->quiet_word(), INT_MAX);
      },
      a);
  const bool detect = r->config().detect_deadlock;
  for (;;) {
    std::uint32_t q = r->quiet_word().load(std::memory_order_seq_cst);
    if (st.done.load(std::memory_order_acquire)) break;
    bool quiet = detect && r->quiescent();
    if (quiet && detail::check_deadlock(*r, st, main_fiber)) continue;
    detail::futex_wait(&r->quiet_word(), q, quiet ? 100'000'000 : -1);
  }
  rt.reset();
  if (st.error) std::rethrow_exception(st.error);
  return st.result;
}

}  // namespace gofer
