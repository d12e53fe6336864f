#pragma once
// The reference model of the health layer: what a device with a health layer (and so an `mpathctl`
// script with `policy`, `probe`, `prio` and `log`) must show, computed by a deliberately plain,
// sequential re-statement of product.md §8 (and §6's rows `policy`, `probe`, `prio`, `log`).
//
// It shares no code with the health layer it checks (include/mpath/health/monitor.hpp): it reads
// only the settings vocabulary (`health_settings`, `apply_setting`, so that `policy` errors have the
// same text) and the checker's result words (`check_result`). Its log wording is written here from
// §8.7. Like the kernel model (model.hpp) it keeps every per-path fact in a vector scanned from the
// front, and every rule is written as §8 states it, citing the paragraph.
//
// It owns a `reference_model` (the kernel half) and plays multipathd on top of it: it drives the
// kernel model only through `message(words)` and the model's public observers, exactly as the real
// health layer drives the engine through messages. Every other mpathctl command is forwarded to the
// kernel model unchanged by the methods below of the same name; after each, the health model looks
// for paths whose engine state changed without it (its stand-in for PATH_FAILED/PATH_REINSTATED
// events, §8.3 last sentence and §8.7). Call `after_kernel_command()` yourself if you drive
// `kernel()` directly; move time only through this class's `sleep`.
//
// Time (§8.1): the first tick comes 1000 ms after the first successful `policy` command, then one
// every 1000 ms. `sleep(ms)` moves the kernel model up to each tick that falls inside the interval
// (a tick exactly at its end included), runs the tick, then the kernel model's deferred work, and
// finally moves the kernel model to the end of the interval.
//
// `path_grouping_policy` (§8.5) is in scope: step (3) of a tick regroups the table TABLE status
// shows with the priorities the layer has read, and when that changes the grouping it does the
// regrouping reload right after the tick (and the deferred work the tick caused), in place of the
// failback decision, logging `NAME: reload` (§8.7). The regrouping is re-stated here on
// `model_table`; only the check that the engine would accept the new table is the library's table
// grammar (as for `create` and `reload`). Priorities are read when the monitor reads them
// (multipathd's update_prio): for a path checked usable at a tick, and, when one of those changed or
// a path came back, for every other usable path; a `prio` command changes nothing before that.
//
// Out of scope (parsed and stored, no effect): `marginal_pathgroups on` (a held path is kept out
// exactly as with `off`). The checker is synchronous, so `checker_timeout` never fires; a `timeout`
// probe answer is an unusable result like `down`.
//
// Where §8 is silent, the choice made is written where it applies, marked "Choice:".

#include <mpath/health/path_checker.hpp>
#include <mpath/health/settings.hpp>
#include <mpath/table.hpp>
#include <mpath/testing/model.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mpath::inline v0::testing {

class health_reference_model {
public:
  /// `name` is the map name in log lines (§8.7) and topology's first line.
  explicit health_reference_model(model_table t, std::string name = "mp")
      : kernel_(std::move(t)), name_(std::move(name)) {
    for (const auto& d : kernel_.devices()) {
      path_state p;
      p.device = d;
      paths_.push_back(std::move(p));
    }
    snapshot_engine();
  }

  reference_model& kernel() noexcept { return kernel_; }
  const reference_model& kernel() const noexcept { return kernel_; }
  void set_name(std::string name) { name_ = std::move(name); }
  const std::string& name() const noexcept { return name_; }

  // ------------------------------------------------------------------ health commands (§6)

  /// `policy NAME KEY VALUE...` (§8.2): nothing on success, else apply_setting's EINVAL text (the
  /// setting is then unchanged).
  ///
  /// Choice: only a *successful* `policy` command starts the health layer; one with a bad key or
  /// value changes nothing at all, so a device whose every `policy` failed behaves as one without
  /// a health layer. After `stop()` settings are still stored but the layer does not start again.
  std::optional<std::string> policy(std::string_view key, std::span<const std::string> values) {
    auto before = settings_;
    auto r = health::apply_setting(settings_, key, values);
    if (!r)
      return r.err().text;
    if (!running_) {
      if (!stopped_)
        start();
      return std::nullopt;
    }
    if (settings_.no_path_retry != before.no_path_retry ||
        settings_.no_path_retry_count != before.no_path_retry_count) {
      // Choice, after multipathd's set_no_path_retry: a changed `no_path_retry` on a running layer
      // sends what the new value wants now. fail: fail_if_no_path, recovery over; queue:
      // queue_if_no_path, recovery over; N: with a path active, queue_if_no_path and recovery
      // over; with none, nothing now (step 2 of the next tick enters recovery, a running
      // countdown is kept); unset: recovery over, the engine's flag left alone.
      using m = health::no_path_retry_mode;
      bool was_in_recovery = in_recovery_;
      auto end_recovery = [&] {
        in_recovery_ = false;
        retry_ticks_ = 0;
      };
      switch (settings_.no_path_retry) {
      case m::unset: end_recovery(); break;
      case m::fail:
        end_recovery();
        send({"fail_if_no_path"});
        break;
      case m::queue:
        end_recovery();
        if (send({"queue_if_no_path"}) && was_in_recovery)
          log_.push_back(name_ + ": Recovered to normal mode");
        break;
      case m::retries:
        if (kernel_.nr_valid_paths() > 0) {
          end_recovery();
          if (send({"queue_if_no_path"}) && was_in_recovery)
            log_.push_back(name_ + ": Recovered to normal mode");
        }
        break;
      }
    }
    if (settings_.failback != before.failback || settings_.failback_seconds != before.failback_seconds) {
      // Choice: a new `failback` drops a running N-seconds countdown; the next tick decides
      // afresh ("becomes wanted" is judged against the previous tick, which is kept).
      failback_countdown_.reset();
    }
    // Choice: other new values apply from the next check or tick that reads them; the paths'
    // current intervals and countdowns are not touched (a new max_polling_interval caps the next
    // doubling, a new polling_interval is what the next reset returns to).
    return std::nullopt;
  }

