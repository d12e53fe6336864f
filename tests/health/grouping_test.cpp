// health/grouping.hpp: multipathd's path grouping policies (product.md §8.5) on 4-path tables, with
// the exact parameter text each one gives, the tie rules, what is kept from the current table,
// that the result parses back, and when regrouping changes the grouping.

#include <mpath/health/grouping.hpp>
#include <mpath/table.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace h = mpath::health;
using gp = h::grouping_policy;
using facts = std::vector<h::path_prio>;

/// Two groups of two paths; service-time per-path arguments `<repeat> <relative throughput>`
/// differ on every path, so each path's own can be followed.
constexpr std::string_view four_paths = "1 queue_if_no_path 1 alua 2 2 service-time 0 2 2 8:16 1 1 8:32 1 2 "
                                        "service-time 0 2 2 8:48 1 3 8:64 1 4";

mpath::table parse(std::string_view text) {
  auto t = mpath::parse_table(text);
  REQUIRE(t);
  return *t;
}

/// The regrouped parameter text, required to succeed.
std::string regroup(std::string_view table, gp policy, const facts& f) {
  auto r = h::regroup_params(parse(table), policy, f);
  REQUIRE_MESSAGE(r, r.err().text);
  return *r;
}

/// 8:16 and 8:48 at 10, 8:32 and 8:64 at 50, all usable.
const facts ten_fifty{{"8:16", 10, true, {}}, {"8:32", 50, true, {}}, {"8:48", 10, true, {}}, {"8:64", 50, true, {}}};

} // namespace

// ------------------------------------------------------------------------ the four policies

TEST_CASE("grouping: failover puts each path in its own group, best priority first") {
  CHECK(regroup(four_paths, gp::failover, ten_fifty) ==
        "1 queue_if_no_path 1 alua 4 1 service-time 0 1 2 8:32 1 2 service-time 0 1 2 8:64 1 4 "
        "service-time 0 1 2 8:16 1 1 service-time 0 1 2 8:48 1 3 ");
}

TEST_CASE("grouping: multibus puts every path in one group in table order") {
  CHECK(regroup(four_paths, gp::multibus, ten_fifty) ==
        "1 queue_if_no_path 1 alua 1 1 service-time 0 4 2 8:16 1 1 8:32 1 2 8:48 1 3 8:64 1 4 ");
}

TEST_CASE("grouping: group_by_prio makes one group per distinct priority, highest first") {
  CHECK(regroup(four_paths, gp::group_by_prio, ten_fifty) ==
        "1 queue_if_no_path 1 alua 2 1 service-time 0 2 2 8:32 1 2 8:64 1 4 service-time 0 2 2 8:16 1 1 8:48 1 3 ");
  // Three distinct priorities, three groups.
  facts three{{"8:16", 5, true, {}}, {"8:32", 50, true, {}}, {"8:48", 10, true, {}}, {"8:64", 50, true, {}}};
  CHECK(regroup(four_paths, gp::group_by_prio, three) ==
        "1 queue_if_no_path 1 alua 3 1 service-time 0 2 2 8:32 1 2 8:64 1 4 service-time 0 1 2 8:48 1 3 "
        "service-time 0 1 2 8:16 1 1 ");
}

TEST_CASE("grouping: group_by_tpg makes one group per target port group, ordered by its average priority") {
  // tpg 7 = {8:16 at 10, 8:64 at 50}: average 30; tpg 3 = {8:32 at 50, 8:48 at 50}: 50.
  facts tpg{{"8:16", 10, true, 7}, {"8:32", 50, true, 3}, {"8:48", 50, true, 3}, {"8:64", 50, true, 7}};
  CHECK(regroup(four_paths, gp::group_by_tpg, tpg) ==
        "1 queue_if_no_path 1 alua 2 1 service-time 0 2 2 8:32 1 2 8:48 1 3 service-time 0 2 2 8:16 1 1 8:64 1 4 ");
  // Only usable paths count (§8.5): with 8:16 down, tpg 7's priority is 50 too; tpg 3 has two
  // usable paths to tpg 7's one, so it stays first.
  tpg[0].usable = false;
  CHECK(regroup(four_paths, gp::group_by_tpg, tpg) ==
        "1 queue_if_no_path 1 alua 2 1 service-time 0 2 2 8:32 1 2 8:48 1 3 service-time 0 2 2 8:16 1 1 8:64 1 4 ");
  // With 8:32 down instead, both have one usable path at 50: table order, tpg 7 (8:16) first.
  tpg[0].usable = true;
  tpg[0].priority = 50;
  tpg[1].usable = false;
  CHECK(regroup(four_paths, gp::group_by_tpg, tpg) ==
        "1 queue_if_no_path 1 alua 2 1 service-time 0 2 2 8:16 1 1 8:64 1 4 service-time 0 2 2 8:32 1 2 8:48 1 3 ");
}

