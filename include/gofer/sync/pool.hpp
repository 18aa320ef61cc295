// pool<T>: a cache of allocated but unused objects for later reuse, as Go's
// sync.Pool; pooled<T>: the move-only handle that gives one back when it dies.
//
// Layers, fastest first:
//   1. Per-P caches. Each P of one runtime (the pool's "bound" runtime, below)
//      has a small LIFO array of objects. Fibers are never preempted: a fiber
//      that does not block keeps its P, and only the M that owns a P runs on
//      it, so the running fiber may touch its P's array with plain loads and
//      stores. get+put is then: read the current M (thread_local, through the
//      non-inlined accessor), check its runtime is the bound one, index the
//      array by its P, pop or push. No atomic read-modify-write, no lock, no
//      allocation. (Go pins the goroutine to its P for the same reason: its
//      pin() disables preemption; here that is simply how fibers work.)
//   2. The shared layer: two bounded generations of objects, primary and
//      victim, under one spinlock. A full per-P cache moves its older half
//      here in one lock hold, an empty one takes a batch from here, so a fiber
//      pays for the lock once per per_p_batch objects. Plain OS threads and
//      fibers of runtimes other than the bound one have no P of ours and use
//      only this layer, one object per lock hold.
//   3. Beyond both bounds objects are deleted: a pool never caches more than
//      per_p_capacity * procs + 2 * shared_capacity objects.
//
// Binding the per-P caches to one runtime. Several runtimes may live at once
// (run() starts its own while the default runtime runs), and P 0 of one is not
// P 0 of another: two Ms sharing one array slot would race. So the per-P array
// serves exactly one runtime, identified by its serial number (never by its
// address: a new runtime may be allocated where a dead one was, and its Ms
// would silently inherit the dead one's slots with no happens-before edge to
// the dead Ms' last writes). The first fiber to use the pool binds it to its
// runtime; everyone else goes to the shared layer (correct, at that layer's
// cost: while a bound default runtime lives, run()'s fibers take that path).
// When the bound runtime is gone, the next runtime to use the pool rebinds
// it, which keeps the fast path for the common program shape of run() after
// run(), and hands the dead runtime's cached objects to the shared layer. The proof that no dead M
// still touches its slot, and that the rebinding thread sees their last
// writes: a runtime's destructor runs once every M has stopped (joined, or,
// for an M left running at main's end, released the runtime last), then
// removes itself from runtime_registry under runtime_registry_mu; the
// rebinder finds it absent under the same mutex. Thread exit -> join (or
// release) -> unlock -> lock is a happens-before chain, and the rebinder
// publishes the fresh array with a release store of bound_serial_ that every
// fast path reads with acquire.
// Foreign runtimes look at the registry only when a newer runtime than any
// seen before shows up, or on every foreign_check_period-th operation, so a
// second runtime running alongside the bound one costs one mutex acquisition
// per thousand of its shared-layer operations.
//
// Dropping idle objects. Go empties its pools at every garbage collection
// through a victim generation: objects unused for a whole GC cycle go. There
// is no GC here, so the shared layer counts its own operations (lock holds)
// instead: every rotation_period of them, the victim generation is deleted
// and the primary becomes the new victim. get takes from the primary first,
// then from the victim, so an object is deleted only if it spent a whole
// period in the victim generation, untaken because the primary always
// sufficed: memory follows demand, and steady reuse does not allocate. Why operations and not
// time: no clock reads on any path, it is deterministic (and so testable), and
// a pool nobody uses has nobody to pay for trimming; what it keeps is bounded
// by the capacities anyway. The per-P caches are not trimmed: only their owner
// may touch them, and they are small.
//
// Designs not taken:
//   - A thread_local cache per OS thread: a fiber moves between threads at any
//     blocking call, and per-thread caches cannot be bound or freed with the
//     pool (the pool may die first; the thread may die first).
//   - Per-P caches guarded by a CAS or a lock "in case": a locked instruction
//     costs about as much as the whole get+put it would guard, to defend
//     against a sharing that the P-ownership rule already rules out.
//   - Stealing from other Ps' caches on a miss, as Go's getSlow does: it needs
//     every per-P push and pop to be a lock-free deque operation (Go's
//     poolDequeue), i.e. atomics on the fast path. Here objects stranded in an
//     idle P's cache are bounded by per_p_capacity, and a P that overflows
//     feeds the shared layer, from which the others refill.
//
// Lifetime rule: a pool must outlive every handle it gave out, as a
// std::pmr::memory_resource must outlive what was allocated from it and a
// container must outlive its iterators: the reading a C++ user brings to a
// resource and handles into it. A pooled<T> that outlives its pool is
// undefined behaviour; take the object out with release() to keep it longer. Making it safe would need a
// reference count touched by every get and put: an atomic read-modify-write on
// a line shared by all Ps, which is the cost layer 1 exists to avoid.
// Destroying the pool deletes every object it caches; it must not race with
// any other operation on it. Handles held by fibers that their runtime
// abandons (see runtime_impl's destructor) are never destroyed, so their
// objects leak, as everything else on those fibers' stacks does.
//
// The factory (and T's constructor and destructor) run with no lock held and
// may block or switch; the factory may be called concurrently from several
// fibers and threads, as Go's New may be, so it must be safe to call so.
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <type_traits>
#include <utility>

