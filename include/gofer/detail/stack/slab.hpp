// Stack memory: large mmap'd slabs cut into fixed-size stacks.
//
// Why slabs: Linux allows vm.max_map_count (65,530 by default) mappings per
// process, so one mmap per stack caps a program near 65k fibers; a million
// must fit. A slab holds `stacks_per_slab` stacks in one mapping, cut lazily
// (bump pointer) so untouched stacks cost neither RSS nor page-table memory.
//
// Overflow detection, two policies (options::guard_pages):
//   - guard pages: the lowest page of every stack slot is made inaccessible, so
//     an overflow faults at once and overflow.hpp names the fiber. With Linux
//     >= 6.13, MADV_GUARD_INSTALL does this without splitting the mapping;
//     older kernels need mprotect, which splits the slab into two mappings per
//     stack and brings back the map-count ceiling (about 32k fibers). Either way
//     it is one system call per stack carved.
//   - canary (the default): the lowest `canary_bytes` of each stack are
//     reserved and must stay zero (fresh anonymous memory is zero); every
//     switch checks the zone's top 16 bytes, the first a growing stack
//     writes. Not the whole zone: the check runs at every switch, and with
//     many fibers each cache line it reads is a miss. An overflow that writes
//     only zeros there, or that skips those bytes or the whole zone, goes
//     unseen: that is the price of the default; turn guard pages on when
//     chasing a crash. The rest of the zone is slack that keeps a small
//     overflow off the stack below.
//     Slots are laid out so that a canary never has a page of its own: each
//     slot starts `canary_bytes` below a page boundary, so its canary fills the
//     top of the page that holds the top of the stack below it, a page that
//     stack touches anyway. A canary alone in its page would cost a page fault
//     per fiber, and a whole page per fiber on kernels that map no shared zero
//     page for reads (some hypervisors turn it off): a parked fiber would cost
//     two pages instead of one.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include "gofer/detail/arch/sanitizer_hooks.hpp"
#include "gofer/detail/config.hpp"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace gofer::detail {

inline std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

inline std::size_t round_up(std::size_t n, std::size_t to) noexcept { return (n + to - 1) / to * to; }

// The default stack size: 256 KiB of address space per fiber, of which a
// parked fiber that has not recursed touches one page. A million fibers
// reserve 256 GiB of address space (free on 64-bit Linux, and no commit charge
// with MAP_NORESERVE) and about 4 GiB of RAM, plus one page-table page per
// eight stacks. Smaller defaults overflow on ordinary C++: std::regex matching
// a few hundred characters recurses past 128 KiB. Sanitizers inflate frames,
// so their builds get four times as much.
#if GOFER_ASAN || GOFER_TSAN
inline constexpr std::size_t default_stack_size = 1024 * 1024;
#else
inline constexpr std::size_t default_stack_size = 256 * 1024;
#endif

// The whole pages that stacks spanning [lo, hi) may drop: up from the first
// page boundary at or above lo, so a canary's page, which holds the top of the
// live stack below, stays; through the page that holds hi - 1, whose rest is
// the canary of the stack above, zero when intact and zero again after.
inline std::pair<char*, char*> pages_of(void* lo, void* hi) noexcept {
  auto up = [](void* p) {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    return reinterpret_cast<char*>(round_up(a, page_size()));
  };
  return {up(lo), up(hi)};
}

// Bytes at the low end of a canary-checked stack that must stay zero.
inline constexpr std::size_t canary_bytes = 256;

// One stack: [bottom, bottom + size) is usable; with a guard the page below
// `bottom` faults.
struct stack_slot {
  void* bottom = nullptr;
  std::size_t size = 0;
  bool guarded = false;
  bool own_mapping = false;  // not from a slab: unmapped when released
  bool trimmed = false;      // pages already returned to the kernel

