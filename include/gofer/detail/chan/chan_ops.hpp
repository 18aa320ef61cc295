// The blocking send and receive on one channel (Go's chansend and chanrecv),
// used by chan<T> and its views. select.hpp has the many-case version.
#pragma once

#include <mutex>
#include <optional>

#include "gofer/detail/chan/chan_state.hpp"
#include "gofer/errors.hpp"

namespace gofer::detail {

// Parks the caller for good: an operation on the nil channel. In a fiber only
// the deadlock detector can end it (deadlock_error); a thread sleeps forever.
[[noreturn]] inline void block_forever(wait_reason reason) {
  if (current_fiber() != nullptr) {
    for (;;) {
      if (park([](void*, fiber*) { return true; }, nullptr, reason)) throw deadlock_error();
    }
  }
  thread_parker tp;
  for (;;) tp.park();
}

// Takes a waiter nobody served off c, and deletes c if no handle is left
// (see chan_base::release).
inline void leave(chan_base* c, chan_waiter* cw) noexcept {
  c->mu.lock();
  const bool last = c->unlink(cw);
  c->mu.unlock();
  if (last) delete c;
}

// Blocks the caller with `cw` queued on c, whose lock is held and is released
// once the caller can be woken. On return the waker has filled in cw.
inline void block_on(chan_base* c, chan_waiter& cw, wait_reason reason) {
  c->enqueue(&cw);
  chan_sync& sync = *cw.sync;
  fiber* f = sync.w.f;
  if (f == nullptr) {
    c->mu.unlock();
    sync.w.tp.park();
    return;
  }
  // A runtime destroyed while this fiber is parked frees its stack: the
  // channel, which may live on, must not keep pointing into it.
  bool interrupted;
  {
    abandon_scope unlink(f, [&] { leave(c, &cw); });
    interrupted = park_unlock(c->mu, reason);
  }
  if (interrupted && sync.fired == nullptr) {
    // Only the deadlock detector wakes a waiter nobody served, and only when
    // nothing else runs: leaving the queue cannot race with a waker.
    leave(c, &cw);
    throw deadlock_error();
  }
}

// Sends *value (moved from only if delivered). Throws closed_channel_error
// on a closed channel, also when it closes while the sender waits.
inline void chan_send(chan_base* c, void* value) {
  if (c == nullptr) block_forever(wait_reason::chan_nil);
  maybe_yield_randomly();
  chan_waiter* to_wake = nullptr;
  c->mu.lock();
  if (c->closed_locked()) {
    c->mu.unlock();
    throw_send_on_closed();
  }
  if (c->send_locked(value, &to_wake)) {
    c->mu.unlock();
    if (to_wake != nullptr) to_wake->sync->w.wake();
    return;
  }
  chan_sync sync;
  chan_waiter cw;
  cw.sync = &sync;
  cw.c = c;
  cw.elem = value;
  cw.is_send = true;
  block_on(c, cw, wait_reason::chan_send);
  if (!cw.success) throw_send_on_closed();
}

// Receives into *slot (a std::optional<T>); false when the channel is closed
// and drained.
inline bool chan_recv(chan_base* c, void* slot) {
  if (c == nullptr) block_forever(wait_reason::chan_nil);
  maybe_yield_randomly();
  chan_waiter* to_wake = nullptr;
  bool got = false;
  c->mu.lock();
  if (c->recv_locked(slot, &got, &to_wake)) {
    c->mu.unlock();
    if (to_wake != nullptr) to_wake->sync->w.wake();
    return got;
  }
  chan_sync sync;
  chan_waiter cw;
  cw.sync = &sync;
  cw.c = c;
  cw.elem = slot;
  block_on(c, cw, wait_reason::chan_recv);
  return cw.success;
}

// Non-blocking send: true if delivered (to a waiting receiver or the buffer).
// Throws closed_channel_error on a closed channel.
inline bool chan_try_send(chan_base* c, void* value) {
  if (c == nullptr) return false;
  // Go's fast path: an open channel that cannot take a value now. closed is
  // read after the fullness, as chan.go argues: if the channel was open at
  // that later read, it was open and full at the earlier one.
  if (c->send_would_block() && !c->closed()) return false;
  chan_waiter* to_wake = nullptr;
  c->mu.lock();
  if (c->closed_locked()) {
    c->mu.unlock();
    throw_send_on_closed();
  }
  bool sent = c->send_locked(value, &to_wake);
  c->mu.unlock();
  if (to_wake != nullptr) to_wake->sync->w.wake();
  return sent;
}

// Non-blocking receive. 1: got a value; 0: would block; -1: closed and drained.
inline int chan_try_recv(chan_base* c, void* slot) {
  if (c == nullptr) return 0;
  if (c->recv_would_block()) {
    if (!c->closed()) return 0;
    // Closed; but a value may have been sent between the two reads, and it
    // must still be received: look again now that closed is known.
    if (c->recv_would_block()) return -1;
  }
  chan_waiter* to_wake = nullptr;
  bool got = false;
  c->mu.lock();
  bool done = c->recv_locked(slot, &got, &to_wake);
  c->mu.unlock();
  if (to_wake != nullptr) to_wake->sync->w.wake();
  if (!done) return 0;
  return got ? 1 : -1;
}

}  // namespace gofer::detail
