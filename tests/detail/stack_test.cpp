// Stacks: slabs (few mappings for many stacks), canary, guard pages and the
// mapping budget, trimming, and the overflow reports: whole programs with
// default options, run in a child process, must end in the report and abort.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <gofer/gofer.hpp>
#include <gofer/detail/stack/overflow.hpp>
#include <gofer/detail/stack/slab.hpp>

#include "../support/subprocess.hpp"

using gofer::detail::guard_policy;
using gofer::detail::slab_allocator;
using gofer::detail::stack_slot;

namespace {
std::size_t count_mappings() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::size_t n = 0;
  while (std::getline(maps, line)) ++n;
  return n;
}
}  // namespace

TEST_CASE("a slab holds many stacks in one mapping", "[stack]") {
  std::size_t before = count_mappings();
  slab_allocator slabs(64 * 1024, guard_policy::never);
  std::vector<stack_slot> got;
  for (std::size_t i = 0; i < 4 * slab_allocator::stacks_per_slab; ++i) got.push_back(slabs.allocate());
  // Four slabs' worth of stacks: a handful of new mappings (sanitizers add a
  // few of their own), not one per stack.
  CHECK(count_mappings() - before < got.size() / 16);
  for (auto& s : got) {
    CHECK(s.size == 64 * 1024);
    CHECK(s.canary_intact());
  }
  slabs.release_batch(got.data(), got.size());
  CHECK(slabs.free_count() == got.size());
  CHECK(slabs.allocate().bottom == got.back().bottom);  // recycled, last in first out
}

TEST_CASE("a written canary is detected", "[stack]") {
  slab_allocator slabs(64 * 1024, guard_policy::never);
  stack_slot s = slabs.allocate();
  CHECK(s.canary_intact());
  static_cast<volatile char*>(s.bottom)[gofer::detail::canary_bytes - 1] = 1;
  CHECK_FALSE(s.canary_intact());
}

// The zone is twice the old 256 bytes, and counts as beyond the stack: the
// usable stack, which the switch compares the stack pointer with, starts
// above it. A switch reads the zone's top 16 bytes.
TEST_CASE("the canary zone lies below the usable stack and its top is read at a switch", "[stack]") {
  using gofer::detail::canary_bytes;
  STATIC_REQUIRE(canary_bytes >= 512);
  slab_allocator slabs(64 * 1024, guard_policy::never);
  stack_slot s = slabs.allocate();
  CHECK(static_cast<char*>(s.usable_bottom()) == static_cast<char*>(s.bottom) + canary_bytes);
  auto* zone = static_cast<volatile std::uint64_t*>(s.bottom);
  for (std::size_t word : {canary_bytes / 8 - 1, canary_bytes / 8 - 2}) {
    zone[word] = 0x5a;
    CHECK_FALSE(s.canary_intact());
    zone[word] = 0;
    CHECK(s.canary_intact());
  }
}

// A canary in a page of its own would cost every fiber a second page (a fault,
// and a whole page where the kernel maps no shared zero page for reads).
TEST_CASE("a canary shares its page with the top of the stack below it", "[stack]") {
  const std::size_t page = gofer::detail::page_size();
  slab_allocator slabs(64 * 1024, guard_policy::never);
  std::vector<stack_slot> got;
  for (int i = 0; i < 8; ++i) got.push_back(slabs.allocate());
  std::sort(got.begin(), got.end(),
            [](const stack_slot& a, const stack_slot& b) { return a.bottom < b.bottom; });
  for (std::size_t i = 1; i < got.size(); ++i) {
    auto below_top = reinterpret_cast<std::uintptr_t>(got[i - 1].top());
    auto canary = reinterpret_cast<std::uintptr_t>(got[i].bottom);
    REQUIRE(canary == below_top);  // carved side by side
    CHECK((below_top - 1) / page == canary / page);
    CHECK((canary + gofer::detail::canary_bytes - 1) / page == canary / page);
  }
  // Trimming a stack keeps the page under its canary (the stack below lives
  // there) and leaves the canary of the stack above intact.
  static_cast<volatile char*>(got[2].top())[-1] = 7;
  got[3].trimmed = false;
  got[3].trim();
  CHECK(static_cast<volatile char*>(got[2].top())[-1] == 7);
  got[2].trimmed = false;
  got[2].trim();
  CHECK(got[3].canary_intact());
  CHECK(static_cast<volatile char*>(got[2].top())[-1] == 0);
}

