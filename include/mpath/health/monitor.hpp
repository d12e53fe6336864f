#pragma once
// The health monitor: multipathd's checker loop for one engine (product.md §8, multipathd.md §b).
// It ticks once per second on the engine's executor and clock and, at each tick, in order (§8.1):
// (1) runs the path checks that are due and fails or reinstates paths by what they say (§8.3,
// with §8.4's marginal-path hold-down), (2) counts down no_path_retry (§8.6), (3) decides failback
// (§8.5) or, with `path_grouping_policy` set and a grouping that priorities changed, ask for a
// regrouping reload instead. It drives the engine only through `message()` and public observers, as
// multipathd drives the kernel through DM messages, so everything it does is what an operator could
// do; the one thing it cannot do from its tick is a reload, so it hands that to its owner.
//
// The regroup hand-off: the tick records the regrouped table (`wanted_reload`) and calls the reload
// listener, and the owner of the mapped_device does the reload from its own thread
// (`reload_if_wanted`), because a reload waits for activations that run on the executor the tick
// runs on, so a tick that reloaded would wait for itself.
//
// Locking: one mutex guards the monitor's state. It is never held across a call that can take an
// engine lock or call out (`message`, `status`, the checker, the prioritizer, the sink); with it
// held the monitor only reads the engine's lock-free atomics (`nr_valid_paths`, a path's
// `is_active`). The tick is one work item that re-posts itself when it ends, so ticks never
// overlap, even on an executor with several threads.

#include <mpath/error.hpp>
#include <mpath/executor.hpp>
#include <mpath/health/grouping.hpp>
#include <mpath/health/log.hpp>
#include <mpath/health/path_checker.hpp>
#include <mpath/health/prioritizer.hpp>
#include <mpath/health/settings.hpp>
#include <mpath/io_backend.hpp>
#include <mpath/multipath.hpp>
#include <mpath/path_selector.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mpath::inline v0::health {

/// What the monitor knows of a path: the last checker word that was not `pending` (`undef` before
/// any, `pending` while the very first check is still pending), or `delayed` while §8.4 holds it.
enum class path_check_state : std::uint8_t { undef, up, down, ghost, pending, timeout, shaky, delayed };

/// `multipath -ll`'s checker column (product.md §8.7).
constexpr std::string_view topology_word(path_check_state s) noexcept {
  switch (s) {
  case path_check_state::undef: return "undef";
  case path_check_state::up: return "ready";
  case path_check_state::down: return "faulty";
  case path_check_state::ghost: return "ghost";
  case path_check_state::pending: return "i/o pending";
  case path_check_state::timeout: return "i/o timeout";
  case path_check_state::shaky: return "shaky";
  case path_check_state::delayed: return "delayed";
  }
  return "undef";
}

constexpr bool is_usable(path_check_state s) noexcept {
  return s == path_check_state::up || s == path_check_state::ghost;
}

/// What the monitor needs of an engine: `mpath::multipath` models it.
template <class E>
concept MonitoredEngine = requires(E& e, const E& ce, std::string_view text) {
  typename E::path_type;
  typename E::executor_type;
  requires Executor<typename E::executor_type>;
  { e.message(text) } -> std::same_as<result<void>>;
  { ce.nr_valid_paths() }
  noexcept->std::same_as<std::uint32_t>;
  { ce.status(status_type::info) } -> std::same_as<std::string>;
  { e.executor() }
  noexcept->std::same_as<typename E::executor_type&>;
  { e.attach_monitor() }
  noexcept;
  { e.detach_monitor() }
  noexcept;
};

namespace detail {
/// The selectors an engine's tables are parsed with (its `selector_set_type`), so a regrouped
/// table is checked by the parser the reload will use; the library's defaults for other engines.
template <class E> struct engine_selectors { using type = default_selectors; };
template <class E>
requires requires { typename E::selector_set_type; }
struct engine_selectors<E> {
  using type = typename E::selector_set_type;
};
} // namespace detail

struct monitor_options {
  /// §8.1: one second. Shorter only to make real-clock tests quick; every count of the spec is
  /// in ticks, so the behaviour is the same, only faster.
  std::uint64_t tick_ns = 1'000'000'000;
};

/// One path as the monitor sees it, for `topology` and tests.
struct path_report {
  std::string_view device; ///< the table token
  std::uint32_t group;     ///< 1-based
  path_check_state state;
  int priority;           ///< -1 until the prioritizer answered
  std::uint32_t interval; ///< seconds until the next check after the last one (§8.3)
  std::uint32_t countdown;
  bool check_in_flight;
};