#include "gofer/detail/sched/current.hpp"
#include "gofer/detail/sched/machine.hpp"
#include "gofer/detail/sched/processor.hpp"
#include "gofer/detail/sched/scheduler.hpp"
#include "gofer/detail/util/cache_line.hpp"
#include "gofer/detail/util/spinlock.hpp"

namespace gofer {

template <class T>
class pool;

// A factory for pool<T>: callable with no arguments, returning either a
// std::unique_ptr<T> (or something convertible to one), or something T can be
// constructed from (typically a T prvalue, which is then built in place).
template <class F, class T>
concept pool_factory =
    std::invocable<F&> && (std::convertible_to<std::invoke_result_t<F&>, std::unique_ptr<T>> ||
                           std::constructible_from<T, std::invoke_result_t<F&>>);

// Owns one object taken from a pool and gives it back when destroyed (or
// reset). Move-only; a moved-from or default-constructed handle is empty. An
// empty handle also comes from get() when the factory returned a null pointer.
template <class T>
class pooled {
 public:
  pooled() noexcept = default;
  pooled(pooled&& o) noexcept
      : owner_(std::exchange(o.owner_, nullptr)), obj_(std::exchange(o.obj_, nullptr)) {}
  pooled& operator=(pooled&& o) noexcept {
    if (this != &o) {
      reset();
      owner_ = std::exchange(o.owner_, nullptr);
      obj_ = std::exchange(o.obj_, nullptr);
    }
    return *this;
  }
  pooled(const pooled&) = delete;
  pooled& operator=(const pooled&) = delete;
  ~pooled() { reset(); }

  // Precondition for the three accessors that dereference: not empty.
  T& operator*() const noexcept { return *obj_; }
  T* operator->() const noexcept { return obj_; }
  T* get() const noexcept { return obj_; }
  explicit operator bool() const noexcept { return obj_ != nullptr; }

  // Takes the object out of the pool's care: the handle becomes empty and the
  // object will not return to the pool unless someone puts it.
  [[nodiscard]] std::unique_ptr<T> release() noexcept {
    owner_ = nullptr;
    return std::unique_ptr<T>(std::exchange(obj_, nullptr));
  }

  // Gives the object back to its pool now; the handle becomes empty.
  void reset() noexcept {
    if (obj_ == nullptr) return;
    T* x = std::exchange(obj_, nullptr);
    std::exchange(owner_, nullptr)->give_back(x);
  }

 private:
  friend class pool<T>;
  pooled(pool<T>* owner, T* obj) noexcept : owner_(obj != nullptr ? owner : nullptr), obj_(obj) {}

  pool<T>* owner_ = nullptr;
  T* obj_ = nullptr;
};

template <class T>
class pool {
  static_assert(std::is_object_v<T> && !std::is_array_v<T> && !std::is_const_v<T>,
                "gofer::pool<T>: T must be a non-const, non-array object type");

 public:
  // A per-P cache holds at most this many objects. 16 covers a fiber that
  // holds a handful of objects at once with room to spare, while 16 objects
  // per P stranded in an idle P's cache is a small, fixed cost.
  static constexpr std::uint32_t per_p_capacity = 16;
  // Objects moved between a per-P cache and the shared layer per lock hold:
  // half the cache, so a P that just spilled (or refilled) can take (or give)
  // as many again before it needs the lock.
  static constexpr std::uint32_t per_p_batch = per_p_capacity / 2;
  // Each of the shared layer's two generations holds at most this many: room
  // for sixteen spilled batches on their way from Ps that put more than they
  // get to Ps that get more than they put, before objects are deleted.
  static constexpr std::uint32_t shared_capacity = 128;
  // Shared-layer operations between two rotations of the victim generation.
  // Long enough that a full generation whose objects are all still wanted is
  // used up before it is judged idle, even by plain threads that move one
  // object per operation: shared_capacity gets, interleaved with as many puts.
  static constexpr std::uint32_t rotation_period = 2 * shared_capacity;
  // How often a runtime that is not the bound one checks whether the bound one
  // is gone (in its own shared-layer operations; see "Binding" above).
  static constexpr std::uint32_t foreign_check_period = 1024;

