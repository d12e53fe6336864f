// Unit tests of include/mpath/selectors/historical_service_time.hpp against kernel-target.md §2.3
// and §5.4: arguments, the fixed-point weights and moving average, the comparison rules (close
// estimates, idle and stale paths, the outstanding-weighted estimate, the stale-winner limit),
// list order, and the status words, also through the table grammar and the engine.

#include <mpath/selectors/historical_service_time.hpp>

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
using mpath::selectors::historical_service_time;
using hst_t = historical_service_time;

constexpr std::uint64_t ms = 1'000'000;

mpath::result<void> create(hst_t& s, std::vector<std::string> args) { return s.create(args); }
mpath::result<void> add(hst_t& s, std::vector<std::string> args) { return s.add_path(args); }

/// A selector with default arguments and `n` paths.
void make(hst_t& s, std::size_t n, std::vector<std::string> selector_args = {}) {
  REQUIRE(create(s, std::move(selector_args)));
  for (std::size_t i = 0; i < n; ++i)
    REQUIRE(add(s, {}));
}

std::string status(const hst_t& s, path_index p, status_type type) {
  std::string out;
  s.path_status(p, type, out);
  return out;
}

/// One I/O on `p` that started at `start` and ends at `end` (start_io + end_io).
void io(hst_t& s, path_index p, std::uint64_t start, std::uint64_t end) {
  s.start_io(p, 4096);
  s.end_io(p, 4096, start, end);
}

} // namespace

TEST_CASE("historical-service-time: identity as the kernel declares it") {
  CHECK(hst_t::name == "historical-service-time");
  CHECK(hst_t::table_args == 1);
  CHECK(hst_t::info_args == 3);
  CHECK(hst_t::uses_clock);
  CHECK(mpath::AccountingSelector<hst_t>);
}

TEST_CASE("historical-service-time: selector arguments") {
  SUBCASE("defaults: base weight 972, threshold multiplier 0") {
    hst_t s;
    REQUIRE(create(s, {}));
    std::string group;
    s.group_status(group);
    CHECK(group == "2 972 0 ");
  }
  SUBCASE("accepted values are printed back as given") {
    for (auto [args, printed] : std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"0"}, "2 0 0 "},
             {{"1023"}, "2 1023 0 "},
             {{"512", "3"}, "2 512 3 "},
             {{"972", "4294967295"}, "2 972 4294967295 "},
             {{"0100", "007"}, "2 100 7 "},
         }) {
      hst_t s;
      REQUIRE(create(s, args));
      std::string group;
      s.group_status(group);
      CHECK(group == printed);
    }
  }
  SUBCASE("rejected: more than two, not a number, base weight of 1.0 or more") {
    for (auto args : std::vector<std::vector<std::string>>{{"1", "2", "3"},
                                                           {"x"},
                                                           {"-1"},
                                                           {"1024"},
                                                           {"4294967295"},
                                                           {"4294967296"},
                                                           {"972", "x"},
                                                           {"972", "-1"},
                                                           {"972", "4294967296"},
                                                           {""},
                                                           {"1.5"}}) {
      hst_t s;
      auto r = create(s, args);
      CHECK_FALSE(r);
      CHECK(r.err().code == EINVAL);
    }
  }
  SUBCASE("the table grammar reports every constructor failure with the kernel's one text") {
    for (const char* table :
         {"0 0 1 1 historical-service-time 3 1 2 3 1 0 8:16", "0 0 1 1 historical-service-time 1 1024 1 0 8:16",
          "0 0 1 1 historical-service-time 2 972 x 1 0 8:16"}) {
      auto t = mpath::parse_table(table);
      REQUIRE_FALSE(t);
      CHECK(t.err().code == EINVAL);
      CHECK(t.err().text == "path selector constructor failed");
    }
  }
}

TEST_CASE("historical-service-time: per-path arguments") {
  hst_t s;
  REQUIRE(create(s, {}));
  auto r = add(s, {"1", "1"});
  REQUIRE_FALSE(r);
  CHECK(r.err().code == EINVAL);
  CHECK(r.err().text == "historical-service-time ps: incorrect number of arguments");
  for (const char* bad : {"x", "-1", "", "1x", "4294967296"}) {
    INFO("repeat_count '" << bad << "'");
    auto e = add(s, {bad});
    REQUIRE_FALSE(e);
    CHECK(e.err().text == "historical-service-time ps: invalid repeat count");
  }
  REQUIRE(add(s, {}));
  REQUIRE(add(s, {"0"}));
  REQUIRE(add(s, {"128"}));
  CHECK(s.repeat_count(0) == 1);
  CHECK(s.repeat_count(1) == 0);
  CHECK(s.repeat_count(2) == 128); // stored, not clamped, and not used
  for (path_index p = 0; p < 3; ++p)
    CHECK(status(s, p, status_type::table) == "0 "); // TABLE prints a constant 0, not the count
}

