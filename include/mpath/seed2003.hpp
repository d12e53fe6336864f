#pragma once
// Seed 003's model (product.md §9): the 2003 dm-multipath's flat list of paths, each
// `<path> <priority> <load-balance N|L|M> <min-ios> <failure-maximum> <reactivation-timeout>`,
// run as a front end over the ordinary engine rather than as a second engine.
//
// - `parse_params` reads the seed's parameters with its error texts (EINVAL);
// - `to_table` is the equivalent kernel table: one group per priority, highest first, each of the
//   `load-balance-2003` selector (selectors/load_balance_2003.hpp) with the paths of that priority
//   in their order and `<N|L|M> <min-ios>` per path;
// - `front_end` sits beside the engine built from it: it gives each path its failure-maximum as
//   the path's own path_failure_threshold, prints the seed's TABLE and INFO, and runs the seed's
//   reactivation: `reactivation-timeout` seconds after a path failed, one test read (a check by the
//   health layer's PathChecker) is sent to it, and the path is reinstated if it succeeds; while the
//   path stays failed, another goes out every `reactivation-timeout` seconds, the seed's daemon
//   restarting the path's failure clock each time it sends one.

#include <mpath/detail/text.hpp>
#include <mpath/error.hpp>
#include <mpath/executor.hpp>
#include <mpath/health/path_checker.hpp>
#include <mpath/io_backend.hpp>
#include <mpath/multipath.hpp>
#include <mpath/selector_set.hpp>
#include <mpath/selectors/load_balance_2003.hpp>
#include <mpath/table.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace mpath::inline v0::seed2003 {

/// The seed's range checks (a timeout of at most a year, "reasonable maximum ;)").
inline constexpr std::int64_t priority_max = 8192;
inline constexpr std::int64_t ios_max = 8192;
inline constexpr std::int64_t failure_max = 1024;
inline constexpr std::int64_t timeout_max = 365 * 24 * 60 * 60;
inline constexpr std::size_t words_per_path = 6;

/// One path of a seed 003 table, min_ios and failure_maximum already raised from 0 to 1.
struct path_params {
  std::string device;
  std::uint32_t priority = 0;
  selectors::load_balance_flag load_balance = selectors::load_balance_flag::none;
  std::uint32_t min_ios = 1;
  std::uint32_t failure_maximum = 1;
  std::uint32_t reactivation_timeout = 0; ///< seconds; 0 = never
  friend bool operator==(const path_params&, const path_params&) = default;
};

/// A seed 003 table: its paths in the order given.
struct params {
  std::vector<path_params> paths;
  friend bool operator==(const params&, const params&) = default;
};

namespace detail {

/// A number as the seed's `sscanf(arg, "%d")` reads it: an optional sign, then digits; whatever
/// follows them is ignored. False when there are no digits (or the value could not be an int).
inline bool scan_int(std::string_view word, std::int64_t& out) noexcept {
  std::size_t i = 0;
  bool negative = false;
  if (i < word.size() && (word[i] == '+' || word[i] == '-'))
    negative = word[i++] == '-';
  std::int64_t v = 0;
  std::size_t digits = 0;
  for (; i < word.size() && word[i] >= '0' && word[i] <= '9'; ++i, ++digits) {
    v = v * 10 + (word[i] - '0');
    if (v > 0x7fffffff)
      return false;
  }
  if (digits == 0)
    return false;
  out = negative ? -v : v;
  return true;
}

inline result<std::uint32_t> read_field(std::string_view word, std::int64_t max, std::string_view what) {
  std::int64_t v = 0;
  if (!scan_int(word, v) || v < 0 || v > max)
    return einval("dm-multipath: Invalid " + std::string(what));
  return std::uint32_t(v);
}

template <class S> struct is_load_balance_2003 : std::false_type {};
template <class Sync> struct is_load_balance_2003<selectors::basic_load_balance_2003<Sync>> : std::true_type {};

/// Forgets the weighted latencies of `sel` if it is a load-balance-2003 of the set.
template <class... Ss, class Any> void reset_latencies(selector_set<Ss...>*, Any& sel) noexcept {
  (
      [&] {
        if constexpr (is_load_balance_2003<Ss>::value)
          if (auto* s = sel.template get_if<Ss>())
            s->reset_latencies();
      }(),
      ...);
}

} // namespace detail

