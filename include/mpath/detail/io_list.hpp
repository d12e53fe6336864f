#pragma once
// An intrusive FIFO of I/Os linked through `io_context::next_` (the kernel's bio_list): the
// engine's held and pushed-back I/O, and requeue_list's batches. Not thread-safe: its owner
// guards it.

#include <mpath/io.hpp>

#include <cstddef>

namespace mpath::inline v0::detail {

/// Pushing and popping never allocates; `append` and `prepend` splice in O(1).
class io_list {
public:
  void push_back(io_context& io) noexcept {
    io.next_ = nullptr;
    if (tail_)
      tail_->next_ = &io;
    else
      head_ = &io;
    tail_ = &io;
    ++size_;
  }
  io_context* pop_front() noexcept {
    io_context* io = head_;
    if (io) {
      head_ = io->next_;
      if (!head_)
        tail_ = nullptr;
      io->next_ = nullptr;
      --size_;
    }
    return io;
  }
  void append(io_list& other) noexcept {
    if (!other.head_)
      return;
    if (tail_)
      tail_->next_ = other.head_;
    else
      head_ = other.head_;
    tail_ = other.tail_;
    size_ += other.size_;
    other = io_list{};
  }
  void prepend(io_list& other) noexcept {
    other.append(*this);
    *this = other;
    other = io_list{};
  }
  /// The oldest I/O, to walk the list through `next_`; null when empty.
  io_context* front() const noexcept { return head_; }
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }

private:
  io_context* head_ = nullptr;
  io_context* tail_ = nullptr;
  std::size_t size_ = 0;
};

} // namespace mpath::inline v0::detail
