// The NBD adapter against real nbdkit servers on 127.0.0.1 (and a Unix socket): data round trips,
// server errors through nbdkit's error filter, the per-I/O timeout against its delay filter, a
// killed server, and end-to-end integrity through the engine over two servers of one file while a
// seeded schedule injects each fault kind. Where `ip netns` works (root), a black-holed link that
// only the timeout can see. Built only when libnbd's header is there; the servers need `nbdkit`.

#if __has_include(<libnbd.h>)

#include "../../examples/adapters/engine_host.hpp"
#include "../../examples/adapters/nbd.hpp"
#include "../../examples/adapters/workload.hpp"

#include "collector.hpp"
#include "nbd_fixture.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

using mpath::blk_status;
using mpath::adapters::block_io;
using mpath::adapters::nbd_backend;
using mpath::adapters::nbd_errno_to_blk_status;
using mpath::adapters::nbd_options;
using namespace nbd_tests;

static_assert(mpath::IoBackend<nbd_backend>);

namespace {

constexpr std::uint32_t bs = 4096;

bool have_nbdkit() {
  static const bool ok = run("nbdkit --version");
  return ok;
}

/// A data file of `bytes` zeroes in `dir`.
std::string make_file(const temp_dir& dir, const std::string& name, std::uint64_t bytes) {
  std::string p = dir / name;
  int fd = ::open(p.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) {
    if (::ftruncate(fd, off_t(bytes)) != 0)
      p.clear();
    ::close(fd);
  }
  return p;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

/// One I/O with its own block buffer, for tests that drive the backend without an engine.
struct test_io {
  std::vector<unsigned char> data = std::vector<unsigned char>(bs);
  block_io io;
  test_io(block_io::op op, std::uint64_t offset) {
    io.opcode = op;
    io.buffer = data.data();
    io.offset = offset;
    io.nr_bytes = bs;
  }
};

} // namespace

TEST_CASE("nbd: the errno mapping of NBD commands") {
  struct errno_case {
    int err;
    blk_status want;
  };
  // The server judged the request or the export: every path would answer the same.
  const errno_case non_path[] = {{EINVAL, blk_status::target},    {ERANGE, blk_status::target},
                                 {EOVERFLOW, blk_status::target}, {EPERM, blk_status::target},
                                 {ENOSPC, blk_status::nospc},     {ENOTSUP, blk_status::notsupp}};
  const errno_case path[] = {{EIO, blk_status::ioerr},           {ETIMEDOUT, blk_status::timeout},
                             {ENOTCONN, blk_status::transport},  {ECONNRESET, blk_status::transport},
                             {ESHUTDOWN, blk_status::transport}, {ENOMEM, blk_status::resource}};
  CHECK(nbd_errno_to_blk_status(0) == blk_status::ok);
  for (const auto& c : non_path) {
    CAPTURE(c.err);
    CHECK(nbd_errno_to_blk_status(c.err) == c.want);
    CHECK_FALSE(mpath::is_path_error(c.want));
  }
  for (const auto& c : path) {
    CAPTURE(c.err);
    CHECK(nbd_errno_to_blk_status(c.err) == c.want);
    CHECK(mpath::is_path_error(c.want));
  }
}

TEST_CASE("nbd: reads and writes round-trip through one path, over TCP and a Unix socket" *
          doctest::skip(!have_nbdkit())) {
  temp_dir dir;
  REQUIRE(dir.ok());
  std::string file = make_file(dir, "data", 1 << 20);
  nbdkit_server tcp({.file = file, .log = dir / "tcp.log"});
  nbdkit_server unix_srv({.file = file, .unix_socket = dir / "sock", .log = dir / "unix.log"});
  REQUIRE(tcp.start());
  REQUIRE(unix_srv.start());

  nbd_backend backend({.timeout_ms = 2000});
  adapter_tests::collector c;
  backend.set_sink(c.sink());
  const std::string tokens[] = {tcp.token(), "nbd://" + tcp.token(), unix_srv.token(),
                                "nbd+unix:///?socket=" + unix_srv.token()};
  std::vector<std::unique_ptr<test_io>> writes, reads; // all alive to the end: the collector keys by address
  for (std::uint32_t t = 0; t < 4; ++t) {
    CAPTURE(tokens[t]);
    auto h = backend.open_path(tokens[t]);
    REQUIRE(h.has_value());
    CHECK(h->id == t);
    CHECK(backend.export_size(t) == (1 << 20));
    std::size_t first = writes.size();
    for (std::uint64_t b = 0; b < 8; ++b) { // all eight in flight at once
      std::uint64_t block = t * 8 + b;
      writes.push_back(std::make_unique<test_io>(block_io::op::write, block * bs));
      mpath::adapters::fill_block(writes.back()->data.data(), bs, 42, block, t + 1);
      backend.submit(*h, writes.back()->io);
    }
    for (std::size_t i = first; i < writes.size(); ++i) {
      CHECK(c.wait(writes[i]->io) == blk_status::ok);
      CHECK(c.reports(writes[i]->io) == 1);
    }
    for (std::uint64_t b = 0; b < 8; ++b) {
      reads.push_back(std::make_unique<test_io>(block_io::op::read, (t * 8 + b) * bs));
      backend.submit(*h, reads.back()->io);
    }
    for (std::uint64_t b = 0; b < 8; ++b) {
      auto& r = *reads[first + b];
      CHECK(c.wait(r.io) == blk_status::ok);
      CHECK(c.reports(r.io) == 1);
      auto id = mpath::adapters::identify_block(r.data.data(), bs);
      CHECK(id.intact);
      CHECK(id.block == t * 8 + b);
      CHECK(id.version == t + 1);
    }
    CHECK(backend.probe(*h) == blk_status::ok);
    CHECK(backend.counters(t).issued == 16);
    CHECK(backend.counters(t).completed == 16);
  }
  // A read past the end of the export is the request's fault, not the path's.
  test_io past(block_io::op::read, 1 << 20);
  nbd_backend::handle_type h0{0};
  backend.submit(h0, past.io);
  CHECK(c.wait(past.io) == blk_status::target);
  CHECK(backend.connected(0));

  auto refused = backend.open_path("127.0.0.1:" + std::to_string(free_port()));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.err().code == ECONNREFUSED);
}

