#pragma once
// Health-layer pieces over the SG_IO adapter (issue 10): multipathd's `tur` path checker and its
// `alua` prioritizer (multipathd.md b.1, b.6), modelling mpath::health::PathChecker and
// mpath::health::Prioritizer for paths whose handle is (or wraps) an sg_backend handle.
//
//   mpath::thread_executor probes;                                  // off the monitor's tick
//   mpath::adapters::sg_tur_checker<mpath::adapters::sg_backend<>, mpath::thread_executor> tur(probes);
//   mpath::adapters::sg_alua_prioritizer<mpath::adapters::sg_backend<>, mpath::thread_executor> alua(probes);
//
// Both run their SCSI commands as work items on the executor they are given, never on the
// caller's thread, exactly as health::probe_checker does: one work item per path, allocated at
// the path's first check; a path whose previous command is still running is answered at once
// (the checker with `timeout`, the prioritizer with the path's last priority). The SG_IO timeout
// is the backend's sg_options::timeout_ms; keep it below the monitor's checker_timeout.

#include "alua.hpp"
#include "sg_io.hpp"

#include <mpath/executor.hpp>
#include <mpath/health/path_checker.hpp>
#include <mpath/health/prioritizer.hpp>
#include <mpath/path.hpp>

#include <cerrno>
#include <concepts>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <type_traits>
#include <vector>

