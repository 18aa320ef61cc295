// Stacks: slabs (few mappings for many stacks), canary, guard pages, trimming,
// and the overflow reports (in a child process).
#include <catch2/catch.hpp>

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <string>

#include <gofer/gofer.hpp>
#include <gofer/detail/stack/slab.hpp>

#include "../support/subprocess.hpp"

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
  slab_allocator slabs(64 * 1024, false);
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
  slab_allocator slabs(64 * 1024, false);
  stack_slot s = slabs.allocate();
  CHECK(s.canary_intact());
  static_cast<volatile char*>(s.bottom)[gofer::detail::canary_bytes - 1] = 1;
  CHECK_FALSE(s.canary_intact());
}

// A canary in a page of its own would cost every fiber a second page (a fault,
// and a whole page where the kernel maps no shared zero page for reads).
TEST_CASE("a canary shares its page with the top of the stack below it", "[stack]") {
  const std::size_t page = gofer::detail::page_size();
  slab_allocator slabs(64 * 1024, false);
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
  slab_allocator slabs(64 * 1024, false);
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
  slab_allocator slabs(64 * 1024, true);
  stack_slot s = slabs.allocate();
  CHECK(s.guarded);
  auto r = gofer::test::run_in_child([&] {
    static_cast<volatile char*>(s.bottom)[-1] = 1;  // the guard page
  });
  CHECK(r.signal == SIGSEGV);
}

TEST_CASE("trim_free returns idle stacks' memory", "[stack]") {
  slab_allocator slabs(64 * 1024, false);
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

namespace {
int recurse(int depth) {
  volatile char pad[1024];
  pad[0] = static_cast<char>(depth);
  if (depth == 0) return pad[0];
  return recurse(depth - 1) + pad[0];
}
}  // namespace

// ThreadSanitizer defers signal handlers to its own safe points, which a
// thread with an exhausted stack never reaches: these reports are checked in
// the other builds.
#if !GOFER_TSAN
TEST_CASE("overflow onto a guard page names the fiber", "[stack][death][child]") {
  auto r = gofer::test::run_in_child([] {
    gofer::run(
        [] {
          gofer::wait_group wg;
          wg.add(1);
          gofer::go(gofer::fiber_options{.name = "deep-diver"}, [&] {
            recurse(1 << 20);
            wg.done();
          });
          wg.wait();
        },
        {.procs = 1, .guard_pages = true});
  });
  INFO(r.err);
  CHECK(r.signal == SIGABRT);
  CHECK_THAT(r.err, Catch::Matches("(.|\\n)*gofer: stack overflow in fiber [0-9]+ \\(deep-diver\\)(.|\\n)*"));
}

TEST_CASE("without guard pages the canary catches an overflow at the next switch", "[stack][death][child]") {
  auto r = gofer::test::run_in_child([] {
    gofer::run(
        [] {
          gofer::wait_group wg;
          wg.add(1);
          gofer::go(gofer::fiber_options{.name = "scribbler"}, [&] {
            // Stands for a frame that reached the far end of the stack: write
            // where the canary lives, then switch.
            gofer::detail::fiber* self = gofer::detail::current_fiber();
            static_cast<volatile char*>(self->stack.bottom)[gofer::detail::canary_bytes - 8] = 0x41;
            gofer::this_fiber::yield();
            wg.done();
          });
          gofer::this_fiber::yield();
          wg.wait();
        },
        {.procs = 1});
  });
  INFO(r.err);
  CHECK(r.signal == SIGABRT);
  CHECK_THAT(r.err, Catch::Contains("gofer: stack overflow in fiber"));
  CHECK_THAT(r.err, Catch::Contains("(scribbler)"));
}
#endif  // !GOFER_TSAN
