#pragma once
// multipathd's `path_latency` prioritizer (multipathd.md b.6, multipath-tools
// libmultipath/prioritizers/path_latency.c): `io_num` reads through the path, each timed; the
// priority is how many steps of a logarithmic scale (ratio `base_num`) the reads' geometric mean
// latency lies below 100 s, so a path ten times faster gets log_base_num(10) more priority.
//
// The reads are the backend's `probe(handle)` (one block read, io_backend.hpp), timed on a Clock.
// A probe may block, so, as with probe_checker.hpp, a measurement never runs on the caller's
// thread: each is a work item on the executor the prioritizer was given, which runs the io_num
// probes one after the other and answers from there. Give it an executor of its own in a
// deployment (a measurement takes io_num probe latencies); in a test, a manual executor and a
// clock the fake probe advances make it deterministic.
//
//   auto args = mpath::health::parse_path_latency_args("io_num=20 base_num=10");  // multipath.conf's prio_args
//   mpath::thread_executor probes;
//   mpath::health::path_latency_prioritizer<Backend, mpath::thread_executor> prio(backend, probes, *args);

#include <mpath/error.hpp>
#include <mpath/executor.hpp>
#include <mpath/health/prioritizer.hpp>
#include <mpath/io.hpp>
#include <mpath/path.hpp>

#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace mpath::inline v0::health {

/// `prio_args` of `prio path_latency`, with multipathd's defaults and bounds.
struct path_latency_args {
  static constexpr int min_io_num = 20;
  static constexpr int max_io_num = 200;
  static constexpr double min_base_num = 1.1;
  static constexpr double max_base_num = 10;

  int io_num = 100;
  /// 10^(1/4): four priority steps per factor of ten in latency (multipathd's default).
  double base_num = 1.77827941004;

  friend bool operator==(const path_latency_args&, const path_latency_args&) = default;
};

/// multipathd's range check, with its log line as the error text.
inline result<void> check_path_latency_args(const path_latency_args& a) {
  if (a.io_num < path_latency_args::min_io_num || a.io_num > path_latency_args::max_io_num)
    return einval("path_latency prio: args io_num is outside the valid range [20, 200]");
  // Written so that a NaN fails too.
  if (!(a.base_num >= path_latency_args::min_base_num && a.base_num <= path_latency_args::max_base_num))
    return einval("path_latency prio: args base_num is outside the valid range [1.1, 10]");
  return {};
}

/// Parses multipath.conf's `prio_args` for path_latency: `"io_num=N base_num=X"`, in either order,
/// separated by blanks; an empty string gives the defaults. multipathd falls back to the defaults
/// (and logs) for anything it cannot use and ignores words after the first two; here such
/// arguments are an error instead, so that a typo is seen rather than silently measured with
/// io_num=100.
inline result<path_latency_args> parse_path_latency_args(std::string_view text) {
  path_latency_args out;
  bool have_io = false, have_base = false, any = false;
  const auto usage = [](std::string_view why) {
    return einval("path_latency prio: fails to get path_latency args: " + std::string(why) +
                  " (expected \"io_num=N base_num=X\")");
  };
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ' || text[i] == '\t') {
      ++i;
      continue;
    }
    std::size_t end = text.find_first_of(" \t", i);
    if (end == std::string_view::npos)
      end = text.size();
    std::string_view word = text.substr(i, end - i);
    i = end;
    any = true;
    constexpr std::string_view io_key = "io_num=", base_key = "base_num=";
    if ((word.starts_with(io_key) && have_io) || (word.starts_with(base_key) && have_base))
      return usage("\"" + std::string(word.substr(0, word.find('='))) + "\" given twice");
    if (word.starts_with(io_key)) {
      std::string_view v = word.substr(io_key.size());
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out.io_num);
      if (v.empty() || ptr != v.data() + v.size() || (ec != std::errc{} && ec != std::errc::result_out_of_range))
        return usage("bad io_num \"" + std::string(v) + "\"");
      if (ec == std::errc::result_out_of_range)
        out.io_num = -1; // caught by the range check below
      have_io = true;
    } else if (word.starts_with(base_key)) {
      std::string_view v = word.substr(base_key.size());
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out.base_num);
      if (v.empty() || ptr != v.data() + v.size() || (ec != std::errc{} && ec != std::errc::result_out_of_range))
        return usage("bad base_num \"" + std::string(v) + "\"");
      if (ec == std::errc::result_out_of_range)
        out.base_num = 0;
      have_base = true;
    } else {
      return usage("unexpected \"" + std::string(word) + "\"");
    }
  }
  if (!any)
    return path_latency_args{};
  if (!have_io || !have_base)
    return usage(have_io ? "base_num missing" : "io_num missing");
  if (auto r = check_path_latency_args(out); !r)
    return std::move(r).err();
  return out;
}

