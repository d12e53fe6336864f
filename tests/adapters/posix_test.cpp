// The POSIX adapter through its syscall seam: the errno mapping, EINTR and short-transfer loops,
// end of device, alignment, the probe; and once on a real temporary file.

#include "../../examples/adapters/posix.hpp"

#include "collector.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

using mpath::blk_status;
using mpath::adapters::block_io;
using mpath::adapters::errno_to_blk_status;

static_assert(mpath::IoBackend<mpath::adapters::posix_backend<>>);

TEST_CASE("errno_to_blk_status: the one errno mapping of the POSIX and io_uring adapters") {
  struct errno_case {
    int err;
    blk_status want;
  };
  // Not path errors (kernel-target.md §4.4): the same answer on every path.
  const errno_case non_path[] = {
      {EOPNOTSUPP, blk_status::notsupp},  {ENOSPC, blk_status::nospc},     {EDQUOT, blk_status::nospc},
      {EFBIG, blk_status::nospc},         {EREMOTEIO, blk_status::target}, {EROFS, blk_status::target},
      {EBADE, blk_status::resv_conflict}, {ENODATA, blk_status::medium},   {EILSEQ, blk_status::protection},
  };
  // Path errors.
  const errno_case path[] = {
      {EIO, blk_status::ioerr},
      {ENXIO, blk_status::transport},
      {ENODEV, blk_status::offline},
      {ETIMEDOUT, blk_status::timeout},
      {ENOLINK, blk_status::transport},
      {ENOTCONN, blk_status::transport},
      {ECONNRESET, blk_status::transport},
      {ECONNREFUSED, blk_status::transport},
      {ECONNABORTED, blk_status::transport},
      {EPIPE, blk_status::transport},
      {ESHUTDOWN, blk_status::transport},
      {EHOSTUNREACH, blk_status::transport},
      {EHOSTDOWN, blk_status::transport},
      {ENETUNREACH, blk_status::transport},
      {ENETDOWN, blk_status::transport},
      {ENETRESET, blk_status::transport},
      {EBADF, blk_status::offline},
      {ENOMEM, blk_status::resource},
      {ENOBUFS, blk_status::resource},
      {EBUSY, blk_status::dev_resource},
      {EAGAIN, blk_status::again},
      {ETOOMANYREFS, blk_status::zone_open_resource},
      {EOVERFLOW, blk_status::zone_active_resource},
      {ETIME, blk_status::duration_limit},
      {EINVAL, blk_status::inval},
      {EPERM, blk_status::ioerr},
      {12345, blk_status::ioerr},
  };
  CHECK(errno_to_blk_status(0) == blk_status::ok);
  for (const auto& c : non_path) {
    CAPTURE(c.err);
    CHECK(errno_to_blk_status(c.err) == c.want);
    CHECK_FALSE(mpath::is_path_error(c.want));
  }
  for (const auto& c : path) {
    CAPTURE(c.err);
    CHECK(errno_to_blk_status(c.err) == c.want);
    CHECK(mpath::is_path_error(c.want));
  }
}

namespace {

/// The seam: a scripted answer per call, then the real thing on an in-memory disk.
struct fake_posix {
  struct state {
    std::mutex mutex;
    std::deque<std::int64_t> script; ///< answers: > 0 at most that many bytes, 0 EOF, < 0 -errno
    std::vector<unsigned char> disk = std::vector<unsigned char>(1 << 16);
    std::vector<std::uint64_t> offsets; ///< of every call
    int open_error = 0;
    int closed = 0;
  };
  std::shared_ptr<state> s = std::make_shared<state>();

