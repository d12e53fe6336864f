// Unit tests of include/mpath/selectors/io_affinity.hpp against kernel-target.md §2.3 and §5.5:
// cpumask arguments in the kernel's bitmap syntax, the CPU→path map with first-come ownership,
// selection with fallback to the same NUMA node then to any mapped CPU, the map-miss counter, and
// the status words, also through the table grammar and the engine. CPUs are given with the
// thread's CPU hint, on configured machines (fixed_cpus), so nothing depends on this host.

#include <mpath/selectors/io_affinity.hpp>

#include <mpath/table.hpp>
#include <mpath/testing/sim.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using mpath::path_index;
using mpath::status_type;
using mpath::selectors::basic_io_affinity;
using mpath::selectors::fixed_cpus;
using mpath::selectors::scoped_cpu_hint;

using ioa8 = basic_io_affinity<fixed_cpus<8>>;      // one node
using ioa8x2 = basic_io_affinity<fixed_cpus<8, 4>>; // nodes {0-3} {4-7}
using ioa16 = basic_io_affinity<fixed_cpus<16>>;
using ioa64 = basic_io_affinity<fixed_cpus<64>>;
using ioa40 = basic_io_affinity<fixed_cpus<40>>;
using ioa2 = basic_io_affinity<fixed_cpus<2>>;

template <class S> mpath::result<void> add(S& s, std::vector<std::string> args) { return s.add_path(args); }

template <class S> void make(S& s, std::vector<std::string> masks) {
  REQUIRE(s.create({}));
  for (auto& m : masks)
    REQUIRE(add(s, {m}));
}

template <class S> std::string status(const S& s, path_index p, status_type type) {
  std::string out;
  s.path_status(p, type, out);
  return out;
}

template <class S> path_index select_on(S& s, int cpu) {
  scoped_cpu_hint hint(cpu);
  return s.select(4096, 0);
}

template <class S> std::string error_of(std::vector<std::string> args, std::vector<std::string> before = {}) {
  S s;
  REQUIRE(s.create({}));
  for (auto& m : before)
    REQUIRE(add(s, {m}));
  auto r = add(s, args);
  REQUIRE_FALSE(r);
  CHECK(r.err().code == EINVAL);
  return r.err().text;
}

/// The TABLE word for a path whose mask is `mask` on an S machine.
template <class S> std::string table_word(std::string mask) {
  S s;
  make(s, {mask});
  std::string w = status(s, 0, status_type::table);
  REQUIRE(!w.empty());
  return w.substr(0, w.size() - 1);
}

} // namespace

TEST_CASE("io-affinity: identity as the kernel declares it") {
  CHECK(ioa8::name == "io-affinity");
  CHECK(ioa8::table_args == 1);
  CHECK(ioa8::info_args == 1);
  CHECK(mpath::PathSelector<mpath::selectors::io_affinity>);
  CHECK_FALSE(mpath::AccountingSelector<ioa8>); // no start_io/end_io in the kernel either
}

TEST_CASE("io-affinity: per-path argument errors") {
  CHECK(error_of<ioa8>({}) == "io-affinity ps: invalid number of arguments");
  CHECK(error_of<ioa8>({"1", "2"}) == "io-affinity ps: invalid number of arguments");
  for (const char* bad : {"x", "0x1", "-1", "1.0", "g", "123456789", // a ninth digit in one group
                          "100",                                     // CPU 8 on an 8-CPU machine
                          "1,00000000", "0,,0",                      // a second group on 8 CPUs
                          "1:2"}) {
    INFO("mask '" << bad << "'");
    CHECK(error_of<ioa8>({bad}) == "io-affinity ps: invalid cpumask");
  }
  for (const char* empty : {"0", "", ",", "00000000", "0,", ",,0,"}) {
    INFO("mask '" << empty << "'");
    CHECK(error_of<ioa8>({empty}) == "io-affinity ps: No new/valid CPU mapping found");
  }
  // Every CPU of the mask already belongs to an earlier path.
  CHECK(error_of<ioa8>({"3"}, {"1", "2"}) == "io-affinity ps: No new/valid CPU mapping found");
  CHECK(error_of<ioa8>({"1"}, {"ff"}) == "io-affinity ps: No new/valid CPU mapping found");
}