namespace {
bool resident(const void* addr) {
  const std::size_t page = gofer::detail::page_size();
  auto a = reinterpret_cast<std::uintptr_t>(addr) / page * page;
  unsigned char v = 0;
  REQUIRE(::mincore(reinterpret_cast<void*>(a), page, &v) == 0);
  return (v & 1) != 0;
}

// Kernels before 5.14 (and some emulators) cannot populate a range.
bool kernel_populates() {
  const std::size_t page = gofer::detail::page_size();
  void* p = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(p != MAP_FAILED);
  bool ok = ::madvise(p, page, MADV_POPULATE_WRITE) == 0 && resident(p);
  ::munmap(p, page);
  return ok;
}
}  // namespace

// A fresh stack's top page is mapped by one call before the fiber's block is
// written there; the rest of the stack stays unmapped until it is used.
TEST_CASE("populate_top maps a fresh stack's top page and nothing below it", "[stack]") {
  const std::size_t page = gofer::detail::page_size();
  slab_allocator slabs(64 * 1024, guard_policy::never);
  stack_slot s = slabs.allocate();
  REQUIRE(s.trimmed);
  const char* last = static_cast<const char*>(s.top()) - 1;
  CHECK_FALSE(resident(last));
  s.populate_top();
  CHECK_FALSE(s.trimmed);
  if (kernel_populates()) CHECK(resident(last));  // else a fault brings it
  CHECK_FALSE(resident(last - page));
  CHECK_FALSE(resident(s.usable_bottom()));
  CHECK(static_cast<const volatile char*>(s.top())[-1] == 0);
  CHECK(s.canary_intact());
}

TEST_CASE("guard pages sit below each stack", "[stack][child]") {
  slab_allocator slabs(64 * 1024, guard_policy::always);
  stack_slot s = slabs.allocate();
  CHECK(s.guarded);
  auto r = gofer::test::run_in_child([&] {
    static_cast<volatile char*>(s.bottom)[-1] = 1;  // the guard page
  });
  CHECK(r.signal == SIGSEGV);
}

namespace {
// Restores the process-wide guard state a test changes.
struct guard_state_scope {
  int light = gofer::detail::light_guard_state.load();
  long budget = gofer::detail::split_guard_budget().load();
  ~guard_state_scope() {
    gofer::detail::light_guard_state.store(light);
    gofer::detail::split_guard_budget().store(budget);
  }
};

// Pretends MADV_GUARD_INSTALL is missing (Linux before 6.13), with room in
// the mapping budget for `slabs` slabs' guards.
void as_old_kernel(long slabs) {
  gofer::detail::light_guard_state.store(0);
  gofer::detail::split_guard_budget().store(slabs * slab_allocator::split_slab_mappings);
}
}  // namespace

// Where the kernel has light guards, the default guards every stack and the
// guards cost no mapping: a million fibers fit as they did without them.
TEST_CASE("automatic guards every stack, with no mapping per guard where guards are light",
          "[stack]") {
  if (!gofer::detail::light_guards()) {
    WARN("skipped: this kernel has no MADV_GUARD_INSTALL (Linux before 6.13)");
    return;
  }
  const long budget = gofer::detail::split_guard_budget().load();
  std::size_t before = count_mappings();
  slab_allocator slabs(64 * 1024, guard_policy::automatic);
  std::vector<stack_slot> got;
  for (std::size_t i = 0; i < 4 * slab_allocator::stacks_per_slab; ++i) got.push_back(slabs.allocate());
  CHECK(count_mappings() < before + got.size() / 16);  // a sanitizer may drop some of its own
  for (auto& s : got) {
    CHECK(s.guarded);
    CHECK(gofer::detail::really_inaccessible(static_cast<char*>(s.bottom) - 1));
  }
  CHECK(gofer::detail::split_guard_budget().load() == budget);  // light guards take none
  // Recycled stacks keep their guards: a spawn from the cache pays nothing.
  slabs.release_batch(got.data(), got.size());
  stack_slot again = slabs.allocate();
  CHECK(again.guarded);
  CHECK(gofer::detail::really_inaccessible(static_cast<char*>(again.bottom) - 1));
}