TEST_CASE("nbd: the first I/O of a path opened while the loop is awake is issued at once" *
          doctest::skip(!have_nbdkit())) {
  // open_path publishes the path and rings the loop; a loop that had read the path count just
  // before could go to sleep without looking at the new path, and the first submit (which rings
  // only a sleeping loop) then waited for the next unrelated wake-up: seen as a read that took
  // seconds in about one run in twenty.
  temp_dir dir;
  REQUIRE(dir.ok());
  std::string file = make_file(dir, "data", 1 << 20);
  nbdkit_server srv({.file = file, .unix_socket = dir / "sock", .log = dir / "srv.log"});
  REQUIRE(srv.start());
  int slow = 0;
  for (int round = 0; round < 100; ++round) {
    test_io r(block_io::op::read, 0); // outlives the backend, which completes it if the wait gave up
    adapter_tests::collector c;
    nbd_backend backend({.timeout_ms = 2000});
    backend.set_sink(c.sink());
    auto h = backend.open_path(srv.token());
    REQUIRE(h.has_value());
    auto t0 = std::chrono::steady_clock::now();
    backend.submit(*h, r.io);
    CHECK(c.wait(r.io) == blk_status::ok);
    if (ms_since(t0) > 1000)
      ++slow;
  }
  CHECK(slow == 0);
}

