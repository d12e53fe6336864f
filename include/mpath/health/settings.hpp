#pragma once
// The health layer's settings: multipath.conf's names and multipath-tools 0.14's defaults
// (product.md §8.2), as a plain struct, and the parser mpathctl's `policy KEY VALUE...` uses.

#include <mpath/detail/text.hpp>
#include <mpath/error.hpp>

#include <cerrno>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mpath::inline v0::health {

/// `failback` (§8.5): `deferred` is multipathd's "N seconds" (its deferred_failback_tick).
enum class failback_mode : std::uint8_t { manual, immediate, followover, deferred };

/// `no_path_retry` (§8.6); `unset` leaves the table's queue_if_no_path alone (multipathd's
/// NO_PATH_RETRY_UNDEF), `retries` is N.
enum class no_path_retry_mode : std::uint8_t { unset, fail, queue, retries };

/// `path_grouping_policy`; `none` keeps the table's groups.
enum class pgpolicy : std::uint8_t { none, failover, multibus, group_by_prio };

/// The effective marginal-path settings (§8.4) after the deprecated aliases are mapped; all
/// three non-zero means the hold-down is on.
struct san_path_err_config {
  std::uint32_t threshold = 0;
  std::uint32_t forget_rate = 0;
  std::uint32_t recovery_time = 0; ///< seconds
  bool enabled() const noexcept { return threshold > 0 && forget_rate > 0 && recovery_time > 0; }
  friend bool operator==(const san_path_err_config&, const san_path_err_config&) = default;
};

/// Plain values; 0 in an "N ≥ 1" field means unset. Defaults are multipath-tools 0.14's.
struct health_settings {
  std::uint32_t polling_interval = 5;     ///< seconds
  std::uint32_t max_polling_interval = 0; ///< seconds; 0 = unset, i.e. 4 × polling_interval
  failback_mode failback = failback_mode::manual;
  std::uint32_t failback_seconds = 0; ///< with failback_mode::deferred
  no_path_retry_mode no_path_retry = no_path_retry_mode::unset;
  std::uint32_t no_path_retry_count = 0; ///< with no_path_retry_mode::retries
  std::uint32_t san_path_err_threshold = 0;
  std::uint32_t san_path_err_forget_rate = 0;
  std::uint32_t san_path_err_recovery_time = 0; ///< seconds
  std::uint32_t delay_watch_checks = 0;         ///< deprecated, see san_path_err()
  std::uint32_t delay_wait_checks = 0;          ///< deprecated, see san_path_err()
  /// Parsed and stored; the reinstate-into-a-last-group behaviour needs a reload and comes with
  /// the reconfiguration issue: until then `on` holds a path out exactly as `off` does.
  bool marginal_pathgroups = false;
  /// §8.5: set, the monitor regroups the device's paths with it and asks its owner for a reload
  /// whenever the grouping it gives differs from the table's (health_monitor::reload_if_wanted);
  /// `none` keeps the table's groups.
  pgpolicy path_grouping_policy = pgpolicy::none;
  std::uint32_t checker_timeout = 30; ///< seconds

  /// The back-off cap (§8.3): 4 × polling_interval unless set, as multipath-tools' config.c.
  std::uint32_t max_checkint() const noexcept {
    if (max_polling_interval != 0)
      return max_polling_interval;
    std::uint64_t m = std::uint64_t(polling_interval) * 4;
    return m > 0xffffffffu ? 0xffffffffu : std::uint32_t(m);
  }

  /// §8.4 as multipath-tools' select_delay_checks() maps the deprecated aliases: only when no
  /// san_path_err_* option is set, delay_watch_checks → forget_rate, delay_wait_checks →
  /// recovery_time = wait × max_polling_interval, and threshold = 1. (So both aliases are needed
  /// to turn the hold-down on, exactly as in multipathd.)
  san_path_err_config san_path_err() const noexcept {
    san_path_err_config c{san_path_err_threshold, san_path_err_forget_rate, san_path_err_recovery_time};
    bool any_san = c.threshold > 0 || c.forget_rate > 0 || c.recovery_time > 0;
    if (any_san || (delay_watch_checks == 0 && delay_wait_checks == 0))
      return c;
    c.threshold = 1;
    if (delay_watch_checks > 0)
      c.forget_rate = delay_watch_checks;
    if (delay_wait_checks > 0) {
      std::uint64_t t = std::uint64_t(delay_wait_checks) * max_checkint();
      c.recovery_time = t > 0xffffffffu ? 0xffffffffu : std::uint32_t(t);
    }
    return c;
  }

  friend bool operator==(const health_settings&, const health_settings&) = default;
};

namespace detail {

/// multipathd keeps these as C ints: a positive number up to INT_MAX.
inline bool parse_positive(std::string_view word, std::uint32_t& out) noexcept {
  std::uint32_t v = 0;
  if (!mpath::detail::parse_u32(word, v) || v == 0 || v > 0x7fffffffu)
    return false;
  out = v;
  return true;
}

inline error bad_value(std::string_view key, std::string_view value, std::string_view expected) {
  std::string text("invalid ");
  text.append(key).append(": ").append(value).append(" (expected ").append(expected).append(")");
  return error{EINVAL, std::move(text)};
}

} // namespace detail