// Linux before 6.13 guards with mprotect, two mappings per stack: guarded
// slabs while their guards fit the budget, canary slabs beyond, and the
// budget comes back when the allocator (a runtime) ends.
TEST_CASE("without light guards, stacks are guarded within the mapping budget and get a canary beyond",
          "[stack]") {
  guard_state_scope restore;
  as_old_kernel(2);
  const std::size_t per_slab = slab_allocator::stacks_per_slab;
  std::size_t before = count_mappings();
  {
    slab_allocator slabs(64 * 1024, guard_policy::automatic);
    std::vector<stack_slot> got;
    for (std::size_t i = 0; i < 4 * per_slab; ++i) got.push_back(slabs.allocate());
    std::size_t guarded = 0;
    for (auto& s : got) {
      if (s.guarded) {
        ++guarded;
        CHECK(gofer::detail::really_inaccessible(static_cast<char*>(s.bottom) - 1));
      } else {
        CHECK(s.usable_bottom() == static_cast<char*>(s.bottom) + gofer::detail::canary_bytes);
        CHECK(s.canary_intact());
      }
    }
    CHECK(guarded == 2 * per_slab);
    CHECK(gofer::detail::split_guard_budget().load() == 0);
    // Each guard split its slab: what the budget counted, and no more. The
    // slack is for mappings made meanwhile by others (a sanitizer's runtime
    // maps memory of its own); it is far below the two per stack that
    // guarding the canary slabs too would add.
    const auto grew = static_cast<long>(count_mappings()) - static_cast<long>(before);
    CHECK(grew <= static_cast<long>(2 * guarded + 32));
    CHECK(grew >= static_cast<long>(guarded));

    // guard_policy::always guards beyond the budget, and takes from it, so
    // that automatic runtimes see what it used.
    slab_allocator forced(64 * 1024, guard_policy::always);
    CHECK(forced.allocate().guarded);
    CHECK(gofer::detail::split_guard_budget().load() < 0);
  }
  CHECK(gofer::detail::split_guard_budget().load() == 2 * slab_allocator::split_slab_mappings);
}

TEST_CASE("a stack of its own size is guarded by the same policy", "[stack]") {
  using gofer::detail::allocate_own_stack;
  using gofer::detail::free_own_stack;
  guard_state_scope restore;
  // Guarded either way while the budget lasts: by a light guard where the
  // kernel has them, else by splitting the mapping.
  stack_slot fresh = allocate_own_stack(100 * 1024, guard_policy::automatic);
  CHECK(fresh.guarded);
  CHECK(gofer::detail::really_inaccessible(static_cast<char*>(fresh.bottom) - 1));
  free_own_stack(fresh);
  as_old_kernel(0);
  gofer::detail::split_guard_budget().store(1);
  stack_slot split = allocate_own_stack(100 * 1024, guard_policy::automatic);
  CHECK(split.guarded);
  CHECK(gofer::detail::split_guard_budget().load() == 0);
  CHECK(gofer::detail::really_inaccessible(static_cast<char*>(split.bottom) - 1));
  stack_slot canary = allocate_own_stack(100 * 1024, guard_policy::automatic);  // budget spent
  CHECK_FALSE(canary.guarded);
  free_own_stack(canary);
  free_own_stack(split);
  CHECK(gofer::detail::split_guard_budget().load() == 1);
}