  void* top() const noexcept { return static_cast<char*>(bottom) + size; }
  // The first usable byte above the canary zone (or bottom with a guard).
  void* usable_bottom() const noexcept {
    return static_cast<char*>(bottom) + (guarded ? 0 : canary_bytes);
  }
  bool canary_intact() const noexcept {
    if (guarded) return true;
    // The zone's top 16 bytes: a growing stack writes them first.
    auto* w = static_cast<const volatile std::uint64_t*>(bottom) + canary_bytes / 8 - 2;
    return (w[0] | w[1]) == 0;
  }
  // Maps the page that holds the stack's top, where the fiber's block and
  // its first frames go, by one system call. A fresh stack takes that page
  // anyway, and a page fault costs more than the call where a hypervisor
  // traps every fault: on a small VM, 12 us against 2.4 us, and spawning
  // 100,000 fibers on fresh stacks took a quarter less time (the first
  // touch still pays the hypervisor's share). Only the top page: the rest
  // of the stack may never be used. A kernel without MADV_POPULATE_WRITE
  // (before 5.14), or a filter that refuses the call, leaves the page to a
  // fault as before. Runs inside go(), so errno is left as the caller had it.
  void populate_top() noexcept {
    static std::atomic<bool> unsupported{false};
    if (!trimmed) return;
    trimmed = false;
    if (unsupported.load(std::memory_order_relaxed)) return;
    auto page = reinterpret_cast<std::uintptr_t>(top()) - 1;
    page -= page % page_size();
    const int saved = errno;
    if (::madvise(reinterpret_cast<void*>(page), page_size(), MADV_POPULATE_WRITE) != 0 &&
        (errno == EINVAL || errno == EPERM || errno == ENOSYS))
      unsupported.store(true, std::memory_order_relaxed);
    errno = saved;
  }
  // Returns the stack's pages to the kernel; the memory reads as zero after.
  // See pages_of for what stays.
  void trim() noexcept {
    if (trimmed) return;
    auto [from, to] = pages_of(bottom, top());
    ::madvise(from, static_cast<std::size_t>(to - from), MADV_DONTNEED);
    trimmed = true;
  }
};

[[noreturn]] inline void fatal_out_of_memory(const char* what) {
  std::fprintf(stderr, "gofer: out of memory: %s (errno %d)\n", what, errno);
  std::abort();
}

// True when [addr, addr + 1) faults: a write(2) from it fails with EFAULT
// instead of delivering a signal.
inline bool really_inaccessible(const void* addr) noexcept {
  int fds[2];
  if (::pipe(fds) != 0) return false;
  errno = 0;
  bool fault = ::write(fds[1], addr, 1) < 0 && errno == EFAULT;
  ::close(fds[0]);
  ::close(fds[1]);
  return fault;
}

// Installs a guard on [addr, addr + len). Tries the light kernel guard first;
// the first one is checked, because an emulator (qemu-user) or a filter may
// accept the request and do nothing.
inline void install_guard(void* addr, std::size_t len) noexcept {
  static std::atomic<int> light{-1};  // -1 unknown, 0 unsupported, 1 supported
  int state = light.load(std::memory_order_relaxed);
  if (state != 0 && ::madvise(addr, len, MADV_GUARD_INSTALL) == 0) {
    if (state == 1) return;
    if (really_inaccessible(addr)) {
      light.store(1, std::memory_order_relaxed);
      return;
    }
  }
  light.store(0, std::memory_order_relaxed);
  if (::mprotect(addr, len, PROT_NONE) != 0) fatal_out_of_memory("mprotect of a guard page");
}

// The slabs of one runtime for one stack size. Thread-safe; the per-P caches
// (stack_cache.hpp) keep most traffic away from its lock.
class slab_allocator {
 public:
  // Stacks per slab: 128 x 256 KiB = 32 MiB per mapping, so a million default
  // fibers take about 7,800 mappings, an eighth of the default limit.
  static constexpr std::size_t stacks_per_slab = 128;

  slab_allocator(std::size_t stack_size, bool guard)
      : stack_size_(round_up(stack_size, page_size())), guard_(guard) {}
  slab_allocator(const slab_allocator&) = delete;
  slab_allocator& operator=(const slab_allocator&) = delete;
  ~slab_allocator() {
    for (auto& s : slabs_) {
      if (s.retained) continue;
      // Abandoned fibers leave poisoned frames; the address range may be
      // mapped again later for something else.
      arch::sanitizer::unpoison_stack(s.base, s.bytes);
      ::munmap(s.base, s.bytes);
    }
  }

