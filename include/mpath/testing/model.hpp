#pragma once
// The reference model: what a `sim_device` (and so an `mpathctl` script) must show, computed by a
// deliberately plain, sequential re-statement of kernel-target.md §2-4 and product.md §5-6.
//
// It shares no state-machine code with the engine: no atomics, no locks, no intrusive lists, no
// selector classes. Everything is a vector scanned from the front, and every rule is written as
// the specification states it. The model plays all three parties a `sim_device` has:
//
//   * the target (path choice §4.2, mapping §4.3, completion §4.4, pg_init §4.5, fail/reinstate
//     §4.6, queue_if_no_path and suspend §4.7, the no-path timeout §4.8, messages §3, status §2);
//   * the path selectors, each as an ordered list of valid paths (§5.1-5.4);
//   * DM core and the simulation around it: the requeue list (mpathctl's contract, product.md §6),
//     the deferred-work queue ordered by due time, the virtual clock, fault injection and the
//     scripted hardware handler.
//
// Its public operations are mpathctl's commands, so a model run and a script run line up one to
// one. Only what the model knows is accepted: the round-robin, queue-length, service-time and
// historical-service-time selectors (`supports_selector`); io-affinity chooses by the submitting
// CPU, which a sequential model has no notion of.

#include <mpath/hw_handler.hpp>
#include <mpath/io.hpp>
#include <mpath/table.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mpath::inline v0::testing {

/// A table as the model reads it: per-path arguments exactly as written (not canonicalised), so
/// the model applies the selectors' defaults itself.
struct model_table {
  struct path {
    std::string device;
    std::vector<std::string> args;
  };
  struct group {
    std::string selector;
    std::vector<std::string> selector_args;
    std::vector<path> paths;
  };
  bool queue_if_no_path = false;
  bool retain_attached_hw_handler = false;
  bool bio = false;
  std::uint32_t pg_init_retries = 0;
  std::optional<std::uint32_t> pg_init_delay_msecs;
  std::string hw_handler; ///< empty: none
  std::vector<std::string> hw_handler_args;
  std::uint32_t initial_pg = 1;
  std::vector<group> groups;

  /// From a table parsed by the library's grammar (its per-path arguments are in canonical form,
  /// which reads back to the same values).
  static model_table from(const table& t) {
    model_table m;
    m.queue_if_no_path = t.features.queue_if_no_path;
    m.retain_attached_hw_handler = t.features.retain_attached_hw_handler;
    m.bio = t.features.mode == queue_mode::bio;
    m.pg_init_retries = t.features.pg_init_retries;
    m.pg_init_delay_msecs = t.features.pg_init_delay_msecs;
    m.hw_handler = t.hw_handler;
    m.hw_handler_args = t.hw_handler_args;
    m.initial_pg = t.initial_pg;
    for (const auto& g : t.groups) {
      group mg{g.selector, g.selector_args, {}};
      for (const auto& p : g.paths)
        mg.paths.push_back({p.device, p.args});
      m.groups.push_back(std::move(mg));
    }
    return m;
  }
};

class reference_model {
public:
  static bool supports_selector(std::string_view name) noexcept {
    return name == "round-robin" || name == "queue-length" || name == "service-time" ||
           name == "historical-service-time";
  }

  /// Where a model I/O is.
  enum class where : std::uint8_t {
    in_flight,   ///< on a path (the backend has it)
    requeued,    ///< DM core's requeue list (request mode)
    held,        ///< the engine's FIFO (bio mode)
    pushed_back, ///< held across a noflush suspend (bio mode)
    done,
  };

  struct io_record {
    std::uint64_t id = 0;
    std::uint64_t bytes = 0;
    std::uint64_t start_ns = 0; ///< virtual time of the last dispatch (historical-service-time)
    where at = where::done;
    std::size_t path = 0; ///< while in flight: index in table order
    std::uint32_t completions = 0;
    std::uint32_t dispatches = 0;
    blk_status status = blk_status::ok;
    /// For an I/O failed with a path error: the state that allowed it (checked by the harness:
    /// no valid path, queueing off, no noflush suspend).
    bool failed_with_valid_paths = false;
    bool failed_while_queueing = false;
    bool failed_on_kept_last_path = false; ///< keep_last_path failed this I/O instead of its path
  };

  struct path_stats {
    std::string device;
    std::uint64_t dispatched = 0;
    std::uint64_t in_flight = 0;
  };

  struct stats_type {
    std::uint64_t submitted = 0, ok = 0, failed = 0, queued = 0, inflight = 0;
    std::vector<path_stats> paths;
  };

  /// Situations a run reached, for rapidcheck's RC_CLASSIFY / RC_TAG.
  enum class milestone : std::uint32_t {
    all_paths_down = 1,
    io_failed = 2,
    pg_init_retried = 4,
    busy_group_bypassed = 8,
    nopath_timeout = 16,
    pushed_back = 32,
    queued_without_path = 64,
  };
  bool reached(milestone m) const noexcept { return (reached_ & std::uint32_t(m)) != 0; }

  struct message_result {
    int code = 0; ///< 0: ok
    std::string text;
  };

  explicit reference_model(model_table t) : table_(std::move(t)) { load_table(); }

  // ------------------------------------------------------------------ mpathctl commands

  /// `io NAME COUNT [BYTES]`
  void io(std::size_t count, std::uint64_t bytes = 4096) {
    for (std::size_t i = 0; i < count; ++i) {
      io_record r;
      r.id = ios_.size() + 1;
      r.bytes = bytes;
      ios_.push_back(r);
      ++submitted_;
      submit(ios_.size() - 1);
      settle();
    }
  }

