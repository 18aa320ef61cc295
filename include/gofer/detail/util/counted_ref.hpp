// A moveable owning reference to an intrusively counted object (retain() /
// release()), for callables handed to a new fiber: the fiber's callable is
// destroyed even when its runtime abandons the fiber before it runs, and the
// reference goes with it, so nothing the object holds is kept alive for good.
#pragma once

#include <utility>

namespace gofer::detail {

template <class T>
class counted_ref {
 public:
  explicit counted_ref(T* p) noexcept : p_(p) { p_->retain(); }
  counted_ref(counted_ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  counted_ref& operator=(counted_ref&&) = delete;
  ~counted_ref() {
    if (p_ != nullptr) p_->release();
  }
  T* operator->() const noexcept { return p_; }

 private:
  T* p_;
};

}  // namespace gofer::detail
