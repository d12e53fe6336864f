#pragma once
// What travels on the I/O path: block statuses (kernel numbering), the per-I/O context the engine
// keeps inside the caller's I/O object, and the answers the engine gives for an I/O.

#include <cstdint>
#include <string_view>

namespace mpath::inline v0 {

/// Completion status of an I/O, numbered as the kernel's blk_status_t (kernel-target.md §4.4).
enum class blk_status : std::uint8_t {
  ok = 0,
  notsupp = 1,
  timeout = 2,
  nospc = 3,
  transport = 4,
  target = 5,
  resv_conflict = 6,
  medium = 7,
  protection = 8,
  resource = 9,
  ioerr = 10,
  again = 12,
  dev_resource = 13,
  zone_open_resource = 14,
  zone_active_resource = 15,
  offline = 16,
  duration_limit = 17,
  inval = 19,
};

/// True when another path might succeed where this one failed (the kernel's blk_path_error).
constexpr bool is_path_error(blk_status s) noexcept {
  switch (s) {
  case blk_status::ok:
  case blk_status::notsupp:
  case blk_status::nospc:
  case blk_status::target:
  case blk_status::resv_conflict:
  case blk_status::medium:
  case blk_status::protection: return false;
  default: return true;
  }
}

constexpr std::string_view to_string(blk_status s) noexcept {
  switch (s) {
  case blk_status::ok: return "ok";
  case blk_status::notsupp: return "notsupp";
  case blk_status::timeout: return "timeout";
  case blk_status::nospc: return "nospc";
  case blk_status::transport: return "transport";
  case blk_status::target: return "target";
  case blk_status::resv_conflict: return "resv_conflict";
  case blk_status::medium: return "medium";
  case blk_status::protection: return "protection";
  case blk_status::resource: return "resource";
  case blk_status::ioerr: return "ioerr";
  case blk_status::again: return "again";
  case blk_status::dev_resource: return "dev_resource";
  case blk_status::zone_open_resource: return "zone_open_resource";
  case blk_status::zone_active_resource: return "zone_active_resource";
  case blk_status::offline: return "offline";
  case blk_status::duration_limit: return "duration_limit";
  case blk_status::inval: return "inval";
  }
  return "unknown";
}

/// The engine's bookkeeping for one I/O; the caller's I/O type derives from it. 40 bytes on 64-bit
/// targets, within product.md §7's 64-byte budget (asserted below).
struct io_context {
  void* path_ = nullptr;       ///< path the I/O was mapped to (engine-owned)
  io_context* next_ = nullptr; ///< link in the engine's queues (engine-owned)
  std::uint64_t nr_bytes = 0;  ///< size of the I/O; set by the caller before submit
  std::uint64_t start_ns = 0;  ///< when it was mapped, for time-aware selectors (engine-owned)
  void* channel_ = nullptr;    ///< the channel state it was dispatched through (engine-owned)
};
// The whole per-I/O cost of the engine (product.md §7: at most 64 bytes). requeue_list.hpp borrows
// `next_` and `start_ns` while it holds an I/O the engine gave back, so it adds nothing.
static_assert(sizeof(io_context) <= 64, "the engine's per-I/O context must stay within 64 bytes");
static_assert(sizeof(io_context) == 5 * sizeof(std::uint64_t), "io_context grew: update io.hpp's comment");

/// What happened to an I/O handed to `submit` or `complete` (kernel-target.md §8).
enum class disposition : std::uint8_t {
  dispatched,    ///< sent to a path through the backend
  queued,        ///< held by the engine (bio mode); it will be dispatched or completed later
  requeue,       ///< request mode: resubmit it now (the kernel's REQUEUE)
  delay_requeue, ///< request mode: resubmit it after a delay, or when the engine kicks the requeue list
  completed,     ///< finished; the engine has called the backend's io_done
};

constexpr std::string_view to_string(disposition d) noexcept {
  switch (d) {
  case disposition::dispatched: return "dispatched";
  case disposition::queued: return "queued";
  case disposition::requeue: return "requeue";
  case disposition::delay_requeue: return "delay_requeue";
  case disposition::completed: return "completed";
  }
  return "unknown";
}

} // namespace mpath::inline v0
