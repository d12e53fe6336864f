// The SG_IO adapter through its seam: sense decoding (fixed and descriptor format), host, driver
// and SCSI status bytes, the command blocks, the read/write loop (short transfers, splitting,
// retries), the TEST UNIT READY probe, and a real-device test when MPATH_SG_DEVICE names one.

#include "../../examples/adapters/sg_io.hpp"

#include "collector.hpp"
#include "sg_fixtures.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

using namespace sg_fixtures;
using mpath::blk_status;
using mpath::adapters::block_io;
using outcome = mpath::adapters::scsi::outcome;

namespace {

outcome decode(const recorded& r) {
  return scsi::decode(r.err, r.host, r.driver, r.status, std::span<const std::uint8_t>(r.sense));
}

struct sense_case {
  const char* what;
  std::uint8_t key, asc, ascq;
  outcome want;
};

// Every sense case the adapter decodes, as fixtures in both sense formats.
const sense_case sense_cases[] = {
    {"no sense", scsi::no_sense, 0x00, 0x00, {blk_status::ok, false}},
    {"recovered error", scsi::recovered_error, 0x17, 0x01, {blk_status::ok, false}},
    {"not ready: becoming ready", scsi::not_ready, 0x04, 0x01, {blk_status::ioerr, true}},
    {"not ready: ALUA transitioning", scsi::not_ready, 0x04, 0x0a, {blk_status::transport, true}},
    {"not ready: ALUA standby", scsi::not_ready, 0x04, 0x0b, {blk_status::transport, false}},
    {"not ready: ALUA unavailable", scsi::not_ready, 0x04, 0x0c, {blk_status::transport, false}},
    {"not ready: manual intervention", scsi::not_ready, 0x04, 0x03, {blk_status::ioerr, false}},
    {"not ready: medium not present", scsi::not_ready, 0x3a, 0x00, {blk_status::ioerr, false}},
    {"medium error: unrecovered read", scsi::medium_error, 0x11, 0x00, {blk_status::medium, false}},
    {"hardware error", scsi::hardware_error, 0x44, 0x00, {blk_status::ioerr, false}},
    {"illegal request: invalid opcode", scsi::illegal_request, 0x20, 0x00, {blk_status::target, false}},
    {"illegal request: LBA out of range", scsi::illegal_request, 0x21, 0x00, {blk_status::target, false}},
    {"illegal request: LUN not supported", scsi::illegal_request, 0x25, 0x00, {blk_status::offline, false}},
    {"unit attention: ALUA state changed", scsi::unit_attention, 0x2a, 0x06, {blk_status::transport, false}},
    {"unit attention: ALUA transition failed", scsi::unit_attention, 0x2a, 0x07, {blk_status::transport, false}},
    {"unit attention: inquiry data changed", scsi::unit_attention, 0x3f, 0x03, {blk_status::transport, false}},
    {"unit attention: power on / reset", scsi::unit_attention, 0x29, 0x00, {blk_status::ioerr, true}},
    {"unit attention: parameters changed", scsi::unit_attention, 0x2a, 0x01, {blk_status::ioerr, true}},
    {"data protect: write protected", scsi::data_protect, 0x27, 0x00, {blk_status::target, false}},
    {"data protect: space allocation failed", scsi::data_protect, 0x27, 0x07, {blk_status::nospc, false}},
    {"data protect: zone resources", scsi::data_protect, 0x55, 0x0e, {blk_status::zone_open_resource, false}},
    {"blank check", scsi::blank_check, 0x00, 0x00, {blk_status::medium, false}},
    {"copy aborted", scsi::copy_aborted, 0x00, 0x00, {blk_status::target, false}},
    {"aborted command: guard check failed", scsi::aborted_command, 0x10, 0x01, {blk_status::protection, false}},
    {"aborted command: other", scsi::aborted_command, 0x47, 0x00, {blk_status::transport, true}},
    {"volume overflow", scsi::volume_overflow, 0x00, 0x00, {blk_status::nospc, false}},
    {"miscompare", scsi::miscompare, 0x1d, 0x00, {blk_status::medium, false}},
};

} // namespace