// The fault handler's test for "this fault is the running fiber's overflow".
TEST_CASE("a fault is an overflow in the guard, just below it, or near a stack pointer below the stack",
          "[stack]") {
  using gofer::detail::is_overflow;
  using gofer::detail::overflow_reach;
  const std::uintptr_t page = gofer::detail::page_size();
  const std::uintptr_t bottom = std::uintptr_t{1} << 40;
  stack_slot guarded;
  guarded.bottom = reinterpret_cast<void*>(bottom);
  guarded.size = 256 * 1024;
  guarded.guarded = true;
  const std::uintptr_t top = bottom + guarded.size;
  const std::uintptr_t in_stack = top - 4096;  // a stack pointer inside the stack

  CHECK(is_overflow(guarded, bottom - 8, in_stack));          // the guard
  CHECK(is_overflow(guarded, bottom - page, 0));              // the guard, no stack pointer known
  CHECK(is_overflow(guarded, bottom - 40 * 1024, in_stack));  // a frame that skipped the guard
  CHECK_FALSE(is_overflow(guarded, bottom - overflow_reach - 2 * page, in_stack));  // too far
  CHECK_FALSE(is_overflow(guarded, bottom, in_stack));        // the stack itself
  CHECK_FALSE(is_overflow(guarded, 64, in_stack));            // a null pointer
  CHECK_FALSE(is_overflow(guarded, 64, 0));

  // The stack pointer below the stack: a frame larger than what was left, or
  // a recursion that ran on through the memory below (canary slabs).
  const std::uintptr_t far_below = bottom - 3 * 1024 * 1024;
  CHECK(is_overflow(guarded, far_below - 8, far_below));         // a push
  CHECK(is_overflow(guarded, far_below + 1000, far_below));      // a write into the new frame
  CHECK_FALSE(is_overflow(guarded, 64, far_below));              // a null pointer there
  CHECK_FALSE(is_overflow(guarded, top + 64, far_below));        // above the stack
  CHECK_FALSE(is_overflow(guarded, far_below - overflow_reach - 8, far_below));

  stack_slot canary = guarded;
  canary.guarded = false;
  CHECK(is_overflow(canary, bottom + 8, in_stack));  // the canary zone
  CHECK(is_overflow(canary, bottom - 8, in_stack));  // the stack below, just under the zone
  CHECK_FALSE(is_overflow(canary, bottom + gofer::detail::canary_bytes, in_stack));
  // A stack pointer in the canary zone is below the usable stack.
  CHECK(is_overflow(canary, bottom + 16, bottom + 64));
}

// Idle stacks give their pages back in runs that span the guards between
// them; the guards must stay, light or mprotect'd.
TEST_CASE("trimming idle stacks keeps their guards", "[stack]") {
  guard_state_scope restore;
  for (bool old_kernel : {false, true}) {
    INFO((old_kernel ? "mprotect guards" : "light guards where the kernel has them"));
    if (old_kernel) as_old_kernel(1);
    slab_allocator slabs(64 * 1024, guard_policy::automatic);
    std::vector<stack_slot> got;
    for (int i = 0; i < 8; ++i) {
      stack_slot s = slabs.allocate();
      std::memset(s.bottom, 0x5a, s.size);
      s.trimmed = false;
      got.push_back(s);
    }
    slabs.release_batch(got.data(), got.size());
    CHECK(slabs.trim_free() == got.size());
    for (auto& s : got) {
      CHECK(static_cast<unsigned char*>(s.bottom)[100] == 0);  // the pages were dropped
      if (s.guarded) CHECK(gofer::detail::really_inaccessible(static_cast<char*>(s.bottom) - 1));
    }
  }
}

TEST_CASE("trim_free returns idle stacks' memory", "[stack]") {
  slab_allocator slabs(64 * 1024, guard_policy::never);
  std::vector<stack_slot> got;
  for (int i = 0; i < 32; ++i) {
    stack_slot s = slabs.allocate();
    std::memset(s.bottom, 0x5a, s.size);  // touch every page
    s.trimmed = false;
    got.push_back(s);
  }
  slabs.release_batch(got.data(), got.size());
  CHECK(slabs.trim_free() == 32);
  stack_slot again = slabs.allocate();
  CHECK(static_cast<unsigned char*>(again.bottom)[100] == 0);  // pages were dropped
  CHECK(slabs.trim_free() == 0);  // nothing new to trim
}