  /// `complete NAME PATH|all COUNT|all STATUS`; an empty device means any path.
  void complete(std::string_view device, std::size_t count, blk_status status) {
    std::vector<std::size_t> taken;
    for (auto it = backend_in_flight_.begin(); it != backend_in_flight_.end() && taken.size() < count;) {
      if (device.empty() || paths_[ios_[*it].path].device == device) {
        taken.push_back(*it);
        it = backend_in_flight_.erase(it);
      } else {
        ++it;
      }
    }
    for (std::size_t i : taken) {
      engine_complete(i, status);
      settle();
    }
  }

  /// `fault NAME PATH on|off`
  void fault(std::string_view device, bool on) {
    for (auto& p : paths_)
      if (p.device == device)
        p.fault = on;
  }

  /// `hwh NAME RESULT...`
  void hwh(std::span<const activation_result> results) {
    script_.insert(script_.end(), results.begin(), results.end());
  }

  /// `run NAME`
  void run() {
    resubmit(true, false);
    for (std::size_t rounds = 0, progress = 1; progress; ++rounds) {
      if (rounds > 100'000)
        throw std::logic_error("reference_model: deferred work does not settle");
      progress = exec_run() > 0;
      progress = settle() || progress;
      if (std::exchange(kicked_, false))
        progress = resubmit(false, true) || progress;
    }
  }

  /// `sleep NAME MS`
  void sleep(std::uint64_t ms) { sleep(ms, true); }

  /// `sleep`, but the last step fires the work due at its end without DM core's run after it: a
  /// timer of someone else's due at that instant (the health layer's tick) runs there, then `run`.
  void sleep_to_timer(std::uint64_t ms) { sleep(ms, false); }

  void sleep(std::uint64_t ms, bool final_run) {
    std::uint64_t target = now_ + ms * 1'000'000;
    for (;;) {
      std::uint64_t next = target;
      if (!work_.empty() && work_.front().due < next)
        next = work_.front().due;
      if (!suspended_) // nothing is reissued until resume
        for (const auto& r : requeue_)
          if (r.delayed && r.due < next)
            next = r.due;
      next = std::max(next, now_);
      exec_advance(next - now_);
      if (next >= target && !final_run)
        break;
      run();
      if (next >= target)
        break;
    }
  }

  /// `suspend NAME [noflush]`: presuspend, DM core's run, postsuspend waiting for activations.
  void suspend(bool noflush) {
    suspended_ = false; // presuspend: the device is suspending from here on
    suspending_ = true;
    noflush_ = noflush;
    if (table_.bio || !noflush)
      set_qifnp(false, true);
    run();
    if (pg_init_in_progress_ > 0) {
      pg_init_disabled_ = true;
      while (pg_init_in_progress_ > 0) {
        if (exec_run() > 0)
          continue;
        if (!work_.empty() && work_.front().due > now_)
          exec_advance(work_.front().due - now_);
      }
      pg_init_disabled_ = false;
    }
    suspending_ = false;
    suspended_ = true;
  }

  /// `resume NAME`
  void resume() {
    if (saved_qifnp_) {
      qifnp_ = true;
      saved_qifnp_ = false;
    }
    suspended_ = false;
    noflush_ = false;
    // What was held across the suspend goes first.
    held_.insert(held_.begin(), pushed_back_.begin(), pushed_back_.end());
    for (std::size_t i : pushed_back_)
      ios_[i].at = where::held;
    pushed_back_.clear();
    kick();
    run();
  }

  /// `message NAME WORDS...` (kernel-target.md §3).
  message_result message(std::span<const std::string> words) {
    if (suspended_)
      return {EBUSY, "device is suspended"};
    if (words.size() == 1 && same_word(words[0], "queue_if_no_path")) {
      set_qifnp(true, false);
      arm_nopath_timer();
      return {};
    }
    if (words.size() == 1 && same_word(words[0], "fail_if_no_path")) {
      set_qifnp(false, false);
      cancel(work::nopath, 0);
      return {};
    }
    if (words.size() != 2)
      return {EINVAL,
              "Invalid multipath message arguments. Expected 2 arguments, got " + std::to_string(words.size()) + "."};
    const std::string& verb = words[0];
    const std::string& arg = words[1];
    if (same_word(verb, "disable_group") || same_word(verb, "enable_group") || same_word(verb, "switch_group")) {
      std::optional<std::size_t> g = group_number(arg);
      bool sw = same_word(verb, "switch_group");
      if (!g)
        return {EINVAL, sw ? "invalid PG number supplied to switch_pg_num" : "invalid PG number supplied to bypass_pg"};
      if (sw) {
        for (auto& gr : groups_)
          gr.bypassed = false;
        next_pg_ = *g;
      } else {
        groups_[*g].bypassed = same_word(verb, "disable_group");
      }
      current_pg_.reset();
      current_path_.reset();
      table_event();
      return {};
    }
    bool fail = same_word(verb, "fail_path");
    if (!fail && !same_word(verb, "reinstate_path"))
      return {EINVAL, "Unrecognised multipath message received: " + verb};
    bool matched = false;
    for (std::size_t p = live_first_; p < paths_.size(); ++p)
      if (paths_[p].device == arg) {
        matched = true;
        if (fail)
          fail_path(p);
        else
          reinstate_path(p);
      }
    if (!matched)
      return {EINVAL, "message: error getting device " + arg};
    return {};
  }

  /// `reload NAME PARAMS...` (product.md §6), as mapped_device::reload: a noflush suspend, the
  /// swap (the new table starts suspended without flushing and takes what the old one held), the
  /// resume. A device its user suspended stays suspended. The engine options stay; the new
  /// table's paths are new paths (active, counting from 0); the old table's in-flight I/O
  /// completes through it, retried through the new table if it errs with a path error.
  message_result reload(model_table t) {
    if (t.bio != table_.bio)
      return {EINVAL, "can't change device type after initial table load"};
    const bool was_suspended = suspended_;
    if (!was_suspended)
      suspend(/*noflush=*/true);
    // multipath::retire: what the old table holds, pushed-back first; its worker and no-path
    // timer have nothing left to do; a new hardware handler has no queued results.
    std::vector<std::size_t> held = pushed_back_;
    held.insert(held.end(), held_.begin(), held_.end());
    pushed_back_.clear();
    held_.clear();
    cancel(work::worker, 0);
    cancel(work::nopath, 0);
    script_.clear();
    table_ = std::move(t);
    load_table();
    // The new engine's noflush suspend.
    suspended_ = true;
    suspending_ = false;
    noflush_ = true;
    if (table_.bio)
      set_qifnp(false, true);
    for (std::size_t i : held)
      submit(i);
    if (!was_suspended)
      resume();
    return {};
  }

  /// `option NAME queue_if_no_path_timeout_secs SECS`
  void set_nopath_timeout(std::uint32_t secs) { timeout_secs_ = secs; }
  /// `option NAME path_failure_threshold N` (product.md §6; 0 = 1).
  void set_path_failure_threshold(std::uint32_t n) { failure_threshold_ = n; }
  /// `option NAME keep_last_path on|off` (product.md §6).
  void set_keep_last_path(bool on) { keep_last_path_ = on; }

  /// `events NAME`: the events delivered so far, then forgets them.
  std::vector<std::string> take_events() { return std::exchange(delivered_events_, {}); }
  /// Events delivered and not taken yet, oldest first (what a listener on the backend has seen).
  const std::vector<std::string>& delivered_events() const noexcept { return delivered_events_; }

  // ------------------------------------------------------------------ observations

  /// `status NAME` with the kernel's trailing blank (kernel-target.md §2.1).
  std::string info() const {
    words w;
    w << 2 << (queue_io_ ? 1 : 0) << pg_init_count_ << 0 << groups_.size() << reported_pg();
    for (std::size_t gi = 0; gi < groups_.size(); ++gi) {
      const group& g = groups_[gi];
      w << std::string(g.bypassed ? "D" : (current_pg_ == gi ? "A" : "E"));
      group_status(w, g);
      w << g.paths.size() << (g.kind == sel::rr ? 0 : g.kind == sel::ql ? 1 : g.kind == sel::st ? 2 : 3);
      for (std::size_t p : g.paths) {
        w << paths_[p].device << std::string(paths_[p].active ? "A" : "F") << paths_[p].fail_count;
        if (g.kind == sel::ql)
          w << std::to_string(std::int32_t(in_flight_count(p)));
        else if (g.kind == sel::st)
          w << std::to_string(std::int32_t(std::uint32_t(in_flight_bytes(p)))) << paths_[p].throughput;
        else if (g.kind == sel::hst)
          w << paths_[p].hst << in_flight_count(p) << paths_[p].stale_after;
      }
    }
    return w.text;
  }

  /// `table NAME` with the kernel's trailing blank (kernel-target.md §2.2, product.md §5).
  std::string table_status() const {
    words w;
    unsigned n = (qifnp_ ? 1 : 0) + (table_.pg_init_retries ? 2 : 0) + (table_.pg_init_delay_msecs ? 2 : 0) +
                 (table_.retain_attached_hw_handler ? 1 : 0) + (table_.bio ? 2 : 0);
    w << n;
    if (qifnp_)
      w << std::string("queue_if_no_path");
    if (table_.pg_init_retries)
      w << std::string("pg_init_retries") << table_.pg_init_retries;
    if (table_.pg_init_delay_msecs)
      w << std::string("pg_init_delay_msecs") << *table_.pg_init_delay_msecs;
    if (table_.retain_attached_hw_handler)
      w << std::string("retain_attached_hw_handler");
    if (table_.bio)
      w << std::string("queue_mode") << std::string("bio");
    if (handler_)
      w << 1 << table_.hw_handler;
    else
      w << 0;
    w << groups_.size() << reported_pg();
    for (const group& g : groups_) {
      w << table_.groups[&g - groups_.data()].selector;
      group_status(w, g);
      w << g.paths.size() << (g.kind == sel::st ? 2 : 1);
      for (std::size_t p : g.paths) {
        w << paths_[p].device;
        if (g.kind == sel::hst)
          w << 0; // historical-service-time prints a constant, not the repeat count
        else
          w << paths_[p].repeat;
        if (g.kind == sel::st)
          w << paths_[p].throughput;
      }
    }
    return w.text;
  }

  /// `stats NAME`
  stats_type stats() const {
    stats_type s;
    s.submitted = submitted_;
    for (const auto& r : ios_) {
      if (r.at == where::done)
        (r.status == blk_status::ok ? s.ok : s.failed) += 1;
      else if (r.at == where::in_flight)
        ++s.inflight;
      else
        ++s.queued;
    }
    for (std::size_t p = live_first_; p < paths_.size(); ++p) // a reload's paths count from 0
      s.paths.push_back({paths_[p].device, paths_[p].dispatched, in_flight_count(p)});
    return s;
  }

  const std::vector<io_record>& ios() const noexcept { return ios_; }
  /// Table events raised so far (the engine's event_nr).
  std::uint64_t event_nr() const noexcept { return event_nr_; }
  bool has_handler() const noexcept { return handler_; }
  bool bio() const noexcept { return table_.bio; }
  bool suspended() const noexcept { return suspended_; }
  std::uint32_t nopath_timeout() const noexcept { return timeout_secs_; }
  std::size_t group_count() const noexcept { return groups_.size(); }
  /// The live table's paths, by their position in it.
  std::size_t path_count() const noexcept { return paths_.size() - live_first_; }
  const std::string& device(std::size_t k) const { return paths_[live_first_ + k].device; }
  bool path_active(std::size_t k) const { return paths_[live_first_ + k].active; }
  std::size_t nr_valid_paths() const noexcept { return nr_valid_; }
  bool queue_if_no_path() const noexcept { return qifnp_; }
  /// Path devices in table order, each once; after a reload, the earlier tables' too (their I/O may
  /// still be in flight).
  std::vector<std::string> devices() const {
    std::vector<std::string> out;
    for (const auto& p : paths_)
      if (std::find(out.begin(), out.end(), p.device) == out.end())
        out.push_back(p.device);
    return out;
  }
  const model_table& table_spec() const noexcept { return table_; }
  /// Times the model dispatched to a failed path: always 0 unless the model itself is wrong.
  std::uint64_t self_check_failures() const noexcept { return self_check_failures_; }

private:
  enum class sel : std::uint8_t { rr, ql, st, hst };

  struct path {
    std::string device;
    std::size_t group = 0;
    bool active = true;
    std::uint32_t fail_count = 0;
    std::uint32_t consecutive_errors = 0; ///< since its last success or failure
    std::uint32_t repeat = 1;
    std::uint32_t throughput = 1;
    // historical-service-time (§5.4), fixed point with 10 fractional bits
    std::uint64_t hst = 1024;
    std::uint64_t stale_after = 0;
    std::uint64_t last_finish = 0;
    bool fault = false;
    std::uint64_t dispatched = 0;
  };

  struct group {
    sel kind = sel::rr;
    bool bypassed = false;
    std::vector<std::size_t> paths; ///< table order
    std::vector<std::size_t> valid; ///< the selector's valid list, in its order
    std::optional<std::size_t> repeat_path;
    std::uint32_t repeat_left = 0;
    std::uint64_t base_weight = 972; ///< historical-service-time
    std::uint64_t threshold = 0;
    std::array<std::uint64_t, 64> weights{};
  };

  struct work {
    enum kind_type : std::uint8_t { activation, worker, nopath, events } kind;
    std::size_t path;
    std::uint64_t due;
  };

  struct requeued {
    std::size_t io;
    bool delayed;
    std::uint64_t due;
  };

  /// Status text: every word followed by one blank.
  struct words {
    std::string text;
    words& operator<<(const std::string& w) {
      text += w;
      text += ' ';
      return *this;
    }
    template <class N> words& operator<<(N n) requires std::is_integral_v<N> { return *this << std::to_string(n); }
  };

  static std::uint32_t to_u32(const std::string& s) { return std::uint32_t(std::stoul(s)); }

  static bool same_word(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
      return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      char x = a[i] >= 'A' && a[i] <= 'Z' ? char(a[i] + 32) : a[i];
      if (x != b[i])
        return false;
    }
    return true;
  }