// ------------------------------------------------------------------------ tie rules (§8.5)

TEST_CASE("grouping: equal priorities go to more usable paths, then table order, and no priority goes last") {
  // tpg 1 = {8:16 at 10, 8:32 at 50 but unusable}: 10 with one usable path; tpg 2 = {8:48 at 5,
  // 8:64 at 15}: 10 with two, so tpg 2 first although it comes later in the table.
  facts usable{{"8:16", 10, true, 1}, {"8:32", 50, false, 1}, {"8:48", 5, true, 2}, {"8:64", 15, true, 2}};
  CHECK(regroup(four_paths, gp::group_by_tpg, usable) ==
        "1 queue_if_no_path 1 alua 2 1 service-time 0 2 2 8:48 1 3 8:64 1 4 service-time 0 2 2 8:16 1 1 8:32 1 2 ");

  // failover, every priority 10: table order. 8:32 unusable has no group priority: last.
  facts equal{{"8:16", 10, true, {}}, {"8:32", 10, false, {}}, {"8:48", 10, true, {}}, {"8:64", 10, true, {}}};
  CHECK(regroup(four_paths, gp::failover, equal) ==
        "1 queue_if_no_path 1 alua 4 1 service-time 0 1 2 8:16 1 1 service-time 0 1 2 8:48 1 3 "
        "service-time 0 1 2 8:64 1 4 service-time 0 1 2 8:32 1 2 ");

  // A group with no usable path comes after every group with a priority, even priority 0.
  facts zero{{"8:16", 0, true, {}}, {"8:32", 90, false, {}}, {"8:48", 90, false, {}}, {"8:64", 0, true, {}}};
  CHECK(regroup(four_paths, gp::group_by_prio, zero) ==
        "1 queue_if_no_path 1 alua 2 1 service-time 0 2 2 8:16 1 1 8:64 1 4 service-time 0 2 2 8:32 1 2 8:48 1 3 ");
}

TEST_CASE("grouping: the initial group is the best group, whatever the table's was") {
  auto t = h::regroup(parse("0 0 2 2 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 2 1 8:48 1 8:64 1"),
                      gp::group_by_prio, ten_fifty);
  REQUIRE(t);
  CHECK(t->initial_pg == 1);
  CHECK(t->groups[0].paths[0].device == "8:32");
  CHECK(mpath::format_table(*t) == "0 0 2 1 round-robin 0 2 1 8:32 1 8:64 1 round-robin 0 2 1 8:16 1 8:48 1 ");
}

// ------------------------------------------------------------------------ what is kept

TEST_CASE("grouping: every group takes the first group's selector and its arguments") {
  // historical-service-time `2 10 1` first, `2 20 3` second: only the first survives.
  constexpr std::string_view hst = "0 0 2 1 historical-service-time 2 10 1 2 1 8:16 0 8:32 0 "
                                   "historical-service-time 2 20 3 2 1 8:48 0 8:64 0";
  CHECK(regroup(hst, gp::group_by_prio, ten_fifty) ==
        "0 0 2 1 historical-service-time 2 10 1 2 1 8:32 0 8:64 0 historical-service-time 2 10 1 2 1 8:16 0 8:48 0 ");
  // queue-length first, round-robin second: all queue-length.
  constexpr std::string_view mixed = "0 0 2 1 queue-length 0 2 1 8:16 1 8:32 1 round-robin 0 2 1 8:48 1 8:64 1";
  CHECK(regroup(mixed, gp::multibus, ten_fifty) == "0 0 1 1 queue-length 0 4 1 8:16 1 8:32 1 8:48 1 8:64 1 ");
}