TEST_CASE("io-affinity: the kernel's cpumask syntax") {
  SUBCASE("accepted forms, printed back nr_cpu_ids bits wide") {
    CHECK(table_word<ioa8>("1") == "01");
    CHECK(table_word<ioa8>("80") == "80");
    CHECK(table_word<ioa8>("0000000F") == "0f"); // upper case, leading zeros within 8 digits
    CHECK(table_word<ioa8>(",1,") == "01");      // empty groups are skipped
    CHECK(table_word<ioa16>("1") == "0001");
    CHECK(table_word<ioa16>("8000") == "8000");
    CHECK(table_word<ioa2>("3") == "3");
    CHECK(table_word<ioa64>("1") == "00000000,00000001");
    CHECK(table_word<ioa64>("1,0") == "00000001,00000000"); // groups are 32 bits, last = lowest
    CHECK(table_word<ioa64>("1,,0") == "00000001,00000000");
    CHECK(table_word<ioa64>("ffffffff,ffffffff") == "ffffffff,ffffffff");
    CHECK(table_word<ioa40>("80,00000001") == "80,00000001");
    CHECK(table_word<ioa40>("ff,0") == "ff,00000000");
  }
  SUBCASE("bits at or above nr_cpu_ids are invalid") {
    CHECK(error_of<ioa40>({"100,00000000"}) == "io-affinity ps: invalid cpumask");
    CHECK(error_of<ioa40>({"1,0,0"}) == "io-affinity ps: invalid cpumask");
    CHECK(error_of<ioa2>({"4"}) == "io-affinity ps: invalid cpumask");
  }
  SUBCASE("the printed mask is the whole parsed mask, CPUs taken by earlier paths included") {
    ioa8 s;
    make(s, {"3", "6"});
    CHECK(status(s, 0, status_type::table) == "03 ");
    CHECK(status(s, 1, status_type::table) == "06 ");
    CHECK(s.path_of_cpu(0) == 0);
    CHECK(s.path_of_cpu(1) == 0); // first come, first served
    CHECK(s.path_of_cpu(2) == 1);
    CHECK(s.path_of_cpu(3) == mpath::no_path);
  }
}

TEST_CASE("io-affinity: the submitting CPU's path, with fallback and map misses") {
  ioa8x2 s;             // nodes {0-3} {4-7}
  make(s, {"2", "30"}); // CPU 1 → path 0; CPUs 4,5 → path 1
  CHECK(s.map_misses() == 0);

  CHECK(select_on(s, 1) == 0);
  CHECK(select_on(s, 4) == 1);
  CHECK(select_on(s, 5) == 1);
  CHECK(s.map_misses() == 0);

  SUBCASE("an unmapped CPU takes a path of its own node, and counts a miss") {
    CHECK(select_on(s, 3) == 0); // node 0: CPU 1's path
    CHECK(select_on(s, 7) == 1); // node 1: CPU 4's path
    CHECK(select_on(s, 0) == 0);
    CHECK(s.map_misses() == 3);
    CHECK(status(s, 0, status_type::info) == "3 "); // the same selector-wide count on every path
    CHECK(status(s, 1, status_type::info) == "3 ");
  }
  SUBCASE("a failed path: the node, then any mapped CPU; not a miss") {
    s.fail_path(0);
    CHECK(select_on(s, 1) == 1); // node 0 has no other path: all mapped CPUs in order
    CHECK(select_on(s, 2) == 1); // unmapped: a miss
    CHECK(s.map_misses() == 1);
    s.fail_path(1);
    CHECK(select_on(s, 1) == mpath::no_path);
    CHECK(select_on(s, 6) == mpath::no_path);
    CHECK(s.reinstate_path(0) == 0);
    CHECK(select_on(s, 6) == 0); // node 1's only path failed: CPU 1's path
    CHECK(select_on(s, 4) == 0);
    CHECK(s.reinstate_path(1) == 0);
    CHECK(select_on(s, 4) == 1);
  }
  SUBCASE("within a node the lowest mapped CPU with a usable path wins") {
    ioa8x2 t;
    make(t, {"8", "2", "40"});   // CPU 3 → 0, CPU 1 → 1, CPU 6 → 2
    CHECK(select_on(t, 0) == 1); // CPU 1 comes before CPU 3
    t.fail_path(1);
    CHECK(select_on(t, 0) == 0);
    CHECK(select_on(t, 1) == 0); // mapped but failed: same node, then others
    t.fail_path(0);
    CHECK(select_on(t, 1) == 2); // node 0 exhausted: all mapped CPUs
  }
  SUBCASE("a CPU the machine does not have is a miss on no node") {
    CHECK(select_on(s, 8) == 0); // lowest mapped CPU
    CHECK(select_on(s, 1000) == 0);
    CHECK(s.map_misses() == 2);
  }
}