/// Applies one `KEY VALUE` (product.md §8.2) to `s`. On error `s` is unchanged and the error is
/// EINVAL with one of these texts:
///
// clang-format off
/// | case | text |
/// |---|---|
/// | unknown key | `unknown policy setting: KEY` |
/// | not one value | `KEY takes one value, got N` |
/// | polling_interval | `invalid polling_interval: V (expected seconds >= 1)`, or `... (expected seconds <= max_polling_interval M)` when an explicit max is smaller |
/// | max_polling_interval | `invalid max_polling_interval: V (expected seconds >= polling_interval P)` |
/// | failback | `invalid failback: V (expected manual, immediate, followover or seconds >= 1)` |
/// | no_path_retry | `invalid no_path_retry: V (expected fail, queue or a number >= 1)` |
/// | san_path_err_threshold, san_path_err_forget_rate, delay_watch_checks, delay_wait_checks | `invalid KEY: V (expected a number >= 1 or off)` |
/// | san_path_err_recovery_time | `invalid san_path_err_recovery_time: V (expected seconds >= 1 or off)` |
/// | marginal_pathgroups | `invalid marginal_pathgroups: V (expected off or on)` |
/// | path_grouping_policy | `invalid path_grouping_policy: V (expected failover, multibus or group_by_prio)` |
/// | checker_timeout | `invalid checker_timeout: V (expected seconds >= 1)` |
// clang-format on
///
/// Keys and words are matched exactly, as multipath.conf's parser does. `off` (or `no`, the other
/// multipath.conf spelling) unsets the marginal-path numbers, so a running device can turn the
/// hold-down off again; `no_path_retry` is unset by no value (a device that never had it keeps
/// its table's queue_if_no_path), so there is no word for that.
inline result<void> apply_setting(health_settings& s, std::string_view key, std::span<const std::string> values) {
  using detail::bad_value;
  using detail::parse_positive;
  auto is_key = [&](std::string_view k) { return key == k; };
  bool known = is_key("polling_interval") || is_key("max_polling_interval") || is_key("failback") ||
               is_key("no_path_retry") || is_key("san_path_err_threshold") || is_key("san_path_err_forget_rate") ||
               is_key("san_path_err_recovery_time") || is_key("delay_watch_checks") || is_key("delay_wait_checks") ||
               is_key("marginal_pathgroups") || is_key("path_grouping_policy") || is_key("checker_timeout");
  if (!known)
    return error{EINVAL, "unknown policy setting: " + std::string(key)};
  if (values.size() != 1)
    return error{EINVAL, std::string(key) + " takes one value, got " + std::to_string(values.size())};
  const std::string& v = values[0];
  std::uint32_t n = 0;

  if (is_key("polling_interval")) {
    if (!parse_positive(v, n))
      return bad_value(key, v, "seconds >= 1");
    if (s.max_polling_interval != 0 && n > s.max_polling_interval)
      return bad_value(key, v, "seconds <= max_polling_interval " + std::to_string(s.max_polling_interval));
    s.polling_interval = n;
    return {};
  }
  if (is_key("max_polling_interval")) {
    if (!parse_positive(v, n) || n < s.polling_interval)
      return bad_value(key, v, "seconds >= polling_interval " + std::to_string(s.polling_interval));
    s.max_polling_interval = n;
    return {};
  }
  if (is_key("failback")) {
    if (v == "manual")
      s.failback = failback_mode::manual, s.failback_seconds = 0;
    else if (v == "immediate")
      s.failback = failback_mode::immediate, s.failback_seconds = 0;
    else if (v == "followover")
      s.failback = failback_mode::followover, s.failback_seconds = 0;
    else if (parse_positive(v, n))
      s.failback = failback_mode::deferred, s.failback_seconds = n;
    else
      return bad_value(key, v, "manual, immediate, followover or seconds >= 1");
    return {};
  }
  if (is_key("no_path_retry")) {
    if (v == "fail")
      s.no_path_retry = no_path_retry_mode::fail, s.no_path_retry_count = 0;
    else if (v == "queue")
      s.no_path_retry = no_path_retry_mode::queue, s.no_path_retry_count = 0;
    else if (parse_positive(v, n))
      s.no_path_retry = no_path_retry_mode::retries, s.no_path_retry_count = n;
    else
      return bad_value(key, v, "fail, queue or a number >= 1");
    return {};
  }
  if (is_key("san_path_err_threshold") || is_key("san_path_err_forget_rate") || is_key("san_path_err_recovery_time") ||
      is_key("delay_watch_checks") || is_key("delay_wait_checks")) {
    if (v == "off" || v == "no")
      n = 0;
    else if (!parse_positive(v, n))
      return bad_value(key, v, is_key("san_path_err_recovery_time") ? "seconds >= 1 or off" : "a number >= 1 or off");
    std::uint32_t& field = is_key("san_path_err_threshold")       ? s.san_path_err_threshold
                           : is_key("san_path_err_forget_rate")   ? s.san_path_err_forget_rate
                           : is_key("san_path_err_recovery_time") ? s.san_path_err_recovery_time
                           : is_key("delay_watch_checks")         ? s.delay_watch_checks
                                                                  : s.delay_wait_checks;
    field = n;
    return {};
  }
  if (is_key("marginal_pathgroups")) {
    if (v == "off")
      s.marginal_pathgroups = false;
    else if (v == "on")
      s.marginal_pathgroups = true;
    else
      return bad_value(key, v, "off or on");
    return {};
  }
  if (is_key("path_grouping_policy")) {
    if (v == "failover")
      s.path_grouping_policy = pgpolicy::failover;
    else if (v == "multibus")
      s.path_grouping_policy = pgpolicy::multibus;
    else if (v == "group_by_prio")
      s.path_grouping_policy = pgpolicy::group_by_prio;
    else
      return bad_value(key, v, "failover, multibus or group_by_prio");
    return {};
  }
  // checker_timeout
  if (!parse_positive(v, n))
    return bad_value(key, v, "seconds >= 1");
  s.checker_timeout = n;
  return {};
}

} // namespace mpath::inline v0::health
