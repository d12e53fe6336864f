#pragma once
// End-to-end integrity over a real backend: a data file reached by four paths (hard links, each
// opened on its own descriptor) in two groups, the engine in request or bio mode, the checksummed
// block workload, and a seeded random schedule that takes paths away and brings them back (one,
// several, all of them), turns queue_if_no_path on and off, switches groups and slips in non-path
// errors. Afterwards every block is read back straight from the file.
//
// What "errors only where the engine's rules allow them" means here: a path error reaches the
// application only while every path is down and queueing is off (the "window"). The schedule bumps
// an epoch before it opens a window and after it closes one; an I/O that saw no window change from
// issue to completion and failed with a path error is a violation.
//
// With `reloads`, the schedule also loads new tables into the live device while I/O runs, as
// multipathd does (docs/reload.md), in turn: a hot add of a fifth or sixth path (another name of
// the file, opened on a new descriptor), a hot remove of a path with I/O in flight on it (held
// there by a latency while the table drops it), and a shuffle of the paths into one to three
// groups. The faults follow the paths by token across tables; a
// table keeps queue_if_no_path as the schedule last set it, and a window is every path of the live
// table down with queueing off.

#include "../../examples/adapters/engine_host.hpp"
#include "../../examples/adapters/fault_injection.hpp"
#include "../../examples/adapters/workload.hpp"

#include <mpath/testing/scripted_handler.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

