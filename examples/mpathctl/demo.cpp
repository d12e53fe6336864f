// `mpathctl demo`: the engine moving real data while paths fail. A data file gets N hard links,
// one per path, each opened on its own descriptor by the io_uring adapter (the POSIX one when
// liburing is missing or io_uring is unavailable), wrapped in the fault injector. The engine is
// built from a real table with two priority groups, queue_if_no_path and a small hardware handler
// that makes pg_init visible; engine_host plays DM core (requeue list) and a checker thread plays
// multipathd (probes failed paths, reinstates those that answer). A checksummed workload of mixed
// reads and writes runs for the whole time; then every block is read back and checked.

#include "demo.hpp"

#include "../adapters/engine_host.hpp"
#include "../adapters/fault_injection.hpp"
#include "../adapters/posix.hpp"
#include "../adapters/workload.hpp"
#if MPATH_HAVE_LIBURING
#include "../adapters/io_uring.hpp"
#endif

#include <mpath/hw_handler.hpp>
#include <mpath/multipath.hpp>
#include <mpath/thread_executor.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mpathctl {
namespace {

using namespace std::chrono_literals;
namespace ad = mpath::adapters;

constexpr std::string_view demo_help =
    R"(mpathctl demo - live failover demo: the mpath engine moving real data while paths fail

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
  A checker thread probes failed paths every --checker-ms and reinstates those that answer, as
  multipathd would. Over the run (times are fractions of --duration):
      15%  the last path of group 1 fails (its I/O ends in transport errors, its probes fail)
      30%  the rest of group 1 fails: the engine switches to group 2 (pg_init, then I/O moves)
      45%  group 2 fails too: no path is left, queue_if_no_path holds the I/O, none fails
      60%  group 2 comes back: the checker reinstates it and the held I/O drains
      75%  group 1 comes back; once reinstated, `switch_group 1` fails back (pg_init again)
  Then it stops issuing, waits for every I/O, and reads every block straight from the file.

OUTPUT
  One status line per second:
      time  path0 path1 ...  group  held  errors
  under each path its completed I/Os per second in the last second and its state (A active,
  F failed); group is the engine's current priority group (0: none); held is the number of I/Os
  waiting for a usable path (the requeue list); errors counts I/Os that failed (expected: 0).
  Lines starting with >>> are what the demo does; lines starting with ... are what the engine
  (path events) and the hardware handler (pg_init) report back.
  At the end a summary: I/Os, errors, the peak of held I/O, failovers (paths failed, group
  switches, pg_init activations), blocks verified, and for each event the time from the event to
  the next I/O that completed after being issued to a path after the event.

OPTIONS
  --paths N           number of paths, 2..16 (default 4), split into two groups
  --duration SECS     length of the run, at least 2 (default 10)
  --backend NAME      io_uring (default when built with liburing) or posix
  --depth N           I/Os in flight (default 32)
  --size MIB          size of the data file in MiB (default 64)
  --dir DIR           where to create the files (default $TMPDIR, else /tmp); removed afterwards
  --direct            open the paths with O_DIRECT
  --checker-ms MS     path checker interval (default 100)
  --activation-ms MS  how long the demo handler takes to activate a path (default 50)
  --quiet             print only the summary
  --help              this text

EXIT STATUS
  0  every block read back correct, every I/O completed exactly once and without error
  1  data was wrong, an I/O was lost or failed, or the files could not be set up
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
  unsigned checker_ms = 100;
  unsigned activation_ms = 50;
  bool quiet = false;
};

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
  const std::string& data() const { return data_; }
  const std::vector<std::string>& paths() const { return paths_; }

private:
  std::string dir_, data_;
  std::vector<std::string> paths_;
};

/// One scripted event and what followed it.
struct milestone {
  double at;              ///< fraction of the duration
  std::string what;       ///< for the summary
  std::string narration;  ///< the >>> line
  std::uint64_t t_ns = 0; ///< when it happened (0: not yet)
  std::uint64_t next_ok_ns = 0;
  bool done = false;
};

