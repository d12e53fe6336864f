// health/prioritizers/path_latency.hpp: multipathd's path_latency (libmultipath/prioritizers/
// path_latency.c). The expected priorities are worked out by hand from its formula:
// priority = trunc(log_b(1e8) - mean(log_b(latency in µs))), 0 when the mean is above log_b(1e8),
// log_b(1e8) - 0 when it is at or below log_b(1) = 0; reads are timed on a fake clock that the
// fake probe advances, and measurements run on a manual executor.

#include <mpath/executor.hpp>
#include <mpath/health/prioritizer.hpp>
#include <mpath/health/prioritizers/path_latency.hpp>
#include <mpath/io.hpp>
#include <mpath/path.hpp>
#include <mpath/testing/manual_executor.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using mpath::health::path_latency_accumulator;
using mpath::health::path_latency_args;
using mpath::health::prio_done;

constexpr std::uint64_t us = 1000; // ns

struct fake_clock {
  std::uint64_t now = 0;
  std::uint64_t now_ns() const noexcept { return now; }
};

/// A path's reads: their latencies in turn (cycled), and the read that fails, if any.
struct fake_handle {
  std::vector<std::uint64_t> latency_ns;
  int fail_at = -1; ///< 0-based index of the read that fails
  int reads = 0;
};

struct fake_backend {
  using handle_type = fake_handle;
  fake_clock* clock;
  mpath::blk_status probe(fake_handle& h) noexcept {
    int i = h.reads++;
    clock->now += h.latency_ns[std::size_t(i) % h.latency_ns.size()];
    return i == h.fail_at ? mpath::blk_status::transport : mpath::blk_status::ok;
  }
};

using path = mpath::basic_path<fake_handle>;
using prioritizer = mpath::health::path_latency_prioritizer<fake_backend, mpath::testing::manual_executor, fake_clock>;

static_assert(mpath::Clock<fake_clock>);
static_assert(mpath::health::ProbeBackend<fake_backend>);
static_assert(mpath::health::Prioritizer<prioritizer, path>);
static_assert(!mpath::health::Prioritizer<prioritizer, mpath::basic_path<int>>); // needs the backend's handle

/// Collects the priorities a prioritizer answers.
struct answers {
  std::vector<int> got;
  prio_done done() {
    return prio_done([](void* ctx, std::uint64_t, int p) noexcept { static_cast<answers*>(ctx)->got.push_back(p); },
                     this, 0);
  }
};

/// The priority of `n` reads cycling through `latency_ns`, with base `base`.
int priority_of(std::vector<std::uint64_t> latency_ns, int n, double base) {
  path_latency_accumulator acc(base);
  for (int i = 0; i < n; ++i)
    acc.add(latency_ns[std::size_t(i) % latency_ns.size()]);
  return acc.estimate().priority;
}

// ------------------------------------------------------------------ arguments

TEST_CASE("path_latency prioritizer: args, defaults and bounds as multipathd's") {
  CHECK(path_latency_args{}.io_num == 100);
  CHECK(path_latency_args{}.base_num == doctest::Approx(1.77827941004)); // 10^(1/4)
  for (auto text : {"", "  \t "}) {
    auto a = mpath::health::parse_path_latency_args(text);
    REQUIRE(a);
    CHECK(*a == path_latency_args{});
  }
  auto a = mpath::health::parse_path_latency_args("io_num=20 base_num=10");
  REQUIRE(a);
  CHECK(*a == path_latency_args{20, 10});
  a = mpath::health::parse_path_latency_args("\tbase_num=1.1  io_num=200 ");
  REQUIRE(a);
  CHECK(*a == path_latency_args{200, 1.1});
}

TEST_CASE("path_latency prioritizer: out-of-range args are refused with multipathd's words") {
  auto text_of = [](const char* args) {
    auto a = mpath::health::parse_path_latency_args(args);
    REQUIRE_FALSE(a);
    CHECK(a.err().code == EINVAL);
    return a.err().text;
  };
  const std::string io = "path_latency prio: args io_num is outside the valid range [20, 200]";
  const std::string base = "path_latency prio: args base_num is outside the valid range [1.1, 10]";
  CHECK(text_of("io_num=19 base_num=2") == io);
  CHECK(text_of("io_num=201 base_num=2") == io);
  CHECK(text_of("io_num=-20 base_num=2") == io);
  CHECK(text_of("io_num=99999999999999999999 base_num=2") == io);
  CHECK(text_of("io_num=20 base_num=1.09") == base);
  CHECK(text_of("io_num=20 base_num=10.01") == base);
  CHECK(text_of("io_num=20 base_num=nan") == base);
  CHECK(mpath::health::check_path_latency_args({19, 2}).err().text == io);
  CHECK(mpath::health::check_path_latency_args({20, 0.5}).err().text == base);
  CHECK(mpath::health::check_path_latency_args({20, 2}));
}