TEST_CASE("sg_io: sense data parses in fixed and descriptor format") {
  auto f = scsi::parse_sense(fixed_sense(scsi::unit_attention, 0x2a, 0x06));
  CHECK(f.valid);
  CHECK_FALSE(f.descriptor);
  CHECK_FALSE(f.deferred);
  CHECK(f.key == scsi::unit_attention);
  CHECK(f.asc == 0x2a);
  CHECK(f.ascq == 0x06);
  auto d = scsi::parse_sense(descriptor_sense(scsi::medium_error, 0x11, 0x04));
  CHECK(d.valid);
  CHECK(d.descriptor);
  CHECK(d.key == scsi::medium_error);
  CHECK(d.asc == 0x11);
  CHECK(d.ascq == 0x04);
  CHECK(scsi::parse_sense(fixed_sense(scsi::not_ready, 4, 1, true)).deferred);
  CHECK(scsi::parse_sense(descriptor_sense(scsi::not_ready, 4, 1, true)).deferred);
  CHECK_FALSE(scsi::parse_sense(std::vector<std::uint8_t>{}).valid);
  CHECK_FALSE(scsi::parse_sense(std::vector<std::uint8_t>{0x7f, 0, 0}).valid); // vendor format
  auto shortfixed = scsi::parse_sense(std::vector<std::uint8_t>{0x70, 0, 0x03});
  CHECK(shortfixed.valid); // key only, no ASC
  CHECK(shortfixed.key == scsi::medium_error);
  CHECK(shortfixed.asc == 0);
}

TEST_CASE("sg_io: every sense case decodes the same in both formats") {
  for (const auto& c : sense_cases) {
    CAPTURE(c.what);
    CHECK(decode(check_fixed(c.key, c.asc, c.ascq)) == c.want);
    CHECK(decode(check_descriptor(c.key, c.asc, c.ascq)) == c.want);
  }
  // The rule: medium errors and illegal requests are not path errors; not ready,
  // transport disruptions and ALUA unit attentions are.
  CHECK_FALSE(mpath::is_path_error(decode(check_fixed(scsi::medium_error, 0x11, 0)).status));
  CHECK_FALSE(mpath::is_path_error(decode(check_fixed(scsi::illegal_request, 0x24, 0)).status));
  CHECK(mpath::is_path_error(decode(check_fixed(scsi::not_ready, 0x04, 0x0b)).status));
  CHECK(mpath::is_path_error(decode(host(scsi::did_transport_disrupted)).status));
  CHECK(mpath::is_path_error(decode(check_fixed(scsi::unit_attention, 0x2a, 0x06)).status));
  // Deferred errors concern an earlier command: retry this one.
  CHECK(decode(check(fixed_sense(scsi::medium_error, 0x11, 0, true))) == outcome{blk_status::ioerr, true});
  CHECK(decode(check(descriptor_sense(scsi::medium_error, 0x11, 0, true))) == outcome{blk_status::ioerr, true});
  // CHECK CONDITION without usable sense data.
  CHECK(decode(scsi_status(scsi::status_check_condition)) == outcome{blk_status::ioerr, false});
}

