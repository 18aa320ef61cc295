// Tells AddressSanitizer and ThreadSanitizer about stack switches.
//
// Without these hooks ASan sees a fiber's frames on an unknown stack and reports
// false stack-buffer overflows, and TSan attributes every fiber's accesses to
// whichever thread happens to run it. The hooks live in the C++ wrapper around
// the switch (context.hpp), never in the assembly, and compile to nothing when
// the sanitizer is off.
#pragma once

#include <cstddef>

#include "gofer/detail/config.hpp"

#if GOFER_ASAN
extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, std::size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                     std::size_t* size_old);
void __asan_unpoison_memory_region(const volatile void* addr, std::size_t size);
// LeakSanitizer's; weak, for a platform whose ASan comes without it.
__attribute__((weak)) void __lsan_register_root_region(const void* p, std::size_t size);
}
#endif
#if GOFER_TSAN
extern "C" {
void* __tsan_get_current_fiber();
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_set_fiber_name(void* fiber, const char* name);
}
#endif

namespace gofer::detail::arch::sanitizer {

// The part of a context the sanitizers need: the stack it runs on and TSan's
// shadow fiber.
struct stack_info {
  const void* bottom = nullptr;
  std::size_t size = 0;
  void* tsan_fiber = nullptr;
};

// Before leaving `from` for `to`. `fake_stack_save` is null when `from` will
// never run again, which lets ASan free its fake frames.
inline void before_switch([[maybe_unused]] void** fake_stack_save,
                          [[maybe_unused]] const stack_info& to) {
#if GOFER_ASAN
  __sanitizer_start_switch_fiber(fake_stack_save, to.bottom, to.size);
#endif
#if GOFER_TSAN
  // Flag 0 keeps TSan's happens-before edge across the switch: code after a
  // switch on the same thread is ordered after code before it, as it truly is.
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
}

// First thing after arriving in a context (also at a new fiber's entry).
inline void after_switch([[maybe_unused]] void* fake_stack_save) {
#if GOFER_ASAN
  __sanitizer_finish_switch_fiber(fake_stack_save, nullptr, nullptr);
#endif
}

// Clears ASan's marks on stack memory about to be reused. A fiber that exits
// (or is abandoned) never returns from its outer frames, so their redzones
// stay poisoned; a new fiber on the same stack would trip over them.
inline void unpoison_stack([[maybe_unused]] void* bottom, [[maybe_unused]] std::size_t size) {
#if GOFER_ASAN
  __asan_unpoison_memory_region(bottom, size);
#endif
}

// Makes LeakSanitizer scan [p, p + size) for pointers, as it scans thread
// stacks: for the frames of fibers abandoned when their runtime ended, which
// keep what they own for the rest of the process, by design (runtime.hpp).
inline void keep_as_leak_root([[maybe_unused]] const void* p, [[maybe_unused]] std::size_t size) {
#if GOFER_ASAN
  if (&__lsan_register_root_region != nullptr) __lsan_register_root_region(p, size);
#endif
}

inline void* create_fiber() {
#if GOFER_TSAN
  return __tsan_create_fiber(0);
#else
  return nullptr;
#endif
}

inline void* current_thread_fiber() {
#if GOFER_TSAN
  return __tsan_get_current_fiber();
#else
  return nullptr;
#endif
}

inline void destroy_fiber([[maybe_unused]] void* f) {
#if GOFER_TSAN
  if (f != nullptr) __tsan_destroy_fiber(f);
#endif
}

}  // namespace gofer::detail::arch::sanitizer
