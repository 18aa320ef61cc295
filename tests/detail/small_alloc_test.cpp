// The per-thread caches of small runtime objects: a freed object is reused by
// its thread, objects freed on one thread reach another that allocates (a
// batch at a time, through the depot), an ending thread gives its cache back,
// and sizes beyond the classes go straight to operator new.
#include <catch2/catch.hpp>

#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include <gofer/detail/util/small_alloc.hpp>

namespace sa = gofer::detail::small_alloc;

namespace {

std::vector<void*> allocate_n(std::size_t n, std::size_t size) {
  std::vector<void*> v;
  for (std::size_t i = 0; i < n; ++i) {
    v.push_back(sa::allocate(size));
    std::memset(v.back(), 0xab, size);  // the whole size is usable
  }
  return v;
}

std::size_t count_in(const std::vector<void*>& got, const std::set<void*>& earlier) {
  std::size_t n = 0;
  for (void* p : got) n += earlier.count(p);
  return n;
}

void free_all(const std::vector<void*>& v, std::size_t size) {
  for (void* p : v) sa::deallocate(p, size);
}

}  // namespace

#if GOFER_ASAN
// So that AddressSanitizer sees every free and catches a use after it.
TEST_CASE("small_alloc caches nothing under AddressSanitizer", "[small_alloc]") {
  for (std::size_t size = 1; size <= sa::classes * sa::granule; ++size) REQUIRE_FALSE(sa::cached(size));
}
#else
TEST_CASE("small_alloc reuses an object freed by the same thread", "[small_alloc]") {
  void* a = sa::allocate(100);
  sa::deallocate(a, 100);
  void* b = sa::allocate(120);  // the same class: 128 bytes
  CHECK(b == a);
  sa::deallocate(b, 120);
}

TEST_CASE("small_alloc moves objects freed on one thread to a thread that allocates",
          "[small_alloc]") {
  constexpr std::size_t n = 1000, size = 184;
  const std::vector<void*> first = allocate_n(n, size);
  std::thread([&] { free_all(first, size); }).join();  // the freeing thread ends, too
  const std::vector<void*> second = allocate_n(n, size);
  // Everything but what the freeing thread's cache held past its last whole
  // batch comes back (the depot has room for all of it).
  CHECK(count_in(second, std::set<void*>(first.begin(), first.end())) >= n - sa::batch);
  free_all(second, size);
}

TEST_CASE("small_alloc gives an ending thread's whole batches to the other threads",
          "[small_alloc]") {
  constexpr std::size_t n = 3 * sa::batch, size = 64;
  std::vector<void*> freed;
  std::thread([&] {
    freed = allocate_n(n, size);
    free_all(freed, size);  // a batch goes to the depot now, the rest as the thread ends
  }).join();
  const std::vector<void*> got = allocate_n(n, size);
  CHECK(count_in(got, std::set<void*>(freed.begin(), freed.end())) == n);
  free_all(got, size);
}

#endif

TEST_CASE("small_alloc passes sizes beyond its classes to operator new", "[small_alloc]") {
  constexpr std::size_t size = sa::classes * sa::granule + 1;
  CHECK_FALSE(sa::cached(size));
  const std::vector<void*> v = allocate_n(10, size);
  CHECK(std::set<void*>(v.begin(), v.end()).size() == 10);
  free_all(v, size);
}
