// The SG_IO health pieces through the adapter's seam: the TEST UNIT READY checker's verdict for
// each answer a target can give (multipathd's tur rules), and the ALUA prioritizer's priority for
// each asymmetric access state and the PREF bit; both answer from the executor, once per check.

#include "../../examples/adapters/sg_health.hpp"

#include "sg_fixtures.hpp"

#include <mpath/testing/manual_executor.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <vector>

using namespace sg_fixtures;
using mpath::adapters::alua_priority;
using mpath::adapters::alua_state;
using mpath::health::check_result;
using backend_type = mpath::adapters::sg_backend<fake_sg>;
using path_type = mpath::basic_path<backend_type::handle_type>;
using executor = mpath::testing::manual_executor;
using tur_checker = mpath::adapters::sg_tur_checker<backend_type, executor>;
using alua_prio = mpath::adapters::sg_alua_prioritizer<backend_type, executor>;

static_assert(mpath::health::PathChecker<tur_checker, path_type>);
static_assert(mpath::health::Prioritizer<alua_prio, path_type>);

namespace {

constexpr std::uint8_t ao = 0x0, ano = 0x1, standby = 0x2, unavailable = 0x3, lbd = 0x4, offline = 0xe,
                       transitioning = 0xf;

mpath::adapters::sg_options one_worker() {
  mpath::adapters::sg_options o;
  o.workers = 1;
  return o;
}

template <class T> struct answers {
  struct entry {
    std::uint64_t token;
    T value;
    friend bool operator==(const entry&, const entry&) = default;
  };
  std::vector<entry> got;
  static void record(void* ctx, std::uint64_t token, T v) noexcept {
    static_cast<answers*>(ctx)->got.push_back({token, v});
  }
};

struct rig {
  fake_sg sys;
  backend_type backend{one_worker(), sys};
  path_type path{"/dev/sg-health", *backend.open_path("/dev/sg-health"), 0, nullptr};
  executor exec;

  /// TEST UNIT READY answers, in order; the last one repeats.
  void tur_answers(std::vector<recorded> seq) {
    auto n = std::make_shared<std::size_t>(0);
    sys.respond([seq, n](const command& c) {
      CHECK(c.cdb[0] == scsi::op_test_unit_ready);
      CHECK(c.direction == SG_DXFER_NONE);
      return seq[std::min(seq.size() - 1, (*n)++)];
    });
  }

  std::size_t commands() { return sys.log().size(); }

  /// One check, run through the executor; the answer must come from it, exactly once.
  check_result check(tur_checker& c, std::uint64_t token = 7) {
    answers<check_result> a;
    c.check(path, mpath::health::check_done(&answers<check_result>::record, &a, token));
    CHECK(a.got.empty()); // not on the caller's thread
    CHECK(exec.run() == 1);
    REQUIRE(a.got.size() == 1);
    CHECK(a.got[0].token == token);
    return a.got[0].value;
  }
  check_result check() {
    tur_checker c(exec);
    return check(c);
  }
};

} // namespace

TEST_CASE("sg_health tur: GOOD is up") {
  rig r;
  r.tur_answers({good()});
  CHECK(r.check() == check_result::up);
  CHECK(r.commands() == 1);
}

TEST_CASE("sg_health tur: NOT READY 04/0b is ghost and 04/0a is pending") {
  rig r;
  r.tur_answers({check_fixed(scsi::not_ready, 0x04, 0x0b)});
  CHECK(r.check() == check_result::ghost);
  r.tur_answers({check_descriptor(scsi::not_ready, 0x04, 0x0b)});
  CHECK(r.check() == check_result::ghost);
  r.tur_answers({check_fixed(scsi::not_ready, 0x04, 0x0a)});
  CHECK(r.check() == check_result::pending);
  r.tur_answers({check_descriptor(scsi::not_ready, 0x04, 0x0a)});
  CHECK(r.check() == check_result::pending);
  // Any other NOT READY (becoming ready, ALUA unavailable, no medium) is down.
  for (auto ascq : {0x01, 0x0c, 0x03}) {
    r.tur_answers({check_fixed(scsi::not_ready, 0x04, std::uint8_t(ascq))});
    CHECK(r.check() == check_result::down);
  }
  CHECK(r.commands() == 7); // none of these is retried
}

