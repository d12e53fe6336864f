#pragma once
// multipathd's `directio` checker (multipathd.md b.1) over the backend's `probe(handle)`: one
// block read through the path; a path error means `down`, anything else `up`.
//
// The backend's probe is synchronous and may block for as long as the transport takes to time
// out, so the checker never runs it on the caller's thread (the caller is the monitor's tick,
// which must not stall, §8.1). Each check is a work item posted on the executor the checker was
// given, and answered from there:
//
// - In a deployment, give it an executor of its own, e.g. a `mpath::thread_executor` used only
//   for probes: probes then run on that thread, off the tick and off the engine's deferred work.
//   One thread probes one path at a time; a hung probe delays the others, which the monitor then
//   counts as `timeout` after checker_timeout. Use one executor per path (or a pool executor)
//   when paths must not wait for each other.
// - In a simulation, give it the simulation's `manual_executor`: the probe runs as ordinary
//   deferred work right after the tick that started it, deterministically, and the monitor sees
//   its answer at the next tick (as multipathd sees an async check that was still `pending`).
//
// A path whose previous probe is still running when it is checked again is answered `timeout`
// at once, as multipathd's checkers do while their previous check thread is still stuck.

#include <mpath/executor.hpp>
#include <mpath/health/path_checker.hpp>
#include <mpath/io.hpp>
#include <mpath/io_backend.hpp>
#include <mpath/path.hpp>

#include <concepts>
#include <memory>
#include <mutex>
#include <vector>

namespace mpath::inline v0::health {

/// Thread safety: `check` from any thread; probes run on `exec`. Destroy it after every monitor
/// using it has stopped (they wait for its answers) and while `backend` and `exec` still live.
template <IoBackend Backend, Executor Exec> class probe_checker {
public:
  using handle_type = typename Backend::handle_type;

  probe_checker(Backend& backend, Exec& exec) noexcept : backend_(backend), exec_(exec) {}
  probe_checker(const probe_checker&) = delete;
  probe_checker& operator=(const probe_checker&) = delete;

  /// Waits for a probe that is running; one that has not started yet is answered `timeout`.
  ~probe_checker() {
    for (auto& s : slots_)
      if (exec_.cancel_sync(s->work)) {
        check_done done = s->done;
        s->busy = false;
        done(check_result::timeout);
      }
  }

  /// The first check of a path allocates its work item; later checks of it allocate nothing.
  template <Path P>
  requires std::same_as<typename P::handle_type, handle_type>
  void check(P& p, check_done done) noexcept {
    slot* s = nullptr;
    {
      std::lock_guard guard(mutex_);
      for (auto& x : slots_)
        if (x->handle == &p.handle())
          s = x.get();
      if (!s) {
        slots_.push_back(std::make_unique<slot>(this, &p.handle()));
        s = slots_.back().get();
      }
      if (!s->busy) {
        s->busy = true;
        s->done = done;
        ++probes_;
      } else {
        s = nullptr;
      }
    }
    if (!s) {
      done(check_result::timeout);
      return;
    }
    exec_.post(s->work, 0);
  }

  /// Probes started so far (tests).
  std::uint64_t probes() const {
    std::lock_guard guard(mutex_);
    return probes_;
  }

private:
  struct slot {
    slot(probe_checker* o, handle_type* h) noexcept : owner(o), handle(h) {
      work.fn = &probe_checker::run;
      work.context = this;
    }
    probe_checker* owner;
    handle_type* handle;
    work_item work;
    check_done done{nullptr, nullptr, 0};
    bool busy = false;
  };

  static void run(work_item& w) noexcept {
    slot& s = *static_cast<slot*>(w.context);
    blk_status st = s.owner->backend_.probe(*s.handle);
    check_done done{nullptr, nullptr, 0};
    {
      std::lock_guard guard(s.owner->mutex_);
      done = s.done;
      s.busy = false;
    }
    // Last: the monitor may be gone as soon as it has this answer, and the path with it.
    done(is_path_error(st) ? check_result::down : check_result::up);
  }

  Backend& backend_;
  Exec& exec_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<slot>> slots_;
  std::uint64_t probes_ = 0;
};

} // namespace mpath::inline v0::health
