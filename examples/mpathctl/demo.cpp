// `mpathctl demo`: the engine moving real data while paths fail, with its health layer on. A data
// file gets N hard links, one per path, each opened on its own descriptor by the io_uring adapter
// (the POSIX one when liburing is missing or io_uring is unavailable), wrapped in the fault
// injector. The engine is built from a real table with two priority groups, queue_if_no_path and a
// small hardware handler that makes pg_init visible; engine_host plays DM core (requeue list) and
// a mpath::health::health_monitor plays multipathd: the probe checker (directio) on a thread of
// its own reinstates failed paths, `failback immediate` returns to group 1, `no_path_retry`
// bounds queueing when every path is gone. A checksummed workload of mixed reads and writes runs
// for the whole time; then every block is read back and checked.

#include "demo.hpp"

#include "../adapters/engine_host.hpp"
#include "../adapters/fault_injection.hpp"
#include "../adapters/posix.hpp"
#include "../adapters/workload.hpp"
#if MPATH_HAVE_LIBURING
#include "../adapters/io_uring.hpp"
#endif
#if MPATH_HAVE_LIBNBD
#include "../adapters/nbd.hpp"
#include "../adapters/nbdkit.hpp"
#endif

#include <mpath/health/log.hpp>
#include <mpath/health/monitor.hpp>
#include <mpath/health/probe_checker.hpp>
#include <mpath/hw_handler.hpp>
#include <mpath/multipath.hpp>
#include <mpath/path.hpp>
#include <mpath/thread_executor.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mpathctl {
namespace {

using namespace std::chrono_literals;
namespace ad = mpath::adapters;
namespace health = mpath::health;

/// The health layer's settings (multipath.conf names). Every count is in ticks, and the demo's
/// tick is 1/100 of the run by default, so no_path_retry 20 holds I/O for 20 ticks (up to 21,
/// product.md §8.6): a fifth of the run.
constexpr unsigned no_path_retry = 20;
constexpr unsigned max_polling_interval = 4;
constexpr std::string_view map_name = "mpatha";

constexpr std::string_view demo_help =
    R"(mpathctl demo - live failover demo: the mpath engine moving real data while paths fail, and
its health layer (multipathd's half) checking them, bringing them back and bounding queueing

USAGE
  mpathctl demo [OPTIONS]

WHAT IT DOES
  Creates a data file in a fresh directory under --dir and N hard links to it, the paths
  (path0 .. pathN-1), each opened on its own file descriptor. The first half of the paths form
  priority group 1, the rest group 2. The engine is built from a real multipath table:
      1 queue_if_no_path 1 demo 2 1 round-robin 0 2 1 DIR/path0 1 DIR/path1 1 round-robin 0 ...
  ("demo" is a small hardware handler: activating a path takes --activation-ms, then reads one
  block through it, so pg_init shows). 32 slots keep mixed 4 KiB reads and writes of
  checksummed blocks in flight through io_uring (or POSIX pread/pwrite on a worker pool).

  The health layer (mpath::health::health_monitor; the map is called mpatha) plays multipathd.
  Its checker is the probe checker, multipathd's directio: a one-block read through the path,
  run on a thread of its own. Its prioritizer gives group 1's paths 50 and group 2's 10 (what
  ALUA's active/optimized and active/non-optimized would), so group 1 is the preferred group.
  The engine's path events are forwarded to it, as the kernel's uevents reach multipathd. It is
  configured with
      polling_interval 1  max_polling_interval 4  failback immediate  no_path_retry 20
  TICK: multipathd ticks once a second and counts all of these in seconds; the demo's health
  layer ticks every --tick-ms instead, by default 1/100 of --duration (100 ms for the default
  10 s run, 20 ms for --duration 2), so it behaves as multipathd would, only faster. A probe
  runs off the tick, and its answer is acted on in the same tick if it is in by then, else at
  the next one: a failed path is probed at least every other tick and reinstated within 3
  ticks of coming back; a good one is probed less and less often, at most 5 ticks apart
  (max_polling_interval 4, plus the tick of the answer).
  With no path left I/O queues for no_path_retry x polling_interval = 20 ticks (up to 21, when
  the last path goes between two ticks), a fifth of the run, then fails. The run starts half
  a tick after the health layer, so the scripted events fall between ticks.

  Over the run (times are fractions of --duration):
      10%  the last path of group 1 fails (its I/O ends in transport errors, its probes fail)
      20%  the rest of group 1 fails: the engine switches to group 2 (pg_init, then I/O moves)
      30%  group 2 fails too: no path is left, the I/O queues, no_path_retry counts down
      40%  group 2 comes back: the checker sees it, the monitor reinstates it and the queued
           I/O is delivered (well before no_path_retry runs out)
      50%  group 1 comes back: reinstated, and failback immediate switches to group 1
      60%  group 2 fails while idle: no I/O goes there, so only the checker sees it
      67%  group 1 fails too, for good: the I/O queues again; when no_path_retry runs out
           (about 87%) the monitor disables queueing, the queued I/O fails, and the workload
           stops issuing, as an application would on I/O errors
  Then it waits for every I/O and reads every block straight from the file.

OUTPUT
  One status line per second:
      time  path0 path1 ...  group  held  failed
  under each path its completed I/Os per second in the last second and its state in the engine
  (A active, F failed); group is the engine's current priority group (0: none); held is the
  number of I/Os waiting for a usable path (the requeue list); failed counts I/Os that
  completed with an error (expected: only the queued ones no_path_retry fails at the end).
  Lines starting with >>> are what the demo does; lines starting with ... are what the engine
  (path events) and the hardware handler (pg_init) report back; lines starting with health:
  are the health layer's log in multipathd's words, e.g.
      checker failed path path2 in map mpatha      path2: reinstated
      mpatha: remaining active paths: 1            mpatha: switch to path group #1
      mpatha: Entering recovery mode: max_retries=20
      mpatha: Disable queueing                     mpatha: Recovered to normal mode
  At the end a summary: I/Os, errors, the peak of held I/O, failovers (paths failed, group
  switches, pg_init activations), blocks verified, for each event the time from the event to
  the next I/O that completed after being issued to a path after the event, and what the
  health layer did: how long after a group came back it was reinstated, when it failed back,
  how soon the checker saw the idle group fail, how many queued I/Os were delivered when a
  path came back and how many failed when no_path_retry ran out (and when).

OPTIONS
  --paths N           number of paths, 2..16 (default 4), split into two groups
  --duration SECS     length of the run, at least 2 (default 10)
  --backend NAME      io_uring (default when built with liburing), posix, or nbd: the paths
                      are NBD connections (libnbd) to nbdkit servers the demo starts on
                      127.0.0.1, one per path, each serving the data file behind nbdkit's error
                      filter; a path fails for real: its server answers EIO. Then a phase with
                      one more server delayed by 30 ms (nbdkit's delay filter) runs each selector
                      over path0 and it, and shows how much each sends to the slow path. The
                      servers are stopped on exit, also on Ctrl-C
  --selector-secs S   --backend nbd: length of each selector's run (default 2)
  --selectors-only    --backend nbd: only the selector phase
  --csv FILE          --backend nbd: the selector phase's figures as CSV (bench/nbd_selectors.sh)
  --depth N           I/Os in flight (default 32)
  --size MIB          size of the data file in MiB (default 64)
  --dir DIR           where to create the files (default $TMPDIR, else /tmp); removed afterwards
  --direct            open the paths with O_DIRECT
  --tick-ms MS        the health layer's tick, 1..1000 (default: --duration x 10 ms, i.e. 1/100
                      of the run). With another tick the phases above play out differently:
                      much shorter, no_path_retry runs out in the first outage already; much
                      longer, paths may not be reinstated within their phase
  --activation-ms MS  how long the demo handler takes to activate a path (default 50)
  --quiet             print only the summary
  --help              this text

EXIT STATUS
  0  every block read back correct and every I/O completed exactly once, without error except
     the queued I/Os that no_path_retry failed (counted apart from lost ones; as after any
     failed write, a block whose last write failed may hold the data before it or that write)
  1  data was wrong, an I/O was lost, completed twice or failed any other way, or the files
     could not be set up
  2  bad usage
)";

struct options {
  unsigned paths = 4;
  double duration = 10;
  std::string backend =
#if MPATH_HAVE_LIBURING
      "io_uring";
#else
      "posix";
#endif
  unsigned depth = 32;
  std::uint64_t size_mib = 64;
  std::string dir;
  bool direct = false;
  unsigned tick_ms = 0; ///< 0: duration x 10 ms
  unsigned activation_ms = 50;
  bool quiet = false;
  double selector_secs = 2; ///< --backend nbd: each selector's run over the delayed path
  bool selectors_only = false;
  std::string csv; ///< where the selector runs' figures go as CSV (bench/nbd_selectors.sh)
};

/// Ctrl-C (SIGINT) or SIGTERM: the run stops early, winds down and cleans up (the nbdkit servers
/// are in their own process group, so they stay up until then).
std::atomic<bool> interrupted{false};
extern "C" void on_interrupt(int) { interrupted.store(true); }

double seconds_since(std::uint64_t start_ns, std::uint64_t t) { return double(t - start_ns) / 1e9; }

/// Lines from other threads (path events, the handler), printed by the main loop.
class event_log {
public:
  void add(std::string line, std::uint64_t t = 0) {
    if (t == 0)
      t = ad::steady_ns();
    std::lock_guard guard(mutex_);
    lines_.push_back({t, std::move(line)});
  }
  /// The lines so far, oldest first (threads add them slightly out of order).
  std::vector<std::pair<std::uint64_t, std::string>> take() {
    std::vector<std::pair<std::uint64_t, std::string>> out;
    {
      std::lock_guard guard(mutex_);
      out.swap(lines_);
    }
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    return out;
  }

private:
  std::mutex mutex_;
  std::vector<std::pair<std::uint64_t, std::string>> lines_;
};

std::string short_name(std::string_view token) {
  auto slash = token.rfind('/');
  return std::string(slash == std::string_view::npos ? token : token.substr(slash + 1));
}

/// The health layer's log sink (health/log.hpp's LogSink): each line in multipathd's words goes
/// to the live output with the time it was logged (the data directory cut from path tokens), and
/// what happened when is kept for the summary.
class health_log {
public:
  using kind = health::health_event::kind;

  /// `tokens`: the paths' table tokens, shown by their short names.
  health_log(event_log& out, const std::vector<std::string>& tokens) : out_(out), tokens_(tokens) {}

  void log(const health::health_event& e) noexcept {
    std::uint64_t t = ad::steady_ns();
    try {
      std::string line;
      health::format(e, line);
      for (const auto& token : tokens_) {
        std::string name = short_name(token);
        for (auto at = line.find(token); at != std::string::npos; at = line.find(token, at + name.size()))
          line.replace(at, token.size(), name);
      }
      out_.add("health: " + line, t);
      std::lock_guard guard(mutex_);
      seen_.push_back({t, e.type, short_name(e.path)});
    } catch (...) {
      // Out of memory: the line is dropped; the sink must not throw.
    }
  }

  /// When the first `type` at or after `after` was logged, 0 if none. With `paths`: when every
  /// one of them had had one (the latest of their first ones), 0 if one had none.
  std::uint64_t when(kind type, std::uint64_t after, const std::vector<std::string>& paths = {}) const {
    if (after == 0)
      return 0;
    std::lock_guard guard(mutex_);
    auto first = [&](const std::string* path) -> std::uint64_t {
      for (const auto& r : seen_)
        if (r.type == type && r.t >= after && (!path || r.path == *path))
          return r.t;
      return 0;
    };
    if (paths.empty())
      return first(nullptr);
    std::uint64_t last = 0;
    for (const auto& p : paths) {
      std::uint64_t t = first(&p);
      if (t == 0)
        return 0;
      last = std::max(last, t);
    }
    return last;
  }

private:
  struct record {
    std::uint64_t t;
    kind type;
    std::string path; ///< short name
  };
  event_log& out_;
  const std::vector<std::string> tokens_;
  mutable std::mutex mutex_;
  std::vector<record> seen_; // guarded by mutex_
};

/// The demo's prioritizer: group 1's paths answer 50 and group 2's 10, what ALUA would say of
/// active/optimized and active/non-optimized ports, so group 1 is the group failback returns to.
/// (With `prio const` every group is worth 1 and a tie goes to the group with more usable paths:
/// failing one path of group 1 would make the monitor fail over to group 2.)
struct demo_prioritizer {
  std::vector<std::string> preferred; ///< group 1's tokens
  template <mpath::Path P> void get_priority(P& p, health::prio_done done) noexcept {
    done(std::find(preferred.begin(), preferred.end(), p.device()) != preferred.end() ? 50 : 10);
  }
};

/// Path events from the engine (engine_host's listener, on the engine's executor): printed, and
/// forwarded to the health monitor, as the kernel's uevents reach multipathd. `detach` stops the
/// forwarding and waits for a call in progress, so that the monitor can then be destroyed.
template <class Monitor> class event_relay {
public:
  explicit event_relay(event_log& log) noexcept : log_(log) {}
  void attach(Monitor& m) noexcept { monitor_.store(&m); }
  void detach() noexcept {
    monitor_.store(nullptr);
    while (in_call_.load() != 0)
      std::this_thread::yield();
  }

  static void on_event(void* ctx, const mpath::path_event& e) noexcept {
    auto& self = *static_cast<event_relay*>(ctx);
    bool failed = e.type == mpath::path_event::kind::path_failed;
    try {
      self.log_.add(std::string("... ") + (failed ? "PATH_FAILED " : "PATH_REINSTATED ") + short_name(e.device) + " (" +
                    std::to_string(e.nr_valid_paths) + " valid)");
    } catch (...) {
    }
    self.in_call_.fetch_add(1); // before looking at monitor_: see detach
    if (Monitor* m = self.monitor_.load())
      m->on_path_event(e);
    self.in_call_.fetch_sub(1);
  }

private:
  event_log& log_;
  std::atomic<Monitor*> monitor_{nullptr};
  std::atomic<unsigned> in_call_{0};
};

/// The demo's hardware handler: activating a path takes a while (a controller switching its
/// ports over), then one block is read through the path; ok if that read works.
template <class Backend> class demo_handler {
public:
  static bool accepts(std::string_view name) noexcept { return name == "demo"; }
  mpath::result<void> set_params(std::span<const std::string> args) {
    if (!args.empty())
      return mpath::einval("demo handler takes no arguments");
    return {};
  }
  void attach(Backend* backend, mpath::thread_executor* exec, event_log* log, std::uint64_t delay_ns) {
    backend_ = backend;
    exec_ = exec;
    log_ = log;
    delay_ns_ = delay_ns;
  }
  std::uint64_t activations() const noexcept { return activations_.load(); }

  template <class P> void activate(P& path, mpath::activation_done done) noexcept {
    struct job {
      mpath::work_item work;
      mpath::activation_done done;
      typename Backend::handle_type* handle;
      demo_handler* self;
      std::string name;
    };
    activations_.fetch_add(1);
    job* j = nullptr;
    try {
      j = new job{{}, done, &path.handle(), this, short_name(path.device())};
    } catch (...) {
      done(mpath::activation_result::nomem);
      return;
    }
    log_->add("... pg_init: activating " + j->name);
    j->work.context = j;
    j->work.fn = [](mpath::work_item& w) noexcept {
      auto* jb = static_cast<job*>(w.context);
      bool ok = jb->self->backend_->probe(*jb->handle) == mpath::blk_status::ok;
      jb->self->log_->add("... pg_init: " + jb->name + (ok ? " active" : " failed to activate"));
      auto d = jb->done;
      delete jb;
      d(ok ? mpath::activation_result::ok : mpath::activation_result::dev_failed);
    };
    exec_->post(j->work, delay_ns_);
  }

private:
  Backend* backend_ = nullptr;
  mpath::thread_executor* exec_ = nullptr;
  event_log* log_ = nullptr;
  std::uint64_t delay_ns_ = 0;
  std::atomic<std::uint64_t> activations_{0};
};

template <class Handler> struct demo_traits : mpath::default_traits {
  using hw_handlers = mpath::hw_handler_set<Handler>;
};

/// A fresh directory with the data file and one hard link per path; removed on destruction.
class demo_files {
public:
  bool create(const std::string& base, unsigned paths, std::uint64_t bytes) {
    std::string tmpl = base + "/mpath-demo-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) {
      std::fprintf(stderr, "mpathctl demo: cannot create a directory under %s: %s\n", base.c_str(),
                   std::strerror(errno));
      return false;
    }
    dir_ = buf.data();
    data_ = dir_ + "/data";
    int fd = ::open(data_.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 || ::ftruncate(fd, off_t(bytes)) != 0) {
      std::fprintf(stderr, "mpathctl demo: cannot create %s: %s\n", data_.c_str(), std::strerror(errno));
      if (fd >= 0)
        ::close(fd);
      return false;
    }
    ::close(fd);
    for (unsigned i = 0; i < paths; ++i) {
      std::string p = dir_ + "/path" + std::to_string(i);
      if (::link(data_.c_str(), p.c_str()) != 0 && ::symlink(data_.c_str(), p.c_str()) != 0) {
        std::fprintf(stderr, "mpathctl demo: cannot link %s: %s\n", p.c_str(), std::strerror(errno));
        return false;
      }
      paths_.push_back(p);
    }
    return true;
  }
  ~demo_files() {
    for (auto& p : paths_)
      ::unlink(p.c_str());
    if (!data_.empty())
      ::unlink(data_.c_str());
    if (!dir_.empty())
      ::rmdir(dir_.c_str());
  }
  const std::string& dir() const { return dir_; }
  const std::string& data() const { return data_; }
  const std::vector<std::string>& paths() const { return paths_; }

private:
  std::string dir_, data_;
  std::vector<std::string> paths_;
};

/// Switches path `i`'s fault on or off (`down`), the way the backend's paths really fail.
using fault_switch = std::function<void(unsigned i, bool down)>;

/// The demo over `inner`'s paths `tokens` to `files.data()`. `set_fault` empty: faults are the
/// fault injector's (transport errors in the adapter).
template <class Inner>
int run(Inner& inner, const options& o, const demo_files& files, const std::vector<std::string>& tokens,
        const char* backend_name, fault_switch set_fault = {}) {
  using backend_type = ad::fault_injector<Inner&>;
  using handler_type = demo_handler<backend_type>;
  using host_type = ad::engine_host<backend_type, mpath::thread_executor, demo_traits<handler_type>>;
  using engine_type = typename host_type::engine_type;
  using checker_type = health::probe_checker<backend_type, mpath::thread_executor>;
  using monitor_type = health::health_monitor<engine_type, checker_type, demo_prioritizer, health_log>;
  using relay_type = event_relay<monitor_type>;

  const unsigned n = o.paths, g1 = (n + 1) / 2;
  std::string table = "1 queue_if_no_path 1 demo 2 1 round-robin 0 " + std::to_string(g1) + " 1";
  for (unsigned i = 0; i < g1; ++i)
    table += " " + tokens[i] + " 1";
  table += " round-robin 0 " + std::to_string(n - g1) + " 1";
  for (unsigned i = g1; i < n; ++i)
    table += " " + tokens[i] + " 1";

  event_log log;
  mpath::thread_executor exec;
  backend_type backend(inner);
  relay_type relay(log); // outlives the host, whose listener it is
  auto created = host_type::create(backend, exec, table);
  if (!created) {
    std::fprintf(stderr, "mpathctl demo: %s: %s\n", mpath::errno_name(created.err().code).c_str(),
                 created.err().text.c_str());
    return 1;
  }
  auto& host = **created;
  auto& engine = host.engine();
  auto& handler = *engine.hw_handler().template get_if<handler_type>();
  handler.attach(&backend, &exec, &log, std::uint64_t(o.activation_ms) * 1'000'000);
  host.set_event_listener(&relay_type::on_event, &relay);

  // The health layer, multipathd's half. It ticks on the engine's executor; the probes (blocking
  // one-block reads) get an executor, a thread, of their own, so a slow probe never stalls the
  // tick or the engine's deferred work (probe_checker.hpp). Destroyed in reverse: the monitor
  // first (it waits for probes in flight), then the sink, the prioritizer, the checker.
  const unsigned tick_ms = o.tick_ms ? o.tick_ms : unsigned(o.duration * 10);
  mpath::thread_executor probe_exec;
  checker_type checker(backend, probe_exec);
  std::vector<std::string> group1_paths(tokens.begin(), tokens.begin() + g1);
  demo_prioritizer prio{group1_paths};
  health_log hlog(log, tokens);
  monitor_type monitor(engine, checker, prio, hlog, std::string(map_name), {},
                       health::monitor_options{.tick_ns = std::uint64_t(tick_ms) * 1'000'000});
  const std::vector<std::pair<std::string, std::string>> policy = {
      {"polling_interval", "1"},
      {"max_polling_interval", std::to_string(max_polling_interval)},
      {"failback", "immediate"},
      {"no_path_retry", std::to_string(no_path_retry)},
  };
  std::string policy_text;
  for (const auto& [key, value] : policy) {
    std::vector<std::string> v{value};
    if (auto r = monitor.set(key, v); !r) {
      std::fprintf(stderr, "mpathctl demo: %s\n", r.err().text.c_str());
      return 1;
    }
    policy_text += (policy_text.empty() ? "" : ", ") + key + " " + value;
  }
  struct detach_on_exit {
    relay_type& relay;
    ~detach_on_exit() { relay.detach(); } // before the monitor is destroyed
  } detach_guard{relay};
  relay.attach(monitor);

  // The workload.
  const std::uint32_t block_size = 4096;
  ad::workload_options wo;
  wo.blocks = o.size_mib * 1024 * 1024 / block_size;
  wo.block_size = block_size;
  wo.depth = o.depth;
  wo.seed = std::uint64_t(::getpid()) * 0x9e3779b97f4a7c15ULL ^ ad::steady_ns();
  // The workload submits from this thread, through a channel of its own (docs/performance.md).
  auto channel = host.make_channel();
  ad::block_workload work(wo, [&](ad::workload_io& io) { host.submit(io, *channel); });
  int fd = ::open(files.data().c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 || !work.prepare(fd)) {
    std::fprintf(stderr, "mpathctl demo: cannot write %s: %s\n", files.data().c_str(), std::strerror(errno));
    if (fd >= 0)
      ::close(fd);
    return 1;
  }

  // The scripted events.
  struct milestone {
    double at;              ///< fraction of the duration
    std::string what;       ///< for the summary
    std::string narration;  ///< the >>> line
    std::uint64_t t_ns = 0; ///< when it happened (0: not yet)
    std::uint64_t next_ok_ns = 0;
  };
  const std::string last1 = "path" + std::to_string(g1 - 1);
  const std::string bound = "no_path_retry " + std::to_string(no_path_retry);
  std::vector<milestone> events = {
      {0.10, last1 + " fails", last1 + " fails"},
      {0.20, "group 1 fails", "group 1 fails (all its paths)"},
      {0.30, "all paths down", "group 2 fails too: no path left, the I/O queues (" + bound + ")"},
      {0.40, "group 2 back", "group 2 comes back (the health layer will reinstate it)"},
      {0.50, "group 1 back", "group 1 comes back (reinstate, then failback immediate)"},
      {0.60, "group 2 fails, idle", "group 2 fails while idle (only the checker can see it)"},
      {0.67, "all paths down again", "group 1 fails too, for good: the I/O queues until " + bound + " runs out"},
  };
  enum : std::size_t { ev_all_down = 2, ev_g2_back = 3, ev_g1_back = 4, ev_g2_idle = 5, ev_last = 6 };
  std::vector<std::string> group2_names;
  for (unsigned i = g1; i < n; ++i)
    group2_names.push_back("path" + std::to_string(i));
  if (!set_fault)
    set_fault = [&](unsigned i, bool down) {
      if (down)
        backend.path_down(i, mpath::blk_status::transport);
      else
        backend.path_up(i);
    };
  auto group_down = [&](unsigned first, unsigned last) {
    for (unsigned i = first; i < last; ++i)
      set_fault(i, true);
  };
  auto group_up = [&](unsigned first, unsigned last) {
    for (unsigned i = first; i < last; ++i)
      set_fault(i, false);
  };
  auto path_active = [&](unsigned i) {
    return engine.groups()[i < g1 ? 0 : 1].path(mpath::path_index(i < g1 ? i : i - g1)).is_active();
  };
  auto all_active = [&](unsigned first, unsigned last) {
    for (unsigned i = first; i < last; ++i)
      if (!path_active(i))
        return false;
    return true;
  };
  std::uint64_t g2_active_ns = 0, g1_active_ns = 0; // when the engine had the returning group back

  // Measurements from completions (on this thread). `tag` is when the workload issued the I/O.
  std::uint64_t held_peak = 0, failed_by_bound = 0, other_errors = 0, delivered_after_queue = 0;
  std::uint64_t outage_end_ns = 0; // the latest time paths came back while none was usable
  bool issuing = true;
  work.on_issue = [](ad::workload_io& io) { io.tag = ad::steady_ns(); };
  work.on_complete = [&](const ad::workload_io& io) {
    if (io.status != mpath::blk_status::ok) {
      // With no path left queueing is off only because the health layer turned it off when
      // no_path_retry ran out: this I/O was queued and failed by the bound, as configured.
      if (engine.nr_valid_paths() == 0 && !engine.queue_if_no_path()) {
        ++failed_by_bound;
        if (issuing) {
          issuing = false;
          work.stop_issuing();
          log.add(">>> the workload sees I/O errors and stops issuing", io.done_ns);
        }
      } else {
        ++other_errors;
      }
      return;
    }
    if (outage_end_ns && io.tag < outage_end_ns && io.done_ns >= outage_end_ns)
      ++delivered_after_queue; // issued before a path came back, held until then
    for (auto& m : events)
      if (m.t_ns && io.submit_ns > m.t_ns && (m.next_ok_ns == 0 || io.done_ns < m.next_ok_ns))
        m.next_ok_ns = io.done_ns;
  };

  auto say = [&](std::uint64_t start, std::uint64_t t, const std::string& line) {
    if (!o.quiet)
      std::printf("%6.2fs  %s\n", seconds_since(start, std::max(start, t)), line.c_str());
  };
  auto header = [&] {
    if (o.quiet)
      return;
    std::printf("%7s", "time");
    for (unsigned i = 0; i < n; ++i)
      std::printf("  %9s", ("path" + std::to_string(i)).c_str());
    std::printf("  %5s  %5s  %6s\n", "group", "held", "failed");
  };

  if (!o.quiet) {
    std::printf("mpathctl demo: %u paths to %s (%llu MiB) through %s%s, %u I/Os in flight, %.0f s\n", n,
                files.data().c_str(), (unsigned long long)o.size_mib, backend_name, o.direct ? " (O_DIRECT)" : "",
                o.depth, o.duration);
    std::printf("table: %s\n", table.c_str());
    std::printf("health: map %s, probe checker, prio 50 (group 1) / 10 (group 2), one tick = %u ms\n",
                std::string(map_name).c_str(), tick_ms);
    std::printf("        %s (no path left: I/O queues %u to %u ticks, %.1f to %.1f s)\n\n", policy_text.c_str(),
                no_path_retry, no_path_retry + 1, double(no_path_retry * tick_ms) / 1000,
                double((no_path_retry + 1) * tick_ms) / 1000);
    header();
  }

  // The health layer first (queue_if_no_path, its first tick one tick later), the run half a
  // tick later: the scripted events then fall between ticks, as real failures would.
  monitor.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(tick_ms) / 2);
  const std::uint64_t start = ad::steady_ns();
  const std::uint64_t end = start + std::uint64_t(o.duration * 1e9);
  std::uint64_t next_status = start + 1'000'000'000;
  std::vector<std::uint64_t> last_completed(n, 0);
  std::uint32_t last_group = 0;
  std::uint64_t group_switches = 0;
  work.start();
  for (;;) {
    work.pump(2ms);
    std::uint64_t now = ad::steady_ns();
    held_peak = std::max<std::uint64_t>(held_peak, host.held());
    if (std::uint32_t gnow = engine.current_group(); gnow != 0 && gnow != last_group) {
      if (last_group != 0)
        ++group_switches;
      last_group = gnow;
    }
    for (std::size_t k = 0; k < events.size(); ++k) {
      auto& m = events[k];
      if (m.t_ns || now < start + std::uint64_t(m.at * o.duration * 1e9) || now >= end)
        continue;
      m.t_ns = now;
      log.add(">>> " + m.narration, now);
      switch (k) {
      case 0: group_down(g1 - 1, g1); break;
      case 1: group_down(0, g1); break;
      case ev_all_down: group_down(g1, n); break;
      case ev_g2_back:
        if (engine.nr_valid_paths() == 0)
          outage_end_ns = now;
        group_up(g1, n);
        break;
      case ev_g1_back: group_up(0, g1); break;
      case ev_g2_idle: group_down(g1, n); break;
      case ev_last: group_down(0, g1); break;
      }
    }
    if (events[ev_g2_back].t_ns && !g2_active_ns && all_active(g1, n))
      g2_active_ns = now;
    if (events[ev_g1_back].t_ns && !g1_active_ns && all_active(0, g1))
      g1_active_ns = now;
    for (auto& [t, line] : log.take())
      say(start, t, line);
    if (now >= next_status && !o.quiet) {
      std::printf("%6.1fs ", seconds_since(start, now));
      for (unsigned i = 0; i < n; ++i) {
        std::uint64_t c = backend.inner().counters(i).completed;
        double iops = double(c - last_completed[i]);
        last_completed[i] = c;
        char buf[32];
        if (iops >= 1000)
          std::snprintf(buf, sizeof buf, "%.1fk %c", iops / 1000, path_active(i) ? 'A' : 'F');
        else
          std::snprintf(buf, sizeof buf, "%.0f %c", iops, path_active(i) ? 'A' : 'F');
        std::printf("  %9s", buf);
      }
      std::printf("  %5u  %5zu  %6llu\n", engine.current_group(), host.held(),
                  (unsigned long long)(failed_by_bound + other_errors));
      std::fflush(stdout);
      next_status += 1'000'000'000;
    }
    if (now >= end || interrupted.load())
      break;
  }

