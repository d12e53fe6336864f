// Unit tests of include/mpath/selectors/load_balance_2003.hpp: seed 003's N/L/M choice inside one
// priority (product.md §9), step by step as the seed's _path() and _calc_latency() do it.

#include <mpath/selectors/load_balance_2003.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <vector>

namespace {

using mpath::path_index;
using mpath::selectors::load_balance_2003;

constexpr std::uint64_t ms = 1'000'000;

void add(load_balance_2003& s, std::string flag, std::string min_ios) {
  std::vector<std::string> args{flag, min_ios};
  REQUIRE(s.add_path(args));
}

std::vector<path_index> select_n(load_balance_2003& s, std::size_t n) {
  std::vector<path_index> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(s.select(4096, 0));
  return out;
}

/// One I/O on `p` that took `took_ms`.
void serve(load_balance_2003& s, path_index p, std::uint64_t took_ms) {
  s.start_io(p, 4096);
  s.end_io(p, 4096, 10 * ms, 10 * ms + took_ms * ms);
}

std::string status(const load_balance_2003& s, path_index p, mpath::status_type t) {
  std::string out;
  s.path_status(p, t, out);
  return out;
}

} // namespace

TEST_CASE("load-balance-2003: identity") {
  CHECK(load_balance_2003::name == "load-balance-2003");
  CHECK(load_balance_2003::table_args == 2);
  CHECK(load_balance_2003::info_args == 1);
  CHECK(load_balance_2003::uses_clock);
  CHECK(mpath::PathSelector<load_balance_2003>);
  CHECK(mpath::AccountingSelector<load_balance_2003>);
}

TEST_CASE("load-balance-2003: per-path arguments and their errors") {
  load_balance_2003 s;
  std::vector<std::string> one{"L"}, bad_flag{"X", "1"}, long_flag{"LL", "1"}, bad_ios{"L", "x"};
  auto r = s.add_path(one);
  REQUIRE_FALSE(r);
  CHECK(r.err().code == EINVAL);
  CHECK(r.err().text == "load-balance-2003 ps: incorrect number of arguments");
  CHECK(s.add_path(bad_flag).err().text == "load-balance flags");
  CHECK(s.add_path(long_flag).err().text == "load-balance flags");
  CHECK(s.add_path(bad_ios).err().text == "dm-multipath: Invalid ios min");
  add(s, "l", "0"); // lower case is the seed's toupper; min-ios 0 is taken as 1
  add(s, "M", "7");
  CHECK(status(s, 0, mpath::status_type::table) == "L 1 ");
  CHECK(status(s, 1, mpath::status_type::table) == "M 7 ");
  CHECK(status(s, 1, mpath::status_type::info) == "0 ");
}

TEST_CASE("load-balance-2003: N stays on the current path until it fails") {
  load_balance_2003 s;
  add(s, "N", "1");
  add(s, "N", "1");
  add(s, "N", "1");
  CHECK(select_n(s, 5) == std::vector<path_index>{0, 0, 0, 0, 0});
  s.fail_path(0);
  CHECK(select_n(s, 3) == std::vector<path_index>{1, 1, 1});
  CHECK(s.reinstate_path(0) == 0);
  CHECK(select_n(s, 2) == std::vector<path_index>{1, 1}); // no failback within a priority
  s.fail_path(1);
  CHECK(select_n(s, 2) == std::vector<path_index>{2, 2}); // the next one after the failed path
  s.fail_path(2);
  CHECK(select_n(s, 1) == std::vector<path_index>{0}); // circular
  s.fail_path(0);
  CHECK(s.select(4096, 0) == mpath::no_path);
}

TEST_CASE("load-balance-2003: L switches every min-ios I/Os, counting as the seed does") {
  load_balance_2003 s;
  add(s, "L", "2");
  add(s, "L", "2");
  add(s, "L", "2");
  // The I/O that runs a path's count down goes to the next path: the first path gets min-ios - 1,
  // every later turn min-ios.
  CHECK(select_n(s, 9) == std::vector<path_index>{0, 1, 1, 2, 2, 0, 0, 1, 1});
}