TEST_CASE("sg_io: host byte and driver byte and SCSI status and ioctl errno decode") {
  struct host_case {
    std::uint16_t did;
    outcome want;
  };
  const host_case hosts[] = {
      {scsi::did_no_connect, {blk_status::transport, false}},
      {scsi::did_bus_busy, {blk_status::transport, true}},
      {scsi::did_time_out, {blk_status::timeout, false}},
      {scsi::did_bad_target, {blk_status::transport, false}},
      {scsi::did_abort, {blk_status::ioerr, false}},
      {scsi::did_parity, {blk_status::ioerr, false}},
      {scsi::did_error, {blk_status::ioerr, false}},
      {scsi::did_reset, {blk_status::transport, true}},
      {scsi::did_soft_error, {blk_status::transport, true}},
      {scsi::did_imm_retry, {blk_status::transport, true}},
      {scsi::did_requeue, {blk_status::transport, true}},
      {scsi::did_transport_disrupted, {blk_status::transport, false}},
      {scsi::did_transport_failfast, {blk_status::transport, false}},
      {scsi::did_target_failure, {blk_status::target, false}},
      {scsi::did_nexus_failure, {blk_status::resv_conflict, false}},
      {scsi::did_alloc_failure, {blk_status::nospc, false}},
      {scsi::did_medium_error, {blk_status::medium, false}},
      {scsi::did_transport_marginal, {blk_status::transport, false}},
      {0x7f, {blk_status::ioerr, false}},
  };
  for (const auto& h : hosts) {
    CAPTURE(h.did);
    CHECK(decode(host(h.did)) == h.want);
  }
  // A transport failure wins over whatever the status byte says.
  auto both = check_fixed(scsi::medium_error, 0x11, 0);
  both.host = scsi::did_no_connect;
  CHECK(decode(both).status == blk_status::transport);

  CHECK(decode(driver(scsi::driver_timeout)) == outcome{blk_status::timeout, false});
  CHECK(decode(driver(scsi::driver_busy)) == outcome{blk_status::ioerr, true});
  CHECK(decode(driver(scsi::driver_soft)) == outcome{blk_status::ioerr, true});
  CHECK(decode(driver(scsi::driver_hard)) == outcome{blk_status::ioerr, false});
  CHECK(decode(driver(scsi::driver_error)) == outcome{blk_status::ioerr, false});
  CHECK(decode(driver(scsi::driver_sense)) == outcome{blk_status::ok, false}); // sense flag alone: GOOD

  CHECK(decode(scsi_status(scsi::status_good)) == outcome{blk_status::ok, false});
  CHECK(decode(scsi_status(scsi::status_condition_met)) == outcome{blk_status::ok, false});
  CHECK(decode(scsi_status(scsi::status_busy)) == outcome{blk_status::resource, true});
  CHECK(decode(scsi_status(scsi::status_task_set_full)) == outcome{blk_status::resource, true});
  CHECK(decode(scsi_status(scsi::status_reservation_conflict)) == outcome{blk_status::resv_conflict, false});
  CHECK(decode(scsi_status(scsi::status_task_aborted)) == outcome{blk_status::ioerr, true});
  CHECK(decode(scsi_status(scsi::status_aca_active)) == outcome{blk_status::ioerr, false});

  CHECK(decode(ioctl_error(ENODEV)).status == blk_status::offline);
  CHECK(decode(ioctl_error(ENXIO)).status == blk_status::transport);
  CHECK(decode(ioctl_error(EIO)).status == blk_status::ioerr);
  CHECK(decode(ioctl_error(ENOMEM)).status == blk_status::resource);
}

TEST_CASE("sg_io: command descriptor blocks") {
  auto r = scsi::read16(0x0102030405060708ULL, 0x0a0b0c0d);
  CHECK(r == scsi::cdb16{0x88, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0});
  CHECK(scsi::write16(8, 1) == scsi::cdb16{0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0});
  CHECK(scsi::test_unit_ready() == scsi::cdb6{0, 0, 0, 0, 0, 0});
  CHECK(scsi::inquiry(true, 0x83, 512) == scsi::cdb6{0x12, 1, 0x83, 2, 0, 0});
  CHECK(scsi::report_target_port_groups(true, 256) == scsi::cdb12{0xa3, 0x2a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0});
  CHECK(scsi::report_target_port_groups(false, 256)[1] == 0x0a);
  CHECK(scsi::set_target_port_groups(8) == scsi::cdb12{0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0});
}

namespace {
struct sg_rig {
  fake_sg sys;
  adapter_tests::collector done;
  mpath::adapters::sg_backend<fake_sg> backend;
  mpath::adapters::sg_backend<fake_sg>::handle_type path;