TEST_CASE("io-affinity: without a hint the CPU comes from sched_getcpu()") {
  ioa64 s;
  std::string all = "ffffffff,ffffffff";
  make(s, {all});
  CHECK(mpath::selectors::cpu_hint() == -1);
  CHECK(s.select(4096, 0) == 0);
  CHECK(s.map_misses() == 0); // every CPU id is mapped, whichever this thread runs on

  {
    scoped_cpu_hint outer(3);
    CHECK(mpath::selectors::cpu_hint() == 3);
    {
      scoped_cpu_hint inner(5);
      CHECK(mpath::selectors::cpu_hint() == 5);
    }
    CHECK(mpath::selectors::cpu_hint() == 3);
  }
  CHECK(mpath::selectors::cpu_hint() == -1);

  // The machine's own topology: at least one CPU id, and this thread runs on one of them.
  const auto& t = mpath::selectors::system_cpus::topology();
  CHECK(t.nr_cpu_ids >= 1);
  int cpu = mpath::selectors::system_cpus::current_cpu();
  CHECK(cpu >= 0);
  CHECK(std::uint32_t(cpu) < t.nr_cpu_ids);
}

TEST_CASE("io-affinity: cpulist parsing for the machine's topology") {
  std::vector<std::uint32_t> cpus;
  CHECK(mpath::selectors::detail::parse_cpulist("0-3,8,10-11\n", cpus));
  CHECK(cpus == std::vector<std::uint32_t>{0, 1, 2, 3, 8, 10, 11});
  cpus.clear();
  CHECK(mpath::selectors::detail::parse_cpulist("0", cpus));
  CHECK(cpus == std::vector<std::uint32_t>{0});
  for (const char* bad : {"x", "3-1", "1-", "-1", "1,,2"}) {
    cpus.clear();
    CHECK_FALSE(mpath::selectors::detail::parse_cpulist(bad, cpus));
  }
}

TEST_CASE("io-affinity: table and status through the grammar and the engine (kernel-target.md 2.5, 8 CPUs)") {
  struct traits8 : mpath::testing::sim_traits {
    using selectors = mpath::selector_set<mpath::selectors::round_robin, ioa8>;
  };
  using set8 = traits8::selectors;

  auto t = mpath::parse_table<set8>("0 0 1 1 io-affinity 0 2 1 8:16 1 8:32 2");
  REQUIRE(t);
  CHECK(mpath::format_table(*t) == "0 0 1 1 io-affinity 0 2 1 8:16 01 8:32 02 ");
  auto junk = mpath::parse_table<set8>("0 0 1 1 io-affinity 2 a b 1 1 8:16 f0");
  REQUIRE(junk);
  CHECK(mpath::format_table(*junk) == "0 0 1 1 io-affinity 0 1 1 8:16 f0 "); // selector args ignored

  for (auto [table, text] : std::vector<std::pair<const char*, const char*>>{
           {"0 0 1 1 io-affinity 0 1 0 8:16", "io-affinity ps: invalid number of arguments"},
           {"0 0 1 1 io-affinity 0 1 2 8:16 1 2", "io-affinity ps: invalid number of arguments"},
           {"0 0 1 1 io-affinity 0 1 1 8:16 z", "io-affinity ps: invalid cpumask"},
           {"0 0 1 1 io-affinity 0 2 1 8:16 1 8:32 1", "io-affinity ps: No new/valid CPU mapping found"},
       }) {
    auto r = mpath::parse_table<set8>(table);
    REQUIRE_FALSE(r);
    CHECK(r.err().text == text);
  }

  auto d = mpath::testing::sim_device<traits8>::create("0 0 1 1 io-affinity 0 2 1 8:16 1 8:32 2");
  REQUIRE(d);
  auto& dev = **d;
  CHECK(dev.engine().status(status_type::table) == "0 0 1 1 io-affinity 0 2 1 8:16 01 8:32 02 ");
  CHECK(dev.engine().status(status_type::info) == "2 1 0 0 1 1 E 0 2 1 8:16 A 0 0 8:32 A 0 0 ");
  {
    scoped_cpu_hint cpu(1);
    dev.io(3);
  }
  {
    scoped_cpu_hint cpu(6); // unmapped: a miss, then the lowest mapped CPU's path
    dev.io(1);
  }
  auto paths = dev.backend().paths();
  CHECK(paths[0].dispatched == 1);
  CHECK(paths[1].dispatched == 3);
  CHECK(dev.engine().status(status_type::info) == "2 0 0 0 1 1 A 0 2 1 8:16 A 0 1 8:32 A 0 1 ");
}
