#pragma once
// "historical-service-time" (kernel-target.md §5.4): estimates each path's service time from
// the service times it has measured (a time-weighted exponential moving average in 10-bit fixed
// point) and sends the I/O where (1 + outstanding) × estimate is smallest, retrying "stale" idle
// paths now and then in case they got better.

#include <mpath/detail/sync.hpp>
#include <mpath/selectors/detail/path_list.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace mpath::inline v0::selectors {

/// Arguments: selector `[base_weight [threshold_multiplier]]` (defaults 972 ≈ 0.95 and 0;
/// base_weight < 1024; anything else fails the group with `path selector constructor failed`);
/// per path `[repeat_count]` (stored as given and, as in the kernel, not used).
///
/// repeat_count is not honoured here, unlike round-robin/queue-length/service-time (product.md
/// §5): the kernel prints a constant `0` in its place in TABLE status, so a value we honoured
/// would silently turn into 0 on the first reload of the printed table.
///
/// Time: `select(nr_bytes, now_ns)` and `end_io(p, bytes, start_ns, now_ns)` take the engine's
/// clock (`uses_clock`), nanoseconds from any fixed origin; start_ns is the same clock's reading
/// when the I/O was dispatched. A simulation therefore runs on virtual time.
///
/// Locking, two levels as in the kernel, but without its per-compare lock round trips:
/// - a selector lock around the valid list order and the valid-path count (select,
///   fail_path, reinstate_path): the comparison below is not a total order, so the result depends
///   on the list order, and moving the winner to the tail must be serialised to stay exact;
/// - per path a lock taken by start_io/end_io (the moving average needs the previous
///   completion time, so an end_io is a read-modify-write of four fields), plus a sequence
///   counter so that select reads a consistent (estimate, outstanding, stale_after) triple of
///   every path without taking the path locks (the kernel takes each path's lock twice per
///   comparison). Per I/O that is three atomic exchanges: selector lock, path lock in start_io,
///   path lock in end_io.
///
/// Both locks are `Sync::lock_type` and the fields read without them (the triple, the sequence
/// counter, the valid-path count) `Sync::counter`s. With `threaded_sync` (the default,
/// `historical_service_time`) those are spinlocks (mpath::spinlock) and atomics, as above; with
/// `single_thread_sync` they are `null_lock` and plain integers (the sequence counter is then a
/// plain number that a reader always finds even), so an I/O costs no atomic instruction.
///
/// Thread safety (threaded_sync): select, fail_path, reinstate_path, start_io and end_io may run
/// concurrently; create/add_path before any of them; the status writers at any time after
/// add_path. With single_thread_sync every call must come from one thread at a time.
template <SelectorSync Sync = threaded_sync> class basic_historical_service_time {
  template <class T> using counter = typename Sync::template counter<T>;

public:
  using sync_type = Sync;
  using lock_type = typename Sync::lock_type;
  /// The same selector with another sync policy (rebind_selectors_t).
  template <SelectorSync S> using rebind_sync = basic_historical_service_time<S>;

  static constexpr std::string_view name = "historical-service-time";
  static constexpr unsigned table_args = 1;
  static constexpr unsigned info_args = 3;
  static constexpr bool uses_clock = true;

  static constexpr unsigned fixed_shift = 10;                   ///< 10 fractional bits
  static constexpr std::uint64_t fixed_one = 1u << fixed_shift; ///< 1.0
  static constexpr std::uint64_t fixed_max = ~std::uint64_t{0} >> fixed_shift;
  static constexpr std::uint32_t default_base_weight = 972; ///< ≈ 0.95
  static constexpr std::size_t weight_count = 64;           ///< time buckets
  static constexpr unsigned bucket_shift = 24;              ///< 2^24 ns ≈ 16.8 ms per bucket
  static constexpr std::uint64_t max_in_flight = fixed_one; ///< above this, compare coarser

  result<void> create(std::span<const std::string> args) {
    if (args.size() > 2)
      return einval("historical-service-time ps: incorrect number of selector arguments");
    std::uint32_t base = default_base_weight, threshold = 0;
    if (!args.empty() && (!mpath::detail::parse_u32(args[0], base) || base >= fixed_one))
      return einval("historical-service-time ps: invalid base_weight");
    if (args.size() > 1 && !mpath::detail::parse_u32(args[1], threshold))
      return einval("historical-service-time ps: invalid threshold_multiplier");
    weights_ = make_weights(base);
    threshold_multiplier_ = threshold;
    return {};
  }

  result<void> add_path(std::span<const std::string> args) {
    auto repeat = detail::read_repeat_count(args, 1, "historical-service-time ps");
    if (!repeat)
      return std::move(repeat).err();
    paths_.emplace_back(*repeat);
    std::lock_guard guard(lock_);
    list_.add_tail(path_index(list_.size()));
    valid_count_.store(std::uint32_t(list_.valid_count()), std::memory_order_relaxed);
    return {};
  }

  path_index select(std::uint64_t, std::uint64_t now_ns) noexcept {
    std::lock_guard guard(lock_);
    auto valid = list_.valid();
    if (valid.empty())
      return no_path;
    std::size_t best = 0;
    snapshot best_snap = paths_[valid[0]].read();
    for (std::size_t i = 1; i < valid.size(); ++i) {
      snapshot cand = paths_[valid[i]].read();
      if (compare(cand, best_snap, now_ns) < 0) {
        best = i;
        best_snap = cand;
      }
    }
    path_index p = valid[best];
    list_.move_to_tail(best); // the least preferred on the next tie
    return p;
  }

  void fail_path(path_index p) noexcept {
    std::lock_guard guard(lock_);
    list_.fail(p);
    valid_count_.store(std::uint32_t(list_.valid_count()), std::memory_order_relaxed);
  }
  int reinstate_path(path_index p) noexcept {
    std::lock_guard guard(lock_);
    list_.reinstate(p, /*at_head=*/false);
    valid_count_.store(std::uint32_t(list_.valid_count()), std::memory_order_relaxed);
    return 0;
  }

  void start_io(path_index p, std::uint64_t) noexcept {
    path_info& pi = paths_[p];
    std::lock_guard guard(pi.lock);
    pi.begin_write();
    pi.outstanding.store(pi.outstanding.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    pi.end_write();
  }

  void end_io(path_index p, std::uint64_t, std::uint64_t start_ns, std::uint64_t now_ns) noexcept {
    path_info& pi = paths_[p];
    std::lock_guard guard(pi.lock);
    // If an earlier I/O on this path finished after this one was issued, pretend they ran one
    // after the other: this one's service started at that completion.
    if (std::int64_t(start_ns - pi.last_finish) < 0)
      start_ns = pi.last_finish;
    pi.last_finish = now_ns;
    std::uint64_t st = std::int64_t(now_ns - start_ns) < 0 ? 0 : now_ns - start_ns;
    std::uint64_t sample = st > (fixed_max >> fixed_shift) ? fixed_max : st << fixed_shift; // min(st·1.0, max)
    std::uint64_t hst = ema(pi.hst.load(std::memory_order_relaxed), sample, weight(st));
    std::uint64_t stale =
        pi.last_finish + std::uint64_t(valid_count_.load(std::memory_order_relaxed)) * (hst >> fixed_shift);
    pi.begin_write();
    pi.outstanding.store(pi.outstanding.load(std::memory_order_relaxed) - 1, std::memory_order_release);
    pi.hst.store(hst, std::memory_order_release);
    pi.stale_after.store(stale, std::memory_order_release);
    pi.end_write();
  }

  /// `2 <base_weight> <threshold_multiplier> ` (weights[0] is the base weight).
  void group_status(std::string& out) const {
    mpath::detail::status_writer(out).number(2).number(weights_[0]).number(threshold_multiplier_);
  }
  /// INFO `<estimate ×1024> <outstanding> <stale_after ns> `; TABLE a constant `0 `.
  void path_status(path_index p, status_type type, std::string& out) const {
    mpath::detail::status_writer w(out);
    if (type == status_type::table) {
      w.number(0);
      return;
    }
    snapshot s = paths_[p].read();
    w.number(s.hst).number(s.outstanding).number(s.stale_after);
  }

  // ---- diagnostics and tests

  std::uint32_t base_weight() const noexcept { return weights_[0]; }
  std::uint32_t threshold_multiplier() const noexcept { return threshold_multiplier_; }
  /// The weight of the old estimate for a sample of `st_ns` (bucket st >> 24, the last one 0).
  std::uint32_t weight(std::uint64_t st_ns) const noexcept {
    std::uint64_t bucket = st_ns >> bucket_shift;
    return weights_[bucket < weight_count ? bucket : weight_count - 1];
  }
  std::uint64_t estimate(path_index p) const noexcept { return paths_[p].read().hst; }
  std::uint64_t outstanding(path_index p) const noexcept { return paths_[p].read().outstanding; }
  std::uint64_t stale_after(path_index p) const noexcept { return paths_[p].read().stale_after; }
  std::uint32_t repeat_count(path_index p) const noexcept { return paths_[p].repeat_count; }

  /// x^n in fixed point by squaring, each product rounded to nearest (x, result < 1.0 here).
  static constexpr std::uint64_t fixed_power(std::uint64_t x, unsigned n) noexcept {
    std::uint64_t result = fixed_one;
    constexpr std::uint64_t half = fixed_one / 2;
    while (n != 0) {
      if (n & 1)
        result = (result * x + half) >> fixed_shift;
      n >>= 1;
      if (n != 0)
        x = (x * x + half) >> fixed_shift;
    }
    return result;
  }

  /// The moving average: old·w + sample·(1 - w), rounded to nearest.
  static constexpr std::uint64_t ema(std::uint64_t old, std::uint64_t sample, std::uint64_t w) noexcept {
    return (old * w + sample * (fixed_one - w) + fixed_one / 2) >> fixed_shift;
  }

private:
  struct snapshot {
    std::uint64_t hst, outstanding, stale_after;
  };

  struct alignas(64) path_info {
    explicit path_info(std::uint32_t repeat) : repeat_count(repeat) {}
    // Only moved while paths are added, before any I/O.
    path_info(path_info&& o) noexcept
        : hst(o.hst.load()), outstanding(o.outstanding.load()), stale_after(o.stale_after.load()),
          last_finish(o.last_finish), repeat_count(o.repeat_count) {}

    /// A consistent triple without the lock (a sequence lock read). Acquire loads keep the
    /// second look at `seq` after the fields (no fences: TSan does not model them; on x86 these
    /// are plain loads anyway).
    snapshot read() const noexcept {
      for (;;) {
        std::uint32_t before = seq.load(std::memory_order_acquire);
        snapshot s{hst.load(std::memory_order_acquire), outstanding.load(std::memory_order_acquire),
                   stale_after.load(std::memory_order_acquire)};
        if ((before & 1) == 0 && seq.load(std::memory_order_relaxed) == before)
          return s;
      }
    }
    // Writers hold `lock`, so the sequence counter needs no read-modify-write. The odd value is
    // published before any field changes because every field store is a release store.
    void begin_write() noexcept { seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
    void end_write() noexcept { seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

    lock_type lock;                        // writers: start_io, end_io
    counter<std::uint32_t> seq{0};         // odd while a writer changes the fields below
    counter<std::uint64_t> hst{fixed_one}; // estimate, ns × 1024 (starts at 1 ns)
    counter<std::uint64_t> outstanding{0};
    counter<std::uint64_t> stale_after{0};
    std::uint64_t last_finish = 0; // under `lock`
    std::uint32_t repeat_count;    // immutable
  };

  using weight_table = std::array<std::uint32_t, weight_count>;

  /// weights[k] = base^(k+1) for k < 63; weights[63] = 0, so a sample of ~1.07 s or more
  /// replaces the history.
  static weight_table make_weights(std::uint32_t base) noexcept {
    weight_table w{};
    for (std::size_t k = 0; k + 1 < weight_count; ++k)
      w[k] = std::uint32_t(fixed_power(base, unsigned(k + 1)));
    w[weight_count - 1] = 0;
    return w;
  }

  static std::int64_t diff(std::uint64_t a, std::uint64_t b) noexcept { return std::int64_t(a - b); }

  /// Negative when `a` is the better path, positive when `b` is, 0 for no difference; the
  /// kernel's rules (kernel-target.md §5.4) on its integer types.
  std::int64_t compare(const snapshot& a, const snapshot& b, std::uint64_t now) const noexcept {
    std::uint64_t h1 = a.hst, h2 = b.hst;
    std::uint64_t n = threshold_multiplier_;
    bool over_threshold = h1 > h2 ? h1 > n * h2 : h2 > n * h1;
    if (!over_threshold) // estimates too close to matter: fewer outstanding wins
      return diff(a.outstanding, b.outstanding);

    bool idle1 = a.outstanding == 0, idle2 = b.outstanding == 0;
    // An idle stale path wins (a retry of a slow path); of two idle paths the staler one.
    if ((idle1 && a.stale_after < now) || (idle2 && b.stale_after < now) || (idle1 && idle2))
      return diff(std::uint64_t(idle2) * a.stale_after, std::uint64_t(idle1) * b.stale_after);

    bool b_better;
    if (a.outstanding == b.outstanding) {
      b_better = h1 > h2;
    } else {
      if (a.outstanding >= max_in_flight || b.outstanding >= max_in_flight) {
        h1 >>= fixed_shift; // keeps (1 + outstanding) × estimate in 64 bits
        h2 >>= fixed_shift;
      }
      b_better = (1 + a.outstanding) * h1 > (1 + b.outstanding) * h2;
    }
    // A stale winner that is still loaded gets no more than its share by outstanding count.
    if (b_better)
      return b.stale_after < now ? diff(a.outstanding, b.outstanding) : 1;
    return a.stale_after < now ? diff(a.outstanding, b.outstanding) : -1;
  }

  weight_table weights_ = make_weights(default_base_weight);
  std::uint32_t threshold_multiplier_ = 0;
  lock_type lock_;                        // select, fail_path, reinstate_path
  detail::path_list list_;                // under lock_
  counter<std::uint32_t> valid_count_{0}; // written under lock_, read by end_io
  std::vector<path_info> paths_;
};

/// historical-service-time shared by threads: spinlocks, atomics and a sequence lock.
using historical_service_time = basic_historical_service_time<>;

} // namespace mpath::inline v0::selectors