  /// `probe NAME PATH WORD`: what the simulated checker answers for PATH from now on (default up).
  /// The checker answers at the moment of the check (synchronously).
  void probe(std::string_view device, health::check_result r) {
    if (path_state* p = find_any(device))
      p->answer = r;
  }

  /// `prio NAME PATH N`: what the simulated prioritizer answers for PATH from now on (default 1).
  void prio(std::string_view device, int n) {
    if (path_state* p = find_any(device))
      p->priority = n;
  }

  /// `log NAME`: the log lines since the last call, oldest first (§8.7 wording).
  std::vector<std::string> take_log() { return std::exchange(log_, {}); }

  /// The health layer of the device is stopped (the daemon exits or the device goes): §8.6 sends
  /// `fail_if_no_path` unless `no_path_retry queue`. No ticks after this.
  ///
  /// Choice: with `no_path_retry` unset `fail_if_no_path` is sent too (§8.6 makes no exception);
  /// nothing is logged; the kernel model's deferred work is then run (so queued I/O fails at once);
  /// stopping a layer that never started does nothing.
  void stop() {
    if (!running_)
      return;
    running_ = false;
    stopped_ = true;
    if (settings_.no_path_retry != health::no_path_retry_mode::queue)
      send({"fail_if_no_path"});
    kernel_.run(); // the queued I/O that now fails, as after a tick
    snapshot_engine();
  }

  // ------------------------------------------------------------------ time (§8.1)

  /// `sleep NAME MS`
  ///
  /// Choice: kernel timers due at the very instant of a tick fire before the tick (the kernel model
  /// is moved *up to* the tick first).
  void sleep(std::uint64_t ms) {
    std::uint64_t target = now_ms_ + ms;
    while (running_ && next_tick_ms_ <= target) {
      // The tick is a timer like the kernel's: the clock reaches it firing what is due on the
      // way, the tick runs, then DM core's run (requeued I/O is resubmitted after it).
      kernel_.sleep_to_timer(next_tick_ms_ - now_ms_);
      now_ms_ = next_tick_ms_;
      after_kernel_command();
      tick();
      kernel_.run();
      after_kernel_command();
      if (auto t = std::exchange(wanted_reload_, std::nullopt)) {
        // §8.5's regrouping reload, done by the layer's owner after the tick (the engine's hand-off,
        // health_monitor::reload_if_wanted). Choice: `NAME: reload` is logged as the reload starts,
        // before whatever the new table's first I/O shows.
        log_.push_back(name_ + ": reload");
        reload(std::move(*t));
      }
      next_tick_ms_ += 1000;
    }
    if (target > now_ms_ || ms == 0) { // `sleep 0` still reaches the kernel model unchanged
      kernel_.sleep(target - now_ms_);
      now_ms_ = target;
      after_kernel_command();
    }
  }

  // ------------------------------------------------------------------ forwarded commands

  void io(std::size_t count, std::uint64_t bytes = 4096) {
    kernel_.io(count, bytes);
    after_kernel_command();
  }
  void complete(std::string_view device, std::size_t count, blk_status status) {
    kernel_.complete(device, count, status);
    after_kernel_command();
  }
  void fault(std::string_view device, bool on) {
    kernel_.fault(device, on);
    after_kernel_command();
  }
  void hwh(std::span<const activation_result> results) {
    kernel_.hwh(results);
    after_kernel_command();
  }
  void run() {
    kernel_.run();
    after_kernel_command();
  }
  void suspend(bool noflush) {
    kernel_.suspend(noflush);
    after_kernel_command();
  }
  void resume() {
    kernel_.resume();
    after_kernel_command();
  }
  reference_model::message_result message(std::span<const std::string> words) {
    auto r = kernel_.message(words);
    after_kernel_command();
    return r;
  }
  void set_nopath_timeout(std::uint32_t secs) {
    kernel_.set_nopath_timeout(secs);
    after_kernel_command();
  }
  /// `reload NAME PARAMS...` (product.md §6): the kernel's reload, then the layer follows the new
  /// table as health_monitor::table_reloaded does. A token keeps the layer's view of it; one the
  /// table adds is new to the layer (checked at the next tick; what `probe`/`prio` said of it
  /// before stays); the paths the layer knows are down (an unusable answer, or held by §8.4) are
  /// failed in the new table at once, which starts every path active; with no_path_retry `fail`
  /// a table that queues is told fail_if_no_path (§8.6); a failback countdown starts over.
  reference_model::message_result reload(model_table t) {
    auto r = kernel_.reload(std::move(t));
    after_kernel_command();
    if (r.code != 0)
      return r;
    std::vector<path_state> next;
    for (std::size_t k = 0; k < kernel_.path_count(); ++k) {
      const std::string& device = kernel_.device(k);
      if (std::any_of(next.begin(), next.end(), [&](const path_state& p) { return p.device == device; }))
        continue;
      auto known = std::find_if(paths_.begin(), paths_.end(), [&](const path_state& p) { return p.device == device; });
      if (known != paths_.end()) {
        next.push_back(*known);
        continue;
      }
      path_state fresh;
      fresh.device = device;
      fresh.interval = settings_.polling_interval;
      auto gone = std::find_if(gone_.begin(), gone_.end(), [&](const path_state& p) { return p.device == device; });
      if (gone != gone_.end()) { // the checker's and the prioritizer's word outlive the table
        fresh.answer = gone->answer;
        fresh.priority = gone->priority;
        gone_.erase(gone);
      }
      next.push_back(std::move(fresh));
    }
    for (auto& p : paths_)
      if (std::none_of(next.begin(), next.end(), [&](const path_state& n) { return n.device == p.device; }))
        gone_.push_back(std::move(p));
    paths_ = std::move(next);
    failback_countdown_.reset();
    switch_wanted_ = false;
    snapshot_engine();
    if (!running_)
      return {};
    for (const auto& p : paths_)
      if (((p.state && !health::is_usable(*p.state)) || p.held) && any_active(p.device))
        send({"fail_path", p.device});
    if (settings_.no_path_retry == health::no_path_retry_mode::fail && kernel_.queue_if_no_path())
      send({"fail_if_no_path"});
    kernel_.run(); // DM core's run after the layer's messages, as health_sim_device::reload
    after_kernel_command();
    return {};
  }

