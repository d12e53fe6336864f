#pragma once
// "round-robin" (kernel-target.md §5.1): rotate through the valid paths, one I/O each, or
// repeat_count I/Os each (product.md §5).

#include <mpath/detail/sync.hpp>
#include <mpath/selectors/detail/channel_core.hpp>

namespace mpath::inline v0::selectors {

/// Arguments: none for the selector (any given are ignored, as the kernel does); per path
/// `[repeat_count]` (default 1, stored as given and honoured, product.md §5).
///
/// Channels (`multipath::channel`, one per submitting thread): each channel rotates its own copy
/// of the valid list with its own repeat state (detail/channel_core.hpp), so a select through a
/// channel writes nothing shared: it reads the path-change generation and, only when a path
/// changed, copies the change in under the lock. One channel doing all the I/O rotates exactly as
/// the kernel's one list; two channels each rotate in the kernel's order over their own I/O, so
/// every path still gets an equal share of each channel's I/O (±1 per channel).
///
/// Without a channel, `select(nr_bytes, now)` rotates the selector's own list under a lock
/// (`Sync::lock_type`: a spinlock with `threaded_sync`, nothing with `single_thread_sync`), the
/// kernel's shape. There are no per-I/O counters, hence no accounting (the kernel's round-robin
/// has none either).
///
/// Thread safety (threaded_sync): select, fail_path, reinstate_path, attach and detach may run
/// concurrently; a channel is used by one thread at a time; create/add_path before any of them;
/// the status writers may run at any time after add_path. With single_thread_sync every call must
/// come from one thread at a time.
template <SelectorSync Sync = threaded_sync> class basic_round_robin {
public:
  using sync_type = Sync;
  using lock_type = typename Sync::lock_type;
  /// The same selector with another sync policy (rebind_selectors_t).
  template <SelectorSync S> using rebind_sync = basic_round_robin<S>;
  /// A channel's state in this selector (ChannelSelector).
  using channel_state = detail::channel_state<Sync, void>;

  static constexpr std::string_view name = "round-robin";
  static constexpr unsigned table_args = 1;
  static constexpr unsigned info_args = 0;

  result<void> create(std::span<const std::string>) { return {}; } // selector args are ignored

  result<void> add_path(std::span<const std::string> args) {
    auto repeat = detail::read_repeat_count(args, 1, "round-robin ps");
    if (!repeat)
      return std::move(repeat).err();
    core_.add_path(*repeat);
    return {};
  }

  path_index select(std::uint64_t, std::uint64_t) noexcept { return core_.select_shared(head); }
  path_index select(channel_state& c, std::uint64_t, std::uint64_t) noexcept { return core_.select(c, head); }

  void fail_path(path_index p) noexcept { core_.fail_path(p); }
  int reinstate_path(path_index p) noexcept {
    core_.reinstate_path(p); // at the head: a reinstated path is chosen next
    return 0;
  }

  void attach(channel_state& c) { core_.attach(c); }
  void detach(channel_state& c) noexcept { core_.detach(c); }
  void start_io(channel_state&, path_index, std::uint64_t) noexcept {}
  void end_io(channel_state&, path_index, std::uint64_t, std::uint64_t, std::uint64_t) noexcept {}

  void group_status(std::string& out) const { mpath::detail::status_writer(out).number(0); }
  void path_status(path_index p, status_type type, std::string& out) const {
    if (type == status_type::table)
      mpath::detail::status_writer(out).number(core_.repeat_count(p));
  }

  std::uint32_t repeat_count(path_index p) const noexcept { return core_.repeat_count(p); }

private:
  static std::size_t head(std::span<const path_index>) noexcept { return 0; }

  detail::channel_core<Sync, void> core_{/*reinstate_at_head=*/true};
};

/// round-robin shared by threads: a spinlock per selector.
using round_robin = basic_round_robin<>;

} // namespace mpath::inline v0::selectors
