// health/prioritizers/ana.hpp: multipathd's `ana` scores (libmultipath/prioritizers/ana.c) for
// every ANA state, through a source that answers inline and one that answers later, and in a
// monitor, where they decide failback.

#include <mpath/health/monitor.hpp>
#include <mpath/health/prioritizer.hpp>
#include <mpath/health/prioritizers/ana.hpp>
#include <mpath/testing/sim.hpp>
#include <mpath/testing/sim_checker.hpp>

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace {

using mpath::health::ana_done;
using mpath::health::ana_state;
using mpath::health::prio_done;
using path = mpath::basic_path<int>;

struct inline_source {
  ana_state state = ana_state::optimized;
  ana_state operator()(path&) noexcept { return state; }
};
struct async_source { // keeps the completions and answers when told
  void operator()(path&, ana_done done) noexcept { waiting.push_back(done); }
  std::vector<ana_done> waiting;
};
struct source_throws {
  ana_state operator()(path&) { return ana_state::optimized; }
};
struct source_returns_int {
  int operator()(path&) noexcept { return 50; }
};

static_assert(mpath::health::AnaStateSource<inline_source, path>);
static_assert(mpath::health::AnaStateSource<async_source, path>);
static_assert(!mpath::health::AnaStateSource<source_throws, path>);
static_assert(!mpath::health::AnaStateSource<source_returns_int, path>);
static_assert(mpath::health::Prioritizer<mpath::health::ana_prioritizer<inline_source>, path>);
static_assert(mpath::health::Prioritizer<mpath::health::ana_prioritizer<async_source>, path>);
static_assert(!mpath::health::Prioritizer<mpath::health::ana_prioritizer<source_throws>, path>);

/// Collects the priorities a prioritizer answers.
struct answers {
  std::vector<int> got;
  prio_done done() {
    return prio_done([](void* ctx, std::uint64_t, int p) noexcept { static_cast<answers*>(ctx)->got.push_back(p); },
                     this, 0);
  }
};

constexpr ana_state all_states[] = {ana_state::optimized,       ana_state::non_optimized, ana_state::inaccessible,
                                    ana_state::persistent_loss, ana_state::change,        ana_state::unknown};

TEST_CASE("ana prioritizer: multipathd's priority for each ANA state") {
  CHECK(mpath::health::ana_priority(ana_state::optimized) == 50);
  CHECK(mpath::health::ana_priority(ana_state::non_optimized) == 10);
  CHECK(mpath::health::ana_priority(ana_state::inaccessible) == 1);
  CHECK(mpath::health::ana_priority(ana_state::change) == 1); // ana.c: treated like inaccessible
  CHECK(mpath::health::ana_priority(ana_state::persistent_loss) == 0);
  CHECK(mpath::health::ana_priority(ana_state::unknown) == 0); // multipathd: undefined (-1)
  static_assert(mpath::health::ana_priority(ana_state::optimized) == 50);
}

TEST_CASE("ana prioritizer: the NVMe encoding of the descriptor's state field") {
  CHECK(mpath::health::to_ana_state(0x01) == ana_state::optimized);
  CHECK(mpath::health::to_ana_state(0x02) == ana_state::non_optimized);
  CHECK(mpath::health::to_ana_state(0x03) == ana_state::inaccessible);
  CHECK(mpath::health::to_ana_state(0x04) == ana_state::persistent_loss);
  CHECK(mpath::health::to_ana_state(0x0f) == ana_state::change);
  CHECK(mpath::health::to_ana_state(0xf1) == ana_state::optimized); // the high bits are reserved
  CHECK(mpath::health::to_ana_state(0x00) == ana_state::unknown);
  CHECK(mpath::health::to_ana_state(0x05) == ana_state::unknown);
  for (auto s : all_states)
    if (s != ana_state::unknown)
      CHECK(mpath::health::to_ana_state(std::uint8_t(s)) == s);
  CHECK(mpath::health::to_string(ana_state::non_optimized) == "non-optimized");
  CHECK(mpath::health::to_string(ana_state::persistent_loss) == "persistent-loss");
  CHECK(mpath::health::to_string(ana_state(0x07)) == "unknown");
}

TEST_CASE("ana prioritizer: a source that answers inline") {
  path p("nvme0n1", 0, 0, nullptr);
  mpath::health::ana_prioritizer prio{inline_source{}};
  answers a;
  for (auto s : all_states) {
    prio.source().state = s;
    prio.get_priority(p, a.done());
  }
  CHECK(a.got == std::vector<int>{50, 10, 1, 0, 1, 0});
}

TEST_CASE("ana prioritizer: a source that answers later, through ana_done") {
  path p("nvme0n1", 0, 0, nullptr);
  mpath::health::ana_prioritizer prio{async_source{}};
  answers a;
  prio.get_priority(p, a.done());
  prio.get_priority(p, a.done());
  CHECK(a.got.empty());
  REQUIRE(prio.source().waiting.size() == 2);
  prio.source().waiting[1](ana_state::non_optimized);
  prio.source().waiting[0](ana_state::inaccessible);
  CHECK(a.got == std::vector<int>{10, 1});
}

TEST_CASE("ana prioritizer: a lambda over the path works as a source") {
  path opt("nvme0n1", 0, 0, nullptr), lost("nvme1n1", 1, 1, nullptr);
  mpath::health::ana_prioritizer prio{
      [](path& p) noexcept { return p.handle() == 0 ? ana_state::optimized : ana_state::persistent_loss; }};
  static_assert(mpath::health::Prioritizer<decltype(prio), path>);
  answers a;
  prio.get_priority(opt, a.done());
  prio.get_priority(lost, a.done());
  CHECK(a.got == std::vector<int>{50, 0});
}

// ------------------------------------------------------------------ in a monitor

using device = mpath::testing::sim_device<>;
using sim_path = device::engine_type::path_type;

/// The ANA state of each path token, as a product's NVMe backend would keep it.
struct ana_table {
  std::map<std::string, ana_state, std::less<>> states;
  ana_state operator()(sim_path& p) noexcept {
    auto it = states.find(std::string_view(p.device()));
    return it == states.end() ? ana_state::unknown : it->second;
  }
};
using ana_prio = mpath::health::ana_prioritizer<ana_table>;
static_assert(mpath::health::Prioritizer<ana_prio, sim_path>);
using monitor = mpath::health::health_monitor<device::engine_type, mpath::testing::sim_checker, ana_prio>;

TEST_CASE("ana prioritizer: in a monitor, failback immediate follows the optimized path") {
  auto d = device::create("0 0 2 1 round-robin 0 1 1 nvme0 1 round-robin 0 1 1 nvme1 1");
  REQUIRE(d);
  auto& dev = **d;
  mpath::testing::sim_checker checker;
  ana_prio prio{ana_table{{{"nvme0", ana_state::non_optimized}, {"nvme1", ana_state::optimized}}}};
  mpath::health::vector_log_sink sink;
  {
    monitor m(dev.engine(), checker, prio, sink, "mp");
    std::vector<std::string> immediate{"immediate"};
    REQUIRE(m.set("failback", immediate));
    m.start();
    dev.sleep(1000);
    CHECK(m.group_priority(1) == 10);
    CHECK(m.group_priority(2) == 50);
    CHECK(sink.take() == std::vector<std::string>{"mp: switch to path group #2"});

    // The controllers swap roles (an ANA change), seen at the paths' next checks (5 s later).
    prio.source().states["nvme0"] = ana_state::optimized;
    prio.source().states["nvme1"] = ana_state::change;
    dev.sleep(5000);
    CHECK(m.group_priority(1) == 50);
    CHECK(m.group_priority(2) == 1);
    CHECK(sink.take() == std::vector<std::string>{"mp: switch to path group #1"});
    m.stop();
  }
}

} // namespace