  void set_path_failure_threshold(std::uint32_t n) {
    kernel_.set_path_failure_threshold(n);
    after_kernel_command();
  }
  void set_keep_last_path(bool on) {
    kernel_.set_keep_last_path(on);
    after_kernel_command();
  }
  std::vector<std::string> take_events() {
    after_kernel_command();
    events_seen_ = 0;
    return kernel_.take_events();
  }

  /// Notices the paths whose engine state changed since the health model last looked, as the real
  /// health layer learns of them from PATH_FAILED / PATH_REINSTATED events.
  ///
  /// §8.7: one `NAME: remaining active paths: N` per change "it saw". Choice: N is the number of
  /// paths active in the engine (the kernel model's nr_valid_paths, i.e. the event's NR_VALID),
  /// counted forward from the last known state over the changed paths in table order, one line
  /// per changed table path. The same N is used for the changes the layer causes itself.
  ///
  /// §8.3: a path the engine failed gets a countdown of at most polling_interval. Choice: the
  /// health layer also takes such a path as down from then on (as multipathd marks a path it sees
  /// failed PATH_DOWN): it shows `faulty`, counts as unusable (§8.4-8.6) and its next usable check
  /// is an unusable-to-usable change (§8.4 counts it). A failure the engine made by a
  /// `fail_path` message is seen in the same way: an event does not say who caused it. A path the
  /// engine reinstated without the health layer is only logged; the checker decides at its next
  /// check ("the checker's word wins").
  void after_kernel_command() {
    const auto& events = kernel_.delivered_events();
    for (; events_seen_ < events.size(); ++events_seen_)
      if (running_)
        seen(events[events_seen_]);
  }

  // ------------------------------------------------------------------ observations

  bool running() const noexcept { return running_; }
  const health::health_settings& settings() const noexcept { return settings_; }
  std::uint64_t now_ms() const noexcept { return now_ms_; }
  /// Ticks fired so far.
  std::uint64_t tick_count() const noexcept { return ticks_; }
  /// §8.6: true from `Entering recovery mode` until `Recovered to normal mode`, including after
  /// `Disable queueing` (multipathd's in_recovery).
  bool in_recovery() const noexcept { return in_recovery_; }
  /// The `no_path_retry` countdown left (0 when not counting, e.g. after `Disable queueing`).
  std::uint64_t recovery_ticks_left() const noexcept { return retry_ticks_; }
  /// The `failback N` countdown left, if one runs (§8.5).
  std::optional<std::uint64_t> failback_ticks_left() const noexcept { return failback_countdown_; }

  /// §8.7's checker column: `ready` (up), `faulty` (down), `ghost`, `i/o pending`, `i/o timeout`,
  /// `delayed` (held by §8.4), `undef` (not checked yet, or no health layer).
  ///
  /// Choice: `shaky` (not in §8.7) shows `shaky`; a pending answer shows `i/o pending` until the
  /// next answer, but the path keeps its previous state for every decision ("pending changes
  /// nothing"); a held path whose last answer was unusable shows that answer, not `delayed`.
  std::string check_state(std::string_view device) const {
    const path_state* p = find(device);
    if (!p || !running_) // Choice: a stopped layer shows `undef` too ("no health layer")
      return "undef";
    if (p->pending)
      return "i/o pending";
    if (!p->state)
      return "undef";
    if (p->held && health::is_usable(*p->state))
      return "delayed";
    switch (*p->state) {
    case health::check_result::up: return "ready";
    case health::check_result::down: return "faulty";
    case health::check_result::ghost: return "ghost";
    case health::check_result::pending: return "i/o pending";
    case health::check_result::timeout: return "i/o timeout";
    case health::check_result::shaky: return "shaky";
    }
    return "undef";
  }

  /// §8.4: the path is held out (`delayed`).
  bool held(std::string_view device) const {
    const path_state* p = find(device);
    return p && p->held;
  }
  /// §8.4's failure count of the path.
  std::uint32_t failures(std::string_view device) const {
    const path_state* p = find(device);
    return p ? p->failures : 0;
  }
  /// §8.3's interval and countdown of the path, in ticks.
  std::uint32_t interval(std::string_view device) const {
    const path_state* p = find(device);
    return p ? p->interval : 0;
  }
  std::uint32_t countdown(std::string_view device) const {
    const path_state* p = find(device);
    return p ? p->countdown : 0;
  }

  /// §8.5: group `g`'s (1-based) priority, nothing when it has no usable path.
  std::optional<int> group_priority(std::size_t g) const {
    const auto& groups = kernel_.table_spec().groups;
    if (g < 1 || g > groups.size())
      return std::nullopt;
    long long sum = 0, usable = 0;
    for (const auto& tp : groups[g - 1].paths) {
      const path_state* p = find(tp.device);
      if (p && is_usable_now(*p)) {
        sum += p->known_priority.value_or(0); // a usable path was checked usable, so it was read
        ++usable;
      }
    }
    if (usable == 0)
      return std::nullopt;
    return int(sum / usable); // integer average (C++ division: truncates toward zero)
  }

  /// §8.5: the best group (1-based). Choice: nothing when no group has a usable path (no group has
  /// a priority), and then no failback switches.
  std::optional<std::size_t> best_group() const {
    std::optional<std::size_t> best;
    int best_prio = 0;
    std::size_t best_usable = 0;
    for (std::size_t g = 1; g <= kernel_.table_spec().groups.size(); ++g) {
      auto prio = group_priority(g);
      if (!prio)
        continue;
      std::size_t usable = usable_in_group(g);
      // Scanned from the front with strict comparisons: ties go to the lower group number.
      if (!best || *prio > best_prio || (*prio == best_prio && usable > best_usable)) {
        best = g;
        best_prio = *prio;
        best_usable = usable;
      }
    }
    return best;
  }

