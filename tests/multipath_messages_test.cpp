// Messages of kernel-target.md §3 through the engine, valid and invalid, suspended and not. Every
// step checks the exact INFO and TABLE text (kernel format, trailing blank included), the errno
// and the kernel's text, and whether a table event was raised (§4.6: fail/reinstate and the group
// messages raise one, queue_if_no_path changes do not).

#include <mpath/multipath.hpp>
#include <mpath/testing/sim.hpp>

#include "support/sim_helpers.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using mpath::status_type;
using mpath_test::device;
using mpath_test::info;
using mpath_test::lines;
using mpath_test::make;
using mpath_test::table;

/// Sends a message that must succeed.
void ok(device& d, std::string_view msg) {
  INFO("message: ", msg);
  auto r = d.engine().message(msg);
  REQUIRE(r);
}

/// Sends a message that must fail with `code` and `text` and change nothing: INFO, TABLE and the
/// event counter stay as they were.
void fails(device& d, std::string_view msg, int code, std::string_view text) {
  INFO("message: ", msg);
  std::string before_info = info(d), before_table = table(d);
  auto events = d.engine().event_nr();
  auto r = d.engine().message(msg);
  REQUIRE_FALSE(r);
  CHECK(r.err().code == code);
  if (!text.empty())
    CHECK(r.err().text == text);
  CHECK(info(d) == before_info);
  CHECK(table(d) == before_table);
  CHECK(d.engine().event_nr() == events);
}

// Two round-robin groups of two paths, no handler, no features.
constexpr std::string_view two_groups = "0 0 2 1 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 2 1 8:48 1 8:64 1";
constexpr std::string_view two_groups_table =
    "0 0 2 1 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 2 1 8:48 1 8:64 1 ";
constexpr std::string_view two_groups_qifnp_table =
    "1 queue_if_no_path 0 2 1 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 2 1 8:48 1 8:64 1 ";
constexpr std::string_view two_groups_fresh = "2 1 0 0 2 1 E 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ";

constexpr int einval = 22; // the kernel's EINVAL and EBUSY, as the spec numbers them
constexpr int ebusy = 16;
static_assert(EINVAL == einval && EBUSY == ebusy);

/// Every message of §3 once, valid words with valid arguments.
const std::vector<std::string_view> every_message = {
    "queue_if_no_path", "fail_if_no_path", "disable_group 1",     "enable_group 1",
    "switch_group 2",   "fail_path 8:16",  "reinstate_path 8:16",
};

/// Invalid ones of every kind.
const std::vector<std::string_view> every_bad_message = {
    "", "fail_path", "disable_group 0", "switch_group 3", "fail_path 8:99", "frobnicate 1", "a b c",
};

} // namespace

// ------------------------------------------------------------------------------- one-word messages

TEST_CASE("messages §3: queue_if_no_path and fail_if_no_path set and clear the TABLE feature, no event") {
  auto d = make(two_groups);
  CHECK(table(*d) == two_groups_table);

  ok(*d, "queue_if_no_path");
  CHECK(table(*d) == two_groups_qifnp_table);
  CHECK(info(*d) == two_groups_fresh); // INFO has no queue_if_no_path field
  ok(*d, "queue_if_no_path");          // idempotent
  CHECK(table(*d) == two_groups_qifnp_table);

  ok(*d, "fail_if_no_path");
  CHECK(table(*d) == two_groups_table);
  ok(*d, "fail_if_no_path");
  CHECK(table(*d) == two_groups_table);
  CHECK(info(*d) == two_groups_fresh);

  CHECK(d->engine().event_nr() == 0); // "not by queue_if_no_path changes" (§4.6)
  d->run();
  CHECK(d->take_events().empty());
}

TEST_CASE("messages §3: fail_if_no_path on a table loaded with queue_if_no_path") {
  auto d = make("1 queue_if_no_path 0 1 1 round-robin 0 1 0 8:16");
  CHECK(table(*d) == "1 queue_if_no_path 0 1 1 round-robin 0 1 1 8:16 1 ");
  ok(*d, "fail_if_no_path");
  CHECK(table(*d) == "0 0 1 1 round-robin 0 1 1 8:16 1 ");
  ok(*d, "queue_if_no_path");
  CHECK(table(*d) == "1 queue_if_no_path 0 1 1 round-robin 0 1 1 8:16 1 ");
}