namespace mpath::adapters {

// ---- TEST UNIT READY

/// What one TEST UNIT READY says. `retry`: issue it again (a unit attention reports an event,
/// not the path's state). `disconnected`: ILLEGAL REQUEST 25/00, the LU is no longer behind this
/// port (multipathd's ephemeral "disconnected" state, which it converts to down).
struct tur_verdict {
  health::check_result result = health::check_result::down;
  bool retry = false;
  bool disconnected = false;
  friend constexpr bool operator==(const tur_verdict&, const tur_verdict&) = default;
};

/// multipathd's tur rules (multipathd.md b.1) for one command's result. Besides GOOD, CHECK
/// CONDITION with NO SENSE or RECOVERED ERROR counts as up: the command completed (the decode
/// table in docs/backends.md says the same).
inline tur_verdict classify_tur(const sg_result& r) noexcept {
  using health::check_result;
  if (r.err == ETIMEDOUT || r.host_status == scsi::did_time_out || (r.driver_status & 0x07) == scsi::driver_timeout)
    return {check_result::timeout};
  if (r.err != 0 || r.host_status != scsi::did_ok || (r.driver_status & 0x07) != scsi::driver_ok)
    return {check_result::down};
  switch (r.status & 0xfe) {
  case scsi::status_good:
  case scsi::status_condition_met: return {check_result::up};
  case scsi::status_check_condition: break;
  default: return {check_result::down}; // busy, reservation conflict, task set full, ...
  }
  const scsi::sense& s = r.sense;
  if (!s.valid)
    return {check_result::down};
  if (s.deferred) // about an earlier command: ask again
    return {check_result::down, true};
  switch (s.key) {
  case scsi::no_sense:
  case scsi::recovered_error: return {check_result::up};
  case scsi::unit_attention: return {check_result::down, true};
  case scsi::not_ready:
    if (s.asc == 0x04 && s.ascq == 0x0b) // target port in standby state
      return {check_result::ghost};
    if (s.asc == 0x04 && s.ascq == 0x0a) // asymmetric access state transition
      return {check_result::pending};
    return {check_result::down};
  case scsi::illegal_request:
    if (s.asc == 0x25 && s.ascq == 0x00) // logical unit not supported
      return {check_result::down, false, true};
    return {check_result::down};
  default: return {check_result::down}; // medium, hardware, aborted command, ...
  }
}

struct tur_options {
  /// Extra TEST UNIT READYs after a unit attention (or deferred sense); when they run out the
  /// path is down.
  unsigned unit_attention_retries = 3;
};

// ---- ALUA priority

/// multipathd's prio alua: active/optimized 50, active/non-optimized 10, LBA-dependent 5,
/// standby 1, anything else (unavailable, offline, transitioning) 0; +80 when the group's PREF
/// bit is set, except for active/optimized, which gets it only with `exclusive_pref_bit`
/// (multipathd.md b.6; multipath-tools' default is without it).
constexpr int alua_priority(alua_state state, bool preferred, bool exclusive_pref_bit = false) noexcept {
  int prio = 0;
  switch (state) {
  case alua_state::active_optimized: prio = 50; break;
  case alua_state::active_non_optimized: prio = 10; break;
  case alua_state::lba_dependent: prio = 5; break;
  case alua_state::standby: prio = 1; break;
  default: prio = 0; break;
  }
  if (preferred && (state != alua_state::active_optimized || exclusive_pref_bit))
    prio += 80;
  return prio;
}

namespace detail {

/// One work item per path, run on `Exec`, answering through `Done` exactly once per start. The
/// work runs on a private copy of the path's SG handle (same fd and backend), so what it learns
/// (the ALUA group ids) never races with the hardware handler writing the shared handle.
template <class Backend, Executor Exec, class Done, class Answer> class sg_path_jobs {
public:
  using handle_type = typename Backend::handle_type;
  using work_fn = Answer (*)(const void* owner, handle_type& h) noexcept;

  /// `busy`: the answer to a start while the path's previous work is still running (or never
  /// ran); `remember`: answer the last result instead, once there is one.
  sg_path_jobs(Exec& exec, const void* owner, work_fn fn, Answer busy, bool remember) noexcept
      : exec_(exec), owner_(owner), fn_(fn), busy_(busy), remember_(remember) {}
  sg_path_jobs(const sg_path_jobs&) = delete;
  sg_path_jobs& operator=(const sg_path_jobs&) = delete;

  /// Waits for work that is running; work not yet started is answered with the busy answer.
  ~sg_path_jobs() {
    for (auto& s : slots_)
      if (exec_.cancel_sync(s->work)) {
        Done done = s->done;
        s->busy = false;
        done(s->busy_answer);
      }
  }

  void start(handle_type& shared, Done done) noexcept {
    slot* s = nullptr;
    Answer busy_answer = busy_;
    {
      std::lock_guard guard(mutex_);
      for (auto& x : slots_)
        if (x->shared == &shared)
          s = x.get();
      if (!s) {
        try {
          slots_.push_back(std::make_unique<slot>(this, shared));
          s = slots_.back().get();
        } catch (...) {
          s = nullptr; // answered busy below; the next check tries again
        }
      }
      if (s && !s->busy) {
        s->busy = true;
        s->done = done;
        ++started_;
      } else {
        if (s)
          busy_answer = s->busy_answer;
        s = nullptr;
      }
    }
    if (!s) {
      done(busy_answer);
      return;
    }
    exec_.post(s->work, 0);
  }

  std::uint64_t started() const {
    std::lock_guard guard(mutex_);
    return started_;
  }

private:
  struct slot {
    slot(sg_path_jobs* o, handle_type& h) noexcept : owner(o), shared(&h), busy_answer(o->busy_) {
      local.fd = h.fd;
      local.id = h.id;
      local.owner = h.owner;
      work.fn = &sg_path_jobs::run;
      work.context = this;
    }
    sg_path_jobs* owner;
    handle_type* shared;
    handle_type local; ///< only the running work touches it
    work_item work;
    Done done{nullptr, nullptr, 0};
    Answer busy_answer;
    bool busy = false;
  };

  static void run(work_item& w) noexcept {
    slot& s = *static_cast<slot*>(w.context);
    Answer a = s.owner->fn_(s.owner->owner_, s.local);
    Done done{nullptr, nullptr, 0};
    {
      std::lock_guard guard(s.owner->mutex_);
      done = s.done;
      s.busy = false;
      if (s.owner->remember_)
        s.busy_answer = a;
    }
    // Last: the monitor may be gone as soon as it has this answer, and the path with it.
    done(a);
  }

  Exec& exec_;
  const void* owner_;
  work_fn fn_;
  Answer busy_;
  bool remember_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<slot>> slots_;
  std::uint64_t started_ = 0;
};

template <class P, class Handle>
concept sg_path_of = Path<P> && requires(P& p) {
  { sg_handle(p.handle()) } -> std::same_as<Handle&>;
};

} // namespace detail

/// multipathd's `tur` checker: TEST UNIT READY through the path, classified by classify_tur,
/// retried after a unit attention. Models health::PathChecker.
///
/// Thread safety: `check` from any thread; commands run on `exec`. Destroy it after every monitor
/// using it has stopped and while the backends and `exec` still live.
template <class Backend, Executor Exec> class sg_tur_checker {
public:
  using handle_type = typename Backend::handle_type;

  explicit sg_tur_checker(Exec& exec, tur_options options = {}) noexcept
      : options_(options), jobs_(exec, this, &sg_tur_checker::run, health::check_result::timeout, false) {}

  template <Path P>
  requires detail::sg_path_of<P, handle_type>
  void check(P& p, health::check_done done) noexcept { jobs_.start(detail::sg_handle(p.handle()), done); }

  /// Checks started so far (not those answered busy).
  std::uint64_t checks() const { return jobs_.started(); }

  /// TEST UNIT READY on `h`, synchronously on the calling thread, with the retries.
  static tur_verdict check_now(Backend& b, const handle_type& h, const tur_options& o) noexcept {
    tur_verdict v;
    for (unsigned attempt = 0;; ++attempt) {
      v = classify_tur(b.execute(h.fd, scsi::test_unit_ready(), SG_DXFER_NONE, nullptr, 0));
      if (!v.retry || attempt >= o.unit_attention_retries)
        return v;
    }
  }

private:
  static health::check_result run(const void* owner, handle_type& h) noexcept {
    auto& self = *static_cast<const sg_tur_checker*>(owner);
    return check_now(*h.owner, h, self.options_).result;
  }

  tur_options options_;
  detail::sg_path_jobs<Backend, Exec, health::check_done, health::check_result> jobs_;
};

/// multipathd's `alua` prioritizer: the path's own target port group (INQUIRY TPGS, VPD 0x83,
/// learnt once per path) and its state from REPORT TARGET PORT GROUPS, through alua_handler's
/// identify/report (and so its RTPG parser), scored by alua_priority. A target without ALUA, or
/// a command that fails, gives 0 (multipathd leaves such a path's priority undefined; the health
/// layer's priorities are ≥ 0). Models health::Prioritizer.
///
/// Thread safety: as sg_tur_checker.
template <class Backend, Executor Exec> class sg_alua_prioritizer {
public:
  using handle_type = typename Backend::handle_type;

  /// `exclusive_pref_bit`: also add 80 to an active/optimized group with PREF set.
  explicit sg_alua_prioritizer(Exec& exec, bool exclusive_pref_bit = false) noexcept
      : exclusive_pref_(exclusive_pref_bit), jobs_(exec, this, &sg_alua_prioritizer::run, 0, true) {}

  template <Path P>
  requires detail::sg_path_of<P, handle_type>
  void get_priority(P& p, health::prio_done done) noexcept { jobs_.start(detail::sg_handle(p.handle()), done); }

  std::uint64_t queries() const { return jobs_.started(); }

  /// The priority of the path `h`, synchronously; fills `h.tpgs`, `h.tpg`, `h.relative_port`
  /// and `h.alua_state` as the hardware handler does.
  static int priority_now(Backend& b, handle_type& h, bool exclusive_pref_bit) noexcept {
    if (h.tpgs == 0xff || ((h.tpgs & 0x3) != 0 && h.tpg < 0))
      if (alua_handler::identify(b, h) != activation_result::ok)
        return 0;
    if ((h.tpgs & 0x3) == 0)
      return 0; // not an ALUA target
    std::optional<tpg_descriptor> d;
    if (alua_handler::report(b, h, d) != activation_result::ok || !d)
      return 0;
    return alua_priority(d->state, d->preferred, exclusive_pref_bit);
  }

private:
  static int run(const void* owner, handle_type& h) noexcept {
    auto& self = *static_cast<const sg_alua_prioritizer*>(owner);
    return priority_now(*h.owner, h, self.exclusive_pref_);
  }

  bool exclusive_pref_;
  detail::sg_path_jobs<Backend, Exec, health::prio_done, int> jobs_;
};

} // namespace mpath::adapters