  int open(const char*, int) noexcept { return s->open_error ? -s->open_error : 7; }
  int close(int) noexcept {
    ++s->closed;
    return 0;
  }
  std::int64_t pread(int, void* buf, std::size_t n, std::uint64_t off) noexcept {
    return io(n, off, [&](std::size_t m) { std::memcpy(buf, s->disk.data() + off, m); });
  }
  std::int64_t pwrite(int, const void* buf, std::size_t n, std::uint64_t off) noexcept {
    return io(n, off, [&](std::size_t m) { std::memcpy(s->disk.data() + off, buf, m); });
  }
  void script(std::initializer_list<std::int64_t> answers) {
    std::lock_guard guard(s->mutex);
    s->script.insert(s->script.end(), answers);
  }
  std::vector<std::uint64_t> offsets() {
    std::lock_guard guard(s->mutex);
    return s->offsets;
  }

private:
  template <class F> std::int64_t io(std::size_t n, std::uint64_t off, F move) {
    std::lock_guard guard(s->mutex);
    s->offsets.push_back(off);
    std::int64_t answer = std::int64_t(n);
    if (!s->script.empty()) {
      answer = s->script.front();
      s->script.pop_front();
    }
    if (answer <= 0)
      return answer;
    std::size_t m = std::min<std::size_t>(n, std::size_t(answer));
    if (off + m > s->disk.size())
      return 0;
    move(m);
    return std::int64_t(m);
  }
};

struct posix_rig {
  fake_posix sys;
  adapter_tests::collector done;
  mpath::adapters::posix_backend<fake_posix> backend;
  mpath::adapters::posix_backend<fake_posix>::handle_type path;

  explicit posix_rig(mpath::adapters::posix_options o = one_worker()) : backend(o, sys) {
    backend.set_sink(done.sink());
    path = *backend.open_path("/dev/fake");
  }
  static mpath::adapters::posix_options one_worker() {
    mpath::adapters::posix_options o;
    o.workers = 1;
    return o;
  }
  blk_status run(block_io& io) {
    backend.submit(path, io);
    auto s = done.wait(io);
    REQUIRE(s.has_value());
    CHECK(done.reports(io) == 1);
    return *s;
  }
};

} // namespace

TEST_CASE("posix: EINTR restarts the call and short transfers continue") {
  posix_rig rig;
  std::vector<unsigned char> out(4096, 0xab), in(4096);
  block_io w;
  w.opcode = block_io::op::write;
  w.buffer = out.data();
  w.nr_bytes = out.size();
  w.offset = 8192;
  rig.sys.script({-EINTR, 1000, -EINTR, -EINTR, 96}); // then the rest in one call
  CHECK(rig.run(w) == blk_status::ok);
  CHECK(rig.sys.offsets() == std::vector<std::uint64_t>{8192, 8192, 9192, 9192, 9192, 9288});
  CHECK(w.done_bytes == 4096);

  block_io r;
  r.buffer = in.data();
  r.nr_bytes = in.size();
  r.offset = 8192;
  rig.sys.script({512, -EINTR, 512}); // short reads
  CHECK(rig.run(r) == blk_status::ok);
  CHECK(in == out);
}

TEST_CASE("posix: errors end the loop with their status") {
  posix_rig rig;
  std::vector<unsigned char> buf(4096);
  std::deque<block_io> ios; // one I/O object per call: the collector tells them apart by address
  auto read_with = [&](std::initializer_list<std::int64_t> answers) {
    rig.sys.script(answers);
    auto& r = ios.emplace_back();
    r.buffer = buf.data();
    r.nr_bytes = buf.size();
    return rig.run(r);
  };
  CHECK(read_with({-EIO}) == blk_status::ioerr);
  CHECK(read_with({-ENXIO}) == blk_status::transport);
  CHECK(read_with({-ENODEV}) == blk_status::offline);
  CHECK(read_with({-ETIMEDOUT}) == blk_status::timeout);
  CHECK(read_with({-ENOSPC}) == blk_status::nospc);
  CHECK(read_with({-EOPNOTSUPP}) == blk_status::notsupp);
  CHECK(read_with({-EILSEQ}) == blk_status::protection);
  CHECK(read_with({2048, -EIO}) == blk_status::ioerr); // an error after partial progress
  CHECK(read_with({-EINTR, -ENODATA}) == blk_status::medium);
  // End of the device: the same on every path, so not a path error.
  CHECK(read_with({1024, 0}) == blk_status::target);
  CHECK_FALSE(mpath::is_path_error(blk_status::target));
}

