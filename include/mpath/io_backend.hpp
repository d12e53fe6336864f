#pragma once
// The IoBackend concept: how the engine reaches the product's transport.

#include <mpath/error.hpp>
#include <mpath/io.hpp>

#include <concepts>
#include <cstdint>
#include <string_view>

namespace mpath::inline v0 {

/// A path event (the kernel's PATH_FAILED / PATH_REINSTATED uevents).
struct path_event {
  enum class kind : std::uint8_t { path_failed, path_reinstated };
  kind type;
  std::string_view device;      ///< the path's table token; valid while the engine lives
  std::uint32_t nr_valid_paths; ///< after the change

  friend bool operator==(const path_event&, const path_event&) = default;
};

/// Requirements on an I/O backend.
///
// clang-format off
/// | expression | semantics |
/// |---|---|
/// | `B::handle_type` | what a path needs to reach its device; movable |
/// | `B::io_type` | the caller's I/O, derived from `mpath::io_context` |
/// | `b.open_path(device)` | cold: make a handle for a table's path token, or an error (`error getting device`) |
/// | `b.submit(h, io)` | start `io` on the path; later call the engine's `complete(io, status)` exactly once, from any thread, possibly before `submit` returns |
/// | `b.io_done(io, status)` | the engine has finished `io` with `status`; it is the caller's again |
/// | `b.probe(h)` | synchronously read one block through the path (kernel-target.md §4.9) |
// clang-format on
///
/// Optional members, used when present: `b.busy(h)` (path back-pressure, §4.10),
/// `b.kick_requeue()` (request mode: re-drive the requeue list now),
/// `b.on_event(const path_event&)` (path events, delivered from deferred work).
/// None of these is ever called with the engine lock held.
template <class B>
concept IoBackend = requires(B& b, typename B::handle_type& h, typename B::io_type& io, blk_status st,
                             std::string_view device) {
  typename B::handle_type;
  typename B::io_type;
  requires std::derived_from<typename B::io_type, io_context>;
  requires std::move_constructible<typename B::handle_type>;
  { b.open_path(device) } -> std::same_as<result<typename B::handle_type>>;
  { b.submit(h, io) }
  noexcept;
  { b.io_done(io, st) }
  noexcept;
  { b.probe(h) }
  noexcept->std::same_as<blk_status>;
};

} // namespace mpath::inline v0
