#pragma once
// An Executor for real deployments: one thread runs deferred work at its due time on the steady
// clock. Enough for pg_init, the bio worker, events and the no-path timer, none of which is hot.

#include <mpath/executor.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace mpath::inline v0 {

/// Thread safety: post, cancel and now_ns from any thread. Work runs on the executor's thread, one
/// item at a time, never while `post` or `cancel` hold the executor's mutex.
class thread_executor {
public:
  thread_executor() : thread_([this] { loop(); }) {}
  thread_executor(const thread_executor&) = delete;
  thread_executor& operator=(const thread_executor&) = delete;
  /// Work still queued is dropped; cancel or finish your engines first.
  ~thread_executor() {
    {
      std::lock_guard guard(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  std::uint64_t now_ns() const noexcept {
    return std::uint64_t(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
  }

  bool post(work_item& w, std::uint64_t delay_ns) noexcept {
    {
      std::lock_guard guard(mutex_);
      if (w.queued)
        return false;
      w.queued = true;
      w.due_ns = now_ns() + delay_ns;
      work_item** link = &head_;
      while (*link && (*link)->due_ns <= w.due_ns)
        link = &(*link)->next;
      w.next = *link;
      *link = &w;
    }
    wake_.notify_one();
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

private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (!head_) {
        wake_.wait(lock);
        continue;
      }
      std::uint64_t now = now_ns();
      if (head_->due_ns > now) {
        wake_.wait_for(lock, std::chrono::nanoseconds(head_->due_ns - now));
        continue;
      }
      work_item* w = head_;
      head_ = w->next;
      w->next = nullptr;
      w->queued = false;
      lock.unlock();
      w->fn(*w);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  work_item* head_ = nullptr;
  bool stopping_ = false;
  std::thread thread_; // last: starts after the members it uses
};

static_assert(Executor<thread_executor>);

} // namespace mpath::inline v0
