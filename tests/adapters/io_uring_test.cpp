// The io_uring adapter: how a CQE result becomes a status (EINTR and short transfers issue the
// rest again), and real rings on a temporary file: registered files per path, I/O from many
// threads, the probe, O_DIRECT. Skipped where io_uring cannot be set up (EPERM, ENOSYS, EINVAL).

#if MPATH_HAVE_LIBURING

#include "../../examples/adapters/io_uring.hpp"

#include "collector.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

using mpath::blk_status;
using mpath::adapters::block_io;
using mpath::adapters::uring_backend;

static_assert(mpath::IoBackend<uring_backend>);

namespace {

/// liburing's test contract: a ring that cannot be set up for lack of permission or support
/// means skip, not fail.
bool uring_usable() {
  static const bool usable = [] {
    io_uring ring;
    int e = io_uring_queue_init(4, &ring, 0);
    if (e == 0) {
      io_uring_queue_exit(&ring);
      return true;
    }
    return !(e == -EPERM || e == -ENOSYS || e == -EINVAL);
  }();
  return usable;
}

struct temp_file {
  char name[32] = "/tmp/mpath-uring-XXXXXX";
  int fd = ::mkstemp(name);
  explicit temp_file(off_t size) { REQUIRE(::ftruncate(fd, size) == 0); }
  ~temp_file() {
    ::close(fd);
    ::unlink(name);
  }
};

struct aligned_buffer {
  void* p;
  explicit aligned_buffer(std::size_t n) : p(std::aligned_alloc(4096, n)) { std::memset(p, 0, n); }
  ~aligned_buffer() { std::free(p); }
  unsigned char* bytes() const { return static_cast<unsigned char*>(p); }
};

} // namespace

TEST_CASE("io_uring: a CQE result becomes a status or the rest is issued again") {
  block_io io;
  io.nr_bytes = 4096;
  CHECK_FALSE(uring_backend::progress(io, -EINTR).has_value());
  CHECK(io.done_bytes == 0);
  CHECK_FALSE(uring_backend::progress(io, 1000).has_value()); // short transfer
  CHECK(io.done_bytes == 1000);
  CHECK(uring_backend::progress(io, 3096) == blk_status::ok);
  block_io e;
  e.nr_bytes = 4096;
  CHECK(uring_backend::progress(e, -EIO) == blk_status::ioerr);
  CHECK(uring_backend::progress(e, -ENXIO) == blk_status::transport);
  CHECK(uring_backend::progress(e, -ENOSPC) == blk_status::nospc);
  CHECK(uring_backend::progress(e, -EILSEQ) == blk_status::protection);
  CHECK(uring_backend::progress(e, -EAGAIN) == blk_status::again);
  CHECK(uring_backend::progress(e, 0) == blk_status::target); // read at the end of the device
  block_io w;
  w.opcode = block_io::op::write;
  w.nr_bytes = 512;
  CHECK(uring_backend::progress(w, 0) == blk_status::ioerr);
}

TEST_CASE("io_uring: reads and writes on two registered paths from several threads" * doctest::skip(!uring_usable())) {
  temp_file f(1 << 20);
  adapter_tests::collector done;
  mpath::adapters::uring_options o;
  o.rings = 2;
  o.entries = 16; // smaller than the burst: exercises the full-queue path
  auto backend = uring_backend::create(o);
  REQUIRE(backend.has_value());
  auto& b = **backend;
  b.set_sink(done.sink());
  auto p0 = b.open_path(f.name), p1 = b.open_path(f.name);
  REQUIRE(p0.has_value());
  REQUIRE(p1.has_value());
  CHECK(p0->fd != p1->fd);
  CHECK(p1->id == 1);

  constexpr int n = 128;
  std::vector<std::vector<unsigned char>> bufs(n, std::vector<unsigned char>(4096));
  std::vector<block_io> ios(n);
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t)
    submitters.emplace_back([&, t] {
      for (int i = t; i < n; i += 4) {
        std::fill(bufs[i].begin(), bufs[i].end(), std::uint8_t(i));
        ios[i].opcode = block_io::op::write;
        ios[i].buffer = bufs[i].data();
        ios[i].nr_bytes = 4096;
        ios[i].offset = std::uint64_t(i) * 4096;
        b.submit(i % 2 ? *p1 : *p0, ios[i]);
      }
    });
  for (auto& t : submitters)
    t.join();
  for (auto& io : ios) {
    CHECK(done.wait(io) == blk_status::ok);
    CHECK(done.reports(io) == 1);
  }
  CHECK(b.counters(0).completed + b.counters(1).completed == n);

  std::vector<block_io> reads(n);
  std::vector<std::vector<unsigned char>> in(n, std::vector<unsigned char>(4096));
  for (int i = 0; i < n; ++i) {
    reads[i].buffer = in[i].data();
    reads[i].nr_bytes = 4096;
    reads[i].offset = std::uint64_t(i) * 4096;
    b.submit(i % 2 ? *p0 : *p1, reads[i]);
  }
  for (int i = 0; i < n; ++i) {
    CHECK(done.wait(reads[i]) == blk_status::ok);
    CHECK(in[i] == bufs[i]);
  }
  MESSAGE("io_uring_submit calls carrying more than one SQE: " << b.batched_submits());

  CHECK(b.probe(*p0) == blk_status::ok);
  block_io past_end;
  std::vector<unsigned char> tmp(4096);
  past_end.buffer = tmp.data();
  past_end.nr_bytes = 4096;
  past_end.offset = 1 << 20;
  b.submit(*p0, past_end);
  CHECK(done.wait(past_end) == blk_status::target);
}

TEST_CASE("io_uring: O_DIRECT paths and alignment" * doctest::skip(!uring_usable())) {
  temp_file f(1 << 20);
  adapter_tests::collector done;
  mpath::adapters::uring_options o;
  o.direct = true;
  auto backend = uring_backend::create(o);
  REQUIRE(backend.has_value());
  auto& b = **backend;
  b.set_sink(done.sink());
  auto p = b.open_path(f.name);
  if (!p) { // some file systems (older tmpfs) refuse O_DIRECT
    MESSAGE("O_DIRECT not supported here: " << p.err().code);
    CHECK(p.err().text == "error getting device");
    return;
  }
  aligned_buffer buf(8192);
  std::memset(buf.p, 0x5a, 8192);
  block_io w;
  w.opcode = block_io::op::write;
  w.buffer = buf.p;
  w.nr_bytes = 8192;
  w.offset = 4096;
  b.submit(*p, w);
  CHECK(done.wait(w) == blk_status::ok);
  block_io bad;
  bad.buffer = buf.bytes() + 512;
  bad.nr_bytes = 4096;
  b.submit(*p, bad);
  CHECK(done.wait(bad) == blk_status::notsupp); // the request's fault, never the path's
  CHECK(b.probe(*p) == blk_status::ok);
  std::vector<unsigned char> back(8192);
  REQUIRE(::pread(f.fd, back.data(), back.size(), 4096) == 8192);
  CHECK(back[0] == 0x5a);
  CHECK(back[8191] == 0x5a);
}

TEST_CASE("io_uring: a path that cannot be opened is the kernel's `error getting device`" *
          doctest::skip(!uring_usable())) {
  auto backend = uring_backend::create();
  REQUIRE(backend.has_value());
  auto p = (*backend)->open_path("/nonexistent/mpath-path");
  REQUIRE_FALSE(p.has_value());
  CHECK(p.err().code == ENOENT);
  CHECK(p.err().text == "error getting device");
}

#endif // MPATH_HAVE_LIBURING
