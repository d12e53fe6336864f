// Unit tests of include/mpath/selectors/service_time.hpp against kernel-target.md §2.3 and §5.3, with
// repeat_count honoured and a mathematically correct comparison as product.md §5 decides.

#include <mpath/selectors/service_time.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using mpath::path_index;
using mpath::selectors::service_time;

mpath::result<void> add(service_time& s, std::vector<std::string> args) { return s.add_path(args); }

/// One path per relative_throughput, repeat_count 1.
void add_throughputs(service_time& s, std::vector<std::uint32_t> throughputs) {
  for (auto tp : throughputs)
    REQUIRE(add(s, {"1", std::to_string(tp)}));
}

std::vector<path_index> select_n(service_time& s, std::size_t n, std::uint64_t nr_bytes = 4096) {
  std::vector<path_index> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(s.select(nr_bytes, 0));
  return out;
}

std::string status(const service_time& s, path_index p, mpath::status_type type) {
  std::string out;
  s.path_status(p, type, out);
  return out;
}

constexpr std::uint64_t KiB = 1024, MiB = 1024 * KiB;

} // namespace

TEST_CASE("service-time: identity as the kernel declares it") {
  CHECK(service_time::name == "service-time");
  CHECK(service_time::table_args == 2);
  CHECK(service_time::info_args == 2);
  CHECK(mpath::AccountingSelector<service_time>);
}

TEST_CASE("service-time: create ignores its arguments") {
  service_time s;
  std::vector<std::string> junk{"junk"};
  CHECK(s.create(junk));
}

TEST_CASE("service-time: add_path argument errors") {
  service_time s;
  auto r = add(s, {"1", "1", "1"});
  REQUIRE_FALSE(r);
  CHECK(r.err().code == EINVAL);
  CHECK(r.err().text == "service-time ps: incorrect number of arguments");

  for (const char* bad : {"x", "-1", "+1", "1x", "", "4294967296"}) {
    INFO("repeat_count '" << bad << "'");
    for (auto args : {std::vector<std::string>{bad}, std::vector<std::string>{bad, "1"}}) {
      auto e = add(s, args);
      REQUIRE_FALSE(e);
      CHECK(e.err().code == EINVAL);
      CHECK(e.err().text == "service-time ps: invalid repeat count");
    }
  }
  // The repeat count is checked before the throughput.
  auto both = add(s, {"x", "x"});
  REQUIRE_FALSE(both);
  CHECK(both.err().text == "service-time ps: invalid repeat count");

  for (const char* bad : {"101", "x", "-1", "+1", "1x", "", "4294967296", "4294967297"}) {
    INFO("relative_throughput '" << bad << "'");
    auto e = add(s, {"1", bad});
    REQUIRE_FALSE(e);
    CHECK(e.err().code == EINVAL);
    CHECK(e.err().text == "service-time ps: invalid relative_throughput value");
  }
}

TEST_CASE("service-time: accepted arguments and the TABLE/INFO status") {
  service_time s;
  REQUIRE(add(s, {}));           // repeat 1, throughput 1
  REQUIRE(add(s, {"128"}));      // repeat 128 kept (product.md §5), throughput 1
  REQUIRE(add(s, {"0", "0"}));   // both minimums
  REQUIRE(add(s, {"1", "100"})); // the largest throughput
  REQUIRE(add(s, {"4294967295", "4"}));

  std::string group;
  s.group_status(group);
  CHECK(group == "0 ");

  CHECK(status(s, 0, mpath::status_type::table) == "1 1 ");
  CHECK(status(s, 1, mpath::status_type::table) == "128 1 ");
  CHECK(status(s, 2, mpath::status_type::table) == "0 0 ");
  CHECK(status(s, 3, mpath::status_type::table) == "1 100 ");
  CHECK(status(s, 4, mpath::status_type::table) == "4294967295 4 ");

  CHECK(status(s, 0, mpath::status_type::info) == "0 1 ");
  CHECK(status(s, 3, mpath::status_type::info) == "0 100 ");
  s.start_io(4, 8192);
  CHECK(status(s, 4, mpath::status_type::info) == "8192 4 ");
  CHECK(status(s, 4, mpath::status_type::table) == "4294967295 4 ");
}