  // Wind down: every path healthy again (I/O still queued, if the bound did not run out, is
  // delivered once the health layer reinstates a path), every I/O home, every block checked.
  if (engine.nr_valid_paths() == 0)
    outage_end_ns = ad::steady_ns();
  group_up(0, n);
  std::size_t lost = work.drain(10s);
  relay.detach();
  monitor.stop(); // fail_if_no_path (no_path_retry N: multipathd's queue_without_daemon no)
  for (auto& [t, line] : log.take())
    say(start, t, line);
  auto totals = work.stats();
  std::uint64_t bad_blocks = work.verify(fd);
  ::close(fd);
  std::uint64_t paths_failed = 0;
  for (const auto& g : engine.groups())
    for (const auto& p : g.paths())
      paths_failed += p.fail_count();
  double secs = seconds_since(start, ad::steady_ns());
  std::uint64_t ios = totals.reads + totals.writes;

  std::printf("\nsummary: %s, %u paths in 2 groups, %.1f s\n", backend_name, n, o.duration);
  std::printf("  I/Os completed   %12llu   (%llu reads, %llu writes; %.1fk IOPS)\n", (unsigned long long)ios,
              (unsigned long long)totals.reads, (unsigned long long)totals.writes, double(ios) / secs / 1000);
  std::printf("  I/O errors       %12llu   (%llu queued I/Os failed by %s, as configured; %llu other)\n",
              (unsigned long long)totals.errors, (unsigned long long)failed_by_bound, bound.c_str(),
              (unsigned long long)other_errors);
  std::printf("  held peak        %12llu   (I/Os waiting for a usable path at once)\n", (unsigned long long)held_peak);
  std::printf("  failovers        %12llu   paths failed, %llu group switches, %llu pg_init activations\n",
              (unsigned long long)paths_failed, (unsigned long long)group_switches,
              (unsigned long long)handler.activations());
  std::printf("  blocks verified  %12llu   (%llu written at least once), %llu wrong\n", (unsigned long long)wo.blocks,
              (unsigned long long)work.blocks_written(), (unsigned long long)bad_blocks);
  std::printf("  reads wrong      %12llu\n", (unsigned long long)totals.bad_data);
  std::printf("  lost I/Os        %12zu\n", lost);
  std::printf("  completed twice  %12llu\n\n", (unsigned long long)totals.duplicate_completions);
  std::printf("  %-28s %9s   %s\n", "event", "at", "next completed I/O after it");
  for (const auto& m : events) {
    if (!m.t_ns)
      continue;
    std::printf("  %-28s %8.2fs   ", m.what.c_str(), seconds_since(start, m.t_ns));
    if (m.next_ok_ns)
      std::printf("%.1f ms\n", double(m.next_ok_ns - m.t_ns) / 1e6);
    else
      std::printf("none\n");
  }

