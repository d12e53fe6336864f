// Unit tests of include/mpath/selectors/queue_length.hpp against kernel-target.md §2.3 and §5.2, with
// repeat_count honoured as product.md §5 decides.

#include <mpath/selectors/queue_length.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <vector>

namespace {

using mpath::path_index;
using mpath::selectors::queue_length;

mpath::result<void> add(queue_length& s, std::vector<std::string> args) { return s.add_path(args); }

void add_paths(queue_length& s, std::size_t n, std::vector<std::string> args = {}) {
  for (std::size_t i = 0; i < n; ++i)
    REQUIRE(add(s, args));
}

std::vector<path_index> select_n(queue_length& s, std::size_t n) {
  std::vector<path_index> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(s.select(4096, 0));
  return out;
}

std::string status(const queue_length& s, path_index p, mpath::status_type type) {
  std::string out;
  s.path_status(p, type, out);
  return out;
}

void load(queue_length& s, path_index p, int n) {
  for (int i = 0; i < n; ++i)
    s.start_io(p, 4096);
}

} // namespace

TEST_CASE("queue-length: identity as the kernel declares it") {
  CHECK(queue_length::name == "queue-length");
  CHECK(queue_length::table_args == 1);
  CHECK(queue_length::info_args == 1);
  CHECK(mpath::AccountingSelector<queue_length>);
}

TEST_CASE("queue-length: create ignores its arguments") {
  queue_length s;
  std::vector<std::string> junk{"junk", "1", "2"};
  CHECK(s.create(junk));
}

TEST_CASE("queue-length: add_path argument errors") {
  queue_length s;
  auto r = add(s, {"1", "1"});
  REQUIRE_FALSE(r);
  CHECK(r.err().code == EINVAL);
  CHECK(r.err().text == "queue-length ps: incorrect number of arguments");

  for (const char* bad : {"x", "-1", "+1", "1x", "", "4294967296", "18446744073709551617"}) {
    INFO("repeat_count '" << bad << "'");
    auto e = add(s, {bad});
    REQUIRE_FALSE(e);
    CHECK(e.err().code == EINVAL);
    CHECK(e.err().text == "queue-length ps: invalid repeat count");
  }
}

TEST_CASE("queue-length: status strings") {
  queue_length s;
  REQUIRE(add(s, {}));
  REQUIRE(add(s, {"128"}));
  REQUIRE(add(s, {"0"}));
  std::string group;
  s.group_status(group);
  CHECK(group == "0 ");
  CHECK(status(s, 0, mpath::status_type::table) == "1 ");
  CHECK(status(s, 1, mpath::status_type::table) == "128 "); // stored as given, not clamped
  CHECK(status(s, 2, mpath::status_type::table) == "0 ");
  CHECK(status(s, 0, mpath::status_type::info) == "0 ");

  load(s, 0, 309);
  CHECK(status(s, 0, mpath::status_type::info) == "309 ");
  CHECK(status(s, 1, mpath::status_type::info) == "0 ");
  CHECK(status(s, 0, mpath::status_type::table) == "1 "); // TABLE does not show the load
}

TEST_CASE("queue-length: start_io and end_io count I/Os, not bytes") {
  queue_length s;
  add_paths(s, 2);
  s.start_io(0, 4096);
  s.start_io(0, 1 << 20);
  s.start_io(1, 512);
  CHECK(s.in_flight(0) == 2);
  CHECK(s.in_flight(1) == 1);
  s.end_io(0, 4096, 0, 10);
  CHECK(s.in_flight(0) == 1);
  s.end_io(0, 1 << 20, 0, 10);
  s.end_io(1, 512, 0, 10);
  CHECK(s.in_flight(0) == 0);
  CHECK(s.in_flight(1) == 0);
  // The INFO count is signed, as the kernel's atomic_t.
  s.end_io(1, 512, 0, 10);
  CHECK(s.in_flight(1) == -1);
  CHECK(status(s, 1, mpath::status_type::info) == "-1 ");
}

TEST_CASE("queue-length: fewest in flight wins, ties to the earliest, the winner moves to the tail") {
  queue_length s;
  add_paths(s, 3);
  SUBCASE("all idle: rotation") { CHECK(select_n(s, 5) == std::vector<path_index>{0, 1, 2, 0, 1}); }
  SUBCASE("the least loaded path") {
    load(s, 0, 3);
    load(s, 1, 1);
    load(s, 2, 2);
    CHECK(select_n(s, 3) == std::vector<path_index>{1, 1, 1});
  }
  SUBCASE("ties go to the earliest in list order, which rotates") {
    load(s, 0, 2);
    load(s, 1, 1);
    load(s, 2, 1);
    CHECK(s.select(0, 0) == 1); // list 0 2 1
    CHECK(s.select(0, 0) == 2); // list 0 1 2
    CHECK(s.select(0, 0) == 1);
  }
  SUBCASE("selection follows the load as I/O starts and ends") {
    path_index p = s.select(0, 0);
    CHECK(p == 0);
    s.start_io(p, 4096); // 1 0 0, list 1 2 0
    p = s.select(0, 0);
    CHECK(p == 1);
    s.start_io(p, 4096); // 1 1 0, list 2 0 1
    p = s.select(0, 0);
    CHECK(p == 2);
    s.start_io(p, 4096); // 1 1 1, list 0 1 2
    s.end_io(1, 4096, 0, 0);
    CHECK(s.select(0, 0) == 1);
    CHECK(s.select(0, 0) == 1); // still the only idle one
  }
}

TEST_CASE("queue-length: no path without valid paths") {
  queue_length empty;
  CHECK(empty.select(4096, 0) == mpath::no_path);

  queue_length s;
  add_paths(s, 2);
  s.fail_path(1);
  s.fail_path(0);
  CHECK(s.select(4096, 0) == mpath::no_path);
}

TEST_CASE("queue-length: failed paths are never chosen, a reinstated one goes to the tail") {
  queue_length s;
  add_paths(s, 3);
  s.fail_path(0); // list 1 2
  CHECK(select_n(s, 4) == std::vector<path_index>{1, 2, 1, 2});
  CHECK(s.reinstate_path(0) == 0); // list 1 2 0
  CHECK(select_n(s, 3) == std::vector<path_index>{1, 2, 0});

  SUBCASE("even when it is the least loaded") {
    load(s, 1, 5);
    load(s, 2, 5);
    s.fail_path(0);
    CHECK(select_n(s, 3) == std::vector<path_index>{1, 2, 1});
  }
}

TEST_CASE("queue-length: repeat_count is honoured") {
  SUBCASE("repeat 3: the same path three times, then the next, whatever the load") {
    queue_length s;
    add_paths(s, 2, {"3"});
    std::vector<path_index> chosen;
    for (int i = 0; i < 7; ++i) {
      chosen.push_back(s.select(4096, 0));
      s.start_io(chosen.back(), 4096);
    }
    // After three each the loads tie at 3 and path 0 is the earlier one in the list again.
    CHECK(chosen == std::vector<path_index>{0, 0, 0, 1, 1, 1, 0});
    CHECK(s.in_flight(0) == 4);
    CHECK(s.in_flight(1) == 3);
  }
  SUBCASE("a path failed mid-repeat is never returned") {
    queue_length s;
    add_paths(s, 2, {"3"});
    CHECK(s.select(0, 0) == 0);
    s.fail_path(0);
    CHECK(select_n(s, 4) == std::vector<path_index>{1, 1, 1, 1});
    s.fail_path(1);
    CHECK(s.select(0, 0) == mpath::no_path);
  }
}