TEST_CASE("path_latency prioritizer: malformed args are refused, not replaced by the defaults") {
  const std::string expected = " (expected \"io_num=N base_num=X\")";
  const std::string prefix = "path_latency prio: fails to get path_latency args: ";
  auto text_of = [](const char* args) {
    auto a = mpath::health::parse_path_latency_args(args);
    REQUIRE_FALSE(a);
    CHECK(a.err().code == EINVAL);
    return a.err().text;
  };
  CHECK(text_of("io_num=20") == prefix + "base_num missing" + expected);
  CHECK(text_of("base_num=2") == prefix + "io_num missing" + expected);
  CHECK(text_of("io_num=abc base_num=2") == prefix + "bad io_num \"abc\"" + expected);
  CHECK(text_of("io_num=20x base_num=2") == prefix + "bad io_num \"20x\"" + expected);
  CHECK(text_of("io_num= base_num=2") == prefix + "bad io_num \"\"" + expected);
  CHECK(text_of("io_num=20 base_num=two") == prefix + "bad base_num \"two\"" + expected);
  CHECK(text_of("io_num=20 io_num=30 base_num=2") == prefix + "\"io_num\" given twice" + expected);
  CHECK(text_of("io_num=20 base_num=2 extra") == prefix + "unexpected \"extra\"" + expected);
  CHECK(text_of("20 2") == prefix + "unexpected \"20\"" + expected);
}

// ------------------------------------------------------------------ the arithmetic

TEST_CASE("path_latency prioritizer: priorities from the mean of the logarithms") {
  // base 10: log10(1e8) = 8 steps between 1 µs and 100 s
  CHECK(priority_of({500 * us}, 20, 10) == 5);         // 8 - 2.699 = 5.30
  CHECK(priority_of({5 * us}, 20, 10) == 7);           // 8 - 0.699 = 7.30
  CHECK(priority_of({50 * us}, 20, 10) == 6);          // 8 - 1.699 = 6.30
  CHECK(priority_of({1 * us}, 20, 10) == 8);           // at the 1 µs floor: all 8 steps
  CHECK(priority_of({1999}, 20, 10) == 8);             // whole microseconds, truncated: 1 µs
  CHECK(priority_of({999}, 20, 10) == 8);              // under 1 µs: counted as log(1) = 0
  CHECK(priority_of({200'000'000 * us}, 20, 10) == 0); // 200 s: above the 100 s ceiling
  CHECK(priority_of({100'000'000 * us}, 20, 10) == 0); // exactly at the ceiling: 8 - 8
  // sub-microsecond reads pull the mean down: half at 0, half at 400 µs: 8 - 2.602 / 2 = 6.70
  CHECK(priority_of({0, 400 * us}, 20, 10) == 6);
  CHECK(priority_of({400 * us}, 20, 10) == 5); // 8 - 2.602 = 5.40
  // one slow read in twenty at 200 s: mean (19 * 3 + 8.301) / 20 = 3.265: 4.73
  std::vector<std::uint64_t> one_slow(20, 1000 * us);
  one_slow[7] = 200'000'000 * us;
  CHECK(priority_of(one_slow, 20, 10) == 4);

  // The defaults: base 10^(1/4), four steps per factor of ten. log_b(1e8) comes out a hair under
  // 32 in double arithmetic, so multipathd's truncation gives 31 at best and 19 (not 20) at 1 ms.
  CHECK(priority_of({1 * us}, 100, path_latency_args{}.base_num) == 31);
  CHECK(priority_of({1000 * us}, 100, path_latency_args{}.base_num) == 19);
  CHECK(priority_of({10 * us}, 100, path_latency_args{}.base_num) == 27); // 32 - 4, truncated
  // base 2: log2(1e8) = 26.58; 1 ms = 9.97 steps
  CHECK(priority_of({1000 * us}, 20, 2) == 16);
}

TEST_CASE("path_latency prioritizer: a large deviation is reported but does not change the priority") {
  // base 2: ten reads at 10 µs and ten at 1 s. Mean log2 = (3.32 + 19.93) / 2 = 11.63, the same as
  // twenty reads at 3162 µs, so the same priority, trunc(26.58 - 11.63) = 14. The deviation of
  // the logarithms is 8.30 * sqrt(20 / 19) = 8.52 (an "uncertainty" factor of 2^8.52 = 367);
  // multipathd before 0.7.5 only warned above 4, multipathd since only logs it.
  path_latency_accumulator spread(2), steady(2);
  for (int i = 0; i < 10; ++i) {
    spread.add(10 * us);
    spread.add(1'000'000 * us);
  }
  for (int i = 0; i < 20; ++i)
    steady.add(3162 * us);
  auto s = spread.estimate(), t = steady.estimate();
  CHECK(s.priority == 14);
  CHECK(t.priority == 14);
  CHECK(s.log_average == doctest::Approx(11.6267));
  CHECK(s.log_deviation == doctest::Approx(8.5206).epsilon(1e-4));
  CHECK(s.log_deviation > 4);
  CHECK(s.uncertainty == doctest::Approx(367.24).epsilon(1e-3));
  CHECK(s.average_us == doctest::Approx(3162.28).epsilon(1e-4));
  CHECK(t.log_deviation == doctest::Approx(0).epsilon(1e-6));
  CHECK(t.uncertainty == doctest::Approx(1).epsilon(1e-6));
}