  /// A group number as the kernel's "%u" reads it (leading zeros allowed); above 2^32-1 is refused
  /// (product.md §5), as are 0 and numbers past the last group.
  std::optional<std::size_t> group_number(const std::string& s) const {
    if (s.empty())
      return std::nullopt;
    std::uint64_t n = 0;
    for (char c : s) {
      if (c < '0' || c > '9')
        return std::nullopt;
      n = n * 10 + std::uint64_t(c - '0');
      if (n > 0xffffffffu)
        return std::nullopt;
    }
    if (n == 0 || n > groups_.size())
      return std::nullopt;
    return std::size_t(n - 1);
  }

  std::size_t reported_pg() const {
    if (current_pg_)
      return *current_pg_ + 1;
    if (next_pg_)
      return *next_pg_ + 1;
    return groups_.empty() ? 0 : 1;
  }

  std::uint64_t in_flight_count(std::size_t p) const {
    std::uint64_t n = 0;
    for (const auto& r : ios_)
      n += r.at == where::in_flight && r.path == p ? 1 : 0;
    return n;
  }
  std::uint64_t in_flight_bytes(std::size_t p) const {
    std::uint64_t n = 0;
    for (const auto& r : ios_)
      n += r.at == where::in_flight && r.path == p ? r.bytes : 0;
    return n;
  }

