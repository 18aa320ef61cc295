// Runs a callable when the scope ends, normally or by unwinding. The machinery
// behind GOFER_DEFER.
#pragma once

#include <utility>

namespace gofer::detail {

template <class F>
class scope_exit {
 public:
  explicit scope_exit(F&& f) noexcept(noexcept(F(std::move(f)))) : f_(std::move(f)) {}
  scope_exit(const scope_exit&) = delete;
  scope_exit& operator=(const scope_exit&) = delete;
  // A deferred call that throws while another exception unwinds the stack ends
  // the program (std::terminate), as a second panic does in Go.
  ~scope_exit() noexcept(false) { f_(); }

 private:
  F f_;
};

struct scope_exit_maker {
  template <class F>
  scope_exit<F> operator->*(F&& f) const {
    return scope_exit<F>(std::forward<F>(f));
  }
};

}  // namespace gofer::detail