  // New objects are value-initialised: T{}.
  pool() requires requires { new T{}; }
  : make_([](void*) { return std::unique_ptr<T>(new T{}); }) {}

  // New objects come from factory(); see pool_factory.
  template <pool_factory<T> F>
  explicit pool(F factory)
      : factory_(new F(std::move(factory)), [](void* f) { delete static_cast<F*>(f); }),
        make_([](void* f) -> std::unique_ptr<T> {
          F& fn = *static_cast<F*>(f);
          if constexpr (std::convertible_to<std::invoke_result_t<F&>, std::unique_ptr<T>>) {
            return std::invoke(fn);
          } else {
            return std::unique_ptr<T>(new T(std::invoke(fn)));
          }
        }) {}

  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  // Deletes every cached object. Every other operation on the pool must have
  // happened before this (and no handle may outlive it: see the lifetime rule).
  ~pool() {
    local_cache* l = locals_.load(std::memory_order_relaxed);
    for (std::uint32_t i = 0; i < nlocals_; ++i) {
      for (std::uint32_t j = 0; j < l[i].n; ++j) delete l[i].items[j];
    }
    delete[] l;
    for (int g = 0; g < 2; ++g) {
      for (std::uint32_t j = 0; j < count_[g]; ++j) delete gen_[g][j];
    }
  }

  // An object from the cache, or a new one from the factory (whose exception,
  // if any, propagates with the pool unchanged). As Go's Get, nothing is
  // promised about which cached object comes back, nor that any does.
  [[nodiscard]] pooled<T> get() {
    if (T* x = pop_local()) return pooled<T>(this, x);
    return pooled<T>(this, get_slow());
  }

  // Hands an object to the pool, which may keep it or delete it. Null is
  // ignored.
  void put(std::unique_ptr<T> x) noexcept {
    if (x != nullptr) give_back(x.release());
  }

 private:
  friend class pooled<T>;

  // Owned by one P of the bound runtime: touched only by the M that owns it
  // (and by the pool's destructor and a rebinder, which come after that M's
  // last touch; see "Binding"). items[0, n) are the cached objects, the most
  // recently put on top. Aligned so that two Ps never write one cache line.
  struct alignas(detail::cache_line) local_cache {
    std::uint32_t n = 0;
    T* items[per_p_capacity];
  };

  // The calling fiber's per-P cache, or null: a plain thread, a fiber of
  // another runtime, or an unbound pool. Valid only until the caller may
  // switch (it may resume on another P).
  local_cache* my_cache(detail::machine* m) const noexcept {
    if (m == nullptr || !bound_to(m)) return nullptr;
    return &locals_.load(std::memory_order_relaxed)[m->p->index];
  }

  bool bound_to(const detail::machine* m) const noexcept {
    return bound_serial_.load(std::memory_order_acquire) == m->rt->serial();
  }

  // The fast paths: nothing here can switch, so the P found is ours throughout.
  T* pop_local() noexcept {
    detail::machine* m = detail::current_machine();
    if (m == nullptr || !bound_to(m)) return nullptr;
    local_cache& c = locals_.load(std::memory_order_relaxed)[m->p->index];
    if (c.n == 0) return nullptr;
    return c.items[--c.n];
  }

  void give_back(T* x) noexcept {
    detail::machine* m = detail::current_machine();
    if (m != nullptr && bound_to(m)) {
      local_cache& c = locals_.load(std::memory_order_relaxed)[m->p->index];
      if (c.n < per_p_capacity) {
        c.items[c.n++] = x;
        return;
      }
    }
    put_slow(x);
  }

  // Objects removed from the pool under a lock, deleted after it is released:
  // T's destructor may be slow, take locks, use this pool, or switch fibers,
  // and a spinlock must never be held across a switch.
  struct doomed {
    T* items[shared_capacity + per_p_batch];
    std::uint32_t n = 0;
    void add(T* x) noexcept { items[n++] = x; }
    ~doomed() {
      for (std::uint32_t i = 0; i < n; ++i) delete items[i];
    }
  };