  // ------------------------------------------------------------------ selectors (§5.1-5.3)

  /// Service-time's comparison, negative when path a serves an I/O of `incoming` bytes sooner.
  int st_compare(std::size_t a, std::size_t b, std::uint64_t incoming) const {
    // Exact arithmetic on 128-bit products; the kernel's 32-bit sign quirk is not reproduced.
    unsigned __int128 sa = in_flight_bytes(a), sb = in_flight_bytes(b);
    unsigned __int128 ta = paths_[a].throughput, tb = paths_[b].throughput;
    auto sign = [](unsigned __int128 x, unsigned __int128 y) { return x < y ? -1 : x > y ? 1 : 0; };
    if (ta == tb)
      return sign(sa, sb);
    if (sa == sb || ta == 0 || tb == 0)
      return sign(tb, ta);
    sa += incoming;
    sb += incoming;
    const unsigned __int128 limit = ~std::uint64_t{0} >> 7;
    if (sa >= limit || sb >= limit) {
      sa >>= 7;
      sb >>= 7;
    }
    if (sa * tb != sb * ta)
      return sign(sa * tb, sb * ta);
    return sign(tb, ta);
  }

  /// x^n in fixed point (10 fractional bits), by squaring, rounding every product.
  static std::uint64_t fixed_power(std::uint64_t x, unsigned n) {
    std::uint64_t result = 1024;
    for (;;) {
      if (n & 1)
        result = (result * x + 512) >> 10;
      n >>= 1;
      if (n == 0)
        return result;
      x = (x * x + 512) >> 10;
    }
  }