/// What one measurement says.
struct path_latency_estimate {
  /// Steps of base_num between the geometric mean latency and 100 s, truncated; 0 at or above
  /// 100 s, and at most the steps between 1 µs and 100 s.
  int priority = 0;
  /// The mean and the standard deviation of log_base_num(latency in µs) over the io_num reads.
  double log_average = 0;
  double log_deviation = 0;
  /// The same as factors, as multipathd logs them: the geometric mean latency in µs and its
  /// "uncertainty" base_num^log_deviation. The deviation never changes the priority (it did only
  /// decide log warnings in multipath-tools before 0.7.5, none since).
  double average_us = 0;
  double uncertainty = 1;
};

/// The arithmetic of one measurement, fed one read latency at a time; no allocation.
class path_latency_accumulator {
public:
  explicit path_latency_accumulator(double base_num) noexcept : lg_base_(std::log(base_num)) {}

  /// One read's latency. multipathd counts whole microseconds (it truncates the nanoseconds) and
  /// lets a read under 1 µs count in the average as log(1) = 0 rather than take log(0).
  void add(std::uint64_t latency_ns) noexcept {
    ++count_;
    std::uint64_t us = latency_ns / 1000;
    if (us == 0)
      return;
    double x = std::log(double(us)) / lg_base_;
    sum_ += x;
    sum_squares_ += x * x;
  }

  int count() const noexcept { return count_; }

  path_latency_estimate estimate() const noexcept {
    path_latency_estimate e;
    if (count_ == 0)
      return e;
    // Same operations as multipathd's, in the same order, so the truncation lands alike.
    double lg_max = std::log(max_average_us) / lg_base_;
    double lg_min = std::log(min_average_us) / lg_base_;
    e.log_average = sum_ / count_;
    if (count_ > 1) {
      double var = (sum_squares_ - sum_ * e.log_average) / (count_ - 1);
      e.log_deviation = var > 0 ? std::sqrt(var) : 0;
    }
    e.average_us = std::exp(e.log_average * lg_base_);
    e.uncertainty = std::exp(e.log_deviation * lg_base_);
    if (e.log_average > lg_max)
      e.priority = 0; // slower than 100 s on average
    else if (e.log_average <= lg_min)
      e.priority = int(lg_max - lg_min);
    else if (e.log_average >= lg_max)
      e.priority = 0;
    else
      e.priority = int(lg_max - e.log_average);
    return e;
  }

  static constexpr double max_average_us = 100000000.; ///< 100 s
  static constexpr double min_average_us = 1.;

private:
  double lg_base_;
  double sum_ = 0;
  double sum_squares_ = 0;
  int count_ = 0;
};

/// What path_latency_prioritizer needs of a backend: a synchronous one-block read through a
/// path's handle (every IoBackend has it).
template <class B>
concept ProbeBackend = requires(B& b, typename B::handle_type& h) {
  { b.probe(h) } -> std::same_as<blk_status>;
};