  // What the health layer did, from its log and the engine's path states.
  using hk = health_log::kind;
  auto after = [&](std::uint64_t t, std::uint64_t from) {
    char buf[48];
    if (t == 0 || from == 0)
      return std::string("-");
    std::snprintf(buf, sizeof buf, "%.0f ms", double(t - from) / 1e6);
    return std::string(buf);
  };
  auto row = [](const char* what, const std::string& value, const std::string& note) {
    std::printf("  %-28s %10s   %s\n", what, value.c_str(), note.c_str());
  };
  auto t = [&](std::size_t k) { return events[k].t_ns; };
  std::printf("\n  health layer (one tick = %u ms)\n", tick_ms);
  row("group 2 reinstated", after(g2_active_ns, t(ev_g2_back)), "after it came back (all its paths active)");
  row("recovered", after(hlog.when(hk::recovered, t(ev_g2_back)), t(ev_g2_back)),
      "after group 2 came back: queue_if_no_path again");
  row("group 1 reinstated", after(g1_active_ns, t(ev_g1_back)), "after it came back");
  row("failback to group 1", after(hlog.when(hk::switch_group, t(ev_g1_back)), t(ev_g1_back)),
      "after group 1 came back (switch to path group #1)");
  row("idle group 2 failed", after(hlog.when(hk::checker_failed_path, t(ev_g2_idle), group2_names), t(ev_g2_idle)),
      "after it went down, by the checker");
  std::uint64_t recovery_ns = hlog.when(hk::entering_recovery, t(ev_last));
  std::uint64_t disabled_ns = hlog.when(hk::disable_queueing, t(ev_last));
  row("queueing disabled", after(disabled_ns, recovery_ns), "after the last path went (Entering recovery mode)");
  row("queued, then delivered", std::to_string(delivered_after_queue),
      "I/Os held while no path was left, completed when one was reinstated");
  row("queued, failed by the bound", std::to_string(failed_by_bound), "I/Os failed when " + bound + " ran out");
  row("lost", std::to_string(lost), "I/Os never completed");