/// multipathd for one engine (a "map" named `map_name` in the log).
///
/// Life cycle: construct (attaches to the engine, whose destructor aborts while a monitor is
/// attached), `set` settings, `start()` (§8.6's start message, first tick 1 s later), then the
/// product forwards the engine's path events to `on_path_event` (the backend's `on_event`) and
/// may `set` settings at any time. `stop()` (or the destructor) cancels the tick, waits for every
/// check and priority request still unanswered (calling `drive` while it waits) and sends §8.6's
/// stop message. Stop and destroy the monitor before the engine, the checker, the prioritizer
/// and the sink, and stop forwarding events to it before destroying it. With a checker whose
/// answers only come from work the caller runs (the probe checker on a manual executor), call
/// `stop(drive)` with a `drive` that runs that work before the destructor does.
///
/// Thread safety: `start`, `stop`, `set`, `on_path_event` and the observers may be called from any
/// thread; checker and prioritizer answers may come from any thread.
template <MonitoredEngine Engine, class Checker, class Prio = const_prioritizer, LogSink Sink = vector_log_sink>
requires PathChecker<Checker, typename Engine::path_type> && Prioritizer<Prio, typename Engine::path_type>
class health_monitor {
public:
  using engine_type = Engine;
  using path_type = typename Engine::path_type;
  using executor_type = typename Engine::executor_type;

  health_monitor(Engine& engine, Checker& checker, Prio& prio, Sink& sink, std::string map_name,
                 health_settings settings = {}, monitor_options options = {})
      : engine_(&engine), exec_(engine.executor()), checker_(checker), prio_(prio), sink_(sink),
        map_(std::move(map_name)), settings_(settings), options_(options) {
    for (auto& g : engine_->groups()) {
      ++nr_groups_;
      for (auto& p : g.paths())
        slots_.push_back(slot{&p, g.number()});
    }
    for (auto& s : slots_)
      s.interval = settings_.polling_interval;
    tick_work_.fn = &health_monitor::run_tick;
    tick_work_.context = this;
    engine_->attach_monitor();
  }

  health_monitor(const health_monitor&) = delete;
  health_monitor& operator=(const health_monitor&) = delete;

  ~health_monitor() {
    stop();
    engine_->detach_monitor();
  }

  /// §8.6's start message (fail: fail_if_no_path; queue and N: queue_if_no_path), then the first
  /// tick 1 s later (§8.1). A second call does nothing.
  void start() {
    {
      std::lock_guard guard(mutex_);
      if (started_ || stopping_)
        return;
      started_ = true;
    }
    apply_no_path_retry(true);
    std::lock_guard guard(mutex_);
    if (stopping_)
      return;
    next_due_ns_ = exec_.now_ns() + options_.tick_ns;
    exec_.post(tick_work_, options_.tick_ns);
  }

  /// Stops for good: no tick runs once this returns, every outstanding check and priority request
  /// has been answered (their late answers are harmless from then on: none can be outstanding),
  /// and, if the monitor was started, `fail_if_no_path` is sent unless no_path_retry is `queue`
  /// (§8.6, multipathd's queue_without_daemon no). Must not be called from the monitor's own
  /// callbacks (a checker's inline answer, the sink).
  template <class Drive = yield_drive> void stop(Drive&& drive = {}) {
    bool was_started = false;
    {
      std::lock_guard guard(mutex_);
      if (stopping_)
        return;
      stopping_ = true;
      wanted_reload_.reset();
      was_started = started_;
    }
    (void)exec_.cancel_sync(tick_work_);
    while (outstanding_.load(std::memory_order_acquire) > 0)
      drive();
    no_path_retry_mode mode;
    {
      std::lock_guard guard(mutex_);
      mode = settings_.no_path_retry;
    }
    if (was_started && mode != no_path_retry_mode::queue)
      (void)send({"fail_if_no_path"});
  }

  /// Changes one setting by its multipath.conf name (`apply_setting`); the setting is unchanged on
  /// error. Takes effect from the next check or tick; a changed no_path_retry is applied at once
  /// as at start (§8.6), a changed failback cancels a running failback countdown.
  result<void> set(std::string_view key, std::span<const std::string> values) {
    bool reapply = false;
    {
      std::lock_guard guard(mutex_);
      health_settings next = settings_;
      if (auto r = apply_setting(next, key, values); !r)
        return r;
      if (next.failback != settings_.failback || next.failback_seconds != settings_.failback_seconds)
        failback_tick_ = 0;
      if (next.path_grouping_policy != settings_.path_grouping_policy)
        wanted_reload_.reset(); // the next tick decides with the new policy
      reapply =
          started_ && !stopping_ &&
          (next.no_path_retry != settings_.no_path_retry || next.no_path_retry_count != settings_.no_path_retry_count);
      settings_ = next;
    }
    if (reapply)
      apply_no_path_retry(false);
    return {};
  }

