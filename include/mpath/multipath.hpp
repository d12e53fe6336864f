#pragma once
// The engine: the dm-multipath target's state machine (kernel-target.md §2-4) over a user-supplied
// backend, executor and lock. Everything about path choice, failover, pg_init, queue_if_no_path,
// suspend, messages and status lives in this one class.
//
// Locking, as in the kernel since the 2016 rework (§4.11): the current path and group are atomic
// pointers and the flags an atomic word, read without the lock on the I/O path; every write to
// them happens under `lock_`. In steady state (a current group, QUEUE_IO clear) submit and
// complete take no engine lock and allocate nothing. No backend, handler or event callback is
// ever made with `lock_` held; executor post/cancel may be (they must not call back inline).

#include <mpath/detail/io_list.hpp>
#include <mpath/detail/text.hpp>
#include <mpath/error.hpp>
#include <mpath/executor.hpp>
#include <mpath/hw_handler.hpp>
#include <mpath/io.hpp>
#include <mpath/io_backend.hpp>
#include <mpath/path.hpp>
#include <mpath/priority_group.hpp>
#include <mpath/selector_set.hpp>
#include <mpath/selectors.hpp>
#include <mpath/table.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace mpath::inline v0 {

/// Compile-time choices of an engine; derive from it to change one.
struct default_traits {
  using selectors = default_selectors;
  using hw_handlers = hw_handler_set<>;
  using lock_type = std::mutex;
};

/// Run-time options that the kernel keeps as module parameters.
struct engine_options {
  /// kernel-target.md §4.8; 0 = off.
  std::uint32_t queue_if_no_path_timeout_secs = 0;
  /// Seed 003's failure-maximum (product.md §6): a path is failed only at its Nth consecutive path
  /// error (a success forgets them); the I/Os that erred before are retried through normal path
  /// choice. 0 and 1 = the kernel: fail at the first. A path's own threshold
  /// (`basic_path::set_failure_threshold`, seed 003's per-path value) overrides it.
  std::uint32_t path_failure_threshold = 1;
  /// Seed 001 (md multipath never fails its last disk): a path error on the last valid path
  /// completes that I/O with its error and leaves the path valid; messages and the health layer
  /// can still fail it.
  bool keep_last_path = false;
};

/// Waiting strategy for `postsuspend`/`shutdown` while activations drain: the default yields; a
/// single-threaded simulation passes a function that runs its executor.
struct yield_drive {
  void operator()() const noexcept { std::this_thread::yield(); }
};