TEST_CASE("messages §3: words are matched case-insensitively") {
  auto d = make(two_groups);
  ok(*d, "QUEUE_IF_NO_PATH");
  CHECK(table(*d) == two_groups_qifnp_table);
  ok(*d, "Fail_If_No_Path");
  CHECK(table(*d) == two_groups_table);

  ok(*d, "FAIL_PATH 8:16");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 F 1 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  ok(*d, "Reinstate_Path 8:16");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 A 1 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  ok(*d, "DISABLE_GROUP 2");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 A 1 8:32 A 0 D 0 2 0 8:48 A 0 8:64 A 0 ");
  ok(*d, "Enable_Group 2");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 A 1 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  ok(*d, "sWiTcH_gRoUp 2");
  CHECK(info(*d) == "2 1 0 0 2 2 E 0 2 0 8:16 A 1 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(d->engine().event_nr() == 5);
  d->run();
  CHECK(d->take_events() == lines{"PATH_FAILED 8:16 3", "PATH_REINSTATED 8:16 4"});
}

TEST_CASE("messages §3: blanks around and between the words do not matter") {
  auto d = make(two_groups);
  ok(*d, "  fail_path\t 8:32  ");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 A 0 8:32 F 1 E 0 2 0 8:48 A 0 8:64 A 0 ");
}

// ------------------------------------------------------------------------------- arity and unknown words

TEST_CASE("messages §3: any arity other than 2 (and the two 1-word messages) is EINVAL") {
  auto d = make(two_groups);
  fails(*d, "", einval, "Invalid multipath message arguments. Expected 2 arguments, got 0.");
  fails(*d, "fail_path", einval, "Invalid multipath message arguments. Expected 2 arguments, got 1.");
  fails(*d, "reinstate_path", einval, "Invalid multipath message arguments. Expected 2 arguments, got 1.");
  fails(*d, "disable_group", einval, "Invalid multipath message arguments. Expected 2 arguments, got 1.");
  fails(*d, "frobnicate", einval, "Invalid multipath message arguments. Expected 2 arguments, got 1.");
  fails(*d, "fail_path 8:16 8:32", einval, "Invalid multipath message arguments. Expected 2 arguments, got 3.");
  fails(*d, "switch_group 1 2 3", einval, "Invalid multipath message arguments. Expected 2 arguments, got 4.");
  fails(*d, "queue_if_no_path fail_if_no_path queue_if_no_path", einval,
        "Invalid multipath message arguments. Expected 2 arguments, got 3.");
  CHECK(info(*d) == two_groups_fresh);
  CHECK(table(*d) == two_groups_table);
}

TEST_CASE("messages §3: an unknown word of a 2-word message is EINVAL 'Unrecognised multipath message received'") {
  auto d = make(two_groups);
  fails(*d, "frobnicate 1", einval, "Unrecognised multipath message received: frobnicate");
  fails(*d, "FailPath 8:16", einval, "Unrecognised multipath message received: FailPath");
  fails(*d, "fail-path 8:16", einval, "Unrecognised multipath message received: fail-path");
  // The 1-word messages are only recognised alone: with an argument they are unknown 2-word ones.
  fails(*d, "queue_if_no_path 1", einval, "Unrecognised multipath message received: queue_if_no_path");
  fails(*d, "Fail_If_No_Path now", einval, "Unrecognised multipath message received: Fail_If_No_Path");
}

// ------------------------------------------------------------------------------- group messages

TEST_CASE("messages §3: disable_group N / enable_group N mark the group D and back, with an event each") {
  auto d = make(two_groups);
  d->io(1);
  CHECK(info(*d) == "2 0 0 0 2 1 A 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");

  ok(*d, "disable_group 2");
  CHECK(d->engine().event_nr() == 1);
  // Not the current group, but the current group is forgotten all the same (§3).
  CHECK(info(*d) == "2 0 0 0 2 1 E 0 2 0 8:16 A 0 8:32 A 0 D 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(table(*d) == two_groups_table); // TABLE does not show bypassing
  ok(*d, "disable_group 2");            // again: still fine, still an event
  CHECK(d->engine().event_nr() == 2);

  ok(*d, "disable_group 1");
  CHECK(info(*d) == "2 0 0 0 2 1 D 0 2 0 8:16 A 0 8:32 A 0 D 0 2 0 8:48 A 0 8:64 A 0 ");
  ok(*d, "enable_group 2");
  CHECK(info(*d) == "2 0 0 0 2 1 D 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  ok(*d, "enable_group 2"); // enabling an enabled group is fine too
  ok(*d, "enable_group 1");
  CHECK(info(*d) == "2 0 0 0 2 1 E 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(d->engine().event_nr() == 6);
  d->run();
  CHECK(d->take_events().empty()); // table events only, no path uevents
}

TEST_CASE("messages §3: a bad group number is EINVAL with the bypass_pg / switch_pg_num text") {
  auto d = make(two_groups);
  for (std::string_view word : {"disable_group", "enable_group", "switch_group"}) {
    std::string text = word == "switch_group" ? "invalid PG number supplied to switch_pg_num"
                                              : "invalid PG number supplied to bypass_pg";
    for (std::string_view arg : {"0", "3", "4294967295", "4294967296", "-1", "+1", "1x", "x1", "01x", "one", "1.0"}) {
      std::string msg = std::string(word) + " " + std::string(arg);
      fails(*d, msg, einval, text);
    }
  }
  // A leading zero is still exactly one decimal number ("%u%c" reads it).
  ok(*d, "disable_group 02");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 A 0 8:32 A 0 D 0 2 0 8:48 A 0 8:64 A 0 ");
}

TEST_CASE("messages §3: group messages on a table without groups are always EINVAL") {
  auto d = make("0 0 0 0");
  CHECK(table(*d) == "0 0 0 0 ");
  CHECK(info(*d) == "2 1 0 0 0 0 ");
  fails(*d, "switch_group 0", einval, "invalid PG number supplied to switch_pg_num");
  fails(*d, "switch_group 1", einval, "invalid PG number supplied to switch_pg_num");
  fails(*d, "disable_group 1", einval, "invalid PG number supplied to bypass_pg");
  fails(*d, "enable_group 0", einval, "invalid PG number supplied to bypass_pg");
  fails(*d, "fail_path 8:16", einval, "message: error getting device 8:16");
  ok(*d, "queue_if_no_path");
  CHECK(table(*d) == "1 queue_if_no_path 0 0 0 ");
}

TEST_CASE("messages §3: switch_group N clears every bypass, names N as next and takes effect at the next I/O") {
  auto d = make(two_groups);
  d->io(1);
  CHECK(info(*d) == "2 0 0 0 2 1 A 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  ok(*d, "disable_group 1");
  ok(*d, "disable_group 2");
  CHECK(info(*d) == "2 0 0 0 2 1 D 0 2 0 8:16 A 0 8:32 A 0 D 0 2 0 8:48 A 0 8:64 A 0 ");

  ok(*d, "switch_group 2");
  CHECK(d->engine().event_nr() == 3);
  // No current group: the reported number is next_pg's (§2.1), and no group is A yet.
  CHECK(info(*d) == "2 0 0 0 2 2 E 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(table(*d) == "0 0 2 2 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 2 1 8:48 1 8:64 1 ");

  d->io(1);
  CHECK(info(*d) == "2 0 0 0 2 2 E 0 2 0 8:16 A 0 8:32 A 0 A 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(d->ios().back().last_device == "8:48");
  d->complete("", 2, mpath::blk_status::ok);
  for (const auto& io : d->ios())
    CHECK(io.completions == 1);
}

// ------------------------------------------------------------------------------- path messages

TEST_CASE("messages §3: fail_path / reinstate_path of a device that is not a path is EINVAL") {
  auto d = make(two_groups);
  fails(*d, "fail_path 8:99", einval, "message: error getting device 8:99");
  fails(*d, "reinstate_path 8:99", einval, "message: error getting device 8:99");
  fails(*d, "fail_path 8:1", einval, "message: error getting device 8:1"); // a prefix is not a match
  fails(*d, "fail_path /dev/sdb", einval, "message: error getting device /dev/sdb");
  fails(*d, "reinstate_path junk", einval, "message: error getting device junk");
}

TEST_CASE("messages §3: a device token is matched exactly, case included (product.md §5)") {
  auto d = make("0 0 1 1 round-robin 0 2 0 /dev/sdb nvme0c1n1");
  CHECK(table(*d) == "0 0 1 1 round-robin 0 2 1 /dev/sdb 1 nvme0c1n1 1 ");
  fails(*d, "fail_path /dev/SDB", einval, "message: error getting device /dev/SDB");
  fails(*d, "fail_path sdb", einval, "message: error getting device sdb");
  ok(*d, "fail_path nvme0c1n1");
  CHECK(info(*d) == "2 1 0 0 1 1 E 0 2 0 /dev/sdb A 0 nvme0c1n1 F 1 ");
}

TEST_CASE("messages §3, §4.6: fail_path and reinstate_path are no-ops on a path already in that state") {
  auto d = make(two_groups);
  ok(*d, "reinstate_path 8:32"); // already active: 0, nothing changes, no event
  CHECK(info(*d) == two_groups_fresh);
  CHECK(d->engine().event_nr() == 0);

  ok(*d, "fail_path 8:32");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 A 0 8:32 F 1 E 0 2 0 8:48 A 0 8:64 A 0 ");
  ok(*d, "fail_path 8:32"); // already failed: fail_count stays 1
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 A 0 8:32 F 1 E 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(d->engine().event_nr() == 1);
  CHECK(d->engine().nr_valid_paths() == 3);

  ok(*d, "reinstate_path 8:32");
  ok(*d, "fail_path 8:32");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 A 0 8:32 F 2 E 0 2 0 8:48 A 0 8:64 A 0 ");
  d->run();
  CHECK(d->take_events() == lines{"PATH_FAILED 8:32 3", "PATH_REINSTATED 8:32 4", "PATH_FAILED 8:32 3"});
}

TEST_CASE("messages §3: fail_path acts on every path with that device, in every group") {
  auto d = make("0 0 2 1 round-robin 0 2 0 8:16 8:32 round-robin 0 2 0 8:48 8:16");
  CHECK(table(*d) == "0 0 2 1 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 2 1 8:48 1 8:16 1 ");
  ok(*d, "fail_path 8:16");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 F 1 8:32 A 0 E 0 2 0 8:48 A 0 8:16 F 1 ");
  CHECK(d->engine().nr_valid_paths() == 2);
  ok(*d, "reinstate_path 8:16");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 A 1 8:32 A 0 E 0 2 0 8:48 A 0 8:16 A 1 ");
  CHECK(d->engine().event_nr() == 4);
  d->run();
  CHECK(d->take_events() ==
        lines{"PATH_FAILED 8:16 3", "PATH_FAILED 8:16 2", "PATH_REINSTATED 8:16 3", "PATH_REINSTATED 8:16 4"});
}

TEST_CASE("messages §3, §4.6: fail_path of the path in use moves the next I/O to another path of the group") {
  auto d = make(two_groups);
  d->io(1);
  CHECK(d->ios().back().last_device == "8:16");
  ok(*d, "fail_path 8:16");
  // The group stays current while it has paths.
  CHECK(info(*d) == "2 0 0 0 2 1 A 0 2 0 8:16 F 1 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
  d->io(2);
  CHECK(d->ios()[1].last_device == "8:32");
  CHECK(d->ios()[2].last_device == "8:32");
  // The I/O already on the failed path still completes normally.
  CHECK(d->complete("8:16", 1, mpath::blk_status::ok) == 1);
  CHECK(d->complete("8:32", 2, mpath::blk_status::ok) == 2);
  for (const auto& io : d->ios()) {
    CHECK(io.completions == 1);
    CHECK(io.final_status == mpath::blk_status::ok);
  }
}

// ------------------------------------------------------------------------------- suspended

TEST_CASE("messages §3: every message, valid or not, is EBUSY once a flushing suspend completed") {
  auto d = make(two_groups);
  d->suspend(false);
  REQUIRE(d->engine().suspended());
  for (auto msg : every_message)
    fails(*d, msg, ebusy, "");
  for (auto msg : every_bad_message)
    fails(*d, msg, ebusy, "");
  CHECK(info(*d) == two_groups_fresh);

  d->resume();
  ok(*d, "fail_path 8:16");
  fails(*d, "fail_path 8:99", einval, "message: error getting device 8:99");
}

TEST_CASE("messages §3: every message is EBUSY during a noflush suspend too") {
  auto d = make("1 queue_if_no_path 0 2 1 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 2 1 8:48 1 8:64 1");
  d->suspend(true);
  REQUIRE(d->engine().suspended());
  for (auto msg : every_message)
    fails(*d, msg, ebusy, "");
  for (auto msg : every_bad_message)
    fails(*d, msg, ebusy, "");
  d->resume();
  ok(*d, "disable_group 1");
  CHECK(info(*d) == "2 1 0 0 2 1 D 0 2 0 8:16 A 0 8:32 A 0 E 0 2 0 8:48 A 0 8:64 A 0 ");
}

TEST_CASE("messages §3: messages are processed normally in the presuspend window") {
  auto d = make(two_groups);
  d->engine().presuspend(false);
  CHECK_FALSE(d->engine().suspended());
  ok(*d, "fail_path 8:16");
  ok(*d, "disable_group 2");
  fails(*d, "fail_path 8:99", einval, "message: error getting device 8:99");
  fails(*d, "frobnicate 1", einval, "Unrecognised multipath message received: frobnicate");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 F 1 8:32 A 0 D 0 2 0 8:48 A 0 8:64 A 0 ");

  d->engine().postsuspend([&] { d->executor().run(); });
  fails(*d, "reinstate_path 8:16", ebusy, "");
  d->resume();
  ok(*d, "reinstate_path 8:16");
  CHECK(info(*d) == "2 1 0 0 2 1 E 0 2 0 8:16 A 1 8:32 A 0 D 0 2 0 8:48 A 0 8:64 A 0 ");
}
