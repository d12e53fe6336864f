#pragma once
// A deterministic executor with a virtual clock: work runs only when the test (or mpathctl) says
// so, and time moves only when it is advanced.

#include <mpath/detail/work_queue.hpp>
#include <mpath/executor.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>

namespace mpath::inline v0::testing {

/// Thread safety: post/cancel/now_ns from any thread; run/advance from one thread at a time.
class manual_executor {
public:
  std::uint64_t now_ns() const noexcept { return now_.load(std::memory_order_acquire); }

  bool post(work_item& w, std::uint64_t delay_ns) noexcept {
    std::lock_guard guard(mutex_);
    return queue_.insert(w, now_ns() + delay_ns);
  }

  bool cancel(work_item& w) noexcept {
    std::lock_guard guard(mutex_);
    return queue_.remove(w);
  }

  /// Waits for a `w.fn` running on another thread's `run` (executor.hpp).
  bool cancel_sync(work_item& w) noexcept {
    std::unique_lock lock(mutex_);
    return running_.cancel_sync(lock, queue_, w);
  }

  /// Runs one due item; false when none is due.
  bool run_one() noexcept {
    work_item* w = nullptr;
    {
      std::lock_guard guard(mutex_);
      w = queue_.pop_due(now_ns());
      if (!w)
        return false;
      running_.begin(*w);
    }
    w->fn(*w);
    std::lock_guard guard(mutex_);
    running_.end();
    return true;
  }

  /// Runs due work until none is left (work may post more); returns how many items ran.
  std::size_t run() noexcept {
    std::size_t n = 0;
    while (run_one())
      ++n;
    return n;
  }

  /// Moves the clock forward, stopping at each timer on the way so work runs at its due time.
  void advance(std::uint64_t ns) noexcept {
    std::uint64_t target = now_ns() + ns;
    for (;;) {
      run();
      std::uint64_t next = 0;
      {
        std::lock_guard guard(mutex_);
        if (queue_.empty() || queue_.front()->due_ns > target)
          break;
        next = queue_.front()->due_ns;
      }
      if (next > now_ns())
        now_.store(next, std::memory_order_release);
    }
    now_.store(target, std::memory_order_release);
    run();
  }

  /// Due time of the earliest queued item, if any.
  bool next_due(std::uint64_t& due) const noexcept {
    std::lock_guard guard(mutex_);
    if (queue_.empty())
      return false;
    due = queue_.front()->due_ns;
    return true;
  }

  bool idle() const noexcept {
    std::lock_guard guard(mutex_);
    return queue_.empty();
  }

private:
  mutable std::mutex mutex_;
  detail::work_queue queue_;
  detail::running_item running_;
  std::atomic<std::uint64_t> now_{0};
};

static_assert(Executor<manual_executor>);

} // namespace mpath::inline v0::testing
