// The health layer's concepts (PathChecker, Prioritizer, LogSink, MonitoredEngine), each with a
// minimal archetype and near-misses that break one requirement each, as tests/concepts_test.cpp
// does for the engine's. The last test runs a monitor over the archetypes alone.

#include <mpath/health/log.hpp>
#include <mpath/health/monitor.hpp>
#include <mpath/health/path_checker.hpp>
#include <mpath/health/prioritizer.hpp>
#include <mpath/health/probe_checker.hpp>
#include <mpath/testing/manual_executor.hpp>
#include <mpath/testing/sim.hpp>
#include <mpath/testing/sim_checker.hpp>

#include <doctest/doctest.h>

#include <string>

namespace {

using mpath::health::check_done;
using mpath::health::check_result;
using mpath::health::health_event;
using mpath::health::prio_done;
using path = mpath::basic_path<int>;

// =============================================================================== PathChecker

struct min_checker {
  void check(path&, check_done done) noexcept { done(check_result::up); }
};
struct checker_throws {
  void check(path&, check_done) {}
};
struct checker_synchronous { // answers by returning: the monitor could not time it out
  check_result check(path&) noexcept { return check_result::up; }
};
struct checker_returns_result {
  check_result check(path&, check_done) noexcept { return check_result::up; }
};
struct checker_const_path_only_int { // takes something that is not the engine's path
  void check(int, check_done) noexcept {}
};
struct checker_by_std_function_like { // a completion that would allocate
  void check(path&, std::string) noexcept {}
};

static_assert(mpath::health::PathChecker<min_checker, path>);
static_assert(!mpath::health::PathChecker<checker_throws, path>);
static_assert(!mpath::health::PathChecker<checker_synchronous, path>);
static_assert(!mpath::health::PathChecker<checker_returns_result, path>);
static_assert(!mpath::health::PathChecker<checker_const_path_only_int, path>);
static_assert(!mpath::health::PathChecker<checker_by_std_function_like, path>);
static_assert(!mpath::health::PathChecker<min_checker, int>); // P must be a Path
static_assert(mpath::health::PathChecker<mpath::testing::sim_checker, path>);
static_assert(mpath::health::PathChecker<
              mpath::health::probe_checker<mpath::testing::sim_backend, mpath::testing::manual_executor>,
              mpath::basic_path<mpath::testing::sim_backend::handle_type>>);
// The probe checker needs the backend's handle in the path.
static_assert(!mpath::health::PathChecker<
              mpath::health::probe_checker<mpath::testing::sim_backend, mpath::testing::manual_executor>,
              mpath::basic_path<std::string>>);

// =============================================================================== Prioritizer

struct min_prioritizer {
  void get_priority(path&, prio_done done) noexcept { done(1); }
};
struct prio_throws {
  void get_priority(path&, prio_done) {}
};
struct prio_synchronous {
  int get_priority(path&) noexcept { return 1; }
};
struct prio_wrong_name {
  void priority(path&, prio_done done) noexcept { done(1); }
};
struct prio_checker_done { // the completion of a checker is not a priority's
  void get_priority(path&, check_done) noexcept {}
};

static_assert(mpath::health::Prioritizer<min_prioritizer, path>);
static_assert(mpath::health::Prioritizer<mpath::health::const_prioritizer, path>);
static_assert(mpath::health::Prioritizer<mpath::testing::sim_prioritizer, path>);
static_assert(!mpath::health::Prioritizer<prio_throws, path>);
static_assert(!mpath::health::Prioritizer<prio_synchronous, path>);
static_assert(!mpath::health::Prioritizer<prio_wrong_name, path>);
static_assert(!mpath::health::Prioritizer<prio_checker_done, path>);

// =============================================================================== LogSink

struct min_sink {
  void log(const health_event&) noexcept {}
};
struct sink_throws {
  void log(const health_event&) {}
};
struct sink_takes_string {
  void log(const std::string&) noexcept {}
};
struct sink_wants_mutable { // may not change the monitor's event
  void log(health_event&) noexcept {}
};

static_assert(mpath::health::LogSink<min_sink>);
static_assert(mpath::health::LogSink<mpath::health::vector_log_sink>);
static_assert(!mpath::health::LogSink<sink_throws>);
static_assert(!mpath::health::LogSink<sink_takes_string>);
static_assert(!mpath::health::LogSink<sink_wants_mutable>);

// =============================================================================== MonitoredEngine

using sim_engine = mpath::testing::sim_device<>::engine_type;
static_assert(mpath::health::MonitoredEngine<sim_engine>);
static_assert(!mpath::health::MonitoredEngine<int>);
static_assert(!mpath::health::MonitoredEngine<mpath::testing::sim_backend>);

TEST_CASE("health: concepts accept their archetypes and refuse near-misses") {
  CHECK(mpath::health::PathChecker<min_checker, path>);
  CHECK_FALSE(mpath::health::PathChecker<checker_synchronous, path>);
  CHECK(mpath::health::Prioritizer<min_prioritizer, path>);
  CHECK_FALSE(mpath::health::Prioritizer<prio_synchronous, path>);
  CHECK(mpath::health::LogSink<min_sink>);
  CHECK_FALSE(mpath::health::LogSink<sink_takes_string>);
  CHECK(mpath::health::MonitoredEngine<sim_engine>);
}

// A checker that answers through its completion only, from a later call (asynchronously).
struct deferred_checker {
  void check(mpath::basic_path<mpath::testing::sim_backend::handle_type>&, check_done done) noexcept {
    pending.push_back(done);
  }
  void answer_all(check_result r) {
    auto waiting = std::move(pending);
    pending.clear();
    for (auto& d : waiting)
      d(r);
  }
  std::vector<check_done> pending;
};

struct min_sim_prioritizer {
  void get_priority(mpath::basic_path<mpath::testing::sim_backend::handle_type>&, prio_done done) noexcept { done(1); }
};

TEST_CASE("health: a monitor runs over the archetypes alone") {
  auto d = mpath::testing::sim_device<>::create("0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
  REQUIRE(d);
  auto& dev = **d;
  deferred_checker checker;
  min_sim_prioritizer prio;
  min_sink sink;
  {
    mpath::health::health_monitor<sim_engine, deferred_checker, min_sim_prioritizer, min_sink> m(dev.engine(), checker,
                                                                                                 prio, sink, "mp");
    m.start();
    dev.sleep(1000);
    CHECK(checker.pending.size() == 2); // both paths checked at the first tick
    checker.answer_all(check_result::down);
    dev.sleep(1000); // answers seen at the next tick
    CHECK(dev.engine().nr_valid_paths() == 0);
    m.stop();
  }
  CHECK(dev.engine().status(mpath::status_type::info) == "2 1 0 0 1 1 E 0 2 0 8:16 F 1 8:32 F 1 ");
}

} // namespace
