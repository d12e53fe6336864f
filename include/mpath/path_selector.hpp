#pragma once
// The PathSelector concept: the kernel's path-selector interface (kernel-target.md §5) as a
// C++20 concept. A selector only knows its paths by their index in the priority group.

#include <mpath/error.hpp>

#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mpath::inline v0 {

/// A path's position inside its priority group (0-based, table order).
using path_index = std::uint32_t;
inline constexpr path_index no_path = ~path_index{0};

/// Which of the two status forms is being written (dmsetup status / dmsetup table).
enum class status_type { info, table };

/// Requirements on a path selector.
///
/// - `create` gets the selector arguments of the group; `add_path` is called once per path in
///   table order with that path's per-path arguments. Both run before any I/O, on one thread, and
///   report the kernel's own error text.
/// - `select`, and the optional `start_io`/`end_io`, run concurrently from many threads without
///   any engine lock; `fail_path`/`reinstate_path` run under the engine lock, concurrently with
///   them. A selector never returns a failed path.
/// - Status writers append words each followed by one blank, byte-exact with the kernel.
template <class S>
concept PathSelector = std::default_initializable<S> &&
    requires(S& s, const S& cs, std::span<const std::string> args, path_index p, std::uint64_t nr_bytes,
             std::uint64_t now_ns, std::string& out) {
  { S::name } -> std::convertible_to<std::string_view>;
  { S::table_args } -> std::convertible_to<unsigned>;
  { S::info_args } -> std::convertible_to<unsigned>;
  { s.create(args) } -> std::same_as<result<void>>;
  { s.add_path(args) } -> std::same_as<result<void>>;
  { s.select(nr_bytes, now_ns) }
  noexcept->std::same_as<path_index>;
  { s.fail_path(p) }
  noexcept;
  { s.reinstate_path(p) }
  noexcept->std::same_as<int>;
  cs.group_status(out);
  cs.path_status(p, status_type::info, out);
};

/// Selectors that account in-flight work implement both of these (kernel start_io/end_io).
template <class S>
concept AccountingSelector = PathSelector<S> && requires(S& s, path_index p, std::uint64_t nr_bytes, std::uint64_t t) {
  { s.start_io(p, nr_bytes) }
  noexcept;
  { s.end_io(p, nr_bytes, t, t) }
  noexcept; // (path, bytes, start_ns, now_ns)
};

/// Selectors with per-channel state (one channel per submitting thread, `multipath::channel`):
/// selecting and accounting through a channel writes nothing that another channel writes.
///
/// - `attach` readies a channel's state (it may allocate) and `detach` forgets it; the state
///   stays at one address in between, and is detached with none of its I/O in flight.
/// - `select(c, ...)` runs on one thread at a time per channel, concurrently with other channels,
///   the channel-less `select` and path changes; it never returns a path whose `fail_path`
///   happened before it started. One channel doing all the I/O selects as the channel-less one.
/// - `start_io(c, ...)` follows a `select(c, ...)` that chose the path; the matching
///   `end_io(c, ...)` may run on any thread.
template <class S>
concept ChannelSelector = PathSelector<S> &&
    requires(S& s, typename S::channel_state& c, path_index p, std::uint64_t n) {
  s.attach(c);
  { s.detach(c) }
  noexcept;
  { s.select(c, n, n) }
  noexcept->std::same_as<path_index>;
  { s.start_io(c, p, n) }
  noexcept;
  { s.end_io(c, p, n, n, n) }
  noexcept; // (channel, path, bytes, start_ns, now_ns)
};

} // namespace mpath::inline v0