namespace integrity {

struct config {
  bool bio = false;
  bool channel = false; ///< submit through a channel (multipath::channel)
  std::uint64_t seed = 1;
  std::size_t ios = 6000; ///< completions to reach
  unsigned depth = 16;
  std::uint64_t blocks = 512;
  bool reloads = false; ///< the schedule also reloads the device with other tables
};

struct report {
  std::uint64_t reads = 0, writes = 0, errors = 0, medium_errors = 0;
  std::uint64_t bad_data = 0, duplicates = 0, lost = 0, verify_bad = 0;
  std::uint64_t unexplained_errors = 0; ///< path errors outside a window, or an unexpected status
  std::uint64_t actions = 0, windows = 0, all_down = 0, path_failed_events = 0;
  std::uint64_t requeues = 0;
  std::uint64_t reloads = 0, hot_adds = 0, hot_removes = 0, regroups = 0;
  std::uint64_t removed_busy = 0;     ///< hot removes of a path with I/O in flight on it
  std::uint64_t removed_inflight = 0; ///< the I/Os in flight on those paths, summed
  std::uint64_t device_reloads = 0;   ///< what the mapped device counted
  bool all_active_at_end = false;
  bool timed_out = false;
};

/// A directory with a file `path0` and `count - 1` hard links to it; removed on destruction.
class path_set {
public:
  path_set(std::uint64_t bytes, int count) : paths_(std::size_t(count)) {
    char tmpl[] = "/tmp/mpath-e2e-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    for (int i = 0; i < count; ++i)
      paths_[std::size_t(i)] = dir_ + "/path" + std::to_string(i);
    int fd = ::open(paths_[0].c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ok_ = ::ftruncate(fd, off_t(bytes)) == 0;
      ::close(fd);
    }
    for (int i = 1; i < count; ++i)
      ok_ = ok_ && ::link(paths_[0].c_str(), paths_[std::size_t(i)].c_str()) == 0;
  }
  ~path_set() {
    for (auto& p : paths_)
      ::unlink(p.c_str());
    ::rmdir(dir_.c_str());
  }
  bool ok() const { return ok_; }
  const std::string& operator[](int i) const { return paths_[std::size_t(i)]; }

private:
  std::string dir_;
  std::vector<std::string> paths_;
  bool ok_ = false;
};

struct traits : mpath::default_traits {
  using hw_handlers = mpath::hw_handler_set<mpath::testing::scripted_handler>;
};

template <class Inner> report run(Inner& inner, const config& c) {
  using backend_type = mpath::adapters::fault_injector<Inner&>;
  using host_type = mpath::adapters::engine_host<backend_type, mpath::thread_executor, traits>;
  report out;
  const std::uint32_t block_size = 4096;
  const int tokens = c.reloads ? 6 : 4;
  path_set paths(c.blocks * block_size, tokens);
  REQUIRE(paths.ok());

  // The live table's groups, by token; a table keeps queue_if_no_path as the schedule has it.
  using layout = std::vector<std::vector<int>>;
  layout groups = {{0, 1}, {2, 3}};
  auto table_text = [&](const layout& gs, bool queue) {
    std::string t = c.bio ? (queue ? "3 queue_if_no_path queue_mode bio 0 " : "2 queue_mode bio 0 ")
                          : (queue ? "1 queue_if_no_path 1 scripted " : "0 1 scripted ");
    t += std::to_string(gs.size()) + " 1";
    for (const auto& g : gs) {
      t += " round-robin 0 " + std::to_string(g.size()) + " 1";
      for (int i : g)
        t += " " + paths[i] + " 1";
    }
    return t;
  };
  auto live_paths = [](const layout& gs) {
    std::vector<int> v;
    for (const auto& g : gs)
      v.insert(v.end(), g.begin(), g.end());
    return v;
  };

  mpath::thread_executor exec;
  backend_type backend(inner);
  auto host = host_type::create(backend, exec, table_text(groups, true));
  REQUIRE(host.has_value());
  std::atomic<std::uint64_t> failed_events{0};
  (*host)->set_event_listener(
      [](void* ctx, const mpath::path_event& e) noexcept {
        if (e.type == mpath::path_event::kind::path_failed)
          static_cast<std::atomic<std::uint64_t>*>(ctx)->fetch_add(1);
      },
      &failed_events);

  mpath::adapters::workload_options wo;
  wo.blocks = c.blocks;
  wo.block_size = block_size;
  wo.depth = c.depth;
  wo.seed = c.seed;
  // The workload submits from this thread only; its channel goes before the host, after the drain.
  std::unique_ptr<typename host_type::channel> channel;
  if (c.channel)
    channel = (*host)->make_channel();
  mpath::adapters::block_workload work(wo, [&](mpath::adapters::workload_io& io) {
    if (channel)
      (*host)->submit(io, *channel);
    else
      (*host)->submit(io);
  });
  int direct_fd = ::open(paths[0].c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(direct_fd >= 0);
  REQUIRE(work.prepare(direct_fd));

  // ---- the schedule's state; everything below runs on this thread
  std::mt19937_64 rng(c.seed * 7919 + 1);
  std::vector<bool> down(std::size_t(tokens), false); // by token
  bool queue_on = true;
  std::uint64_t epoch = 0; // odd while a window may be open
  bool medium_injected = false;
  const mpath::blk_status path_statuses[] = {mpath::blk_status::transport, mpath::blk_status::timeout,
                                             mpath::blk_status::ioerr, mpath::blk_status::offline};
  auto all_down_in = [&](const layout& gs, const std::vector<bool>& d) {
    for (int i : live_paths(gs))
      if (!d[std::size_t(i)])
        return false;
    return true;
  };
  auto in_table = [&](int i) {
    auto v = live_paths(groups);
    return std::find(v.begin(), v.end(), i) != v.end();
  };
  auto window = [&] { return !queue_on && all_down_in(groups, down); };
  auto message = [&](const std::string& m) { CHECK((*host)->engine().message(m).has_value()); };
  auto id = [&](int i) { // the fault injector's id of a token in the table, or one that was
    auto found = backend.find(paths[i]);
    REQUIRE(found.has_value());
    return *found;
  };
  auto take_down = [&](int i) {
    auto s = path_statuses[rng() % 4];
    if (rng() % 4 == 0)
      backend.fail_io(id(i), mpath::blk_status::transport, mpath::adapters::fault_when::after);
    else
      backend.fail_io(id(i), s);
    backend.fail_probe(id(i));
    if (rng() % 4 == 0 && in_table(i))
      message("fail_path " + paths[i]);
  };
  auto bring_up = [&](int i) {
    backend.path_up(id(i));
    // A failure injected while the path was down may still be on its way (a fail-after I/O the
    // path is doing now, also through an older table's descriptor); reported after the
    // reinstatement, it would rightly fail the path again. The path is back only once those have
    // reached the engine.
    for (int spin = 0; !backend.settled(id(i)) && spin < 100000; ++spin)
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    CHECK(backend.settled(id(i)));
    if (in_table(i))
      message("reinstate_path " + paths[i]);
  };
  // Moves to (new_down, new_queue). The epoch goes odd before a window opens and even again
  // after it closed: paths coming back and queueing turned on are applied first.
  auto change = [&](std::vector<bool> new_down, bool new_queue) {
    bool was = window();
    bool now = !new_queue && all_down_in(groups, new_down);
    if (!was && now) {
      ++epoch;
      ++out.windows;
    }
    if (new_queue && !queue_on)
      message("queue_if_no_path");
    for (int i = 0; i < tokens; ++i)
      if (down[std::size_t(i)] && !new_down[std::size_t(i)])
        bring_up(i);
    for (int i = 0; i < tokens; ++i)
      if (!down[std::size_t(i)] && new_down[std::size_t(i)])
        take_down(i);
    if (!new_queue && queue_on)
      message("fail_if_no_path");
    down = new_down;
    queue_on = new_queue;
    if (was && !now)
      ++epoch;
    if (all_down_in(groups, down))
      ++out.all_down;
  };
  // I/O the backend has in flight on a token's descriptors (every table's), when it counts them.
  auto in_flight = [&](int t) {
    std::int64_t n = 0;
    if constexpr (requires { inner.counters(0u).issued; }) {
      for (std::uint32_t i = 0; i < inner.path_count(); ++i)
        if (inner.device(i) == paths[t]) {
          auto k = inner.counters(i); // issued is read first: the difference may come out low
          n += std::int64_t(k.issued) - std::int64_t(k.completed) - std::int64_t(k.failed);
        }
    }
    return std::uint64_t(std::max<std::int64_t>(n, 0));
  };
  // Loads `gs` into the live device; the epoch moves as in `change` when the new table opens or
  // closes a window.
  auto reload = [&](const layout& gs) {
    bool was = window();
    bool now = !queue_on && all_down_in(gs, down);
    if (!was && now) {
      ++epoch;
      ++out.windows;
    }
    auto text = table_text(gs, queue_on);
    auto r = (*host)->reload(text);
    CHECK_MESSAGE(r.has_value(), text << ": " << (r ? std::string() : r.err().text));
    groups = gs;
    ++out.reloads;
    if (was && !now)
      ++epoch;
  };
  // One reload of the schedule: a hot add, a hot remove or a regroup, in turn. Returns the
  // completions it pumped.
  auto reload_step = [&]() -> std::size_t {
    auto live = live_paths(groups);
    std::vector<int> spare;
    for (int i = 0; i < tokens; ++i)
      if (!in_table(i))
        spare.push_back(i);
    auto gs = groups;
    std::size_t pumped = 0;
    std::optional<std::uint32_t> slowed;
    std::uint64_t kind = out.reloads % 3;
    if (kind == 0 && !spare.empty()) { // hot add, into a group or as a group of its own
      int t = spare[rng() % spare.size()];
      if (rng() % 4 == 0)
        gs.push_back({t});
      else
        gs[rng() % gs.size()].push_back(t);
      ++out.hot_adds;
    } else if (kind == 1 && live.size() > 2) { // hot remove of a path, preferably one that is up
      std::vector<int> up;
      for (int i : live)
        if (!down[std::size_t(i)])
          up.push_back(i);
      const auto& from = up.empty() ? live : up;
      int t = from[rng() % from.size()];
      // Its I/O waits 3 ms before reaching it: what is dispatched to it in the next millisecond
      // is still in flight when the table drops it.
      slowed = id(t);
      backend.set_latency(*slowed, 3'000'000);
      pumped = work.pump(std::chrono::milliseconds(1));
      std::uint64_t busy = in_flight(t) + backend.delayed(*slowed);
      for (auto& g : gs)
        g.erase(std::remove(g.begin(), g.end(), t), g.end());
      gs.erase(std::remove_if(gs.begin(), gs.end(), [](const auto& g) { return g.empty(); }), gs.end());
      ++out.hot_removes;
      if (busy > 0)
        ++out.removed_busy;
      out.removed_inflight += busy;
    } else { // the same paths in another order, in one to three groups
      std::shuffle(live.begin(), live.end(), rng);
      gs.assign(1 + rng() % std::min<std::size_t>(3, live.size()), {});
      for (std::size_t i = 0; i < live.size(); ++i)
        gs[i < gs.size() ? i : rng() % gs.size()].push_back(live[i]);
      ++out.regroups;
    }
    reload(gs);
    if (slowed)
      backend.set_latency(*slowed, 0);
    return pumped;
  };

  work.on_issue = [&](mpath::adapters::workload_io& io) { io.tag = epoch; };
  work.on_complete = [&](const mpath::adapters::workload_io& io) {
    if (io.status == mpath::blk_status::ok)
      return;
    if (io.status == mpath::blk_status::medium) {
      ++out.medium_errors;
      if (!medium_injected)
        ++out.unexplained_errors;
      return;
    }
    bool in_window = io.tag % 2 == 1 || epoch % 2 == 1 || io.tag != epoch;
    bool status_allowed =
        io.status == mpath::blk_status::ioerr ||
        (!c.bio && (io.status == mpath::blk_status::transport || io.status == mpath::blk_status::timeout ||
                    io.status == mpath::blk_status::offline));
    if (!in_window || !status_allowed) {
      ++out.unexplained_errors;
      MESSAGE("unexplained " << std::string(mpath::to_string(io.status)) << " issued in epoch " << io.tag << ", now "
                             << epoch);
    }
  };

  work.start();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::size_t completed = 0, since_action = 0;
  auto last_action = std::chrono::steady_clock::now();
  while (completed < c.ios) {
    std::size_t n = work.pump(std::chrono::milliseconds(1));
    completed += n;
    since_action += n;
    auto now = std::chrono::steady_clock::now();
    if (now > deadline) {
      out.timed_out = true;
      break;
    }
    if (since_action < 20 && now - last_action < std::chrono::milliseconds(2))
      continue;
    since_action = 0;
    last_action = now;
    ++out.actions;
    if (c.reloads && rng() % 8 == 0) {
      completed += reload_step();
      continue;
    }
    unsigned r = unsigned(rng() % 100);
    auto d = down;
    auto live = live_paths(groups);
    auto set_live = [&](bool v) {
      for (int i : live)
        d[std::size_t(i)] = v;
    };
    if (r < 30) { // one more path down
      int i = live[rng() % live.size()];
      d[std::size_t(i)] = true;
      change(d, queue_on);
    } else if (r < 55) { // one path back
      int i = live[rng() % live.size()];
      d[std::size_t(i)] = false;
      change(d, queue_on);
    } else if (r < 63) {
      set_live(true);
      change(d, queue_on);
    } else if (r < 75) {
      set_live(false);
      change(d, queue_on);
    } else if (r < 85) {
      change(down, !queue_on);
    } else if (r < 90) { // a non-path error on one I/O: must reach the application as it is
      int i = live[rng() % live.size()];
      if (!down[std::size_t(i)]) {
        medium_injected = true;
        backend.fail_next(id(i), 1, mpath::blk_status::medium);
      }
    } else if (r < 95) {
      message("switch_group " + std::to_string(1 + rng() % groups.size()));
    }
  }
  change(std::vector<bool>(std::size_t(tokens), false), true);
  out.lost = work.drain(std::chrono::seconds(10));
  auto t = work.stats();
  out.reads = t.reads;
  out.writes = t.writes;
  out.errors = t.errors;
  out.bad_data = t.bad_data;
  out.duplicates = t.duplicate_completions;
  out.verify_bad = work.verify(direct_fd);
  out.requeues = (*host)->requeues();
  out.path_failed_events = failed_events.load();
  out.device_reloads = (*host)->device().reloads();
  out.all_active_at_end = (*host)->engine().nr_valid_paths() == live_paths(groups).size();
  ::close(direct_fd);
  return out;
}

/// The checks every run must pass.
inline void check(const report& r, const config& c) {
  MESSAGE(std::string(c.bio ? "bio" : "request")
          << " mode" << std::string(c.channel ? " through a channel" : "") << ", seed " << c.seed << ": " << r.reads
          << " reads, " << r.writes << " writes, " << r.errors << " errors (" << r.medium_errors << " medium), "
          << r.actions << " actions, " << r.windows << " no-queue all-down windows, " << r.path_failed_events
          << " paths failed, " << r.requeues << " requeues");
  if (c.reloads)
    MESSAGE(r.reloads << " reloads: " << r.hot_adds << " hot adds, " << r.hot_removes << " hot removes ("
                      << r.removed_busy << " with I/O in flight on the path, " << r.removed_inflight << " I/Os), "
                      << r.regroups << " regroups");
  CAPTURE(c.bio);
  CAPTURE(c.channel);
  CAPTURE(c.seed);
  INFO("reads " << r.reads << " writes " << r.writes << " errors " << r.errors << " (medium " << r.medium_errors
                << ") actions " << r.actions << " windows " << r.windows << " all-down " << r.all_down
                << " PATH_FAILED " << r.path_failed_events << " requeues " << r.requeues << " reloads " << r.reloads
                << " (adds " << r.hot_adds << " removes " << r.hot_removes << " busy " << r.removed_busy << " regroups "
                << r.regroups << ")");
  CHECK_FALSE(r.timed_out);
  CHECK(r.reads + r.writes + r.errors >= c.ios);
  CHECK(r.lost == 0);               // every I/O completed...
  CHECK(r.duplicates == 0);         // ...exactly once
  CHECK(r.bad_data == 0);           // every read returned what was last written
  CHECK(r.verify_bad == 0);         // and so does the file afterwards
  CHECK(r.unexplained_errors == 0); // errors only where the engine's rules allow them
  CHECK(r.all_active_at_end);
  CHECK(r.path_failed_events > 0); // the schedule did fail paths
  CHECK(r.all_down > 0);
  CHECK(r.device_reloads == r.reloads); // every reload the schedule made took effect
  if (c.reloads) {
    CHECK(r.hot_adds > 0);
    CHECK(r.hot_removes > 0);
    CHECK(r.removed_busy > 0);
    CHECK(r.regroups > 0);
  } else {
    CHECK(r.reloads == 0);
  }
}

} // namespace integrity