  /// After a reload made `live` the device's engine (mapped_device::reload, product.md §6): the
  /// monitor follows it. A path keeps what the monitor knew of it, found by its token (a path the
  /// table adds is checked at the next tick); the paths it knows are down are failed in the new
  /// table at once, because a new table starts with every path active (multipathd's
  /// sync_map_state); with no_path_retry `fail` a table that queues is told fail_if_no_path
  /// (§8.6); a running failback countdown starts over. The tick keeps its schedule. Call it from
  /// the thread that reloaded, never from the monitor's callbacks; it waits for outstanding checks
  /// and priority requests, calling `drive`, as stop() does.
  template <class Drive = yield_drive> void table_reloaded(Engine& live, Drive&& drive = {}) {
    // A tick running now cannot post the next one while this cancels it: it is posted below.
    (void)exec_.cancel_sync(tick_work_);
    while (outstanding_.load(std::memory_order_acquire) > 0)
      drive();
    std::vector<std::string> to_fail;
    bool running = false;
    {
      std::lock_guard guard(mutex_);
      engine_->detach_monitor();
      live.attach_monitor();
      engine_ = &live;
      std::vector<slot> next;
      nr_groups_ = 0;
      for (auto& g : live.groups()) {
        ++nr_groups_;
        for (auto& p : g.paths()) {
          slot s{&p, g.number()};
          s.interval = settings_.polling_interval;
          // What the monitor knew of the token (every entry of a token shares the checker's word).
          for (const auto& old : slots_)
            if (old.path->device() == p.device()) {
              s = old;
              s.path = &p;
              s.group = g.number();
              break;
            }
          next.push_back(s);
        }
      }
      slots_ = std::move(next);
      failback_tick_ = 0;
      failback_wanted_ = false;
      wanted_reload_.reset(); // decided again from the new table at the next tick
      running = started_ && !stopping_;
      if (running)
        for (const auto& s : slots_)
          if (!is_usable(s.state) && s.state != path_check_state::undef && s.state != path_check_state::pending &&
              s.path->is_active() && std::find(to_fail.begin(), to_fail.end(), s.path->device()) == to_fail.end())
            to_fail.push_back(s.path->device());
    }
    if (!running)
      return;
    for (const auto& device : to_fail)
      (void)send({"fail_path", device});
    if (settings().no_path_retry == no_path_retry_mode::fail && engine_->queue_if_no_path())
      (void)send({"fail_if_no_path"});
    std::lock_guard guard(mutex_);
    if (!stopping_) {
      std::uint64_t now = exec_.now_ns();
      exec_.post(tick_work_, next_due_ns_ > now ? next_due_ns_ - now : 0);
    }
  }

  /// Called by a tick that wants a regrouping reload (§8.5), on the executor's thread, with no
  /// monitor lock held. It must not call into the monitor: it tells the owner's control thread,
  /// which then calls `reload_if_wanted`.
  using reload_listener = void (*)(void* context) noexcept;

  /// Sets (or, with null, clears) the reload listener. Set it before `start()`.
  void set_reload_listener(reload_listener fn, void* context) noexcept {
    std::lock_guard guard(mutex_);
    reload_listener_ = fn;
    reload_context_ = context;
  }

  /// The regrouping reload the last tick asked for and nobody did yet: the parameters of the
  /// regrouped table (regroup_params: the paths grouped by `path_grouping_policy` with the
  /// priorities the monitor knows, product.md §8.5). Nothing when no reload is wanted.
  std::optional<std::string> wanted_reload() const {
    std::lock_guard guard(mutex_);
    return wanted_reload_;
  }

  /// The owner's half of the regroup hand-off: if a regrouping reload is wanted, loads it into
  /// `device` (anything with `reload(params)` and `engine()`: a mapped_device, an engine_host, a
  /// sim_device), logs `NAME: reload` (§8.7) and follows the new table (`table_reloaded`, with
  /// `drive`). Returns whether it reloaded, or the reload's error (the wish is then dropped; the
  /// next tick decides again). Call it from the thread that owns the device, as for any reload:
  /// never from the monitor's callbacks or from a work item of the engine's executor.
  template <class Device, class Drive = yield_drive> result<bool> reload_if_wanted(Device& device, Drive&& drive = {}) {
    std::string params;
    {
      std::lock_guard guard(mutex_);
      if (!wanted_reload_ || !started_ || stopping_)
        return false;
      params = std::move(*wanted_reload_);
      wanted_reload_.reset();
    }
    if (auto r = device.reload(params); !r)
      return std::move(r).err();
    log({health_event::kind::reload, map_, {}, 0});
    table_reloaded(device.engine(), std::forward<Drive>(drive));
    return true;
  }

  /// The engine's path events (io_backend.hpp), forwarded by the product's backend `on_event`.
  /// A path the engine failed by itself (an I/O error, a message) is marked down, as multipathd's
  /// update_multipath does, and checked within polling_interval (§8.3); the failure is logged
  /// with the remaining paths (§8.7) and may enter recovery (§8.6). A path reinstated by someone
  /// else is logged likewise and ends recovery. Events the monitor's own messages caused change
  /// nothing: it already knows.
  void on_path_event(const path_event& e) noexcept {
    bool seen_fail = false, seen_reinstate = false;
    event_batch out;
    {
      std::lock_guard guard(mutex_);
      if (!started_ || stopping_)
        return;
      for (auto& s : slots_) {
        if (s.path->device() != e.device)
          continue;
        if (e.type == path_event::kind::path_failed) {
          std::uint32_t pi = settings_.polling_interval;
          if (s.countdown > pi)
            s.countdown = pi;
          // An answer already in but not yet acted on (an asynchronous checker's, seen at the next
          // tick) predates this failure: a stale `up` would reinstate the path. Check it again.
          if (s.awaiting && s.answered) {
            s.awaiting = false;
            s.countdown = 1;
          }
          // A path not checked yet (or only answered `pending`) was usable as far as anyone knew:
          // its failure is seen too.
          if (is_usable(s.state) || s.state == path_check_state::undef || s.state == path_check_state::pending) {
            s.state = path_check_state::down;
            s.interval = pi;
            // §8.4's "last seen unusable" includes this failure, looked at from the next tick.
            s.last_unusable_tick = tick_ + 1;
            failback_tick_ = 0;
            seen_fail = true;
          }
        } else if (!is_usable(s.state) && s.state != path_check_state::undef && s.state != path_check_state::pending) {
          seen_reinstate = true;
        }
      }
      if (seen_fail)
        enter_recovery_locked(e.nr_valid_paths, out);
      outstanding_.fetch_add(1, std::memory_order_acq_rel); // stop waits for this call
    }
    emit(out);
    if (seen_fail)
      log({health_event::kind::remaining_active_paths, map_, {}, e.nr_valid_paths});
    if (seen_reinstate)
      after_reinstate(e.nr_valid_paths);
    outstanding_.fetch_sub(1, std::memory_order_acq_rel);
  }

