#pragma once
// "round-robin" (kernel-target.md §5.1): rotate through the valid paths, one I/O each, or
// repeat_count I/Os each (product.md §5).

#include <mpath/detail/sync.hpp>
#include <mpath/selectors/detail/path_list.hpp>

#include <mutex>

namespace mpath::inline v0::selectors {

/// Arguments: none for the selector (any given are ignored, as the kernel does); per path
/// `[repeat_count]` (default 1, stored as given and honoured, product.md §5).
///
/// Locking: one lock (`Sync::lock_type`) around the valid list and the repeat state, taken by
/// select, fail_path and reinstate_path. With `threaded_sync` (the default, `round_robin`) that
/// is a spinlock (mpath::spinlock): a select is a handful of instructions (take the head, move it
/// to the tail), so a lock is cheaper than any lock-free scheme that still rotated in the
/// kernel's exact order: one atomic exchange per I/O, the least any shared rotation costs. With
/// `single_thread_sync` the lock is `null_lock` and a select has no atomic instruction at all.
/// There are no per-I/O counters, hence no start_io/end_io (the kernel's round-robin has none
/// either).
///
/// Thread safety (threaded_sync): select, fail_path and reinstate_path may run concurrently;
/// create/add_path before any of them; the status writers may run at any time after add_path.
/// With single_thread_sync every call must come from one thread at a time.
template <SelectorSync Sync = threaded_sync> class basic_round_robin {
public:
  using sync_type = Sync;
  using lock_type = typename Sync::lock_type;
  /// The same selector with another sync policy (rebind_selectors_t).
  template <SelectorSync S> using rebind_sync = basic_round_robin<S>;

  static constexpr std::string_view name = "round-robin";
  static constexpr unsigned table_args = 1;
  static constexpr unsigned info_args = 0;

  result<void> create(std::span<const std::string>) { return {}; } // selector args are ignored

  result<void> add_path(std::span<const std::string> args) {
    auto repeat = detail::read_repeat_count(args, 1, "round-robin ps");
    if (!repeat)
      return std::move(repeat).err();
    repeat_count_.push_back(*repeat);
    list_.add_tail(path_index(list_.size()));
    return {};
  }

  path_index select(std::uint64_t, std::uint64_t) noexcept {
    std::lock_guard guard(lock_);
    if (path_index again = repeat_.reuse(); again != no_path)
      return again;
    if (list_.valid_count() == 0)
      return no_path;
    path_index p = list_.valid().front();
    list_.move_to_tail(0);
    repeat_.chose(p, repeat_count_[p]);
    return p;
  }

  void fail_path(path_index p) noexcept {
    std::lock_guard guard(lock_);
    repeat_.forget(p);
    list_.fail(p);
  }
  int reinstate_path(path_index p) noexcept {
    std::lock_guard guard(lock_);
    list_.reinstate(p, /*at_head=*/true); // a reinstated path is chosen next
    return 0;
  }

  void group_status(std::string& out) const { mpath::detail::status_writer(out).number(0); }
  void path_status(path_index p, status_type type, std::string& out) const {
    if (type == status_type::table)
      mpath::detail::status_writer(out).number(repeat_count_[p]);
  }

  std::uint32_t repeat_count(path_index p) const noexcept { return repeat_count_[p]; }

private:
  lock_type lock_;
  detail::path_list list_;
  detail::repeat_state repeat_;
  std::vector<std::uint32_t> repeat_count_;
};

/// round-robin shared by threads: a spinlock per selector.
using round_robin = basic_round_robin<>;

} // namespace mpath::inline v0::selectors
