#pragma once
// Lock types the engine and selectors can be built with, and the sync policies that pick a
// selector's lock and counters (threaded_sync, single_thread_sync, selector_sync_for<Traits>).
// Routed through one header so tests can substitute instrumented versions.

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <type_traits>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace mpath::inline v0 {

/// A test-and-test-and-set spinlock for short critical sections (selector lists).
///
/// Unlike a kernel spinlock it cannot keep its holder from being preempted, so after a short
/// spin a waiter yields its CPU (to the holder, if they share one) instead of burning the rest
/// of its time slice. Uncontended, lock() is one atomic exchange.
class spinlock {
public:
  void lock() noexcept {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire))
        return;
      for (unsigned spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
        if (spins < spins_before_yield)
          pause();
        else
          std::this_thread::yield();
      }
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

private:
  static constexpr unsigned spins_before_yield = 128;

  static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
  }
  std::atomic<bool> locked_{false};
};

/// No locking at all, for a single-threaded reactor that owns the engine.
struct null_lock {
  void lock() noexcept {}
  bool try_lock() noexcept { return true; }
  void unlock() noexcept {}
};

// ------------------------------------------------------------------------ selector sync policies

/// A value with the part of `std::atomic<T>`'s interface the selectors use, for an object that
/// only one thread ever touches: plain loads, stores and arithmetic, no read-modify-write
/// instruction. Memory orders are accepted and ignored. Like `std::atomic` it is value-initialised
/// by default and neither copyable nor assignable, so code written against one compiles with the
/// other.
template <class T> class plain_counter {
public:
  using value_type = T;
  static constexpr bool is_always_lock_free = true;

  constexpr plain_counter() noexcept = default;
  constexpr plain_counter(T v) noexcept : v_(v) {} // implicit, as std::atomic's
  plain_counter(const plain_counter&) = delete;
  plain_counter& operator=(const plain_counter&) = delete;

  T load(std::memory_order = std::memory_order_seq_cst) const noexcept { return v_; }
  void store(T v, std::memory_order = std::memory_order_seq_cst) noexcept { v_ = v; }
  T exchange(T v, std::memory_order = std::memory_order_seq_cst) noexcept {
    T old = v_;
    v_ = v;
    return old;
  }
  T fetch_add(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    T old = v_;
    v_ = T(v_ + d);
    return old;
  }
  T fetch_sub(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    T old = v_;
    v_ = T(v_ - d);
    return old;
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order = std::memory_order_seq_cst,
                               std::memory_order = std::memory_order_seq_cst) noexcept {
    if (v_ == expected) {
      v_ = desired;
      return true;
    }
    expected = v_;
    return false;
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success = std::memory_order_seq_cst,
                             std::memory_order failure = std::memory_order_seq_cst) noexcept {
    return compare_exchange_strong(expected, desired, success, failure);
  }

private:
  T v_{};
};

/// What a selector synchronises with: `lock_type` for its lists (BasicLockable) and
/// `counter<T>` for the values it reads without that lock (`std::atomic<T>` or a type with the
/// same load/store/fetch_add/fetch_sub/exchange interface).
template <class S>
concept SelectorSync = requires(typename S::lock_type& l, typename S::template counter<unsigned>& c) {
  l.lock();
  l.unlock();
  c.load(std::memory_order_relaxed);
  c.store(0u, std::memory_order_relaxed);
  c.fetch_add(1u, std::memory_order_relaxed);
  c.fetch_sub(1u, std::memory_order_relaxed);
};

/// Selectors shared by threads (the default): a spinlock and atomics, as the selectors document.
struct threaded_sync {
  using lock_type = spinlock;
  template <class T> using counter = std::atomic<T>;
};

/// Selectors owned by one thread (an engine whose lock is `null_lock`): no lock, plain counters,
/// so no atomic read-modify-write anywhere in a selector.
struct single_thread_sync {
  using lock_type = null_lock;
  template <class T> using counter = plain_counter<T>;
};

namespace detail {
template <class Traits> constexpr auto selector_sync_of() noexcept {
  if constexpr (requires { typename Traits::selector_sync; })
    return std::type_identity<typename Traits::selector_sync>{};
  else if constexpr (std::is_same_v<typename Traits::lock_type, null_lock>)
    return std::type_identity<single_thread_sync>{};
  else
    return std::type_identity<threaded_sync>{};
}
} // namespace detail

/// The sync policy an engine with `Traits` builds its selectors with: `Traits::selector_sync` if
/// the traits declare one, else `single_thread_sync` when `Traits::lock_type` is `null_lock`,
/// else `threaded_sync`.
template <class Traits> using selector_sync_for = typename decltype(detail::selector_sync_of<Traits>())::type;

// ------------------------------------------------------------------------ checked locking

/// MPATH_CHECK_LOCKS=1 (the ci and tsan presets) makes the engine wrap its lock in checked_lock
/// and assert, in every `*_locked` function, that the calling thread holds it: the kernel's
/// lockdep_assert_held. Off by default: it costs an atomic store per lock and unlock.
#ifndef MPATH_CHECK_LOCKS
#define MPATH_CHECK_LOCKS 0
#endif

/// A lock that remembers which thread holds it, so code that needs it held can say so.
template <class Lock> class checked_lock {
public:
  void lock() noexcept {
    lock_.lock();
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }
  bool try_lock() noexcept {
    if (!lock_.try_lock())
      return false;
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    return true;
  }
  void unlock() noexcept {
    owner_.store(std::thread::id(), std::memory_order_relaxed);
    lock_.unlock();
  }
  /// Only meaningful for the calling thread: another thread's answer may be stale.
  bool held_by_this_thread() const noexcept {
    return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  }
  Lock& underlying() noexcept { return lock_; }

private:
  Lock lock_;
  std::atomic<std::thread::id> owner_{};
};

namespace detail {
/// What a failed lock assertion does: print and abort (tests may replace it to count instead).
inline void (*lock_violation)(const char* function) noexcept = [](const char* function) noexcept {
  std::fprintf(stderr, "mpath: %s called without the engine lock held\n", function);
  std::abort();
};

/// The engine's lock type: checked when MPATH_CHECK_LOCKS is on.
template <class Lock> using engine_lock_t = std::conditional_t<MPATH_CHECK_LOCKS != 0, checked_lock<Lock>, Lock>;

template <class Lock> void assert_held(const Lock& lock, const char* function) noexcept {
  if constexpr (requires { lock.held_by_this_thread(); })
    if (!lock.held_by_this_thread())
      lock_violation(function);
  (void)lock;
  (void)function;
}
} // namespace detail

} // namespace mpath::inline v0
