#pragma once
// The kernel selectors keep a "valid" list in a meaningful order and a "failed" list. This is
// that bookkeeping over path indices, plus the repeat_count state of product.md §5.

#include <mpath/detail/text.hpp>
#include <mpath/path_selector.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace mpath::inline v0::selectors::detail {

/// Valid paths in selection order; all operations are O(paths) at worst and allocation-free
/// once every path was added.
class path_list {
public:
  void add_tail(path_index p) {
    valid_.push_back(p);
    failed_.push_back(false);
  }
  std::size_t size() const noexcept { return failed_.size(); }
  std::size_t valid_count() const noexcept { return valid_.size(); }
  const std::vector<path_index>& valid() const noexcept { return valid_; }
  bool is_failed(path_index p) const noexcept { return failed_[p]; }

  /// Moves the valid entry at position `pos` to the tail (the kernel's list_move_tail).
  void move_to_tail(std::size_t pos) noexcept {
    std::rotate(valid_.begin() + std::ptrdiff_t(pos), valid_.begin() + std::ptrdiff_t(pos) + 1, valid_.end());
  }

  void fail(path_index p) noexcept {
    if (failed_[p])
      return;
    failed_[p] = true;
    valid_.erase(std::find(valid_.begin(), valid_.end(), p));
  }
  /// Reinstated paths go to the head (round-robin) or the tail (the others).
  void reinstate(path_index p, bool at_head) noexcept {
    if (!failed_[p])
      return;
    failed_[p] = false;
    // capacity() >= size() always holds after add_tail, so this never allocates.
    if (at_head)
      valid_.insert(valid_.begin(), p);
    else
      valid_.push_back(p);
  }

private:
  std::vector<path_index> valid_;
  std::vector<bool> failed_;
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

private:
  path_index path_ = no_path;
  std::uint32_t left_ = 0;
};

} // namespace mpath::inline v0::selectors::detail
