// Per-thread caches of the runtime's small heap objects (channel states,
// context nodes), in front of operator new.
//
// Why: such objects are typically made by one fiber and freed by another,
// often on another M: a context's children are cancelled and dropped by the
// fibers that watch them, a done channel by whoever closes it last. glibc
// frees a chunk allocated by another thread into that thread's arena under
// the arena's lock once its small per-thread cache (7 chunks per size) is
// full, so at procs 2 the two Ms took turns on that lock, with futex calls:
// cancelling 1000 watched contexts cost 920 ns per watcher, and 570 ns with
// glibc's per-thread cache raised to 4000 chunks. Go's allocator has per-P
// caches for the same reason.
//
// How: size classes of 64 bytes up to 512. Each thread keeps a free list per
// class. A free list over `high` objects moves a batch of `batch` to a
// process-wide depot, and an empty one takes a batch back, so memory flows
// from the threads that free to the threads that allocate at one lock per
// batch. The depot keeps at most `depot_batches` batches per class and gives
// the rest back to operator delete, so a burst does not stay held: at most
// (depot_batches + threads * 2) * batch objects of a class are cached.
//
// The entry points are never inlined: a fiber may move between threads at
// any park, and a thread_local's address computed before one would be
// another thread's after it (see current.hpp).
//
// Under AddressSanitizer every object goes straight to operator new and
// delete, so a use after free is still caught.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>

#include "gofer/detail/config.hpp"
#include "gofer/detail/util/spinlock.hpp"

namespace gofer::detail::small_alloc {

inline constexpr std::size_t granule = 64;
inline constexpr std::size_t classes = 8;  // 64, 128, ..., 512 bytes
inline constexpr std::uint32_t batch = 32;
inline constexpr std::uint32_t high = 2 * batch;
inline constexpr std::uint32_t depot_batches = 64;

// A cached object's first bytes: the next object of its list and, for the
// first object of a batch in the depot, the next batch.
struct free_obj {
  free_obj* next;
  free_obj* next_batch;
};

constexpr std::size_t class_of(std::size_t size) noexcept { return (size - 1) / granule; }
constexpr std::size_t class_size(std::size_t c) noexcept { return (c + 1) * granule; }
constexpr bool cached(std::size_t size) noexcept {
#if GOFER_ASAN
  (void)size;
  return false;
#else
  return size != 0 && size <= classes * granule;
#endif
}

class depot {
 public:
  // Takes a batch of class c (a list of `batch` objects), or null.
  free_obj* take(std::size_t c) noexcept {
    std::lock_guard lk(mu_[c]);
    free_obj* b = batches_[c];
    if (b != nullptr) {
      batches_[c] = b->next_batch;
      --count_[c];
    }
    return b;
  }
  // Keeps a batch of class c; false if the depot is full for c.
  bool put(std::size_t c, free_obj* b) noexcept {
    std::lock_guard lk(mu_[c]);
    if (count_[c] >= depot_batches) return false;
    b->next_batch = batches_[c];
    batches_[c] = b;
    ++count_[c];
    return true;
  }

 private:
  spinlock mu_[classes];
  free_obj* batches_[classes] = {};
  std::uint32_t count_[classes] = {};
};

// Never destroyed: objects may be freed by threads that outlive static
// destruction, and it holds only memory.
inline depot& the_depot() noexcept {
  static depot* d = new depot;
  return *d;
}

// The global operator delete, sized where the compiler declares the sized
// forms (clang before 19 does only with -fsized-deallocation).
inline void global_delete(void* p, std::size_t size) noexcept {
#if defined(__cpp_sized_deallocation)
  ::operator delete(p, size);
#else
  (void)size;
  ::operator delete(p);
#endif
}

inline void global_delete(void* p, std::size_t size, std::align_val_t al) noexcept {
#if defined(__cpp_sized_deallocation)
  ::operator delete(p, size, al);
#else
  (void)size;
  ::operator delete(p, al);
#endif
}

inline void delete_list(free_obj* o, std::size_t c) noexcept {
  while (o != nullptr) {
    free_obj* next = o->next;
    global_delete(o, class_size(c));
    o = next;
  }
}

struct thread_cache {
  enum : std::uint8_t { unused, live, gone };
  free_obj* head[classes];
  std::uint32_t count[classes];
  std::uint8_t state;  // a thread_local of static storage: zero, i.e. unused