  /// For a backend's listener hook: `context` is the monitor.
  static void forward_event(void* context, const path_event& e) noexcept {
    static_cast<health_monitor*>(context)->on_path_event(e);
  }

  // ---------------------------------------------------------------- observers

  health_settings settings() const {
    std::lock_guard guard(mutex_);
    return settings_;
  }
  const std::string& map_name() const noexcept { return map_; }
  /// Ticks run so far.
  std::uint64_t ticks() const {
    std::lock_guard guard(mutex_);
    return tick_;
  }
  /// Every path in table order.
  std::vector<path_report> paths() const {
    std::lock_guard guard(mutex_);
    std::vector<path_report> out;
    for (const auto& s : slots_)
      out.push_back({s.path->device(), s.group, s.state, s.priority, s.interval, s.countdown, s.awaiting});
    return out;
  }
  /// The first path with token `device`; `undef` for none.
  path_check_state check_state(std::string_view device) const {
    std::lock_guard guard(mutex_);
    for (const auto& s : slots_)
      if (s.path->device() == device)
        return s.state;
    return path_check_state::undef;
  }
  /// §8.5's group priority: the integer average of the usable paths' priorities; 0 when the group
  /// has no usable path (or no number `group`).
  int group_priority(std::uint32_t group) const {
    std::lock_guard guard(mutex_);
    return group_prio_locked(group).priority;
  }
  /// §8.6: in recovery (countdown running, or run out with queueing disabled).
  bool in_recovery() const {
    std::lock_guard guard(mutex_);
    return in_recovery_;
  }
  /// §8.6's countdown, 0 when not counting.
  std::uint32_t retry_tick() const {
    std::lock_guard guard(mutex_);
    return retry_tick_;
  }
  /// §8.5's failback countdown (failback N), 0 when not counting.
  std::uint32_t failback_tick() const {
    std::lock_guard guard(mutex_);
    return failback_tick_;
  }
  /// When the next tick is due, on the executor's clock (0 before `start`).
  std::uint64_t next_tick_ns() const {
    std::lock_guard guard(mutex_);
    return next_due_ns_;
  }

private:
  struct slot {
    path_type* path;
    std::uint32_t group;
    // §8.3
    path_check_state state = path_check_state::undef;
    std::uint32_t countdown = 1;
    std::uint32_t interval = 0;
    // the check in flight; `generation` names it in the token, so a late answer is ignored
    std::uint32_t generation = 0;
    bool awaiting = false;
    bool answered = false;
    check_result answer = check_result::pending;
    std::uint64_t started_tick = 0;
    // §8.5
    int priority = -1;
    std::uint32_t prio_generation = 0;
    // per tick
    bool checked_usable = false;
    bool came_back = false;
    // §8.4, multipathd's path_failures / disable_reinstate, and the usable checks since a failure
    // was last counted or forgotten
    std::uint32_t path_failures = 0;
    std::uint32_t usable_checks = 0;
    bool disable_reinstate = false;
    std::uint64_t last_unusable_tick = 0; ///< the tick it was last seen unusable at (§8.4)
  };

  /// Log events gathered under the lock and emitted after it is released.
  struct event_batch {
    std::array<health_event, 6> events{};
    std::size_t size = 0;
    void push(const health_event& e) noexcept {
      if (size < events.size())
        events[size++] = e;
    }
  };

  enum class action : std::uint8_t { none, fail, reinstate, seen_fail };

  struct group_prio {
    int priority = 0;
    std::uint32_t usable = 0;
  };

  // ---------------------------------------------------------------- helpers

  void log(const health_event& e) noexcept { sink_.log(e); }
  void emit(const event_batch& b) noexcept {
    for (std::size_t i = 0; i < b.size; ++i)
      sink_.log(b.events[i]);
  }

  bool send(std::initializer_list<std::string_view> words) {
    std::vector<std::string> argv(words.begin(), words.end());
    return engine_->message(std::span<const std::string>(argv)).has_value();
  }

