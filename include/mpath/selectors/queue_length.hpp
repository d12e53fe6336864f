#pragma once
// "queue-length" (kernel-target.md §5.2): the valid path with the fewest I/Os in flight.

#include <mpath/detail/sync.hpp>
#include <mpath/selectors/detail/channel_core.hpp>

#include <atomic>
#include <cstdint>

namespace mpath::inline v0::selectors {

/// Arguments: none for the selector (ignored); per path `[repeat_count]` (default 1, stored as
/// given and honoured, product.md §5).
///
/// Channels (`multipath::channel`, one per submitting thread): each channel counts the I/Os it put
/// in flight on each path, on cache lines of its own, and picks the valid path with the fewest of
/// *its own* in flight, rotating its own copy of the valid list for ties (detail/channel_core.hpp).
/// A select + start_io + end_io through a channel writes no line another submitting thread
/// writes. What this means:
///   - one channel doing all the I/O (or no channel: `select(nr_bytes, now)`) chooses exactly as
///     the kernel: its counts are the path's counts;
///   - with several channels, the path a channel picks has at most as many I/Os in flight as the
///     least loaded path plus the I/Os the *other* channels have in flight on it, and over equal
///     paths the device's per-path counts stay within one I/O per channel of each other; a slow
///     path collects in-flight I/O in every channel, so each of them turns away from it.
/// INFO prints the sum over the channels, the kernel's count.
///
/// Without a channel, select runs the selector's own channel under a lock (`Sync::lock_type`: a
/// spinlock with `threaded_sync`, nothing with `single_thread_sync`); its counters are
/// `Sync::counter`s (relaxed atomics, or plain integers for one thread).
///
/// Thread safety (threaded_sync): select, fail_path, reinstate_path, start_io, end_io, attach and
/// detach may run concurrently; a channel selects from one thread at a time, and its I/O may end
/// on any thread; create/add_path before any of them; the status writers at any time after
/// add_path. With single_thread_sync every call must come from one thread at a time.
template <SelectorSync Sync = threaded_sync> class basic_queue_length {
public:
  using sync_type = Sync;
  using lock_type = typename Sync::lock_type;
  /// The same selector with another sync policy (rebind_selectors_t).
  template <SelectorSync S> using rebind_sync = basic_queue_length<S>;
  /// A channel's state in this selector (ChannelSelector).
  using channel_state = detail::channel_state<Sync, detail::io_counts<Sync, std::int64_t>>;

  static constexpr std::string_view name = "queue-length";
  static constexpr unsigned table_args = 1;
  static constexpr unsigned info_args = 1;

  result<void> create(std::span<const std::string>) { return {}; }

  result<void> add_path(std::span<const std::string> args) {
    auto repeat = detail::read_repeat_count(args, 1, "queue-length ps");
    if (!repeat)
      return std::move(repeat).err();
    core_.add_path(*repeat);
    return {};
  }

  path_index select(std::uint64_t, std::uint64_t) noexcept { return core_.select_shared(least_loaded{core_.shared()}); }
  path_index select(channel_state& c, std::uint64_t, std::uint64_t) noexcept {
    return core_.select(c, least_loaded{c});
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
  void start_io(channel_state& c, path_index p, std::uint64_t) noexcept { c.start(p, 1); }
  void end_io(channel_state& c, path_index p, std::uint64_t, std::uint64_t, std::uint64_t) noexcept { c.end(p, 1); }

  void group_status(std::string& out) const { mpath::detail::status_writer(out).number(0); }
  void path_status(path_index p, status_type type, std::string& out) const {
    mpath::detail::status_writer w(out);
    if (type == status_type::info)
      w.signed_number(std::int32_t(in_flight(p)));
    else
      w.number(core_.repeat_count(p));
  }

  /// I/Os in flight on `p`, over every channel.
  std::int64_t in_flight(path_index p) const noexcept { return core_.sum(p); }

private:
  /// The first valid path with the fewest in flight in channel `c`.
  struct least_loaded {
    channel_state& c;
    std::size_t operator()(std::span<const path_index> valid) const noexcept {
      std::size_t best = 0;
      std::int64_t best_count = c.in_flight(valid[0]);
      for (std::size_t i = 1; i < valid.size() && best_count != 0; ++i) { // nothing beats an idle path
        std::int64_t n = c.in_flight(valid[i]);
        if (n < best_count) {
          best = i;
          best_count = n;
        }
      }
      return best;
    }
  };

  detail::channel_core<Sync, detail::io_counts<Sync, std::int64_t>> core_{/*reinstate_at_head=*/false};
};

/// queue-length shared by threads: a spinlock and atomic counters.
using queue_length = basic_queue_length<>;

} // namespace mpath::inline v0::selectors