TEST_CASE("load-balance-2003: L with min-ios 1 moves at every I/O, skipping failed paths") {
  load_balance_2003 s;
  add(s, "L", "1");
  add(s, "L", "1");
  add(s, "L", "1");
  CHECK(select_n(s, 4) == std::vector<path_index>{1, 2, 0, 1});
  s.fail_path(2);
  CHECK(select_n(s, 3) == std::vector<path_index>{0, 1, 0});
}

TEST_CASE("load-balance-2003: a failover keeps the counts") {
  load_balance_2003 s;
  add(s, "L", "3");
  add(s, "L", "3");
  CHECK(select_n(s, 2) == std::vector<path_index>{0, 0}); // path 0: 3 -> 1
  s.fail_path(0);
  CHECK(select_n(s, 3) == std::vector<path_index>{1, 1, 1}); // failover, then 3 -> 1
  CHECK(s.reinstate_path(0) == 0);
  CHECK(select_n(s, 1) == std::vector<path_index>{0}); // 1's count 1 -> 0: on to 0
  // 0's count was left at 1 by its failure: its first I/O runs it down, on to 1.
  CHECK(select_n(s, 2) == std::vector<path_index>{1, 1});
}

TEST_CASE("load-balance-2003: the current path's flag decides, not the candidate's") {
  load_balance_2003 s;
  add(s, "L", "1");
  add(s, "N", "1");
  CHECK(select_n(s, 4) == std::vector<path_index>{1, 1, 1, 1}); // on the N path: stays
}

TEST_CASE("load-balance-2003: M's weighted latency is t squared twice") {
  load_balance_2003 s;
  add(s, "M", "1");
  add(s, "L", "1");
  serve(s, 0, 3);
  CHECK(s.latency(0) == 81); // 3^4
  serve(s, 0, 2);
  CHECK(s.latency(0) == 97); // + 2^4
  serve(s, 1, 5);
  CHECK(s.latency(1) == 0); // only M paths are measured
  CHECK(status(s, 0, mpath::status_type::info) == "97 ");
  CHECK(mpath::selectors::latency_weight_2003(0) == 0);
  CHECK(mpath::selectors::latency_weight_2003(10) == 10000);
  CHECK(mpath::selectors::latency_weight_2003(70000) == ~std::uint64_t{0}); // saturated
}

TEST_CASE("load-balance-2003: M moves only to a path of no higher weighted latency") {
  load_balance_2003 s;
  add(s, "M", "1");
  add(s, "M", "1");
  add(s, "M", "1");
  serve(s, 0, 2); // 16
  serve(s, 1, 3); // 81
  serve(s, 2, 2); // 16
  // From 0 (16): 1 (81) is higher, 2 (16) is not: to 2. From 2 (16): 0 (16) is not higher.
  CHECK(select_n(s, 3) == std::vector<path_index>{2, 0, 2});
  serve(s, 2, 1); // 2 now at 17
  // From 2 (17) on to 0 (16); from 0 both 1 (81) and 2 (17) are higher: it stays.
  CHECK(select_n(s, 3) == std::vector<path_index>{0, 0, 0});
}

TEST_CASE("load-balance-2003: t^4, not t^2, decides between many short and one long I/O") {
  // Five I/Os of 1 ms against one of 2 ms: squared sums 5 vs 4 would move to the slow path;
  // the seed's fourth powers, 5 vs 16, do not.
  load_balance_2003 s;
  add(s, "M", "1");
  add(s, "M", "1");
  for (int i = 0; i < 5; ++i)
    serve(s, 0, 1);
  serve(s, 1, 2);
  CHECK(s.latency(0) == 5);
  CHECK(s.latency(1) == 16);
  CHECK(select_n(s, 2) == std::vector<path_index>{0, 0});
}

TEST_CASE("load-balance-2003: a reinstatement forgets every latency") {
  load_balance_2003 s;
  add(s, "M", "1");
  add(s, "M", "1");
  serve(s, 0, 1);
  serve(s, 1, 4);
  s.fail_path(1);
  CHECK(s.latency(0) == 1);
  CHECK(s.reinstate_path(1) == 0);
  CHECK(s.latency(0) == 0);
  CHECK(s.latency(1) == 0);
  CHECK(select_n(s, 2) == std::vector<path_index>{1, 0}); // equal again: M moves
  serve(s, 0, 2);
  s.reset_latencies();
  CHECK(s.latency(0) == 0);
}