TEST_CASE("sg_health tur: UNIT ATTENTION is retried and the retry decides") {
  rig r;
  r.tur_answers({check_fixed(scsi::unit_attention, 0x29, 0x00), good()});
  CHECK(r.check() == check_result::up);
  CHECK(r.commands() == 2);

  r.sys.clear_log();
  r.tur_answers({check_fixed(scsi::unit_attention, 0x2a, 0x06), check_fixed(scsi::unit_attention, 0x29, 0x00),
                 check_fixed(scsi::not_ready, 0x04, 0x0b)});
  CHECK(r.check() == check_result::ghost);
  CHECK(r.commands() == 3);

  // Attention after attention: after the retries (3 by default) the path is down.
  r.sys.clear_log();
  r.tur_answers({check_fixed(scsi::unit_attention, 0x29, 0x00)});
  CHECK(r.check() == check_result::down);
  CHECK(r.commands() == 4);

  // The count is an option.
  r.sys.clear_log();
  r.tur_answers({check_fixed(scsi::unit_attention, 0x29, 0x00), check_fixed(scsi::unit_attention, 0x29, 0x00), good()});
  mpath::adapters::tur_options once;
  once.unit_attention_retries = 1;
  tur_checker c(r.exec, once);
  CHECK(r.check(c) == check_result::down);
  CHECK(r.commands() == 2);
}

TEST_CASE("sg_health tur: ILLEGAL REQUEST 25/00 is down as disconnected") {
  rig r;
  r.tur_answers({check_fixed(scsi::illegal_request, 0x25, 0x00)});
  CHECK(r.check() == check_result::down);
  CHECK(r.commands() == 1);
  mpath::adapters::sg_result res;
  res.status = scsi::status_check_condition;
  res.driver_status = scsi::driver_sense;
  res.sense = scsi::parse_sense(fixed_sense(scsi::illegal_request, 0x25, 0x00));
  CHECK(mpath::adapters::classify_tur(res) == mpath::adapters::tur_verdict{check_result::down, false, true});
  res.sense = scsi::parse_sense(fixed_sense(scsi::illegal_request, 0x20, 0x00));
  CHECK(mpath::adapters::classify_tur(res) == mpath::adapters::tur_verdict{check_result::down, false, false});
}

TEST_CASE("sg_health tur: medium and hardware and other sense errors are down") {
  rig r;
  const recorded cases[] = {
      check_fixed(scsi::medium_error, 0x11, 0x00),
      check_descriptor(scsi::medium_error, 0x11, 0x00),
      check_fixed(scsi::hardware_error, 0x44, 0x00),
      check_fixed(scsi::aborted_command, 0x47, 0x00),
      check_fixed(scsi::illegal_request, 0x20, 0x00),
      check_fixed(scsi::data_protect, 0x27, 0x00),
      scsi_status(scsi::status_check_condition), // no sense data
      scsi_status(scsi::status_busy),
      scsi_status(scsi::status_reservation_conflict),
  };
  for (const auto& c : cases) {
    r.tur_answers({c});
    CHECK(r.check() == check_result::down);
  }
  CHECK(r.commands() == std::size(cases));
  // A completed command with informational sense is up.
  r.tur_answers({check_fixed(scsi::recovered_error, 0x17, 0x01)});
  CHECK(r.check() == check_result::up);
}

TEST_CASE("sg_health tur: host and driver and ioctl errors are down") {
  rig r;
  for (auto did : {scsi::did_no_connect, scsi::did_bad_target, scsi::did_abort, scsi::did_transport_disrupted,
                   scsi::did_transport_failfast, scsi::did_error, scsi::did_bus_busy, scsi::did_reset}) {
    CAPTURE(did);
    r.tur_answers({host(did)});
    CHECK(r.check() == check_result::down);
  }
  for (auto drv : {scsi::driver_error, scsi::driver_hard, scsi::driver_busy}) {
    r.tur_answers({driver(drv)});
    CHECK(r.check() == check_result::down);
  }
  for (int e : {ENODEV, ENXIO, EIO}) {
    r.tur_answers({ioctl_error(e)});
    CHECK(r.check() == check_result::down);
  }
}

