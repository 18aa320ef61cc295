// A doubly linked intrusive list: O(1) push, pop and removal of any element,
// which wait queues need (a select case or a timed-out waiter leaves from the
// middle). The element type derives from list_node; it is never owned.
#pragma once

#include <cstddef>

namespace gofer::detail {

struct list_node {
  list_node* prev = nullptr;
  list_node* next = nullptr;
  bool linked() const noexcept { return prev != nullptr; }
};

template <class T>
class intrusive_list {
 public:
  intrusive_list() noexcept { head_.prev = head_.next = &head_; }
  intrusive_list(const intrusive_list&) = delete;
  intrusive_list& operator=(const intrusive_list&) = delete;

  bool empty() const noexcept { return head_.next == &head_; }
  std::size_t size() const noexcept { return size_; }

  void push_back(T* t) noexcept { insert_before(&head_, t); }
  void push_front(T* t) noexcept { insert_before(head_.next, t); }
  void insert_before(T* pos, T* t) noexcept { insert_before(static_cast<list_node*>(pos), t); }
  T* front() const noexcept { return empty() ? nullptr : static_cast<T*>(head_.next); }
  // The element after t, or null at the end.
  T* next(const T* t) const noexcept {
    const list_node* n = static_cast<const list_node*>(t)->next;
    return n == &head_ ? nullptr : static_cast<T*>(const_cast<list_node*>(n));
  }
  T* pop_front() noexcept {
    if (empty()) return nullptr;
    T* t = static_cast<T*>(head_.next);
    remove(t);
    return t;
  }
  void remove(T* t) noexcept {
    list_node* n = t;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = nullptr;
    --size_;
  }
  template <class F>
  void for_each(F&& f) const {
    for (list_node* n = head_.next; n != &head_;) {
      list_node* next = n->next;
      f(static_cast<T*>(n));
      n = next;
    }
  }

 private:
  void insert_before(list_node* pos, T* t) noexcept {
    list_node* n = t;
    n->prev = pos->prev;
    n->next = pos;
    pos->prev->next = n;
    pos->prev = n;
    ++size_;
  }
  list_node head_;
  std::size_t size_ = 0;
};

}  // namespace gofer::detail