// ThreadSanitizer builds run no [child] tests (it cannot fork a threaded
// process reliably), and it defers signal handlers to its own safe points,
// which a thread with an exhausted stack never reaches.
#if !GOFER_TSAN
namespace {
// 1 KiB frames, one per level: not inlined into one another (that makes
// frames of several KiB), and not a tail call (that makes none).
// The frame's address escapes (an empty asm that may read it), so no
// compiler can turn the recursion into a loop: clang does that with an
// accumulating recursion whose locals the callee cannot see.
GOFER_NOINLINE int recurse(int depth) {
  volatile char pad[1024];
  pad[0] = static_cast<char>(depth);
  asm volatile("" : : "r"(pad) : "memory");
  if (depth == 0) return pad[0];
  return recurse(depth - 1) + pad[0];
}

// One frame larger than the whole stack, filled from its low end up, as a
// zero-initialised local array is.
GOFER_NOINLINE int one_big_frame() {
  volatile char pad[gofer::detail::default_stack_size / 256 * 300];  // 300 KiB on 256 KiB stacks
  for (std::size_t i = 0; i < sizeof pad; ++i) pad[i] = 1;
  return pad[sizeof pad / 2];
}

// The figures are for the default 256 KiB stack; sanitizer builds
// give fibers four times as much, and their frames are larger still.
int scaled_depth(int depth_on_256k) {
  return static_cast<int>(static_cast<std::size_t>(depth_on_256k) * gofer::detail::default_stack_size /
                          (256 * 1024));
}

// A whole program with default options: `neighbours` fibers park first (their
// stacks lie below the diver's, where its overflow goes), then a fiber named
// "diver" runs `dive`. Exits 0 if main returns, which an overflow must never
// let it do. Before the dive it prints the line that creates the diver.
template <class Dive>
void program_with_a_diver(int neighbours, Dive dive) {
  std::_Exit(gofer::run([&] {
    gofer::wait_group parked, gate, done;
    parked.add(neighbours);
    gate.add(1);
    for (int i = 0; i < neighbours; ++i) {
      gofer::go([&] {
        parked.done();
        gate.wait();
      });
    }
    parked.wait();
    done.add(1);
    std::fprintf(stderr, "diver created at stack_test.cpp:%d\n", __LINE__ + 1);
    gofer::go(gofer::fiber_options{.name = "diver"}, [&] {
      dive();
      done.done();
    });
    done.wait();
    gate.done();
    return 0;
  }));
}

// Whether `err` holds "gofer: stack overflow in fiber N (name)" on a line of
// its own. Not by std::regex: a pattern over the whole output recurses once
// per character, and overflows the test's own stack under a sanitizer.
bool names_overflow_of(const std::string& err, const std::string& name) {
  const std::string head = "gofer: stack overflow in fiber ";
  for (auto at = err.find(head); at != std::string::npos; at = err.find(head, at + 1)) {
    std::size_t i = at + head.size();
    const std::size_t digits = i;
    while (i < err.size() && err[i] >= '0' && err[i] <= '9') ++i;
    if (i > digits && err.compare(i, name.size() + 4, " (" + name + ")\n") == 0) return true;
  }
  return false;
}

#if GOFER_ASAN
constexpr bool under_asan = true;
#else
constexpr bool under_asan = false;
#endif

// AddressSanitizer checks every write against its shadow memory. An overflow
// whose frames land on another fiber's live frames (a frame that jumps the
// guard, a recursion through the stacks below a canary slab, calls made from
// below the stack) meets their poisoned redzones, and ASan reports that
// itself, from a stack pointer below the fiber's stack where its own report
// may overflow in turn: those programs end loudly, but not reliably in
// gofer's report. An overflow that meets a guard first is gofer's to report
// under ASan too.
bool skipped_under_asan() {
  if (!under_asan) return false;
  WARN("skipped under AddressSanitizer: it reports the writes over other fibers' frames first");
  return true;
}

// The report a whole program must end with: the fiber, where it was created,
// and abort() (never exit 0, never a bare SIGSEGV).
void check_overflow_report(const gofer::test::child_result& r) {
  INFO(r.err);
  INFO("exit code " << r.exit_code << ", signal " << r.signal);
  CHECK_FALSE(r.timed_out);
  CHECK_FALSE(r.exited);
  CHECK(r.signal == SIGABRT);
  CHECK(names_overflow_of(r.err, "diver"));
  auto at = r.err.find("diver created at ");
  REQUIRE(at != std::string::npos);
  auto site = r.err.substr(at + 17, r.err.find('\n', at) - at - 17);
  CHECK_THAT(r.err, Catch::Contains("created by ") && Catch::Contains(site + "\n"));
}
}  // namespace