// ------------------------------------------------------------------ the prioritizer

struct rig {
  fake_clock clock;
  fake_backend backend{&clock};
  mpath::testing::manual_executor exec;
};

TEST_CASE("path_latency prioritizer: measures io_num reads on the executor, then answers") {
  rig r;
  path fast("8:16", fake_handle{{5 * us}}, 0, nullptr);
  path slow("8:32", fake_handle{{500 * us}}, 1, nullptr);
  prioritizer prio(r.backend, r.exec, r.clock, path_latency_args{20, 10});
  CHECK(prio.args() == path_latency_args{20, 10});
  answers a;
  prio.get_priority(fast, a.done());
  prio.get_priority(slow, a.done());
  CHECK(a.got.empty()); // never on the caller's thread
  CHECK(fast.handle().reads == 0);
  r.exec.run();
  CHECK(a.got == std::vector<int>{7, 5});
  CHECK(fast.handle().reads == 20);
  CHECK(slow.handle().reads == 20);
  CHECK(r.clock.now == 20 * 5 * us + 20 * 500 * us);
  CHECK(prio.measurements() == 2);

  // The path got slower: measured again at the next request.
  slow.handle().latency_ns = {200'000'000 * us};
  prio.get_priority(slow, a.done());
  r.exec.run();
  CHECK(a.got == std::vector<int>{7, 5, 0});
}

TEST_CASE("path_latency prioritizer: a failing read ends the measurement with priority 0") {
  rig r;
  path p("8:16", fake_handle{{5 * us}, 3}, 0, nullptr);
  prioritizer prio(r.backend, r.exec, r.clock, path_latency_args{20, 10});
  answers a;
  prio.get_priority(p, a.done());
  r.exec.run();
  CHECK(a.got == std::vector<int>{0});
  CHECK(p.handle().reads == 4); // the fourth read failed; no more were issued
  p.handle().fail_at = -1;
  prio.get_priority(p, a.done());
  r.exec.run();
  CHECK(a.got == std::vector<int>{0, 7});
}

TEST_CASE("path_latency prioritizer: asked again while measuring, it answers the last priority at once") {
  rig r;
  path p("8:16", fake_handle{{5 * us}}, 0, nullptr);
  prioritizer prio(r.backend, r.exec, r.clock, path_latency_args{20, 10});
  answers a;
  prio.get_priority(p, a.done());
  prio.get_priority(p, a.done()); // before any measurement: 0
  CHECK(a.got == std::vector<int>{0});
  r.exec.run();
  CHECK(a.got == std::vector<int>{0, 7});
  prio.get_priority(p, a.done());
  prio.get_priority(p, a.done()); // the last measurement's
  r.exec.run();
  CHECK(a.got == std::vector<int>{0, 7, 7, 7});
  CHECK(prio.measurements() == 2);
}

TEST_CASE("path_latency prioritizer: args it cannot use are replaced by the defaults, as multipathd does") {
  rig r;
  path p("8:16", fake_handle{{1000 * us}}, 0, nullptr);
  prioritizer prio(r.backend, r.exec, r.clock, path_latency_args{5, 10});
  CHECK(prio.args() == path_latency_args{});
  answers a;
  prio.get_priority(p, a.done());
  r.exec.run();
  CHECK(p.handle().reads == 100);
  CHECK(a.got == std::vector<int>{19});
}

TEST_CASE("path_latency prioritizer: destroyed with a measurement not yet run, it still answers") {
  rig r;
  path p("8:16", fake_handle{{5 * us}}, 0, nullptr);
  answers a;
  {
    prioritizer prio(r.backend, r.exec, r.clock, path_latency_args{20, 10});
    prio.get_priority(p, a.done());
  }
  CHECK(a.got == std::vector<int>{0});
  CHECK(p.handle().reads == 0);
  CHECK(r.exec.idle());
}

TEST_CASE("path_latency prioritizer: the executor's clock by default") {
  mpath::testing::manual_executor exec;
  struct backend {
    using handle_type = fake_handle;
    mpath::blk_status probe(fake_handle& h) noexcept {
      ++h.reads;
      return mpath::blk_status::ok;
    }
  } b;
  path p("8:16", fake_handle{{0}}, 0, nullptr);
  mpath::health::path_latency_prioritizer<backend, mpath::testing::manual_executor> prio(b, exec, {20, 10});
  answers a;
  prio.get_priority(p, a.done());
  exec.run();
  CHECK(a.got == std::vector<int>{8}); // the manual clock stands still: every read under 1 µs
}

} // namespace