  // Moves the first n objects of class c's list out, as a batch.
  free_obj* cut(std::size_t c, std::uint32_t n) noexcept {
    free_obj* first = head[c];
    free_obj* last = first;
    for (std::uint32_t i = 1; i < n; ++i) last = last->next;
    head[c] = last->next;
    last->next = nullptr;
    count[c] -= n;
    return first;
  }
  void flush() noexcept {
    for (std::size_t c = 0; c < classes; ++c) {
      while (count[c] >= batch) {
        free_obj* b = cut(c, batch);
        if (!the_depot().put(c, b)) delete_list(b, c);
      }
      delete_list(head[c], c);
      head[c] = nullptr;
      count[c] = 0;
    }
  }
};

inline thread_local thread_cache tls_cache;

// Gives the thread's cache back when the thread ends. A separate object, so
// that tls_cache stays trivially destructible and is still usable (bypassed,
// state `gone`) by destructors that run after this one.
struct thread_cache_flusher {
  ~thread_cache_flusher() {
    tls_cache.flush();
    tls_cache.state = thread_cache::gone;
  }
};
inline thread_local thread_cache_flusher tls_cache_flusher;

// The thread's cache, or null once the thread is ending. Only for allocate
// and deallocate, which are never inlined and never switch: the address they
// compute stays the calling thread's for the whole call.
inline thread_cache* this_thread_cache() noexcept {
  thread_cache& tc = tls_cache;
  if (tc.state == thread_cache::live) [[likely]]
    return &tc;
  if (tc.state == thread_cache::gone) return nullptr;
  (void)&tls_cache_flusher;  // constructs it, so its destructor runs at exit
  tc.state = thread_cache::live;
  return &tc;
}

GOFER_NOINLINE inline void* allocate(std::size_t size) {
  if (!cached(size)) return ::operator new(size);
  const std::size_t c = class_of(size);
  thread_cache* tc = this_thread_cache();
  if (tc != nullptr) {
    if (tc->head[c] == nullptr) {
      if (free_obj* b = the_depot().take(c)) {
        tc->head[c] = b;
        tc->count[c] = batch;
      }
    }
    if (free_obj* o = tc->head[c]) {
      tc->head[c] = o->next;
      --tc->count[c];
      return o;
    }
  }
  return ::operator new(class_size(c));
}

GOFER_NOINLINE inline void deallocate(void* p, std::size_t size) noexcept {
  if (p == nullptr) return;
  if (!cached(size)) {
    global_delete(p, size);
    return;
  }
  const std::size_t c = class_of(size);
  thread_cache* tc = this_thread_cache();
  if (tc == nullptr) {
    global_delete(p, class_size(c));
    return;
  }
  auto* o = static_cast<free_obj*>(p);
  o->next = tc->head[c];
  tc->head[c] = o;
  if (++tc->count[c] > high) [[unlikely]] {
    free_obj* b = tc->cut(c, batch);
    if (!the_depot().put(c, b)) delete_list(b, c);
  }
}

}  // namespace gofer::detail::small_alloc

// Class-scope allocation functions for a polymorphic base whose derived
// objects are made and freed on different threads. The sized delete gets the
// dynamic type's size through the virtual destructor. Over-aligned types go
// straight to the global functions.
#define GOFER_SMALL_ALLOC_OPERATORS                                                         \
  static void* operator new(std::size_t size) {                                             \
    return ::gofer::detail::small_alloc::allocate(size);                                    \
  }                                                                                         \
  static void operator delete(void* p, std::size_t size) noexcept {                         \
    ::gofer::detail::small_alloc::deallocate(p, size);                                      \
  }                                                                                         \
  static void* operator new(std::size_t size, std::align_val_t al) {                        \
    return ::operator new(size, al);                                                        \
  }                                                                                         \
  static void operator delete(void* p, std::size_t size, std::align_val_t al) noexcept {    \
    ::gofer::detail::small_alloc::global_delete(p, size, al);                               \
  }