  void group_status(words& w, const group& g) const {
    if (g.kind == sel::hst)
      w << 2 << g.base_weight << g.threshold;
    else
      w << 0;
  }

  /// Historical-service-time's comparison at time `now`, negative when path a is the better one.
  int hst_compare(std::size_t a, std::size_t b, std::uint64_t now) const {
    using wide = __int128;
    const group& g = groups_[paths_[a].group];
    wide ha = wide(paths_[a].hst), hb = wide(paths_[b].hst);
    wide oa = wide(in_flight_count(a)), ob = wide(in_flight_count(b));
    wide sa = wide(paths_[a].stale_after), sb = wide(paths_[b].stale_after);
    auto sign = [](wide v) { return v < 0 ? -1 : v > 0 ? 1 : 0; };
    bool over = std::max(ha, hb) > wide(g.threshold) * std::min(ha, hb);
    if (!over)
      return sign(oa - ob); // only the outstanding counts matter
    bool a_stale = sa < wide(now), b_stale = sb < wide(now);
    if ((oa == 0 && a_stale) || (ob == 0 && b_stale) || (oa == 0 && ob == 0))
      return sign((ob == 0 ? sa : 0) - (oa == 0 ? sb : 0)); // idle beats busy; older stale_after first
    bool b_better;
    if (oa == ob) {
      b_better = ha > hb;
    } else {
      if (oa >= 1024 || ob >= 1024) {
        ha >>= 10;
        hb >>= 10;
      }
      b_better = (1 + oa) * ha > (1 + ob) * hb;
    }
    if (b_better ? b_stale : a_stale)
      return sign(oa - ob); // a stale, loaded winner only gets equal use
    return b_better ? 1 : -1;
  }

  /// Historical-service-time's end_io for I/O i on its path, at the current time.
  void hst_end_io(std::size_t i) {
    path& p = paths_[ios_[i].path];
    const group& g = groups_[p.group];
    if (g.kind != sel::hst)
      return;
    std::uint64_t start = std::max(ios_[i].start_ns, p.last_finish);
    p.last_finish = now_;
    std::uint64_t st = now_ > start ? now_ - start : 0;
    std::uint64_t w = g.weights[std::min<std::uint64_t>(st >> 24, 63)];
    const std::uint64_t cap = (std::uint64_t{1} << 54) - 1;
    std::uint64_t scaled = st > cap / 1024 ? cap : std::min(st * 1024, cap);
    p.hst = std::uint64_t((unsigned __int128)(p.hst) * w + (unsigned __int128)(scaled) * (1024 - w) + 512) >> 10;
    p.stale_after = p.last_finish + g.valid.size() * (p.hst >> 10);
  }

  std::optional<std::size_t> select(group& g, std::uint64_t bytes) {
    if (g.kind == sel::hst) { // repeat_count is stored, not used (§5.4)
      if (g.valid.empty())
        return std::nullopt;
      std::size_t best = 0;
      for (std::size_t i = 1; i < g.valid.size(); ++i)
        if (hst_compare(g.valid[i], g.valid[best], now_) < 0)
          best = i;
      std::size_t p = g.valid[best];
      g.valid.erase(g.valid.begin() + std::ptrdiff_t(best));
      g.valid.push_back(p);
      return p;
    }
    if (g.repeat_left > 0) { // repeat_count honoured (product.md §5)
      --g.repeat_left;
      return g.repeat_path;
    }
    if (g.valid.empty())
      return std::nullopt;
    std::size_t best = 0;
    for (std::size_t i = 1; i < g.valid.size(); ++i) {
      if (g.kind == sel::rr)
        break; // the head of the list
      if (g.kind == sel::ql && in_flight_count(g.valid[i]) < in_flight_count(g.valid[best]))
        best = i;
      if (g.kind == sel::st && st_compare(g.valid[i], g.valid[best], bytes) < 0)
        best = i;
    }
    std::size_t p = g.valid[best];
    g.valid.erase(g.valid.begin() + std::ptrdiff_t(best));
    g.valid.push_back(p);
    g.repeat_path = p;
    g.repeat_left = paths_[p].repeat > 1 ? paths_[p].repeat - 1 : 0;
    return p;
  }

  void selector_fail(std::size_t p) {
    group& g = groups_[paths_[p].group];
    if (g.repeat_path == p)
      g.repeat_left = 0;
    g.valid.erase(std::find(g.valid.begin(), g.valid.end(), p));
  }

  void selector_reinstate(std::size_t p) {
    group& g = groups_[paths_[p].group];
    if (g.kind == sel::rr)
      g.valid.insert(g.valid.begin(), p); // chosen next
    else
      g.valid.push_back(p);
  }

  // ------------------------------------------------------------------ path choice (§4.2)

  std::optional<std::size_t> choose_in_group(std::size_t gi, std::uint64_t bytes) {
    auto p = select(groups_[gi], bytes);
    if (p && current_pg_ != gi) { // switch group
      current_path_ = p;
      current_pg_ = gi;
      queue_io_ = pg_init_required_ = handler_;
      pg_init_count_ = 0;
    }
    return p;
  }