TEST_CASE("historical-service-time: weights are base^(k+1) by rounded squaring, the last bucket 0") {
  CHECK(hst_t::fixed_power(972, 0) == 1024);
  CHECK(hst_t::fixed_power(972, 1) == 972);
  CHECK(hst_t::fixed_power(972, 2) == 923); // (972·972 + 512) >> 10
  CHECK(hst_t::fixed_power(972, 3) == 876); // 923·972 rounded
  CHECK(hst_t::fixed_power(972, 4) == 832); // 923² rounded
  CHECK(hst_t::fixed_power(512, 10) == 1);  // 0.5^10 = 1/1024
  CHECK(hst_t::fixed_power(0, 5) == 0);

  hst_t s;
  make(s, 1);
  CHECK(s.weight(0) == 972);
  CHECK(s.weight((std::uint64_t{1} << 24) - 1) == 972); // bucket 0 ends at 2^24 ns
  CHECK(s.weight(std::uint64_t{1} << 24) == 923);
  CHECK(s.weight(std::uint64_t{3} << 24) == 832);
  CHECK(s.weight(std::uint64_t{62} << 24) == hst_t::fixed_power(972, 63));
  CHECK(s.weight(std::uint64_t{63} << 24) == 0); // about 1.06 s: history discarded
  CHECK(s.weight(~std::uint64_t{0}) == 0);

  hst_t zero;
  make(zero, 1, {"0"});
  CHECK(zero.weight(0) == 0); // base 0 ignores history altogether
}

TEST_CASE("historical-service-time: end_io updates the estimate, outstanding count and stale time") {
  hst_t s;
  make(s, 2);
  CHECK(status(s, 0, status_type::info) == "1024 0 0 "); // 1 ns, nothing in flight, never finished

  s.start_io(0, 4096);
  s.start_io(0, 4096);
  CHECK(status(s, 0, status_type::info) == "1024 2 0 ");

  // A 1 ms I/O: sample 1'000'000 × 1024 with weight 972.
  s.end_io(0, 4096, 10 * ms, 11 * ms);
  std::uint64_t hst = hst_t::ema(1024, 1'000'000ull << 10, 972);
  CHECK(hst == (1024ull * 972 + (1'000'000ull << 10) * 52 + 512) >> 10);
  CHECK(s.estimate(0) == hst);
  CHECK(s.outstanding(0) == 1);
  CHECK(s.stale_after(0) == 11 * ms + 2 * (hst >> 10)); // two valid paths
  CHECK(status(s, 0, status_type::info) ==
        std::to_string(hst) + " 1 " + std::to_string(11 * ms + 2 * (hst >> 10)) + " ");

  SUBCASE("an I/O issued before the previous completion is timed from that completion") {
    s.end_io(0, 4096, 10 * ms, 12 * ms); // served 11..12 ms, not 10..12
    std::uint64_t next = hst_t::ema(hst, 1'000'000ull << 10, 972);
    CHECK(s.estimate(0) == next);
    CHECK(s.outstanding(0) == 0);
    CHECK(s.stale_after(0) == 12 * ms + 2 * (next >> 10));
  }
  SUBCASE("a completion stamped before its start counts as 0 ns") {
    s.end_io(0, 4096, 20 * ms, 15 * ms);
    CHECK(s.estimate(0) == hst_t::ema(hst, 0, 972));
    CHECK(s.stale_after(0) == 15 * ms + 2 * (s.estimate(0) >> 10));
  }
  SUBCASE("a slow sample uses its own bucket's weight") {
    s.end_io(0, 4096, 11 * ms, 11 * ms + (std::uint64_t{2} << 24)); // bucket 2
    CHECK(s.estimate(0) == hst_t::ema(hst, std::uint64_t{2} << 34, 876));
  }
  SUBCASE("the stale period scales with the number of valid paths") {
    s.fail_path(1);
    s.end_io(0, 4096, 11 * ms, 12 * ms);
    CHECK(s.stale_after(0) == 12 * ms + 1 * (s.estimate(0) >> 10));
  }
}

TEST_CASE("historical-service-time: the moving average converges on the measured service time") {
  hst_t s;
  make(s, 1);
  std::uint64_t t = 0;
  for (int i = 0; i < 400; ++i, t += 2 * ms)
    io(s, 0, t, t + 2 * ms);
  std::uint64_t ns = s.estimate(0) >> 10;
  CHECK(ns > 1'990'000);
  CHECK(ns <= 2'000'000);
}

