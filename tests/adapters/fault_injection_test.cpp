// fault_injector around a real backend: failing a path's I/O before or after it reaches the path,
// the next N I/Os only, latency, probe failures, and path_down/path_up; faults kept per token.

#include "../../examples/adapters/fault_injection.hpp"

#include "../../examples/adapters/posix.hpp"
#include "collector.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

using mpath::blk_status;
using mpath::adapters::block_io;
using mpath::adapters::fault_when;
using injector = mpath::adapters::fault_injector<mpath::adapters::posix_backend<>>;

static_assert(mpath::IoBackend<injector>);
static_assert(mpath::IoBackend<mpath::adapters::fault_injector<mpath::adapters::posix_backend<>&>>);

namespace {
struct injector_rig {
  char name[32] = "/tmp/mpath-fault-XXXXXX";
  int fd = ::mkstemp(name);
  std::string link = std::string(name) + "-b"; // the second path: another name of the file
  adapter_tests::collector done;
  std::deque<block_io> ios; // outlive the backend: it may still finish I/O when it goes
  std::vector<unsigned char> buf = std::vector<unsigned char>(4096, 0x11);
  injector backend;
  injector::handle_type a, b;

  injector_rig() {
    REQUIRE(::ftruncate(fd, 1 << 16) == 0);
    REQUIRE(::link(name, link.c_str()) == 0);
    backend.set_sink(done.sink());
    a = *backend.open_path(name);
    b = *backend.open_path(link);
  }
  ~injector_rig() {
    ::close(fd);
    ::unlink(name);
    ::unlink(link.c_str());
  }
  block_io& write_at(std::uint64_t off) {
    auto& io = ios.emplace_back();
    io.opcode = block_io::op::write;
    io.buffer = buf.data();
    io.nr_bytes = buf.size();
    io.offset = off;
    return io;
  }
  blk_status run(injector::handle_type& h, block_io& io) {
    backend.submit(h, io);
    auto s = done.wait(io);
    REQUIRE(s.has_value());
    CHECK(done.reports(io) == 1);
    return *s;
  }
  unsigned char on_disk(std::uint64_t off) {
    unsigned char c = 0;
    REQUIRE(::pread(fd, &c, 1, off_t(off)) == 1);
    return c;
  }
};
} // namespace

TEST_CASE("fault_injector: paths are found by their token and numbered in open order") {
  injector_rig rig;
  CHECK(rig.backend.path_count() == 2);
  CHECK(rig.backend.find(rig.name) == 0u); // the first of the two
  CHECK(rig.backend.find(rig.link) == 1u);
  CHECK_FALSE(rig.backend.find("/dev/none").has_value());
  CHECK(rig.a.id == 0);
  CHECK(rig.b.id == 1);
}

