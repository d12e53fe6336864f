#pragma once
// The simulation: a backend whose I/Os stay in flight until the test completes them, with per-path
// fault injection, probe results and latency, and `sim_device`, which plays DM core around an
// engine (requeue lists, a virtual clock, statistics). Deterministic; mpathctl is built on it.

#include <mpath/mapped_device.hpp>
#include <mpath/multipath.hpp>
#include <mpath/requeue_list.hpp>
#include <mpath/testing/manual_executor.hpp>
#include <mpath/testing/scripted_handler.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mpath::inline v0::testing {

/// One simulated I/O. Ids count from 1 per device.
struct sim_io : io_context {
  std::uint64_t id = 0;
  std::uint32_t dispatches = 0;  ///< how often it was sent to a path
  std::uint32_t completions = 0; ///< how often the engine finished it (must end at exactly 1)
  blk_status final_status = blk_status::ok;
  std::string last_device;  ///< the last path it was sent to
  std::uint64_t due_ns = 0; ///< with path latency: when it completes by itself
};

/// Thread safety: every member may be called from any thread (one mutex).
class sim_backend {
public:
  using handle_type = std::uint32_t;
  using io_type = sim_io;

  struct path_state {
    std::string device;
    bool fault = false;
    std::uint64_t latency_ns = 0;
    blk_status probe_result = blk_status::ok;
    std::uint64_t dispatched = 0;
    std::uint64_t in_flight = 0;
    std::uint64_t probes = 0;
  };
  struct completion {
    sim_io* io;
    blk_status status;
  };

  result<handle_type> open_path(std::string_view device) {
    std::lock_guard guard(mutex_);
    paths_.push_back(path_state{std::string(device)});
    return handle_type(paths_.size() - 1);
  }

  void submit(handle_type h, sim_io& io) noexcept {
    std::lock_guard guard(mutex_);
    auto& p = paths_[h];
    ++p.dispatched;
    ++io.dispatches;
    io.last_device = p.device;
    if (p.fault) { // completes "at once"; the device reports it right after the current call
      immediate_.push_back({&io, blk_status::transport});
      return;
    }
    ++p.in_flight;
    io.due_ns = p.latency_ns ? now_ + p.latency_ns : 0;
    in_flight_.push_back({&io, h});
  }

  void io_done(sim_io& io, blk_status status) noexcept {
    std::lock_guard guard(mutex_);
    ++io.completions;
    io.final_status = status;
    if (status == blk_status::ok)
      ++ok_;
    else
      ++failed_;
    done_.push_back(&io);
  }

  blk_status probe(handle_type h) noexcept {
    std::lock_guard guard(mutex_);
    ++paths_[h].probes;
    return paths_[h].probe_result;
  }

  void kick_requeue() noexcept {
    std::lock_guard guard(mutex_);
    kicked_ = true;
  }

  void on_event(const path_event& e) noexcept {
    event_listener listener;
    {
      std::lock_guard guard(mutex_);
      std::string line = e.type == path_event::kind::path_failed ? "PATH_FAILED " : "PATH_REINSTATED ";
      events_.push_back(line + std::string(e.device) + " " + std::to_string(e.nr_valid_paths));
      listener = listener_;
    }
    // Outside the mutex: the listener (a health monitor) may call back into the engine, which
    // submits to this backend.
    if (listener.fn)
      listener.fn(listener.context, e);
  }

  /// Also hands every path event to `fn(context, e)` (a health monitor's on_path_event, which
  /// product.md §8.3 needs); `fn == nullptr` removes it. Clear it before `context` dies.
  struct event_listener {
    void (*fn)(void* context, const path_event&) noexcept = nullptr;
    void* context = nullptr;
  };
  void set_event_listener(event_listener listener) noexcept {
    std::lock_guard guard(mutex_);
    listener_ = listener;
  }

  // ---- test controls