template <class Inner> int run(Inner& inner, const options& o, const demo_files& files, const char* backend_name) {
  using backend_type = ad::fault_injector<Inner&>;
  using handler_type = demo_handler<backend_type>;
  using host_type = ad::engine_host<backend_type, mpath::thread_executor, demo_traits<handler_type>>;

  const unsigned n = o.paths, g1 = (n + 1) / 2;
  std::string table = "1 queue_if_no_path 1 demo 2 1 round-robin 0 " + std::to_string(g1) + " 1";
  for (unsigned i = 0; i < g1; ++i)
    table += " " + files.paths()[i] + " 1";
  table += " round-robin 0 " + std::to_string(n - g1) + " 1";
  for (unsigned i = g1; i < n; ++i)
    table += " " + files.paths()[i] + " 1";

  event_log log;
  mpath::thread_executor exec;
  backend_type backend(inner);
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
  host.set_event_listener(
      [](void* ctx, const mpath::path_event& e) noexcept {
        bool failed = e.type == mpath::path_event::kind::path_failed;
        static_cast<event_log*>(ctx)->add(std::string("... ") + (failed ? "PATH_FAILED " : "PATH_REINSTATED ") +
                                          short_name(e.device) + " (" + std::to_string(e.nr_valid_paths) + " valid)");
      },
      &log);

  // The workload.
  const std::uint32_t block_size = 4096;
  ad::workload_options wo;
  wo.blocks = o.size_mib * 1024 * 1024 / block_size;
  wo.block_size = block_size;
  wo.depth = o.depth;
  wo.seed = std::uint64_t(::getpid()) * 0x9e3779b97f4a7c15ULL ^ ad::steady_ns();
  ad::block_workload work(wo, [&](ad::workload_io& io) { host.submit(io); });
  int fd = ::open(files.data().c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 || !work.prepare(fd)) {
    std::fprintf(stderr, "mpathctl demo: cannot write %s: %s\n", files.data().c_str(), std::strerror(errno));
    return 1;
  }

  // The scripted events.
  std::vector<milestone> events = {
      {0.15, "path" + std::to_string(g1 - 1) + " fails", "path" + std::to_string(g1 - 1) + " fails"},
      {0.30, "group 1 fails", "group 1 fails (all its paths)"},
      {0.45, "all paths down", "group 2 fails too: no path left, queue_if_no_path holds I/O"},
      {0.60, "group 2 back", "group 2 comes back (the checker will reinstate it)"},
      {0.75, "group 1 back, fail back", "group 1 comes back; switch_group 1 once it is reinstated"},
  };
  auto group_down = [&](unsigned first, unsigned last) {
    for (unsigned i = first; i < last; ++i)
      backend.path_down(i, mpath::blk_status::transport);
  };
  auto group_up = [&](unsigned first, unsigned last) {
    for (unsigned i = first; i < last; ++i)
      backend.path_up(i);
  };
  bool failback_pending = false;
  std::uint64_t failback_ns = 0;

  // Measurements from completions (on this thread).
  std::uint64_t held_peak = 0, errors = 0;
  work.on_complete = [&](const ad::workload_io& io) {
    if (io.status != mpath::blk_status::ok) {
      ++errors;
      return;
    }
    for (auto& m : events)
      if (m.t_ns && io.submit_ns > m.t_ns && (m.next_ok_ns == 0 || io.done_ns < m.next_ok_ns))
        m.next_ok_ns = io.done_ns;
  };

  // The path checker.
  std::atomic<bool> stop_checker{false};
  std::thread checker([&] {
    while (!stop_checker.load()) {
      for (auto& g : engine.groups())
        for (auto& p : g.paths())
          if (!p.is_active() && backend.probe(p.handle()) == mpath::blk_status::ok)
            (void)engine.message("reinstate_path " + p.device());
      std::this_thread::sleep_for(std::chrono::milliseconds(o.checker_ms));
    }
  });

  auto say = [&](std::uint64_t start, std::uint64_t t, const std::string& line) {
    if (!o.quiet)
      std::printf("%6.2fs  %s\n", seconds_since(start, t), line.c_str());
  };
  auto header = [&] {
    if (o.quiet)
      return;
    std::printf("%7s", "time");
    for (unsigned i = 0; i < n; ++i)
      std::printf("  %9s", ("path" + std::to_string(i)).c_str());
    std::printf("  %5s  %5s  %6s\n", "group", "held", "errors");
  };

  if (!o.quiet) {
    std::printf("mpathctl demo: %u paths to %s (%llu MiB) through %s%s, %u I/Os in flight, %.0f s\n", n,
                files.data().c_str(), (unsigned long long)o.size_mib, backend_name, o.direct ? " (O_DIRECT)" : "",
                o.depth, o.duration);
    std::printf("table: %s\n\n", table.c_str());
    header();
  }

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
      case 2: group_down(g1, n); break;
      case 3: group_up(g1, n); break;
      case 4:
        group_up(0, g1);
        failback_pending = true;
        break;
      }
    }
    if (failback_pending) {
      bool all = true;
      for (unsigned i = 0; i < g1; ++i)
        all = all && engine.groups()[0].path(mpath::path_index(i)).is_active();
      if (all) {
        failback_pending = false;
        failback_ns = now;
        log.add(">>> group 1 reinstated: switch_group 1", now);
        (void)engine.message("switch_group 1");
      }
    }
    for (auto& [t, line] : log.take())
      say(start, t, line);
    if (now >= next_status && !o.quiet) {
      std::printf("%6.1fs ", seconds_since(start, now));
      for (unsigned i = 0; i < n; ++i) {
        std::uint64_t c = backend.inner().counters(i).completed;
        double iops = double(c - last_completed[i]);
        last_completed[i] = c;
        bool active = engine.groups()[i < g1 ? 0 : 1].path(mpath::path_index(i < g1 ? i : i - g1)).is_active();
        char buf[32];
        if (iops >= 1000)
          std::snprintf(buf, sizeof buf, "%.1fk %c", iops / 1000, active ? 'A' : 'F');
        else
          std::snprintf(buf, sizeof buf, "%.0f %c", iops, active ? 'A' : 'F');
        std::printf("  %9s", buf);
      }
      std::printf("  %5u  %5zu  %6llu\n", engine.current_group(), host.held(), (unsigned long long)errors);
      std::fflush(stdout);
      next_status += 1'000'000'000;
    }
    if (now >= end)
      break;
  }

  // Wind down: everything healthy, every I/O home, every block checked.
  group_up(0, n);
  std::size_t lost = work.drain(10s);
  stop_checker.store(true);
  checker.join();
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
  std::printf("  I/O errors       %12llu\n", (unsigned long long)totals.errors);
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
  if (failback_ns)
    std::printf("  %-28s %8.2fs\n", "switch_group 1 sent", seconds_since(start, failback_ns));

  bool good =
      bad_blocks == 0 && totals.bad_data == 0 && lost == 0 && totals.errors == 0 && totals.duplicate_completions == 0;
  std::printf("\n%s\n",
              good ? "result: every block verified, no I/O lost or failed" : "result: FAILED (see the summary above)");
  return good ? 0 : 1;
}

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
    } else if (a == "--checker-ms") {
      if (!value(v, 1, 60000))
        return usage("--checker-ms takes milliseconds");
      o.checker_ms = unsigned(v);
    } else if (a == "--activation-ms") {
      if (!value(v, 0, 60000))
        return usage("--activation-ms takes milliseconds");
      o.activation_ms = unsigned(v);
    } else if (a == "--backend" && i + 1 < argc) {
      o.backend = argv[++i];
      if (o.backend == "uring")
        o.backend = "io_uring";
      if (o.backend != "io_uring" && o.backend != "posix")
        return usage("--backend is io_uring or posix");
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

#if MPATH_HAVE_LIBURING
  if (o.backend == "io_uring") {
    ad::uring_options uo;
    uo.direct = o.direct;
    uo.entries = std::max(64u, o.depth * 2);
    auto b = ad::uring_backend::create(uo);
    if (b)
      return run(**b, o, files, "io_uring");
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
  return run(b, o, files, "POSIX pread/pwrite");
}

} // namespace mpathctl