/// Parses the seed's parameters, failing as its constructor did and with its texts: the word
/// count first, then path by path each field in order and, once a path is read, whether an
/// earlier path has the same token.
inline result<params> parse_params(std::span<const std::string> words) {
  if (words.size() % words_per_path != 0)
    return einval("dm-multipath: Wrong argument count");
  params out;
  for (std::size_t at = 0; at < words.size(); at += words_per_path) {
    auto w = words.subspan(at, words_per_path);
    path_params p;
    p.device = w[0];
    auto priority = detail::read_field(w[1], priority_max, "priority");
    if (!priority)
      return std::move(priority).err();
    p.priority = *priority;
    if (w[2].size() != 1)
      return einval("load-balance flags");
    switch (mpath::detail::ascii_lower(w[2][0])) {
    case 'n': p.load_balance = selectors::load_balance_flag::none; break;
    case 'l': p.load_balance = selectors::load_balance_flag::load; break;
    case 'm': p.load_balance = selectors::load_balance_flag::maximize; break;
    default: return einval("load-balance flags");
    }
    auto ios = detail::read_field(w[3], ios_max, "ios min");
    if (!ios)
      return std::move(ios).err();
    auto failures = detail::read_field(w[4], failure_max, "failure-maximum");
    if (!failures)
      return std::move(failures).err();
    auto timeout = detail::read_field(w[5], timeout_max, "reactivation-timeout");
    if (!timeout)
      return std::move(timeout).err();
    p.min_ios = std::max<std::uint32_t>(*ios, 1);
    p.failure_maximum = std::max<std::uint32_t>(*failures, 1);
    p.reactivation_timeout = *timeout;
    for (const auto& earlier : out.paths)
      if (earlier.device == p.device)
        return einval("dm-multipath: Same device");
    out.paths.push_back(std::move(p));
  }
  return out;
}

inline result<params> parse_params(std::string_view text) {
  auto words = mpath::detail::split_words(text);
  return parse_params(std::span<const std::string>(words));
}

/// The equivalent kernel table (§9): one `load-balance-2003` group per priority, highest first,
/// paths in their order with `<N|L|M> <min-ios>`; no features, no handler, group 1 first.
inline table to_table(const params& p) {
  std::vector<std::uint32_t> priorities;
  for (const auto& path : p.paths)
    if (std::find(priorities.begin(), priorities.end(), path.priority) == priorities.end())
      priorities.push_back(path.priority);
  std::sort(priorities.begin(), priorities.end(), [](auto a, auto b) { return a > b; });
  table t;
  t.initial_pg = priorities.empty() ? 0 : 1;
  for (auto prio : priorities) {
    priority_group_spec g;
    g.selector = std::string(selectors::load_balance_2003::name);
    for (const auto& path : p.paths)
      if (path.priority == prio)
        g.paths.push_back({path.device, {std::string(1, char(path.load_balance)), std::to_string(path.min_ios)}});
    t.groups.push_back(std::move(g));
  }
  return t;
}

/// The seed's TABLE: per path `<path> <prio> <N|L|M> <min-ios> <failure-maximum> <timeout> `.
inline std::string format_table(const params& p) {
  std::string out;
  mpath::detail::status_writer w(out);
  for (const auto& path : p.paths)
    w.word(path.device)
        .number(path.priority)
        .letter(char(path.load_balance))
        .number(path.min_ios)
        .number(path.failure_maximum)
        .number(path.reactivation_timeout);
  return out;
}

/// Engine traits for a seed 003 device: `Base`'s, with the seed's selector as the only one.
template <class Base = default_traits> struct traits : Base {
  using selectors = selector_set<mpath::selectors::load_balance_2003>;
};

/// The seed's daemon half beside an engine made from `to_table(p)`: per-path failure maxima,
/// reactivation by test read, and the seed's status texts.
///
/// Feed it the engine's path events (`on_path_event`, or `forward_event` as a backend's listener
/// hook), as a health monitor is fed: a failure starts the path's reactivation clock, a
/// reinstatement stops it and forgets every path's weighted latency (the seed's flat list did, and
/// the selector of the reinstated path's priority has already done its own).
///
/// Thread safety: every member from any thread. Timers run on the engine's executor; `Checker`
/// answers from any thread. The engine must outlive it; `stop` (or the destructor) waits for
/// outstanding test reads.
template <class Engine, class Checker>
requires health::PathChecker<Checker, typename Engine::path_type>
class front_end {
public:
  using engine_type = Engine;
  using path_type = typename Engine::path_type;