TEST_CASE("posix: misaligned or bufferless requests fail without a system call") {
  mpath::adapters::posix_options o = posix_rig::one_worker();
  o.alignment = 4096;
  posix_rig rig(o);
  std::vector<unsigned char> raw(3 * 4096);
  auto* aligned = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(raw.data()) + 4095) / 4096 * 4096);
  block_io a;
  a.buffer = aligned + 1;
  a.nr_bytes = 4096;
  CHECK(rig.run(a) == blk_status::notsupp);
  block_io b;
  b.buffer = aligned;
  b.nr_bytes = 4096;
  b.offset = 512;
  CHECK(rig.run(b) == blk_status::notsupp);
  block_io c;
  c.nr_bytes = 4096;
  CHECK(rig.run(c) == blk_status::notsupp);
  CHECK(rig.sys.offsets().empty());
  block_io d;
  d.buffer = aligned;
  d.nr_bytes = 4096;
  CHECK(rig.run(d) == blk_status::ok);
}

TEST_CASE("posix: the probe reads one block on the caller's thread") {
  posix_rig rig;
  CHECK(rig.backend.probe(rig.path) == blk_status::ok);
  rig.sys.script({-EINTR, 100});
  CHECK(rig.backend.probe(rig.path) == blk_status::ok);
  rig.sys.script({-EIO});
  CHECK(rig.backend.probe(rig.path) == blk_status::ioerr);
  rig.sys.script({-ENXIO});
  CHECK(rig.backend.probe(rig.path) == blk_status::transport);
}

TEST_CASE("posix: open failures carry the errno, descriptors are closed") {
  fake_posix sys;
  {
    mpath::adapters::posix_backend<fake_posix> backend({}, sys);
    sys.s->open_error = EACCES;
    auto h = backend.open_path("/dev/none");
    REQUIRE_FALSE(h.has_value());
    CHECK(h.err().code == EACCES);
    CHECK(h.err().text == "error getting device");
    sys.s->open_error = 0;
    CHECK(backend.open_path("/dev/a").has_value());
    CHECK(backend.open_path("/dev/b").has_value());
    CHECK(backend.path_count() == 2);
  }
  CHECK(sys.s->closed == 2);
}

TEST_CASE("posix: real pread/pwrite on a temporary file from many threads") {
  char name[] = "/tmp/mpath-posix-XXXXXX";
  int fd = ::mkstemp(name);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, 1 << 20) == 0);
  {
    adapter_tests::collector done;
    mpath::adapters::posix_backend<> backend;
    backend.set_sink(done.sink());
    auto p0 = backend.open_path(name), p1 = backend.open_path(name);
    REQUIRE(p0.has_value());
    REQUIRE(p1.has_value());
    CHECK(p0->fd != p1->fd);
    constexpr int n = 64;
    std::vector<std::vector<unsigned char>> bufs(n, std::vector<unsigned char>(4096));
    std::vector<block_io> ios(n);
    for (int i = 0; i < n; ++i) {
      std::fill(bufs[i].begin(), bufs[i].end(), std::uint8_t(i));
      ios[i].opcode = block_io::op::write;
      ios[i].buffer = bufs[i].data();
      ios[i].nr_bytes = 4096;
      ios[i].offset = std::uint64_t(i) * 4096;
      backend.submit(i % 2 ? *p1 : *p0, ios[i]);
    }
    for (auto& io : ios)
      CHECK(done.wait(io) == blk_status::ok);
    CHECK(backend.counters(0).completed + backend.counters(1).completed == n);
    CHECK(backend.probe(*p1) == blk_status::ok);
  }
  std::vector<unsigned char> check(4096);
  for (int i = 0; i < 64; ++i) {
    REQUIRE(::pread(fd, check.data(), check.size(), off_t(i) * 4096) == 4096);
    CHECK(check[0] == i);
    CHECK(check[4095] == i);
  }
  ::close(fd);
  ::unlink(name);
}
