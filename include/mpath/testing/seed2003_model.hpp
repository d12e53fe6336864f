#pragma once
// The reference model of a `create2003` device (product.md §9, §6): what mpathctl must print for
// seed 003's flat path list, restated from the specification alone, as model.hpp does for kernel
// tables. It shares no code with the engine, the load-balance-2003 selector or seed2003.hpp's front
// end: paths in one vector, priorities recomputed by scanning it, I/Os in one list in dispatch
// order, the reactivation timers as a due time per path.
//
// It models what a seed 003 table can do by itself: I/O, completions with `ok` or any error
// status but `resource` (whose delayed requeue it does not model), faults, the `fail_path` and
// `reinstate_path` messages, test reads after the reactivation timeout, events, and the seed's
// TABLE and INFO. Everything else (`suspend`, `resume`, `option`, other messages) is refused as
// not modelled (`modelled`), so a scenario that needs it fails the model test visibly.
//
// Event timing as mpathctl shows it: a path change is visible in INFO at once, its event is
// printed by `events` only after the next `run` or `sleep`, and the event's delivery is what makes
// every priority forget its weighted latencies (the changed path's priority forgets at once).

#include <mpath/health/path_checker.hpp>
#include <mpath/io.hpp>
#include <mpath/seed2003.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mpath::inline v0::testing {

class seed2003_model {
public:
  explicit seed2003_model(const seed2003::params& p) {
    for (const auto& pp : p.paths) {
      path x;
      x.device = pp.device;
      x.priority = pp.priority;
      x.flag = char(pp.load_balance);
      x.min_ios = pp.min_ios;
      x.left = pp.min_ios;
      x.failure_maximum = pp.failure_maximum;
      x.timeout_s = pp.reactivation_timeout;
      paths_.push_back(x);
    }
    // The first I/O's priority starts at its first path in table order.
    for (std::size_t i = 0; i < paths_.size(); ++i)
      if (!current_in_priority(paths_[i].priority))
        current_.push_back({paths_[i].priority, i});
  }

  struct stats_type {
    std::uint64_t submitted = 0, ok = 0, failed = 0, queued = 0, inflight = 0;
    struct line {
      std::string device;
      std::uint64_t dispatched = 0, in_flight = 0;
    };
    std::vector<line> paths; ///< the seed's table order
  };

  std::vector<std::string> devices() const {
    std::vector<std::string> out;
    for (const auto& p : paths_)
      out.push_back(p.device);
    return out;
  }

  /// Whether the model knows what a command does with these arguments.
  static bool modelled(std::string_view command, const std::vector<std::string>& message_words, blk_status status) {
    if (command == "suspend" || command == "resume" || command == "option")
      return false;
    if (command == "message")
      return message_words.size() == 2 &&
             (same_word(message_words[0], "fail_path") || same_word(message_words[0], "reinstate_path"));
    if (command == "complete")
      return status != blk_status::resource;
    return true;
  }

  // ------------------------------------------------------------------ commands

  void io(std::size_t count, std::uint64_t bytes) {
    for (std::size_t i = 0; i < count; ++i) {
      ios_.push_back({ios_.size() + 1, bytes});
      ++submitted_;
      submit(ios_.size() - 1);
    }
  }

  /// The oldest in-flight I/Os on `device` (any when empty), in dispatch order.
  void complete(std::string_view device, std::size_t count, blk_status status) {
    std::vector<std::size_t> taken;
    for (std::size_t i : flight_)
      if (taken.size() < count && (device.empty() || paths_[ios_[i].path].device == device))
        taken.push_back(i);
    for (std::size_t i : taken) {
      flight_.erase(std::find(flight_.begin(), flight_.end(), i));
      finish(i, status);
    }
  }

  void fault(std::string_view device, bool on) { path_named(device).fault = on; }
  void probe(std::string_view device, health::check_result r) { path_named(device).probe = r; }

  /// `message NAME fail_path|reinstate_path PATH`: "" or the engine's error text.
  std::string message(const std::vector<std::string>& words) {
    bool fail = same_word(words[0], "fail_path");
    auto it = std::find_if(paths_.begin(), paths_.end(), [&](const path& p) { return p.device == words[1]; });
    if (it == paths_.end())
      return "message: error getting device " + words[1];
    if (fail)
      fail_path(std::size_t(it - paths_.begin()));
    else
      reinstate(std::size_t(it - paths_.begin()));
    return {};
  }

  /// mpathctl's `run`: requeued I/O goes out again (once), then the events are delivered.
  void run() {
    std::vector<std::size_t> again;
    again.swap(requeued_);
    for (std::size_t i : again)
      submit(i);
    deliver_events();
  }

