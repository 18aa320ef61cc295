// fiber_local<T>: a variable with one instance per fiber, as thread_local has
// one per thread.
//
// thread_local is the wrong tool inside fibers: many fibers share a thread,
// and one fiber may run on several threads over its life (it resumes on
// whichever M picks it up), so a thread_local read before a park and after it
// may be two different objects. fiber_local follows the fiber:
//
//   gofer::fiber_local<std::string> request_id;
//   *request_id = "abc";            // this fiber's instance
//   gofer::this_fiber::yield();     // may resume on another thread
//   assert(*request_id == "abc");
//
// Each fiber's instance is value-initialised on first use and destroyed when
// the fiber's function returns, on the fiber, newest first. On a plain thread
// the thread has its own instance, destroyed when the thread ends. A fiber
// abandoned by its runtime's end never returns, so its instances are not
// destroyed (as with anything else its frames own).
//
// Lookup is a short linear search of the fiber's own table: meant for a few
// variables per program (request ids, loggers, tracing spans), not thousands.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "gofer/detail/park/park.hpp"

namespace gofer {

namespace detail {

struct fiber_local_slot {
  std::uint64_t key;
  void* value;
  void (*destroy)(void*);
};

struct fiber_local_table {
  std::vector<fiber_local_slot> slots;
  fiber_local_table() = default;
  fiber_local_table(const fiber_local_table&) = delete;
  fiber_local_table& operator=(const fiber_local_table&) = delete;
  ~fiber_local_table() {
    // Newest first, as destructors of automatic and thread_local objects.
    while (!slots.empty()) {
      fiber_local_slot s = slots.back();
      slots.pop_back();
      s.destroy(s.value);
    }
  }
};

// Keys are never reused, so a fiber_local destroyed while fibers still hold
// instances of it cannot hand those to a later one at the same address.
inline std::atomic<std::uint64_t> next_fiber_local_key{1};

inline fiber_local_table& current_fiber_locals() {
  if (fiber* f = current_fiber()) {
    if (f->locals == nullptr) {
      destroy_fiber_locals.store([](void* t) { delete static_cast<fiber_local_table*>(t); },
                                 std::memory_order_release);
      f->locals = new fiber_local_table;
    }
    return *static_cast<fiber_local_table*>(f->locals);
  }
  thread_local fiber_local_table for_thread;
  return for_thread;
}

}  // namespace detail

template <class T>
class fiber_local {
 public:
  fiber_local() noexcept
      : key_(detail::next_fiber_local_key.fetch_add(1, std::memory_order_relaxed)) {}
  fiber_local(const fiber_local&) = delete;
  fiber_local& operator=(const fiber_local&) = delete;

  // The calling fiber's (or thread's) instance, created on first use.
  T& get() {
    detail::fiber_local_table& t = detail::current_fiber_locals();
    for (auto& s : t.slots)
      if (s.key == key_) return *static_cast<T*>(s.value);
    auto value = std::make_unique<T>();
    t.slots.push_back({key_, value.get(), [](void* p) { delete static_cast<T*>(p); }});
    return *value.release();
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }

 private:
  std::uint64_t key_;
};

}  // namespace gofer