  std::optional<std::size_t> choose_path(std::uint64_t bytes) {
    if (nr_valid_ > 0) {
      if (current_pg_)
        if (auto p = choose_in_group(*current_pg_, bytes))
          return p;
      if (next_pg_) {
        std::size_t g = *next_pg_;
        next_pg_.reset();
        if (auto p = choose_in_group(g, bytes))
          return p;
      }
      for (int pass = 0; pass < 2; ++pass)
        for (std::size_t gi = 0; gi < groups_.size(); ++gi) {
          if (groups_[gi].bypassed != (pass == 1))
            continue;
          if (auto p = choose_in_group(gi, bytes)) {
            if (pass == 1)
              pg_init_delay_retry_ = true;
            return p;
          }
        }
    } else {
      queue_io_ = false;
    }
    current_pg_.reset();
    current_path_.reset();
    return std::nullopt;
  }

  // ------------------------------------------------------------------ mapping (§4.3, bio mode)

  void submit(std::size_t i) {
    if (suspended_) {
      if (table_.bio)
        place(i, where::pushed_back);
      else
        requeue(i, true);
      return;
    }
    if (table_.bio)
      map_bio(i);
    else
      map_request(i);
  }

  std::optional<std::size_t> pick(std::uint64_t bytes) {
    if (current_path_ && queue_io_)
      return current_path_;
    return choose_path(bytes);
  }

  void map_request(std::size_t i) {
    auto p = pick(ios_[i].bytes);
    if (!p) {
      if (qifnp_ || noflush_)
        requeue(i, true);
      else
        finish(i, blk_status::ioerr);
      return;
    }
    if (queue_io_ || pg_init_required_) {
      pg_init_all_paths();
      requeue(i, true);
      return;
    }
    dispatch(i, *p);
  }

  void map_bio(std::size_t i) {
    auto p = pick(ios_[i].bytes);
    if (!p) {
      if (qifnp_) {
        place(i, where::held); // dispatched when a path comes back (product.md §5)
        reach(milestone::queued_without_path);
      } else if (noflush_)
        place(i, where::pushed_back);
      else
        finish(i, blk_status::ioerr);
      return;
    }
    if (queue_io_ || pg_init_required_) {
      hold_bio(i);
      pg_init_all_paths();
      return;
    }
    dispatch(i, *p);
  }

  void hold_bio(std::size_t i) {
    place(i, where::held);
    if (!queue_io_)
      post(work::worker, 0, 0);
  }

  void place(std::size_t i, where at) {
    ios_[i].at = at;
    if (at == where::pushed_back)
      reach(milestone::pushed_back);
    if (at == where::held)
      held_.push_back(i);
    else if (at == where::pushed_back)
      pushed_back_.push_back(i);
  }

  void dispatch(std::size_t i, std::size_t p) {
    if (!paths_[p].active)
      ++self_check_failures_; // the model itself broke §4.6
    io_record& r = ios_[i];
    r.at = where::in_flight;
    r.path = p;
    r.start_ns = now_;
    ++r.dispatches;
    ++paths_[p].dispatched;
    if (paths_[p].fault)
      immediate_.push_back(i);
    else
      backend_in_flight_.push_back(i);
  }

  void finish(std::size_t i, blk_status s) {
    io_record& r = ios_[i];
    r.at = where::done;
    r.status = s;
    ++r.completions;
    if (s != blk_status::ok)
      reach(milestone::io_failed);
    if (s != blk_status::ok && is_path_error(s)) {
      r.failed_with_valid_paths = nr_valid_ > 0;
      r.failed_while_queueing = qifnp_ || (noflush_ && (suspending_ || suspended_));
    }
  }

  /// DM core's requeue list (request mode); a delayed entry waits 100 ms or a kick.
  void requeue(std::size_t i, bool delayed) {
    if (nr_valid_ == 0)
      reach(milestone::queued_without_path);
    ios_[i].at = where::requeued;
    requeue_.push_back({i, delayed, delayed ? now_ + 100'000'000 : 0});
  }

  // ------------------------------------------------------------------ completion (§4.4)

  void engine_complete(std::size_t i, blk_status s) {
    std::size_t p = ios_[i].path;
    if (p < live_first_) { // on a path of a table a reload replaced (mapped_device.hpp)
      if (s == blk_status::ok || !is_path_error(s)) {
        finish(i, s);
      } else if (table_.bio) {
        ios_[i].at = where::held;
        submit(i); // handed to the live table at once
      } else {
        requeue(i, s == blk_status::resource);
      }
      return;
    }
    if (s == blk_status::ok || !is_path_error(s)) {
      if (s == blk_status::ok)
        paths_[p].consecutive_errors = 0;
      hst_end_io(i);
      finish(i, s);
      return;
    }
    // product.md §6's engine options; with the defaults the path fails, as the kernel's.
    if (paths_[p].active && keep_last_path_ && nr_valid_ == 1) {
      hst_end_io(i);
      finish(i, s);
      ios_[i].failed_on_kept_last_path = true;
      return;
    }
    if (!paths_[p].active || failure_threshold_ <= 1 || ++paths_[p].consecutive_errors >= failure_threshold_)
      fail_path(p);
    hst_end_io(i);
    ios_[i].at = where::held; // leaves the path (end_io); placed below
    if (table_.bio) {
      if (nr_valid_ == 0 && !qifnp_) {
        if (noflush_)
          place(i, where::pushed_back);
        else
          finish(i, blk_status::ioerr);
      } else {
        hold_bio(i);
      }
    } else {
      if (nr_valid_ == 0 && !qifnp_ && !noflush_)
        finish(i, s);
      else
        requeue(i, s == blk_status::resource);
    }
  }