TEST_CASE("historical-service-time: fresh paths: outstanding counts and list order decide") {
  hst_t s;
  make(s, 3);
  // Fresh paths: all estimates 1 ns, all idle, never finished (stale_after 0).
  SUBCASE("all idle at time 0: list order, the winner to the tail") {
    std::vector<path_index> got;
    for (int i = 0; i < 4; ++i)
      got.push_back(s.select(4096, 0));
    CHECK(got == std::vector<path_index>{0, 1, 2, 0});
  }
  SUBCASE("fewest outstanding wins") {
    s.start_io(0, 4096);
    s.start_io(1, 4096);
    s.start_io(1, 4096);
    CHECK(s.select(4096, 0) == 2);
    s.start_io(2, 4096);
    s.start_io(2, 4096);
    CHECK(s.select(4096, 0) == 0); // 1 vs 2 vs 2
  }
}

// Base weight 0 below: no history, so each estimate is exactly the last sample, and the stale
// time is the last finish plus 2 × that sample (two valid paths).

TEST_CASE("historical-service-time: a faster estimate wins when both paths are loaded") {
  hst_t s;
  make(s, 2, {"0"});
  io(s, 0, 0, 1 * ms); // estimate 1 ms, stale after 3 ms
  io(s, 1, 0, 4 * ms); // estimate 4 ms, stale after 12 ms
  std::uint64_t now = 2 * ms;
  REQUIRE(s.stale_after(0) > now);
  REQUIRE(s.stale_after(1) > now);
  s.start_io(0, 4096);
  s.start_io(1, 4096);
  CHECK(s.select(4096, now) == 0); // same load, smaller estimate
  SUBCASE("until its load outweighs the estimate: (1 + out) × estimate") {
    // est1 ≈ 4·est0: path 0 keeps winning while (1 + out0)·est0 ≤ (1 + out1)·est1 = 2·est1.
    int chosen0 = 0;
    for (int i = 0; i < 12; ++i) {
      path_index p = s.select(4096, now);
      s.start_io(p, 4096);
      chosen0 += p == 0;
      if (p == 1)
        break;
    }
    // (1+out0)·e0 > 2·e1 ≈ 8·e0 needs out0 ≥ 8: path 0 took I/Os until it had 8 outstanding.
    CHECK(s.outstanding(0) == 8);
    CHECK(chosen0 == 7);
    CHECK(s.outstanding(1) == 2);
  }
}

TEST_CASE("historical-service-time: idle paths") {
  hst_t s;
  make(s, 2, {"0"});
  io(s, 0, 0, 1 * ms); // fast; stale after 3 ms
  io(s, 1, 0, 4 * ms); // slow; stale after 12 ms
  std::uint64_t stale0 = s.stale_after(0), stale1 = s.stale_after(1);
  REQUIRE(stale0 < stale1);

  SUBCASE("of two idle paths the one stale first wins, whatever the estimates") {
    CHECK(s.select(4096, 2 * ms) == 0);
    CHECK(s.select(4096, 2 * ms) == 0); // nothing started: still the same answer
  }
  SUBCASE("an idle path beats a loaded one once the idle one is stale") {
    s.start_io(0, 4096);
    CHECK(s.select(4096, stale1 + 1) == 1);
  }
  SUBCASE("a loaded stale-free fast path beats an idle slow path that is not stale yet") {
    s.start_io(0, 4096);
    // path 1 idle but fresh (stale1 > now): estimates decide, (1+1)·e0 < (1+0)·e1.
    CHECK(s.select(4096, 2 * ms) == 0);
  }
}

TEST_CASE("historical-service-time: a stale winner that is still loaded gets no more than equal usage") {
  hst_t s;
  make(s, 2, {"0"});
  io(s, 0, 0, 1 * ms);
  io(s, 1, 0, 4 * ms);
  s.start_io(0, 4096);
  s.start_io(0, 4096);
  s.start_io(1, 4096);
  s.start_io(1, 4096);
  s.start_io(1, 4096);
  // Path 0 wins on estimates ((1+2)·e0 < (1+3)·e1) but it is stale at `late`: the outstanding
  // counts decide instead, and path 0 has fewer.
  std::uint64_t late = s.stale_after(1) + 1;
  CHECK(s.select(4096, late) == 0);
  s.start_io(0, 4096);
  CHECK(s.select(4096, late) == 1); // 3 vs 3, list order (path 0 just moved to the tail)
  s.start_io(1, 4096);
  s.start_io(0, 4096);
  s.start_io(0, 4096); // 5 vs 4
  CHECK(s.select(4096, late) == 1);
}