TEST_CASE("sg_health tur: the SG_IO command timing out is timeout") {
  rig r;
  r.tur_answers({host(scsi::did_time_out)});
  CHECK(r.check() == check_result::timeout);
  r.tur_answers({driver(scsi::driver_timeout)});
  CHECK(r.check() == check_result::timeout);
  r.tur_answers({ioctl_error(ETIMEDOUT)});
  CHECK(r.check() == check_result::timeout);
  CHECK(r.commands() == 3); // not retried
}

TEST_CASE("sg_health tur: answers from the executor exactly once per check") {
  rig r;
  r.tur_answers({good()});
  tur_checker c(r.exec);
  answers<check_result> a;
  using A = answers<check_result>;
  c.check(r.path, mpath::health::check_done(&A::record, &a, 1));
  CHECK(a.got.empty());
  CHECK(r.commands() == 0); // nothing on the caller's thread
  // A second check while the first has not run is answered timeout at once, without a command.
  c.check(r.path, mpath::health::check_done(&A::record, &a, 2));
  CHECK(a.got == std::vector<A::entry>{{2, check_result::timeout}});
  CHECK(r.exec.run() == 1);
  CHECK(a.got == std::vector<A::entry>{{2, check_result::timeout}, {1, check_result::up}});
  CHECK(r.commands() == 1);
  CHECK(r.exec.run() == 0); // nothing more
  // The next check reuses the path's work item.
  c.check(r.path, mpath::health::check_done(&A::record, &a, 3));
  CHECK(r.exec.run() == 1);
  CHECK(a.got.size() == 3);
  CHECK(a.got[2] == A::entry{3, check_result::up});
  CHECK(c.checks() == 2);
}

TEST_CASE("sg_health tur: destroyed with a check not yet run it answers timeout") {
  rig r;
  answers<check_result> a;
  {
    tur_checker c(r.exec);
    c.check(r.path, mpath::health::check_done(&answers<check_result>::record, &a, 9));
  }
  REQUIRE(a.got.size() == 1);
  CHECK(a.got[0].value == check_result::timeout);
  CHECK(r.exec.run() == 0);
  CHECK(r.commands() == 0);
}

// ---- ALUA prioritizer

TEST_CASE("sg_health alua: priority by state and PREF bit") {
  CHECK(alua_priority(alua_state::active_optimized, false) == 50);
  CHECK(alua_priority(alua_state::active_non_optimized, false) == 10);
  CHECK(alua_priority(alua_state::lba_dependent, false) == 5);
  CHECK(alua_priority(alua_state::standby, false) == 1);
  CHECK(alua_priority(alua_state::unavailable, false) == 0);
  CHECK(alua_priority(alua_state::offline, false) == 0);
  CHECK(alua_priority(alua_state::transitioning, false) == 0);
  CHECK(alua_priority(alua_state::active_non_optimized, true) == 90);
  CHECK(alua_priority(alua_state::standby, true) == 81);
  CHECK(alua_priority(alua_state::unavailable, true) == 80);
  CHECK(alua_priority(alua_state::active_optimized, true) == 50); // only with exclusive_pref_bit
  CHECK(alua_priority(alua_state::active_optimized, true, true) == 130);
  CHECK(alua_priority(alua_state::active_non_optimized, true, true) == 90);
}

namespace {

/// An ALUA target: our group is 1 (relative port 1), the other group 2 is active/optimized.
struct alua_target {
  std::uint8_t tpgs = 1;
  std::uint8_t ours = ao;
  bool preferred = false;
  bool rtpg_fails = false;
  int inquiries = 0, rtpgs = 0;
  recorded operator()(const command& c) {
    switch (c.cdb[0]) {
    case scsi::op_inquiry: ++inquiries; return good(c.cdb[1] & 1 ? vpd83(1, 1) : standard_inquiry(tpgs));
    case scsi::op_maintenance_in:
      ++rtpgs;
      if (rtpg_fails)
        return host(scsi::did_no_connect);
      return good(rtpg_data({{2, ao, false, {2}}, {1, ours, preferred, {1}}}, (c.cdb[1] & 0xe0) == 0x20));
    default: FAIL("unexpected command"); return good();
    }
  }
};

int priority(rig& r, alua_prio& p, std::uint64_t token = 5) {
  answers<int> a;
  p.get_priority(r.path, mpath::health::prio_done(&answers<int>::record, &a, token));
  CHECK(a.got.empty());
  CHECK(r.exec.run() == 1);
  REQUIRE(a.got.size() == 1);
  CHECK(a.got[0].token == token);
  return a.got[0].value;
}

} // namespace

