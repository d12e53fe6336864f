// Unit tests of include/mpath/selectors/round_robin.hpp against kernel-target.md §2.3 and §5.1, with
// repeat_count honoured as product.md §5 decides.

#include <mpath/selectors/round_robin.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <vector>

namespace {

using mpath::path_index;
using mpath::selectors::round_robin;

mpath::result<void> add(round_robin& s, std::vector<std::string> args) { return s.add_path(args); }

void add_paths(round_robin& s, std::size_t n, std::vector<std::string> args = {}) {
  for (std::size_t i = 0; i < n; ++i)
    REQUIRE(add(s, args));
}

std::vector<path_index> select_n(round_robin& s, std::size_t n) {
  std::vector<path_index> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(s.select(4096, 0));
  return out;
}

std::string table_status(const round_robin& s, path_index p) {
  std::string out;
  s.path_status(p, mpath::status_type::table, out);
  return out;
}

std::string info_status(const round_robin& s, path_index p) {
  std::string out;
  s.path_status(p, mpath::status_type::info, out);
  return out;
}

} // namespace

TEST_CASE("round-robin: identity as the kernel declares it") {
  CHECK(round_robin::name == "round-robin");
  CHECK(round_robin::table_args == 1);
  CHECK(round_robin::info_args == 0);
  CHECK(mpath::PathSelector<round_robin>);
  CHECK_FALSE(mpath::AccountingSelector<round_robin>); // the kernel's round-robin has no start_io/end_io
}

TEST_CASE("round-robin: create ignores its arguments") {
  round_robin s;
  std::vector<std::string> none;
  std::vector<std::string> junk{"junk", "-1", "4294967296"};
  CHECK(s.create(none));
  round_robin t;
  CHECK(t.create(junk));
}

TEST_CASE("round-robin: add_path argument errors") {
  round_robin s;
  auto r = add(s, {"1", "1"});
  REQUIRE_FALSE(r);
  CHECK(r.err().code == EINVAL);
  CHECK(r.err().text == "round-robin ps: incorrect number of arguments");

  for (const char* bad : {"x", "-1", "+1", "1x", "", "0x10", "4294967296", "99999999999999999999"}) {
    INFO("repeat_count '" << bad << "'");
    auto e = add(s, {bad});
    REQUIRE_FALSE(e);
    CHECK(e.err().code == EINVAL);
    CHECK(e.err().text == "round-robin ps: invalid repeat count");
  }
  // Failed add_path calls leave no path behind.
  REQUIRE(add(s, {}));
  CHECK(s.select(0, 0) == 0);
  CHECK(s.select(0, 0) == 0);
}

TEST_CASE("round-robin: repeat_count is stored as given and printed in TABLE status") {
  round_robin s;
  REQUIRE(add(s, {}));             // default 1
  REQUIRE(add(s, {"0"}));          // 0 stays 0
  REQUIRE(add(s, {"128"}));        // not clamped (product.md §5)
  REQUIRE(add(s, {"4294967295"})); // the largest accepted value
  REQUIRE(add(s, {"007"}));        // leading zeros are a plain decimal
  CHECK(s.repeat_count(0) == 1);
  CHECK(s.repeat_count(1) == 0);
  CHECK(s.repeat_count(2) == 128);
  CHECK(s.repeat_count(3) == 4294967295u);
  CHECK(s.repeat_count(4) == 7);
  CHECK(table_status(s, 0) == "1 ");
  CHECK(table_status(s, 1) == "0 ");
  CHECK(table_status(s, 2) == "128 ");
  CHECK(table_status(s, 3) == "4294967295 ");
  CHECK(table_status(s, 4) == "7 ");
}

TEST_CASE("round-robin: status strings") {
  round_robin s;
  add_paths(s, 2);
  std::string group;
  s.group_status(group);
  CHECK(group == "0 ");
  CHECK(info_status(s, 0) == ""); // no per-path INFO fields
  CHECK(info_status(s, 1) == "");
  std::string appended = "8:16 A 0 ";
  s.path_status(1, mpath::status_type::table, appended); // appends, never overwrites
  CHECK(appended == "8:16 A 0 1 ");
}