  bool good =
      bad_blocks == 0 && totals.bad_data == 0 && lost == 0 && other_errors == 0 && totals.duplicate_completions == 0;
  if (!good)
    std::printf("\nresult: FAILED (see the summary above)\n");
  else if (failed_by_bound == 0)
    std::printf("\nresult: every block verified, no I/O lost or failed\n");
  else
    std::printf("\nresult: every block verified, no I/O lost; the only I/O errors: %llu queued %s failed by %s, as "
                "configured\n",
                (unsigned long long)failed_by_bound, failed_by_bound == 1 ? "I/O" : "I/Os", bound.c_str());
  return interrupted.load() ? 130 : good ? 0 : 1;
}

#if MPATH_HAVE_LIBNBD
/// One selector's run over the fast path and the delayed one.
struct selector_run {
  std::string selector;
  double mib_per_s = 0, iops = 0, slow_share = 0, mean_ms = 0;
  bool ok = false; ///< every read right, none lost, failed or completed twice
};

/// Each of the four list selectors in turn, in a one-group table over `fast` and `slow` (a path
/// behind nbdkit's delay filter): 4 KiB random reads, --depth in flight, --selector-secs each,
/// through the same NBD backend. How much of the I/O each selector sends to the slow path is
/// what decides the throughput (docs/nbd.md's figure).
std::vector<selector_run> run_selectors(ad::nbd_backend& nbd, const std::string& fast, const std::string& slow,
                                        const demo_files& files, const options& o) {
  using host_type = ad::engine_host<ad::nbd_backend>;
  std::vector<selector_run> runs;
  int fd = ::open(files.data().c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return runs;
  mpath::thread_executor exec;
  for (const char* sel : {"round-robin", "queue-length", "service-time", "historical-service-time"}) {
    if (interrupted.load())
      break;
    selector_run r{sel};
    std::uint32_t base = std::uint32_t(nbd.path_count()); // this table's paths get the next ids
    auto created = host_type::create(nbd, exec, "0 0 1 1 " + std::string(sel) + " 0 2 0 " + fast + " " + slow);
    if (!created) {
      std::fprintf(stderr, "mpathctl demo: %s: %s\n", sel, created.err().text.c_str());
      break;
    }
    auto& host = **created;
    ad::workload_options wo;
    wo.blocks = o.size_mib * 1024 * 1024 / 4096;
    wo.depth = o.depth;
    wo.read_percent = 100;
    wo.seed = ad::steady_ns();
    auto channel = host.make_channel();
    ad::block_workload work(wo, [&](ad::workload_io& io) { host.submit(io, *channel); });
    if (!work.prepare(fd))
      break;
    std::uint64_t latency_ns = 0, done = 0;
    work.on_issue = [](ad::workload_io& io) { io.tag = ad::steady_ns(); };
    work.on_complete = [&](const ad::workload_io& io) {
      latency_ns += io.done_ns - io.tag;
      ++done;
    };
    const std::uint64_t t0 = ad::steady_ns(), until = t0 + std::uint64_t(o.selector_secs * 1e9);
    work.start();
    while (ad::steady_ns() < until && !interrupted.load())
      work.pump(std::chrono::milliseconds(5));
    const double secs = double(ad::steady_ns() - t0) / 1e9;
    const std::uint64_t reads = work.stats().reads; // those completed by the end of the run
    std::size_t lost = work.drain(std::chrono::seconds(10));
    auto totals = work.stats();
    const double on_fast = double(nbd.counters(base).completed), on_slow = double(nbd.counters(base + 1).completed);
    r.iops = double(reads) / secs;
    r.mib_per_s = r.iops * 4096 / (1024 * 1024);
    r.slow_share = on_fast + on_slow > 0 ? on_slow / (on_fast + on_slow) : 0;
    r.mean_ms = done ? double(latency_ns) / double(done) / 1e6 : 0;
    r.ok = lost == 0 && totals.errors == 0 && totals.bad_data == 0 && totals.duplicate_completions == 0;
    runs.push_back(r);
  }
  ::close(fd);
  return runs;
}

/// `--backend nbd`: one nbdkit process per path on 127.0.0.1, each serving the data file through
/// the error filter (a path's fault: its error file exists, and the server answers EIO), then a
/// phase over path0 and one more server delayed by 30 ms.
int run_nbd(const options& o, const demo_files& files) {
  std::vector<std::unique_ptr<ad::nbdkit_server>> servers;
  std::vector<std::string> tokens, error_files;
  for (unsigned i = 0; i < o.paths; ++i) {
    error_files.push_back(files.dir() + "/fail-path" + std::to_string(i));
    servers.push_back(std::make_unique<ad::nbdkit_server>(
        ad::server_config{.file = files.data(), .error_file = error_files.back(), .error = "EIO"}));
    if (!servers.back()->start()) {
      std::fprintf(stderr, "mpathctl demo: cannot start nbdkit on %s (is nbdkit installed?)\n",
                   servers.back()->token().c_str());
      return 1;
    }
    // The export name is the path's name (nbdkit's file plugin serves any name): it is what the
    // output shows.
    tokens.push_back("nbd://" + servers.back()->token() + "/path" + std::to_string(i));
  }
  struct clear_faults {
    const std::vector<std::string>& files;
    ~clear_faults() {
      for (const auto& f : files)
        ::unlink(f.c_str()); // also after Ctrl-C: the directory is removed after this
    }
  } clear_guard{error_files};
  ad::nbd_backend nbd({.timeout_ms = 2000});
  int rc = 0;
  if (!o.selectors_only) {
    if (!o.quiet) {
      std::printf("nbdkit servers (file plugin, error filter; a path fails when its error file exists):\n");
      for (unsigned i = 0; i < o.paths; ++i)
        std::printf("  path%u  %s  pid %d\n", i, tokens[i].c_str(), int(servers[i]->pid()));
      std::printf("\n");
    }
    rc = run(nbd, o, files, tokens, "NBD (libnbd) to nbdkit", [&](unsigned i, bool down) {
      if (down)
        ad::touch(error_files[i]);
      else
        ::unlink(error_files[i].c_str());
    });
    if (rc != 0 || interrupted.load())
      return rc;
  }

  ad::nbdkit_server slow_server(ad::server_config{.file = files.data(), .delay = "rdelay=30ms wdelay=30ms"});
  if (!slow_server.start()) {
    std::fprintf(stderr, "mpathctl demo: cannot start nbdkit with the delay filter\n");
    return 1;
  }
  const std::string slow = "nbd://" + slow_server.token() + "/slow";
  std::printf("\nselectors: one group of two NBD paths, path0 and slow (nbdkit's delay filter, 30 ms per "
              "request);\n%u random 4 KiB reads in flight, %.0f s each, through the same engine code\n\n",
              o.depth, o.selector_secs);
  auto runs = run_selectors(nbd, tokens[0], slow, files, o);
  std::printf("  %-24s %10s %10s %14s %14s %12s\n", "selector", "MiB/s", "IOPS", "x round-robin", "share on slow",
              "mean latency");
  std::FILE* csv = o.csv.empty() ? nullptr : std::fopen(o.csv.c_str(), "w");
  if (csv)
    std::fprintf(csv, "selector,mib_per_s,iops,ratio_to_round_robin,slow_share,mean_latency_ms\n");
  bool all_ok = runs.size() == 4;
  for (const auto& r : runs) {
    double ratio = runs[0].mib_per_s > 0 ? r.mib_per_s / runs[0].mib_per_s : 0;
    std::printf("  %-24s %10.2f %10.0f %13.2fx %13.1f%% %9.2f ms%s\n", r.selector.c_str(), r.mib_per_s, r.iops, ratio,
                100 * r.slow_share, r.mean_ms, r.ok ? "" : "  (I/O lost, failed or wrong)");
    if (csv)
      std::fprintf(csv, "%s,%.3f,%.1f,%.4f,%.4f,%.3f\n", r.selector.c_str(), r.mib_per_s, r.iops, ratio, r.slow_share,
                   r.mean_ms);
    all_ok = all_ok && r.ok;
  }
  if (csv)
    std::fclose(csv);
  if (interrupted.load())
    return 130;
  std::printf("\nresult: %s\n",
              all_ok ? "selectors: every read verified, none lost or failed" : "selectors: FAILED (see above)");
  return all_ok ? rc : 1;
}
#endif

bool parse_unsigned(std::string_view s, unsigned long long& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

} // namespace

int run_demo(int argc, char** argv) {
  options o;
  if (const char* t = std::getenv("TMPDIR"); t && *t)
    o.dir = t;
  else
    o.dir = "/tmp";
  auto usage = [](const std::string& why) {
    std::fprintf(stderr, "mpathctl demo: %s (see mpathctl demo --help)\n", why.c_str());
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](unsigned long long& v, unsigned long long lo, unsigned long long hi) {
      if (i + 1 >= argc || !parse_unsigned(argv[i + 1], v) || v < lo || v > hi)
        return false;
      ++i;
      return true;
    };
    unsigned long long v = 0;
    if (a == "--help" || a == "-h") {
      std::fwrite(demo_help.data(), 1, demo_help.size(), stdout);
      return 0;
    } else if (a == "--quiet" || a == "-q") {
      o.quiet = true;
    } else if (a == "--direct") {
      o.direct = true;
    } else if (a == "--paths") {
      if (!value(v, 2, 16))
        return usage("--paths takes a number from 2 to 16");
      o.paths = unsigned(v);
    } else if (a == "--duration") {
      if (!value(v, 2, 3600))
        return usage("--duration takes whole seconds, at least 2");
      o.duration = double(v);
    } else if (a == "--depth") {
      if (!value(v, 1, 1024))
        return usage("--depth takes a number from 1 to 1024");
      o.depth = unsigned(v);
    } else if (a == "--size") {
      if (!value(v, 1, 1 << 20))
        return usage("--size takes MiB, at least 1");
      o.size_mib = v;
    } else if (a == "--tick-ms") {
      if (!value(v, 1, 1000))
        return usage("--tick-ms takes milliseconds from 1 to 1000");
      o.tick_ms = unsigned(v);
    } else if (a == "--activation-ms") {
      if (!value(v, 0, 60000))
        return usage("--activation-ms takes milliseconds");
      o.activation_ms = unsigned(v);
    } else if (a == "--backend" && i + 1 < argc) {
      o.backend = argv[++i];
      if (o.backend == "uring")
        o.backend = "io_uring";
      if (o.backend != "io_uring" && o.backend != "posix" && o.backend != "nbd")
        return usage("--backend is io_uring, posix or nbd");
#if !MPATH_HAVE_LIBNBD
      if (o.backend == "nbd")
        return usage("--backend nbd: mpathctl was built without libnbd (libnbd-dev)");
#endif
    } else if (a == "--selector-secs") {
      if (!value(v, 1, 600))
        return usage("--selector-secs takes whole seconds from 1 to 600");
      o.selector_secs = double(v);
    } else if (a == "--selectors-only") {
      o.selectors_only = true;
    } else if (a == "--csv" && i + 1 < argc) {
      o.csv = argv[++i];
    } else if (a == "--dir" && i + 1 < argc) {
      o.dir = argv[++i];
    } else {
      return usage("unknown option " + std::string(a));
    }
  }
  std::uint64_t blocks = o.size_mib * 1024 * 1024 / 4096;
  if (blocks < o.depth)
    return usage("--size too small for --depth");

  demo_files files;
  if (!files.create(o.dir, o.paths, o.size_mib * 1024 * 1024))
    return 1;
  setvbuf(stdout, nullptr, _IOLBF, 0);
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

#if MPATH_HAVE_LIBNBD
  if (o.backend == "nbd")
    return run_nbd(o, files);
#endif

#if MPATH_HAVE_LIBURING
  if (o.backend == "io_uring") {
    ad::uring_options uo;
    uo.direct = o.direct;
    uo.entries = std::max(64u, o.depth * 2);
    auto b = ad::uring_backend::create(uo);
    if (b)
      return run(**b, o, files, files.paths(), "io_uring");
    std::fprintf(stderr, "mpathctl demo: io_uring unavailable (%s): using the POSIX adapter\n", b.err().text.c_str());
  }
#else
  if (o.backend == "io_uring")
    std::fprintf(stderr, "mpathctl demo: built without liburing: using the POSIX adapter\n");
#endif
  ad::posix_options po;
  po.workers = 4;
  if (o.direct) {
    po.open_flags |= O_DIRECT;
    po.alignment = 4096;
  }
  ad::posix_backend<> b(po);
  return run(b, o, files, files.paths(), "POSIX pread/pwrite");
}

} // namespace mpathctl
