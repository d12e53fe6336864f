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

#include "../../examples/adapters/engine_host.hpp"
#include "../../examples/adapters/fault_injection.hpp"
#include "../../examples/adapters/workload.hpp"

#include <mpath/testing/scripted_handler.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <cstdio>
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
};

struct report {
  std::uint64_t reads = 0, writes = 0, errors = 0, medium_errors = 0;
  std::uint64_t bad_data = 0, duplicates = 0, lost = 0, verify_bad = 0;
  std::uint64_t unexplained_errors = 0; ///< path errors outside a window, or an unexpected status
  std::uint64_t actions = 0, windows = 0, all_down = 0, path_failed_events = 0;
  std::uint64_t requeues = 0;
  bool all_active_at_end = false;
  bool timed_out = false;
};

/// A directory with `data` and three hard links to it; removed on destruction.
class path_set {
public:
  explicit path_set(std::uint64_t bytes) {
    char tmpl[] = "/tmp/mpath-e2e-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    for (int i = 0; i < 4; ++i)
      paths_[i] = dir_ + "/path" + std::to_string(i);
    int fd = ::open(paths_[0].c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ok_ = ::ftruncate(fd, off_t(bytes)) == 0;
      ::close(fd);
    }
    for (int i = 1; i < 4; ++i)
      ok_ = ok_ && ::link(paths_[0].c_str(), paths_[i].c_str()) == 0;
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
  std::array<std::string, 4> paths_;
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
  path_set paths(c.blocks * block_size);
  REQUIRE(paths.ok());

  std::string table = c.bio ? "3 queue_if_no_path queue_mode bio 0 2 1 " : "1 queue_if_no_path 1 scripted 2 1 ";
  table +=
      "round-robin 0 2 1 " + paths[0] + " 1 " + paths[1] + " 1 round-robin 0 2 1 " + paths[2] + " 1 " + paths[3] + " 1";

  mpath::thread_executor exec;
  backend_type backend(inner);
  auto host = host_type::create(backend, exec, table);
  REQUIRE(host.has_value());
  auto& engine = (*host)->engine();
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
  std::array<bool, 4> down{};
  bool queue_on = true;
  std::uint64_t epoch = 0; // odd while a window may be open
  bool medium_injected = false;
  const mpath::blk_status path_statuses[] = {mpath::blk_status::transport, mpath::blk_status::timeout,
                                             mpath::blk_status::ioerr, mpath::blk_status::offline};
  auto window = [&] { return !queue_on && down[0] && down[1] && down[2] && down[3]; };
  auto message = [&](const std::string& m) { CHECK(engine.message(m).has_value()); };
  auto take_down = [&](int i) {
    auto s = path_statuses[rng() % 4];
    if (rng() % 4 == 0)
      backend.fail_io(std::uint32_t(i), mpath::blk_status::transport, mpath::adapters::fault_when::after);
    else
      backend.fail_io(std::uint32_t(i), s);
    backend.fail_probe(std::uint32_t(i));
    if (rng() % 4 == 0)
      message("fail_path " + paths[i]);
  };
  auto bring_up = [&](int i) {
    backend.path_up(std::uint32_t(i));
    // A failure injected while the path was down may still be on its way (a fail-after I/O the
    // path is doing now); reported after the reinstatement, it would rightly fail the path again.
    // The path is back only once those have reached the engine.
    for (int spin = 0; !backend.settled(std::uint32_t(i)) && spin < 100000; ++spin)
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    CHECK(backend.settled(std::uint32_t(i)));
    message("reinstate_path " + paths[i]);
  };
  // Moves to (new_down, new_queue). The epoch goes odd before a window opens and even again
  // after it closed: paths coming back and queueing turned on are applied first.
  auto change = [&](std::array<bool, 4> new_down, bool new_queue) {
    bool was = window();
    bool now = !new_queue && new_down[0] && new_down[1] && new_down[2] && new_down[3];
    if (!was && now) {
      ++epoch;
      ++out.windows;
    }
    if (new_queue && !queue_on)
      message("queue_if_no_path");
    for (int i = 0; i < 4; ++i)
      if (down[std::size_t(i)] && !new_down[std::size_t(i)])
        bring_up(i);
    for (int i = 0; i < 4; ++i)
      if (!down[std::size_t(i)] && new_down[std::size_t(i)])
        take_down(i);
    if (!new_queue && queue_on)
      message("fail_if_no_path");
    down = new_down;
    queue_on = new_queue;
    if (was && !now)
      ++epoch;
    if (down[0] && down[1] && down[2] && down[3])
      ++out.all_down;
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
    unsigned r = unsigned(rng() % 100);
    auto d = down;
    if (r < 30) { // one more path down
      int i = int(rng() % 4);
      d[std::size_t(i)] = true;
      change(d, queue_on);
    } else if (r < 55) { // one path back
      int i = int(rng() % 4);
      d[std::size_t(i)] = false;
      change(d, queue_on);
    } else if (r < 63) {
      change({true, true, true, true}, queue_on);
    } else if (r < 75) {
      change({false, false, false, false}, queue_on);
    } else if (r < 85) {
      change(down, !queue_on);
    } else if (r < 90) { // a non-path error on one I/O: must reach the application as it is
      int i = int(rng() % 4);
      if (!down[std::size_t(i)]) {
        medium_injected = true;
        backend.fail_next(std::uint32_t(i), 1, mpath::blk_status::medium);
      }
    } else if (r < 95) {
      message("switch_group " + std::to_string(1 + rng() % 2));
    }
  }
  change({false, false, false, false}, true);
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
  out.all_active_at_end = engine.nr_valid_paths() == 4;
  ::close(direct_fd);
  return out;
}

/// The checks every run must pass.
inline void check(const report& r, const config& c) {
  MESSAGE(std::string(c.bio ? "bio" : "request")
          << " mode" << (c.channel ? " through a channel" : "") << ", seed " << c.seed << ": " << r.reads << " reads, "
          << r.writes << " writes, " << r.errors << " errors (" << r.medium_errors << " medium), " << r.actions
          << " actions, " << r.windows << " no-queue all-down windows, " << r.path_failed_events << " paths failed, "
          << r.requeues << " requeues");
  CAPTURE(c.bio);
  CAPTURE(c.channel);
  CAPTURE(c.seed);
  INFO("reads " << r.reads << " writes " << r.writes << " errors " << r.errors << " (medium " << r.medium_errors
                << ") actions " << r.actions << " windows " << r.windows << " all-down " << r.all_down
                << " PATH_FAILED " << r.path_failed_events << " requeues " << r.requeues);
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
}

} // namespace integrity