TEST_CASE("round-robin: rotates one I/O per path") {
  round_robin s;
  add_paths(s, 3);
  CHECK(select_n(s, 7) == std::vector<path_index>{0, 1, 2, 0, 1, 2, 0});
}

TEST_CASE("round-robin: no path without valid paths") {
  round_robin empty;
  CHECK(empty.select(4096, 0) == mpath::no_path);

  round_robin s;
  add_paths(s, 2);
  s.fail_path(0);
  s.fail_path(1);
  CHECK(s.select(4096, 0) == mpath::no_path);
  CHECK(s.select(4096, 0) == mpath::no_path);
}

TEST_CASE("round-robin: a failed path is skipped, a reinstated one goes to the head and is chosen next") {
  round_robin s;
  add_paths(s, 3);
  CHECK(s.select(0, 0) == 0); // valid list now 1 2 0
  s.fail_path(1);             // 2 0
  CHECK(select_n(s, 4) == std::vector<path_index>{2, 0, 2, 0});
  CHECK(s.reinstate_path(1) == 0); // 1 2 0
  CHECK(select_n(s, 4) == std::vector<path_index>{1, 2, 0, 1});

  SUBCASE("reinstating an active path changes nothing") {
    CHECK(s.reinstate_path(0) == 0); // list is 2 0 1
    CHECK(select_n(s, 3) == std::vector<path_index>{2, 0, 1});
  }
  SUBCASE("failing a failed path changes nothing") {
    s.fail_path(2);
    s.fail_path(2);
    CHECK(select_n(s, 3) == std::vector<path_index>{0, 1, 0});
    CHECK(s.reinstate_path(2) == 0);
    CHECK(select_n(s, 3) == std::vector<path_index>{2, 1, 0});
  }
}

TEST_CASE("round-robin: repeat_count is honoured") {
  SUBCASE("repeat 3: the same path three times, then the next") {
    round_robin s;
    add_paths(s, 3, {"3"});
    CHECK(select_n(s, 10) == std::vector<path_index>{0, 0, 0, 1, 1, 1, 2, 2, 2, 0});
  }
  SUBCASE("0 and 1 behave as the kernel: one I/O per path") {
    round_robin s;
    REQUIRE(add(s, {"0"}));
    REQUIRE(add(s, {"1"}));
    REQUIRE(add(s, {"0"}));
    CHECK(select_n(s, 6) == std::vector<path_index>{0, 1, 2, 0, 1, 2});
  }
  SUBCASE("per-path counts") {
    round_robin s;
    REQUIRE(add(s, {"2"}));
    REQUIRE(add(s, {"1"}));
    REQUIRE(add(s, {"3"}));
    CHECK(select_n(s, 8) == std::vector<path_index>{0, 0, 1, 2, 2, 2, 0, 0});
  }
  SUBCASE("a path failed mid-repeat is never returned") {
    round_robin s;
    add_paths(s, 3, {"3"});
    CHECK(s.select(0, 0) == 0);
    s.fail_path(0);
    CHECK(select_n(s, 7) == std::vector<path_index>{1, 1, 1, 2, 2, 2, 1});
  }
  SUBCASE("failing another path mid-repeat does not cut the repeat short") {
    round_robin s;
    add_paths(s, 3, {"3"});
    CHECK(s.select(0, 0) == 0);
    s.fail_path(1);
    CHECK(select_n(s, 5) == std::vector<path_index>{0, 0, 2, 2, 2});
  }
  SUBCASE("the only path failed mid-repeat: no path") {
    round_robin s;
    add_paths(s, 1, {"5"});
    CHECK(s.select(0, 0) == 0);
    s.fail_path(0);
    CHECK(s.select(0, 0) == mpath::no_path);
    CHECK(s.reinstate_path(0) == 0);
    CHECK(select_n(s, 6) == std::vector<path_index>{0, 0, 0, 0, 0, 0});
  }
}
