#pragma once
// A deterministic executor with a virtual clock: work runs only when the test (or mpathctl) says
// so, and time moves only when it is advanced.

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
    if (w.queued)
      return false;
    w.queued = true;
    w.due_ns = now_ns() + delay_ns;
    // Sorted by due time; equal times keep posting order.
    work_item** link = &head_;
    while (*link && (*link)->due_ns <= w.due_ns)
      link = &(*link)->next;
    w.next = *link;
    *link = &w;
    return true;
  }

  bool cancel(work_item& w) noexcept {
    std::lock_guard guard(mutex_);
    if (!w.queued)
      return false;
    for (work_item** link = &head_; *link; link = &(*link)->next)
      if (*link == &w) {
        *link = w.next;
        break;
      }
    w.queued = false;
    w.next = nullptr;
    return true;
  }

  /// Runs one due item; false when none is due.
  bool run_one() noexcept {
    work_item* w = nullptr;
    {
      std::lock_guard guard(mutex_);
      if (!head_ || head_->due_ns > now_ns())
        return false;
      w = head_;
      head_ = w->next;
      w->next = nullptr;
      w->queued = false;
    }
    w->fn(*w);
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
        if (!head_ || head_->due_ns > target)
          break;
        next = head_->due_ns;
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
    if (!head_)
      return false;
    due = head_->due_ns;
    return true;
  }

  bool idle() const noexcept {
    std::lock_guard guard(mutex_);
    return head_ == nullptr;
  }

private:
  mutable std::mutex mutex_;
  work_item* head_ = nullptr;
  std::atomic<std::uint64_t> now_{0};
};

static_assert(Executor<manual_executor>);

} // namespace mpath::inline v0::testing
