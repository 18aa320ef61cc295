// poll_desc: the state of one non-blocking fd in the netpoller (Go's
// pollDesc in runtime/netpoll.go), and the wait for it to become readable or
// writable.
//
// Each direction (read, write) has:
//   - ready: an edge arrived that nobody has consumed. Edge-triggered epoll
//     reports a transition once; if it lands between a read() that saw EAGAIN
//     and the wait, this flag is what keeps it from being lost.
//   - a parked waiter (at most one: concurrent reads of one conn queue up
//     behind the conn's read lock above this layer, as Go's fdMutex does).
//   - a deadline and a timer that wakes the waiter when it passes.
// All of it is guarded by `mu`, a spinlock held only for a few loads and
// stores, by the fiber, the poller (on_event), the deadline timer and close().
//
// Wakes may be spurious: the woken party always looks at the state again
// (closing, then the deadline, then ready). That is what makes the races here
// harmless: a stale edge reported for an fd since closed and reused only
// costs the new owner one extra read() that sees EAGAIN; a timer that fires
// just as its deadline moves only wakes the waiter to re-arm it.
//
// Memory: descriptors are never freed, only recycled through a free list
// (Go's pollCache does the same). Epoll and the timer heap hold pointers to
// them that may outlive the fd by one event or one firing; type-stable memory
// makes those late touches harmless.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "gofer/detail/park/waiter.hpp"
#include "gofer/detail/sched/netpoll.hpp"
#include "gofer/detail/time/timer_heap.hpp"
#include "gofer/detail/util/spinlock.hpp"
#include "gofer/sync/mutex.hpp"

namespace gofer::detail {

enum class io_dir : std::uint8_t { read = 0, write = 1 };
enum class io_wait_result : std::uint8_t { ready, closed, timed_out };

struct poll_desc;

struct pd_timer : timer_node {
  poll_desc* pd = nullptr;
  io_dir dir = io_dir::read;
};

struct poll_desc : poll_target {
  struct direction {
    bool ready = false;
    waiter* w = nullptr;
    // Written under mu; read without it by deadline_passed.
    std::atomic<std::int64_t> deadline{never};
    pd_timer timer;
  };

  spinlock mu;
  int fd = -1;
  runtime_impl* rt = nullptr;
  bool closing = false;  // guarded by mu
  direction dirs[2];
  // In-flight operations, times two; bit 0: close() was called. The fd is
  // closed by whichever of close() and the last operation comes last, so a
  // read() in progress never sees its fd number reused under it.
  std::atomic<std::uint32_t> refs{0};
  // Serialise readers (or acceptors) among themselves, and writers: one
  // parked waiter per direction, and each write's bytes contiguous.
  gofer::mutex read_mu;
  gofer::mutex write_mu;
  // Guarded by read_mu: the last read was short (see conn::read).
  bool drained = false;
  // The peer hung up or the socket failed (sticky, set by the poller): a
  // short read then does not mean that nothing is left to read, since the
  // end of the stream or the error is still to be reported.
  std::atomic<bool> hup{false};
  poll_desc* next_free = nullptr;

  poll_desc() noexcept {
    on_event = &handle_event;
    for (int d = 0; d < 2; ++d) {
      dirs[d].timer.pd = this;
      dirs[d].timer.dir = static_cast<io_dir>(d);
      dirs[d].timer.fire = &deadline_fired;
    }
  }

