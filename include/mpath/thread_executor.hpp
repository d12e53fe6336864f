#pragma once
// An Executor for real deployments: one thread runs deferred work at its due time on the steady
// clock. Enough for pg_init, the bio worker, events and the no-path timer, none of which is hot.

#include <mpath/detail/work_queue.hpp>
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
    bool queued = false;
    {
      std::lock_guard guard(mutex_);
      queued = queue_.insert(w, now_ns() + delay_ns);
    }
    if (queued)
      wake_.notify_one();
    return queued;
  }

  bool cancel(work_item& w) noexcept {
    std::lock_guard guard(mutex_);
    return queue_.remove(w);
  }

  /// Waits for a running `w.fn` to return (not when called from inside it): executor.hpp.
  bool cancel_sync(work_item& w) noexcept {
    std::unique_lock lock(mutex_);
    return running_.cancel_sync(lock, queue_, w);
  }

private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      std::uint64_t now = now_ns(); // one reading, so the wait below cannot underflow
      if (work_item* w = queue_.pop_due(now)) {
        running_.begin(*w);
        lock.unlock();
        w->fn(*w);
        lock.lock();
        running_.end(); // `w` may be freed from here on: cancel_sync has been waiting for this
      } else if (queue_.empty()) {
        wake_.wait(lock);
      } else {
        wake_.wait_for(lock, std::chrono::nanoseconds(queue_.front()->due_ns - now));
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  detail::work_queue queue_;
  detail::running_item running_;
  bool stopping_ = false;
  std::thread thread_; // last: starts after the members it uses
};

static_assert(Executor<thread_executor>);

} // namespace mpath::inline v0
