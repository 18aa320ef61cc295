// What happens when an exception escapes a fiber: as an unrecovered Go panic,
// the exception's what(), the fiber's id, name and creation site are printed
// and the process exits with status 2 (Go's exit code for a panic). Nothing
// could catch it any more: the fiber's caller is the scheduler.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

#include "gofer/detail/fiber.hpp"

namespace gofer::detail {

[[noreturn]] inline void report_panic(const fiber* f, std::exception_ptr e) noexcept {
  const char* what = "unknown exception";
  std::string text;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    text = ex.what();
    what = text.c_str();
  } catch (...) {
  }
  char name[max_fiber_name + 1];
  std::size_t n = f->copy_name(name, max_fiber_name);
  name[n] = '\0';
  const char* file = f->created_file.load(std::memory_order_relaxed);
  std::fprintf(stderr, "gofer: panic: %s\n\nfiber %llu (%s) [running]:\ncreated by %s:%u\n", what,
               static_cast<unsigned long long>(f->id.load(std::memory_order_relaxed)), name,
               file != nullptr ? file : "?", f->created_line.load(std::memory_order_relaxed));
  std::fflush(stderr);
  std::_Exit(2);
}

// A misuse the program cannot recover from (Go's fatal error, which no
// recover() catches either): unlocking an unlocked mutex. Aborts, as the
// stack overflow report does, so a core or a debugger shows where.
[[noreturn]] inline void fatal(const char* message) noexcept {
  std::fprintf(stderr, "gofer: %s\n", message);
  std::fflush(stderr);
  std::abort();
}

}  // namespace gofer::detail