  T* get_slow() {
    detail::runtime_impl* rt = nullptr;
    local_cache* c = cache_binding_if_unbound(rt);
    T* x = nullptr;
    bool check_binding = false;
    {
      doomed dead;  // declared inside the block: deleted after the unlock below
      lock_shared();
      rotate_if_due(dead);
      if (c != nullptr && c->n > 0) {
        // Not reached today: the fast path just found c empty, or the pool
        // was just bound (a fresh array), and nothing switched since. Cheap
        // insurance against the refill below overwriting cached objects.
        x = c->items[--c->n];
      } else if (c != nullptr) {
        // Refill with the newest objects, keeping their order so that the
        // hottest is popped first, and take one.
        std::uint32_t k = take_locked(c->items, per_p_batch);
        if (k > 0) {
          c->n = k;
          x = c->items[--c->n];
        }
      } else {
        take_locked(&x, 1);
        check_binding = note_foreign_locked(rt);
      }
      shared_lock_.unlock();
    }
    // Having just taken the per-P caches over (from a runtime that is gone),
    // look again: the dead runtime's objects were moved to the shared layer.
    if (check_binding && try_bind(rt) && x == nullptr) return get_slow();
    if (x == nullptr) x = make_(factory_.get()).release();
    return x;
  }

  void put_slow(T* x) noexcept {
    detail::runtime_impl* rt = nullptr;
    local_cache* c = cache_binding_if_unbound(rt);
    if (c != nullptr && c->n < per_p_capacity) {  // just bound: an empty cache
      c->items[c->n++] = x;
      return;
    }
    bool check_binding = false;
    {
      doomed dead;
      lock_shared();
      rotate_if_due(dead);
      std::uint32_t& np = count_[primary_];
      T** prim = gen_[primary_];
      if (c != nullptr) {
        // Full: move the older half to the shared layer (deleting what does
        // not fit), slide the newer half down, then push x.
        std::uint32_t moved = std::min(per_p_batch, shared_capacity - np);
        for (std::uint32_t i = 0; i < moved; ++i) prim[np++] = c->items[i];
        for (std::uint32_t i = moved; i < per_p_batch; ++i) dead.add(c->items[i]);
        for (std::uint32_t i = per_p_batch; i < per_p_capacity; ++i)
          c->items[i - per_p_batch] = c->items[i];
        c->n = per_p_capacity - per_p_batch;
        c->items[c->n++] = x;
      } else {
        if (np < shared_capacity) {
          prim[np++] = x;
        } else {
          dead.add(x);
        }
        check_binding = note_foreign_locked(rt);
      }
      shared_lock_.unlock();
    }
    if (check_binding) try_bind(rt);
  }

  // The calling fiber's cache, after binding the pool to its runtime if the
  // pool is bound to none (the first fiber to use a pool binds it). Also
  // reports the caller's runtime (null on a plain thread): a fiber stays on
  // its runtime, whereas the M and P may change whenever it switches.
  local_cache* cache_binding_if_unbound(detail::runtime_impl*& rt) noexcept {
    detail::machine* m = detail::current_machine();
    if (m == nullptr) return nullptr;
    rt = m->rt;
    if (bound_serial_.load(std::memory_order_acquire) == 0) {
      try_bind(rt);
      // Binding may have deleted objects, and a destructor may switch.
      m = detail::current_machine();
    }
    return my_cache(m);
  }

  // Moves up to max objects from the shared layer into out[0, k), primary
  // first (most recently put, so warmest in cache), then victim; out[k-1] is
  // the newest taken. Needs shared_lock_.
  std::uint32_t take_locked(T** out, std::uint32_t max) noexcept {
    std::uint32_t k = 0;
    for (int g : {primary_, primary_ ^ 1}) {
      std::uint32_t& n = count_[g];
      std::uint32_t t = std::min(max - k, n);
      // The victim's objects are older than those already taken from the
      // primary: slide those up and put these below them.
      for (std::uint32_t i = k; i-- > 0;) out[i + t] = out[i];
      for (std::uint32_t i = 0; i < t; ++i) out[i] = gen_[g][n - t + i];
      n -= t;
      k += t;
      if (k == max) break;
    }
    return k;
  }

  // Counts one shared-layer operation; every rotation_period-th deletes the
  // victim generation and demotes the primary. Needs shared_lock_.
  void rotate_if_due(doomed& dead) noexcept {
    if (++ops_since_rotation_ < rotation_period) return;
    ops_since_rotation_ = 0;
    const int victim = primary_ ^ 1;
    for (std::uint32_t i = 0; i < count_[victim]; ++i) dead.add(gen_[victim][i]);
    count_[victim] = 0;
    primary_ = victim;  // the emptied array becomes the primary
  }