  /// Takes the oldest in-flight I/Os on `device` (or on any path when empty), up to `count`.
  std::vector<sim_io*> take_in_flight(std::string_view device, std::size_t count) {
    std::lock_guard guard(mutex_);
    std::vector<sim_io*> out;
    for (auto it = in_flight_.begin(); it != in_flight_.end() && out.size() < count;) {
      if (device.empty() || paths_[it->path].device == device) {
        --paths_[it->path].in_flight;
        out.push_back(it->io);
        it = in_flight_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

  /// In-flight I/Os whose path latency has elapsed at `now`.
  std::vector<sim_io*> take_due(std::uint64_t now) {
    std::lock_guard guard(mutex_);
    now_ = now;
    std::vector<sim_io*> out;
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      if (it->io->due_ns != 0 && it->io->due_ns <= now) {
        --paths_[it->path].in_flight;
        out.push_back(it->io);
        it = in_flight_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

  std::vector<completion> take_immediate() {
    std::lock_guard guard(mutex_);
    std::vector<completion> out(immediate_.begin(), immediate_.end());
    immediate_.clear();
    return out;
  }

  bool take_kick() {
    std::lock_guard guard(mutex_);
    return std::exchange(kicked_, false);
  }

  std::vector<std::string> take_events() {
    std::lock_guard guard(mutex_);
    return std::exchange(events_, {});
  }

  /// Marks every path's state; `device` must be a path of the table.
  bool set_fault(std::string_view device, bool on) {
    return each(device, [&](path_state& p) { p.fault = on; });
  }
  bool set_latency(std::string_view device, std::uint64_t ns) {
    return each(device, [&](path_state& p) { p.latency_ns = ns; });
  }
  bool set_probe_result(std::string_view device, blk_status s) {
    return each(device, [&](path_state& p) { p.probe_result = s; });
  }
  void set_now(std::uint64_t now) {
    std::lock_guard guard(mutex_);
    now_ = now;
  }

  std::vector<path_state> paths() const {
    std::lock_guard guard(mutex_);
    return paths_;
  }
  std::uint64_t ok_count() const {
    std::lock_guard guard(mutex_);
    return ok_;
  }
  std::uint64_t failed_count() const {
    std::lock_guard guard(mutex_);
    return failed_;
  }
  std::size_t in_flight_count() const {
    std::lock_guard guard(mutex_);
    return in_flight_.size() + immediate_.size();
  }

private:
  template <class F> bool each(std::string_view device, F f) {
    std::lock_guard guard(mutex_);
    bool found = false;
    for (auto& p : paths_)
      if (p.device == device) {
        f(p);
        found = true;
      }
    return found;
  }

  struct flight {
    sim_io* io;
    handle_type path;
  };

  mutable std::mutex mutex_;
  std::vector<path_state> paths_;
  std::deque<flight> in_flight_;
  std::vector<completion> immediate_;
  std::vector<sim_io*> done_;
  std::vector<std::string> events_;
  event_listener listener_;
  std::uint64_t ok_ = 0, failed_ = 0, now_ = 0;
  bool kicked_ = false;
};

static_assert(IoBackend<sim_backend>);

/// Engine traits for simulation: every selector, the scripted handler under any name.
struct sim_traits : default_traits {
  using hw_handlers = hw_handler_set<scripted_handler>;
};

/// An engine with the simulation around it, playing DM core: it owns the I/Os, keeps the
/// request-mode requeue list (an I/O answered `requeue` is resubmitted at the next `run`; one
/// answered `delay_requeue` after 100 ms of virtual time or when the engine kicks), and feeds
/// fault and latency completions back. Single-threaded.
template <class Traits = sim_traits> class sim_device {
public:
  using engine_type = multipath<sim_backend, manual_executor, Traits>;
  using device_type = mapped_device<sim_backend, manual_executor, Traits>;
  static constexpr std::uint64_t delay_requeue_ns = requeue_list<sim_io>::default_delay_ns;

  static result<std::unique_ptr<sim_device>> create(std::string_view table_text, engine_options options = {}) {
    std::unique_ptr<sim_device> d(new sim_device());
    auto made = device_type::create(d->backend_, d->exec_, table_text, options);
    if (!made)
      return std::move(made).err();
    d->device_ = std::move(*made);
    return d;
  }

  ~sim_device() {
    channel_.reset();
    if (device_)
      device_->shutdown([this] { exec_.run(); });
  }

  /// The live table's engine.
  engine_type& engine() noexcept { return device_->engine(); }
  const engine_type& engine() const noexcept { return device_->engine(); }
  device_type& device() noexcept { return *device_; }

  /// From now on every I/O is submitted through one channel (`mapped_device::channel`, following
  /// reloads), as one submitting thread of a product would: the model must not see a difference.
  void use_channel() {
    if (!channel_)
      channel_ = std::make_unique<typename device_type::channel>(*device_);
  }
  sim_backend& backend() noexcept { return backend_; }
  manual_executor& executor() noexcept { return exec_; }
  scripted_handler* handler() noexcept { return engine().hw_handler().template get_if<scripted_handler>(); }

  /// The live table's paths as the backend counts them, in table order (`stats`): a reload opens
  /// its paths anew, so they count from 0.
  std::vector<sim_backend::path_state> live_paths() {
    auto all = backend_.paths();
    std::vector<sim_backend::path_state> out;
    for (auto& g : engine().groups())
      for (auto& p : g.paths())
        out.push_back(all[p.handle()]);
    return out;
  }

  /// `reload NAME PARAMS...` (product.md §6): load, noflush suspend, swap, resume, as multipathd
  /// does; nothing changes when the table is bad.
  result<void> reload(std::string_view table_text) {
    auto t = device_->load(table_text);
    if (!t)
      return std::move(t).err();
    const bool was_suspended = engine().suspended();
    if (!was_suspended)
      suspend(/*noflush=*/true);
    device_->swap(std::move(*t), [this] { drive_activations(); });
    if (!was_suspended)
      resume();
    return {};
  }

  /// Submits `count` I/Os of `bytes` in order; returns the first id.
  std::uint64_t io(std::size_t count, std::uint64_t bytes = 4096) {
    std::uint64_t first = ios_.size() + 1;
    for (std::size_t i = 0; i < count; ++i) {
      auto& io = ios_.emplace_back();
      io.id = ios_.size();
      io.nr_bytes = bytes;
      ++submitted_;
      submit(io);
      settle();
    }
    return first;
  }

  /// Completes the oldest in-flight I/Os on `device` (any path when empty) with `status`.
  std::size_t complete(std::string_view device, std::size_t count, blk_status status) {
    auto ios = backend_.take_in_flight(device, count);
    for (sim_io* io : ios) {
      after_complete(*io, device_->complete(*io, status));
      settle();
    }
    return ios.size();
  }

  /// Runs deferred work, resubmits requeued I/O, until nothing moves.
  void run() {
    resubmit(/*include_immediate=*/true);
    for (bool progress = true; progress;) {
      progress = exec_.run() > 0;
      progress |= settle();
      if (backend_.take_kick())
        progress |= resubmit(/*include_immediate=*/false, /*kicked=*/true);
    }
  }

  /// Advances the virtual clock by `ms`, firing timers, delayed requeues and latency completions.
  void sleep(std::uint64_t ms) {
    std::uint64_t target = exec_.now_ns() + ms * 1'000'000;
    for (;;) {
      std::uint64_t next = target;
      std::uint64_t due = 0;
      if (exec_.next_due(due) && due < next)
        next = due;
      if (std::uint64_t requeue_due = 0; !engine().suspended() && requeued_.next_due(requeue_due) &&
                                         requeue_due < next) // a suspended device reissues nothing until resume
        next = requeue_due;
      next = std::max(next, exec_.now_ns());
      exec_.advance(next - exec_.now_ns());
      backend_.set_now(next);
      for (sim_io* io : backend_.take_due(next))
        after_complete(*io, device_->complete(*io, blk_status::ok));
      run();
      if (next >= target)
        break;
    }
  }

  /// Calls the engine's suspend with kernel semantics; held I/O keeps waiting for resume.
  /// postsuspend waits for outstanding activations (kernel-target.md §4.5) as the kernel does,
  /// including a delayed retry: virtual time moves on to the next timer while nothing else is due.
  void suspend(bool noflush) {
    engine().presuspend(noflush);
    run(); // a flushing suspend lets requeued I/O fail now that queueing is off
    engine().postsuspend([this] { drive_activations(); });
  }
  void resume() {
    engine().resume();
    run();
  }

  std::vector<std::string> take_events() { return backend_.take_events(); }

  struct counters {
    std::uint64_t submitted, ok, failed, queued, inflight;
  };
  counters stats() const {
    return {submitted_, backend_.ok_count(), backend_.failed_count(), engine().queued() + requeued_.size(),
            backend_.in_flight_count()};
  }
  const std::deque<sim_io>& ios() const noexcept { return ios_; }

private:
  sim_device() = default;

  void submit(sim_io& io) { after_submit(io, channel_ ? device_->submit(io, *channel_) : device_->submit(io)); }

  /// postsuspend's wait: runs deferred work, and moves virtual time on to the next timer while
  /// nothing else is due (a delayed activation retry).
  void drive_activations() {
    if (exec_.run() > 0)
      return;
    std::uint64_t due = 0;
    if (exec_.next_due(due) && due > exec_.now_ns()) {
      exec_.advance(due - exec_.now_ns());
      backend_.set_now(exec_.now_ns());
    }
  }

  void after_submit(sim_io& io, disposition d) { hold_if_requeued(io, d); }
  void after_complete(sim_io& io, disposition d) { hold_if_requeued(io, d); }

  void hold_if_requeued(sim_io& io, disposition d) { requeued_.hold(io, d, exec_.now_ns()); }

  /// Feeds fault completions back; returns whether any happened.
  bool settle() {
    bool any = false;
    for (;;) {
      auto batch = backend_.take_immediate();
      if (batch.empty())
        return any;
      any = true;
      for (auto& c : batch)
        after_complete(*c.io, device_->complete(*c.io, c.status));
    }
  }

  bool resubmit(bool include_immediate, bool kicked = false) {
    if (engine().suspended())
      return false;
    if (kicked)
      requeued_.kick();
    auto due = requeued_.take_due(exec_.now_ns(), include_immediate);
    bool any = !due.empty();
    while (sim_io* io = due.pop_front()) {
      submit(*io);
      settle();
    }
    return any;
  }

  manual_executor exec_;
  sim_backend backend_;
  std::unique_ptr<device_type> device_;
  std::unique_ptr<typename device_type::channel> channel_; // before the device goes
  std::deque<sim_io> ios_;
  requeue_list<sim_io, null_lock> requeued_; ///< DM core's requeue list (single-threaded)
  std::uint64_t submitted_ = 0;
};

} // namespace mpath::inline v0::testing