  /// mpathctl's `sleep`: a `run` at each point where deferred work is due on the way, which is
  /// now if an event is waiting for delivery (delivered first, then the requeued I/O goes out), and
  /// each time a reactivation is due (the tests due then go out, in the order they were armed);
  /// then a last `run` at the end.
  void sleep(std::uint64_t ms) {
    const std::uint64_t target = now_ + ms * 1'000'000;
    for (;;) {
      std::uint64_t next = target;
      if (!pending_.empty())
        next = now_;
      else
        for (const auto& p : paths_)
          if (p.test_due && *p.test_due < next)
            next = *p.test_due;
      deliver_events();
      now_ = next;
      for (std::size_t i : due_tests(now_))
        test_read(i);
      deliver_events();
      run();
      if (next >= target)
        return;
    }
  }

  std::vector<std::string> take_events() { return std::exchange(delivered_, {}); }

  std::string table_status() const {
    std::string out;
    for (const auto& p : paths_)
      out += p.device + " " + std::to_string(p.priority) + " " + p.flag + " " + std::to_string(p.min_ios) + " " +
             std::to_string(p.failure_maximum) + " " + std::to_string(p.timeout_s) + " ";
    return out;
  }

  std::string info() const {
    std::string out;
    for (const auto& p : paths_) {
      out += p.device + " ";
      if (p.active)
        out += "O";
      else
        out += "I(" + std::to_string((now_ - p.failed_at) / 1'000'000'000u) + "/" + std::to_string(p.timeout_s) + ")";
      if (p.failures)
        out += "[" + std::to_string(p.failures) + "]";
      out += " ";
    }
    return out;
  }

  stats_type stats() const {
    stats_type s{submitted_, ok_, failed_, requeued_.size(), flight_.size(), {}};
    for (std::size_t p = 0; p < paths_.size(); ++p) {
      std::uint64_t n = 0;
      for (std::size_t i : flight_)
        n += ios_[i].path == p ? 1 : 0;
      s.paths.push_back({paths_[p].device, paths_[p].dispatched, n});
    }
    return s;
  }

private:
  struct path {
    std::string device;
    std::uint32_t priority = 0;
    char flag = 'N';
    std::uint32_t min_ios = 1, left = 1, failure_maximum = 1, timeout_s = 0;
    bool active = true;
    std::uint32_t failures = 0;  ///< times failed
    std::uint32_t errors = 0;    ///< path errors in a row
    std::uint64_t latency = 0;   ///< Σ t⁴, t in ms
    std::uint64_t failed_at = 0; ///< the failure, or the last test read
    std::optional<std::uint64_t> test_due;
    std::uint64_t armed = 0; ///< when the test was armed (ties: first armed, first due)
    bool fault = false;
    health::check_result probe = health::check_result::up;
    std::uint64_t dispatched = 0;
  };
  struct io_record {
    std::uint64_t id;
    std::uint64_t bytes;
    std::size_t path = 0;
    std::uint64_t start = 0;
  };
  struct current_path {
    std::uint32_t priority;
    std::size_t path;
  };

  static bool same_word(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
      return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if ((a[i] >= 'A' && a[i] <= 'Z' ? char(a[i] + 32) : a[i]) != b[i])
        return false;
    return true;
  }

  path& path_named(std::string_view device) {
    return *std::find_if(paths_.begin(), paths_.end(), [&](const path& p) { return p.device == device; });
  }
  std::size_t* current_in_priority(std::uint32_t priority) {
    for (auto& c : current_)
      if (c.priority == priority)
        return &c.path;
    return nullptr;
  }

  /// The paths of a priority, in table order, after `from`, wrapping round to `from` itself.
  std::vector<std::size_t> after(std::size_t from) const {
    std::vector<std::size_t> out;
    for (std::size_t k = 1; k <= paths_.size(); ++k) {
      std::size_t p = (from + k) % paths_.size();
      if (paths_[p].priority == paths_[from].priority)
        out.push_back(p);
    }
    return out;
  }

  bool usable_in(std::uint32_t priority) const {
    return std::any_of(paths_.begin(), paths_.end(), [&](const path& p) { return p.active && p.priority == priority; });
  }

  /// §9: the priority in use while it has a usable path, else the highest that has one; inside it
  /// N stays, L moves every min-ios I/Os, M only to a path of no higher latency.
  std::optional<std::size_t> choose() {
    if (!using_ || !usable_in(*using_)) {
      using_.reset();
      for (const auto& p : paths_)
        if (p.active && (!using_ || p.priority > *using_))
          using_ = p.priority;
      if (!using_)
        return std::nullopt;
    }
    std::size_t& cur = *current_in_priority(*using_);
    if (!paths_[cur].active) {
      for (std::size_t p : after(cur))
        if (paths_[p].active) {
          cur = p;
          break;
        }
      return cur;
    }
    path& c = paths_[cur];
    if (c.flag == 'N' || --c.left > 0)
      return cur;
    c.left = c.min_ios;
    for (std::size_t p : after(cur)) {
      if (p == cur)
        break;
      if (paths_[p].active && (c.flag != 'M' || paths_[p].latency <= c.latency)) {
        cur = p;
        break;
      }
    }
    return cur;
  }

  void submit(std::size_t i) {
    auto p = choose();
    if (!p) { // no path and no queueing: the I/O fails
      ++failed_;
      return;
    }
    ios_[i].path = *p;
    ios_[i].start = now_;
    ++paths_[*p].dispatched;
    if (paths_[*p].fault)
      finish(i, blk_status::transport);
    else
      flight_.push_back(i);
  }

  void finish(std::size_t i, blk_status status) {
    path& p = paths_[ios_[i].path];
    if (p.flag == 'M') {
      std::uint64_t t = (now_ - ios_[i].start) / 1'000'000;
      std::uint64_t w = t > 0xffff ? ~std::uint64_t{0} : t * t * t * t;
      p.latency = p.latency > ~std::uint64_t{0} - w ? ~std::uint64_t{0} : p.latency + w;
    }
    if (status == blk_status::ok) {
      p.errors = 0;
      ++ok_;
      return;
    }
    if (!is_path_error(status)) {
      ++failed_;
      return;
    }
    if (p.active && ++p.errors >= p.failure_maximum)
      fail_path(ios_[i].path);
    if (std::none_of(paths_.begin(), paths_.end(), [](const path& x) { return x.active; }))
      ++failed_; // nothing to retry on: it fails with its error
    else
      requeued_.push_back(i);
  }

  std::uint32_t nr_usable() const {
    return std::uint32_t(std::count_if(paths_.begin(), paths_.end(), [](const path& x) { return x.active; }));
  }

  void fail_path(std::size_t i) {
    path& p = paths_[i];
    if (!p.active)
      return;
    p.active = false;
    p.errors = 0;
    ++p.failures;
    p.failed_at = now_;
    p.test_due.reset();
    if (p.timeout_s)
      arm(p);
    pending_.push_back({"PATH_FAILED " + p.device + " " + std::to_string(nr_usable()), false});
  }

  void reinstate(std::size_t i) {
    path& p = paths_[i];
    if (p.active)
      return;
    p.active = true;
    p.test_due.reset();
    for (auto& x : paths_)
      if (x.priority == p.priority)
        x.latency = 0;
    pending_.push_back({"PATH_REINSTATED " + p.device + " " + std::to_string(nr_usable()), true});
  }

  void arm(path& p) {
    p.test_due = now_ + std::uint64_t(p.timeout_s) * 1'000'000'000u;
    p.armed = ++arming_;
  }

  std::vector<std::size_t> due_tests(std::uint64_t at) const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < paths_.size(); ++i)
      if (paths_[i].test_due && *paths_[i].test_due == at)
        out.push_back(i);
    std::sort(out.begin(), out.end(), [&](auto a, auto b) { return paths_[a].armed < paths_[b].armed; });
    return out;
  }

  /// A test read: the failure clock restarts, the next test is armed, and a usable answer
  /// reinstates the path.
  void test_read(std::size_t i) {
    path& p = paths_[i];
    p.failed_at = now_;
    arm(p);
    if (health::is_usable(p.probe))
      reinstate(i);
  }

  void deliver_events() {
    for (auto& e : pending_) {
      if (e.reinstated)
        for (auto& p : paths_)
          p.latency = 0;
      delivered_.push_back(e.text);
    }
    pending_.clear();
  }

  struct event {
    std::string text;
    bool reinstated;
  };

  std::vector<path> paths_;
  std::vector<current_path> current_;  ///< per priority: the path its I/O goes to
  std::optional<std::uint32_t> using_; ///< the priority in use
  std::vector<io_record> ios_;
  std::vector<std::size_t> flight_;   ///< in dispatch order
  std::vector<std::size_t> requeued_; ///< resubmitted at the next run
  std::vector<event> pending_;
  std::vector<std::string> delivered_;
  std::uint64_t now_ = 0, arming_ = 0;
  std::uint64_t submitted_ = 0, ok_ = 0, failed_ = 0;
};

} // namespace mpath::inline v0::testing
