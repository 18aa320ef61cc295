// GOFER_DEFER(statement): runs `statement` when the enclosing *scope* ends —
// normally, by return, or by an exception unwinding it — in LIFO order with
// other defers. Note the difference from Go's defer, which runs at function
// exit: a GOFER_DEFER inside a loop body runs at the end of each iteration.
// DEFER is the short spelling, unless GOFER_NO_SHORT_MACROS is defined.
//
//   auto* f = std::fopen(path, "r");
//   GOFER_DEFER(std::fclose(f));
#pragma once

#include "gofer/detail/util/scope_exit.hpp"

#define GOFER_DETAIL_CONCAT_(a, b) a##b
#define GOFER_DETAIL_CONCAT(a, b) GOFER_DETAIL_CONCAT_(a, b)

#define GOFER_DEFER(...)                                                   \
  auto GOFER_DETAIL_CONCAT(gofer_defer_, __COUNTER__) =                    \
      ::gofer::detail::scope_exit_maker{}->*[&]() -> void { __VA_ARGS__; }

#ifndef GOFER_NO_SHORT_MACROS
#define DEFER(...) GOFER_DEFER(__VA_ARGS__)
#endif
