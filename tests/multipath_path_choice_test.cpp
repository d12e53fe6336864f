// Path choice over priority groups (kernel-target.md §4.2): current group first (stickiness), then
// an explicit switch_group request, then two passes over the groups, the second one over bypassed
// groups with a delayed pg_init. Exact INFO text after every step.

#include <mpath/multipath.hpp>
#include <mpath/testing/sim.hpp>

#include "support/sim_helpers.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using mpath::blk_status;
using mpath::status_type;
using mpath_test::device;
using mpath_test::info;
using mpath_test::lines;
using mpath_test::make;
using mpath_test::message;
using mpath_test::table;

std::string last_device(device& d) { return d.ios().back().last_device; }

void finish(device& d) {
  while (d.complete("", 100, blk_status::ok) > 0)
    d.run();
  for (const auto& io : d.ios()) {
    CAPTURE(io.id);
    CHECK(io.completions == 1);
    CHECK(io.final_status == blk_status::ok);
  }
}

constexpr std::string_view two_groups = "0 0 2 1 round-robin 0 2 0 8:16 8:32 round-robin 0 2 0 8:48 8:64";
constexpr std::uint64_t ms = 1'000'000;

} // namespace

TEST_CASE("path choice §4.2: a fresh table shows every group E until the first I/O selects the initial group") {
  auto d = make("0 0 2 2 round-robin 0 2 0 8:16 8:32 round-robin 0 2 0 8:48 8:64");
  CHECK(info(*d) == "2 1 0 0 2 2 E 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(table(*d) == "0 0 2 2 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 2 1 8:48 1 8:64 1 ");
  d->io(1);
  CHECK(info(*d) == "2 0 0 0 2 2 E 0 2 0 8:16 A 0 8:32 A 0 A 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(last_device(*d) == "8:48");
  finish(*d);
}

TEST_CASE("path choice §1.4, §4.2: initial-pg above the group count prefers none, selection starts at PG1") {
  auto d = make("0 0 2 7 round-robin 0 1 0 8:16 round-robin 0 1 0 8:48");
  CHECK(table(*d) == "0 0 2 1 round-robin 0 1 1 8:16 1 round-robin 0 1 1 8:48 1 ");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 1 0 8:16 A 0 E 0 1 0 8:48 A 0 ");
  d->io(1);
  CHECK(last_device(*d) == "8:16");
  finish(*d);
}

TEST_CASE("path choice §3, §4.2: switch_group takes effect at the next I/O, not before") {
  auto d = make(two_groups);
  d->io(1);
  CHECK(info(*d) == "2 0 0 0 2 1 A 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  message(*d, "switch_group 2");
  CHECK(info(*d) == "2 0 0 0 2 2 E 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(d->ios()[0].last_device == "8:16"); // in-flight I/O is not moved
  d->io(2);
  CHECK(info(*d) == "2 0 0 0 2 2 E 0 2 0 8:16 A 0 8:32 A 0 A 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(d->ios()[1].last_device == "8:48");
  CHECK(d->ios()[2].last_device == "8:64");
  // Switching to the current group is harmless.
  message(*d, "switch_group 2");
  d->io(1);
  CHECK(info(*d) == "2 0 0 0 2 2 E 0 2 0 8:16 A 0 8:32 A 0 A 0 2 0 8:48 A 0 8:64 A 0 ");
  finish(*d);
}

TEST_CASE("path choice §4.2: a switch_group request to a group without a usable path falls through") {
  auto d = make(two_groups);
  d->io(1);
  message(*d, "fail_path 8:48");
  message(*d, "fail_path 8:64");
  message(*d, "switch_group 2");
  d->io(1);
  CHECK(last_device(*d) == "8:32");
  CHECK(info(*d) == "2 0 0 0 2 1 A 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 F 1 8:64 F 1 ");
  finish(*d);
}

TEST_CASE("path choice §3: disable_group moves the next I/O away, enable_group fails back") {
  auto d = make(two_groups);
  d->io(1);
  message(*d, "disable_group 1");
  CHECK(info(*d) == "2 0 0 0 2 1 D 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  d->io(1);
  CHECK(last_device(*d) == "8:48");
  CHECK(info(*d) == "2 0 0 0 2 2 D 0 2 0 8:16 A 0 8:32 A 0 A 0 2 0 8:48 A 0 8:64 A 0 ");
  d->io(1);
  CHECK(last_device(*d) == "8:64"); // sticky on PG2

  message(*d, "enable_group 1");
  CHECK(info(*d) == "2 0 0 0 2 1 E 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  d->io(1);
  CHECK(last_device(*d) == "8:32"); // full selection from PG1 again: fail-back
  CHECK(info(*d) == "2 0 0 0 2 1 A 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(d->engine().event_nr() == 2);
  finish(*d);
}

TEST_CASE("path choice §4.2, §4.6: stickiness: reinstating a path of an earlier group does not fail back") {
  auto d = make(two_groups);
  d->io(1);
  message(*d, "fail_path 8:16");
  message(*d, "fail_path 8:32");
  d->io(1);
  CHECK(last_device(*d) == "8:48");
  CHECK(info(*d) == "2 0 0 0 2 2 E 0 2 0 8:16 F 1 8:32 F 1 A 0 2 0 8:48 A 0 8:64 A 0 ");

  message(*d, "reinstate_path 8:16");
  CHECK(info(*d) == "2 0 0 0 2 2 E 0 2 0 8:16 A 1 8:32 F 1 A 0 2 0 8:48 A 0 8:64 A 0 ");
  d->io(2);
  CHECK(d->ios()[2].last_device == "8:64");
  CHECK(d->ios()[3].last_device == "8:48");
  CHECK(info(*d) == "2 0 0 0 2 2 E 0 2 0 8:16 A 1 8:32 F 1 A 0 2 0 8:48 A 0 8:64 A 0 ");

  // Fail-back is user space's job.
  message(*d, "switch_group 1");
  d->io(1);
  CHECK(last_device(*d) == "8:16");
  CHECK(info(*d) == "2 0 0 0 2 1 A 0 2 0 8:16 A 1 8:32 F 1 E 0 2 0 8:48 A 0 8:64 A 0 ");
  finish(*d);
}

TEST_CASE("path choice §1.4, §4.2: the initial group is taken as next_pg even when it was disabled before any I/O") {
  // disable_group forgets current_pg but not next_pg, and step 3 of §4.2 does not look at
  // `bypassed`: the first I/O goes to the initial group, with an undelayed pg_init.
  auto d = make("0 1 alua 2 2 round-robin 0 1 0 8:16 round-robin 0 1 0 8:32");
  message(*d, "disable_group 2");
  CHECK(info(*d) == "2 1 0 0 2 2 E 0 1 0 8:16 A 0 D 0 1 0 8:32 A 0 ");
  d->io(1);
  CHECK(info(*d) == "2 1 1 0 2 2 E 0 1 0 8:16 A 0 D 0 1 0 8:32 A 0 ");
  d->run();
  CHECK(d->handler()->activated() == lines{"8:32"});
  CHECK(d->executor().now_ns() == 0);
  // The successful activation re-enabled it.
  CHECK(info(*d) == "2 0 1 0 2 2 E 0 1 0 8:16 A 0 A 0 1 0 8:32 A 0 ");
  CHECK(last_device(*d) == "8:32");
  finish(*d);
}

TEST_CASE("path choice §4.2: all groups bypassed: the second pass uses PG1 anyway, without a handler") {
  auto d = make(two_groups);
  d->io(1);
  message(*d, "switch_group 2"); // clears nothing but next_pg is consumed by the next I/O
  d->io(1);
  CHECK(last_device(*d) == "8:48");
  message(*d, "disable_group 1");
  message(*d, "disable_group 2");
  CHECK(info(*d) == "2 0 0 0 2 1 D 0 2 0 8:16 A 0 8:32 A 0 D 0 2 0 8:48 A 0 8:64 A 0 ");
  d->io(1);
  CHECK(last_device(*d) == "8:32");
  CHECK(info(*d) == "2 0 0 0 2 1 D 0 2 0 8:16 A 0 8:32 A 0 D 0 2 0 8:48 A 0 8:64 A 0 ");
  finish(*d);
}

TEST_CASE("path choice §4.2, §4.5: all groups bypassed: the second pass's pg_init is delayed (2000 ms default)") {
  auto d = make("0 1 alua 2 1 round-robin 0 1 0 8:16 round-robin 0 1 0 8:32");
  d->io(1); // consumes next_pg (the initial group): PG1, activated at once
  d->run();
  CHECK(d->handler()->activated() == lines{"8:16"});
  CHECK(info(*d) == "2 0 1 0 2 1 A 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");

  message(*d, "disable_group 1");
  message(*d, "disable_group 2");
  CHECK(info(*d) == "2 0 1 0 2 1 D 0 1 0 8:16 A 0 D 0 1 0 8:32 A 0 ");
  d->io(1);
  // Second pass: PG1 again, a new switch (count 0, then 1 for the round), D over A.
  CHECK(info(*d) == "2 1 1 0 2 1 D 0 1 0 8:16 A 0 D 0 1 0 8:32 A 0 ");
  CHECK(d->engine().pg_init_in_progress() == 1);
  d->run(); // runs the table events; the activation is not due
  CHECK(d->handler()->activated() == lines{"8:16"});
  std::uint64_t due = 0;
  REQUIRE(d->executor().next_due(due));
  CHECK(due == 2000 * ms);
  d->sleep(1999);
  CHECK(d->handler()->activated() == lines{"8:16"});
  CHECK(d->ios()[1].dispatches == 0);
  CHECK(info(*d) == "2 1 1 0 2 1 D 0 1 0 8:16 A 0 D 0 1 0 8:32 A 0 ");
  d->sleep(1);
  CHECK(d->handler()->activated() == lines{"8:16", "8:16"});
  // The successful activation re-enabled PG1; PG2 stays bypassed.
  CHECK(info(*d) == "2 0 1 0 2 1 A 0 1 0 8:16 A 0 D 0 1 0 8:32 A 0 ");
  CHECK(d->ios()[1].dispatches == 1);
  finish(*d);
}

TEST_CASE("path choice §4.2, §4.5: the second pass's delay is pg_init_delay_msecs when given") {
  auto d = make("2 pg_init_delay_msecs 250 1 alua 1 1 round-robin 0 1 0 8:16");
  CHECK(table(*d) == "2 pg_init_delay_msecs 250 1 alua 1 1 round-robin 0 1 1 8:16 1 ");
  d->io(1);
  d->run();
  CHECK(d->handler()->activated() == lines{"8:16"});
  message(*d, "disable_group 1");
  d->io(1);
  CHECK(info(*d) == "2 1 1 0 1 1 D 0 1 0 8:16 A 0 ");
  d->sleep(249);
  CHECK(d->handler()->activated() == lines{"8:16"});
  d->sleep(1);
  CHECK(d->handler()->activated() == lines{"8:16", "8:16"});
  CHECK(info(*d) == "2 0 1 0 1 1 A 0 1 0 8:16 A 0 ");
  finish(*d);
}

TEST_CASE("path choice §4.5: DEV_TEMP_BUSY on the only group: bypassed, then reused by the second pass after a delay") {
  auto d = make("0 1 alua 1 1 round-robin 0 1 0 8:16");
  d->handler()->push(mpath::activation_result::dev_temp_busy);
  d->io(1);
  d->run();
  // Bypassed by the first activation, chosen again by the second pass with a delayed pg_init.
  CHECK(d->handler()->activated() == lines{"8:16"});
  CHECK(info(*d) == "2 1 1 0 1 1 D 0 1 0 8:16 A 0 ");
  CHECK(d->engine().event_nr() == 1);
  d->sleep(2000);
  CHECK(d->handler()->activated() == lines{"8:16", "8:16"});
  CHECK(info(*d) == "2 0 1 0 1 1 A 0 1 0 8:16 A 0 ");
  CHECK(d->ios()[0].dispatches == 1);
  finish(*d);
}
