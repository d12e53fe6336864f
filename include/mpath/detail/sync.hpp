#pragma once
// Lock types the engine and selectors can be built with. Routed through one header so tests can
// substitute instrumented versions.

#include <atomic>
#include <mutex>
#include <thread>

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

} // namespace mpath::inline v0
