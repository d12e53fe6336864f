#pragma once
// A mutex-guarded FIFO of pointers, for stress tests that hand I/Os between threads.

#include <deque>
#include <mutex>

namespace mpath_test {

template <class T> class locked_queue {
public:
  void push(T* item) {
    std::lock_guard guard(mutex_);
    items_.push_back(item);
  }
  /// The oldest item, or null when empty.
  T* pop() {
    std::lock_guard guard(mutex_);
    if (items_.empty())
      return nullptr;
    T* item = items_.front();
    items_.pop_front();
    return item;
  }

private:
  std::mutex mutex_;
  std::deque<T*> items_;
};

} // namespace mpath_test