  std::size_t stack_size() const noexcept { return stack_size_; }
  bool guarded() const noexcept { return guard_; }

  // A never-used stack, or a recycled one from the free list.
  stack_slot allocate() {
    std::lock_guard lk(mu_);
    if (!free_.empty()) {
      stack_slot s = free_.back();
      free_.pop_back();
      return s;
    }
    return carve_locked();
  }

  // Fills out[0, n) (a P cache refilling itself), which is used from the end:
  // filled from the end, so fresh stacks are used in the order they were
  // carved, upwards. Then each new fiber's canary lies in the page its
  // predecessor's stack already touched, rather than one no fiber has touched.
  void allocate_batch(stack_slot* out, std::size_t n) {
    std::lock_guard lk(mu_);
    for (std::size_t i = n; i-- > 0;) {
      if (!free_.empty()) {
        out[i] = free_.back();
        free_.pop_back();
      } else {
        out[i] = carve_locked();
      }
    }
  }

  void release_batch(const stack_slot* slots, std::size_t n) {
    std::lock_guard lk(mu_);
    free_.insert(free_.end(), slots, slots + n);
  }

  // Returns the memory of idle stacks to the kernel. Called when the runtime
  // goes idle, so the system calls are paid when nobody is waiting. The stacks
  // are taken out of the free list while their pages are dropped (so nobody
  // allocates one meanwhile), and neighbours are dropped in one call.
  std::size_t trim_free() {
    std::vector<stack_slot> work;
    {
      std::lock_guard lk(mu_);
      auto keep = free_.begin();
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (it->trimmed) {
          *keep++ = *it;
        } else {
          work.push_back(*it);
        }
      }
      free_.erase(keep, free_.end());
    }
    if (work.empty()) return 0;
    std::sort(work.begin(), work.end(),
              [](const stack_slot& a, const stack_slot& b) { return a.bottom < b.bottom; });
    const std::size_t stride = slot_bytes();
    for (std::size_t i = 0; i < work.size();) {
      std::size_t j = i + 1;
      while (j < work.size() &&
             static_cast<char*>(work[j].bottom) == static_cast<char*>(work[j - 1].bottom) + stride)
        ++j;
      // One call for the run [i, j); with guards, the guard pages in between
      // stay guards (MADV_DONTNEED leaves light guards and PROT_NONE alone).
      auto [from, to] = pages_of(work[i].bottom, work[j - 1].top());
      ::madvise(from, static_cast<std::size_t>(to - from), MADV_DONTNEED);
      for (std::size_t k = i; k < j; ++k) work[k].trimmed = true;
      i = j;
    }
    std::lock_guard lk(mu_);
    free_.insert(free_.end(), work.begin(), work.end());
    return work.size();
  }

  // Calls f(const stack_slot&) for every stack carved and not on the free
  // list: the fiber registry that dump_fibers and the runtime's end walk (a
  // fiber lives at its stack's top). A free stack holds no fiber, and reading
  // a trimmed one would fault its dropped page back in: a million of them
  // once cost a dump (or a runtime's end) a million page faults.
  template <class F>
  void for_each_carved(F&& f) {
    std::lock_guard lk(mu_);
    std::vector<void*> idle;
    idle.reserve(free_.size());
    for (const auto& s : free_) idle.push_back(s.bottom);
    std::sort(idle.begin(), idle.end(), std::less<>{});
    for (auto& s : slabs_) {
      char* p = static_cast<char*>(s.base) + first_slot_offset();
      for (std::size_t i = 0; i < s.used; ++i, p += slot_bytes()) {
        stack_slot slot;
        slot.bottom = p + (guard_ ? page_size() : 0);
        if (std::binary_search(idle.begin(), idle.end(), slot.bottom, std::less<>{})) continue;
        slot.size = stack_size_;
        slot.guarded = guard_;
        f(slot);
      }
    }
  }

  // Leaves mapped for the rest of the process the slabs that hold any of
  // `keep`: stacks that something still uses when their runtime ends (see
  // runtime_impl's destructor). The other stacks of those slabs give their
  // pages back; the destructor unmaps every other slab.
  void retain(std::vector<stack_slot> keep) {
    if (keep.empty()) return;
    std::sort(keep.begin(), keep.end(),
              [](const stack_slot& a, const stack_slot& b) { return a.bottom < b.bottom; });
    const auto page = page_size();
    std::lock_guard lk(mu_);
    for (auto& s : slabs_) {
      char* const begin = static_cast<char*>(s.base);
      char* const end = begin + s.bytes;
      char* from = begin;  // pages below it are dropped or kept already
      for (const stack_slot& k : keep) {
        auto* lo = static_cast<char*>(k.bottom);
        if (lo < begin || lo >= end) continue;
        s.retained = true;
        // Whole pages around the kept stack; its neighbours' pages that it
        // shares stay too.
        auto* kl = reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(lo) / page * page);
        char* kh = std::min(end, reinterpret_cast<char*>(
                                     round_up(reinterpret_cast<std::uintptr_t>(k.top()), page)));
        if (kl > from) ::madvise(from, static_cast<std::size_t>(kl - from), MADV_DONTNEED);
        from = std::max(from, kh);
      }
      if (s.retained && end > from)
        ::madvise(from, static_cast<std::size_t>(end - from), MADV_DONTNEED);
    }
  }

  std::size_t free_count() {
    std::lock_guard lk(mu_);
    return free_.size();
  }
  std::size_t carved_count() {
    std::lock_guard lk(mu_);
    return carved_;
  }

 private:
  struct slab {
    void* base;
    std::size_t bytes;
    std::size_t used;  // stacks carved so far
    bool retained = false;  // left mapped by retain()
  };

  std::size_t slot_bytes() const noexcept { return stack_size_ + (guard_ ? page_size() : 0); }
  // Where the first slot starts in its slab: page-aligned behind a guard,
  // else `canary_bytes` below the first page boundary, so that every canary
  // shares a page with the top of the stack below it (see the header).
  std::size_t first_slot_offset() const noexcept {
    return guard_ ? 0 : page_size() - canary_bytes;
  }
  // The last slot's top then reaches into one more page.
  std::size_t slab_bytes() const noexcept {
    return slot_bytes() * stacks_per_slab + (guard_ ? 0 : page_size());
  }

  stack_slot carve_locked() {
    if (slabs_.empty() || slabs_.back().used == stacks_per_slab) {
      std::size_t bytes = slab_bytes();
      void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) fatal_out_of_memory("mmap of a stack slab");
      slabs_.push_back({p, bytes, 0, false});
    }
    slab& s = slabs_.back();
    char* slot = static_cast<char*>(s.base) + first_slot_offset() + s.used * slot_bytes();
    ++s.used;
    ++carved_;
    stack_slot out;
    if (guard_) {
      install_guard(slot, page_size());
      out.bottom = slot + page_size();
      out.guarded = true;
    } else {
      out.bottom = slot;
    }
    out.size = stack_size_;
    out.trimmed = true;  // never touched yet
    return out;
  }

  std::mutex mu_;
  std::size_t stack_size_;
  bool guard_;
  std::vector<slab> slabs_;       // guarded by mu_
  std::vector<stack_slot> free_;  // guarded by mu_
  std::size_t carved_ = 0;        // guarded by mu_
};

// A stack of a non-default size: its own mapping (rare, so the map count is
// not a concern), unmapped on release.
inline stack_slot allocate_own_stack(std::size_t size, bool guard) {
  size = round_up(size, page_size());
  std::size_t bytes = size + (guard ? page_size() : 0);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) fatal_out_of_memory("mmap of a fiber stack");
  stack_slot s;
  if (guard) {
    install_guard(p, page_size());
    s.bottom = static_cast<char*>(p) + page_size();
    s.guarded = true;
  } else {
    s.bottom = p;
  }
  s.size = size;
  s.own_mapping = true;
  s.trimmed = true;
  return s;
}

inline void free_own_stack(const stack_slot& s) noexcept {
  char* base = static_cast<char*>(s.bottom) - (s.guarded ? page_size() : 0);
  arch::sanitizer::unpoison_stack(s.bottom, s.size);
  ::munmap(base, s.size + (s.guarded ? page_size() : 0));
}

}  // namespace gofer::detail