TEST_CASE("nbd: server errors through nbdkit's error filter map to block statuses" * doctest::skip(!have_nbdkit())) {
  struct error_case {
    const char* error;
    blk_status want;
  };
  const error_case cases[] = {{"EIO", blk_status::ioerr},       {"ENOSPC", blk_status::nospc},
                              {"EINVAL", blk_status::target},   {"EPERM", blk_status::target},
                              {"ENOMEM", blk_status::resource}, {"ESHUTDOWN", blk_status::transport}};
  temp_dir dir;
  REQUIRE(dir.ok());
  std::string file = make_file(dir, "data", 1 << 20);
  std::string trigger = dir / "fail";
  for (const auto& e : cases) {
    CAPTURE(e.error);
    // A Unix socket: a TCP port picked here could be one another test's server is restarted on
    // (CTest runs two tests at a time), and this test would then talk to that server.
    nbdkit_server srv({.file = file,
                       .unix_socket = dir / (std::string("sock-") + e.error),
                       .error_file = trigger,
                       .error = e.error,
                       .log = dir / "err.log"});
    REQUIRE(srv.start());
    nbd_backend backend({.timeout_ms = 2000});
    adapter_tests::collector c;
    backend.set_sink(c.sink());
    auto h = backend.open_path(srv.token());
    REQUIRE(h.has_value());

    test_io before(block_io::op::read, 0);
    backend.submit(*h, before.io);
    CHECK(c.wait(before.io) == blk_status::ok);

    touch(trigger); // the path's errors on
    test_io r(block_io::op::read, bs), w(block_io::op::write, 2 * bs);
    backend.submit(*h, r.io);
    backend.submit(*h, w.io);
    CHECK(c.wait(r.io) == e.want);
    CHECK(c.wait(w.io) == e.want);
    CHECK(c.reports(r.io) == 1);
    CHECK(c.reports(w.io) == 1);
    CHECK(backend.probe(*h) == e.want); // what a path checker sees
    CHECK(backend.counters(0).failed == 2);

    ::unlink(trigger.c_str()); // and off again: the same connection works
    test_io after(block_io::op::read, 0);
    backend.submit(*h, after.io);
    auto s = c.wait(after.io);
    if (s != blk_status::ok) { // a server error that also ended the connection: reconnect
      CHECK(mpath::is_path_error(e.want));
      CHECK(backend.probe(*h) == blk_status::ok);
    } else {
      CHECK(backend.connected(0));
      CHECK(backend.connects(0) == 1);
    }
    CHECK(backend.probe(*h) == blk_status::ok);
  }
}

TEST_CASE("nbd: a command not answered in time completes as timeout exactly once, the connection is "
          "closed, a probe reconnects" *
          doctest::skip(!have_nbdkit())) {
  temp_dir dir;
  REQUIRE(dir.ok());
  std::string file = make_file(dir, "data", 1 << 20);
  nbdkit_server srv({.file = file, .delay = "rdelay=1", .log = dir / "delay.log"}); // reads take 1 s
  REQUIRE(srv.start());
  nbd_backend backend({.timeout_ms = 200, .connect_timeout_ms = 1000});
  adapter_tests::collector c;
  backend.set_sink(c.sink());
  auto h = backend.open_path(srv.token());
  REQUIRE(h.has_value());

  test_io w(block_io::op::write, 0); // writes are not delayed: the connection works
  mpath::adapters::fill_block(w.data.data(), bs, 7, 0, 1);
  backend.submit(*h, w.io);
  CHECK(c.wait(w.io) == blk_status::ok);

  auto t0 = std::chrono::steady_clock::now();
  test_io first(block_io::op::read, 0), second(block_io::op::read, bs);
  backend.submit(*h, first.io);
  // Far enough behind that a loop delayed by a loaded machine still finds only `first` expired.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  backend.submit(*h, second.io);
  CHECK(c.wait(first.io) == blk_status::timeout);
  double waited = ms_since(t0);
  CHECK(c.wait(second.io) == blk_status::transport); // in flight on the dropped connection
  MESSAGE("timeout 200 ms: the I/O completed as timeout after " << waited << " ms");
  CHECK(waited >= 195);
  CHECK(waited < 600);
  CHECK_FALSE(backend.connected(0));
  CHECK(backend.timeouts(0) == 1);

  // The server answers after 1 s; the connection is gone, so the answer can never count.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK(c.reports(first.io) == 1);
  CHECK(c.reports(second.io) == 1);

  // A dead path fails its I/O at once, until it is connected again.
  test_io dead(block_io::op::write, 0);
  auto t1 = std::chrono::steady_clock::now();
  backend.submit(*h, dead.io);
  CHECK(c.wait(dead.io) == blk_status::transport);
  CHECK(ms_since(t1) < 100);
  CHECK(backend.connects(0) == 1);

  // The probe reconnects, but the server is still slow: its read times out too, within bounds.
  auto t2 = std::chrono::steady_clock::now();
  CHECK(backend.probe(*h) == blk_status::timeout);
  CHECK(ms_since(t2) < 1000);
  CHECK(backend.connects(0) == 2);
  CHECK_FALSE(backend.connected(0));

  // The server is healthy again: the next probe reconnects and succeeds; I/O flows.
  srv.stop();
  srv.config().delay.clear();
  REQUIRE(srv.start());
  CHECK(backend.probe(*h) == blk_status::ok);
  CHECK(backend.connects(0) == 3);
  CHECK(backend.connected(0));
  test_io again(block_io::op::read, 0);
  backend.submit(*h, again.io);
  CHECK(c.wait(again.io) == blk_status::ok);
  auto id = mpath::adapters::identify_block(again.data.data(), bs);
  CHECK(id.intact);
  CHECK(id.version == 1);
}