  /// Faulted paths answer `transport` right after the dispatch.
  bool settle() {
    bool any = false;
    while (!immediate_.empty()) {
      any = true;
      auto batch = std::exchange(immediate_, {});
      for (std::size_t i : batch)
        engine_complete(i, blk_status::transport);
    }
    return any;
  }

  bool resubmit(bool include_immediate, bool kicked) {
    if (suspended_)
      return false;
    std::vector<requeued> go, keep;
    for (const auto& r : requeue_) {
      bool now = (!r.delayed && include_immediate) || (r.delayed && (kicked || r.due <= now_));
      (now ? go : keep).push_back(r);
    }
    requeue_ = std::move(keep);
    for (const auto& r : go) {
      submit(r.io);
      settle();
    }
    return !go.empty();
  }

  /// Re-drive what waits: the bio worker, or DM core's requeue list.
  void kick() {
    if (table_.bio)
      post(work::worker, 0, 0);
    else
      kicked_ = true;
  }

  void process_held_bios() {
    auto batch = std::exchange(held_, {});
    for (std::size_t i : batch)
      map_bio(i);
  }

  // ------------------------------------------------------------------ pg_init (§4.5)

  std::size_t pg_init_all_paths() {
    if (pg_init_in_progress_ > 0 || pg_init_disabled_)
      return 0;
    ++pg_init_count_;
    pg_init_required_ = false;
    if (!current_pg_)
      return 0;
    std::uint64_t delay =
        pg_init_delay_retry_ ? std::uint64_t(table_.pg_init_delay_msecs.value_or(2000)) * 1'000'000 : 0;
    for (std::size_t p : groups_[*current_pg_].paths)
      if (paths_[p].active && post(work::activation, p, delay))
        ++pg_init_in_progress_;
    return pg_init_in_progress_;
  }

  void activate(std::size_t p) {
    if (!paths_[p].active) {
      pg_init_done(p, activation_result::dev_offlined);
      return;
    }
    activation_result r = activation_result::ok;
    if (!script_.empty()) {
      r = script_.front();
      script_.erase(script_.begin());
    }
    pg_init_done(p, r);
  }

  void pg_init_done(std::size_t p, activation_result result) {
    std::size_t gi = paths_[p].group;
    bool delay_retry = false;
    bool error = true;
    switch (result) {
    case activation_result::ok: error = false; break;
    case activation_result::nosys:
      if (!handler_)
        error = false;
      else
        fail_path(p);
      break;
    case activation_result::dev_temp_busy:
      groups_[gi].bypassed = true; // try another group; never deferred
      reach(milestone::busy_group_bypassed);
      current_pg_.reset();
      current_path_.reset();
      table_event();
      break;
    case activation_result::retry:
    case activation_result::imm_retry:
    case activation_result::res_temp_unavail:
      delay_retry = result == activation_result::retry;
      if (pg_init_count_ <= table_.pg_init_retries && !pg_init_disabled_) {
        pg_init_required_ = true;
        reach(milestone::pg_init_retried);
      } else
        fail_path(p);
      error = false;
      break;
    default: fail_path(p); break;
    }
    if (error) {
      if (current_path_ == p) {
        current_pg_.reset();
        current_path_.reset();
      }
    } else if (!pg_init_required_) {
      groups_[gi].bypassed = false;
    }
    if (--pg_init_in_progress_ > 0)
      return;
    if (pg_init_required_) {
      pg_init_delay_retry_ = delay_retry;
      if (pg_init_all_paths() > 0)
        return;
    }
    queue_io_ = false;
    kick();
  }

  /// The table's own state, as a newly built engine has it; its paths go after any earlier
  /// table's (whose I/O may still be in flight, `reload`).
  void load_table() {
    live_first_ = paths_.size();
    groups_.clear();
    qifnp_ = table_.queue_if_no_path;
    handler_ = !table_.bio && !table_.hw_handler.empty();
    queue_io_ = true;
    for (std::size_t gi = 0; gi < table_.groups.size(); ++gi) {
      group g;
      const auto& spec = table_.groups[gi];
      g.kind = spec.selector == "round-robin"    ? sel::rr
               : spec.selector == "queue-length" ? sel::ql
               : spec.selector == "service-time" ? sel::st
                                                 : sel::hst;
      if (g.kind == sel::hst) {
        if (!spec.selector_args.empty())
          g.base_weight = to_u32(spec.selector_args[0]);
        if (spec.selector_args.size() >= 2)
          g.threshold = to_u32(spec.selector_args[1]);
        for (unsigned k = 0; k + 1 < g.weights.size(); ++k)
          g.weights[k] = fixed_power(g.base_weight, k + 1);
        g.weights.back() = 0;
      }
      for (std::size_t k = 0; k < spec.paths.size(); ++k) {
        path p;
        p.device = spec.paths[k].device;
        p.group = gi;
        const auto& args = spec.paths[k].args;
        p.repeat = args.size() >= 1 ? to_u32(args[0]) : 1;
        p.throughput = args.size() >= 2 ? to_u32(args[1]) : 1;
        g.paths.push_back(paths_.size());
        g.valid.push_back(paths_.size());
        paths_.push_back(std::move(p));
      }
      groups_.push_back(std::move(g));
    }
    nr_valid_ = paths_.size() - live_first_;
    saved_qifnp_ = pg_init_required_ = pg_init_delay_retry_ = pg_init_disabled_ = false;
    current_pg_.reset();
    current_path_.reset();
    next_pg_.reset();
    if (table_.initial_pg >= 1 && table_.initial_pg <= groups_.size())
      next_pg_ = table_.initial_pg - 1;
    pg_init_in_progress_ = 0;
    pg_init_count_ = 0;
    event_nr_ = 0;
  }

