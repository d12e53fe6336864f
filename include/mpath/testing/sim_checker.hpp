#pragma once
// A scripted path checker and prioritizer for simulation: what mpathctl's `probe NAME PATH
// RESULT` and `prio NAME PATH N` set (product.md §6). Both answer inline, so a tick's checks and
// priorities are decided within the tick, deterministically. Plus the glue that forwards a
// simulated backend's path events to a monitor (product.md §8.3).

#include <mpath/health/path_checker.hpp>
#include <mpath/health/prioritizer.hpp>
#include <mpath/io_backend.hpp>
#include <mpath/path.hpp>
#include <mpath/testing/sim.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mpath::inline v0::testing {

/// Answers each check with the path's current result (default `up`). `hold(path)` makes checks
/// of that path go unanswered until `release(path, result)`, to play a hung checker (§8.2's
/// checker_timeout). Thread safety: every member from any thread.
class sim_checker {
public:
  void set_result(std::string_view path, health::check_result r) {
    std::lock_guard guard(mutex_);
    paths_[std::string(path)].result = r;
  }
  health::check_result result(std::string_view path) const {
    std::lock_guard guard(mutex_);
    auto it = paths_.find(std::string(path));
    return it == paths_.end() ? health::check_result::up : it->second.result;
  }
  /// Checks started on `path` so far.
  std::uint64_t checks(std::string_view path) const {
    std::lock_guard guard(mutex_);
    auto it = paths_.find(std::string(path));
    return it == paths_.end() ? 0 : it->second.checks;
  }

  void hold(std::string_view path) {
    std::lock_guard guard(mutex_);
    paths_[std::string(path)].held = true;
  }
  /// Stops holding `path` and answers every check of it still unanswered with `r`.
  void release(std::string_view path, health::check_result r) {
    std::vector<health::check_done> waiting;
    {
      std::lock_guard guard(mutex_);
      auto& p = paths_[std::string(path)];
      p.held = false;
      waiting.swap(p.waiting);
    }
    for (auto& d : waiting)
      d(r);
  }

  template <Path P> void check(P& p, health::check_done done) noexcept {
    health::check_result r;
    {
      std::lock_guard guard(mutex_);
      auto& s = paths_[std::string(p.device())];
      ++s.checks;
      if (s.held) {
        s.waiting.push_back(done);
        return;
      }
      r = s.result;
    }
    done(r);
  }

private:
  struct path_script {
    health::check_result result = health::check_result::up;
    std::uint64_t checks = 0;
    bool held = false;
    std::vector<health::check_done> waiting;
  };
  mutable std::mutex mutex_;
  std::map<std::string, path_script, std::less<>> paths_;
};

/// Answers each priority request with the path's current priority (default 1, as `prio const`).
class sim_prioritizer {
public:
  void set_priority(std::string_view path, int prio) {
    std::lock_guard guard(mutex_);
    prio_[std::string(path)] = prio;
  }
  int priority(std::string_view path) const {
    std::lock_guard guard(mutex_);
    auto it = prio_.find(path);
    return it == prio_.end() ? 1 : it->second;
  }
  template <Path P> void get_priority(P& p, health::prio_done done) noexcept { done(priority(p.device())); }

private:
  mutable std::mutex mutex_;
  std::map<std::string, int, std::less<>> prio_;
};

/// Forwards `backend`'s path events to `monitor.on_path_event` while it lives. Declare it after
/// the monitor, so it goes first.
template <class Monitor> class forward_events {
public:
  forward_events(sim_backend& backend, Monitor& monitor) noexcept : backend_(backend) {
    backend_.set_event_listener({&Monitor::forward_event, &monitor});
  }
  forward_events(const forward_events&) = delete;
  forward_events& operator=(const forward_events&) = delete;
  ~forward_events() { backend_.set_event_listener({}); }

private:
  sim_backend& backend_;
};

} // namespace mpath::inline v0::testing