TEST_CASE("grouping: paths keep their per-path arguments and table order inside a group") {
  constexpr std::string_view rr = "0 0 1 1 round-robin 0 4 1 8:16 7 8:32 3 8:48 9 8:64 1";
  CHECK(regroup(rr, gp::group_by_prio, ten_fifty) ==
        "0 0 2 1 round-robin 0 2 1 8:32 3 8:64 1 round-robin 0 2 1 8:16 7 8:48 9 ");
}

TEST_CASE("grouping: features and the hardware handler, with its arguments, are kept") {
  constexpr std::string_view t = "3 queue_if_no_path pg_init_retries 5 2 emc 1 1 1 round-robin 0 4 1 "
                                 "8:16 1 8:32 1 8:48 1 8:64 1";
  auto text = regroup(t, gp::failover, ten_fifty);
  CHECK(text == "3 queue_if_no_path pg_init_retries 5 2 emc 1 4 1 round-robin 0 1 1 8:32 1 round-robin 0 1 1 "
                "8:64 1 round-robin 0 1 1 8:16 1 round-robin 0 1 1 8:48 1 ");
  auto back = parse(text);
  CHECK(back.features.queue_if_no_path);
  CHECK(back.features.pg_init_retries == 5);
  CHECK(back.hw_handler == "emc");
  CHECK(back.hw_handler_args == std::vector<std::string>{"1"});
}

TEST_CASE("grouping: the output parses back to the regrouped table, for every policy") {
  facts tpg{{"8:16", 10, true, 1}, {"8:32", 50, false, 2}, {"8:48", 10, true, 1}, {"8:64", 50, true, 2}};
  for (gp policy : {gp::failover, gp::multibus, gp::group_by_prio, gp::group_by_tpg}) {
    CAPTURE(h::policy_name(policy));
    auto t = h::regroup(parse(four_paths), policy, tpg);
    REQUIRE(t);
    auto text = h::regroup_params(parse(four_paths), policy, tpg);
    REQUIRE(text);
    CHECK(parse(*text) == *t);
    CHECK(mpath::format_table(parse(*text)) == *text); // canonical: a fixed point
  }
}

TEST_CASE("grouping: from text, a whole table line and a policy word") {
  auto r = h::regroup_params("0 2097152 multipath 0 0 1 1 round-robin 0 4 1 8:16 1 8:32 1 8:48 1 8:64 1",
                             "group_by_prio", ten_fifty);
  REQUIRE(r);
  CHECK(*r == "0 0 2 1 round-robin 0 2 1 8:32 1 8:64 1 round-robin 0 2 1 8:16 1 8:48 1 ");
  auto p = h::parse_grouping_policy("group_by_tpg");
  REQUIRE(p);
  CHECK(*p == gp::group_by_tpg);
  CHECK(h::grouping_policy_of(h::pgpolicy::none) == std::nullopt);
  CHECK(h::grouping_policy_of(h::pgpolicy::group_by_prio) == gp::group_by_prio);
}

// ------------------------------------------------------------------------ errors