TEST_CASE("with default options, 1 KiB frames 400 deep end in the overflow report",
          "[stack][death][child]") {
  check_overflow_report(gofer::test::run_in_child(
      [] { program_with_a_diver(0, [] { recurse(scaled_depth(400)); }); }));
}

TEST_CASE("with default options, 1 KiB frames 3,000 deep over 50 parked fibers end in the overflow report",
          "[stack][death][child]") {
  check_overflow_report(gofer::test::run_in_child(
      [] { program_with_a_diver(50, [] { recurse(scaled_depth(3000)); }); }));
}

TEST_CASE("with default options, one frame larger than the stack ends in the overflow report",
          "[stack][death][child]") {
  if (skipped_under_asan()) return;
  check_overflow_report(gofer::test::run_in_child([] { program_with_a_diver(0, [] { one_big_frame(); }); }));
  check_overflow_report(gofer::test::run_in_child([] { program_with_a_diver(50, [] { one_big_frame(); }); }));
}

TEST_CASE("with default options, a recursion without end ends in the overflow report",
          "[stack][death][child]") {
  check_overflow_report(gofer::test::run_in_child(
      [] { program_with_a_diver(50, [] { recurse(1 << 30); }); }));
}

namespace {
struct sigaction handler_before_ours;

// A program's own SIGSEGV handler, installed after a runtime's: it says it
// ran, then passes the fault on to the handler it found, as such handlers do.
void own_segv_handler(int sig, siginfo_t* info, void* uctx) {
  [[maybe_unused]] auto n = ::write(2, "own handler\n", 12);
  handler_before_ours.sa_sigaction(sig, info, uctx);
}
}  // namespace

TEST_CASE("a fault passed between gofer's handler and the program's own ends once",
          "[stack][death][child]") {
  // The program's handler passes on to gofer's; a second runtime puts
  // gofer's back in front, which passes on to the program's: a circle.
  auto r = gofer::test::run_in_child([] {
    ::signal(SIGSEGV, SIG_DFL);  // a plain program's, not the test runner's
    gofer::run([] {});
    struct sigaction sa{};
    sa.sa_sigaction = &own_segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &handler_before_ours);
    void* page = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    gofer::run([page] { *static_cast<volatile int*>(page) = 1; });
  });
  INFO(r.err);
  CHECK_FALSE(r.timed_out);
  CHECK_FALSE(r.exited);
  std::size_t times = 0;
  for (auto at = r.err.find("own handler\n"); at != std::string::npos;
       at = r.err.find("own handler\n", at + 1))
    ++times;
  CHECK(times == 1);
}

TEST_CASE("a SIGSEGV sent to the process still ends it", "[stack][death][child]") {
  auto r = gofer::test::run_in_child([] {
    ::signal(SIGSEGV, SIG_DFL);  // a plain program's, not the test runner's
    gofer::run([] { ::raise(SIGSEGV); });
    std::fprintf(stderr, "carried on\n");
  });
  INFO(r.err);
  CHECK_FALSE(r.timed_out);
  // Killed by it, or ended by a sanitizer's report where the sanitizer
  // keeps its handler in place.
  CHECK((!r.exited || r.exit_code != 0));
  CHECK_THAT(r.err, !Catch::Contains("carried on"));
}

// Beyond the mapping budget on a kernel without light guards, stacks get the
// canary: a recursion that runs on through the stacks below is still named
// when it reaches memory that faults (by the stack pointer), an overflow
// still under way at a switch is caught there (by the stack pointer too),
// and one that wrote the top of the canary at the next switch.
TEST_CASE("in a canary slab, a recursion without end ends in the overflow report",
          "[stack][death][child]") {
  if (skipped_under_asan()) return;
  check_overflow_report(gofer::test::run_in_child([] {
    as_old_kernel(0);
    program_with_a_diver(50, [] { recurse(1 << 30); });
  }));
}

