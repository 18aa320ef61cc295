// Stack memory: large mmap'd slabs cut into fixed-size stacks.
//
// Why slabs: Linux allows vm.max_map_count (65,530 by default) mappings per
// process, so one mmap per stack caps a program near 65k fibers; a million
// must fit. A slab holds `stacks_per_slab` stacks in one mapping, cut lazily
// (bump pointer) so untouched stacks cost neither RSS nor page-table memory.
//
// Overflow detection. Each slab is laid out for one of two checks, chosen
// when it is mapped (guard_policy, from options::guard_pages):
//   - a guard page: the page below every stack is made inaccessible, so an
//     overflowing frame faults at once and overflow.hpp's handler names the
//     fiber. With Linux >= 6.13, MADV_GUARD_INSTALL does this without
//     splitting the mapping (a page-table marker: no memory, no mapping);
//     older kernels need mprotect, which splits the slab into two mappings
//     per stack and brings back the map-count ceiling (about 32k fibers).
//     Either way one system call per stack, paid when the stack is first
//     carved and outside the slab lock; stacks are then recycled with their
//     guards, so spawning from a warm cache pays nothing. The guard costs no
//     resident memory: a parked fiber still holds one page. What a guard
//     misses: a frame larger than a page whose only writes land below the
//     guard, in the stack beneath, and that returns before its fiber next
//     switches (a switch checks the stack pointer). Code built with
//     -fstack-clash-protection touches a large frame page by page from the
//     top, so it meets the guard first.
//   - a canary: the lowest `canary_bytes` of each stack are reserved and must
//     stay zero (fresh anonymous memory is zero). Every switch compares the
//     stack pointer with the top of the zone, and reads the zone's top 16
//     bytes, the first a growing stack writes. It sees an overflow only when
//     the fiber next switches, and misses one that left no mark in those
//     bytes (frames larger than them, that returned before the switch); the
//     fault handler still names the fiber if the overflow runs on into
//     memory that faults. The rest of the zone is slack that keeps a small
//     overflow off the stack below.
//     Slots are laid out so that a canary never has a page of its own: each
//     slot starts `canary_bytes` below a page boundary, so its canary fills the
//     top of the page that holds the top of the stack below it, a page that
//     stack touches anyway. A canary alone in its page would cost a page fault
//     per fiber, and a whole page per fiber on kernels that map no shared zero
//     page for reads (some hypervisors turn it off): a parked fiber would cost
//     two pages instead of one.
//
// The automatic policy (the default) guards every stack where guards are
// light. Where only mprotect works, slabs are guarded while the mappings
// their guards add stay within a quarter of vm.max_map_count (63 slabs of
// 128 stacks at the default limit, counted across the process's runtimes and
// given back when a runtime ends), and later slabs get the canary: small
// programs get the loud check, and a million fibers still fit. Measured with
// a million parked fibers: 4 KiB of memory each in every layout, no mapping
// added by light guards, and 16,184 mappings in all with mprotect'd ones.
// guard_policy::always guards every stack whatever that costs in mappings
// (options::guard_pages).
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

// Bytes at the low end of a canary-checked stack that must stay zero. The
// switch's stack pointer check counts them as beyond the stack, so an
// overflow still in progress at a switch is caught before it reaches the
// stack below if it went less than this far: twice the 256 bytes of old. Not
// wider: the zone takes that much of the page that holds the top of the
// stack below (see the header), which keeps the rest, 3.5 KiB, for a parked
// fiber's block and frames (about 2.4 KiB at most).
inline constexpr std::size_t canary_bytes = 512;

// How a runtime's stacks are protected against overflow (see the header).
enum class guard_policy : std::uint8_t {
  automatic,  // guards where they are light or within the mapping budget, else the canary
  always,     // a guard on every stack, whatever it costs in mappings
  never,      // the canary alone (tests; the layout older releases used by default)
};

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
  // The check every switch makes: the zone's top 16 bytes, the first a
  // growing stack writes. Not more: canary zones sit at one offset in stacks
  // a power of two apart, so they share a few cache sets, and with many
  // fibers every line read is a miss. Reading a word of every other line of
  // the zone cost a switch 3 ns more among 10,000 fibers; reading the whole
  // zone at each fiber's end cost a spawn about 300 ns.
  bool canary_intact() const noexcept {
    if (guarded) return true;
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

// Whether MADV_GUARD_INSTALL works here: -1 not known yet, 0 no, 1 yes.
// Probed once on a scratch mapping, not trusted from the kernel's version:
// an emulator (qemu-user) or a filter may accept the request and do nothing.
// Tests store 0 to take the path of older kernels.
inline std::atomic<int> light_guard_state{-1};

inline bool light_guards() noexcept {
  int state = light_guard_state.load(std::memory_order_relaxed);
  if (state < 0) {
    // Two threads may both probe: each finds the same answer.
    const std::size_t page = page_size();
    const int saved = errno;
    state = 0;
    void* p = ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      if (::madvise(p, page, MADV_GUARD_INSTALL) == 0 && really_inaccessible(p)) state = 1;
      ::munmap(p, 2 * page);
    }
    errno = saved;
    light_guard_state.store(state, std::memory_order_relaxed);
  }
  return state == 1;
}