TEST_CASE("fault_injector: a token opened again, as by a reload, is the same path with the same faults") {
  injector_rig rig;
  auto again = rig.backend.open_path(rig.link); // a new descriptor of the same path
  REQUIRE(again.has_value());
  CHECK(again->id == 1);
  CHECK(again->inner.fd != rig.b.inner.fd);
  CHECK(rig.backend.path_count() == 2);
  CHECK(rig.backend.inner().path_count() == 3);

  rig.backend.fail_io(1, blk_status::offline);
  CHECK(rig.run(rig.b, rig.write_at(0)) == blk_status::offline);  // the old handle
  CHECK(rig.run(*again, rig.write_at(0)) == blk_status::offline); // and the new one
  CHECK(rig.run(rig.a, rig.write_at(0)) == blk_status::ok);
  CHECK(rig.backend.injected(1) == 2);
  CHECK(rig.on_disk(0) == 0x11);

  // A fail-after I/O still on its way through the old descriptor keeps the token unsettled.
  rig.backend.fail_io(1, blk_status::timeout, fault_when::after);
  rig.backend.set_latency(1, 50'000'000);
  auto& io = rig.write_at(4096);
  rig.backend.submit(rig.b, io);
  rig.backend.path_up(1);
  CHECK_FALSE(rig.backend.settled(1));
  CHECK(rig.done.wait(io) == blk_status::timeout);
  for (int i = 0; i < 1000 && !rig.backend.settled(1); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(rig.backend.settled(1));
  rig.backend.set_latency(1, 0);
  CHECK(rig.run(*again, rig.write_at(8192)) == blk_status::ok);
}

TEST_CASE("fault_injector: failing before the path leaves the data alone") {
  injector_rig rig;
  rig.backend.fail_io(0, blk_status::transport);
  CHECK(rig.run(rig.a, rig.write_at(0)) == blk_status::transport);
  CHECK(rig.on_disk(0) == 0);
  CHECK(rig.run(rig.b, rig.write_at(0)) == blk_status::ok); // the other path is fine
  CHECK(rig.on_disk(0) == 0x11);
  CHECK(rig.backend.injected(0) == 1);
  CHECK(rig.backend.inner().counters(0).issued == 0);
  rig.backend.clear_io(0);
  CHECK(rig.run(rig.a, rig.write_at(4096)) == blk_status::ok);
}

TEST_CASE("fault_injector: failing after the path did the I/O") {
  injector_rig rig;
  rig.backend.fail_io(1, blk_status::timeout, fault_when::after);
  CHECK(rig.run(rig.b, rig.write_at(8192)) == blk_status::timeout);
  CHECK(rig.on_disk(8192) == 0x11); // the write landed; only the answer was lost
  CHECK(rig.backend.injected(1) == 1);
  CHECK(rig.run(rig.a, rig.write_at(0)) == blk_status::ok);
}

TEST_CASE("fault_injector: only the next N I/Os fail with any status") {
  injector_rig rig;
  rig.backend.fail_next(0, 2, blk_status::medium);
  CHECK(rig.run(rig.a, rig.write_at(0)) == blk_status::medium);
  CHECK(rig.run(rig.a, rig.write_at(0)) == blk_status::medium);
  CHECK(rig.run(rig.a, rig.write_at(0)) == blk_status::ok);
  CHECK(rig.backend.injected(0) == 2);
}

TEST_CASE("fault_injector: latency delays I/O before it reaches the path") {
  injector_rig rig;
  rig.backend.set_latency(0, 30'000'000); // 30 ms
  auto& io = rig.write_at(0);
  auto t0 = mpath::adapters::steady_ns();
  CHECK(rig.run(rig.a, io) == blk_status::ok);
  CHECK(mpath::adapters::steady_ns() - t0 >= 30'000'000);
  CHECK(io.submit_ns - t0 >= 30'000'000); // the path saw it only after the delay
  rig.backend.set_latency(0, 0);
  // I/O still waiting out its latency when the injector goes away is handed to the path.
  rig.backend.set_latency(1, 10'000'000'000);
  auto& late = rig.write_at(4096);
  rig.backend.submit(rig.b, late);
  CHECK(rig.backend.delayed(1) == 1);
  CHECK(rig.backend.delayed(0) == 0);
}

TEST_CASE("fault_injector: probes fail on demand, path_down and path_up") {
  injector_rig rig;
  CHECK(rig.backend.probe(rig.a) == blk_status::ok);
  rig.backend.fail_probe(0, blk_status::offline);
  CHECK(rig.backend.probe(rig.a) == blk_status::offline);
  CHECK(rig.backend.probe(rig.b) == blk_status::ok);
  rig.backend.clear_probe(0);
  CHECK(rig.backend.probe(rig.a) == blk_status::ok);

  rig.backend.path_down(1);
  CHECK(rig.backend.probe(rig.b) == blk_status::transport);
  CHECK(rig.run(rig.b, rig.write_at(0)) == blk_status::transport);
  rig.backend.path_up(1);
  CHECK(rig.backend.probe(rig.b) == blk_status::ok);
  CHECK(rig.run(rig.b, rig.write_at(0)) == blk_status::ok);
}

TEST_CASE("fault_injector: a path is settled once no injected failure is still on its way") {
  injector_rig rig;
  CHECK(rig.backend.settled(0));
  rig.backend.fail_io(0, blk_status::transport, fault_when::after);
  rig.backend.set_latency(0, 50'000'000); // the doomed I/O is still in flight for 50 ms
  auto& io = rig.write_at(0);
  rig.backend.submit(rig.a, io);
  rig.backend.path_up(0); // the cable is back, but the answer of that I/O is not in yet
  CHECK_FALSE(rig.backend.settled(0));
  CHECK(rig.done.wait(io) == blk_status::transport);
  for (int i = 0; i < 1000 && !rig.backend.settled(0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(rig.backend.settled(0));
}
