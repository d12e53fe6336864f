// The ALUA hardware handler through the SG_IO seam: REPORT TARGET PORT GROUPS and VPD 0x83
// parsing, and the activation result for each answer a target can give, both directly and through
// the engine's pg_init.

#include "../../examples/adapters/alua.hpp"

#include "../../examples/adapters/engine_host.hpp"
#include "collector.hpp"
#include "sg_fixtures.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

using namespace sg_fixtures;
using mpath::activation_result;
using mpath::adapters::alua_handler;
using mpath::adapters::alua_state;
using backend_type = mpath::adapters::sg_backend<fake_sg>;

static_assert(mpath::HwHandler<alua_handler, mpath::basic_path<backend_type::handle_type>>);

namespace {

constexpr std::uint8_t ao = 0x0, ano = 0x1, standby = 0x2, unavailable = 0x3, lbd = 0x4, offline = 0xe,
                       transitioning = 0xf;

/// A target with two port groups: ours (id 1, relative port 1) and the other (id 2). `ours` is
/// the state RTPG reports for group 1 until an STPG moves it to `after_stpg`.
struct target {
  std::uint8_t tpgs = 3; // implicit and explicit
  std::uint8_t ours = standby;
  std::uint8_t after_stpg = ao;
  bool extended_refused = false;
  recorded rtpg_failure{}; // used when rtpg_fails
  bool rtpg_fails = false;
  recorded stpg_failure{};
  bool stpg_fails = false;
  int stpgs = 0, rtpgs = 0, inquiries = 0;

  recorded operator()(const command& c) {
    switch (c.cdb[0]) {
    case scsi::op_inquiry: ++inquiries; return good(c.cdb[1] & 1 ? vpd83(1, 1) : standard_inquiry(tpgs));
    case scsi::op_maintenance_in: {
      ++rtpgs;
      bool ext = (c.cdb[1] & 0xe0) == 0x20;
      if (ext && extended_refused)
        return check_fixed(scsi::illegal_request, 0x24, 0x00);
      if (rtpg_fails)
        return rtpg_failure;
      return good(rtpg_data({{1, ours, true, {1}}, {2, ao, false, {2}}}, ext));
    }
    case scsi::op_maintenance_out: {
      ++stpgs;
      if (stpg_fails)
        return stpg_failure;
      // the descriptor asks for active/optimized for group 1
      CHECK(c.data_out.size() == 8);
      CHECK((c.data_out[4] & 0x0f) == ao);
      CHECK(scsi::get_be(&c.data_out[6], 2) == 1);
      ours = after_stpg;
      return good();
    }
    default: return good();
    }
  }
};

mpath::adapters::sg_options one_worker() {
  mpath::adapters::sg_options o;
  o.workers = 1;
  return o;
}

struct rig {
  fake_sg sys;
  backend_type backend{one_worker(), sys};
  backend_type::handle_type path = *backend.open_path("/dev/sg-alua");
  target t;

  activation_result activate(bool optimize = false) {
    sys.respond([this](const command& c) { return t(c); });
    return alua_handler::activate_now(backend, path, optimize);
  }
};

} // namespace

TEST_CASE("alua: REPORT TARGET PORT GROUPS data parses with or without the extended header") {
  for (bool ext : {true, false}) {
    auto d = rtpg_data({{1, ano, true, {1, 3}}, {0x102, offline, false, {2}}}, ext);
    auto g = mpath::adapters::parse_rtpg(d);
    REQUIRE(g.has_value());
    REQUIRE(g->size() == 2);
    CHECK((*g)[0].id == 1);
    CHECK((*g)[0].state == alua_state::active_non_optimized);
    CHECK((*g)[0].preferred);
    CHECK((*g)[0].relative_ports == std::vector<std::uint16_t>{1, 3});
    CHECK((*g)[1].id == 0x102);
    CHECK((*g)[1].state == alua_state::offline);
    CHECK_FALSE((*g)[1].preferred);
  }
  auto d = rtpg_data({{1, ao, false, {1, 2, 3}}});
  d.resize(d.size() - 2); // the last port descriptor is cut off
  d[3] = std::uint8_t(d.size() - 4);
  CHECK_FALSE(mpath::adapters::parse_rtpg(d).has_value());
  CHECK_FALSE(mpath::adapters::parse_rtpg(std::vector<std::uint8_t>{0, 0}).has_value());
}