  bool usable_path_locked(const slot& s) const noexcept { return is_usable(s.state) && s.path->is_active(); }

  group_prio group_prio_locked(std::uint32_t group) const noexcept {
    group_prio g;
    long sum = 0;
    std::uint32_t known = 0;
    for (const auto& s : slots_) {
      if (s.group != group || !usable_path_locked(s))
        continue;
      ++g.usable;
      if (s.priority >= 0) {
        sum += s.priority;
        ++known;
      }
    }
    g.priority = known ? int(sum / long(known)) : 0;
    return g;
  }

  /// §8.5: the highest priority; ties to more usable paths, then the lower number. 0 when no group
  /// has a usable path (then there is nothing to fail back to).
  std::uint32_t best_group_locked() const noexcept {
    std::uint32_t best = 0;
    group_prio best_prio;
    for (std::uint32_t g = 1; g <= nr_groups_; ++g) {
      group_prio p = group_prio_locked(g);
      if (p.usable == 0)
        continue;
      if (best == 0 || p.priority > best_prio.priority ||
          (p.priority == best_prio.priority && p.usable > best_prio.usable)) {
        best = g;
        best_prio = p;
      }
    }
    return best;
  }

  static std::uint64_t token(std::size_t index, std::uint32_t generation) noexcept {
    return (std::uint64_t(index) << 32) | generation;
  }

  // ---------------------------------------------------------------- §8.6

  /// multipathd's enter_recovery_mode, from update_queue_mode_del_path: the last usable path is
  /// gone and no_path_retry is N.
  void enter_recovery_locked(std::uint32_t valid, event_batch& out) noexcept {
    if (valid != 0 || in_recovery_ || settings_.no_path_retry != no_path_retry_mode::retries)
      return;
    in_recovery_ = true;
    retry_tick_ = settings_.no_path_retry_count * settings_.polling_interval + 1;
    out.push({health_event::kind::entering_recovery, map_, {}, settings_.no_path_retry_count});
  }

  /// multipathd's update_queue_mode_add_path: a path is back; leave recovery, re-enabling
  /// queueing when no_path_retry still wants it, and log the remaining paths (not when step (2)
  /// found a path back that nobody reported: there is no reinstate to count).
  void after_reinstate(std::uint32_t valid, bool log_remaining = true) {
    bool requeue = false;
    {
      std::lock_guard guard(mutex_);
      if (valid > 0 && in_recovery_) {
        in_recovery_ = false;
        retry_tick_ = 0;
        requeue = settings_.no_path_retry == no_path_retry_mode::queue ||
                  settings_.no_path_retry == no_path_retry_mode::retries;
      }
    }
    if (requeue && send({"queue_if_no_path"}))
      log({health_event::kind::recovered, map_, {}, 0});
    if (log_remaining)
      log({health_event::kind::remaining_active_paths, map_, {}, valid});
  }

  /// At start and when no_path_retry changes (multipathd's set_no_path_retry).
  void apply_no_path_retry(bool at_start) {
    const char* msg = nullptr;
    bool recovered = false;
    std::uint32_t valid = engine_->nr_valid_paths();
    {
      std::lock_guard guard(mutex_);
      switch (settings_.no_path_retry) {
      case no_path_retry_mode::unset:
        in_recovery_ = false;
        retry_tick_ = 0;
        break;
      case no_path_retry_mode::fail:
        msg = "fail_if_no_path";
        in_recovery_ = false;
        retry_tick_ = 0;
        break;
      case no_path_retry_mode::queue:
        msg = "queue_if_no_path";
        recovered = std::exchange(in_recovery_, false);
        retry_tick_ = 0;
        break;
      case no_path_retry_mode::retries:
        // With no usable path the next tick enters recovery (step 2); a running countdown is kept.
        if (at_start || valid > 0) {
          msg = "queue_if_no_path";
          recovered = valid > 0 && std::exchange(in_recovery_, false);
          if (recovered)
            retry_tick_ = 0;
        }
        break;
      }
    }
    if (msg && send({msg}) && recovered)
      log({health_event::kind::recovered, map_, {}, 0});
  }

  // ---------------------------------------------------------------- the tick

  static void run_tick(work_item& w) noexcept { static_cast<health_monitor*>(w.context)->tick(); }

  void tick() noexcept {
    health_settings cfg;
    {
      std::lock_guard guard(mutex_);
      if (stopping_)
        return;
      ++tick_;
      cfg = settings_;
      for (auto& s : slots_)
        s.checked_usable = s.came_back = false;
    }
    for (std::size_t i = 0; i < slots_.size(); ++i)
      check_step(i, cfg);
    refresh_priorities();
    no_path_retry_step();
    // Step (3): a wanted regroup replaces the failback decision, as multipathd reloads instead of
    // switching (the regrouped table starts in its best group).
    const bool regroup = regroup_step();
    if (!regroup)
      failback_step();
    reload_listener listener = nullptr;
    void* listener_context = nullptr;
    {
      std::lock_guard guard(mutex_);
      if (stopping_)
        return;
      // Drift-free on the executor's clock; after a stall (a suspended VM) start again from now
      // rather than firing the missed ticks back to back.
      std::uint64_t now = exec_.now_ns();
      next_due_ns_ += options_.tick_ns;
      if (next_due_ns_ + options_.tick_ns < now)
        next_due_ns_ = now + options_.tick_ns;
      exec_.post(tick_work_, next_due_ns_ > now ? next_due_ns_ - now : 0);
      if (regroup) {
        listener = reload_listener_;
        listener_context = reload_context_;
      }
    }
    // Last, with the next tick posted: the owner may reload (and so call table_reloaded) at once.
    if (listener)
      listener(listener_context);
  }

