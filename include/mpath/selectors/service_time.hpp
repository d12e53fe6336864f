#pragma once
// "service-time" (kernel-target.md §5.3): the valid path whose in-flight bytes, scaled by its
// relative throughput, promise the shortest service time for the incoming I/O.

#include <mpath/detail/sync.hpp>
#include <mpath/selectors/detail/path_list.hpp>

#include <atomic>
#include <compare>
#include <mutex>

namespace mpath::inline v0::selectors {

/// Arguments: none for the selector (ignored); per path `[repeat_count [relative_throughput]]`
/// (defaults 1 and 1; throughput 0..100; repeat_count stored as given and honoured, product.md §5).
///
/// Locking: a lock (`Sync::lock_type`) around the valid list order and the repeat state for
/// select/fail_path/reinstate_path (the winner moves to the tail, serialised as in the kernel);
/// the in-flight byte totals are `Sync::counter`s, one cache line per path, updated by
/// start_io/end_io without the lock, as the kernel's atomic_t. With `threaded_sync` (the
/// default, `service_time`) that is a spinlock (mpath::spinlock) and relaxed atomics; with
/// `single_thread_sync` no lock (`null_lock`) and plain integers, no atomic instruction at all.
///
/// The comparison is mathematically correct 64-bit arithmetic (product.md §5): the kernel returns
/// differences through a 32-bit int and can flip the sign for large loads; we do not.
///
/// Thread safety (threaded_sync): select, fail_path, reinstate_path, start_io and end_io may run
/// concurrently; create/add_path before any of them; the status writers at any time after
/// add_path. With single_thread_sync every call must come from one thread at a time.
template <SelectorSync Sync = threaded_sync> class basic_service_time {
  template <class T> using counter = typename Sync::template counter<T>;

public:
  using sync_type = Sync;
  using lock_type = typename Sync::lock_type;
  /// The same selector with another sync policy (rebind_selectors_t).
  template <SelectorSync S> using rebind_sync = basic_service_time<S>;

  static constexpr std::string_view name = "service-time";
  static constexpr unsigned table_args = 2;
  static constexpr unsigned info_args = 2;
  static constexpr std::uint32_t max_relative_throughput = 100;

  result<void> create(std::span<const std::string>) { return {}; }

  result<void> add_path(std::span<const std::string> args) {
    auto repeat = detail::read_repeat_count(args, 2, "service-time ps");
    if (!repeat)
      return std::move(repeat).err();
    std::uint32_t throughput = 1;
    if (args.size() == 2 && (!mpath::detail::parse_u32(args[1], throughput) || throughput > max_relative_throughput))
      return einval("service-time ps: invalid relative_throughput value");
    paths_.emplace_back(*repeat, throughput);
    list_.add_tail(path_index(list_.size()));
    return {};
  }

  path_index select(std::uint64_t nr_bytes, std::uint64_t) noexcept {
    std::lock_guard guard(lock_);
    if (path_index again = repeat_.reuse(); again != no_path)
      return again;
    const auto& valid = list_.valid();
    std::size_t best = valid.size();
    for (std::size_t i = 0; i < valid.size(); ++i)
      if (best == valid.size() || compare(valid[i], valid[best], nr_bytes) < 0)
        best = i; // only a strictly better candidate replaces the earlier one
    if (best == valid.size())
      return no_path;
    path_index p = valid[best];
    list_.move_to_tail(best);
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

  void start_io(path_index p, std::uint64_t nr_bytes) noexcept {
    paths_[p].in_flight_bytes.fetch_add(nr_bytes, std::memory_order_relaxed);
  }
  void end_io(path_index p, std::uint64_t nr_bytes, std::uint64_t, std::uint64_t) noexcept {
    paths_[p].in_flight_bytes.fetch_sub(nr_bytes, std::memory_order_relaxed);
  }

  void group_status(std::string& out) const { mpath::detail::status_writer(out).number(0); }
  void path_status(path_index p, status_type type, std::string& out) const {
    mpath::detail::status_writer w(out);
    const path_info& pi = paths_[p];
    if (type == status_type::info) // the kernel prints the byte count as a signed 32-bit value
      w.signed_number(std::int32_t(std::uint32_t(pi.in_flight_bytes.load(std::memory_order_relaxed))));
    else
      w.number(pi.repeat_count);
    w.number(pi.relative_throughput);
  }

  std::uint64_t in_flight_bytes(path_index p) const noexcept {
    return paths_[p].in_flight_bytes.load(std::memory_order_relaxed);
  }

  /// Negative when path a is the better choice for an I/O of `incoming` bytes.
  int compare(path_index a, path_index b, std::uint64_t incoming) const noexcept {
    std::uint64_t sz1 = paths_[a].in_flight_bytes.load(std::memory_order_relaxed);
    std::uint64_t sz2 = paths_[b].in_flight_bytes.load(std::memory_order_relaxed);
    std::uint64_t tp1 = paths_[a].relative_throughput, tp2 = paths_[b].relative_throughput;
    auto sign = [](auto x, auto y) { return x < y ? -1 : (x > y ? 1 : 0); };
    if (tp1 == tp2)
      return sign(sz1, sz2);
    if (sz1 == sz2 || tp1 == 0 || tp2 == 0)
      return sign(tp2, tp1); // larger throughput wins; 0 only when nothing else
    sz1 += incoming;
    sz2 += incoming;
    constexpr std::uint64_t limit = ~std::uint64_t{0} >> 7;
    if (sz1 >= limit || sz2 >= limit) {
      sz1 >>= 7;
      sz2 >>= 7;
    }
    std::uint64_t st1 = sz1 * tp2, st2 = sz2 * tp1;
    if (st1 != st2)
      return sign(st1, st2);
    return sign(tp2, tp1);
  }

private:
  struct alignas(64) path_info {
    path_info(std::uint32_t repeat, std::uint32_t throughput) : repeat_count(repeat), relative_throughput(throughput) {}
    path_info(path_info&& o) noexcept
        : in_flight_bytes(o.in_flight_bytes.load()), repeat_count(o.repeat_count),
          relative_throughput(o.relative_throughput) {}
    counter<std::uint64_t> in_flight_bytes{0};
    std::uint32_t repeat_count;
    std::uint32_t relative_throughput;
  };

  lock_type lock_;
  detail::path_list list_;
  detail::repeat_state repeat_;
  std::vector<path_info> paths_;
};

/// service-time shared by threads: a spinlock and atomic byte counters.
using service_time = basic_service_time<>;

} // namespace mpath::inline v0::selectors
