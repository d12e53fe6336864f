#pragma once
// The intrusive due-time queue both shipped executors keep their work items in. Not thread-safe:
// the executor guards it.

#include <mpath/executor.hpp>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace mpath::inline v0::detail {

class work_queue {
public:
  /// Queues `w` at `due_ns` unless it is queued already (then returns false, changing nothing).
  /// Equal due times keep posting order.
  bool insert(work_item& w, std::uint64_t due_ns) noexcept {
    if (w.queued || w.cancelling)
      return false;
    w.queued = true;
    w.due_ns = due_ns;
    work_item** link = &head_;
    while (*link && (*link)->due_ns <= due_ns)
      link = &(*link)->next;
    w.next = *link;
    *link = &w;
    return true;
  }

  /// Unqueues `w`; returns whether it was queued.
  bool remove(work_item& w) noexcept {
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

  /// The earliest item if it is due at `now_ns`, unqueued; otherwise null.
  work_item* pop_due(std::uint64_t now_ns) noexcept {
    if (!head_ || head_->due_ns > now_ns)
      return nullptr;
    work_item* w = head_;
    head_ = w->next;
    w->next = nullptr;
    w->queued = false;
    return w;
  }

  const work_item* front() const noexcept { return head_; }
  bool empty() const noexcept { return head_ == nullptr; }

private:
  work_item* head_ = nullptr;
};

/// The item an executor is running right now, so `cancel_sync` can wait for it (executor.hpp).
/// Both shipped executors run one item at a time; guarded by the executor's mutex.
class running_item {
public:
  void begin(work_item& w) noexcept {
    item_ = &w;
    runner_ = std::this_thread::get_id();
  }
  void end() noexcept {
    item_ = nullptr;
    finished_.notify_all();
  }

  /// `cancel_sync` over `queue`, with `lock` holding the executor's mutex. While it waits, `w`
  /// cannot be posted (work_queue::insert refuses it), so an item that posts itself cannot keep
  /// running forever; a call from inside `w.fn` does not wait for itself (it would never return).
  bool cancel_sync(std::unique_lock<std::mutex>& lock, work_queue& queue, work_item& w) noexcept {
    bool was_queued = queue.remove(w);
    w.cancelling = true;
    while (item_ == &w && runner_ != std::this_thread::get_id())
      finished_.wait(lock);
    w.cancelling = false;
    return was_queued;
  }

private:
  work_item* item_ = nullptr;
  std::thread::id runner_;
  std::condition_variable finished_;
};

} // namespace mpath::inline v0::detail