  // For an operation that could not use the per-P caches, by a fiber of rt
  // (null: a plain thread): whether rt should check if it may take them over
  // (a runtime newer than any seen before, or every foreign_check_period-th
  // time). Needs shared_lock_.
  bool note_foreign_locked(detail::runtime_impl* rt) noexcept {
    if (rt == nullptr) return false;
    const std::uint32_t s = rt->serial();
    if (s > newest_foreign_serial_) {
      newest_foreign_serial_ = s;
      return true;
    }
    return ++foreign_ops_ % foreign_check_period == 0;
  }

  static bool runtime_alive(std::uint32_t serial) {
    std::lock_guard lk(detail::runtime_registry_mu);
    for (detail::runtime_impl* r : detail::runtime_registry) {
      if (r->serial() == serial) return true;
    }
    return false;
  }

  // Binds the per-P caches to rt if they are unbound or bound to a
  // runtime that is gone. A fresh array every time: the old one may be too
  // small, and once unpublished it is ours alone, so its objects can be
  // spilled to the shared layer without holding the bind lock. Best effort:
  // if another thread is binding, or memory is short, the caller simply keeps
  // using the shared layer. Returns whether this call bound them.
  bool try_bind(detail::runtime_impl* rt) noexcept {
    local_cache* old = nullptr;
    std::uint32_t nold = 0;
    {
      std::unique_lock bl(bind_lock_, std::try_to_lock);
      if (!bl.owns_lock()) return false;
      // Written under bind_lock_ only, so relaxed suffices here.
      const std::uint32_t bound = bound_serial_.load(std::memory_order_relaxed);
      if (bound == rt->serial()) return false;
      if (bound != 0 && runtime_alive(bound)) return false;
      auto* fresh = new (std::nothrow) local_cache[rt->procs()];
      if (fresh == nullptr) return false;
      old = locals_.load(std::memory_order_relaxed);
      nold = nlocals_;
      nlocals_ = rt->procs();
      locals_.store(fresh, std::memory_order_relaxed);
      bound_serial_.store(rt->serial(), std::memory_order_release);
    }
    // The dead runtime's objects are still good: offer them to the shared
    // layer (whatever exceeds it is deleted).
    for (std::uint32_t i = 0; i < nold; ++i) {
      doomed dead;
      lock_shared();
      std::uint32_t& np = count_[primary_];
      for (std::uint32_t j = 0; j < old[i].n; ++j) {
        if (np < shared_capacity) {
          gen_[primary_][np++] = old[i].items[j];
        } else {
          dead.add(old[i].items[j]);
        }
      }
      shared_lock_.unlock();
    }
    delete[] old;
    return true;
  }

  // The holder is never switched out (nothing under it can switch), but it
  // may be a plain thread the kernel preempts: after a short spin, give the
  // CPU away instead of burning the rest of the time slice.
  void lock_shared() noexcept {
    for (int spins = 0; !shared_lock_.try_lock(); ++spins) {
      if (spins < 64) {
        detail::cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
  }

  // ---- Read by every get and put; written only when binding. Kept on a line
  // of their own so that the shared layer's lock traffic does not evict them
  // from every P's cache.
  // Serial of the runtime whose Ps own locals_, 0 if none. Written (release)
  // under bind_lock_; read (acquire) by the fast paths, which then index
  // locals_: the acquire makes the array's initial state visible.
  alignas(detail::cache_line) std::atomic<std::uint32_t> bound_serial_{0};
  std::atomic<local_cache*> locals_{nullptr};  // published by bound_serial_
  std::unique_ptr<void, void (*)(void*)> factory_{nullptr, [](void*) {}};
  std::unique_ptr<T> (*make_)(void* factory);  // calls factory_ (or makes T{})

  // ---- Binding: guarded by bind_lock_ (and read by the destructor).
  std::mutex bind_lock_;  // only ever try_lock'ed
  std::uint32_t nlocals_ = 0;  // entries in locals_: the bound runtime's procs()

  // ---- The shared layer: everything below is guarded by shared_lock_.
  alignas(detail::cache_line) detail::spinlock shared_lock_;
  int primary_ = 0;  // index into gen_ of the primary generation
  std::uint32_t count_[2] = {0, 0};
  std::uint32_t ops_since_rotation_ = 0;
  std::uint32_t foreign_ops_ = 0;
  std::uint32_t newest_foreign_serial_ = 0;
  T* gen_[2][shared_capacity];  // gen_[g][0, count_[g]): oldest first
};

}  // namespace gofer