TEST_CASE("service-time: start_io/end_io count bytes, INFO prints them as signed 32-bit") {
  service_time s;
  add_throughputs(s, {1, 1});
  s.start_io(0, 4096);
  s.start_io(0, 512);
  CHECK(s.in_flight_bytes(0) == 4608);
  CHECK(s.in_flight_bytes(1) == 0);
  s.end_io(0, 4096, 0, 100);
  CHECK(s.in_flight_bytes(0) == 512);
  s.end_io(0, 512, 0, 100);
  CHECK(s.in_flight_bytes(0) == 0);

  s.start_io(1, 3 * 1024 * MiB); // 3 GiB: the kernel's "%d" shows it negative
  CHECK(s.in_flight_bytes(1) == 3 * 1024 * MiB);
  CHECK(status(s, 1, mpath::status_type::info) == "-1073741824 1 ");
  s.start_io(1, 1024 * MiB); // 4 GiB wraps to 0 in 32 bits
  CHECK(status(s, 1, mpath::status_type::info) == "0 1 ");
}

TEST_CASE("service-time: compare rules") {
  SUBCASE("1: equal throughput, the smaller in-flight byte count is better") {
    service_time s;
    add_throughputs(s, {2, 2});
    s.start_io(0, 8 * KiB);
    s.start_io(1, 4 * KiB);
    CHECK(s.compare(1, 0, 4096) < 0);
    CHECK(s.compare(0, 1, 4096) > 0);
    CHECK(s.select(4096, 0) == 1);
    s.end_io(0, 8 * KiB, 0, 0);
    s.end_io(1, 4 * KiB, 0, 0);
    CHECK(s.compare(0, 1, 4096) == 0);
  }
  SUBCASE("2a: equal load, the larger throughput is better") {
    service_time s;
    add_throughputs(s, {1, 4});
    CHECK(s.compare(1, 0, 4096) < 0);
    CHECK(select_n(s, 3) == std::vector<path_index>{1, 1, 1}); // no rotation while idle
    s.start_io(0, 64 * KiB);
    s.start_io(1, 64 * KiB);
    CHECK(s.compare(1, 0, 4096) < 0);
  }
  SUBCASE("2b: a 0-throughput path is only used when nothing else is") {
    service_time s;
    add_throughputs(s, {0, 1});
    s.start_io(1, 512 * MiB); // however loaded the positive path is
    CHECK(s.compare(1, 0, 4096) < 0);
    CHECK(s.select(4096, 0) == 1);
    s.fail_path(1);
    CHECK(s.select(4096, 0) == 0);
  }
  SUBCASE("all throughputs 0: rule 1 applies") {
    service_time s;
    add_throughputs(s, {0, 0});
    s.start_io(0, 4096);
    CHECK(s.compare(1, 0, 4096) < 0);
    CHECK(s.select(4096, 0) == 1);
  }
  SUBCASE("3: (load + incoming) / throughput, the shorter service time wins") {
    service_time s;
    add_throughputs(s, {1, 4});
    // 0:  (0 + 4K) * 4 = 16K   1: (8K + 4K) * 1 = 12K   -> path 1
    s.start_io(1, 8 * KiB);
    CHECK(s.compare(1, 0, 4 * KiB) < 0);
    CHECK(s.select(4 * KiB, 0) == 1);
    // 0: (0 + 4K) * 4 = 16K   1: (16K + 4K) * 1 = 20K  -> path 0
    s.start_io(1, 8 * KiB);
    CHECK(s.compare(0, 1, 4 * KiB) < 0);
    CHECK(s.select(4 * KiB, 0) == 0);
    // The incoming size matters: 0: (0 + 64K) * 4 = 256K   1: (16K + 64K) * 1 = 80K  -> path 1
    CHECK(s.compare(1, 0, 64 * KiB) < 0);
  }
  SUBCASE("4: equal service time, the larger throughput wins") {
    service_time s;
    add_throughputs(s, {1, 2});
    // 0: (0 + 4K) * 2 = 8K   1: (4K + 4K) * 1 = 8K
    s.start_io(1, 4 * KiB);
    CHECK(s.compare(1, 0, 4 * KiB) < 0);
    CHECK(s.compare(0, 1, 4 * KiB) > 0);
    CHECK(s.select(4 * KiB, 0) == 1);
  }
  SUBCASE("mathematically correct where the kernel's 32-bit int flips the sign") {
    service_time s;
    add_throughputs(s, {100, 50});
    // 0: 64 MiB * 50 = 3.3e9   1: 1 MiB * 100 = 1.0e8: path 1 is better; the kernel's int
    // difference (3.2e9) wraps negative and would pick path 0.
    s.start_io(0, 64 * MiB);
    s.start_io(1, 1 * MiB);
    CHECK(s.compare(1, 0, 0) < 0);
    CHECK(s.compare(0, 1, 0) > 0);
    CHECK(s.select(0, 0) == 1);
  }
  SUBCASE("huge loads are scaled down before multiplying, without overflow") {
    service_time s;
    add_throughputs(s, {100, 99});
    const std::uint64_t huge = std::uint64_t{1} << 62;
    s.start_io(0, huge);
    s.start_io(1, huge - (std::uint64_t{1} << 56));
    // (2^62 >> 7) * 99 vs ((2^62 - 2^56) >> 7) * 100: 2^55 * 99 > (2^55 - 2^49) * 100.
    CHECK(s.compare(1, 0, 0) < 0);
    CHECK(s.select(0, 0) == 1);
  }
}

