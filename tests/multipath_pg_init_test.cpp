// Path-group activation (pg_init, kernel-target.md §4.5) step by step through the simulation: each
// handler result code, the `pg_init_retries N` arithmetic, the retry delay on the virtual clock,
// pg_init_count in INFO, bypassed groups, and the activation a reinstate starts (§4.6).
//
// The simulated handler (`scripted_handler`) answers to any handler name and takes its results, in
// activation order, from `handler()->push(...)`; an activation with nothing scripted succeeds.
// Activations run as executor work, so `executor().run_one()` steps through them one at a time.

#include <mpath/multipath.hpp>
#include <mpath/testing/sim.hpp>

#include "support/sim_helpers.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using mpath::activation_result;
using mpath::blk_status;
using mpath::status_type;
using mpath_test::device;
using mpath_test::info;
using mpath_test::lines;
using mpath_test::make;
using mpath_test::table;

lines activated(device& d) { return d.handler()->activated(); }

constexpr std::uint64_t ms = 1'000'000;

/// Every I/O submitted so far finished exactly once, with `status`.
void all_done(device& d, blk_status status) {
  for (const auto& io : d.ios()) {
    CAPTURE(io.id);
    CHECK(io.completions == 1);
    CHECK(io.final_status == status);
  }
}

/// Completes everything in flight successfully.
void drain(device& d) {
  while (d.complete("", 100, blk_status::ok) > 0) {
  }
  d.run();
}

// Two groups of one path each, behind a handler.
constexpr std::string_view two_single = "0 1 alua 2 1 round-robin 0 1 0 8:16 round-robin 0 1 0 8:32";

} // namespace

// ------------------------------------------------------------------------------- success

