#pragma once
// A path: one route to the storage (a SCSI device, an NVMe controller's queue pair, a socket...),
// carrying the backend's handle for it. The kernel's `struct pgpath`.

#include <mpath/path_selector.hpp>

#include <atomic>
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace mpath::inline v0 {

/// Requirements on a path type: its table token, the backend handle, and its state.
template <class P>
concept Path = requires(P& p, const P& cp) {
  typename P::handle_type;
  { cp.device() }
  noexcept->std::convertible_to<std::string_view>;
  { p.handle() }
  noexcept->std::same_as<typename P::handle_type&>;
  { cp.is_active() }
  noexcept->std::same_as<bool>;
  { cp.fail_count() }
  noexcept->std::convertible_to<std::uint32_t>;
};

/// The engine's path. `Handle` is whatever the backend needs to reach the path, and may carry the
/// product's own per-path data.
///
/// Thread safety: `is_active` may be read from any thread; state changes are made by the engine
/// under its lock.
template <class Handle> class basic_path {
public:
  using handle_type = Handle;

  basic_path(std::string device, Handle handle, path_index index,
             void* group) noexcept(std::is_nothrow_move_constructible_v<Handle>)
      : device_(std::move(device)), handle_(std::move(handle)), index_(index), group_(group) {}
  basic_path(const basic_path&) = delete;
  basic_path& operator=(const basic_path&) = delete;

  const std::string& device() const noexcept { return device_; }
  Handle& handle() noexcept { return handle_; }
  const Handle& handle() const noexcept { return handle_; }
  bool is_active() const noexcept { return active_.load(std::memory_order_acquire); }
  std::uint32_t fail_count() const noexcept { return fail_count_.load(std::memory_order_relaxed); }
  /// Position in its priority group, as the group's selector knows it.
  path_index index() const noexcept { return index_; }

  // Engine-only mutators (called under the engine lock).
  void set_active(bool a) noexcept { active_.store(a, std::memory_order_release); }
  void count_failure() noexcept { fail_count_.fetch_add(1, std::memory_order_relaxed); }
  void* group() const noexcept { return group_; }
  /// Path errors since the last success or failure of the path (engine option
  /// path_failure_threshold); returns the count with this one.
  std::uint32_t note_path_error() noexcept { return consecutive_errors_.fetch_add(1, std::memory_order_relaxed) + 1; }
  /// Any thread, on a successful completion: a store only when there is something to forget, so
  /// the steady state writes nothing here.
  void forget_path_errors() noexcept {
    if (consecutive_errors_.load(std::memory_order_relaxed) != 0)
      consecutive_errors_.store(0, std::memory_order_relaxed);
  }
  std::uint32_t consecutive_errors() const noexcept { return consecutive_errors_.load(std::memory_order_relaxed); }
  /// This path's own path_failure_threshold (seed 003 had a failure-maximum per path, product.md
  /// §9); 0 = the engine's option. Any thread, any time; read only when the path errs.
  void set_failure_threshold(std::uint32_t n) noexcept { failure_threshold_.store(n, std::memory_order_relaxed); }
  std::uint32_t failure_threshold() const noexcept { return failure_threshold_.load(std::memory_order_relaxed); }

private:
  std::string device_;
  Handle handle_;
  path_index index_;
  void* group_;
  std::atomic<bool> active_{true};
  std::atomic<std::uint32_t> fail_count_{0};
  std::atomic<std::uint32_t> consecutive_errors_{0};
  std::atomic<std::uint32_t> failure_threshold_{0};
};

} // namespace mpath::inline v0