TEST_CASE("service-time: ties keep the earlier path, the winner moves to the tail") {
  service_time s;
  add_throughputs(s, {1, 1, 1});
  CHECK(select_n(s, 4) == std::vector<path_index>{0, 1, 2, 0});

  service_time t;
  add_throughputs(t, {1, 1, 1});
  path_index p = t.select(4096, 0);
  CHECK(p == 0);
  t.start_io(p, 4096); // list 1 2 0
  CHECK(t.select(4096, 0) == 1);
  t.start_io(1, 4096); // list 2 0 1
  CHECK(t.select(4096, 0) == 2);
  t.start_io(2, 8192); // loads 4K 4K 8K, list 0 1 2
  t.end_io(1, 4096, 0, 0);
  CHECK(t.select(4096, 0) == 1);
  CHECK(t.select(4096, 0) == 1);
}

TEST_CASE("service-time: no path without valid paths, a reinstated path goes to the tail") {
  service_time empty;
  CHECK(empty.select(4096, 0) == mpath::no_path);

  service_time s;
  add_throughputs(s, {1, 1, 1});
  s.fail_path(0);
  CHECK(select_n(s, 3) == std::vector<path_index>{1, 2, 1}); // list 2 1
  CHECK(s.reinstate_path(0) == 0);                           // list 2 1 0
  CHECK(select_n(s, 3) == std::vector<path_index>{2, 1, 0});
  s.fail_path(0);
  s.fail_path(1);
  s.fail_path(2);
  CHECK(s.select(4096, 0) == mpath::no_path);
}

TEST_CASE("service-time: repeat_count is honoured") {
  SUBCASE("repeat 3: the same path three times, then the next") {
    service_time s;
    for (int i = 0; i < 3; ++i)
      REQUIRE(add(s, {"3"}));
    CHECK(select_n(s, 10) == std::vector<path_index>{0, 0, 0, 1, 1, 1, 2, 2, 2, 0});
  }
  SUBCASE("repeats even when another path became better") {
    service_time s;
    REQUIRE(add(s, {"3", "1"}));
    REQUIRE(add(s, {"3", "1"}));
    CHECK(s.select(4096, 0) == 0);
    s.start_io(0, 1 * MiB);
    CHECK(select_n(s, 2) == std::vector<path_index>{0, 0});
    CHECK(s.select(4096, 0) == 1);
  }
  SUBCASE("a path failed mid-repeat is never returned") {
    service_time s;
    REQUIRE(add(s, {"3", "4"}));
    REQUIRE(add(s, {"3", "1"}));
    CHECK(s.select(4096, 0) == 0);
    s.fail_path(0);
    CHECK(select_n(s, 4) == std::vector<path_index>{1, 1, 1, 1});
  }
}