  static void check_answered(void* context, std::uint64_t tok, check_result r) noexcept {
    auto& self = *static_cast<health_monitor*>(context);
    {
      std::lock_guard guard(self.mutex_);
      std::size_t i = std::size_t(tok >> 32);
      if (i < self.slots_.size()) {
        slot& s = self.slots_[i];
        if (s.awaiting && !s.answered && s.generation == std::uint32_t(tok)) {
          s.answered = true;
          s.answer = r;
        }
      }
    }
    self.outstanding_.fetch_sub(1, std::memory_order_acq_rel); // the last touch of `self`: stop waits for it
  }

  static void prio_answered(void* context, std::uint64_t tok, int priority) noexcept {
    auto& self = *static_cast<health_monitor*>(context);
    {
      std::lock_guard guard(self.mutex_);
      std::size_t i = std::size_t(tok >> 32);
      if (i < self.slots_.size() && self.slots_[i].prio_generation == std::uint32_t(tok))
        self.slots_[i].priority = priority < 0 ? 0 : priority;
    }
    self.outstanding_.fetch_sub(1, std::memory_order_acq_rel);
  }

  /// §8.3 for one path: count down, start or poll its check, act on the answer.
  void check_step(std::size_t i, const health_settings& cfg) noexcept {
    slot& s = slots_[i];
    std::uint32_t gen = 0;
    check_result r = check_result::pending;
    bool have = false;
    {
      std::lock_guard guard(mutex_);
      if (s.awaiting) {
        if (s.answered) {
          r = s.answer;
          have = true;
        } else if (tick_ - s.started_tick >= cfg.checker_timeout) {
          r = check_result::timeout; // its late answer will find another generation
          have = true;
          ++s.generation;
        } else {
          return; // still pending: polled again at the next tick
        }
        s.awaiting = false;
      } else {
        if (s.countdown > 1) {
          --s.countdown;
          return;
        }
        s.countdown = 0;
        gen = ++s.generation;
        s.awaiting = true;
        s.answered = false;
        s.started_tick = tick_;
        outstanding_.fetch_add(1, std::memory_order_acq_rel);
      }
    }
    if (!have) {
      checker_.check(*s.path, check_done(&health_monitor::check_answered, this, token(i, gen)));
      std::lock_guard guard(mutex_);
      if (!(s.awaiting && s.answered && s.generation == gen)) {
        if (s.state == path_check_state::undef)
          s.state = path_check_state::pending;
        s.countdown = 1;
        return; // answered later: looked at from the next tick on (multipathd's pending)
      }
      s.awaiting = false;
      r = s.answer;
    }
    process(i, r, cfg);
  }

  static path_check_state state_of(check_result r) noexcept {
    switch (r) {
    case check_result::up: return path_check_state::up;
    case check_result::down: return path_check_state::down;
    case check_result::ghost: return path_check_state::ghost;
    case check_result::pending: return path_check_state::pending;
    case check_result::timeout: return path_check_state::timeout;
    case check_result::shaky: return path_check_state::shaky;
    }
    return path_check_state::undef;
  }

  /// multipathd 0.14's check_path_reinstate_state(), called for a usable result with the previous
  /// state `prev`; true = keep the path out (§8.4).
  bool hold_locked(std::size_t i, path_check_state prev, const san_path_err_config& san, event_batch& out) noexcept {
    slot& s = slots_[i];
    auto release = [&] {
      s.path_failures = 0;
      s.disable_reinstate = false;
      s.usable_checks = 0;
    };
    if (s.disable_reinstate) {
      bool other_usable = false;
      for (std::size_t j = 0; j < slots_.size(); ++j)
        if (j != i && usable_path_locked(slots_[j]))
          other_usable = true;
      if (!other_usable) {
        out.push({health_event::kind::reinstating_early, map_, s.path->device(), 0});
        release();
        return false;
      }
      // §8.4: held "until recovery_time seconds have passed since it was last seen unusable".
      if (tick_ >= s.last_unusable_tick + san.recovery_time) {
        out.push({health_event::kind::reinstate_after_recovery, map_, s.path->device(), 0});
        release();
        return false;
      }
      return true;
    }
    // §8.4 "every forget_rate usable checks forget one failure", counted from the check that
    // counted the first one. multipathd's countdown starts at forget_rate and forgets on the
    // check after it reaches 0, one check later than the sentence; the spec's words win.
    if (is_usable(prev) && s.path_failures > 0) {
      if (++s.usable_checks >= san.forget_rate) {
        --s.path_failures;
        s.usable_checks = 0;
      }
      return false;
    }
    if (prev != path_check_state::down && prev != path_check_state::shaky && prev != path_check_state::timeout)
      return false;
    if (s.path_failures == 0)
      s.usable_checks = 0;
    ++s.path_failures;
    if (s.path_failures > san.threshold) {
      out.push({health_event::kind::hit_error_threshold, map_, s.path->device(), 0});
      s.disable_reinstate = true;
      return true;
    }
    return false;
  }