TEST_CASE("nbd: a write that timed out is not applied after its retry (nbdkit abandons a delayed "
          "request of a closed connection)" *
          doctest::skip(!have_nbdkit())) {
  temp_dir dir;
  REQUIRE(dir.ok());
  std::string file = make_file(dir, "data", 1 << 20);
  nbdkit_server srv({.file = file, .delay = "wdelay=1", .log = dir / "delay.log"});
  REQUIRE(srv.start());
  nbd_backend backend({.timeout_ms = 200, .connect_timeout_ms = 1000});
  adapter_tests::collector c;
  backend.set_sink(c.sink());
  auto h = backend.open_path(srv.token());
  REQUIRE(h.has_value());

  test_io stale(block_io::op::write, 0);
  mpath::adapters::fill_block(stale.data.data(), bs, 9, 0, 1);
  backend.submit(*h, stale.io);
  CHECK(c.wait(stale.io) == blk_status::timeout);
  // The retry, through another path: here straight into the file.
  std::vector<unsigned char> retry(bs);
  mpath::adapters::fill_block(retry.data(), bs, 9, 0, 2);
  int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, retry.data(), bs, 0) == ssize_t(bs));
  std::this_thread::sleep_for(std::chrono::milliseconds(1300)); // past the server's delay
  std::vector<unsigned char> now(bs);
  REQUIRE(::pread(fd, now.data(), bs, 0) == ssize_t(bs));
  ::close(fd);
  auto id = mpath::adapters::identify_block(now.data(), bs);
  CHECK(id.intact);
  CHECK(id.version == 2); // the stale version 1 never landed
}

