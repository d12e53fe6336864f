#pragma once
// What the health layer did, as structured events, and their rendering in multipathd's words
// (product.md §8.7): a product can count and alert on the events, and `mpathctl log` prints the
// lines an operator already knows from multipathd's syslog.

#include <concepts>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mpath::inline v0::health {

/// One thing the health layer did or saw. Which fields are meaningful depends on `kind`; the
/// views are valid during the sink's `log` call only (the map name is the monitor's, the path
/// token the engine's), so a sink that keeps an event copies them.
struct health_event {
  enum class kind : std::uint8_t {
    checker_failed_path,      ///< the checker found `path` unusable and the monitor sent fail_path
    reinstated,               ///< the monitor sent reinstate_path for `path`
    remaining_active_paths,   ///< after each fail or reinstate caused or seen; `number` = valid paths
    hit_error_threshold,      ///< §8.4: `path` is held out (checker state `delayed`)
    reinstating_early,        ///< §8.4: a held `path` is the only usable path left
    reinstate_after_recovery, ///< §8.4: a held `path` stayed good for san_path_err_recovery_time
    entering_recovery,        ///< §8.6: no usable path; `number` = no_path_retry
    disable_queueing,         ///< §8.6: the recovery countdown ran out, fail_if_no_path sent
    recovered,                ///< §8.6: a path came back in recovery, queue_if_no_path sent again
    switch_group,             ///< §8.5: switch_group sent; `number` = the group
    reload,                   ///< §8.5: a regrouping reload (health_monitor::reload_if_wanted)
  };
  kind type;
  std::string_view map;  ///< the device's name
  std::string_view path; ///< the path's table token, when the event is about a path
  std::uint32_t number = 0;

  friend bool operator==(const health_event&, const health_event&) = default;
};

/// Appends `e` in multipathd's words (product.md §8.7), without a newline. The odd " : " of the
/// marginal-path lines is multipathd's own, kept because operators grep for it.
inline void format(const health_event& e, std::string& out) {
  using k = health_event::kind;
  switch (e.type) {
  case k::checker_failed_path:
    out.append("checker failed path ").append(e.path).append(" in map ").append(e.map);
    return;
  case k::reinstated: out.append(e.path).append(": reinstated"); return;
  case k::remaining_active_paths:
    out.append(e.map).append(": remaining active paths: ").append(std::to_string(e.number));
    return;
  case k::hit_error_threshold: out.append(e.path).append(" : hit error threshold. Delaying path reinstatement"); return;
  case k::reinstating_early: out.append(e.path).append(" : reinstating path early"); return;
  case k::reinstate_after_recovery: out.append(e.path).append(" : reinstate the path after err recovery time"); return;
  case k::entering_recovery:
    out.append(e.map).append(": Entering recovery mode: max_retries=").append(std::to_string(e.number));
    return;
  case k::disable_queueing: out.append(e.map).append(": Disable queueing"); return;
  case k::recovered: out.append(e.map).append(": Recovered to normal mode"); return;
  case k::switch_group: out.append(e.map).append(": switch to path group #").append(std::to_string(e.number)); return;
  case k::reload: out.append(e.map).append(": reload"); return;
  }
}

inline std::string to_string(const health_event& e) {
  std::string out;
  format(e, out);
  return out;
}

/// Requirements on a log sink.
///
// clang-format off
/// | expression | semantics |
/// |---|---|
/// | `s.log(e)` | `noexcept`. Record `e` (a `const health_event&`); called from the monitor's tick, from event delivery and from `set`/`start`/`stop`, possibly from several threads, never with a monitor lock held. Must not call back into the monitor |
// clang-format on
template <class S>
concept LogSink = requires(S& s, const health_event& e) {
  { s.log(e) }
  noexcept;
};

/// A sink that keeps the formatted lines, oldest first, until taken (mpathctl's `log`).
/// Thread safety: every member from any thread.
class vector_log_sink {
public:
  void log(const health_event& e) noexcept {
    std::string line;
    format(e, line);
    std::lock_guard guard(mutex_);
    lines_.push_back(std::move(line));
  }

  /// The lines logged since the last `take`, oldest first.
  std::vector<std::string> take() {
    std::lock_guard guard(mutex_);
    std::vector<std::string> out;
    out.swap(lines_);
    return out;
  }

  /// The same lines, left in place: for an observer that must not take them from the reader.
  std::vector<std::string> peek() const {
    std::lock_guard guard(mutex_);
    return lines_;
  }

private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

/// A sink that drops everything.
struct null_log_sink {
  void log(const health_event&) noexcept {}
};

static_assert(LogSink<vector_log_sink>);
static_assert(LogSink<null_log_sink>);

} // namespace mpath::inline v0::health
