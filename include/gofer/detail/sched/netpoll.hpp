// The netpoller: one epoll instance per runtime, edge-triggered (Go's
// runtime/netpoll_epoll.go).
//
// This layer knows only file descriptors and targets: an fd is registered once,
// for reading and writing together, with a poll_target that epoll hands back
// with each readiness edge. What a target does with an edge (wake a parked
// reader, remember it for the next read) is the net layer's business
// (net/poll_desc.hpp); the scheduler's part is to ask epoll:
//   - without blocking, when an M runs out of local work and no M is blocked
//     in epoll (find_runnable);
//   - blocking, with the earliest timer as timeout, from the one idle M that
//     takes the poller role instead of sleeping on its futex (park_idle).
// Only one M blocks in epoll at a time, as in Go: more would all wake for the
// same edge.
//
// An M blocked in epoll_wait is woken by a write to an eventfd registered
// beside the sockets (Go's netpollBreak). Writes are coalesced: one pending
// is enough to wake it.
//
// Edge-triggered: epoll reports a transition to readable or writable once,
// so each fd costs one epoll_ctl for its whole life and no re-arming; the price
// is that a reader must drain until EAGAIN before it waits, which the net
// layer's read loop does anyway.
#pragma once

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <system_error>

namespace gofer::detail {

// What epoll hands back for a registered fd. on_event runs on a scheduler
// thread (an M, in its loop or on a fiber's stack): it must be short and must
// not block.
struct poll_target {
  void (*on_event)(poll_target*, std::uint32_t events) noexcept = nullptr;
  // Stored (release) before the fd is registered, loaded (acquire) before
  // each event is handled: the kernel orders the two already, but only this
  // pair says so to ThreadSanitizer.
  std::atomic<std::uint32_t> generation{0};
};

class netpoller {
 public:
  netpoller() = default;
  netpoller(const netpoller&) = delete;
  netpoller& operator=(const netpoller&) = delete;
  ~netpoller() {
    if (break_fd_ >= 0) ::close(break_fd_);
    if (epfd_ >= 0) ::close(epfd_);
  }

  // Registers fd for edge-triggered read and write readiness. The fd leaves
  // the epoll set by itself when it is closed.
  void add(int fd, poll_target* t) {
    open();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = t;
    t->generation.fetch_add(1, std::memory_order_release);
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
      throw std::system_error(errno, std::generic_category(), "gofer: epoll_ctl(ADD)");
  }

  // Fibers and threads parked on an fd: while there are any, idle Ms poll.
  void add_waiters(int d) noexcept { waiters_.fetch_add(d, std::memory_order_seq_cst); }
  bool has_waiters() const noexcept { return waiters_.load(std::memory_order_seq_cst) > 0; }
  int waiters() const noexcept { return waiters_.load(std::memory_order_relaxed); }

  // The poller role: at most one M blocks in epoll_wait.
  bool try_claim() noexcept {
    return !blocked_.load(std::memory_order_relaxed) &&
           !blocked_.exchange(true, std::memory_order_acquire);
  }
  void release() noexcept { blocked_.store(false, std::memory_order_release); }
  bool claimed() const noexcept { return blocked_.load(std::memory_order_relaxed); }

  // Waits up to timeout_ns (-1: no limit, 0: just look) and calls each ready
  // target's on_event, for at most MaxEvents targets (the rest stay queued in
  // epoll for the next look). Returns the number of targets notified. Called
  // on a fiber's stack too, where a smaller MaxEvents keeps the frame small.
  template <int MaxEvents = 128>
  int poll(std::int64_t timeout_ns) noexcept {
    if (epfd_ready_.load(std::memory_order_acquire) == false) return 0;
    epoll_event evs[std::size_t{MaxEvents}];
    int n = wait(evs, MaxEvents, timeout_ns);
    int notified = 0;
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.ptr == nullptr) {
        std::uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(break_fd_, &v, sizeof v);
        wake_pending_.store(false, std::memory_order_release);
        continue;
      }
      auto* t = static_cast<poll_target*>(evs[i].data.ptr);
      (void)t->generation.load(std::memory_order_acquire);
      t->on_event(t, evs[i].events);
      ++notified;
    }
    return notified;
  }

  // Makes a blocked poll() return (Go's netpollBreak).
  void interrupt() noexcept {
    if (!epfd_ready_.load(std::memory_order_acquire)) return;
    if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(break_fd_, &one, sizeof one);
  }

 private:
  void open() {
    if (epfd_ready_.load(std::memory_order_acquire)) return;
    std::lock_guard lk(open_mu_);
    if (epfd_ready_.load(std::memory_order_relaxed)) return;
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) throw std::system_error(errno, std::generic_category(), "gofer: epoll_create1");
    int bf = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (bf < 0) {
      int e = errno;
      ::close(ep);
      throw std::system_error(e, std::generic_category(), "gofer: eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;  // level-triggered: stays ready until read
    ev.data.ptr = nullptr;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, bf, &ev) != 0) {
      int e = errno;
      ::close(bf);
      ::close(ep);
      throw std::system_error(e, std::generic_category(), "gofer: epoll_ctl(eventfd)");
    }
    epfd_ = ep;
    break_fd_ = bf;
    epfd_ready_.store(true, std::memory_order_release);
  }

  // epoll_pwait2 takes a nanosecond timeout; epoll_wait's milliseconds would
  // make every short sleep_for last a millisecond while an M waits on
  // sockets. Kernels before 5.11 lack it: then round up to milliseconds.
  int wait(epoll_event* evs, int max, std::int64_t timeout_ns) noexcept {
#ifdef SYS_epoll_pwait2
    if (have_pwait2_.load(std::memory_order_relaxed)) {
      timespec ts{};
      timespec* tsp = nullptr;
      if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1'000'000'000;
        ts.tv_nsec = timeout_ns % 1'000'000'000;
        tsp = &ts;
      }
      long n = ::syscall(SYS_epoll_pwait2, epfd_, evs, max, tsp, nullptr, 0);
      if (n >= 0) return static_cast<int>(n);
      if (errno != ENOSYS) return 0;  // EINTR: the caller looks again
      have_pwait2_.store(false, std::memory_order_relaxed);
    }
#endif
    int ms = -1;
    if (timeout_ns >= 0) {
      std::int64_t up = (timeout_ns + 999'999) / 1'000'000;
      ms = up > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(up);
    }
    int n = ::epoll_wait(epfd_, evs, max, ms);
    return n < 0 ? 0 : n;
  }

  int epfd_ = -1;
  int break_fd_ = -1;
  std::mutex open_mu_;
  std::atomic<bool> epfd_ready_{false};
  std::atomic<bool> blocked_{false};
  std::atomic<bool> wake_pending_{false};
  std::atomic<bool> have_pwait2_{true};
  std::atomic<std::int32_t> waiters_{0};
};

}  // namespace gofer::detail