TEST_CASE("nbd: killing the server completes the I/O in flight as path errors, exactly once" *
          doctest::skip(!have_nbdkit())) {
  temp_dir dir;
  REQUIRE(dir.ok());
  std::string file = make_file(dir, "data", 1 << 20);
  nbdkit_server srv({.file = file, .delay = "rdelay=2", .log = dir / "kill.log"}); // reads stay in flight
  REQUIRE(srv.start());
  nbd_backend backend({.timeout_ms = 5000});
  adapter_tests::collector c;
  backend.set_sink(c.sink());
  auto h = backend.open_path(srv.token());
  REQUIRE(h.has_value());

  std::vector<std::unique_ptr<test_io>> ios;
  for (int i = 0; i < 8; ++i) {
    ios.push_back(std::make_unique<test_io>(block_io::op::read, std::uint64_t(i) * bs));
    backend.submit(*h, ios.back()->io);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto t0 = std::chrono::steady_clock::now();
  srv.stop(SIGKILL); // the kernel resets the connection
  for (auto& io : ios) {
    auto s = c.wait(io->io);
    REQUIRE(s.has_value());
    CHECK(mpath::is_path_error(*s));
    CHECK(*s == blk_status::transport);
  }
  double took = ms_since(t0);
  MESSAGE("server killed: 8 I/Os in flight completed as transport after " << took << " ms");
  CHECK(took < 1000); // the reset, not the 5 s timeout
  CHECK_FALSE(backend.connected(0));
  CHECK(backend.timeouts(0) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (auto& io : ios)
    CHECK(c.reports(io->io) == 1);

  CHECK(mpath::is_path_error(backend.probe(*h))); // nothing listens: reconnect refused
  srv.config().delay.clear();
  REQUIRE(srv.start()); // restarted on the same port
  CHECK(backend.probe(*h) == blk_status::ok);
  test_io again(block_io::op::read, 0);
  backend.submit(*h, again.io);
  CHECK(c.wait(again.io) == blk_status::ok);
}

// ---------------------------------------------------------------- through the engine

namespace {

/// The engine over NBD paths with the checksummed workload, and what a test needs to inject faults
/// while the I/O keeps flowing: every wait pumps the workload.
class rig {
public:
  using host_type = mpath::adapters::engine_host<nbd_backend>;

  rig(nbd_backend& backend, const std::vector<std::string>& tokens, int data_fd, std::uint64_t seed)
      : backend_(backend), tokens_(tokens), fd_(data_fd) {
    std::string table = "1 queue_if_no_path 0 1 1 round-robin 0 " + std::to_string(tokens.size()) + " 1";
    for (auto& t : tokens)
      table += " " + t + " 1";
    auto h = host_type::create(backend, exec_, table);
    REQUIRE(h.has_value());
    host_ = std::move(*h);
    host_->set_event_listener(&on_event, this);
    mpath::adapters::workload_options wo;
    wo.blocks = 512;
    wo.block_size = bs;
    wo.depth = 16;
    wo.seed = seed;
    work_ = std::make_unique<mpath::adapters::block_workload>(
        wo, [this](mpath::adapters::workload_io& io) { host_->submit(io); });
    work_->on_complete = [this](const mpath::adapters::workload_io& io) {
      done_ns_.push_back(io.done_ns);
      if (io.opcode != block_io::op::read || io.status != blk_status::ok)
        return;
      auto id = mpath::adapters::identify_block(io.buffer, bs);
      if (!id.intact || id.block != io.block || id.version != io.version) // (no failed writes: no "maybe")
        MESSAGE("read of block " << io.block << " through path " << io.path_id << " expected version " << io.version
                                 << ", got " << std::string(id.intact ? "" : "damaged ") << "block " << id.block
                                 << " version " << id.version << " at " << io.done_ns / 1000000 << " ms");
    };
    REQUIRE(work_->prepare(fd_));
  }
  ~rig() {
    work_->drain(std::chrono::seconds(10));
    host_.reset();
  }

  host_type& host() { return *host_; }
  mpath::adapters::block_workload& work() { return *work_; }

  void pump_for(std::chrono::milliseconds d) {
    auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end)
      work_->pump(std::chrono::milliseconds(1));
  }
  bool pump_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > end)
        return false;
      work_->pump(std::chrono::milliseconds(1));
    }
    return true;
  }
  /// Runs `fn` on a thread of its own (probes block) while the workload keeps going.
  void pump_while(const std::function<void()>& fn) {
    std::atomic<bool> done{false};
    std::thread t([&] {
      fn();
      done = true;
    });
    pump_until([&] { return done.load(); }, std::chrono::seconds(30));
    t.join();
  }

  /// When path `i` was first failed at or after `since_ns` (0: not yet).
  std::uint64_t failed_at(std::size_t i, std::uint64_t since_ns) {
    std::lock_guard guard(mutex_);
    for (auto& e : events_)
      if (e.failed && e.device == tokens_[i] && e.ns >= since_ns)
        return e.ns;
    return 0;
  }
  std::uint64_t failures() {
    std::lock_guard guard(mutex_);
    return std::uint64_t(std::count_if(events_.begin(), events_.end(), [](auto& e) { return e.failed; }));
  }
  /// The longest time without a completion between `from_ns` and `to_ns`.
  double max_gap_ms(std::uint64_t from_ns, std::uint64_t to_ns) const {
    std::uint64_t prev = from_ns, gap = 0;
    for (std::uint64_t t : done_ns_) {
      if (t < from_ns)
        continue;
      if (t > to_ns)
        break;
      gap = std::max(gap, t - prev);
      prev = t;
    }
    return double(std::max(gap, to_ns > prev ? to_ns - prev : 0)) / 1e6;
  }

  void message(const std::string& m) { CHECK(host_->engine().message(m).has_value()); }
  /// As multipathd's checker would: probe the path until it answers, then reinstate it.
  void bring_back(std::size_t i) {
    bool ok = false;
    pump_while([&] {
      nbd_backend::handle_type h{std::uint32_t(i)};
      for (int n = 0; n < 100 && !ok; ++n) {
        ok = backend_.probe(h) == blk_status::ok;
        if (!ok)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
    CHECK(ok);
    message("reinstate_path " + tokens_[i]);
  }

  /// The end: I/O drained, every block checked. Returns {lost, wrong blocks}.
  std::pair<std::size_t, std::uint64_t> finish() {
    std::size_t lost = work_->drain(std::chrono::seconds(10));
    return {lost, work_->verify(fd_)};
  }

private:
  struct event {
    std::uint64_t ns;
    bool failed;
    std::string device;
  };
  static void on_event(void* ctx, const mpath::path_event& e) noexcept {
    auto* self = static_cast<rig*>(ctx);
    std::lock_guard guard(self->mutex_);
    self->events_.push_back(
        {mpath::adapters::steady_ns(), e.type == mpath::path_event::kind::path_failed, std::string(e.device)});
  }

  nbd_backend& backend_;
  std::vector<std::string> tokens_;
  int fd_;
  mpath::thread_executor exec_;
  std::unique_ptr<host_type> host_;
  std::unique_ptr<mpath::adapters::block_workload> work_;
  std::vector<std::uint64_t> done_ns_; // driving thread only
  std::mutex mutex_;
  std::vector<event> events_; // guarded by mutex_
};

struct fault_stats {
  std::vector<double> detect_ms, gap_ms;
  void add(double d, double g) {
    detect_ms.push_back(d);
    gap_ms.push_back(g);
  }
};

std::string summary(const fault_stats& s) {
  if (s.detect_ms.empty())
    return "not injected";
  auto [dmin, dmax] = std::minmax_element(s.detect_ms.begin(), s.detect_ms.end());
  double gmax = *std::max_element(s.gap_ms.begin(), s.gap_ms.end());
  char buf[160];
  std::snprintf(buf, sizeof buf, "%zu times, path failed %.1f to %.1f ms after the fault, longest I/O gap %.1f ms",
                s.detect_ms.size(), *dmin, *dmax, gmax);
  return buf;
}

} // namespace

TEST_CASE("nbd integrity: two nbdkit servers of one file, a seeded schedule of real faults" *
          doctest::skip(!have_nbdkit())) {
  const std::uint64_t seed = 11;
  temp_dir dir;
  REQUIRE(dir.ok());
  std::string file = make_file(dir, "lun", 512 * bs);
  REQUIRE(!file.empty());
  std::array<std::string, 2> triggers{dir / "fail0", dir / "fail1"};
  std::array<std::unique_ptr<nbdkit_server>, 2> srv;
  for (int i = 0; i < 2; ++i) {
    srv[std::size_t(i)] = std::make_unique<nbdkit_server>(server_config{
        .file = file, .error_file = triggers[std::size_t(i)], .log = dir / ("srv" + std::to_string(i) + ".log")});
    REQUIRE(srv[std::size_t(i)]->start());
  }
  int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  nbd_backend backend({.timeout_ms = 200, .connect_timeout_ms = 1000});
  std::vector<std::string> tokens{srv[0]->token(), srv[1]->token()};
  std::map<std::string, fault_stats> stats;
  std::size_t lost = 0;
  std::uint64_t wrong = 0;
  mpath::adapters::block_workload::totals totals;
  {
    rig r(backend, tokens, fd, seed);
    auto& engine = r.host().engine();
    std::mt19937_64 rng(seed);
    std::vector<std::string> kinds{"error file", "kill + restart", "delay + timeout",
                                   "error file", "kill + restart", "delay + timeout"};
    std::shuffle(kinds.begin(), kinds.end(), rng);
    r.work().start();
    auto restart = [&](std::size_t v, const std::string& delay) {
      srv[v]->stop(SIGKILL); // a failed, idle path: nothing to wait for
      srv[v]->config().delay = delay;
      REQUIRE(srv[v]->spawn());
      CHECK(r.pump_until([&] { return srv[v]->ready(); }, std::chrono::seconds(5)));
    };
    for (const auto& kind : kinds) {
      std::size_t v = rng() % 2;
      CAPTURE(kind);
      CAPTURE(v);
      r.pump_for(std::chrono::milliseconds(100 + rng() % 200));
      CHECK(engine.nr_valid_paths() == 2);
      std::uint64_t t0 = 0;
      if (kind == "error file") { // every request fails with EIO while the file exists
        t0 = mpath::adapters::steady_ns();
        touch(triggers[v]);
      } else if (kind == "kill + restart") {
        t0 = mpath::adapters::steady_ns();
        srv[v]->stop(SIGKILL);
      } else { // a server that stops answering in time: only the timeout sees it
        r.message("fail_path " + tokens[v]);
        restart(v, "rdelay=1 wdelay=1");
        nbd_backend::handle_type h{std::uint32_t(v)};
        CHECK(backend.reconnect(h) == blk_status::ok);
        t0 = mpath::adapters::steady_ns();
        r.message("reinstate_path " + tokens[v]);
      }
      std::uint64_t t_fail = 0;
      CHECK(r.pump_until([&] { return (t_fail = r.failed_at(v, t0)) != 0; }, std::chrono::seconds(3)));
      r.pump_for(std::chrono::milliseconds(100));
      if (t_fail) {
        double detect = double(t_fail - t0) / 1e6;
        stats[kind].add(detect, r.max_gap_ms(t0, t_fail + 100'000'000));
        if (kind == "delay + timeout") {
          CHECK(backend.timeouts(std::uint32_t(v)) >= 1);
          CHECK(detect >= 190);
        }
      }
      r.pump_for(std::chrono::milliseconds(50 + rng() % 200)); // the fault lasts
      if (kind == "error file")
        ::unlink(triggers[v].c_str());
      else if (kind == "kill + restart")
        restart(v, "");
      else
        restart(v, "");
      r.bring_back(v);
    }
    r.pump_for(std::chrono::milliseconds(200));
    CHECK(engine.nr_valid_paths() == 2);
    CHECK(r.failures() >= kinds.size());
    std::tie(lost, wrong) = r.finish();
    totals = r.work().stats();
  }
  ::close(fd);
  MESSAGE("seed " << seed << ": " << totals.reads << " reads, " << totals.writes << " writes, " << totals.errors
                  << " errors, " << lost << " lost, " << totals.duplicate_completions << " completed twice, "
                  << totals.bad_data << " bad reads, " << wrong << " wrong blocks");
  for (auto& [kind, s] : stats)
    MESSAGE("failover, " << kind << ": " << summary(s));
  CHECK(stats.size() == 3);
  CHECK(totals.reads + totals.writes > 1000);
  CHECK(totals.errors == 0);                // a path was always left: no error reaches the application
  CHECK(lost == 0);                         // every I/O completed...
  CHECK(totals.duplicate_completions == 0); // ...exactly once
  CHECK(totals.bad_data == 0);              // every read saw the last write
  CHECK(wrong == 0);                        // and so does the file afterwards
}

namespace {

/// A network namespace with a veth pair (host 10.213.0.1, namespace 10.213.0.2); removed on
/// destruction. `ok()` is false when namespaces are not available (not root, no `ip`).
class netns {
public:
  netns() {
    if (::geteuid() != 0 || !run("ip -V"))
      return;
    name_ = "mpnbd" + std::to_string(::getpid());
    host_if_ = "mpnh" + std::to_string(::getpid() % 100000);
    ns_if_ = "mpnn" + std::to_string(::getpid() % 100000);
    ok_ = run("ip netns add " + name_) && run("ip link add " + host_if_ + " type veth peer name " + ns_if_) &&
          run("ip link set " + ns_if_ + " netns " + name_) && run("ip addr add 10.213.0.1/30 dev " + host_if_) &&
          run("ip link set " + host_if_ + " up") && in_ns("ip addr add 10.213.0.2/30 dev " + ns_if_) &&
          in_ns("ip link set " + ns_if_ + " up") && in_ns("ip link set lo up");
  }
  netns(const netns&) = delete;
  netns& operator=(const netns&) = delete;
  ~netns() {
    if (name_.empty())
      return;
    run("ip link del " + host_if_);
    run("ip netns del " + name_);
  }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  bool in_ns(const std::string& cmd) { return run("ip netns exec " + name_ + " " + cmd); }
  /// The near end's link goes down: what the path sends is dropped (its queue purged), no reset
  /// reaches either side, nothing answers. Not the far end: with it down, the near end's qdisc holds
  /// the packets and delivers them when the link returns, stale writes included (docs/nbd.md).
  bool link(bool up) { return run("ip link set " + host_if_ + (up ? " up" : " down")); }

private:
  std::string name_, host_if_, ns_if_;
  bool ok_ = false;
};

} // namespace

TEST_CASE("nbd: a black-holed path (link down, no reset) is seen by the timeout only" * doctest::skip(!have_nbdkit())) {
  netns ns;
  if (!ns.ok()) {
    MESSAGE("skipped: network namespaces are not available here (needs root and `ip netns`)");
    return;
  }
  temp_dir dir;
  REQUIRE(dir.ok());
  std::string file = make_file(dir, "lun", 512 * bs);
  nbdkit_server far({.file = file, .ip = "10.213.0.2", .port = 10809, .netns = ns.name(), .log = dir / "far.log"});
  nbdkit_server near({.file = file, .log = dir / "near.log"});
  REQUIRE(far.start());
  REQUIRE(near.start());
  int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  nbd_backend backend(
      {.timeout_ms = 200, .connect_timeout_ms = 1000}); // a fresh veth: the first connect may wait for ARP
  std::vector<std::string> tokens{"nbd://" + far.token(), near.token()};
  std::size_t lost = 0;
  std::uint64_t wrong = 0;
  mpath::adapters::block_workload::totals totals;
  {
    rig r(backend, tokens, fd, 5);
    r.work().start();
    r.pump_for(std::chrono::milliseconds(300));
    CHECK(backend.counters(0).completed > 0);
    std::uint64_t t0 = mpath::adapters::steady_ns();
    REQUIRE(ns.link(false));
    std::uint64_t t_fail = 0;
    CHECK(r.pump_until([&] { return (t_fail = r.failed_at(0, t0)) != 0; }, std::chrono::seconds(3)));
    if (t_fail) {
      MESSAGE("failover, black hole: path failed " << double(t_fail - t0) / 1e6 << " ms after the link went down, "
                                                   << "longest I/O gap " << r.max_gap_ms(t0, t_fail + 100'000'000)
                                                   << " ms");
      CHECK(backend.timeouts(0) >= 1);
    }
    // While the link is down a probe (reconnect, then read) fails, within bounds.
    auto t1 = std::chrono::steady_clock::now();
    blk_status s = blk_status::ok;
    r.pump_while([&] {
      nbd_backend::handle_type h{0};
      s = backend.probe(h);
    });
    CHECK(mpath::is_path_error(s));
    CHECK(ms_since(t1) < 1500);
    r.pump_for(std::chrono::milliseconds(100));
    REQUIRE(ns.link(true));
    r.bring_back(0);
    r.pump_for(std::chrono::milliseconds(300));
    CHECK(r.host().engine().nr_valid_paths() == 2);
    std::tie(lost, wrong) = r.finish();
    totals = r.work().stats();
  }
  ::close(fd);
  CHECK(totals.errors == 0);
  CHECK(lost == 0);
  CHECK(totals.duplicate_completions == 0);
  CHECK(totals.bad_data == 0);
  CHECK(wrong == 0);
}

#endif // __has_include(<libnbd.h>)