  // Waits until the fd may be ready in direction d, it is closed, or d's
  // deadline passes. Throws deadlock_error if the deadlock detector interrupts
  // (it does not while anyone waits on I/O, but keep the contract uniform).
  io_wait_result wait(io_dir d) {
    maybe_yield_randomly();
    direction& dir = dirs[static_cast<int>(d)];
    mu.lock();
    for (;;) {
      if (closing) {
        mu.unlock();
        return io_wait_result::closed;
      }
      // Before readiness, as Go: once the deadline has passed, the fd being
      // ready changes nothing.
      if (deadline_passed(d)) {
        mu.unlock();
        return io_wait_result::timed_out;
      }
      if (dir.ready) {
        dir.ready = false;
        mu.unlock();
        return io_wait_result::ready;
      }
      if (dir.deadline.load(std::memory_order_relaxed) != never) arm_timer(dir);
      waiter w;
      dir.w = &w;
      rt->netpoll().add_waiters(1);
      // A fiber of rt needs no poke: its own M polls once it runs out of
      // work. A thread, or a fiber of another runtime, has no M of rt.
      if (w.f == nullptr || w.f->rt != rt) rt->poke_poller();
      bool interrupted;
      {
        abandon_scope unlink(w.f, [&] {
          std::lock_guard lk(mu);
          drop_waiter(dir, &w);
        });
        interrupted = w.block(mu, d == io_dir::read ? wait_reason::io_read : wait_reason::io_write);
      }
      mu.lock();
      drop_waiter(dir, &w);  // still there only if interrupted
      if (interrupted) {
        mu.unlock();
        throw deadlock_error();
      }
    }
  }

  // Whether d's deadline has passed. Every operation asks first, as Go's
  // prepareRead/prepareWrite do: once it has, calls fail even when the fd
  // could serve them without waiting (setting a past deadline is how Go code
  // stops a reader). A clock read only while a deadline is set.
  bool deadline_passed(io_dir d) const noexcept {
    const std::int64_t deadline =
        dirs[static_cast<int>(d)].deadline.load(std::memory_order_relaxed);
    return deadline != never && deadline <= monotonic_ns();
  }

  // Sets d's deadline (monotonic ns; `never` for none) and wakes d's waiter
  // so it looks at the new one: a past deadline times it out at once.
  void set_deadline(io_dir d, std::int64_t when) noexcept {
    direction& dir = dirs[static_cast<int>(d)];
    mu.lock();
    dir.deadline.store(when, std::memory_order_relaxed);
    if (when == never) timer_heap::remove(&dir.timer);
    waiter* w = take_waiter(dir);
    mu.unlock();
    if (w != nullptr) wake(w);
  }

  // Marks the descriptor closing and wakes both waiters; later waits return
  // `closed` at once.
  void shut() noexcept {
    waiter* ws[2];
    mu.lock();
    closing = true;
    for (int d = 0; d < 2; ++d) ws[d] = take_waiter(dirs[d]);
    mu.unlock();
    for (waiter* w : ws)
      if (w != nullptr) wake(w);
  }

  // refs protocol (see above). begin() is false once close() was called.
  bool begin_op() noexcept {
    if ((refs.fetch_add(2, std::memory_order_acq_rel) & 1) == 0) return true;
    end_op();
    return false;
  }
  void end_op() noexcept {
    if (refs.fetch_sub(2, std::memory_order_acq_rel) == 3) ::close(fd);
  }
  bool closed() const noexcept { return (refs.load(std::memory_order_acquire) & 1) != 0; }
  // True the first time only.
  bool close() noexcept {
    std::uint32_t old = refs.fetch_or(1, std::memory_order_acq_rel);
    if ((old & 1) != 0) return false;
    shut();
    // Makes a peer see the end of the stream now, even if an operation still
    // in flight keeps the fd open a moment longer.
    if (old != 0) ::shutdown(fd, SHUT_RDWR);
    if (old == 0) ::close(fd);
    return true;
  }

  // ---- Allocation ---------------------------------------------------------

  // A descriptor for fd, registered with rt's netpoller. Throws
  // std::system_error (fd left open) if epoll refuses it.
  static poll_desc* open(int fd, runtime_impl* rt);
  // Gives a descriptor whose close() has run back to the free list.
  static void recycle(poll_desc* pd) noexcept;

 private:
  // Under mu: takes w off dir if it is still the parked waiter.
  void drop_waiter(direction& dir, waiter* w) noexcept {
    if (dir.w == w) take_waiter(dir);
  }