TEST_CASE("alua: VPD page 0x83 gives the target port group and relative port") {
  auto id = mpath::adapters::parse_vpd83(vpd83(0x1234, 7));
  CHECK(id.tpg == 0x1234);
  CHECK(id.relative_port == 7);
  CHECK(mpath::adapters::parse_vpd83(vpd83(-1, 7)).tpg == -1);
  CHECK(mpath::adapters::parse_vpd83(std::vector<std::uint8_t>{0, 0x80, 0, 0}).tpg == -1); // another page
}

TEST_CASE("alua: handler parameters") {
  alua_handler h;
  CHECK(alua_handler::accepts("alua"));
  CHECK_FALSE(alua_handler::accepts("emc"));
  CHECK(h.set_params({}).has_value());
  CHECK_FALSE(h.optimize());
  std::vector<std::string> one{"1"};
  CHECK(h.set_params(one).has_value());
  CHECK(h.optimize());
  for (auto bad : {std::vector<std::string>{"2"}, std::vector<std::string>{"x"}, std::vector<std::string>{"0", "1"}})
    CHECK_FALSE(h.set_params(bad).has_value());
}

TEST_CASE("alua: activation results by port group state") {
  struct state_case {
    const char* what;
    std::uint8_t tpgs, state;
    bool optimize;
    activation_result want;
    int stpgs;
  };
  const state_case cases[] = {
      {"active/optimized", 3, ao, false, activation_result::ok, 0},
      {"active/non-optimized", 3, ano, false, activation_result::ok, 0},
      {"active/non-optimized, optimize", 3, ano, true, activation_result::ok, 1},
      {"active/non-optimized, optimize, implicit only", 1, ano, true, activation_result::ok, 0},
      {"lba dependent", 3, lbd, false, activation_result::ok, 0},
      {"standby, explicit", 2, standby, false, activation_result::ok, 1},
      {"unavailable, explicit", 3, unavailable, false, activation_result::ok, 1},
      {"standby, implicit only", 1, standby, false, activation_result::dev_failed, 0},
      {"offline", 3, offline, false, activation_result::dev_offlined, 0},
      {"transitioning", 3, transitioning, false, activation_result::retry, 0},
      {"no ALUA at all", 0, ao, false, activation_result::dev_unsupp, 0},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    rig r;
    r.t.tpgs = c.tpgs;
    r.t.ours = c.state;
    CHECK(r.activate(c.optimize) == c.want);
    CHECK(r.t.stpgs == c.stpgs);
  }
}

TEST_CASE("alua: the group is learned once and the state re-read after SET TARGET PORT GROUPS") {
  rig r;
  CHECK(r.activate() == activation_result::ok);
  CHECK(r.path.tpg == 1);
  CHECK(r.path.relative_port == 1);
  CHECK(r.path.tpgs == 3);
  CHECK(r.path.alua_state == ao);
  CHECK(r.t.inquiries == 2); // standard + VPD 0x83
  CHECK(r.t.rtpgs == 2);     // before and after the STPG
  CHECK(r.activate() == activation_result::ok);
  CHECK(r.t.inquiries == 2); // not asked again

  rig t2;
  t2.t.after_stpg = transitioning;
  CHECK(t2.activate() == activation_result::retry);
  rig t3;
  t3.t.after_stpg = standby; // the target ignored us
  CHECK(t3.activate() == activation_result::dev_failed);
}