TEST_CASE("pg_init §4.5: OK: the first I/O switches to PG1, queues, activates every path, then dispatches") {
  auto d = make("0 1 alua 2 1 round-robin 0 2 0 8:16 8:32 round-robin 0 2 0 8:48 8:64");
  CHECK(table(*d) == "0 1 alua 2 1 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 2 1 8:48 1 8:64 1 ");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");

  mpath::testing::sim_io io;
  io.nr_bytes = 4096;
  CHECK(d->engine().submit(io) == mpath::disposition::delay_requeue);
  // Switched: QUEUE_IO set, one round issued, both activations scheduled but not run.
  CHECK(info(*d) == "2 1 1 0 2 1 A 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(d->engine().pg_init_in_progress() == 2);
  CHECK(d->engine().busy()); // §4.10: busy while pg_init is in progress
  CHECK(activated(*d).empty());
  // Resubmitting while the activation runs changes nothing and issues no second round.
  CHECK(d->engine().submit(io) == mpath::disposition::delay_requeue);
  CHECK(info(*d) == "2 1 1 0 2 1 A 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");

  REQUIRE(d->executor().run_one());
  CHECK(activated(*d) == lines{"8:16"});
  CHECK(info(*d) == "2 1 1 0 2 1 A 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 "); // one still out
  CHECK_FALSE(d->backend().take_kick());
  REQUIRE(d->executor().run_one());
  CHECK(activated(*d) == lines{"8:16", "8:32"});
  CHECK(info(*d) == "2 0 1 0 2 1 A 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(d->backend().take_kick()); // the requeue list is re-driven at once (product.md §5)
  CHECK_FALSE(d->engine().busy());

  CHECK(d->engine().submit(io) == mpath::disposition::dispatched);
  CHECK(d->complete("", 1, blk_status::ok) == 1);
  CHECK(io.completions == 1);
  CHECK(d->engine().event_nr() == 0); // pg_init completions raise no event
}

TEST_CASE("pg_init §4.5: no handler: a group switch needs no pg_init and QUEUE_IO clears at once") {
  auto d = make("0 0 1 1 round-robin 0 2 0 8:16 8:32");
  CHECK(info(*d) == "2 1 0 0 1 1 E 0 2 0 8:16 A 0 8:32 A 0 ");
  d->io(1);
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 0 8:16 A 0 8:32 A 0 ");
  CHECK(d->ios()[0].dispatches == 1);
  CHECK(d->handler() == nullptr);
}

// ------------------------------------------------------------------------------- failures that fail the path

TEST_CASE("pg_init §4.5: DEV_FAILED fails the path, the other path of the group carries the I/O") {
  auto d = make("0 1 alua 1 1 round-robin 0 2 0 8:16 8:32");
  d->handler()->push(activation_result::dev_failed); // for 8:16; 8:32 succeeds
  d->io(1);
  CHECK(info(*d) == "2 1 1 0 1 1 A 0 2 0 8:16 A 0 8:32 A 0 ");
  REQUIRE(d->executor().run_one());
  CHECK(info(*d) == "2 1 1 0 1 1 A 0 2 0 8:16 F 1 8:32 A 0 ");
  d->run();
  CHECK(info(*d) == "2 0 1 0 1 1 A 0 2 0 8:16 F 1 8:32 A 0 ");
  CHECK(activated(*d) == lines{"8:16", "8:32"});
  CHECK(d->take_events() == lines{"PATH_FAILED 8:16 1"});
  CHECK(d->ios()[0].last_device == "8:32");
  drain(*d);
  all_done(*d, blk_status::ok);
}

TEST_CASE("pg_init §4.5: DEV_OFFLINED, TIMED_OUT, NOSYS (with a handler) and other codes fail the path") {
  for (auto r : {activation_result::dev_offlined, activation_result::timed_out, activation_result::nosys,
                 activation_result::dev_unsupp, activation_result::notconn, activation_result::conn_failure,
                 activation_result::io, activation_result::invalid_io, activation_result::nomem}) {
    CAPTURE(int(r));
    auto d = make(two_single);
    d->handler()->push(r);
    d->io(1);
    CHECK(info(*d) == "2 1 1 0 2 1 A 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
    REQUIRE(d->executor().run_one());
    // The group has no path left: QUEUE_IO clears and held I/O is re-driven; it fails over to PG2.
    CHECK(info(*d) == "2 0 1 0 2 1 A 0 1 0 8:16 F 1 E 0 1 0 8:32 A 0 ");
    d->run();
    // PG2 becomes current: pg_init_count restarts at 0 and counts its own round.
    CHECK(info(*d) == "2 0 1 0 2 2 E 0 1 0 8:16 F 1 A 0 1 0 8:32 A 0 ");
    CHECK(activated(*d) == lines{"8:16", "8:32"});
    CHECK(d->take_events() == lines{"PATH_FAILED 8:16 1"});
    CHECK(d->ios()[0].last_device == "8:32");
    drain(*d);
    all_done(*d, blk_status::ok);
  }
}

TEST_CASE("pg_init §4.5: an activation failure of the last path with queue_if_no_path off fails the I/O") {
  auto d = make("0 1 alua 1 1 round-robin 0 1 0 8:16");
  d->handler()->push(activation_result::dev_failed);
  d->io(1);
  d->run();
  CHECK(info(*d) == "2 0 1 0 1 1 E 0 1 0 8:16 F 1 ");
  all_done(*d, blk_status::ioerr);
  CHECK(d->ios()[0].dispatches == 0);
}

// ------------------------------------------------------------------------------- DEV_TEMP_BUSY

TEST_CASE("pg_init §4.5: DEV_TEMP_BUSY bypasses the group at once, with an event, and the I/O goes to PG2") {
  auto d = make(two_single);
  d->handler()->push(activation_result::dev_temp_busy);
  d->io(1);
  CHECK(info(*d) == "2 1 1 0 2 1 A 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
  REQUIRE(d->executor().run_one());
  // Bypassed, no current group, the path is not failed.
  CHECK(info(*d) == "2 0 1 0 2 1 D 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
  CHECK(d->engine().event_nr() == 1);
  d->run();
  CHECK(info(*d) == "2 0 1 0 2 2 D 0 1 0 8:16 A 0 A 0 1 0 8:32 A 0 ");
  CHECK(activated(*d) == lines{"8:16", "8:32"});
  CHECK(d->take_events().empty()); // no path uevent: nothing failed
  CHECK(d->ios()[0].last_device == "8:32");
  CHECK(d->engine().nr_valid_paths() == 2);
  drain(*d);
  all_done(*d, blk_status::ok);
}

// ------------------------------------------------------------------------------- retry class

TEST_CASE("pg_init §4.5: with the default pg_init_retries 0 the first RETRY-class result fails the path") {
  for (auto r : {activation_result::retry, activation_result::imm_retry, activation_result::res_temp_unavail}) {
    CAPTURE(int(r));
    auto d = make("0 1 alua 1 1 round-robin 0 1 0 8:16");
    d->handler()->push(r);
    d->io(1);
    d->run();
    CHECK(info(*d) == "2 0 1 0 1 1 E 0 1 0 8:16 F 1 ");
    CHECK(activated(*d) == lines{"8:16"});
    all_done(*d, blk_status::ioerr);
  }
}

TEST_CASE("pg_init §4.5: IMM_RETRY and RES_TEMP_UNAVAIL retry at once, at most N+1 rounds with pg_init_retries N") {
  for (auto r : {activation_result::imm_retry, activation_result::res_temp_unavail}) {
    CAPTURE(int(r));
    auto d = make("3 queue_if_no_path pg_init_retries 2 1 alua 1 1 round-robin 0 1 0 8:16");
    CHECK(table(*d) == "3 queue_if_no_path pg_init_retries 2 1 alua 1 1 round-robin 0 1 1 8:16 1 ");
    for (int i = 0; i < 3; ++i)
      d->handler()->push(r);
    d->io(1);
    CHECK(info(*d) == "2 1 1 0 1 1 A 0 1 0 8:16 A 0 ");
    REQUIRE(d->executor().run_one()); // round 1: retry, round 2 issued without delay
    CHECK(info(*d) == "2 1 2 0 1 1 A 0 1 0 8:16 A 0 ");
    REQUIRE(d->executor().run_one()); // round 2: retry, round 3 issued
    CHECK(info(*d) == "2 1 3 0 1 1 A 0 1 0 8:16 A 0 ");
    REQUIRE(d->executor().run_one()); // round 3: count 3 > 2, the path fails
    CHECK(info(*d) == "2 0 3 0 1 1 A 0 1 0 8:16 F 1 ");
    CHECK(d->executor().now_ns() == 0);
    d->run();
    CHECK(activated(*d) == lines{"8:16", "8:16", "8:16"});
    // queue_if_no_path: the I/O waits; the reinstate brings it to the path.
    CHECK(info(*d) == "2 0 3 0 1 1 E 0 1 0 8:16 F 1 ");
    CHECK(d->ios()[0].completions == 0);
    REQUIRE(d->engine().message("reinstate_path 8:16"));
    d->run();
    CHECK(d->ios()[0].dispatches == 1);
    drain(*d);
    all_done(*d, blk_status::ok);
  }
}

TEST_CASE("pg_init §4.5: a retry that then succeeds leaves QUEUE_IO clear and pg_init_count at the rounds used") {
  auto d = make("2 pg_init_retries 1 1 alua 1 1 round-robin 0 1 0 8:16");
  d->handler()->push(activation_result::imm_retry); // then OK
  d->io(1);
  d->run();
  CHECK(info(*d) == "2 0 2 0 1 1 A 0 1 0 8:16 A 0 ");
  CHECK(activated(*d) == lines{"8:16", "8:16"});
  drain(*d);
  all_done(*d, blk_status::ok);
}

TEST_CASE("pg_init §4.5: RETRY delays the next round by the default 2000 ms") {
  auto d = make("2 pg_init_retries 1 1 alua 1 1 round-robin 0 1 0 8:16");
  d->handler()->push(activation_result::retry);
  d->io(1);
  d->run();
  CHECK(activated(*d) == lines{"8:16"});
  CHECK(info(*d) == "2 1 2 0 1 1 A 0 1 0 8:16 A 0 ");
  std::uint64_t due = 0;
  REQUIRE(d->executor().next_due(due));
  CHECK(due == 2000 * ms);

  d->sleep(1999);
  CHECK(activated(*d) == lines{"8:16"});
  CHECK(info(*d) == "2 1 2 0 1 1 A 0 1 0 8:16 A 0 ");
  CHECK(d->ios()[0].dispatches == 0);
  d->sleep(1);
  CHECK(activated(*d) == lines{"8:16", "8:16"});
  CHECK(info(*d) == "2 0 2 0 1 1 A 0 1 0 8:16 A 0 ");
  CHECK(d->ios()[0].dispatches == 1);
  drain(*d);
  all_done(*d, blk_status::ok);
}

TEST_CASE("pg_init §4.5: RETRY uses pg_init_delay_msecs, at most N+1 rounds, then fails the path") {
  auto d = make("4 pg_init_retries 2 pg_init_delay_msecs 500 1 alua 1 1 round-robin 0 1 0 8:16");
  CHECK(table(*d) == "4 pg_init_retries 2 pg_init_delay_msecs 500 1 alua 1 1 round-robin 0 1 1 8:16 1 ");
  for (int i = 0; i < 3; ++i)
    d->handler()->push(activation_result::retry);
  d->io(1);
  d->run();
  CHECK(info(*d) == "2 1 2 0 1 1 A 0 1 0 8:16 A 0 ");
  d->sleep(499);
  CHECK(activated(*d).size() == 1);
  d->sleep(1);
  CHECK(activated(*d).size() == 2);
  CHECK(info(*d) == "2 1 3 0 1 1 A 0 1 0 8:16 A 0 ");
  d->sleep(499);
  CHECK(activated(*d).size() == 2);
  d->sleep(1);
  CHECK(activated(*d).size() == 3);
  CHECK(info(*d) == "2 0 3 0 1 1 E 0 1 0 8:16 F 1 ");
  all_done(*d, blk_status::ioerr);
  d->sleep(10'000);
  CHECK(activated(*d).size() == 3); // no fourth round
}

TEST_CASE("pg_init §4.5: pg_init_delay_msecs 0 given explicitly means no delay (and is printed)") {
  auto d = make("4 pg_init_retries 1 pg_init_delay_msecs 0 1 alua 1 1 round-robin 0 1 0 8:16");
  CHECK(table(*d) == "4 pg_init_retries 1 pg_init_delay_msecs 0 1 alua 1 1 round-robin 0 1 1 8:16 1 ");
  d->handler()->push(activation_result::retry);
  d->io(1);
  d->run();
  CHECK(activated(*d) == lines{"8:16", "8:16"});
  CHECK(info(*d) == "2 0 2 0 1 1 A 0 1 0 8:16 A 0 ");
  CHECK(d->executor().now_ns() == 0);
}

TEST_CASE("pg_init §4.5: a retry round activates every active path of the group again") {
  auto d = make("2 pg_init_retries 1 1 alua 1 1 round-robin 0 2 0 8:16 8:32");
  d->handler()->push(activation_result::imm_retry); // 8:16 asks for a retry, 8:32 succeeds
  d->io(1);
  d->run();
  CHECK(activated(*d) == lines{"8:16", "8:32", "8:16", "8:32"});
  CHECK(info(*d) == "2 0 2 0 1 1 A 0 2 0 8:16 A 0 8:32 A 0 ");
  drain(*d);
  all_done(*d, blk_status::ok);
}

// ------------------------------------------------------------------------------- pg_init_count and groups

TEST_CASE("pg_init §4.5: pg_init_count restarts at each group switch") {
  auto d = make(two_single);
  d->io(1);
  d->run();
  CHECK(info(*d) == "2 0 1 0 2 1 A 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
  REQUIRE(d->engine().message("switch_group 2"));
  CHECK(info(*d) == "2 0 1 0 2 2 E 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
  d->io(1);
  CHECK(info(*d) == "2 1 1 0 2 2 E 0 1 0 8:16 A 0 A 0 1 0 8:32 A 0 ");
  d->run();
  CHECK(info(*d) == "2 0 1 0 2 2 E 0 1 0 8:16 A 0 A 0 1 0 8:32 A 0 ");
  CHECK(activated(*d) == lines{"8:16", "8:32"});
  CHECK(d->ios()[1].last_device == "8:32");
  drain(*d);
  all_done(*d, blk_status::ok);
}

TEST_CASE("pg_init §4.5, §4.2: a successful activation re-enables a bypassed group") {
  auto d = make(two_single);
  d->handler()->push(activation_result::dev_temp_busy); // PG1 bypassed by its handler
  d->io(1);
  d->run();
  CHECK(info(*d) == "2 0 1 0 2 2 D 0 1 0 8:16 A 0 A 0 1 0 8:32 A 0 ");
  // The user switches back: switch_group clears every bypass, and PG1 activates fine this time.
  REQUIRE(d->engine().message("switch_group 1"));
  CHECK(info(*d) == "2 0 1 0 2 1 E 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
  REQUIRE(d->engine().message("disable_group 1")); // bypassed again, but explicitly named next
  d->io(1);
  // next_pg is honoured even for a bypassed group; D takes precedence over A for the current one.
  CHECK(info(*d) == "2 1 1 0 2 1 D 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
  d->run();
  CHECK(info(*d) == "2 0 1 0 2 1 A 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
  CHECK(activated(*d) == lines{"8:16", "8:32", "8:16"});
  drain(*d);
  all_done(*d, blk_status::ok);
}

// ------------------------------------------------------------------------------- reinstate

TEST_CASE("pg_init §4.6: reinstating a path of the current group activates that path alone") {
  auto d = make("0 1 alua 2 1 round-robin 0 2 0 8:16 8:32 round-robin 0 1 0 8:48");
  d->io(1);
  d->run();
  CHECK(activated(*d) == lines{"8:16", "8:32"});
  CHECK(info(*d) == "2 0 1 0 2 1 A 0 2 0 8:16 A 0 8:32 A 0 E 0 1 0 8:48 A 0 ");

  REQUIRE(d->engine().message("fail_path 8:32"));
  REQUIRE(d->engine().message("reinstate_path 8:32"));
  CHECK(d->engine().pg_init_in_progress() == 1);
  CHECK(d->engine().busy());
  // Not a new round: pg_init_count and QUEUE_IO are untouched, I/O keeps flowing.
  CHECK(info(*d) == "2 0 1 0 2 1 A 0 2 0 8:16 A 0 8:32 A 1 E 0 1 0 8:48 A 0 ");
  d->io(1);
  CHECK(d->ios()[1].dispatches == 1);
  d->run();
  CHECK(activated(*d) == lines{"8:16", "8:32", "8:32"});
  CHECK(d->engine().pg_init_in_progress() == 0);
  CHECK(info(*d) == "2 0 1 0 2 1 A 0 2 0 8:16 A 0 8:32 A 1 E 0 1 0 8:48 A 0 ");

  // A path of another group is not activated when reinstated.
  REQUIRE(d->engine().message("fail_path 8:48"));
  REQUIRE(d->engine().message("reinstate_path 8:48"));
  CHECK(d->engine().pg_init_in_progress() == 0);
  d->run();
  CHECK(activated(*d) == lines{"8:16", "8:32", "8:32"});
  drain(*d);
  all_done(*d, blk_status::ok);
}

TEST_CASE("pg_init §4.6: the reinstate that ends an all-paths-down period activates nothing itself") {
  auto d = make("1 queue_if_no_path 1 alua 1 1 round-robin 0 2 0 8:16 8:32");
  d->io(1);
  d->run();
  CHECK(activated(*d) == lines{"8:16", "8:32"});
  REQUIRE(d->engine().message("fail_path 8:16"));
  REQUIRE(d->engine().message("fail_path 8:32"));
  REQUIRE(d->engine().message("reinstate_path 8:16"));
  CHECK(d->engine().pg_init_in_progress() == 0);
  d->io(1);
  d->run();
  // PG1 is still current (no I/O saw zero paths), so the path is used without a new pg_init.
  CHECK(activated(*d) == lines{"8:16", "8:32"});
  CHECK(info(*d) == "2 0 1 0 1 1 A 0 2 0 8:16 A 1 8:32 F 1 ");
  CHECK(d->ios()[1].last_device == "8:16");
  drain(*d);
  all_done(*d, blk_status::ok);
}

// ------------------------------------------------------------------------------- suspend

TEST_CASE("pg_init §4.5: postsuspend waits for a delayed activation, virtual time passes while it waits") {
  auto d = make("2 pg_init_delay_msecs 300 1 alua 1 1 round-robin 0 1 0 8:16");
  d->io(1);
  d->run();
  REQUIRE(d->engine().message("disable_group 1"));
  d->io(1); // second pass: the activation is due in 300 ms
  d->run();
  CHECK(d->engine().pg_init_in_progress() == 1);
  CHECK(info(*d) == "2 1 1 0 1 1 D 0 1 0 8:16 A 0 ");

  d->suspend(false); // the kernel's postsuspend blocks until the activation has run
  CHECK(d->engine().suspended());
  CHECK(d->engine().pg_init_in_progress() == 0);
  CHECK(d->executor().now_ns() == 300 * ms);
  CHECK(activated(*d) == lines{"8:16", "8:16"});
  CHECK(info(*d) == "2 0 1 0 1 1 A 0 1 0 8:16 A 0 ");
  CHECK(d->ios()[1].dispatches == 0); // held by "DM core" while suspended

  d->resume();
  CHECK(d->ios()[1].dispatches == 1);
  drain(*d);
  all_done(*d, blk_status::ok);
}

TEST_CASE("pg_init §4.5: a RETRY-class result while postsuspend flushes activations fails the path") {
  // PG_INIT_DISABLED is set while postsuspend waits, so no retry round may start.
  auto d = make("4 pg_init_retries 5 pg_init_delay_msecs 100 1 alua 1 1 round-robin 0 1 0 8:16");
  d->io(1);
  d->run();
  REQUIRE(d->engine().message("disable_group 1"));
  d->handler()->push(activation_result::imm_retry);
  d->io(1);
  d->run();
  d->suspend(true);
  CHECK(activated(*d) == lines{"8:16", "8:16"});
  CHECK(info(*d) == "2 0 1 0 1 1 A 0 1 0 8:16 F 1 ");
  d->resume();
  CHECK(d->ios()[0].completions == 0); // the first I/O is still in flight on the failed path
  CHECK(d->ios()[1].completions == 1);
  CHECK(d->ios()[1].final_status == blk_status::ioerr);
  drain(*d);
  CHECK(d->ios()[0].completions == 1);
}

TEST_CASE("pg_init §4.5: an activation scheduled for a path that failed meanwhile reports DEV_OFFLINED") {
  auto d = make("0 1 alua 1 1 round-robin 0 2 0 8:16 8:32");
  d->io(1);
  CHECK(d->engine().pg_init_in_progress() == 2);
  REQUIRE(d->engine().message("fail_path 8:16"));
  d->run();
  // The handler is not asked about the failed path, and it is not failed a second time.
  CHECK(activated(*d) == lines{"8:32"});
  CHECK(info(*d) == "2 0 1 0 1 1 A 0 2 0 8:16 F 1 8:32 A 0 ");
  CHECK(d->ios()[0].last_device == "8:32");
  drain(*d);
  all_done(*d, blk_status::ok);
}

// ------------------------------------------------------------------------------- group messages

TEST_CASE("pg_init §3, §4.2: switch_group / enable_group naming the current group forget it: a new pg_init round") {
  auto d = make("0 1 alua 2 1 round-robin 0 1 0 8:16 round-robin 0 1 0 8:32");
  d->io(1);
  d->run();
  CHECK(activated(*d) == lines{"8:16"});
  REQUIRE(d->engine().message("switch_group 1"));
  CHECK(info(*d) == "2 0 1 0 2 1 E 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
  d->io(1);
  CHECK(info(*d) == "2 1 1 0 2 1 A 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
  d->run();
  CHECK(activated(*d) == lines{"8:16", "8:16"});
  REQUIRE(d->engine().message("enable_group 1"));
  d->io(1);
  d->run();
  CHECK(activated(*d) == lines{"8:16", "8:16", "8:16"});
  CHECK(info(*d) == "2 0 1 0 2 1 A 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
  drain(*d);
  all_done(*d, blk_status::ok);
}

// ------------------------------------------------------------------------------- interleavings

TEST_CASE("pg_init §4.5, §4.6: every path fails while the activation is pending, a reinstate starts over") {
  auto d = make("1 queue_if_no_path 1 alua 1 1 round-robin 0 2 0 8:16 8:32");
  d->io(1);
  CHECK(d->engine().pg_init_in_progress() == 2);
  REQUIRE(d->engine().message("fail_path 8:16"));
  REQUIRE(d->engine().message("fail_path 8:32"));
  d->run();
  // Both activations found their path failed (DEV_OFFLINED, the handler was not asked); the I/O
  // waits with no path.
  CHECK(activated(*d).empty());
  CHECK(info(*d) == "2 0 1 0 1 1 E 0 2 0 8:16 F 1 8:32 F 1 ");
  CHECK(d->stats().queued == 1);

  REQUIRE(d->engine().message("reinstate_path 8:32"));
  CHECK(d->engine().pg_init_in_progress() == 0); // the first path back activates nothing itself
  d->run();
  // The I/O re-selected PG1 (it had been forgotten at zero paths): a new switch, a new round.
  CHECK(activated(*d) == lines{"8:32"});
  CHECK(info(*d) == "2 0 1 0 1 1 A 0 2 0 8:16 F 1 8:32 A 1 ");
  CHECK(d->ios()[0].last_device == "8:32");
  drain(*d);
  all_done(*d, blk_status::ok);
  CHECK(d->take_events() == lines{"PATH_FAILED 8:16 1", "PATH_FAILED 8:32 0", "PATH_REINSTATED 8:32 1"});
}