template <IoBackend Backend, Executor Exec, class Traits = default_traits> class multipath {
public:
  using backend_type = Backend;
  using executor_type = Exec;
  using handle_type = typename Backend::handle_type;
  using io_type = typename Backend::io_type;
  using path_type = basic_path<handle_type>;
  /// The selectors of the traits, built with the traits' sync policy (selector_sync_for).
  using selector_set_type = rebind_selectors_t<typename Traits::selectors, selector_sync_for<Traits>>;
  using selector_type = any_selector<selector_set_type>;
  using group_type = basic_priority_group<selector_type, path_type>;
  using handler_type = any_hw_handler<typename Traits::hw_handlers, path_type>;
  using lock_type = typename Traits::lock_type;

  /// Builds an engine from target parameters (or a full `<start> <len> multipath ...` line).
  static result<std::unique_ptr<multipath>> create(Backend& backend, Exec& exec, std::string_view table_text,
                                                   engine_options options = {}) {
    auto t = parse_table<selector_set_type>(table_text);
    if (!t)
      return std::move(t).err();
    return create(backend, exec, *t, options);
  }

  static result<std::unique_ptr<multipath>> create(Backend& backend, Exec& exec, const table& t,
                                                   engine_options options = {}) {
    std::unique_ptr<multipath> m(new multipath(backend, exec, t, options));
    if (auto r = m->construct(t); !r)
      return std::move(r).err();
    return m;
  }

  multipath(const multipath&) = delete;
  multipath& operator=(const multipath&) = delete;
  /// Destroying an engine that a health monitor is still attached to is a programming error (the
  /// monitor's next tick would run on freed memory): it aborts, in every build type.
  ~multipath() {
    if (attached_.load(std::memory_order_acquire) != 0) {
      std::fputs("mpath: multipath engine destroyed while a health monitor is attached to it\n", stderr);
      std::abort();
    }
    shutdown();
  }

  // ---------------------------------------------------------------- the I/O path

  using channel_state = typename selector_type::channel_state;

  /// A submitting thread's handle on the engine: its own selection state in every group (the
  /// selectors' ChannelSelector state: rotation, repeat count, in-flight counters), so that I/O
  /// submitted through it writes no cache line that another channel's I/O writes (issue 11,
  /// `docs/performance.md`). Use one per submitting thread, from one thread at a time; its I/O may
  /// complete on any thread. Destroy it only when none of its I/O is in flight, and before the
  /// engine.
  ///
  /// What a channel sees: a path failed before a submit through any channel starts (fail_path
  /// returned, by message, I/O error or activation result) is never chosen by it; one channel
  /// doing all the I/O selects exactly as an engine without channels, byte for byte in INFO. I/O
  /// the engine reissues by itself (bio mode's held I/O, from its worker) goes through the
  /// selectors' own state, as I/O submitted without a channel does.
  class channel {
  public:
    explicit channel(multipath& m) : m_(&m), states_(std::make_unique<channel_state[]>(m.nr_groups_)) {
      for (auto& g : m.groups())
        g.selector().attach(states_[g.number() - 1]);
    }
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;
    ~channel() {
      for (auto& g : m_->groups())
        g.selector().detach(states_[g.number() - 1]);
    }

  private:
    friend class multipath;
    multipath* m_;
    std::unique_ptr<channel_state[]> states_; ///< by group number - 1
  };

  /// Maps a new I/O (kernel-target.md §4.3, and bio mode). Set `io.nr_bytes` first.
  /// The answer says who owns `io` now (io.hpp): ignoring it loses requeued I/O.
  [[nodiscard]] disposition submit(io_type& io) noexcept { return submit_on(io, nullptr); }

  /// The same through a channel (the submitting thread's own).
  [[nodiscard]] disposition submit(io_type& io, channel& ch) noexcept { return submit_on(io, ch.states_.get()); }

private:
  disposition submit_on(io_type& io, channel_state* ch) noexcept {
    io.path_ = nullptr;
    if (suspend_state_.load(std::memory_order_acquire) == suspend_state::suspended) [[unlikely]]
      if (std::optional<disposition> d = submit_suspended(io))
        return *d;
    return mode_ == queue_mode::bio ? map_bio(io, ch) : map_request(io, ch);
  }

  /// submit while suspended, out of the I/O path's line (measured: kept inline it cost the steady
  /// state 1.5 ns). Nothing when the I/O is not held and must be mapped here (a resume came
  /// first); else what became of it (held, or handed to the live table, which may have
  /// dispatched it already: it is not this engine's any more).
  [[gnu::cold, gnu::noinline]] std::optional<disposition> submit_suspended(io_type& io) noexcept {
    if (mode_ == queue_mode::request) // DM core holds it until resume; a replaced table's, not at all
      return retired() ? disposition::requeue : disposition::delay_requeue;
    {
      std::lock_guard guard(lock_);
      // Re-checked under the lock: resume moves pushed_back_ under it, so an I/O held after a
      // concurrent resume would never be reissued; and retire() takes it.
      if (!retired_.load(std::memory_order_relaxed)) {
        if (suspend_state_.load(std::memory_order_acquire) == suspend_state::suspended) {
          pushed_back_.push_back(io);
          return disposition::queued;
        }
      }
    }
    if (retired())
      return handoff_.fn(handoff_.context, io);
    return std::nullopt;
  }

public:
  /// Reports the backend's completion of an I/O it was given through `submit` (§4.4).
  [[nodiscard]] disposition complete(io_type& io, blk_status status) noexcept {
    auto* p = static_cast<path_type*>(io.path_);
    io.path_ = nullptr;
    if (status == blk_status::ok || !is_path_error(status)) {
      if (p && status == blk_status::ok)
        p->forget_path_errors();
      end_io(p, io);
      backend_.io_done(io, status);
      return disposition::completed;
    }
    return complete_with_error(io, p, status);
  }

private:
  /// complete() of a path error, out of the I/O path's line (see submit_suspended).
  [[gnu::cold, gnu::noinline]] disposition complete_with_error(io_type& io, path_type* p, blk_status status) noexcept {
    if (retired()) { // its table is gone: the live table retries it (mapped_device.hpp)
      end_io(p, io);
      if (mode_ == queue_mode::bio)
        return handoff_.fn(handoff_.context, io);
      return status == blk_status::resource ? disposition::delay_requeue : disposition::requeue;
    }
    error_action action = p ? handler_.classify(*p, status) : error_action::fail_path;
    if (p && has(action, error_action::fail_path)) {
      switch (fail_path_on_error(*p)) {
      case error_outcome::failed:
      case error_outcome::below_threshold: break; // the path stays valid; the I/O is retried below
      case error_outcome::last_path_kept:
        end_io(p, io);
        backend_.io_done(io, status);
        return disposition::completed;
      }
    }
    if (p && has(action, error_action::bypass_group))
      bypass_group(*group_of(*p), true, true);
    end_io(p, io);
    if (has(action, error_action::error_io)) {
      backend_.io_done(io, status);
      return disposition::completed;
    }
    return mode_ == queue_mode::bio ? retry_bio(io) : retry_request(io, status);
  }

public:
  // ---------------------------------------------------------------- control

  /// A `dmsetup message` (kernel-target.md §3): words split on blanks, matched case-insensitively.
  result<void> message(std::string_view text) {
    auto words = detail::split_words(text);
    return message(std::span<const std::string>(words));
  }

  result<void> message(std::span<const std::string> argv) {
    std::lock_guard serial(message_mutex_);
    if (suspend_state_.load(std::memory_order_acquire) == suspend_state::suspended)
      return error{EBUSY, "device is suspended"};
    if (argv.size() == 1) {
      if (detail::iequals(argv[0], "queue_if_no_path")) {
        set_queue_if_no_path(true, false);
        std::lock_guard guard(lock_);
        enable_nopath_timeout_locked();
        return {};
      }
      if (detail::iequals(argv[0], "fail_if_no_path")) {
        set_queue_if_no_path(false, false);
        disable_nopath_timeout();
        return {};
      }
    }
    if (argv.size() != 2)
      return einval("Invalid multipath message arguments. Expected 2 arguments, got " + std::to_string(argv.size()) +
                    ".");
    if (detail::iequals(argv[0], "disable_group") || detail::iequals(argv[0], "enable_group")) {
      group_type* g = group_by_number(argv[1]);
      if (!g)
        return einval("invalid PG number supplied to bypass_pg");
      bypass_group(*g, detail::iequals(argv[0], "disable_group"), true);
      return {};
    }
    if (detail::iequals(argv[0], "switch_group")) {
      group_type* g = group_by_number(argv[1]);
      if (!g)
        return einval("invalid PG number supplied to switch_pg_num");
      switch_group(*g);
      return {};
    }
    bool fail = detail::iequals(argv[0], "fail_path");
    if (!fail && !detail::iequals(argv[0], "reinstate_path"))
      return einval("Unrecognised multipath message received: " + argv[0]);
    bool matched = false;
    int r = 0;
    for (auto& g : groups())
      for (auto& p : g.paths())
        if (p.device() == argv[1]) {
          matched = true;
          r = fail ? fail_path(p) : reinstate_path(p);
        }
    if (!matched)
      return einval("message: error getting device " + argv[1]);
    if (r != 0)
      return error{-r, "selector refused to reinstate path " + argv[1]};
    return {};
  }

  /// Fails one path (I/O errors, activation failures and the fail_path message end here).
  int fail_path(path_type& p) noexcept {
    std::lock_guard guard(lock_);
    fail_path_locked(p);
    return 0;
  }

  /// Reinstates one path (§4.6); returns the selector's result.
  int reinstate_path(path_type& p) noexcept {
    bool run_queue = false;
    int r = 0;
    {
      std::lock_guard guard(lock_);
      if (!p.is_active()) {
        auto& g = *group_of(p);
        r = g.selector().reinstate_path(p.index());
        if (r == 0) {
          p.set_active(true);
          std::uint32_t valid = nr_valid_paths_.fetch_add(1, std::memory_order_acq_rel) + 1;
          if (valid == 1) {
            current_pgpath_.store(nullptr, std::memory_order_release);
            run_queue = true;
          } else if (handler_.present() && current_pg_.load(std::memory_order_relaxed) == &g) {
            if (exec_.post(activation_of(p), 0))
              pg_init_in_progress_.fetch_add(1, std::memory_order_acq_rel);
          }
          raise_event_locked(path_event::kind::path_reinstated, p, valid);
        }
      }
    }
    if (run_queue)
      process_queued_io();
    if (p.is_active())
      disable_nopath_timeout();
    return r;
  }

  /// presuspend (§4.7): a flushing suspend, or any suspend in bio mode, turns queueing off and
  /// saves the old setting; a noflush suspend pushes "no path" I/O back instead of failing it.
  void presuspend(bool noflush) {
    std::lock_guard serial(message_mutex_);
    suspend_state_.store(suspend_state::suspending, std::memory_order_release);
    noflush_.store(noflush, std::memory_order_release);
    if (mode_ == queue_mode::bio || !noflush)
      set_queue_if_no_path(false, true);
  }

  /// postsuspend: waits for outstanding activations (calling `drive` while it waits), then the
  /// device is suspended and messages answer EBUSY until `resume`.
  template <class Drive = yield_drive> void postsuspend(Drive&& drive = {}) {
    std::lock_guard serial(message_mutex_);
    flush_activations(drive);
    suspend_state_.store(suspend_state::suspended, std::memory_order_release);
  }

  template <class Drive = yield_drive> void suspend(bool noflush, Drive&& drive = {}) {
    presuspend(noflush);
    postsuspend(drive);
  }

  /// resume: restores a queue_if_no_path saved by presuspend, then reissues held I/O.
  void resume() {
    std::lock_guard serial(message_mutex_);
    {
      std::lock_guard guard(lock_);
      if (test(saved_queue_if_no_path)) {
        set(queue_if_no_path_flag);
        clear(saved_queue_if_no_path);
      }
      suspend_state_.store(suspend_state::running, std::memory_order_release);
      noflush_.store(false, std::memory_order_release);
      queued_.prepend(pushed_back_); // held I/O is older than anything queued since
    }
    process_queued_io();
  }

  bool suspended() const noexcept { return suspend_state_.load(std::memory_order_acquire) == suspend_state::suspended; }

  // ---------------------------------------------------------------- table swap (mapped_device)

  /// Where a retired engine sends an I/O it would otherwise hold: the device's live table.
  struct handoff {
    disposition (*fn)(void* context, io_type& io) noexcept = nullptr;
    void* context = nullptr;
  };

  /// Retires a suspended engine whose table a reload replaced (mapped_device.hpp): returns every
  /// I/O it holds (bio mode's queued and pushed-back I/O, kernel-target.md §4.7: what a noflush
  /// suspend holds survives the swap) for the new table, and from now on hands an I/O it would hold
  /// to `to` instead (a submit that raced the swap, a retry of an I/O still in flight on one of its
  /// paths). It raises no more path events and arms no timer; its in-flight I/O completes through
  /// it as before. Precondition: postsuspend has returned.
  [[nodiscard]] detail::io_list retire(handoff to) noexcept {
    detail::io_list held;
    std::lock_guard guard(lock_);
    handoff_ = to;
    retired_.store(true, std::memory_order_release);
    nopath_armed_ = false;
    held.append(pushed_back_);
    held.append(queued_);
    return held;
  }
  bool retired() const noexcept { return retired_.load(std::memory_order_acquire); }

  /// Whether `io` was dispatched to one of this engine's paths (and has not completed).
  bool owns(const io_type& io) const noexcept {
    const auto* p = static_cast<const path_type*>(io.path_);
    std::less<const path_type*> before;
    for (const auto& g : groups()) {
      auto paths = g.paths();
      if (!paths.empty() && !before(p, paths.data()) && before(p, paths.data() + paths.size()))
        return true;
    }
    return false;
  }

  /// The engine options in force now (a reload carries them to the new table).
  engine_options options() const {
    std::lock_guard guard(lock_);
    engine_options o = options_;
    o.path_failure_threshold = path_failure_threshold_.load(std::memory_order_relaxed);
    o.keep_last_path = keep_last_path_.load(std::memory_order_relaxed);
    return o;
  }

  /// Stops deferred work and fails every I/O the engine still holds. Called by the destructor;
  /// call it yourself with a `drive` when activations only progress on your thread.
  ///
  /// Precondition: no other thread calls into the engine any more (no submit, complete or
  /// message) and the backend has no I/O of it in flight. When it returns, none of the engine's
  /// work items is queued or running and no activation callback is still inside the engine, so
  /// its memory can be freed (this relies on `Executor::cancel_sync`, executor.hpp).
  template <class Drive = yield_drive> void shutdown(Drive&& drive = {}) {
    if (shut_down_)
      return;
    shut_down_ = true;
    {
      std::lock_guard guard(lock_);
      set(pg_init_disabled);
      nopath_armed_ = false;
      // Activations that have not started never will.
      for (std::size_t i = 0; i < total_paths_; ++i)
        if (exec_.cancel(activations_[i].work))
          pg_init_in_progress_.fetch_sub(1, std::memory_order_acq_rel);
    }
    // One that has started finishes, and so does its completion, which may come later and from
    // the handler's own thread: pg_init_done is still running until pg_init_completing_ drops.
    for (std::size_t i = 0; i < total_paths_; ++i)
      (void)exec_.cancel_sync(activations_[i].work);
    while (pg_init_in_progress_.load(std::memory_order_acquire) > 0 ||
           pg_init_completing_.load(std::memory_order_acquire) > 0)
      drive();
    // In this order, because each may post the next: the no-path timer re-drives the worker, the
    // worker's dispatches can fail paths and post event delivery.
    (void)exec_.cancel_sync(nopath_work_);
    (void)exec_.cancel_sync(worker_work_);
    (void)exec_.cancel_sync(event_work_);
    detail::io_list failed;
    {
      std::lock_guard guard(lock_);
      failed.append(pushed_back_);
      failed.append(queued_);
    }
    deliver_events();
    while (io_context* io = failed.pop_front())
      backend_.io_done(static_cast<io_type&>(*io), blk_status::ioerr);
  }

  /// Probes every active path of the current group through the backend (§4.9, the
  /// DM_MPATH_PROBE_PATHS ioctl). Returns ENOTCONN when no valid path remains anywhere.
  result<void> probe_paths() {
    bool waited = !probe_mutex_.try_lock();
    if (waited)
      probe_mutex_.lock();
    std::lock_guard serial(probe_mutex_, std::adopt_lock);
    group_type* pg = nullptr;
    {
      std::lock_guard guard(lock_);
      pg = current_pg_.load(std::memory_order_relaxed);
      bool skip = pg == nullptr || suspended() || test(queue_io) || (waited && last_probed_pg_ == pg);
      if (!skip) {
        set(delay_pg_switch);
        last_probed_pg_ = pg;
      } else {
        pg = nullptr;
      }
    }
    if (pg) {
      for (auto& p : pg->paths()) {
        if (current_pg_.load(std::memory_order_acquire) != pg || suspended())
          break;
        if (!p.is_active())
          continue;
        if (is_path_error(backend_.probe(p.handle())))
          fail_path(p);
      }
      std::lock_guard guard(lock_);
      clear(delay_pg_switch);
      if (test(need_pg_switch)) {
        clear(need_pg_switch);
        current_pgpath_.store(nullptr, std::memory_order_release);
        current_pg_.store(nullptr, std::memory_order_release);
      }
    }
    if (nr_valid_paths_.load(std::memory_order_acquire) == 0)
      return error{ENOTCONN, "no valid path"};
    return {};
  }

  /// Request-mode back-pressure (§4.10).
  bool busy() noexcept {
    if (pg_init_in_progress_.load(std::memory_order_acquire) > 0)
      return true;
    if (nr_valid_paths_.load(std::memory_order_acquire) == 0) {
      std::lock_guard guard(lock_);
      if (test(queue_if_no_path_flag))
        return mode_ != queue_mode::request;
    }
    group_type* pg = current_pg_.load(std::memory_order_acquire);
    group_type* next = next_pg_.load(std::memory_order_acquire);
    if (current_pgpath_.load(std::memory_order_acquire) == nullptr && next)
      pg = next;
    if (!pg)
      return false;
    bool has_active = false;
    for (auto& p : pg->paths()) {
      if (!p.is_active())
        continue;
      has_active = true;
      if (!path_busy(p))
        return false;
    }
    return has_active;
  }

  /// The path an ioctl would be forwarded to (§4.10): the path, ENOTCONN while a group is still
  /// initialising or I/O would queue, EIO when there is no path. The errors carry no text.
  result<path_type*> current_path() noexcept {
    path_type* p = current_pgpath_.load(std::memory_order_acquire);
    if (!p || !test_checked(queue_io))
      p = choose_pgpath(0, nullptr);
    int code = 0;
    if (p) {
      if (!test_checked(queue_io))
        return p;
      code = ENOTCONN;
    } else {
      std::lock_guard guard(lock_);
      code = test(queue_if_no_path_flag) ? ENOTCONN : EIO;
    }
    if (code == ENOTCONN) {
      if (!current_pg_.load(std::memory_order_acquire))
        (void)choose_pgpath(0, nullptr);
      {
        std::lock_guard guard(lock_);
        if (test(pg_init_required))
          (void)pg_init_all_paths_locked();
      }
      process_queued_io();
      return error{ENOTCONN, {}}; // the kernel's ioctl answers only an errno; no text, so no allocation
    }
    return error{EIO, {}};
  }

  /// engine_options::path_failure_threshold, from now on (0 = 1).
  void set_path_failure_threshold(std::uint32_t n) noexcept {
    path_failure_threshold_.store(n, std::memory_order_relaxed);
  }
  /// engine_options::keep_last_path, from now on.
  void set_keep_last_path(bool on) noexcept { keep_last_path_.store(on, std::memory_order_relaxed); }

  /// The no-path timeout (kernel-target.md §4.8), in seconds; 0 = off.
  void set_queue_if_no_path_timeout(std::uint32_t secs) noexcept {
    std::lock_guard guard(lock_);
    options_.queue_if_no_path_timeout_secs = secs;
  }

  // ---------------------------------------------------------------- status

  /// `dmsetup status` (INFO) or `dmsetup table` (TABLE) text, byte-exact (§2), trailing blank included.
  std::string status(status_type type) const {
    std::string out;
    status(type, out);
    return out;
  }

  void status(status_type type, std::string& out) const {
    std::lock_guard guard(lock_);
    detail::status_writer w(out);
    if (type == status_type::info) {
      w.number(2).number(test(queue_io) ? 1 : 0).number(pg_init_count_.load(std::memory_order_relaxed));
      w.number(0);
    } else {
      table_features f = features_;
      f.queue_if_no_path = test(queue_if_no_path_flag);
      detail::format_features(f, w);
      detail::format_hw_handler(handler_.present() ? std::string_view(hw_handler_name_) : std::string_view(), w);
    }
    w.number(nr_groups_).number(reported_pg_number());
    for (const auto& g : groups()) {
      if (type == status_type::info) {
        const group_type* cur = current_pg_.load(std::memory_order_relaxed);
        w.letter(g.bypassed() ? 'D' : (&g == cur ? 'A' : 'E'));
      } else {
        w.word(g.selector().name());
      }
      g.selector().group_status(out);
      w.number(g.size()).number(type == status_type::info ? g.selector().info_args() : g.selector().table_args());
      for (const auto& p : g.paths()) {
        w.word(p.device());
        if (type == status_type::info)
          w.letter(p.is_active() ? 'A' : 'F').number(p.fail_count());
        g.selector().path_status(p.index(), type, out);
      }
    }
  }

  // ---------------------------------------------------------------- observers

  std::uint32_t nr_valid_paths() const noexcept { return nr_valid_paths_.load(std::memory_order_acquire); }
  std::uint32_t pg_init_in_progress() const noexcept { return pg_init_in_progress_.load(std::memory_order_acquire); }
  std::uint32_t pg_init_count() const noexcept { return pg_init_count_.load(std::memory_order_acquire); }
  /// Counts table events (path failed/reinstated, group changes), like `dmsetup wait`'s event_nr.
  std::uint64_t event_nr() const noexcept { return event_nr_.load(std::memory_order_acquire); }
  /// Path events dropped because more than `event_capacity()` happened between two deliveries.
  std::uint64_t events_lost() const noexcept { return events_lost_.load(std::memory_order_relaxed); }
  /// How many path events can wait for delivery: eight per path, at least 64.
  std::size_t event_capacity() const noexcept { return std::max<std::size_t>(64, 8 * total_paths_); }
  bool queue_if_no_path() const noexcept { return test(queue_if_no_path_flag); }
  bool queue_io_flag() const noexcept { return test(queue_io); }
  queue_mode mode() const noexcept { return mode_; }
  std::size_t queued() const {
    std::lock_guard guard(lock_);
    return queued_.size() + pushed_back_.size();
  }
  std::span<group_type> groups() noexcept { return {groups_.get(), nr_groups_}; }
  std::span<const group_type> groups() const noexcept { return {groups_.get(), nr_groups_}; }
  /// The current group's number, or 0.
  std::uint32_t current_group() const noexcept {
    const group_type* g = current_pg_.load(std::memory_order_acquire);
    return g ? g->number() : 0;
  }
  handler_type& hw_handler() noexcept { return handler_; }
  Backend& backend() noexcept { return backend_; }
  /// The executor the engine posts its deferred work on; the health layer ticks on it too.
  Exec& executor() noexcept { return exec_; }

  /// A health monitor (anything that keeps a reference to the engine and posts work that uses
  /// it) attaches itself for its lifetime; the destructor aborts while one is attached.
  void attach_monitor() noexcept { attached_.fetch_add(1, std::memory_order_acq_rel); }
  void detach_monitor() noexcept { attached_.fetch_sub(1, std::memory_order_acq_rel); }

private:
  // ---------------------------------------------------------------- state

  enum flag : std::uint32_t {
    queue_io = 1u << 0,
    queue_if_no_path_flag = 1u << 1,
    saved_queue_if_no_path = 1u << 2,
    pg_init_disabled = 1u << 3,
    pg_init_required = 1u << 4,
    pg_init_delay_retry = 1u << 5,
    delay_pg_switch = 1u << 6,
    need_pg_switch = 1u << 7,
  };
  enum class suspend_state : std::uint8_t { running, suspending, suspended };

  struct activation_slot {
    work_item work;
    path_type* path = nullptr;
    multipath* engine = nullptr;
  };

  multipath(Backend& backend, Exec& exec, const table& t, engine_options options)
      : backend_(backend), exec_(exec), features_(t.features), mode_(t.features.mode), options_(options),
        path_failure_threshold_(options.path_failure_threshold), keep_last_path_(options.keep_last_path) {}

  result<void> construct(const table& t) {
    if (mode_ == queue_mode::request && !t.hw_handler.empty()) {
      if (auto r = handler_.create(t.hw_handler, t.hw_handler_args); !r)
        return r;
      hw_handler_name_ = t.hw_handler;
    }
    nr_groups_ = static_cast<std::uint32_t>(t.groups.size());
    groups_ = std::make_unique<group_type[]>(nr_groups_);
    group_base_ = std::make_unique<std::size_t[]>(nr_groups_);
    for (std::uint32_t gi = 0; gi < nr_groups_; ++gi) {
      group_base_[gi] = total_paths_;
      total_paths_ += t.groups[gi].paths.size();
    }
    activations_ = std::make_unique<activation_slot[]>(total_paths_);
    pending_events_.reserve(event_capacity());
    delivering_events_.reserve(event_capacity());
    std::size_t slot = 0;
    for (std::uint32_t gi = 0; gi < nr_groups_; ++gi) {
      const auto& spec = t.groups[gi];
      auto& g = groups_[gi];
      g.set_number(gi + 1);
      if (auto r = g.selector().create(spec.selector, spec.selector_args); !r)
        return r;
      g.reserve_paths(spec.paths.size());
      for (std::size_t pi = 0; pi < spec.paths.size(); ++pi) {
        const auto& ps = spec.paths[pi];
        auto handle = backend_.open_path(ps.device);
        if (!handle)
          return error{handle.err().code, "error getting device"};
        if (auto r = g.selector().add_path(ps.args); !r)
          return r;
        auto& p = g.emplace_path(ps.device, std::move(*handle), path_index(pi), static_cast<void*>(&g));
        auto& a = activations_[slot++];
        a.path = &p;
        a.engine = this;
        a.work.context = &a;
        a.work.fn = &multipath::run_activation;
      }
    }
    nr_valid_paths_.store(static_cast<std::uint32_t>(total_paths_), std::memory_order_release);
    if (t.initial_pg >= 1 && t.initial_pg <= nr_groups_)
      next_pg_.store(&groups_[t.initial_pg - 1], std::memory_order_release);
    std::uint32_t flags = queue_io;
    if (features_.queue_if_no_path)
      flags |= queue_if_no_path_flag;
    flags_.store(flags, std::memory_order_release);
    nopath_work_.context = this;
    nopath_work_.fn = &multipath::run_nopath_timeout;
    worker_work_.context = this;
    worker_work_.fn = &multipath::run_worker;
    event_work_.context = this;
    event_work_.fn = &multipath::run_events;
    std::lock_guard guard(lock_);
    enable_nopath_timeout_locked();
    return {};
  }

  // ---------------------------------------------------------------- flags

  bool test(std::uint32_t f) const noexcept { return (flags_.load(std::memory_order_acquire) & f) != 0; }
  void set(std::uint32_t f) noexcept {
    detail::assert_held(lock_, "multipath::set (a flag)");
    flags_.fetch_or(f, std::memory_order_acq_rel);
  }
  void clear(std::uint32_t f) noexcept {
    detail::assert_held(lock_, "multipath::clear (a flag)");
    flags_.fetch_and(~f, std::memory_order_acq_rel);
  }
  /// A clear bit is trusted without the lock; a set bit is re-read under it (§4.11).
  bool test_checked(std::uint32_t f) const noexcept {
    if (!test(f))
      return false;
    std::lock_guard guard(lock_);
    return test(f);
  }

  // ---------------------------------------------------------------- path choice (§4.2)

  static group_type* group_of(const path_type& p) noexcept { return static_cast<group_type*>(p.group()); }

  /// The executor's time for selectors that ask for it (HST); 0 otherwise, so the common
  /// selectors never pay for a clock read.
  std::uint64_t selector_now(const group_type& g) const noexcept {
    if constexpr (selector_set_type::uses_clock) {
      if (g.selector().uses_clock())
        return exec_.now_ns();
    }
    (void)g;
    return 0;
  }

  /// `ch`: the channel's states by group (null: the selectors' own, under their locks).
  path_type* choose_path_in_group(group_type& g, std::uint64_t nr_bytes, channel_state* ch) noexcept {
    path_index i = ch ? g.selector().select(ch[g.number() - 1], nr_bytes, selector_now(g))
                      : g.selector().select(nr_bytes, selector_now(g));
    if (i == no_path)
      return nullptr;
    path_type* p = &g.path(i);
    if (current_pg_.load(std::memory_order_acquire) != &g) { // only a group change touches shared state
      std::lock_guard guard(lock_);
      current_pgpath_.store(p, std::memory_order_release);
      switch_pg_locked(g);
    }
    return p;
  }

  void switch_pg_locked(group_type& g) noexcept {
    detail::assert_held(lock_, __func__);
    current_pg_.store(&g, std::memory_order_release);
    if (handler_.present())
      set(pg_init_required | queue_io);
    else
      clear(pg_init_required | queue_io);
    pg_init_count_.store(0, std::memory_order_release);
  }

  path_type* choose_pgpath(std::uint64_t nr_bytes, channel_state* ch) noexcept {
    if (nr_valid_paths_.load(std::memory_order_acquire) == 0) {
      std::lock_guard guard(lock_);
      clear(queue_io);
    } else {
      // Stickiness: never leave a group that still yields a path (NEWEST ordering).
      if (group_type* g = current_pg_.load(std::memory_order_acquire))
        if (path_type* p = choose_path_in_group(*g, nr_bytes, ch))
          return p;
      if (next_pg_.load(std::memory_order_acquire)) {
        group_type* g = nullptr;
        {
          std::lock_guard guard(lock_);
          g = next_pg_.exchange(nullptr, std::memory_order_acq_rel);
        }
        if (g)
          if (path_type* p = choose_path_in_group(*g, nr_bytes, ch))
            return p;
      }
      // Pass 1: groups not bypassed; pass 2: bypassed ones, with a delayed pg_init.
      for (int pass = 0; pass < 2; ++pass) {
        for (auto& g : groups()) {
          if (g.bypassed() != (pass == 1))
            continue;
          if (path_type* p = choose_path_in_group(g, nr_bytes, ch)) {
            if (pass == 1) {
              std::lock_guard guard(lock_);
              set(pg_init_delay_retry);
            }
            return p;
          }
        }
      }
    }
    std::lock_guard guard(lock_);
    current_pgpath_.store(nullptr, std::memory_order_release);
    current_pg_.store(nullptr, std::memory_order_release);
    return nullptr;
  }

  // ---------------------------------------------------------------- mapping (§4.3, bio mode)

  /// The path for this I/O, or null (the caller checks whether the group still needs pg_init).
  path_type* pick(std::uint64_t nr_bytes, channel_state* ch) noexcept {
    path_type* p = current_pgpath_.load(std::memory_order_acquire);
    if (!p || !test_checked(queue_io))
      p = choose_pgpath(nr_bytes, ch);
    return p;
  }

  bool must_push_back_request() const noexcept {
    if (noflush_.load(std::memory_order_acquire))
      return true;
    std::lock_guard guard(lock_);
    return test(queue_if_no_path_flag);
  }

  disposition map_request(io_type& io, channel_state* ch) noexcept {
    path_type* p = pick(io.nr_bytes, ch);
    if (!p) {
      if (must_push_back_request())
        return disposition::delay_requeue;
      backend_.io_done(io, blk_status::ioerr); // the kernel's KILL
      return disposition::completed;
    }
    if (test_checked(queue_io) || test_checked(pg_init_required)) {
      pg_init_all_paths();
      return disposition::delay_requeue;
    }
    dispatch(io, *p, ch);
    return disposition::dispatched;
  }

  /// One bio-mode mapping: a new I/O, or held I/O the worker reissues.
  disposition map_bio(io_type& io, channel_state* ch) noexcept {
    path_type* p = pick(io.nr_bytes, ch);
    if (!p) {
      bool held = false, kick = false, hand_off = false;
      {
        std::lock_guard guard(lock_);
        if (retired_.load(std::memory_order_relaxed)) { // decided under the lock retire() takes
          hand_off = true;
        } else if (test(queue_if_no_path_flag)) {
          // Held until a path comes back: dispatch is event driven (product.md §5), so unlike the
          // kernel we do not kick the worker, which would only spin. But a path reinstated since
          // pick() looked has already run its kick, so re-check under the lock.
          queued_.push_back(io);
          held = true;
          kick = nr_valid_paths_.load(std::memory_order_acquire) > 0;
        } else if (noflush_.load(std::memory_order_acquire)) {
          pushed_back_.push_back(io); // reissued at resume
          held = true;
        }
      }
      if (kick)
        exec_.post(worker_work_, 0);
      if (held)
        return disposition::queued;
      if (hand_off)
        return handoff_.fn(handoff_.context, io);
      backend_.io_done(io, blk_status::ioerr);
      return disposition::completed;
    }
    if (test_checked(queue_io) || test_checked(pg_init_required)) {
      disposition d = queue_bio(io);
      pg_init_all_paths();
      return d;
    }
    dispatch(io, *p, ch);
    return disposition::dispatched;
  }

  disposition queue_bio(io_type& io) noexcept {
    bool kick = false, hand_off = false;
    {
      std::lock_guard guard(lock_);
      hand_off = retired_.load(std::memory_order_relaxed); // decided under the lock retire() takes
      if (!hand_off) {
        queued_.push_back(io);
        kick = !test(queue_io);
      }
    }
    if (hand_off)
      return handoff_.fn(handoff_.context, io);
    if (kick)
      exec_.post(worker_work_, 0);
    return disposition::queued;
  }

  void dispatch(io_type& io, path_type& p, channel_state* ch) noexcept {
    group_type& g = *group_of(p);
    io.path_ = &p;
    io.start_ns = selector_now(g);
    if (ch) {
      channel_state& c = ch[g.number() - 1];
      io.channel_ = &c;
      g.selector().start_io(c, p.index(), io.nr_bytes);
    } else {
      io.channel_ = nullptr;
      g.selector().start_io(p.index(), io.nr_bytes);
    }
    backend_.submit(p.handle(), io);
  }

  /// The accounting goes back to the channel that dispatched the I/O, from whichever thread.
  void end_io(path_type* p, io_type& io) noexcept {
    if (!p)
      return;
    group_type& g = *group_of(*p);
    if (auto* c = static_cast<channel_state*>(io.channel_))
      g.selector().end_io(*c, p->index(), io.nr_bytes, io.start_ns, selector_now(g));
    else
      g.selector().end_io(p->index(), io.nr_bytes, io.start_ns, selector_now(g));
    io.channel_ = nullptr;
  }

  disposition retry_request(io_type& io, blk_status status) noexcept {
    if (nr_valid_paths_.load(std::memory_order_acquire) == 0 && !must_push_back_request()) {
      backend_.io_done(io, status); // complete with the original error
      return disposition::completed;
    }
    return status == blk_status::resource ? disposition::delay_requeue : disposition::requeue;
  }

  disposition retry_bio(io_type& io) noexcept {
    if (nr_valid_paths_.load(std::memory_order_acquire) == 0) {
      bool fail = false;
      {
        std::lock_guard guard(lock_);
        if (!test(queue_if_no_path_flag) && !retired_.load(std::memory_order_relaxed)) {
          if (noflush_.load(std::memory_order_acquire)) {
            pushed_back_.push_back(io);
            return disposition::queued;
          }
          fail = true;
        }
      }
      if (fail) {
        backend_.io_done(io, blk_status::ioerr); // bio mode normalises the error
        return disposition::completed;
      }
    }
    return queue_bio(io); // a retired engine's queue_bio hands it to the live table
  }

  /// The bio worker (the kernel's process_queued_bios): reissues everything held.
  void process_queued_bios() noexcept {
    detail::io_list batch;
    {
      std::lock_guard guard(lock_);
      batch.append(queued_);
    }
    while (io_context* io = batch.pop_front())
      (void)map_bio(static_cast<io_type&>(*io), nullptr);
  }

  /// Re-drive held or requeued I/O after a state change (the kernel's process_queued_io_list).
  void process_queued_io() noexcept {
    if (mode_ == queue_mode::bio) {
      exec_.post(worker_work_, 0);
    } else if constexpr (requires { backend_.kick_requeue(); }) {
      backend_.kick_requeue();
    }
  }

  bool path_busy(path_type& p) noexcept {
    if constexpr (requires { backend_.busy(p.handle()); })
      return backend_.busy(p.handle());
    else
      return false;
  }

  // ---------------------------------------------------------------- pg_init (§4.5)

  work_item& activation_of(const path_type& p) noexcept {
    return activations_[group_base_[group_of(p)->number() - 1] + p.index()].work;
  }

  void pg_init_all_paths() noexcept {
    std::lock_guard guard(lock_);
    (void)pg_init_all_paths_locked();
  }

  std::uint32_t pg_init_all_paths_locked() noexcept {
    detail::assert_held(lock_, __func__);
    if (pg_init_in_progress_.load(std::memory_order_acquire) > 0 || test(pg_init_disabled))
      return 0;
    pg_init_count_.fetch_add(1, std::memory_order_acq_rel);
    clear(pg_init_required);
    group_type* g = current_pg_.load(std::memory_order_relaxed);
    if (!g)
      return 0;
    std::uint64_t delay_ns = 0;
    if (test(pg_init_delay_retry))
      delay_ns = std::uint64_t(features_.pg_init_delay_msecs.value_or(2000)) * 1000000u;
    for (auto& p : g->paths()) {
      if (!p.is_active())
        continue;
      if (exec_.post(activation_of(p), delay_ns))
        pg_init_in_progress_.fetch_add(1, std::memory_order_acq_rel);
    }
    return pg_init_in_progress_.load(std::memory_order_acquire);
  }

  static void run_activation(work_item& w) noexcept {
    auto& slot = *static_cast<activation_slot*>(w.context);
    slot.engine->activate_path(*slot.path);
  }

  void activate_path(path_type& p) noexcept {
    if (p.is_active())
      handler_.activate(p, activation_done(&multipath::activation_finished, this, &p));
    else
      pg_init_done(p, activation_result::dev_offlined);
  }

  static void activation_finished(void* engine, void* path, activation_result r) noexcept {
    static_cast<multipath*>(engine)->pg_init_done(*static_cast<path_type*>(path), r);
  }

  void pg_init_done(path_type& p, activation_result result) noexcept {
    // Counted from the first line to the last, so shutdown can wait for the part that runs after
    // pg_init_in_progress_ dropped (the kick below).
    pg_init_completing_.fetch_add(1, std::memory_order_acq_rel);
    struct completing_guard {
      std::atomic<std::uint32_t>& n;
      ~completing_guard() { n.fetch_sub(1, std::memory_order_acq_rel); }
    } completing{pg_init_completing_};
    group_type& g = *group_of(p);
    bool delay_retry = false;
    bool kick = false;
    int err = int(result);
    {
      std::lock_guard guard(lock_);
      switch (result) {
      case activation_result::ok: break;
      case activation_result::nosys:
        if (!handler_.present()) {
          err = 0;
          break;
        }
        fail_path_locked(p); // "Could not failover the device": fail it so we do not ping-pong
        break;
      case activation_result::dev_temp_busy:
        // Probably a firmware upgrade on the controller: try the other group. Never deferred.
        bypass_group_locked(g, true, false);
        break;
      case activation_result::retry: delay_retry = true; [[fallthrough]];
      case activation_result::imm_retry:
      case activation_result::res_temp_unavail:
        if (pg_init_count_.load(std::memory_order_acquire) <= features_.pg_init_retries && !test(pg_init_disabled))
          set(pg_init_required);
        else
          fail_path_locked(p);
        err = 0;
        break;
      default: fail_path_locked(p); break;
      }

      if (err != 0) {
        if (&p == current_pgpath_.load(std::memory_order_relaxed)) { // "Could not failover device"
          current_pgpath_.store(nullptr, std::memory_order_release);
          current_pg_.store(nullptr, std::memory_order_release);
        }
      } else if (!test(pg_init_required)) {
        g.set_bypassed(false); // a successful activation re-enables a bypassed group
      }

      if (pg_init_in_progress_.fetch_sub(1, std::memory_order_acq_rel) - 1 > 0)
        return; // other activations still outstanding
      if (test(pg_init_required)) {
        if (delay_retry)
          set(pg_init_delay_retry);
        else
          clear(pg_init_delay_retry);
        if (pg_init_all_paths_locked() > 0)
          return;
      }
      clear(queue_io);
      kick = true;
    }
    if (kick)
      process_queued_io();
  }

  template <class Drive> void flush_activations(Drive& drive) {
    {
      std::lock_guard guard(lock_);
      if (pg_init_in_progress_.load(std::memory_order_acquire) == 0)
        return;
      set(pg_init_disabled);
    }
    while (pg_init_in_progress_.load(std::memory_order_acquire) > 0)
      drive();
    std::lock_guard guard(lock_);
    clear(pg_init_disabled);
  }

  // ---------------------------------------------------------------- path state (§4.6)

  void fail_path_locked(path_type& p) noexcept {
    detail::assert_held(lock_, __func__);
    if (!p.is_active())
      return;
    group_of(p)->selector().fail_path(p.index());
    p.set_active(false);
    p.count_failure();
    p.forget_path_errors();
    std::uint32_t valid = nr_valid_paths_.fetch_sub(1, std::memory_order_acq_rel) - 1;
    if (&p == current_pgpath_.load(std::memory_order_relaxed))
      current_pgpath_.store(nullptr, std::memory_order_release); // the group stays current
    raise_event_locked(path_event::kind::path_failed, p, valid);
    enable_nopath_timeout_locked();
  }

  enum class error_outcome { failed, below_threshold, last_path_kept };

  /// A path error on `p` that the handler would fail it for, with the engine options applied
  /// (product.md §6): by default, and always with the kernel's settings, the path fails.
  error_outcome fail_path_on_error(path_type& p) noexcept {
    std::uint32_t threshold = p.failure_threshold(); // a path's own threshold wins (seed 003, §9)
    if (threshold == 0)
      threshold = path_failure_threshold_.load(std::memory_order_relaxed);
    bool keep_last = keep_last_path_.load(std::memory_order_relaxed);
    std::lock_guard guard(lock_);
    if (p.is_active()) {
      // Decided under the lock so that of two paths erring at once exactly one is the last.
      if (keep_last && nr_valid_paths_.load(std::memory_order_relaxed) == 1)
        return error_outcome::last_path_kept;
      if (threshold > 1 && p.note_path_error() < threshold)
        return error_outcome::below_threshold;
    }
    fail_path_locked(p);
    return error_outcome::failed;
  }

  void bypass_group(group_type& g, bool bypassed, bool can_be_delayed) noexcept {
    std::lock_guard guard(lock_);
    bypass_group_locked(g, bypassed, can_be_delayed);
  }

  void bypass_group_locked(group_type& g, bool bypassed, bool can_be_delayed) noexcept {
    detail::assert_held(lock_, __func__);
    g.set_bypassed(bypassed);
    if (can_be_delayed && test(delay_pg_switch)) {
      set(need_pg_switch);
    } else {
      current_pgpath_.store(nullptr, std::memory_order_release);
      current_pg_.store(nullptr, std::memory_order_release);
    }
    raise_table_event_locked();
  }

  void switch_group(group_type& target) noexcept {
    std::lock_guard guard(lock_);
    for (auto& g : groups())
      g.set_bypassed(false);
    if (test(delay_pg_switch)) {
      set(need_pg_switch);
    } else {
      current_pgpath_.store(nullptr, std::memory_order_release);
      current_pg_.store(nullptr, std::memory_order_release);
    }
    next_pg_.store(&target, std::memory_order_release);
    raise_table_event_locked();
  }

  group_type* group_by_number(const std::string& word) noexcept {
    std::uint32_t n = 0;
    if (!detail::parse_u32(word, n) || n == 0 || nr_groups_ == 0 || n > nr_groups_)
      return nullptr;
    return &groups_[n - 1];
  }

  std::uint32_t reported_pg_number() const noexcept {
    if (const group_type* g = current_pg_.load(std::memory_order_relaxed))
      return g->number();
    if (const group_type* g = next_pg_.load(std::memory_order_relaxed))
      return g->number();
    return nr_groups_ ? 1 : 0;
  }

  // ---------------------------------------------------------------- queue_if_no_path (§4.7, §4.8)

  void set_queue_if_no_path(bool enable, bool save_old) noexcept {
    {
      std::lock_guard guard(lock_);
      bool current = test(queue_if_no_path_flag), saved = test(saved_queue_if_no_path);
      if (save_old) {
        // "QIFNP disabled but saved as enabled, saving again loses state, not saving!"
        if (current || !saved) {
          if (current)
            set(saved_queue_if_no_path);
          else
            clear(saved_queue_if_no_path);
        }
      } else if (!enable && saved) {
        clear(saved_queue_if_no_path); // an explicit fail_if_no_path survives resume
      }
      if (enable)
        set(queue_if_no_path_flag);
      else
        clear(queue_if_no_path_flag);
    }
    if (!enable)
      process_queued_io(); // held I/O is re-evaluated, and fails if there is still no path
  }

  void enable_nopath_timeout_locked() noexcept {
    detail::assert_held(lock_, __func__);
    if (options_.queue_if_no_path_timeout_secs > 0 && nr_valid_paths_.load(std::memory_order_acquire) == 0 &&
        test(queue_if_no_path_flag)) {
      exec_.cancel(nopath_work_); // re-arming restarts the timer
      exec_.post(nopath_work_, std::uint64_t(options_.queue_if_no_path_timeout_secs) * 1000000000u);
      nopath_armed_ = true;
    }
  }

  void disable_nopath_timeout() noexcept {
    std::lock_guard guard(lock_);
    nopath_armed_ = false;
    exec_.cancel(nopath_work_);
  }

  static void run_nopath_timeout(work_item& w) noexcept {
    auto& self = *static_cast<multipath*>(w.context);
    {
      std::lock_guard guard(self.lock_);
      if (!self.nopath_armed_)
        return; // cancelled while it was starting
      self.nopath_armed_ = false;
    }
    // "queue_if_no_path timeout on <dev>, failing queued IO"
    self.set_queue_if_no_path(false, false);
  }

  static void run_worker(work_item& w) noexcept { static_cast<multipath*>(w.context)->process_queued_bios(); }

  // ---------------------------------------------------------------- events

  void raise_event_locked(path_event::kind kind, const path_type& p, std::uint32_t valid) noexcept {
    detail::assert_held(lock_, __func__);
    if (retired_.load(std::memory_order_relaxed))
      return; // its table is gone: its paths' events would only mislead (the kernel's is freed)
    // Never allocates: both buffers were reserved at construction. A burst larger than that
    // between two deliveries loses the newest events (counted); event_nr still counts them.
    if (pending_events_.size() < pending_events_.capacity())
      pending_events_.push_back(path_event{kind, p.device(), valid});
    else
      events_lost_.fetch_add(1, std::memory_order_relaxed);
    raise_table_event_locked();
  }

  void raise_table_event_locked() noexcept {
    detail::assert_held(lock_, __func__);
    event_nr_.fetch_add(1, std::memory_order_acq_rel);
    exec_.post(event_work_, 0);
  }

  static void run_events(work_item& w) noexcept { static_cast<multipath*>(w.context)->deliver_events(); }

  /// Runs on the executor, or in shutdown once the executor no longer can: never concurrently,
  /// so `delivering_events_` needs no lock of its own.
  void deliver_events() noexcept {
    {
      std::lock_guard guard(lock_);
      pending_events_.swap(delivering_events_); // both keep their reserved capacity
    }
    if constexpr (requires(path_event e) { backend_.on_event(e); })
      for (const auto& e : delivering_events_)
        backend_.on_event(e);
    delivering_events_.clear();
  }

  // ---------------------------------------------------------------- members
  //
  // Who writes what. "lock_" means: written only with lock_ held (asserted where the writer is a
  // *_locked function or set()/clear(), when MPATH_CHECK_LOCKS is on); the atomics among them are
  // read without it on the I/O path (§4.11).

  // Set by the constructor, never written afterwards.
  Backend& backend_;
  Exec& exec_;
  table_features features_;
  queue_mode mode_;
  handler_type handler_;
  std::string hw_handler_name_;
  std::unique_ptr<group_type[]> groups_;
  std::uint32_t nr_groups_ = 0;
  std::size_t total_paths_ = 0;
  std::unique_ptr<std::size_t[]> group_base_; ///< index of each group's first activation slot
  std::unique_ptr<activation_slot[]> activations_;

  engine_options options_;                               ///< lock_ (set_queue_if_no_path_timeout), read under it
  std::atomic<std::uint32_t> path_failure_threshold_{1}; ///< options_.path_failure_threshold, set any time
  std::atomic<bool> keep_last_path_{false};              ///< options_.keep_last_path, set any time
  std::atomic<bool> retired_{false};                     ///< lock_ (retire), read without it
  handoff handoff_;                                      ///< lock_ (retire); read after retired_ is seen

  // Atomics written under lock_, read without it.
  std::atomic<std::uint32_t> flags_{0};               ///< lock_, through set()/clear()
  std::atomic<path_type*> current_pgpath_{nullptr};   ///< lock_
  std::atomic<group_type*> current_pg_{nullptr};      ///< lock_
  std::atomic<group_type*> next_pg_{nullptr};         ///< lock_
  std::atomic<std::uint32_t> nr_valid_paths_{0};      ///< lock_ (reinstate_path, fail_path_locked)
  std::atomic<std::uint32_t> pg_init_in_progress_{0}; ///< lock_ (post of an activation, pg_init_done, shutdown)
  std::atomic<std::uint32_t> pg_init_count_{0};       ///< lock_ (switch_pg_locked, pg_init_all_paths_locked)
  std::atomic<std::uint64_t> event_nr_{0};            ///< lock_ (raise_table_event_locked)

  // Atomics written under message_mutex_ (presuspend, postsuspend, resume; resume holds lock_ too).
  std::atomic<suspend_state> suspend_state_{suspend_state::running};
  std::atomic<bool> noflush_{false};

  // Atomics written without any lock: counters whose readers need no more than the count.
  std::atomic<std::uint32_t> pg_init_completing_{0}; ///< threads inside pg_init_done (shutdown waits for 0)
  std::atomic<std::uint32_t> attached_{0};           ///< attached health monitors (the destructor checks 0)
  std::atomic<std::uint64_t> events_lost_{0};        ///< under lock_ in practice; relaxed, only reported

  // Plain state guarded by lock_.
  mutable detail::engine_lock_t<lock_type> lock_;
  detail::io_list queued_;                 ///< bio mode: held until a path is usable
  detail::io_list pushed_back_;            ///< held across a suspend, reissued at resume
  bool nopath_armed_ = false;              ///< the no-path timer is meant to fire
  std::vector<path_event> pending_events_; ///< raised, not yet delivered (capacity reserved)
  const group_type* last_probed_pg_ = nullptr;

  // Touched only by deliver_events, which never runs twice at once (executor, then shutdown).
  std::vector<path_event> delivering_events_;

  // Serialise messages/suspend (the kernel's work_mutex) and probes; cold paths only.
  std::mutex message_mutex_;
  std::mutex probe_mutex_;

  // Owned by the executor while posted (executor.hpp).
  work_item nopath_work_;
  work_item worker_work_;
  work_item event_work_;

  bool shut_down_ = false; ///< the destroying thread only
};

} // namespace mpath::inline v0