  /// `p` must be what the engine was made from (`to_table(p)`).
  front_end(Engine& engine, Checker& checker, params p)
      : engine_(engine), checker_(checker), exec_(engine.executor()), params_(std::move(p)),
        slots_(params_.paths.size()) {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      slot& s = slots_[i];
      s.owner = this;
      s.index = i;
      s.timer.fn = &front_end::run_timer;
      s.timer.context = &s;
      for (auto& g : engine_.groups())
        for (auto& path : g.paths())
          if (path.device() == params_.paths[i].device)
            s.path = &path;
      if (s.path)
        s.path->set_failure_threshold(params_.paths[i].failure_maximum);
    }
    engine_.attach_monitor();
  }
  front_end(const front_end&) = delete;
  front_end& operator=(const front_end&) = delete;
  ~front_end() {
    stop();
    engine_.detach_monitor();
  }

  /// No timer runs once this returns and every test read has been answered (`drive` runs while
  /// it waits, for a checker that answers on the caller's executor).
  template <class Drive = yield_drive> void stop(Drive&& drive = {}) {
    {
      std::lock_guard guard(mutex_);
      stopping_ = true;
    }
    for (auto& s : slots_)
      (void)exec_.cancel_sync(s.timer);
    while (outstanding_.load(std::memory_order_acquire) > 0)
      drive();
  }

  void on_path_event(const path_event& e) noexcept {
    bool reinstated = false;
    {
      std::lock_guard guard(mutex_);
      if (stopping_)
        return;
      for (auto& s : slots_) {
        if (!s.path || s.path->device() != e.device)
          continue;
        const std::uint32_t timeout = params_.paths[s.index].reactivation_timeout;
        if (e.type == path_event::kind::path_failed) {
          s.failed = true;
          s.failed_at_ns = exec_.now_ns();
          s.failures_seen = s.path->fail_count();
          exec_.cancel(s.timer);
          if (timeout > 0)
            exec_.post(s.timer, std::uint64_t(timeout) * 1'000'000'000u);
        } else {
          s.failed = false;
          exec_.cancel(s.timer);
          reinstated = true;
        }
      }
    }
    if (reinstated)
      for (auto& g : engine_.groups())
        detail::reset_latencies(static_cast<typename Engine::selector_set_type*>(nullptr), g.selector());
  }

  /// For a backend's listener hook: `context` is the front end.
  static void forward_event(void* context, const path_event& e) noexcept {
    static_cast<front_end*>(context)->on_path_event(e);
  }

  /// The seed's status (each word followed by a blank, as the kernel's): TABLE, or INFO with per
  /// path `<path> O` or `<path> I(<seconds since failed>/<timeout>)`, then `[<failures>]` unless 0.
  std::string status(status_type type) const {
    if (type == status_type::table)
      return format_table(params_);
    std::string out;
    std::lock_guard guard(mutex_);
    const std::uint64_t now = exec_.now_ns();
    for (const auto& s : slots_) {
      const auto& p = params_.paths[s.index];
      out += p.device;
      out += ' ';
      if (!s.path || s.path->is_active()) {
        out += 'O';
      } else {
        // A failure whose event is not delivered yet (events come from deferred work) happened
        // just now, even when the path had failed before and been reinstated since.
        bool known = s.failed && s.failures_seen == s.path->fail_count();
        std::uint64_t secs = known && now > s.failed_at_ns ? (now - s.failed_at_ns) / 1'000'000'000u : 0;
        out += "I(" + std::to_string(secs) + "/" + std::to_string(p.reactivation_timeout) + ")";
      }
      if (std::uint32_t n = s.path ? s.path->fail_count() : 0; n != 0)
        out += "[" + std::to_string(n) + "]";
      out += ' ';
    }
    return out;
  }

  const params& parameters() const noexcept { return params_; }
  /// Test reads sent to `device` so far.
  std::uint64_t test_reads(std::string_view device) const {
    std::lock_guard guard(mutex_);
    for (const auto& s : slots_)
      if (params_.paths[s.index].device == device)
        return s.test_reads;
    return 0;
  }

private:
  struct slot {
    front_end* owner = nullptr;
    std::size_t index = 0;
    path_type* path = nullptr;
    work_item timer;
    bool failed = false;             ///< a PATH_FAILED seen and no PATH_REINSTATED since
    std::uint64_t failed_at_ns = 0;  ///< the failure, or the last test read sent since
    std::uint32_t failures_seen = 0; ///< the path's fail_count when its last PATH_FAILED came
    bool testing = false;            ///< a test read is out
    std::uint64_t test_reads = 0;
  };

  static void run_timer(work_item& w) noexcept {
    static_cast<slot*>(w.context)->owner->timer_fired(*static_cast<slot*>(w.context));
  }

  void timer_fired(slot& s) noexcept {
    {
      std::lock_guard guard(mutex_);
      if (stopping_ || !s.failed)
        return;
      if (s.path->is_active()) { // reinstated; its event is on the way
        s.failed = false;
        return;
      }
      // The seed restarts the failure clock when it sends a test, and tries again a timeout later
      // if the path is still failed then; it never has two tests out on one path.
      s.failed_at_ns = exec_.now_ns();
      exec_.post(s.timer, std::uint64_t(params_.paths[s.index].reactivation_timeout) * 1'000'000'000u);
      if (s.testing)
        return;
      s.testing = true;
      ++s.test_reads;
      outstanding_.fetch_add(1, std::memory_order_acq_rel);
    }
    checker_.check(*s.path, health::check_done(&front_end::test_done, this, s.index));
  }

  static void test_done(void* context, std::uint64_t index, health::check_result r) noexcept {
    auto& self = *static_cast<front_end*>(context);
    slot& s = self.slots_[index];
    {
      std::lock_guard guard(self.mutex_);
      s.testing = false;
    }
    if (health::is_usable(r))
      (void)self.engine_.reinstate_path(*s.path);
    self.outstanding_.fetch_sub(1, std::memory_order_acq_rel); // the last touch of `self`: stop waits for it
  }

  Engine& engine_;
  Checker& checker_;
  typename Engine::executor_type& exec_;
  const params params_;
  mutable std::mutex mutex_;
  std::vector<slot> slots_; ///< by params_ index; never resized (timers point into it)
  bool stopping_ = false;
  std::atomic<std::uint64_t> outstanding_{0};
};

} // namespace mpath::inline v0::seed2003