  /// A check's answer (not an unanswered one): §8.3's state, interval and countdown, §8.4's hold,
  /// then the fail_path/reinstate_path it calls for and its log lines (§8.7).
  void process(std::size_t i, check_result r, const health_settings& cfg) noexcept {
    slot& s = slots_[i];
    event_batch out;
    action act = action::none;
    {
      std::lock_guard guard(mutex_);
      if (r == check_result::pending) {
        if (s.state == path_check_state::undef)
          s.state = path_check_state::pending;
        s.countdown = 1;
        return;
      }
      path_check_state prev = s.state;
      bool active = s.path->is_active();
      std::uint32_t pi = cfg.polling_interval;
      if (is_usable(r)) {
        san_path_err_config san = cfg.san_path_err();
        bool held = false;
        if (san.enabled()) {
          held = hold_locked(i, prev, san, out);
        } else {
          s.path_failures = 0; // turned off: whatever was held is released
          s.disable_reinstate = false;
        }
        if (held) {
          s.state = path_check_state::delayed;
          s.interval = pi;
        } else {
          path_check_state now = state_of(r);
          s.checked_usable = true;
          s.came_back = !active; // §8.5 followover: reinstated at this tick, not merely seen up first
          if (!active)
            act = action::reinstate;
          if (prev == now && active) {
            std::uint64_t doubled = std::uint64_t(s.interval) * 2;
            std::uint32_t cap = cfg.max_checkint();
            s.interval = doubled > cap ? cap : std::uint32_t(doubled);
          } else {
            s.interval = pi;
          }
          s.state = now;
        }
      } else {
        if (active)
          act = action::fail;
        else if (is_usable(prev))
          act = action::seen_fail; // the engine failed it before its event reached us
        if (act != action::none)
          failback_tick_ = 0; // §8.5: a path failure cancels a pending failback
        s.state = state_of(r);
        s.interval = pi;
        s.last_unusable_tick = tick_;
      }
      s.countdown = s.interval;
    }
    emit(out);
    switch (act) {
    case action::none: return;
    case action::fail:
      if (!send({"fail_path", s.path->device()}))
        return; // suspended (EBUSY): the next check tries again
      log({health_event::kind::checker_failed_path, map_, s.path->device(), 0});
      after_fail();
      return;
    case action::seen_fail: after_fail(); return;
    case action::reinstate:
      if (!send({"reinstate_path", s.path->device()}))
        return;
      log({health_event::kind::reinstated, map_, s.path->device(), 0});
      after_reinstate(engine_->nr_valid_paths());
      return;
    }
  }

  /// multipathd's update_queue_mode_del_path.
  void after_fail() {
    std::uint32_t valid = engine_->nr_valid_paths();
    event_batch out;
    {
      std::lock_guard guard(mutex_);
      enter_recovery_locked(valid, out);
    }
    emit(out);
    log({health_event::kind::remaining_active_paths, map_, {}, valid});
  }

  /// After the checks, as multipathd's update_prio: ask the paths checked usable at this tick; if
  /// one changed or a path came back, ask every other usable path too.
  void refresh_priorities() noexcept {
    bool changed = false, came_back = false;
    for (std::size_t pass = 0; pass < 2; ++pass) {
      if (pass == 1 && !changed && !came_back)
        return;
      for (std::size_t i = 0; i < slots_.size(); ++i) {
        slot& s = slots_[i];
        int before = 0;
        std::uint32_t gen = 0;
        {
          std::lock_guard guard(mutex_);
          if (pass == 0 ? !s.checked_usable : (s.checked_usable || !usable_path_locked(s)))
            continue;
          came_back |= s.came_back;
          before = s.priority;
          gen = ++s.prio_generation;
          outstanding_.fetch_add(1, std::memory_order_acq_rel);
        }
        prio_.get_priority(*s.path, prio_done(&health_monitor::prio_answered, this, token(i, gen)));
        std::lock_guard guard(mutex_);
        changed |= s.priority != before;
      }
    }
  }

  /// §8.6 step (2): enter recovery if no usable path is left (a path lost without an event we
  /// saw), leave it if one is back, and count down.
  void no_path_retry_step() noexcept {
    std::uint32_t valid = engine_->nr_valid_paths();
    event_batch out;
    bool disable = false, leave = false;
    {
      std::lock_guard guard(mutex_);
      if (settings_.no_path_retry != no_path_retry_mode::retries)
        return;
      if (!in_recovery_)
        enter_recovery_locked(valid, out);
      else if (valid > 0)
        leave = true;
      if (!leave && retry_tick_ > 0 && --retry_tick_ == 0)
        disable = true;
    }
    emit(out);
    if (leave)
      after_reinstate(valid, false);
    if (disable && send({"fail_if_no_path"}))
      log({health_event::kind::disable_queueing, map_, {}, 0});
  }