  waiter* take_waiter(direction& dir) noexcept {
    waiter* w = dir.w;
    if (w != nullptr) {
      dir.w = nullptr;
      rt->netpoll().add_waiters(-1);
    }
    return w;
  }

  static void wake(waiter* w) noexcept {
    if (w->f != nullptr) {
      // To the back of the queue: the poller wakes many at once, and they
      // should run in the order their events came.
      w->f->rt->ready(w->f, false);
    } else {
      w->tp.unpark();
    }
  }

  // A timer already armed for an earlier moment stays: when it fires, the
  // waiter wakes, finds its deadline not yet passed and arms it again. So a
  // server that pushes a conn's deadline forward at every request (as HTTP
  // servers do) touches the timer heap once per deadline period, not once
  // per request.
  void arm_timer(direction& dir) noexcept {
    const std::int64_t deadline = dir.deadline.load(std::memory_order_relaxed);
    if (dir.timer.heap.load(std::memory_order_acquire) != nullptr) {
      if (dir.timer.when <= deadline) return;
      timer_heap::remove(&dir.timer);
    }
    dir.timer.when = deadline;
    rt->add_timer(&dir.timer);
  }

  static void deadline_fired(timer_node* n, std::int64_t) noexcept {
    auto* t = static_cast<pd_timer*>(n);
    poll_desc* pd = t->pd;
    direction& dir = pd->dirs[static_cast<int>(t->dir)];
    pd->mu.lock();
    waiter* w = pd->take_waiter(dir);
    pd->mu.unlock();
    if (w != nullptr) wake(w);
  }

  static void handle_event(poll_target* t, std::uint32_t ev) noexcept {
    auto* pd = static_cast<poll_desc*>(t);
    // Errors and hang-ups make both directions "ready": the next read or
    // write reports them.
    const bool rd = (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    const bool wr = (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
    waiter* ws[2] = {nullptr, nullptr};
    if ((ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0)
      pd->hup.store(true, std::memory_order_release);
    pd->mu.lock();
    if (rd) {
      pd->dirs[0].ready = true;
      ws[0] = pd->take_waiter(pd->dirs[0]);
    }
    if (wr) {
      pd->dirs[1].ready = true;
      ws[1] = pd->take_waiter(pd->dirs[1]);
    }
    pd->mu.unlock();
    for (waiter* w : ws)
      if (w != nullptr) wake(w);
  }
};

inline std::mutex pd_free_mu;
inline poll_desc* pd_free = nullptr;  // guarded by pd_free_mu

inline poll_desc* poll_desc::open(int fd, runtime_impl* rt) {
  poll_desc* pd = nullptr;
  {
    std::lock_guard lk(pd_free_mu);
    if (pd_free != nullptr) {
      pd = pd_free;
      pd_free = pd->next_free;
    }
  }
  if (pd == nullptr) pd = new poll_desc;  // never freed: see the memory note above
  pd->mu.lock();
  pd->fd = fd;
  pd->rt = rt;
  pd->closing = false;
  pd->drained = false;
  pd->hup.store(false, std::memory_order_relaxed);
  for (auto& d : pd->dirs) {
    d.ready = false;
    d.w = nullptr;
    d.deadline.store(never, std::memory_order_relaxed);
  }
  pd->mu.unlock();
  pd->refs.store(0, std::memory_order_relaxed);
  try {
    rt->netpoll().add(fd, pd);
  } catch (...) {
    pd->refs.store(1, std::memory_order_relaxed);
    recycle(pd);
    throw;
  }
  return pd;
}

inline void poll_desc::recycle(poll_desc* pd) noexcept {
  for (auto& d : pd->dirs) timer_heap::remove(&d.timer);
  std::lock_guard lk(pd_free_mu);
  pd->next_free = pd_free;
  pd_free = pd;
}

}  // namespace gofer::detail