  explicit sg_rig(mpath::adapters::sg_options o = {}) : backend(with_one_worker(o), sys) {
    sys.respond(disk_responder(sys.s.get()));
    backend.set_sink(done.sink());
    path = *backend.open_path("/dev/sg-test");
  }
  static mpath::adapters::sg_options with_one_worker(mpath::adapters::sg_options o) {
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
  std::size_t rw_commands() {
    std::size_t n = 0;
    for (auto& c : sys.log())
      n += c.cdb[0] == scsi::op_read16 || c.cdb[0] == scsi::op_write16;
    return n;
  }
};
} // namespace

TEST_CASE("sg_io: reads and writes go through READ(16)/WRITE(16)") {
  sg_rig rig;
  std::vector<std::uint8_t> out(4096), in(4096);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = std::uint8_t(i * 7);
  block_io w;
  w.opcode = block_io::op::write;
  w.buffer = out.data();
  w.nr_bytes = out.size();
  w.offset = 8192;
  CHECK(rig.run(w) == blk_status::ok);
  block_io r;
  r.buffer = in.data();
  r.nr_bytes = in.size();
  r.offset = 8192;
  CHECK(rig.run(r) == blk_status::ok);
  CHECK(in == out);
  auto log = rig.sys.log();
  REQUIRE(log.size() == 2);
  CHECK(log[0].cdb[0] == scsi::op_write16);
  CHECK(scsi::get_be(&log[0].cdb[2], 8) == 16); // LBA 8192 / 512
  CHECK(scsi::get_be(&log[0].cdb[10], 4) == 8); // 8 blocks
  CHECK(log[0].direction == SG_DXFER_TO_DEV);
  CHECK(log[1].direction == SG_DXFER_FROM_DEV);
  CHECK(rig.backend.counters(0).completed == 2);
}

TEST_CASE("sg_io: a short transfer continues where it stopped") {
  sg_rig rig;
  int calls = 0;
  auto disk = disk_responder(rig.sys.s.get());
  rig.sys.respond([&](const command& c) {
    auto r = disk(c);
    if (++calls == 1)
      r.resid = int(c.dxfer_len / 2); // only half moved
    return r;
  });
  std::vector<std::uint8_t> buf(4096);
  block_io r;
  r.buffer = buf.data();
  r.nr_bytes = buf.size();
  CHECK(rig.run(r) == blk_status::ok);
  auto log = rig.sys.log();
  REQUIRE(log.size() == 2);
  CHECK(scsi::get_be(&log[1].cdb[2], 8) == 4); // continues at block 4
  CHECK(scsi::get_be(&log[1].cdb[10], 4) == 4);

  // No progress at all and no error: reported instead of spinning.
  rig.sys.respond([&](const command& c) {
    auto rr = disk(c);
    rr.resid = int(c.dxfer_len);
    return rr;
  });
  block_io r2;
  r2.buffer = buf.data();
  r2.nr_bytes = buf.size();
  CHECK(rig.run(r2) == blk_status::ioerr);
}

TEST_CASE("sg_io: large I/O is split at max_transfer") {
  mpath::adapters::sg_options o;
  o.max_transfer = 64 * 1024;
  sg_rig rig(o);
  std::vector<std::uint8_t> buf(200 * 1024);
  block_io r;
  r.buffer = buf.data();
  r.nr_bytes = buf.size();
  CHECK(rig.run(r) == blk_status::ok);
  CHECK(rig.rw_commands() == 4); // 64 + 64 + 64 + 8 KiB
}

TEST_CASE("sg_io: transient conditions are retried then reported") {
  sg_rig rig;
  auto disk = disk_responder(rig.sys.s.get());
  std::vector<std::uint8_t> buf(512);
  int calls = 0;

  SUBCASE("unit attention after a reset, once") {
    rig.sys.respond(
        [&](const command& c) { return ++calls == 1 ? check_fixed(scsi::unit_attention, 0x29, 0x00) : disk(c); });
    block_io r;
    r.buffer = buf.data();
    r.nr_bytes = buf.size();
    CHECK(rig.run(r) == blk_status::ok);
    CHECK(rig.rw_commands() == 2);
  }
  SUBCASE("busy until the retries run out") {
    rig.sys.respond([&](const command&) { return scsi_status(scsi::status_busy); });
    block_io r;
    r.buffer = buf.data();
    r.nr_bytes = buf.size();
    CHECK(rig.run(r) == blk_status::resource);
    CHECK(rig.rw_commands() == 4); // 1 + 3 retries
  }
  SUBCASE("an ALUA state change is a path error at once") {
    rig.sys.respond([&](const command&) { return check_descriptor(scsi::unit_attention, 0x2a, 0x06); });
    block_io r;
    r.buffer = buf.data();
    r.nr_bytes = buf.size();
    CHECK(rig.run(r) == blk_status::transport);
    CHECK(rig.rw_commands() == 1);
  }
  SUBCASE("a medium error is final and not a path error") {
    rig.sys.respond([&](const command&) { return check_fixed(scsi::medium_error, 0x11, 0x00); });
    block_io r;
    r.buffer = buf.data();
    r.nr_bytes = buf.size();
    CHECK(rig.run(r) == blk_status::medium);
    CHECK(rig.rw_commands() == 1);
  }
  SUBCASE("EINTR from the ioctl restarts it") {
    rig.sys.respond([&](const command& c) { return ++calls <= 2 ? ioctl_error(EINTR) : disk(c); });
    block_io r;
    r.buffer = buf.data();
    r.nr_bytes = buf.size();
    CHECK(rig.run(r) == blk_status::ok);
    CHECK(rig.rw_commands() == 3);
  }
  SUBCASE("the device went away") {
    rig.sys.respond([&](const command&) { return ioctl_error(ENODEV); });
    block_io r;
    r.buffer = buf.data();
    r.nr_bytes = buf.size();
    CHECK(rig.run(r) == blk_status::offline);
  }
}

TEST_CASE("sg_io: misaligned requests fail without touching the path") {
  sg_rig rig;
  std::vector<std::uint8_t> buf(1024);
  block_io r;
  r.buffer = buf.data();
  r.nr_bytes = 700;
  CHECK(rig.run(r) == blk_status::notsupp);
  block_io r2;
  r2.buffer = buf.data();
  r2.nr_bytes = 512;
  r2.offset = 100;
  CHECK(rig.run(r2) == blk_status::notsupp);
  CHECK(rig.sys.log().empty());
  CHECK_FALSE(mpath::is_path_error(blk_status::notsupp));
}

TEST_CASE("sg_io: the probe is TEST UNIT READY") {
  sg_rig rig;
  std::vector<recorded> script;
  std::size_t at = 0;
  rig.sys.respond([&](const command& c) {
    CHECK(c.cdb[0] == scsi::op_test_unit_ready);
    CHECK(c.direction == SG_DXFER_NONE);
    return at < script.size() ? script[at++] : good();
  });
  auto probe = [&](std::vector<recorded> s) {
    script = std::move(s);
    at = 0;
    return rig.backend.probe(rig.path);
  };
  CHECK(probe({good()}) == blk_status::ok);
  CHECK(probe({check_fixed(scsi::not_ready, 0x04, 0x0b)}) == blk_status::ok);      // standby: "ghost"
  CHECK(probe({check_descriptor(scsi::not_ready, 0x04, 0x0a)}) == blk_status::ok); // transitioning
  CHECK(probe({check_fixed(scsi::not_ready, 0x04, 0x0c)}) == blk_status::transport);
  CHECK(probe({check_fixed(scsi::not_ready, 0x04, 0x03)}) == blk_status::ioerr);
  CHECK(probe({check_fixed(scsi::unit_attention, 0x29, 0x00), good()}) == blk_status::ok);
  CHECK(at == 2);
  CHECK(probe({host(scsi::did_no_connect)}) == blk_status::transport);
  CHECK(probe({check_fixed(scsi::illegal_request, 0x25, 0x00)}) == blk_status::offline);
}

TEST_CASE("sg_io: open failures carry the errno") {
  fake_sg sys;
  mpath::adapters::sg_backend<fake_sg> backend({}, sys);
  auto h = backend.open_path("missing");
  REQUIRE_FALSE(h.has_value());
  CHECK(h.err().code == ENOENT);
  CHECK(h.err().text == "error getting device");
}

TEST_CASE("sg_io: a real device named by MPATH_SG_DEVICE" * doctest::skip(std::getenv("MPATH_SG_DEVICE") == nullptr)) {
  // Read-only: TEST UNIT READY and one READ(16) of the first 4 KiB.
  adapter_tests::collector done;
  mpath::adapters::sg_options o;
  o.open_flags = O_RDONLY | O_NONBLOCK;
  mpath::adapters::sg_backend<> backend(o);
  backend.set_sink(done.sink());
  auto h = backend.open_path(std::getenv("MPATH_SG_DEVICE"));
  REQUIRE(h.has_value());
  CHECK(backend.probe(*h) == blk_status::ok);
  std::vector<std::uint8_t> buf(4096);
  block_io r;
  r.buffer = buf.data();
  r.nr_bytes = buf.size();
  backend.submit(*h, r);
  auto s = done.wait(r);
  REQUIRE(s.has_value());
  CHECK(*s == blk_status::ok);
}