// The process's vm.max_map_count (65,530 where it cannot be read).
inline long max_map_count() noexcept {
  long n = 0;
  if (std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    if (std::fscanf(f, "%ld", &n) != 1) n = 0;
    std::fclose(f);
  }
  return n > 0 ? n : 65530;
}

// How many more mappings mprotect'd guards may add to the process: a quarter
// of vm.max_map_count, leaving the rest to the program, its libraries, its
// threads' stacks and malloc's arenas. Shared by every runtime (the limit is
// per process). Tests store 0 to see what lies beyond the budget.
inline std::atomic<long>& split_guard_budget() noexcept {
  static std::atomic<long> budget{max_map_count() / 4};
  return budget;
}

// Takes n from the budget if it holds that much; `force` takes it anyway
// (guard_policy::always), so automatic runtimes see what it used.
inline bool take_split_budget(long n, bool force) noexcept {
  std::atomic<long>& budget = split_guard_budget();
  long have = budget.load(std::memory_order_relaxed);
  do {
    if (have < n && !force) return false;
  } while (!budget.compare_exchange_weak(have, have - n, std::memory_order_relaxed));
  return true;
}

inline void give_split_budget(long n) noexcept {
  split_guard_budget().fetch_add(n, std::memory_order_relaxed);
}

// Makes the page below a newly carved stack's bottom its guard: light where
// the kernel has light guards, else by mprotect (which splits the mapping).
// errno is left as the caller had it (this runs inside go()).
GOFER_NOINLINE inline void install_guard(void* bottom) noexcept {
  const int saved = errno;
  void* guard = static_cast<char*>(bottom) - page_size();
  // A light guard that fails although the probe passed (a filter that
  // refuses some calls) falls back to mprotect: a mapping the budget did not
  // count, rather than a stack without its guard.
  if (!light_guards() || ::madvise(guard, page_size(), MADV_GUARD_INSTALL) != 0) {
    if (::mprotect(guard, page_size(), PROT_NONE) != 0) fatal_out_of_memory("mprotect of a guard page");
  }
  errno = saved;
}

// The slabs of one runtime for one stack size. Thread-safe; the per-P caches
// (the scheduler's stack cache) keep most traffic away from its lock.
class slab_allocator {
 public:
  // Stacks per slab: 128 x 256 KiB = 32 MiB per mapping, so a million default
  // fibers take about 7,800 mappings, an eighth of the default limit.
  static constexpr std::size_t stacks_per_slab = 128;
  // What a slab whose guards split it may add to the map count: a guard and
  // the rest of the stack above it, per stack.
  static constexpr long split_slab_mappings = 2 * static_cast<long>(stacks_per_slab);

  slab_allocator(std::size_t stack_size, guard_policy policy)
      : stack_size_(round_up(stack_size, page_size())), policy_(policy) {}
  slab_allocator(const slab_allocator&) = delete;
  slab_allocator& operator=(const slab_allocator&) = delete;
  ~slab_allocator() {
    for (auto& s : slabs_) {
      if (s.retained) continue;
      // Abandoned fibers leave poisoned frames; the address range may be
      // mapped again later for something else.
      arch::sanitizer::unpoison_stack(s.base, s.bytes);
      ::munmap(s.base, s.bytes);
      if (s.split) give_split_budget(split_slab_mappings);
    }
  }

  std::size_t stack_size() const noexcept { return stack_size_; }
  guard_policy policy() const noexcept { return policy_; }

  // A recycled stack from the free list, or a never-used one.
  stack_slot allocate() {
    {
      std::lock_guard lk(mu_);
      if (!free_.empty()) {
        stack_slot s = free_.back();
        free_.pop_back();
        return s;
      }
    }
    return carve_one();
  }

