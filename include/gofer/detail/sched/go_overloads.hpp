// The overload set behind gofer::go and runtime::go.
//
// Each `go` records where it was called (dump_fibers shows "created by
// file:line"), which takes a defaulted detail::source_location parameter. A
// defaulted parameter cannot follow a parameter pack, so the overloads are
// spelled once per arity, up to eight arguments, by the macros below; each
// arity has the plain form and the fiber_options form. The plain form is
// constrained to invocables, so a call starting with fiber_options picks the
// second.
#pragma once

#define GOFER_DETAIL_UNPAREN(...) __VA_ARGS__

#define GOFER_DETAIL_GO_PAIR(SPEC, TARGET, TP, TA, PARAMS, FWD)                              \
  template <class F GOFER_DETAIL_UNPAREN TP>                                                 \
    requires ::gofer::detail::spawnable<F GOFER_DETAIL_UNPAREN TA>                           \
  SPEC void go(F&& f GOFER_DETAIL_UNPAREN PARAMS,                                            \
               ::gofer::detail::source_location loc =                                        \
                   ::gofer::detail::source_location::current()) {                            \
    ::gofer::detail::go_on(TARGET, ::gofer::fiber_options{}, loc,                            \
                           std::forward<F>(f) GOFER_DETAIL_UNPAREN FWD);                     \
  }                                                                                          \
  template <class F GOFER_DETAIL_UNPAREN TP>                                                 \
    requires ::gofer::detail::spawnable<F GOFER_DETAIL_UNPAREN TA>                           \
  SPEC void go(const ::gofer::fiber_options& o, F&& f GOFER_DETAIL_UNPAREN PARAMS,           \
               ::gofer::detail::source_location loc =                                        \
                   ::gofer::detail::source_location::current()) {                            \
    ::gofer::detail::go_on(TARGET, o, loc, std::forward<F>(f) GOFER_DETAIL_UNPAREN FWD);     \
  }

#define GOFER_DETAIL_GO_ALL_ARITIES(SPEC, TARGET)                                            \
  GOFER_DETAIL_GO_PAIR(SPEC, TARGET, (), (), (), ())                                         \
  GOFER_DETAIL_GO_PAIR(SPEC, TARGET, (, class A1), (, A1), (, A1&& a1),                      \
                       (, std::forward<A1>(a1)))                                             \
  GOFER_DETAIL_GO_PAIR(SPEC, TARGET, (, class A1, class A2), (, A1, A2),                     \
                       (, A1&& a1, A2&& a2), (, std::forward<A1>(a1), std::forward<A2>(a2))) \
  GOFER_DETAIL_GO_PAIR(SPEC, TARGET, (, class A1, class A2, class A3), (, A1, A2, A3),       \
                       (, A1&& a1, A2&& a2, A3&& a3),                                        \
                       (, std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3))) \
  GOFER_DETAIL_GO_PAIR(SPEC, TARGET, (, class A1, class A2, class A3, class A4),             \
                       (, A1, A2, A3, A4), (, A1&& a1, A2&& a2, A3&& a3, A4&& a4),           \
                       (, std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3),  \
                        std::forward<A4>(a4)))                                               \
  GOFER_DETAIL_GO_PAIR(SPEC, TARGET, (, class A1, class A2, class A3, class A4, class A5),   \
                       (, A1, A2, A3, A4, A5),                                               \
                       (, A1&& a1, A2&& a2, A3&& a3, A4&& a4, A5&& a5),                      \
                       (, std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3),  \
                        std::forward<A4>(a4), std::forward<A5>(a5)))                         \
  GOFER_DETAIL_GO_PAIR(SPEC, TARGET,                                                         \
                       (, class A1, class A2, class A3, class A4, class A5, class A6),       \
                       (, A1, A2, A3, A4, A5, A6),                                           \
                       (, A1&& a1, A2&& a2, A3&& a3, A4&& a4, A5&& a5, A6&& a6),             \
                       (, std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3),  \
                        std::forward<A4>(a4), std::forward<A5>(a5), std::forward<A6>(a6)))   \
  GOFER_DETAIL_GO_PAIR(                                                                      \
      SPEC, TARGET, (, class A1, class A2, class A3, class A4, class A5, class A6, class A7), \
      (, A1, A2, A3, A4, A5, A6, A7),                                                        \
      (, A1&& a1, A2&& a2, A3&& a3, A4&& a4, A5&& a5, A6&& a6, A7&& a7),                     \
      (, std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3),                   \
       std::forward<A4>(a4), std::forward<A5>(a5), std::forward<A6>(a6),                     \
       std::forward<A7>(a7)))                                                                \
  GOFER_DETAIL_GO_PAIR(SPEC, TARGET,                                                         \
                       (, class A1, class A2, class A3, class A4, class A5, class A6,        \
                        class A7, class A8),                                                 \
                       (, A1, A2, A3, A4, A5, A6, A7, A8),                                   \
                       (, A1&& a1, A2&& a2, A3&& a3, A4&& a4, A5&& a5, A6&& a6, A7&& a7,     \
                        A8&& a8),                                                            \
                       (, std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3),  \
                        std::forward<A4>(a4), std::forward<A5>(a5), std::forward<A6>(a6),    \
                        std::forward<A7>(a7), std::forward<A8>(a8)))
