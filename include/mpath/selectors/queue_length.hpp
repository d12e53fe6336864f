#pragma once
// "queue-length" (kernel-target.md §5.2): the valid path with the fewest I/Os in flight.

#include <mpath/detail/sync.hpp>
#include <mpath/selectors/detail/path_list.hpp>

#include <atomic>
#include <mutex>

namespace mpath::inline v0::selectors {

/// Arguments: none for the selector (ignored); per path `[repeat_count]` (default 1, stored as
/// given and honoured, product.md §5).
///
/// Locking: a lock (`Sync::lock_type`) around the valid list order and the repeat state for
/// select/fail_path/reinstate_path, because "move the winner to the tail" must be serialised for
/// ties to rotate exactly as in the kernel. The in-flight counters are `Sync::counter`s, one
/// cache line per path, so start_io/end_io never take the lock, as the kernel's atomic_t
/// counters. With `threaded_sync` (the default, `queue_length`) the lock is a spinlock
/// (mpath::spinlock) and the counters relaxed atomics (a load estimate, no other data hangs off
/// them): per I/O three atomic read-modify-writes (lock, +1, -1), the least an exactly ordered,
/// thread-safe queue-length can do (docs/selectors.md, "Concurrency and cost"). With
/// `single_thread_sync` the lock is `null_lock` and the counters plain integers: none.
///
/// Thread safety (threaded_sync): select, fail_path, reinstate_path, start_io and end_io may run
/// concurrently; create/add_path before any of them; the status writers at any time after
/// add_path. With single_thread_sync every call must come from one thread at a time.
template <SelectorSync Sync = threaded_sync> class basic_queue_length {
  template <class T> using counter = typename Sync::template counter<T>;

public:
  using sync_type = Sync;
  using lock_type = typename Sync::lock_type;
  /// The same selector with another sync policy (rebind_selectors_t).
  template <SelectorSync S> using rebind_sync = basic_queue_length<S>;

  static constexpr std::string_view name = "queue-length";
  static constexpr unsigned table_args = 1;
  static constexpr unsigned info_args = 1;

  result<void> create(std::span<const std::string>) { return {}; }

  result<void> add_path(std::span<const std::string> args) {
    auto repeat = detail::read_repeat_count(args, 1, "queue-length ps");
    if (!repeat)
      return std::move(repeat).err();
    paths_.emplace_back(*repeat);
    list_.add_tail(path_index(list_.size()));
    return {};
  }

  path_index select(std::uint64_t, std::uint64_t) noexcept {
    std::lock_guard guard(lock_);
    if (path_index again = repeat_.reuse(); again != no_path)
      return again;
    const auto& valid = list_.valid();
    std::size_t best = valid.size();
    std::int64_t best_count = 0;
    for (std::size_t i = 0; i < valid.size(); ++i) {
      std::int64_t n = paths_[valid[i]].in_flight.load(std::memory_order_relaxed);
      if (best == valid.size() || n < best_count) {
        best = i;
        best_count = n;
        if (n == 0)
          break; // nothing beats an idle path
      }
    }
    if (best == valid.size())
      return no_path;
    path_index p = valid[best];
    list_.move_to_tail(best); // ties rotate evenly
    repeat_.chose(p, paths_[p].repeat_count);
    return p;
  }

  void fail_path(path_index p) noexcept {
    std::lock_guard guard(lock_);
    repeat_.forget(p);
    list_.fail(p);
  }
  int reinstate_path(path_index p) noexcept {
    std::lock_guard guard(lock_);
    list_.reinstate(p, /*at_head=*/false);
    return 0;
  }

  void start_io(path_index p, std::uint64_t) noexcept { paths_[p].in_flight.fetch_add(1, std::memory_order_relaxed); }
  void end_io(path_index p, std::uint64_t, std::uint64_t, std::uint64_t) noexcept {
    paths_[p].in_flight.fetch_sub(1, std::memory_order_relaxed);
  }

  void group_status(std::string& out) const { mpath::detail::status_writer(out).number(0); }
  void path_status(path_index p, status_type type, std::string& out) const {
    mpath::detail::status_writer w(out);
    if (type == status_type::info)
      w.signed_number(std::int32_t(paths_[p].in_flight.load(std::memory_order_relaxed)));
    else
      w.number(paths_[p].repeat_count);
  }

  std::int64_t in_flight(path_index p) const noexcept { return paths_[p].in_flight.load(std::memory_order_relaxed); }

private:
  struct alignas(64) path_info {
    explicit path_info(std::uint32_t repeat) : repeat_count(repeat) {}
    // Only moved while paths are added, before any I/O.
    path_info(path_info&& o) noexcept : in_flight(o.in_flight.load()), repeat_count(o.repeat_count) {}
    counter<std::int64_t> in_flight{0};
    std::uint32_t repeat_count;
  };

  lock_type lock_;
  detail::path_list list_;
  detail::repeat_state repeat_;
  std::vector<path_info> paths_;
};

/// queue-length shared by threads: a spinlock and atomic counters.
using queue_length = basic_queue_length<>;

} // namespace mpath::inline v0::selectors
