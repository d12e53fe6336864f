#pragma once
// "historical-service-time" (kernel-target.md §5.4): estimates each path's service time from
// the service times it has measured (a time-weighted exponential moving average in 10-bit fixed
// point) and sends the I/O where (1 + outstanding) × estimate is smallest, retrying "stale" idle
// paths now and then in case they got better.

#include <mpath/detail/sync.hpp>
#include <mpath/selectors/detail/channel_core.hpp>

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
/// Channels (`multipath::channel`, one per submitting thread): each channel keeps, per path and
/// on a cache line of its own, its own outstanding count and its own estimate, learnt from the
/// service times of *its own* completions, and rotates its own copy of the valid list
/// (detail/channel_core.hpp). So a channel selects exactly as a kernel selector would that saw
/// every path change and only this channel's I/O (tests/selectors/channel_test.cpp checks this
/// step by step); one channel doing all the I/O, or no channel at all, is the kernel's selector.
/// With several channels each estimate is drawn from fewer samples of the same path, and a path's
/// outstanding count in a channel leaves out the other channels' I/O, as in queue-length. INFO
/// prints the outstanding I/O summed over the channels and the estimate and stale time of the
/// channel that last completed I/O on the path.
///
/// Locking: the selector lock (`Sync::lock_type`) guards path changes and the channel list; a
/// channel's select takes it only when a path changed since its last select. A channel's record
/// of a path has a lock of its own for end_io (the moving average needs the previous completion
/// time, so an end_io is a read-modify-write of four fields, and completions may come from any
/// thread) and a sequence counter, so that select reads a consistent (estimate, outstanding,
/// stale_after) triple without taking it. Per I/O through a channel that is one uncontended
/// exchange on the channel's own line. Without a channel, select runs the selector's own channel
/// under the selector lock.
///
/// With `threaded_sync` (the default, `historical_service_time`) the locks are spinlocks
/// (mpath::spinlock) and the counters atomics; with `single_thread_sync` they are `null_lock` and
/// plain integers (the sequence counter is then a plain number that a reader always finds even),
/// so an I/O costs no atomic instruction.
///
/// Thread safety (threaded_sync): select, fail_path, reinstate_path, start_io, end_io, attach and
/// detach may run concurrently; a channel selects from one thread at a time, and its I/O may end
/// on any thread; create/add_path before any of them; the status writers at any time after
/// add_path. With single_thread_sync every call must come from one thread at a time.
template <SelectorSync Sync = threaded_sync> class basic_historical_service_time {
  template <class T> using counter = typename Sync::template counter<T>;
  struct path_record;

public:
  using sync_type = Sync;
  using lock_type = typename Sync::lock_type;
  /// The same selector with another sync policy (rebind_selectors_t).
  template <SelectorSync S> using rebind_sync = basic_historical_service_time<S>;
  /// A channel's state in this selector (ChannelSelector).
  using channel_state = detail::channel_state<Sync, path_record>;

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
    repeat_counts_.push_back(*repeat);
    core_.add_path(0); // stored, not honoured (above)
    return {};
  }

  path_index select(std::uint64_t, std::uint64_t now_ns) noexcept {
    return core_.select_shared(least_expected{*this, core_.shared(), now_ns});
  }
  path_index select(channel_state& c, std::uint64_t, std::uint64_t now_ns) noexcept {
    return core_.select(c, least_expected{*this, c, now_ns});
  }

  void fail_path(path_index p) noexcept { core_.fail_path(p); }
  int reinstate_path(path_index p) noexcept {
    core_.reinstate_path(p); // at the tail
    return 0;
  }

  void attach(channel_state& c) { core_.attach(c); }
  void detach(channel_state& c) noexcept { core_.detach(c); }

  void start_io(path_index p, std::uint64_t n) noexcept { start_io(core_.shared(), p, n); }
  void end_io(path_index p, std::uint64_t n, std::uint64_t start_ns, std::uint64_t now_ns) noexcept {
    end_io(core_.shared(), p, n, start_ns, now_ns);
  }
  void start_io(channel_state& c, path_index p, std::uint64_t) noexcept { c.start(p, std::uint64_t{1}); }

  void end_io(channel_state& c, path_index p, std::uint64_t, std::uint64_t start_ns, std::uint64_t now_ns) noexcept {
    path_record& r = c.entry(p);
    std::lock_guard guard(r.lock);
    // If an earlier I/O on this path finished after this one was issued, pretend they ran one
    // after the other: this one's service started at that completion.
    std::uint64_t last = r.last_finish.load(std::memory_order_relaxed);
    if (std::int64_t(start_ns - last) < 0)
      start_ns = last;
    std::uint64_t st = std::int64_t(now_ns - start_ns) < 0 ? 0 : now_ns - start_ns;
    std::uint64_t sample = st > (fixed_max >> fixed_shift) ? fixed_max : st << fixed_shift; // min(st·1.0, max)
    std::uint64_t hst = ema(r.hst.load(std::memory_order_relaxed), sample, weight(st));
    std::uint64_t stale = now_ns + std::uint64_t(core_.valid_count()) * (hst >> fixed_shift);
    r.begin_write();
    r.ended.store(r.ended.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    r.hst.store(hst, std::memory_order_release);
    r.stale_after.store(stale, std::memory_order_release);
    r.last_finish.store(now_ns, std::memory_order_release);
    r.end_write();
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
    snapshot s = latest(p);
    w.number(s.hst).number(core_.sum(p)).number(s.stale_after);
  }

  // ---- diagnostics and tests

  std::uint32_t base_weight() const noexcept { return weights_[0]; }
  std::uint32_t threshold_multiplier() const noexcept { return threshold_multiplier_; }
  /// The weight of the old estimate for a sample of `st_ns` (bucket st >> 24, the last one 0).
  std::uint32_t weight(std::uint64_t st_ns) const noexcept {
    std::uint64_t bucket = st_ns >> bucket_shift;
    return weights_[bucket < weight_count ? bucket : weight_count - 1];
  }
  /// The estimate and stale time INFO prints: those of the channel that last completed I/O on `p`.
  std::uint64_t estimate(path_index p) const noexcept { return latest(p).hst; }
  std::uint64_t stale_after(path_index p) const noexcept { return latest(p).stale_after; }
  /// I/O outstanding on `p`, over every channel.
  std::uint64_t outstanding(path_index p) const noexcept { return core_.sum(p); }
  std::uint32_t repeat_count(path_index p) const noexcept { return repeat_counts_[p]; }

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
    std::uint64_t hst, outstanding, stale_after, last_finish;
  };

  /// One path in one channel: its outstanding count as io_counts, and its estimate.
  struct alignas(64) path_record {
    std::uint64_t in_flight() const noexcept {
      return started.load(std::memory_order_relaxed) - ended.load(std::memory_order_relaxed);
    }
    void start(std::uint64_t n, bool many_starters) noexcept {
      if (many_starters)
        started.fetch_add(n, std::memory_order_relaxed);
      else
        started.store(started.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    /// A consistent record without the lock (a sequence lock read). Acquire loads keep the
    /// second look at `seq` after the fields (no fences: TSan does not model them; on x86 these
    /// are plain loads anyway).
    snapshot read() const noexcept {
      for (;;) {
        std::uint32_t before = seq.load(std::memory_order_acquire);
        std::uint64_t started_now = started.load(std::memory_order_acquire);
        snapshot s{hst.load(std::memory_order_acquire), started_now - ended.load(std::memory_order_acquire),
                   stale_after.load(std::memory_order_acquire), last_finish.load(std::memory_order_acquire)};
        if ((before & 1) == 0 && seq.load(std::memory_order_relaxed) == before)
          return s;
      }
    }
    // Writers hold `lock`, so the sequence counter needs no read-modify-write. The odd value is
    // published before any field changes because every field store is a release store.
    void begin_write() noexcept { seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
    void end_write() noexcept { seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

    counter<std::uint64_t> started{0};     ///< the channel's thread (any thread: the shared one)
    counter<std::uint64_t> ended{0};       ///< end_io, under `lock`
    lock_type lock;                        ///< end_io
    counter<std::uint32_t> seq{0};         ///< odd while end_io changes the fields below
    counter<std::uint64_t> hst{fixed_one}; ///< estimate, ns × 1024 (starts at 1 ns)
    counter<std::uint64_t> stale_after{0};
    counter<std::uint64_t> last_finish{0};
  };

  /// The first valid path with the least expected service time in channel `c` (compare below).
  struct least_expected {
    const basic_historical_service_time& self;
    const channel_state& c;
    std::uint64_t now;
    std::size_t operator()(std::span<const path_index> valid) const noexcept {
      std::size_t best = 0;
      snapshot best_snap = c.entry(valid[0]).read();
      for (std::size_t i = 1; i < valid.size(); ++i) {
        snapshot cand = c.entry(valid[i]).read();
        if (self.compare(cand, best_snap, now) < 0) {
          best = i;
          best_snap = cand;
        }
      }
      return best;
    }
  };

  /// The record of the channel that last completed I/O on `p` (status only).
  snapshot latest(path_index p) const noexcept {
    snapshot best{fixed_one, 0, 0, 0};
    bool found = false;
    core_.for_each_channel([&](const channel_state& c) {
      snapshot s = c.entry(p).read();
      if (!found || std::int64_t(s.last_finish - best.last_finish) > 0)
        best = s;
      found = true;
    });
    return best;
  }

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
  std::vector<std::uint32_t> repeat_counts_;
  detail::channel_core<Sync, path_record> core_{/*reinstate_at_head=*/false};
};

/// historical-service-time shared by threads: spinlocks, atomics and sequence locks.
using historical_service_time = basic_historical_service_time<>;

} // namespace mpath::inline v0::selectors
