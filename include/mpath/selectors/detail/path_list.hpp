#pragma once
// The kernel selectors keep a "valid" list in a meaningful order and a "failed" list. This is
// that bookkeeping over path indices, plus the repeat_count state of product.md §5.

#include <mpath/detail/text.hpp>
#include <mpath/path_selector.hpp>

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mpath::inline v0::selectors::detail {

/// Valid paths in selection order (the kernel's valid_paths list) and a failed flag per path.
///
/// Storage: one array of every path index whose first valid_count() entries are the valid list in
/// order; what follows is unused. Moving an entry is a memmove of at most 4 × paths bytes (no
/// std::rotate, no vector<bool>), and nothing allocates once every path was added.
///
/// Thread safety: none; the owning selector serialises every call with its lock.
class path_list {
public:
  /// Appends path `size()` to the tail of the valid list (construction only).
  void add_tail(path_index p) {
    order_.push_back(p);
    failed_.push_back(0);
    // The new path belongs right behind the valid ones (all of them, before any I/O).
    std::memmove(order_.data() + valid_ + 1, order_.data() + valid_, (order_.size() - 1 - valid_) * sizeof(path_index));
    order_[valid_++] = p;
  }
  /// Every path, valid or failed.
  std::size_t size() const noexcept { return failed_.size(); }
  std::size_t valid_count() const noexcept { return valid_; }
  /// The valid list, head first.
  std::span<const path_index> valid() const noexcept { return {order_.data(), valid_}; }
  bool is_failed(path_index p) const noexcept { return failed_[p] != 0; }

  /// Moves the valid entry at position `pos` to the tail (the kernel's list_move_tail).
  void move_to_tail(std::size_t pos) noexcept {
    path_index p = order_[pos];
    std::memmove(order_.data() + pos, order_.data() + pos + 1, (valid_ - pos - 1) * sizeof(path_index));
    order_[valid_ - 1] = p;
  }

  /// Takes `p` off the valid list; a path already failed is left alone.
  void fail(path_index p) noexcept {
    if (failed_[p])
      return;
    failed_[p] = 1;
    std::size_t pos = 0;
    while (order_[pos] != p)
      ++pos;
    std::memmove(order_.data() + pos, order_.data() + pos + 1, (valid_ - pos - 1) * sizeof(path_index));
    --valid_;
  }
  /// Puts `p` back on the valid list: at the head (round-robin: chosen next) or at the tail (the
  /// others); a path that is not failed is left alone.
  void reinstate(path_index p, bool at_head) noexcept {
    if (!failed_[p])
      return;
    failed_[p] = 0;
    if (at_head) {
      std::memmove(order_.data() + 1, order_.data(), valid_ * sizeof(path_index));
      order_[0] = p;
    } else {
      order_[valid_] = p;
    }
    ++valid_;
  }

private:
  std::vector<path_index> order_;
  std::vector<std::uint8_t> failed_;
  std::size_t valid_ = 0;
};

/// Reads the optional first per-path argument, repeat_count (default 1), with the selector's
/// error prefix ("round-robin ps: invalid repeat count").
inline result<std::uint32_t> read_repeat_count(std::span<const std::string> args, std::size_t max_args,
                                               std::string_view prefix) {
  if (args.size() > max_args)
    return einval(std::string(prefix) + ": incorrect number of arguments");
  std::uint32_t repeat = 1;
  if (!args.empty() && !mpath::detail::parse_u32(args[0], repeat))
    return einval(std::string(prefix) + ": invalid repeat count");
  return repeat;
}

/// repeat_count honoured (product.md §5): after choosing a path with repeat_count N, the next
/// N-1 selections return it again without consulting the algorithm. Guarded by the selector lock.
class repeat_state {
public:
  /// The path to reuse, or no_path when the algorithm must choose.
  path_index reuse() noexcept {
    if (left_ == 0)
      return no_path;
    --left_;
    return path_;
  }
  void chose(path_index p, std::uint32_t repeat_count) noexcept {
    path_ = p;
    left_ = repeat_count > 1 ? repeat_count - 1 : 0;
  }
  void forget(path_index p) noexcept {
    if (p == path_)
      left_ = 0;
  }
  /// The path being repeated, or no_path.
  path_index current() const noexcept { return left_ ? path_ : no_path; }

private:
  path_index path_ = no_path;
  std::uint32_t left_ = 0;
};

} // namespace mpath::inline v0::selectors::detail