  // ------------------------------------------------------------------ fail / reinstate (§4.6)

  void fail_path(std::size_t p) {
    if (!paths_[p].active)
      return;
    selector_fail(p);
    paths_[p].active = false;
    ++paths_[p].fail_count;
    paths_[p].consecutive_errors = 0;
    --nr_valid_;
    if (current_path_ == p)
      current_path_.reset();
    raise("PATH_FAILED ", p);
    arm_nopath_timer();
    if (nr_valid_ == 0)
      reach(milestone::all_paths_down);
  }

  void reinstate_path(std::size_t p) {
    if (!paths_[p].active) {
      selector_reinstate(p);
      paths_[p].active = true;
      ++nr_valid_;
      if (nr_valid_ == 1) {
        current_path_.reset();
        kick();
      } else if (handler_ && current_pg_ == paths_[p].group) {
        if (post(work::activation, p, 0))
          ++pg_init_in_progress_;
      }
      raise("PATH_REINSTATED ", p);
    }
    cancel(work::nopath, 0);
  }

  void raise(const char* what, std::size_t p) {
    pending_events_.push_back(what + paths_[p].device + " " + std::to_string(nr_valid_));
    table_event();
  }

  /// Counts a table event; path events reach the backend later, from deferred work.
  void table_event() {
    ++event_nr_;
    post(work::events, 0, 0);
  }

  // ------------------------------------------------------------------ queue_if_no_path (§4.7, §4.8)

  void set_qifnp(bool enable, bool save_old) {
    if (save_old) {
      if (qifnp_ || !saved_qifnp_) // "saving again loses state, not saving!"
        saved_qifnp_ = qifnp_;
    } else if (!enable) {
      saved_qifnp_ = false;
    }
    qifnp_ = enable;
    if (!enable)
      kick();
  }

  void arm_nopath_timer() {
    if (timeout_secs_ > 0 && nr_valid_ == 0 && qifnp_) {
      cancel(work::nopath, 0);
      post(work::nopath, 0, std::uint64_t(timeout_secs_) * 1'000'000'000);
    }
  }

  // ------------------------------------------------------------------ deferred work

  bool post(work::kind_type kind, std::size_t p, std::uint64_t delay) {
    for (const auto& w : work_)
      if (w.kind == kind && w.path == p)
        return false;
    work w{kind, p, now_ + delay};
    auto at = std::find_if(work_.begin(), work_.end(), [&](const work& x) { return x.due > w.due; });
    work_.insert(at, w);
    return true;
  }

  void cancel(work::kind_type kind, std::size_t p) {
    std::erase_if(work_, [&](const work& w) { return w.kind == kind && w.path == p; });
  }

  void deliver_events() {
    delivered_events_.insert(delivered_events_.end(), pending_events_.begin(), pending_events_.end());
    pending_events_.clear();
  }

  /// Runs due work until none is due.
  std::size_t exec_run() {
    std::size_t n = 0;
    while (!work_.empty() && work_.front().due <= now_) {
      work w = work_.front();
      work_.erase(work_.begin());
      if (++n > 100'000)
        throw std::logic_error("reference_model: deferred work keeps rescheduling itself");
      if (w.kind == work::activation)
        activate(w.path);
      else if (w.kind == work::worker)
        process_held_bios();
      else if (w.kind == work::nopath)
        reach(milestone::nopath_timeout), set_qifnp(false, false); // "queue_if_no_path timeout ..."
      else
        deliver_events();
    }
    return n;
  }

  void exec_advance(std::uint64_t ns) {
    std::uint64_t target = now_ + ns;
    for (;;) {
      exec_run();
      if (work_.empty() || work_.front().due > target)
        break;
      now_ = std::max(now_, work_.front().due);
    }
    now_ = target;
    exec_run();
  }

  // ------------------------------------------------------------------ state

  model_table table_;
  std::vector<path> paths_; ///< every table's: the live table's from live_first_ on (`reload`)
  std::size_t live_first_ = 0;
  std::vector<group> groups_;
  bool handler_ = false;

  // The target (§4.1).
  bool queue_io_ = true;
  bool qifnp_ = false;
  bool saved_qifnp_ = false;
  bool pg_init_required_ = false;
  bool pg_init_delay_retry_ = false;
  bool pg_init_disabled_ = false;
  std::optional<std::size_t> current_pg_, current_path_, next_pg_;
  std::size_t nr_valid_ = 0;
  std::size_t pg_init_in_progress_ = 0;
  std::uint64_t pg_init_count_ = 0;
  std::uint64_t event_nr_ = 0;
  bool suspending_ = false, suspended_ = false, noflush_ = false;
  std::uint32_t timeout_secs_ = 0;
  std::uint32_t failure_threshold_ = 1;
  bool keep_last_path_ = false;
  std::vector<std::size_t> held_, pushed_back_;
  std::vector<std::string> pending_events_, delivered_events_;

  // DM core, the backend, the executor and the handler script.
  std::vector<io_record> ios_;
  std::uint64_t submitted_ = 0;
  std::vector<std::size_t> backend_in_flight_; ///< dispatch order
  std::vector<std::size_t> immediate_;         ///< faulted dispatches, answered at once
  std::vector<requeued> requeue_;
  bool kicked_ = false;
  std::vector<work> work_; ///< by due time, then posting order
  std::uint64_t now_ = 0;
  std::vector<activation_result> script_;
  std::uint64_t self_check_failures_ = 0;
  std::uint32_t reached_ = 0;

  void reach(milestone m) noexcept { reached_ |= std::uint32_t(m); }
};

} // namespace mpath::inline v0::testing