TEST_CASE("grouping: bad input gets a clear EINVAL") {
  auto table = parse(four_paths);
  auto bad_policy = h::regroup_params(four_paths, "group_by_serial", ten_fifty);
  REQUIRE_FALSE(bad_policy);
  CHECK(bad_policy.err() == mpath::error{EINVAL,
                                         "unknown path_grouping_policy: group_by_serial (expected failover, multibus, "
                                         "group_by_prio or group_by_tpg)"});

  facts missing{{"8:16", 10, true, {}}, {"8:32", 50, true, {}}, {"8:48", 10, true, {}}};
  auto r = h::regroup_params(table, gp::multibus, missing);
  REQUIRE_FALSE(r);
  CHECK(r.err() == mpath::error{EINVAL, "no priority given for path 8:64"});

  facts unknown = ten_fifty;
  unknown[1].priority.reset();
  r = h::regroup_params(table, gp::failover, unknown);
  REQUIRE_FALSE(r);
  CHECK(r.err().text == "no priority given for path 8:32");

  r = h::regroup_params(table, gp::group_by_tpg, ten_fifty);
  REQUIRE_FALSE(r);
  CHECK(r.err().text == "no target port group given for path 8:16");

  facts twice = ten_fifty;
  twice.push_back({"8:16", 1, true, {}});
  r = h::regroup_params(table, gp::failover, twice);
  REQUIRE_FALSE(r);
  CHECK(r.err().text == "path 8:16 is given twice");

  // round-robin takes one per-path argument, service-time two: they cannot share a group, and a
  // service-time path's two arguments do not fit the round-robin group failover gives it.
  auto mixed = parse("0 0 2 1 round-robin 0 1 1 8:16 1 service-time 0 1 2 8:32 1 5");
  facts two{{"8:16", 10, true, {}}, {"8:32", 50, true, {}}};
  r = h::regroup_params(mixed, gp::multibus, two);
  REQUIRE_FALSE(r);
  CHECK(r.err().text == "paths 8:16 and 8:32 have different numbers of per-path arguments and cannot share a group");
  r = h::regroup_params(mixed, gp::failover, two);
  REQUIRE_FALSE(r);
  CHECK(r.err() == mpath::error{EINVAL,
                                "regrouped table '0 0 2 1 round-robin 0 1 2 8:32 1 5 round-robin 0 1 1 8:16 1 ' "
                                "is invalid: round-robin ps: incorrect number of arguments"});
}

// ------------------------------------------------------------------------ would it change?

TEST_CASE("grouping: regrouping_changes says whether a reload is needed") {
  auto by_prio = parse("0 0 2 1 round-robin 0 2 1 8:32 1 8:64 1 round-robin 0 2 1 8:16 1 8:48 1");
  auto changes = h::regrouping_changes(by_prio, gp::group_by_prio, ten_fifty);
  REQUIRE(changes);
  CHECK_FALSE(*changes); // already grouped by these priorities

  // 8:48 moves up to 50: the groups themselves change.
  facts moved = ten_fifty;
  moved[2].priority = 50;
  changes = h::regrouping_changes(by_prio, gp::group_by_prio, moved);
  REQUIRE(changes);
  CHECK(*changes);

  // The priorities swap: the same two groups in the other order. Not a regrouping: failback
  // switches to the best group (multipathd switches path group instead of reloading).
  facts swapped{{"8:16", 50, true, {}}, {"8:32", 10, true, {}}, {"8:48", 50, true, {}}, {"8:64", 10, true, {}}};
  changes = h::regrouping_changes(by_prio, gp::group_by_prio, swapped);
  REQUIRE(changes);
  CHECK_FALSE(*changes);

  // Another policy groups differently.
  changes = h::regrouping_changes(by_prio, gp::multibus, ten_fifty);
  REQUIRE(changes);
  CHECK(*changes);

  // Same partition but the second group had another selector: the reload unifies it.
  auto two_selectors = parse("0 0 2 1 round-robin 0 2 1 8:32 1 8:64 1 queue-length 0 2 1 8:16 1 8:48 1");
  changes = h::regrouping_changes(two_selectors, gp::group_by_prio, ten_fifty);
  REQUIRE(changes);
  CHECK(*changes);

  // Errors come through.
  changes = h::regrouping_changes(by_prio, gp::group_by_tpg, ten_fifty);
  CHECK_FALSE(changes);

  CHECK(h::same_grouping(parse("0 0 2 1 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 1 1 8:48 1"),
                         parse("0 0 2 2 round-robin 0 1 1 8:48 1 round-robin 0 2 1 8:32 1 8:16 1")));
  CHECK_FALSE(h::same_grouping(parse("0 0 2 1 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 1 1 8:48 1"),
                               parse("0 0 2 1 round-robin 0 2 1 8:16 1 8:48 1 round-robin 0 1 1 8:32 1")));
  CHECK_FALSE(h::same_grouping(parse("0 0 1 1 round-robin 0 2 1 8:16 1 8:32 2"),
                               parse("0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1"))); // per-path arguments
}