  /// §8.5's regroup: with `path_grouping_policy` set, the table regrouped with the priorities the
  /// monitor knows (a path's last answer, -1 when it has none, as multipathd's PRIO_UNDEF; a path
  /// counts as usable when usable_path_locked says so and its priority is known). When that
  /// changes the grouping (regrouping_changes: not the order of the groups, which failback
  /// handles), records it as the wanted reload and returns true. A table the regroup refuses (a
  /// token twice, groups whose per-path arguments do not mix) is left alone.
  bool regroup_step() noexcept {
    using selectors = typename detail::engine_selectors<Engine>::type;
    std::optional<grouping_policy> policy;
    std::vector<path_prio> facts;
    {
      std::lock_guard guard(mutex_);
      policy = grouping_policy_of(settings_.path_grouping_policy);
      if (!policy) {
        wanted_reload_.reset();
        return false;
      }
      for (const auto& s : slots_)
        facts.push_back({std::string(s.path->device()), s.priority, s.priority >= 0 && usable_path_locked(s), {}});
    }
    std::optional<std::string> wanted;
    if (auto current = parse_table<selectors>(engine_->status(status_type::table))) {
      auto changes = regrouping_changes<selectors>(*current, *policy, facts);
      if (changes && *changes)
        if (auto params = regroup_params<selectors>(*current, *policy, facts))
          wanted = std::move(*params);
    }
    std::lock_guard guard(mutex_);
    wanted_reload_ = std::move(wanted);
    return wanted_reload_.has_value();
  }

  /// The group the engine uses: INFO's next-group field, which is the A group or, when none is
  /// active, the group the next I/O will try (product.md §8.5).
  std::uint32_t engine_group() const {
    auto words = mpath::detail::split_words(engine_->status(status_type::info));
    std::uint32_t n = 0;
    if (words.size() > 5)
      (void)mpath::detail::parse_u32(words[5], n);
    return n;
  }

  /// §8.5 step (3).
  void failback_step() noexcept {
    if (nr_groups_ < 2)
      return;
    std::uint32_t current = engine_group();
    std::uint32_t best = 0;
    bool switch_now = false;
    {
      std::lock_guard guard(mutex_);
      best = best_group_locked();
      bool wanted = best != 0 && best != current;
      bool was_wanted = std::exchange(failback_wanted_, wanted);
      bool any_came_back = false, followover = false;
      for (std::size_t i = 0; i < slots_.size(); ++i) {
        const slot& s = slots_[i];
        if (!s.came_back)
          continue;
        any_came_back = true;
        if (s.group != best)
          continue;
        bool alone = true;
        for (std::size_t j = 0; j < slots_.size(); ++j)
          if (j != i && slots_[j].group == best && usable_path_locked(slots_[j]))
            alone = false;
        followover |= alone;
      }
      switch (settings_.failback) {
      case failback_mode::manual: break;
      case failback_mode::immediate: switch_now = wanted; break;
      case failback_mode::followover: switch_now = wanted && followover; break;
      case failback_mode::deferred:
        // multipathd's update_mpp_prio + deferred_failback_tick: armed at N+1 when the switch
        // becomes wanted (it was not at the previous tick) or a path comes back, and decremented
        // at the same tick, so the switch comes N ticks after; a cancelled countdown waits for
        // the next such moment.
        if (wanted && (!was_wanted || any_came_back))
          failback_tick_ = settings_.failback_seconds + 1;
        if (failback_tick_ > 0 && --failback_tick_ == 0)
          switch_now = wanted;
        break;
      }
    }
    if (switch_now && send({"switch_group", std::to_string(best)}))
      log({health_event::kind::switch_group, map_, {}, best});
  }

  // ---------------------------------------------------------------- members

  Engine* engine_; ///< the live table's (table_reloaded moves it, with the tick cancelled)
  executor_type& exec_;
  Checker& checker_;
  Prio& prio_;
  Sink& sink_;
  const std::string map_;

  mutable std::mutex mutex_;
  // Guarded by mutex_ (the slot vector itself is fixed at construction).
  health_settings settings_;
  monitor_options options_;
  std::vector<slot> slots_;
  std::uint32_t nr_groups_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  std::uint64_t tick_ = 0;
  std::uint64_t next_due_ns_ = 0;
  bool in_recovery_ = false;
  std::uint32_t retry_tick_ = 0;
  std::uint32_t failback_tick_ = 0;
  bool failback_wanted_ = false;             ///< §8.5: a switch was wanted at the previous tick
  std::optional<std::string> wanted_reload_; ///< §8.5: the regrouped table's parameters, not loaded yet
  reload_listener reload_listener_ = nullptr;
  void* reload_context_ = nullptr;

  /// Checks and priority requests not yet answered, and on_path_event calls in progress.
  std::atomic<std::uint64_t> outstanding_{0};
  work_item tick_work_;
};

} // namespace mpath::inline v0::health
