// The go statement: gofer::go(f, args...) starts f(args...) in a new fiber.
//
// f and args are decay-copied as std::thread does (mutable lambdas and
// move-only arguments work). A fiber started from inside a fiber runs on that
// fiber's runtime; from any other thread, on runtime::default_runtime(). The
// new fiber runs next on the caller's P (Go's runnext), so a spawn-and-wait
// pair stays on one core. An exception escaping f is an unrecovered panic:
// its what(), the fiber's id, name and creation site are printed and the
// process exits with status 2.
//
//   gofer::go(f, args...);
//   gofer::go(gofer::fiber_options{.name = "worker"}, f, args...);
#pragma once

#include "gofer/runtime.hpp"

namespace gofer {

GOFER_DETAIL_GO_ALL_ARITIES(inline, ::gofer::detail::runtime_for_go())

}  // namespace gofer