  /// §8.5: the group the engine uses: the `A` group of INFO, or the next group (INFO's next-group
  /// number) when none is active.
  std::size_t used_group() const {
    auto w = words_of(kernel_.info());
    std::size_t i = 0;
    i += 1 + number(w, i); // features
    i += 1 + number(w, i); // hardware handler status
    std::size_t groups = number(w, i++);
    std::size_t next = number(w, i++);
    for (std::size_t g = 1; g <= groups; ++g) {
      bool active = i < w.size() && w[i] == "A";
      ++i;
      i += 1 + number(w, i); // selector status
      std::size_t paths = number(w, i++);
      std::size_t per_path = number(w, i++);
      if (active)
        return g;
      i += paths * (3 + per_path); // device, A|F, fail count, selector words
    }
    return next;
  }

  /// `topology NAME` (§8.7), one string per line.
  std::vector<std::string> topology() const {
    std::vector<std::string> out{name_};
    auto t = words_of(kernel_.table_status());
    std::size_t i = 0;
    std::string features = join(t, i, 1 + number(t, i));
    i += 1 + number(t, i);
    std::string hwhandler = join(t, i, 1 + number(t, i));
    i += 1 + number(t, i);
    out.push_back("features='" + features + "' hwhandler='" + hwhandler + "' wp=rw");
    std::size_t groups = number(t, i++);
    ++i; // initial group

    // Group status letters from INFO.
    std::vector<std::string> letters;
    {
      auto w = words_of(kernel_.info());
      std::size_t j = 0;
      j += 1 + number(w, j);
      j += 1 + number(w, j);
      std::size_t n = number(w, j++);
      ++j;
      for (std::size_t g = 0; g < n; ++g) {
        letters.push_back(j < w.size() ? w[j] : "");
        ++j;
        j += 1 + number(w, j);
        std::size_t paths = number(w, j++);
        std::size_t per_path = number(w, j++);
        j += paths * (3 + per_path);
      }
    }

    // Column widths over the whole device.
    const auto& spec = kernel_.table_spec().groups;
    std::size_t dev_width = 0, state_width = 0;
    for (std::size_t k = 0; k < kernel_.path_count(); ++k) {
      dev_width = std::max(dev_width, kernel_.device(k).size());
      state_width = std::max(state_width, std::string_view(kernel_.path_active(k) ? "active" : "failed").size());
    }

    std::size_t occurrence = 0;
    for (std::size_t g = 0; g < groups; ++g) {
      std::size_t nargs = number(t, i + 1);
      std::string policy_words = join(t, i, 2 + nargs);
      i += 2 + nargs;
      std::size_t paths = number(t, i++);
      std::size_t per_path = number(t, i++);
      i += paths * (1 + per_path);
      bool last_group = g + 1 == groups;
      std::string letter = g < letters.size() ? letters[g] : "";
      std::string status = letter == "A" ? "active" : letter == "D" ? "disabled" : "enabled";
      int prio = 0;
      if (running_)
        prio = group_priority(g + 1).value_or(0);
      out.push_back(std::string(last_group ? "`-+- " : "|-+- ") + "policy='" + policy_words +
                    "' prio=" + std::to_string(prio) + " status=" + status);
      for (std::size_t k = 0; k < paths; ++k, ++occurrence) {
        const std::string& dev =
            g < spec.size() && k < spec[g].paths.size() ? spec[g].paths[k].device : kernel_.device(occurrence);
        std::string state = kernel_.path_active(occurrence) ? "active" : "failed";
        std::string line = std::string(last_group ? "  " : "| ") + (k + 1 == paths ? "`- " : "|- ");
        line += dev + std::string(dev_width - dev.size(), ' ') + " ";
        line += state + std::string(state_width - state.size(), ' ') + " ";
        line += check_state(dev);
        out.push_back(std::move(line));
      }
    }
    return out;
  }

private:
  struct path_state {
    std::string device;
    health::check_result answer = health::check_result::up; ///< what `probe` said
    int priority = 1;                                       ///< what `prio` said
    /// What the layer last read from the prioritizer (§8.5 uses this); nothing before the first read.
    std::optional<int> known_priority;
    bool checked_usable = false; ///< this tick: checked usable and not held (its priority is read)
    bool came_back = false;      ///< this tick: checked usable while the engine had it failed
    std::uint32_t countdown = 1; ///< §8.3, in ticks
    std::uint32_t interval = 5;  ///< §8.3, in seconds = ticks
    /// The health layer's view of the path: the last non-pending answer, or `down` after the
    /// engine was seen failing it; nothing before the first answer (`undef`).
    std::optional<health::check_result> state;
    bool pending = false; ///< the latest answer was `pending` (display only)
    // §8.4
    bool held = false;
    std::uint32_t failures = 0;
    std::uint32_t usable_checks = 0;      ///< usable checks since the last failure was forgotten
    std::uint64_t last_unusable_tick = 0; ///< §8.4: the tick it was last seen unusable at
  };

  // ------------------------------------------------------------------ events seen (§8.3, §8.7)

  /// One delivered path event (`PATH_FAILED DEV N` / `PATH_REINSTATED DEV N`), as the layer sees
  /// it when the engine delivers it. A change the layer caused itself changes nothing: its view
  /// already says so. A path the engine failed that the layer took as usable (or had not checked
  /// yet) is down from now on (multipathd marks it PATH_DOWN): its countdown is at most
  /// polling_interval, a pending failback is off, recovery may start, and the remaining paths are
  /// logged with the event's count. A path the engine reinstated that the layer took as down is
  /// logged likewise, and ends recovery; the checker decides at its next check.
  void seen(const std::string& event) {
    auto w = words_of(event);
    if (w.size() != 3)
      return;
    path_state* p = find(w[1]);
    if (!p)
      return;
    std::string remaining = name_ + ": remaining active paths: " + w[2];
    // A held path (§8.4) is not usable to the layer whatever its last answer (the monitor's
    // `delayed`): its failure is one the layer made.
    bool usable = (!p->state || health::is_usable(*p->state)) && !p->held;
    if (w[0] == "PATH_FAILED") {
      p->countdown = std::min(p->countdown, settings_.polling_interval);
      if (!usable)
        return;
      p->state = health::check_result::down;
      p->pending = false;
      // §8.4 "last seen unusable" includes a failure the layer sees; between ticks, the layer
      // looks at it at its next tick (a path failed on I/O errors while its checker says up is
      // the flapping path the hold-down is for).
      p->last_unusable_tick = ticks_ + 1;
      path_failed_since_failback_ = true;
      enter_recovery_if_no_path(std::size_t(std::stoul(w[2]))); // before the remaining line
      log_.push_back(remaining);
    } else if (w[0] == "PATH_REINSTATED" && !usable) {
      if (in_recovery_ && w[2] != "0")
        leave_recovery();
      log_.push_back(remaining);
    }
  }