  // Fills out[0, n) (a P cache refilling itself), which is used from the end:
  // filled from the end, so fresh stacks are used in the order they were
  // carved, upwards. Then each new fiber's canary lies in the page its
  // predecessor's stack already touched, rather than one no fiber has touched.
  // New stacks' guards go in after the lock is dropped: each is a system call.
  void allocate_batch(stack_slot* out, std::size_t n) {
    std::size_t carved = 0;  // out[0, carved): the free list ran out first
    {
      std::lock_guard lk(mu_);
      for (std::size_t i = n; i-- > 0;) {
        if (!free_.empty()) {
          out[i] = free_.back();
          free_.pop_back();
        } else {
          out[i] = carve_locked();
          ++carved;
        }
      }
    }
    for (std::size_t i = 0; i < carved; ++i)
      if (out[i].guarded) install_guard(out[i].bottom);
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
    for (std::size_t i = 0; i < work.size();) {
      std::size_t j = i + 1;
      while (j < work.size() && work[j].guarded == work[j - 1].guarded &&
             static_cast<char*>(work[j].bottom) ==
                 static_cast<char*>(work[j - 1].bottom) + slot_bytes(work[j - 1].guarded))
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
      char* p = static_cast<char*>(s.base) + first_slot_offset(s.guarded);
      for (std::size_t i = 0; i < s.used; ++i, p += slot_bytes(s.guarded)) {
        stack_slot slot;
        slot.bottom = p + (s.guarded ? page_size() : 0);
        if (std::binary_search(idle.begin(), idle.end(), slot.bottom, std::less<>{})) continue;
        slot.size = stack_size_;
        slot.guarded = s.guarded;
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
    bool guarded;      // laid out for guards, else for canaries
    bool split;        // its guards are mprotect'd and hold budget
    bool retained = false;  // left mapped by retain()
  };

  std::size_t slot_bytes(bool guarded) const noexcept {
    return stack_size_ + (guarded ? page_size() : 0);
  }
  // Where the first slot starts in its slab: page-aligned behind a guard,
  // else `canary_bytes` below the first page boundary, so that every canary
  // shares a page with the top of the stack below it (see the header).
  std::size_t first_slot_offset(bool guarded) const noexcept {
    return guarded ? 0 : page_size() - canary_bytes;
  }
  // The last slot's top then reaches into one more page.
  std::size_t slab_bytes(bool guarded) const noexcept {
    return slot_bytes(guarded) * stacks_per_slab + (guarded ? 0 : page_size());
  }

  // The policy's choice for a new slab (see the header).
  slab new_slab_layout() const noexcept {
    slab s{nullptr, 0, 0, false, false, false};
    switch (policy_) {
      case guard_policy::never:
        break;
      case guard_policy::always:
        s.guarded = true;
        s.split = !light_guards() && take_split_budget(split_slab_mappings, true);
        break;
      case guard_policy::automatic:
        if (light_guards()) {
          s.guarded = true;
        } else if (take_split_budget(split_slab_mappings, false)) {
          s.guarded = s.split = true;
        }
        break;
    }
    return s;
  }

  // Out of line, and not under the lock while the guard goes in (a system
  // call). Kept out of allocate(), which spawn() inlines: with this in it,
  // the compiler passed the stack a spawn takes from its cache through
  // memory, and spawn_join took 9 ns longer.
  GOFER_NOINLINE stack_slot carve_one() {
    stack_slot s;
    {
      std::lock_guard lk(mu_);
      s = carve_locked();
    }
    if (s.guarded) install_guard(s.bottom);
    return s;
  }

  stack_slot carve_locked() {
    if (slabs_.empty() || slabs_.back().used == stacks_per_slab) {
      slab fresh = new_slab_layout();
      fresh.bytes = slab_bytes(fresh.guarded);
      fresh.base = ::mmap(nullptr, fresh.bytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (fresh.base == MAP_FAILED) fatal_out_of_memory("mmap of a stack slab");
      slabs_.push_back(fresh);
    }
    slab& s = slabs_.back();
    char* slot = static_cast<char*>(s.base) + first_slot_offset(s.guarded) + s.used * slot_bytes(s.guarded);
    ++s.used;
    ++carved_;
    stack_slot out;
    out.bottom = slot + (s.guarded ? page_size() : 0);
    out.guarded = s.guarded;  // the guard itself goes in once the lock is dropped
    out.size = stack_size_;
    out.trimmed = true;  // never touched yet
    return out;
  }

  std::mutex mu_;
  std::size_t stack_size_;
  guard_policy policy_;
  std::vector<slab> slabs_;       // guarded by mu_
  std::vector<stack_slot> free_;  // guarded by mu_
  std::size_t carved_ = 0;        // guarded by mu_
};

// A stack of a non-default size: its own mapping (rare, so the map count is
// not a concern, but an mprotect'd guard still takes one from the budget),
// unmapped on release.
inline stack_slot allocate_own_stack(std::size_t size, guard_policy policy) {
  size = round_up(size, page_size());
  stack_slot s;
  if (policy == guard_policy::always || policy == guard_policy::automatic) {
    s.guarded = light_guards() || take_split_budget(1, policy == guard_policy::always);
  }
  std::size_t bytes = size + (s.guarded ? page_size() : 0);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) fatal_out_of_memory("mmap of a fiber stack");
  s.bottom = static_cast<char*>(p) + (s.guarded ? page_size() : 0);
  s.size = size;
  s.own_mapping = true;
  s.trimmed = true;
  if (s.guarded) install_guard(s.bottom);
  return s;
}

inline void free_own_stack(const stack_slot& s) noexcept {
  char* base = static_cast<char*>(s.bottom) - (s.guarded ? page_size() : 0);
  arch::sanitizer::unpoison_stack(s.bottom, s.size);
  ::munmap(base, s.size + (s.guarded ? page_size() : 0));
  if (s.guarded && !light_guards()) give_split_budget(1);
}

}  // namespace gofer::detail