TEST_CASE("sg_health alua: the path's own group state gives its priority") {
  struct prio_case {
    const char* what;
    std::uint8_t state;
    bool preferred;
    int want;
  };
  const prio_case cases[] = {
      {"active/optimized", ao, false, 50},
      {"active/non-optimized", ano, false, 10},
      {"LBA-dependent", lbd, false, 5},
      {"standby", standby, false, 1},
      {"unavailable", unavailable, false, 0},
      {"transitioning", transitioning, false, 0},
      {"offline", offline, false, 0},
      {"active/non-optimized preferred", ano, true, 90},
      {"standby preferred", standby, true, 81},
      {"LBA-dependent preferred", lbd, true, 85},
      {"unavailable preferred", unavailable, true, 80},
      {"active/optimized preferred", ao, true, 50},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    rig r;
    alua_target t;
    t.ours = c.state;
    t.preferred = c.preferred;
    r.sys.respond([&t](const command& cmd) { return t(cmd); });
    alua_prio p(r.exec);
    CHECK(priority(r, p) == c.want);
    CHECK(t.inquiries == 2); // standard INQUIRY and VPD 0x83
    CHECK(t.rtpgs == 1);
  }
}

TEST_CASE("sg_health alua: exclusive_pref_bit adds 80 to a preferred active/optimized group") {
  rig r;
  alua_target t;
  t.ours = ao;
  t.preferred = true;
  r.sys.respond([&t](const command& cmd) { return t(cmd); });
  alua_prio p(r.exec, true);
  CHECK(priority(r, p) == 130);
}

TEST_CASE("sg_health alua: the group is learnt once and the state asked every time") {
  rig r;
  alua_target t;
  r.sys.respond([&t](const command& cmd) { return t(cmd); });
  alua_prio p(r.exec);
  CHECK(priority(r, p) == 50);
  t.ours = standby;
  CHECK(priority(r, p) == 1);
  t.ours = ano;
  t.preferred = true;
  CHECK(priority(r, p) == 90);
  CHECK(t.inquiries == 2);
  CHECK(t.rtpgs == 3);
  CHECK(p.queries() == 3);
  // The shared handle is the hardware handler's: the prioritizer works on its own copy.
  CHECK(r.path.handle().tpg == -1);
}

TEST_CASE("sg_health alua: no ALUA or a failing command gives 0") {
  {
    rig r;
    alua_target t;
    t.tpgs = 0;
    r.sys.respond([&t](const command& cmd) { return t(cmd); });
    alua_prio p(r.exec);
    CHECK(priority(r, p) == 0);
    CHECK(t.rtpgs == 0);
  }
  {
    rig r;
    alua_target t;
    t.rtpg_fails = true;
    r.sys.respond([&t](const command& cmd) { return t(cmd); });
    alua_prio p(r.exec);
    CHECK(priority(r, p) == 0);
    t.rtpg_fails = false; // recovers at the next query
    CHECK(priority(r, p) == 50);
  }
}

TEST_CASE("sg_health alua: answers from the executor exactly once per query") {
  rig r;
  alua_target t;
  t.ours = ano;
  r.sys.respond([&t](const command& cmd) { return t(cmd); });
  alua_prio p(r.exec);
  using A = answers<int>;
  A a;
  p.get_priority(r.path, mpath::health::prio_done(&A::record, &a, 1));
  CHECK(a.got.empty());
  CHECK(r.commands() == 0);
  // While the query has not run, another is answered at once with the last priority (none yet: 0).
  p.get_priority(r.path, mpath::health::prio_done(&A::record, &a, 2));
  CHECK(a.got == std::vector<A::entry>{{2, 0}});
  CHECK(r.exec.run() == 1);
  CHECK(a.got == std::vector<A::entry>{{2, 0}, {1, 10}});
  CHECK(r.exec.run() == 0);
  p.get_priority(r.path, mpath::health::prio_done(&A::record, &a, 3));
  p.get_priority(r.path, mpath::health::prio_done(&A::record, &a, 4));
  CHECK(a.got.back() == A::entry{4, 10}); // the last priority known
  CHECK(r.exec.run() == 1);
  CHECK(a.got.size() == 4);
  CHECK(a.got.back() == A::entry{3, 10});
}
