#pragma once
// "service-time" (kernel-target.md §5.3): the valid path whose in-flight bytes, scaled by its
// relative throughput, promise the shortest service time for the incoming I/O.

#include <mpath/detail/sync.hpp>
#include <mpath/selectors/detail/channel_core.hpp>

#include <atomic>
#include <cstdint>
#include <vector>

namespace mpath::inline v0::selectors {

/// Arguments: none for the selector (ignored); per path `[repeat_count [relative_throughput]]`
/// (defaults 1 and 1; throughput 0..100; repeat_count stored as given and honoured, product.md §5).
///
/// Channels (`multipath::channel`, one per submitting thread): as queue-length
/// (queue_length.hpp), with bytes. Each channel totals the bytes it put in flight on each path on
/// lines of its own and compares paths by *its own* totals, rotating its own copy of the valid
/// list (detail/channel_core.hpp); one channel doing all the I/O (or no channel) chooses exactly
/// as the kernel, and with several channels the path a channel picks is off the device-wide best
/// by at most what the other channels have in flight. INFO prints the sum over the channels.
///
/// Without a channel, select runs the selector's own channel under a lock (`Sync::lock_type`: a
/// spinlock with `threaded_sync`, nothing with `single_thread_sync`); its byte totals are
/// `Sync::counter`s.
///
/// The comparison is mathematically correct 64-bit arithmetic (product.md §5): the kernel returns
/// differences through a 32-bit int and can flip the sign for large loads; we do not.
///
/// Thread safety (threaded_sync): select, fail_path, reinstate_path, start_io, end_io, attach and
/// detach may run concurrently; a channel selects from one thread at a time, and its I/O may end
/// on any thread; create/add_path before any of them; the status writers at any time after
/// add_path. With single_thread_sync every call must come from one thread at a time.
template <SelectorSync Sync = threaded_sync> class basic_service_time {
public:
  using sync_type = Sync;
  using lock_type = typename Sync::lock_type;
  /// The same selector with another sync policy (rebind_selectors_t).
  template <SelectorSync S> using rebind_sync = basic_service_time<S>;
  /// A channel's state in this selector (ChannelSelector).
  using channel_state = detail::channel_state<Sync, detail::io_counts<Sync, std::uint64_t>>;

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
    relative_throughput_.push_back(throughput);
    core_.add_path(*repeat);
    return {};
  }

  path_index select(std::uint64_t nr_bytes, std::uint64_t) noexcept {
    return core_.select_shared(shortest{*this, core_.shared(), nr_bytes});
  }
  path_index select(channel_state& c, std::uint64_t nr_bytes, std::uint64_t) noexcept {
    return core_.select(c, shortest{*this, c, nr_bytes});
  }

  void fail_path(path_index p) noexcept { core_.fail_path(p); }
  int reinstate_path(path_index p) noexcept {
    core_.reinstate_path(p); // at the tail
    return 0;
  }

  void attach(channel_state& c) { core_.attach(c); }
  void detach(channel_state& c) noexcept { core_.detach(c); }

  void start_io(path_index p, std::uint64_t nr_bytes) noexcept { start_io(core_.shared(), p, nr_bytes); }
  void end_io(path_index p, std::uint64_t nr_bytes, std::uint64_t start_ns, std::uint64_t now_ns) noexcept {
    end_io(core_.shared(), p, nr_bytes, start_ns, now_ns);
  }
  void start_io(channel_state& c, path_index p, std::uint64_t nr_bytes) noexcept { c.start(p, nr_bytes); }
  void end_io(channel_state& c, path_index p, std::uint64_t nr_bytes, std::uint64_t, std::uint64_t) noexcept {
    c.end(p, nr_bytes);
  }

  void group_status(std::string& out) const { mpath::detail::status_writer(out).number(0); }
  void path_status(path_index p, status_type type, std::string& out) const {
    mpath::detail::status_writer w(out);
    if (type == status_type::info) // the kernel prints the byte count as a signed 32-bit value
      w.signed_number(std::int32_t(std::uint32_t(in_flight_bytes(p))));
    else
      w.number(core_.repeat_count(p));
    w.number(relative_throughput_[p]);
  }

  /// Bytes in flight on `p`, over every channel.
  std::uint64_t in_flight_bytes(path_index p) const noexcept { return core_.sum(p); }

  /// Negative when path a is the better choice for an I/O of `incoming` bytes, by the device-wide
  /// byte totals.
  int compare(path_index a, path_index b, std::uint64_t incoming) const noexcept {
    return compare(a, in_flight_bytes(a), b, in_flight_bytes(b), incoming);
  }

  /// Negative when path a, with `sz1` bytes in flight, is the better choice over path b with
  /// `sz2` for an I/O of `incoming` bytes.
  int compare(path_index a, std::uint64_t sz1, path_index b, std::uint64_t sz2, std::uint64_t incoming) const noexcept {
    std::uint64_t tp1 = relative_throughput_[a], tp2 = relative_throughput_[b];
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
  /// The first valid path with the shortest estimated service time in channel `c`.
  struct shortest {
    const basic_service_time& self;
    channel_state& c;
    std::uint64_t incoming;
    std::size_t operator()(std::span<const path_index> valid) const noexcept {
      std::size_t best = 0;
      std::uint64_t best_bytes = c.in_flight(valid[0]);
      for (std::size_t i = 1; i < valid.size(); ++i) {
        std::uint64_t bytes = c.in_flight(valid[i]);
        if (self.compare(valid[i], bytes, valid[best], best_bytes, incoming) < 0) { // only strictly better
          best = i;
          best_bytes = bytes;
        }
      }
      return best;
    }
  };

  std::vector<std::uint32_t> relative_throughput_;
  detail::channel_core<Sync, detail::io_counts<Sync, std::uint64_t>> core_{/*reinstate_at_head=*/false};
};

/// service-time shared by threads: a spinlock and atomic byte counters.
using service_time = basic_service_time<>;

} // namespace mpath::inline v0::selectors