  // ------------------------------------------------------------------ helpers

  path_state* find(std::string_view device) {
    for (auto& p : paths_)
      if (p.device == device)
        return &p;
    return nullptr;
  }
  const path_state* find(std::string_view device) const {
    for (const auto& p : paths_)
      if (p.device == device)
        return &p;
    return nullptr;
  }
  /// Also a token a reload dropped (probe/prio may still name it).
  path_state* find_any(std::string_view device) {
    if (path_state* p = find(device))
      return p;
    for (auto& p : gone_)
      if (p.device == device)
        return &p;
    return nullptr;
  }

  static std::vector<std::string> words_of(const std::string& text) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : text) {
      if (c == ' ') {
        if (!cur.empty())
          out.push_back(std::exchange(cur, {}));
      } else {
        cur += c;
      }
    }
    if (!cur.empty())
      out.push_back(cur);
    return out;
  }

  static std::size_t number(const std::vector<std::string>& w, std::size_t i) {
    if (i >= w.size())
      return 0;
    std::size_t n = 0;
    for (char c : w[i]) {
      if (c < '0' || c > '9')
        return 0;
      n = n * 10 + std::size_t(c - '0');
    }
    return n;
  }

  static std::string join(const std::vector<std::string>& w, std::size_t from, std::size_t count) {
    std::string out;
    for (std::size_t k = from; k < from + count && k < w.size(); ++k) {
      if (!out.empty())
        out += ' ';
      out += w[k];
    }
    return out;
  }

  /// Usable for §8.4-8.6: the last answer was up or ghost and §8.4 does not hold the path.
  ///
  /// Choice: a path not answered yet (`undef`: before the first tick, while the first tick's
  /// checks run, or when its first answer was `pending`) is usable iff the engine has it active;
  /// the layer has no word of its own yet. So failing the first path at the first tick does not
  /// enter recovery while the next one is still to be checked.
  /// Usable for §8.4's "other usable path" and §8.5's groups: checked up or ghost, not held, and
  /// active in the engine. Choice: a path not checked yet (or only `pending` so far) is not known
  /// to be usable, as multipathd counts only PATH_UP and PATH_GHOST.
  bool is_usable_now(const path_state& p) const {
    if (p.held || !p.state)
      return false;
    return health::is_usable(*p.state) && any_active(p.device);
  }

  std::size_t usable_paths() const {
    std::size_t n = 0;
    for (const auto& p : paths_)
      n += is_usable_now(p) ? 1 : 0;
    return n;
  }

  std::size_t usable_in_group(std::size_t g) const {
    std::size_t n = 0;
    for (const auto& tp : kernel_.table_spec().groups[g - 1].paths) {
      const path_state* p = find(tp.device);
      n += p && is_usable_now(*p) ? 1 : 0;
    }
    return n;
  }

  /// Choice for a device listed in several groups: "active in the engine" (§8.3's doubling) means
  /// every table entry of it is active; it is failed by the checker while any entry is active and
  /// reinstated while any entry is failed (the messages act on every entry).
  bool any_active(const std::string& device) const {
    for (std::size_t k = 0; k < kernel_.path_count(); ++k)
      if (kernel_.device(k) == device && kernel_.path_active(k))
        return true;
    return false;
  }
  bool all_active(const std::string& device) const {
    for (std::size_t k = 0; k < kernel_.path_count(); ++k)
      if (kernel_.device(k) == device && !kernel_.path_active(k))
        return false;
    return true;
  }

  void snapshot_engine() {
    known_active_.clear();
    for (std::size_t k = 0; k < kernel_.path_count(); ++k)
      known_active_.push_back(kernel_.path_active(k));
  }

  /// Sends one message the way the real layer does, and takes the engine state it leads to as
  /// known (a change the layer causes is not "seen"). Choice: a refused message (EBUSY while the
  /// device is suspended) is not logged; the layer's own state moves on as if it had been
  /// accepted, so a check simply acts again at the path's next check.
  bool send(std::vector<std::string> words) {
    auto r = kernel_.message(words);
    snapshot_engine();
    return r.code == 0;
  }

  std::string remaining_line() const {
    return name_ + ": remaining active paths: " + std::to_string(kernel_.nr_valid_paths());
  }

  // ------------------------------------------------------------------ start (§8.6)

  void start() {
    running_ = true;
    next_tick_ms_ = now_ms_ + 1000; // §8.1
    snapshot_engine();
    for (auto& p : paths_) {
      p.countdown = 1; // §8.3: every path is checked at the first tick
      p.interval = settings_.polling_interval;
    }
    send_start_queueing();
  }

  /// §8.6: `fail` sends fail_if_no_path, `queue` and N send queue_if_no_path, unset sends nothing.
  void send_start_queueing() {
    using m = health::no_path_retry_mode;
    if (settings_.no_path_retry == m::fail)
      send({"fail_if_no_path"});
    else if (settings_.no_path_retry == m::queue || settings_.no_path_retry == m::retries)
      send({"queue_if_no_path"});
  }

  // ------------------------------------------------------------------ the tick (§8.1)

  void tick() {
    ++ticks_;
    std::vector<std::string> came_back; // reinstated by this tick's checks (§8.5)
    for (auto& p : paths_)
      p.checked_usable = p.came_back = false;
    // (1) the checks that are due, and the fail/reinstate they cause; then the priorities.
    for (auto& p : paths_) {
      if (p.countdown > 0)
        --p.countdown;
      if (p.countdown == 0)
        check(p, came_back);
    }
    read_priorities();
    // (2) the no_path_retry countdown.
    no_path_retry_tick();
    // (3) the regroup, or else the failback decision.
    wanted_reload_ = regrouped();
    if (!wanted_reload_)
      failback_tick(came_back);
  }

  /// §8.5's priorities as the layer reads them (multipathd's update_prio). Choice, the monitor's:
  /// after the checks, the priority of every path checked usable at this tick is read; if one of
  /// them differs from what the layer had (a first read always does) or one of them came back (the
  /// engine had it failed), the priority of every other usable path is read too.
  void read_priorities() {
    bool again = false;
    for (auto& p : paths_) {
      if (!p.checked_usable)
        continue;
      again |= p.came_back || p.known_priority != p.priority;
      p.known_priority = p.priority;
    }
    if (!again)
      return;
    for (auto& p : paths_)
      if (!p.checked_usable && is_usable_now(p))
        p.known_priority = p.priority;
  }

  // ------------------------------------------------------------------ regroup (§8.5)

  /// `path_grouping_policy`'s table, when it groups the paths otherwise than the live table does.
  ///
  /// §8.5: "failover = one path per group, multibus = one group with every path, group_by_prio =
  /// one group per distinct priority; groups are ordered by priority, highest first (ties: more
  /// usable paths first, then table order), paths keep table order inside a group, every group
  /// takes the first group's selector and arguments, each path keeps its per-path arguments, the
  /// initial group is the best group, and features and handler are kept. The health layer reloads
  /// when priorities change the grouping."
  ///
  /// Choices, the library's (grouping.hpp): the table regrouped is the one TABLE status shows
  /// (read back with the table grammar, so the handler's arguments, which TABLE status leaves out,
  /// are not kept); a path's priority is the one the layer last read, -1 when it has read none
  /// (multipathd's PRIO_UNDEF), and it counts as usable only with one; "change the grouping" means
  /// another set of groups (the groups' order is failback's business); no reload when a token is
  /// listed twice, when one group would mix paths with different numbers of per-path arguments,
  /// or when the table grammar refuses the result.
  std::optional<model_table> regrouped() const {
    using gp = health::pgpolicy;
    const gp policy = settings_.path_grouping_policy;
    if (policy == gp::none)
      return std::nullopt;
    auto live = parse_table(kernel_.table_status());
    if (!live)
      return std::nullopt;
    const model_table current = model_table::from(*live);
    if (current.groups.empty())
      return std::nullopt;

    struct entry {
      const model_table::path* path;
      int priority;
      bool usable;
      int key;
    };
    std::vector<entry> entries;
    for (const auto& g : current.groups)
      for (const auto& tp : g.paths) {
        for (const auto& e : entries)
          if (e.path->device == tp.device)
            return std::nullopt; // a token twice
        const path_state* p = find(tp.device);
        int prio = p && p->known_priority ? *p->known_priority : -1;
        bool usable = p && p->known_priority && is_usable_now(*p);
        int key = policy == gp::failover ? int(entries.size()) : policy == gp::multibus ? 0 : prio;
        entries.push_back({&tp, prio, usable, key});
      }

    struct bucket {
      int key;
      std::vector<const entry*> members;
      long long sum = 0;
      long long usable = 0;
      std::optional<int> priority() const {
        if (usable == 0)
          return std::nullopt;
        return int(sum / usable);
      }
    };
    std::vector<bucket> buckets; // in the order of their first path: the last tie-break
    for (const auto& e : entries) {
      auto b = std::find_if(buckets.begin(), buckets.end(), [&](const bucket& x) { return x.key == e.key; });
      if (b == buckets.end()) {
        buckets.push_back(bucket{e.key, {}});
        b = buckets.end() - 1;
      }
      b->members.push_back(&e);
      if (e.usable) {
        b->sum += e.priority;
        ++b->usable;
      }
    }
    std::stable_sort(buckets.begin(), buckets.end(), [](const bucket& a, const bucket& b) {
      auto pa = a.priority(), pb = b.priority();
      if (pa.has_value() != pb.has_value())
        return pa.has_value(); // a group with a priority before one without
      if (pa && *pa != *pb)
        return *pa > *pb;
      return a.usable > b.usable;
    });

    model_table next = current;
    next.groups.clear();
    next.initial_pg = 1;
    for (const auto& b : buckets) {
      model_table::group g{current.groups.front().selector, current.groups.front().selector_args, {}};
      for (const entry* e : b.members) {
        if (e->path->args.size() != b.members.front()->path->args.size())
          return std::nullopt;
        g.paths.push_back(*e->path);
      }
      next.groups.push_back(std::move(g));
    }
    if (same_groups(current, next))
      return std::nullopt;
    auto accepted = parse_table(params_of(next));
    if (!accepted)
      return std::nullopt;
    return model_table::from(*accepted);
  }

  /// The same groups, in any order: each group of `a` has its own group of `b` with the same
  /// selector, selector arguments and paths (with their per-path arguments), in any order.
  static bool same_groups(const model_table& a, const model_table& b) {
    if (a.groups.size() != b.groups.size())
      return false;
    auto has = [](const model_table::group& g, const model_table::path& p) {
      return std::any_of(g.paths.begin(), g.paths.end(),
                         [&](const model_table::path& q) { return q.device == p.device && q.args == p.args; });
    };
    std::vector<bool> taken(b.groups.size(), false);
    for (const auto& g : a.groups) {
      bool found = false;
      for (std::size_t j = 0; j < b.groups.size() && !found; ++j) {
        const auto& h = b.groups[j];
        if (taken[j] || h.selector != g.selector || h.selector_args != g.selector_args ||
            h.paths.size() != g.paths.size() ||
            !std::all_of(g.paths.begin(), g.paths.end(), [&](const model_table::path& p) { return has(h, p); }))
          continue;
        taken[j] = found = true;
      }
      if (!found)
        return false;
    }
    return true;
  }

  /// A model table as target parameters (what `reload` takes).
  static std::string params_of(const model_table& t) {
    std::vector<std::string> features;
    if (t.queue_if_no_path)
      features.push_back("queue_if_no_path");
    if (t.pg_init_retries)
      features.insert(features.end(), {"pg_init_retries", std::to_string(t.pg_init_retries)});
    if (t.pg_init_delay_msecs)
      features.insert(features.end(), {"pg_init_delay_msecs", std::to_string(*t.pg_init_delay_msecs)});
    if (t.retain_attached_hw_handler)
      features.push_back("retain_attached_hw_handler");
    if (t.bio)
      features.insert(features.end(), {"queue_mode", "bio"});
    std::string out = std::to_string(features.size());
    for (const auto& f : features)
      out += " " + f;
    if (t.hw_handler.empty()) {
      out += " 0";
    } else {
      out += " " + std::to_string(1 + t.hw_handler_args.size()) + " " + t.hw_handler;
      for (const auto& a : t.hw_handler_args)
        out += " " + a;
    }
    out += " " + std::to_string(t.groups.size()) + " " + std::to_string(t.initial_pg);
    for (const auto& g : t.groups) {
      out += " " + g.selector + " " + std::to_string(g.selector_args.size());
      for (const auto& a : g.selector_args)
        out += " " + a;
      out += " " + std::to_string(g.paths.size()) + " " +
             std::to_string(g.paths.empty() ? 0 : g.paths.front().args.size());
      for (const auto& p : g.paths) {
        out += " " + p.device;
        for (const auto& a : p.args)
          out += " " + a;
      }
    }
    return out;
  }

  /// §8.3 (and §8.4 for a usable answer).
  void check(path_state& p, std::vector<std::string>& came_back) {
    health::check_result r = p.answer;
    if (r == health::check_result::pending) {
      // "pending changes nothing and is checked again at the next tick". Choice: the interval is
      // kept; the ticks a pending check consumed are not subtracted from anything.
      p.pending = true;
      p.countdown = 1;
      return;
    }
    p.pending = false;
    std::optional<health::check_result> previous = p.state;
    bool was_active = all_active(p.device);
    p.state = r;
    bool usable = health::is_usable(r);

    if (!usable) {
      p.last_unusable_tick = ticks_; // §8.4: "last seen unusable": this answer
      // "an unusable result for a path the engine has active fails it (fail_path)".
      if (any_active(p.device) && send({"fail_path", p.device})) {
        log_.push_back("checker failed path " + p.device + " in map " + name_);
        enter_recovery_if_no_path();
        log_.push_back(remaining_line());
        path_failed_since_failback_ = true;
      }
    } else {
      marginal(p, previous);
      if (!p.held) {
        p.checked_usable = true; // its priority is read after the checks (read_priorities)
        p.came_back = !was_active;
      }
      // "A usable result for a path the engine has failed reinstates it unless §8.4 holds it".
      if (!p.held && !all_active(p.device))
        reinstate(p, came_back);
    }

    // "the interval doubles, capped at max_polling_interval, when the result is usable, the same
    // as the previous check, and the path active in the engine; otherwise it returns to
    // polling_interval". Choice: "previous check" is the layer's view before this check (so a
    // seen engine failure counts as a `down`), and "active" is the engine state before this
    // check acted.
    if (usable && previous == r && was_active) {
      std::uint64_t doubled = std::uint64_t(p.interval) * 2;
      p.interval = std::uint32_t(std::min<std::uint64_t>(doubled, settings_.max_checkint()));
    } else {
      p.interval = settings_.polling_interval;
    }
    p.countdown = p.interval; // "The countdown is then set to the interval."
  }

  /// "reinstate_path", its log lines and §8.6's end of recovery.
  ///
  /// Choice (log order, as multipathd's reinstate_path): `PATH: reinstated`, then
  /// `NAME: Recovered to normal mode` when it ends recovery, then `NAME: remaining active paths: N`.
  void reinstate(path_state& p, std::vector<std::string>& came_back) {
    if (!send({"reinstate_path", p.device}))
      return;
    log_.push_back(p.device + ": reinstated");
    came_back.push_back(p.device);
    // §8.6: "A path reinstated in recovery, or after queueing was disabled, sends
    // queue_if_no_path again and ends recovery."
    if (in_recovery_)
      leave_recovery();
    log_.push_back(remaining_line());
  }

  /// §8.4 for a usable answer, before §8.3 decides to reinstate (`previous` is the view before
  /// this answer).
  void marginal(path_state& p, const std::optional<health::check_result>& previous) {
    health::san_path_err_config san = settings_.san_path_err(); // maps the delay_* aliases
    if (!san.enabled()) {
      // Choice: with the hold-down off (never on, or turned off by `policy ... off`) nothing is
      // counted and a held path is let go silently at its next usable answer.
      p.held = false;
      p.failures = 0;
      p.usable_checks = 0;
      return;
    }
    if (!p.held) {
      if (previous && !health::is_usable(*previous)) {
        // "a failure is counted each time a path goes from unusable to usable". Choice: the
        // first answer (from `undef`) is not such a change.
        if (p.failures == 0)
          p.usable_checks = 0;
        ++p.failures;
        // "when the count exceeds threshold, the path is held out (checker state delayed)"
        if (p.failures > san.threshold) {
          p.held = true;
          log_.push_back(p.device + " : hit error threshold. Delaying path reinstatement");
          return; // the release rules apply from its next usable answer on, as multipathd's
        }
      } else if (p.failures > 0) {
        // "every forget_rate usable checks forget one failure". Choice: the usable checks are
        // counted from the one that counted the first failure (not included), and the check that
        // counts a failure is not one of them.
        if (++p.usable_checks >= san.forget_rate) {
          --p.failures;
          p.usable_checks = 0;
        }
      }
    }
    if (p.held) {
      // Both release rules are tried at every later usable answer of a held path; "reinstated
      // early" first (multipathd's check_path_reinstate_state).
      if (!other_path_usable(p)) {
        // "it is reinstated early when no other path of the device is usable"
        log_.push_back(p.device + " : reinstating path early");
        release(p);
      } else if (ticks_ >= p.last_unusable_tick + san.recovery_time) {
        // "until recovery_time seconds have passed since it was last seen unusable". Choice:
        // exactly recovery_time seconds after the last unusable answer is "passed".
        log_.push_back(p.device + " : reinstate the path after err recovery time");
        release(p);
      }
    }
  }

  /// "Then its count is reset."
  static void release(path_state& p) {
    p.held = false;
    p.failures = 0;
    p.usable_checks = 0;
  }

  bool other_path_usable(const path_state& self) const {
    for (const auto& p : paths_)
      if (&p != &self && is_usable_now(p))
        return true;
    return false;
  }

  // ------------------------------------------------------------------ no_path_retry (§8.6)

  void leave_recovery() {
    in_recovery_ = false;
    retry_ticks_ = 0;
    if (send({"queue_if_no_path"}))
      log_.push_back(name_ + ": Recovered to normal mode");
  }

  /// "when the device has no usable path left it enters recovery with a countdown of
  /// N × polling_interval + 1 ticks". Choice: "when" is the moment the last usable path goes: a
  /// checker failure (step 1 of a tick, so that tick's countdown step counts it) or a failure the
  /// layer sees between ticks (the first decrement is then at the next tick, as multipathd's
  /// update_queue_mode_del_path). Log order: `checker failed path ...`, `Entering recovery mode`,
  /// `remaining active paths: 0`. Step 2 of every tick also enters recovery if the device has no
  /// usable path and is not in recovery (e.g. every first answer was `pending`, or
  /// `no_path_retry N` was set after the paths went).
  /// `valid`: the engine's count of valid paths as the layer knows it (an event's count, or now).
  void enter_recovery_if_no_path(std::optional<std::size_t> valid = std::nullopt) {
    // Choice: "no usable path left" for recovery is the engine's count of valid paths, as
    // multipathd's count_active_paths after a failure (a path not checked yet still carries I/O).
    if (settings_.no_path_retry != health::no_path_retry_mode::retries || in_recovery_ ||
        valid.value_or(kernel_.nr_valid_paths()) > 0)
      return;
    in_recovery_ = true;
    retry_ticks_ = std::uint64_t(settings_.no_path_retry_count) * settings_.polling_interval + 1;
    log_.push_back(name_ + ": Entering recovery mode: max_retries=" + std::to_string(settings_.no_path_retry_count));
  }

  void no_path_retry_tick() {
    if (settings_.no_path_retry != health::no_path_retry_mode::retries)
      return;
    enter_recovery_if_no_path();
    if (in_recovery_ && kernel_.nr_valid_paths() > 0) {
      // Choice: a path that became usable without being reinstated by the layer (the engine had
      // it active already, e.g. after a hand `reinstate_path`) also ends recovery, here.
      leave_recovery();
    }
    // "decremented at every tick (the tick that entered recovery included); at 0 it sends
    // fail_if_no_path"
    if (in_recovery_ && retry_ticks_ > 0 && --retry_ticks_ == 0 && send({"fail_if_no_path"}))
      log_.push_back(name_ + ": Disable queueing");
  }

  // ------------------------------------------------------------------ failback (§8.5)

  void failback_tick(const std::vector<std::string>& came_back) {
    bool failed = std::exchange(path_failed_since_failback_, false);
    std::optional<std::size_t> best = best_group();
    bool wanted = best && *best != used_group();
    bool was_wanted = std::exchange(switch_wanted_, wanted);
    using fm = health::failback_mode;
    switch (settings_.failback) {
    case fm::manual: break; // "never switches"
    case fm::immediate:
      // "sends switch_group BEST at a tick where the best group differs from the one the engine
      // uses"
      if (wanted)
        switch_to(*best);
      break;
    case fm::followover:
      // "only when a path that came back at this tick is the only usable path of the best group".
      // Choice: "came back" = reinstated by the layer at this tick (a check or a §8.4 release).
      if (wanted && usable_in_group(*best) == 1) {
        for (const auto& tp : kernel_.table_spec().groups[*best - 1].paths) {
          const path_state* p = find(tp.device);
          bool back = std::find(came_back.begin(), came_back.end(), tp.device) != came_back.end();
          if (p && is_usable_now(*p) && back) {
            switch_to(*best);
            break;
          }
        }
      }
      break;
    case fm::deferred: {
      // "N starts a countdown of N+1 ticks when a switch becomes wanted (restarted when another
      // path comes back, cancelled when a path fails) and switches when it ends if the switch is
      // still wanted". Choices: the countdown is decremented at the tick that starts it (as §8.6's
      // countdown), so the switch comes N ticks after; "a path fails" = any path failed by the
      // checker or seen failed since the previous tick; "becomes wanted" = wanted now and not at
      // the previous tick, or wanted now and a path came back at this tick (so a cancelled
      // countdown starts again only when a path comes back or the wish goes and returns).
      std::uint64_t full = std::uint64_t(settings_.failback_seconds) + 1;
      if (failed)
        failback_countdown_.reset();
      else if (failback_countdown_ && !came_back.empty())
        failback_countdown_ = full;
      if (!failback_countdown_ && wanted && (!was_wanted || !came_back.empty()))
        failback_countdown_ = full;
      if (failback_countdown_ && --*failback_countdown_ == 0) {
        failback_countdown_.reset();
        if (wanted)
          switch_to(*best);
      }
      break;
    }
    }
  }

  void switch_to(std::size_t group) {
    if (send({"switch_group", std::to_string(group)}))
      log_.push_back(name_ + ": switch to path group #" + std::to_string(group));
  }

  // ------------------------------------------------------------------ state

  reference_model kernel_;
  std::string name_;
  health::health_settings settings_;
  bool running_ = false;
  bool stopped_ = false;
  std::uint64_t now_ms_ = 0;
  std::uint64_t next_tick_ms_ = 0;
  std::uint64_t ticks_ = 0;
  std::vector<path_state> paths_;  ///< one per distinct device, table order
  std::vector<bool> known_active_; ///< per table entry: the engine state last known
  std::size_t events_seen_ = 0;    ///< how many of the kernel model's delivered events were seen
  std::vector<std::string> log_;
  bool in_recovery_ = false;
  std::uint64_t retry_ticks_ = 0;
  std::optional<std::uint64_t> failback_countdown_;
  std::vector<path_state> gone_;             ///< tokens a reload dropped: what probe/prio said of them
  std::optional<model_table> wanted_reload_; ///< §8.5: the regrouped table this tick asked for
  bool switch_wanted_ = false;               ///< at the previous tick's failback decision
  bool path_failed_since_failback_ = false;
};

} // namespace mpath::inline v0::testing