/// multipathd's `prio path_latency`. Models Prioritizer for paths whose handle is the backend's.
///
/// A read that fails ends the measurement with priority 0 (multipathd: "path down", priority
/// undefined, which the health layer counts as 0). A path asked again while its measurement is
/// still running is answered at once with its last priority (0 before the first), as the ALUA
/// prioritizer over SG_IO does. The first request for a path allocates its work item; later
/// ones allocate nothing.
///
/// Thread safety: `get_priority` from any thread; measurements run on `exec`. Destroy it after
/// every monitor using it has stopped, while `backend`, `exec` and `clock` still live.
template <ProbeBackend Backend, Executor Exec, Clock Clk = Exec> class path_latency_prioritizer {
public:
  using handle_type = typename Backend::handle_type;

  /// Arguments that check_path_latency_args refuses are replaced by the defaults, as multipathd
  /// does; parse or check them first to report the error.
  path_latency_prioritizer(Backend& backend, Exec& exec,
                           path_latency_args args = {}) noexcept requires std::same_as<Clk, Exec>
      : path_latency_prioritizer(backend, exec, exec, args) {}
  path_latency_prioritizer(Backend& backend, Exec& exec, Clk& clock, path_latency_args args = {}) noexcept
      : backend_(backend), exec_(exec), clock_(clock), args_(valid(args) ? args : path_latency_args{}) {}
  path_latency_prioritizer(const path_latency_prioritizer&) = delete;
  path_latency_prioritizer& operator=(const path_latency_prioritizer&) = delete;

  /// Waits for a measurement that is running; one not started yet is answered with the last
  /// priority.
  ~path_latency_prioritizer() {
    for (auto& s : slots_)
      if (exec_.cancel_sync(s->work)) {
        prio_done done = s->done;
        s->busy = false;
        done(s->last);
      }
  }

  template <Path P>
  requires std::same_as<typename P::handle_type, handle_type>
  void get_priority(P& p, prio_done done) noexcept {
    slot* s = nullptr;
    int busy_answer = 0;
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
        ++measurements_;
      } else {
        busy_answer = s->last;
        s = nullptr;
      }
    }
    if (!s) {
      done(busy_answer);
      return;
    }
    exec_.post(s->work, 0);
  }

  path_latency_args args() const noexcept { return args_; }

  /// Measurements started so far (tests).
  std::uint64_t measurements() const {
    std::lock_guard guard(mutex_);
    return measurements_;
  }

  /// One measurement of `h`, synchronously on the calling thread: io_num probes through `backend`
  /// timed on `clock`. False when a probe failed (then `out` is untouched).
  static bool measure(Backend& backend, Clk& clock, handle_type& h, path_latency_args args,
                      path_latency_estimate& out) noexcept {
    path_latency_accumulator acc(args.base_num);
    for (int i = 0; i < args.io_num; ++i) {
      std::uint64_t before = clock.now_ns();
      blk_status st = backend.probe(h);
      std::uint64_t after = clock.now_ns();
      if (st != blk_status::ok)
        return false;
      acc.add(after >= before ? after - before : 0);
    }
    out = acc.estimate();
    return true;
  }

private:
  static bool valid(const path_latency_args& a) noexcept {
    return a.io_num >= path_latency_args::min_io_num && a.io_num <= path_latency_args::max_io_num &&
           a.base_num >= path_latency_args::min_base_num && a.base_num <= path_latency_args::max_base_num;
  }

  struct slot {
    slot(path_latency_prioritizer* o, handle_type* h) noexcept : owner(o), handle(h) {
      work.fn = &path_latency_prioritizer::run;
      work.context = this;
    }
    path_latency_prioritizer* owner;
    handle_type* handle;
    work_item work;
    prio_done done{nullptr, nullptr, 0};
    int last = 0; ///< the last answer, for a request while busy
    bool busy = false;
  };

  static void run(work_item& w) noexcept {
    slot& s = *static_cast<slot*>(w.context);
    auto& self = *s.owner;
    path_latency_estimate e;
    int priority = measure(self.backend_, self.clock_, *s.handle, self.args_, e) ? e.priority : 0;
    prio_done done{nullptr, nullptr, 0};
    {
      std::lock_guard guard(self.mutex_);
      done = s.done;
      s.busy = false;
      s.last = priority;
    }
    // Last: the monitor may be gone as soon as it has this answer, and the path with it.
    done(priority);
  }

  Backend& backend_;
  Exec& exec_;
  Clk& clock_;
  path_latency_args args_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<slot>> slots_;
  std::uint64_t measurements_ = 0;
};

} // namespace mpath::inline v0::health