TEST_CASE("in a canary slab, a frame below the stack at a switch ends in the overflow report",
          "[stack][death][child]") {
  if (skipped_under_asan()) return;  // the frames that park go over another fiber's
  check_overflow_report(gofer::test::run_in_child([] {
    as_old_kernel(0);
    program_with_a_diver(50, [] {
      gofer::detail::fiber* self = gofer::detail::current_fiber();
      // A dynamic frame (alloca, or a variable-length array) that reaches
      // past the bottom, then parks. The check must read the stack pointer:
      // the compiler keeps a local's address (what the check once compared)
      // above the dynamic part of the frame.
      const auto left = static_cast<std::size_t>(static_cast<char*>(__builtin_frame_address(0)) -
                                                 static_cast<char*>(self->stack.bottom));
      void* frame = __builtin_alloca(left + 64);
      asm volatile("" : : "r"(frame) : "memory");  // kept, though never written
      gofer::this_fiber::sleep_for(std::chrono::milliseconds(1));  // parks: a switch
    });
  }));
}

TEST_CASE("in a canary slab, a written canary ends in the overflow report at the next switch",
          "[stack][death][child]") {
  check_overflow_report(gofer::test::run_in_child([] {
    as_old_kernel(0);
    program_with_a_diver(0, [] {
      // Stands for a frame that reached the far end of the stack: write
      // where the canary lives, then switch.
      gofer::detail::fiber* self = gofer::detail::current_fiber();
      static_cast<volatile char*>(self->stack.bottom)[gofer::detail::canary_bytes - 8] = 0x41;
      gofer::this_fiber::sleep_for(std::chrono::milliseconds(1));  // parks: a switch
      std::_Exit(3);  // not reached: the switch reports it
    });
  }));
}

TEST_CASE("guard_pages = true guards beyond the mapping budget", "[stack][death][child]") {
  auto r = gofer::test::run_in_child([] {
    as_old_kernel(0);
    gofer::run(
        [] {
          gofer::wait_group wg;
          wg.add(1);
          gofer::go(gofer::fiber_options{.name = "deep-diver"}, [&] {
            if (!gofer::detail::current_fiber()->stack.guarded) std::_Exit(3);
            recurse(1 << 20);
            wg.done();
          });
          wg.wait();
        },
        {.procs = 1, .guard_pages = true});
  });
  INFO(r.err);
  CHECK(r.signal == SIGABRT);
  CHECK(names_overflow_of(r.err, "deep-diver"));
}

namespace {
// Not null (UBSan would report that first) but on page 0, which is never
// mapped; through a volatile, so the compiler sees no constant address.
volatile std::uintptr_t wild_address = 64;

void wild_write() { *reinterpret_cast<volatile int*>(wild_address) = 1; }

void user_segv_handler(int) {
  const char msg[] = "the program's handler saw the fault\n";
  [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
  std::_Exit(42);
}
}  // namespace

// The overflow handler stands in front of the program's: any other fault
// goes on exactly as it would without gofer.
TEST_CASE("a fault that is not an overflow still kills with SIGSEGV", "[stack][death][child]") {
  auto r = gofer::test::run_in_child([] { program_with_a_diver(50, [] { wild_write(); }); });
  INFO(r.err);
  CHECK(r.signal == SIGSEGV);
  CHECK_THAT(r.err, !Catch::Contains("stack overflow"));
}

TEST_CASE("a SIGSEGV handler the program installed still gets the faults that are not overflows",
          "[stack][death][child]") {
  auto with_handler = [](auto dive) {
    return gofer::test::run_in_child([dive] {
      struct sigaction sa{};
      sa.sa_handler = &user_segv_handler;
      sigemptyset(&sa.sa_mask);
      ::sigaction(SIGSEGV, &sa, nullptr);
      program_with_a_diver(10, dive);
    });
  };
  auto wild = with_handler([] { wild_write(); });
  INFO(wild.err);
  CHECK(wild.exited);
  CHECK(wild.exit_code == 42);
  CHECK_THAT(wild.err, Catch::Contains("the program's handler saw the fault"));
  CHECK_THAT(wild.err, !Catch::Contains("stack overflow"));
  // An overflow is still gofer's to report.
  check_overflow_report(with_handler([] { recurse(1 << 30); }));
}
#endif  // !GOFER_TSAN