TEST_CASE("alua: a target refusing the extended header is asked again without it") {
  rig r;
  r.t.ours = ao;
  r.t.extended_refused = true;
  CHECK(r.activate() == activation_result::ok);
  CHECK(r.t.rtpgs == 2);
}

TEST_CASE("alua: failed commands map to activation results") {
  struct failure_case {
    const char* what;
    recorded answer;
    bool in_stpg;
    activation_result want;
  };
  const failure_case cases[] = {
      {"RTPG: unit attention", check_fixed(scsi::unit_attention, 0x2a, 0x06), false, activation_result::retry},
      {"RTPG: transitioning", check_descriptor(scsi::not_ready, 0x04, 0x0a), false, activation_result::retry},
      {"RTPG: not supported", check_fixed(scsi::illegal_request, 0x20, 0x00), false, activation_result::dev_unsupp},
      {"RTPG: busy", scsi_status(scsi::status_busy), false, activation_result::retry},
      {"RTPG: timeout", host(scsi::did_time_out), false, activation_result::timed_out},
      {"RTPG: driver timeout", driver(scsi::driver_timeout), false, activation_result::timed_out},
      {"RTPG: no connection", host(scsi::did_no_connect), false, activation_result::io},
      {"RTPG: device gone", ioctl_error(ENODEV), false, activation_result::io},
      {"RTPG: out of memory", ioctl_error(ENOMEM), false, activation_result::nomem},
      {"RTPG: hardware error", check_fixed(scsi::hardware_error, 0x44, 0x00), false, activation_result::io},
      {"STPG: refused", check_fixed(scsi::illegal_request, 0x26, 0x00), true, activation_result::dev_failed},
      {"STPG: unit attention", check_descriptor(scsi::unit_attention, 0x29, 0x00), true, activation_result::retry},
      {"STPG: aborted", check_fixed(scsi::aborted_command, 0x47, 0x00), true, activation_result::imm_retry},
      {"STPG: timeout", host(scsi::did_time_out), true, activation_result::timed_out},
      {"STPG: transport", host(scsi::did_transport_disrupted), true, activation_result::io},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    rig r;
    if (c.in_stpg) {
      r.t.stpg_fails = true;
      r.t.stpg_failure = c.answer;
    } else {
      r.t.rtpg_fails = true;
      r.t.rtpg_failure = c.answer;
    }
    CHECK(r.activate() == c.want);
  }
}

TEST_CASE("alua: the engine activates a group through the handler on pg_init") {
  // Two groups of one path each; group 1's port is standby (needs an STPG), group 2's is offline.
  struct traits : mpath::default_traits {
    using hw_handlers = mpath::hw_handler_set<alua_handler>;
  };
  fake_sg sys;
  target t1;
  t1.ours = standby;
  sys.respond(disk_responder(sys.s.get(), [&](const command& c) { return t1(c); }));
  mpath::thread_executor exec;
  backend_type backend(one_worker(), sys);
  auto host = mpath::adapters::engine_host<backend_type, mpath::thread_executor, traits>::create(
      backend, exec, "1 queue_if_no_path 1 alua 1 1 round-robin 0 1 1 /dev/sg1 1");
  REQUIRE(host.has_value());
  auto& engine = (*host)->engine();
  std::vector<std::uint8_t> buf(4096);
  std::atomic<int> done{0};
  mpath::adapters::block_io io;
  io.buffer = buf.data();
  io.nr_bytes = buf.size();
  io.user = &done;
  io.on_done = [](mpath::adapters::block_io& b, mpath::blk_status s) noexcept {
    if (s == mpath::blk_status::ok)
      static_cast<std::atomic<int>*>(b.user)->fetch_add(1);
  };
  (*host)->submit(io);
  for (int i = 0; i < 500 && done.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(done.load() == 1);
  CHECK(engine.pg_init_count() == 1);
  CHECK(t1.stpgs == 1);
  CHECK(backend.counters(0).completed == 1);
}