TEST_CASE("historical-service-time: the threshold multiplier ignores small differences") {
  hst_t s;
  make(s, 2, {"0", "5"});
  io(s, 0, 0, 1 * ms);
  io(s, 1, 0, 4 * ms); // 4× slower, under the 5× threshold
  s.start_io(0, 4096);
  s.start_io(0, 4096);
  s.start_io(1, 4096);
  CHECK(s.select(4096, 2 * ms) == 1); // outstanding counts only: 2 vs 1

  hst_t t;
  make(t, 2, {"0", "3"});
  io(t, 0, 0, 1 * ms);
  io(t, 1, 0, 4 * ms); // over the 3× threshold
  t.start_io(0, 4096);
  t.start_io(0, 4096);
  t.start_io(1, 4096);
  CHECK(t.select(4096, 2 * ms) == 0); // (1+2)·e0 < (1+1)·e1
}

TEST_CASE("historical-service-time: above 1023 outstanding the estimates are compared coarser") {
  hst_t s;
  make(s, 2, {"0"});
  io(s, 0, 0, 1 * ms);
  io(s, 1, 0, 1 * ms + 10);
  for (int i = 0; i < 1100; ++i)
    s.start_io(0, 4096);
  for (int i = 0; i < 1000; ++i)
    s.start_io(1, 4096);
  // Estimates shifted right by 10 first; the outcome is still the smaller product.
  CHECK(s.select(4096, 2 * ms) == 1);
}

TEST_CASE("historical-service-time: failed paths, reinstated ones at the tail, no path when none is valid") {
  hst_t s;
  make(s, 3);
  s.fail_path(0);
  CHECK(s.select(0, 0) == 1);
  CHECK(s.select(0, 0) == 2);
  CHECK(s.reinstate_path(0) == 0); // tail: 1 2 0
  CHECK(s.select(0, 0) == 1);
  CHECK(s.select(0, 0) == 2);
  CHECK(s.select(0, 0) == 0);
  s.fail_path(0);
  s.fail_path(1);
  s.fail_path(2);
  CHECK(s.select(0, 0) == mpath::no_path);
  hst_t empty;
  REQUIRE(create(empty, {}));
  CHECK(empty.select(0, 0) == mpath::no_path);
}

TEST_CASE("historical-service-time: table and status through the grammar and the engine (kernel-target.md 2.5)") {
  auto t = mpath::parse_table("0 0 1 1 historical-service-time 0 2 0 8:16 8:32");
  REQUIRE(t);
  CHECK(mpath::format_table(*t) == "0 0 1 1 historical-service-time 2 972 0 2 1 8:16 0 8:32 0 ");

  auto reloaded = mpath::parse_table(mpath::format_table(*t));
  REQUIRE(reloaded);
  CHECK(mpath::format_table(*reloaded) == mpath::format_table(*t));

  auto custom = mpath::parse_table("0 0 1 1 historical-service-time 2 900 3 1 1 8:16 7");
  REQUIRE(custom);
  CHECK(mpath::format_table(*custom) == "0 0 1 1 historical-service-time 2 900 3 1 1 8:16 0 ");
  auto one = mpath::parse_table("0 0 1 1 historical-service-time 1 500 1 0 8:16");
  REQUIRE(one);
  CHECK(mpath::format_table(*one) == "0 0 1 1 historical-service-time 2 500 0 1 1 8:16 0 ");

  auto d = mpath::testing::sim_device<>::create("0 0 1 1 historical-service-time 0 2 0 8:16 8:32");
  REQUIRE(d);
  auto& dev = **d;
  CHECK(dev.engine().status(status_type::table) == "0 0 1 1 historical-service-time 2 972 0 2 1 8:16 0 8:32 0 ");
  CHECK(dev.engine().status(status_type::info) == "2 1 0 0 1 1 E 2 972 0 2 3 8:16 A 0 1024 0 0 8:32 A 0 1024 0 0 ");

  // One I/O of 3 ms on the engine's (virtual) clock.
  dev.backend().set_latency("8:16", 3 * ms);
  dev.backend().set_latency("8:32", 3 * ms);
  dev.sleep(10);
  dev.io(1);
  CHECK(dev.engine().status(status_type::info) == "2 0 0 0 1 1 A 2 972 0 2 3 8:16 A 0 1024 1 0 8:32 A 0 1024 0 0 ");
  dev.sleep(3);
  std::uint64_t hst = hst_t::ema(1024, 3 * ms << 10, 972);
  std::uint64_t stale = 13 * ms + 2 * (hst >> 10);
  CHECK(dev.engine().status(status_type::info) == "2 0 0 0 1 1 A 2 972 0 2 3 8:16 A 0 " + std::to_string(hst) + " 0 " +
                                                      std::to_string(stale) + " 8:32 A 0 1024 0 0 ");
}
