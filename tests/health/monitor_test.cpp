// health/monitor.hpp on the simulation, read like product.md §8's timelines: the virtual clock
// starts at 0, the monitor starts at 0, so tick N falls at N seconds. Each step asserts the exact
// log lines and the INFO status.

#include <mpath/health/monitor.hpp>
#include <mpath/testing/sim.hpp>
#include <mpath/testing/sim_checker.hpp>

#include <doctest/doctest.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

using mpath::health::check_result;
using mpath::health::path_check_state;
using device = mpath::testing::sim_device<>;
using monitor = mpath::health::health_monitor<device::engine_type, mpath::testing::sim_checker,
                                              mpath::testing::sim_prioritizer, mpath::health::vector_log_sink>;
using lines = std::vector<std::string>;

/// A device named "mp" with the health layer around it, as mpathctl runs one.
struct rig {
  explicit rig(std::string_view table) {
    auto d = device::create(table);
    REQUIRE(d);
    dev = std::move(*d);
    mon = std::make_unique<monitor>(dev->engine(), checker, prio, sink, "mp");
    fwd = std::make_unique<mpath::testing::forward_events<monitor>>(dev->backend(), *mon);
  }
  ~rig() {
    fwd.reset();
    mon->stop([this] { dev->executor().run(); });
    mon.reset();
  }

  void policy(std::string key, std::string value) {
    std::vector<std::string> v{value};
    auto r = mon->set(key, v);
    REQUIRE(r);
  }
  void start() {
    mon->start();
    dev->run();
  }
  /// Runs to `seconds` on the virtual clock (ticks up to and including it fire).
  void until(double seconds) {
    auto target = std::uint64_t(seconds * 1e9);
    REQUIRE(target >= dev->executor().now_ns());
    dev->sleep((target - dev->executor().now_ns()) / 1'000'000);
  }
  void probe(std::string path, check_result r) { checker.set_result(path, r); }
  lines log() { return sink.take(); }
  std::string info() { return dev->engine().status(mpath::status_type::info); }
  std::string table() { return dev->engine().status(mpath::status_type::table); }
  void message(std::string text) { REQUIRE(dev->engine().message(text)); }
  path_check_state state(std::string path) { return mon->check_state(path); }
  std::uint32_t interval(std::string path) {
    for (auto& p : mon->paths())
      if (p.device == path)
        return p.interval;
    return 0;
  }

  std::unique_ptr<device> dev;
  mpath::testing::sim_checker checker;
  mpath::testing::sim_prioritizer prio;
  mpath::health::vector_log_sink sink;
  std::unique_ptr<monitor> mon;
  std::unique_ptr<mpath::testing::forward_events<monitor>> fwd;
};

constexpr std::string_view one_group = "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1";
constexpr std::string_view two_groups = "0 0 2 1 round-robin 0 1 1 8:16 1 round-robin 0 1 1 8:32 1";

// =============================================================================== §8.1, §8.3

TEST_CASE("health monitor: a path that dies is failed at its next check and reinstated by itself") {
  rig r(one_group);
  r.start();
  r.until(0.999);
  CHECK(r.mon->ticks() == 0); // §8.1: the first tick comes 1000 ms after start
  CHECK(r.checker.checks("8:16") == 0);
  r.until(1);
  CHECK(r.mon->ticks() == 1);
  CHECK(r.checker.checks("8:16") == 1); // every path is checked at the first tick
  CHECK(r.checker.checks("8:32") == 1);
  CHECK(r.log().empty());
  CHECK(r.state("8:16") == path_check_state::up);

  r.until(1.5);
  r.probe("8:16", check_result::down);
  r.until(5.999);
  CHECK(r.log().empty());
  CHECK(r.info() == "2 1 0 0 1 1 E 0 2 0 8:16 A 0 8:32 A 0 ");
  r.until(6); // the next check, polling_interval after the first
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
  CHECK(r.info() == "2 1 0 0 1 1 E 0 2 0 8:16 F 1 8:32 A 0 ");
  CHECK(r.state("8:16") == path_check_state::down);

  r.until(7);
  r.probe("8:16", check_result::up);
  r.until(10.999);
  CHECK(r.log().empty());
  r.until(11); // within polling_interval + 1 s of coming back
  CHECK(r.log() == lines{"8:16: reinstated", "mp: remaining active paths: 2"});
  CHECK(r.info() == "2 1 0 0 1 1 E 0 2 0 8:16 A 1 8:32 A 0 ");
  CHECK(r.dev->take_events() == lines{"PATH_FAILED 8:16 1", "PATH_REINSTATED 8:16 2"});
}

TEST_CASE("health monitor: back-off 5, 10, 20 while a path stays up, reset by a change") {
  rig r(one_group);
  r.start();
  // checks at 1 (first), 6 (+5), 16 (+10), 36 (+20), 56 (+20, capped at max_polling_interval)
  auto checks_at = [&](double t) {
    r.until(t);
    return r.checker.checks("8:16");
  };
  CHECK(checks_at(1) == 1);
  CHECK(r.interval("8:16") == 5); // the first check is not "the same as the previous"
  CHECK(checks_at(5.5) == 1);
  CHECK(checks_at(6) == 2);
  CHECK(r.interval("8:16") == 10);
  CHECK(checks_at(15.5) == 2);
  CHECK(checks_at(16) == 3);
  CHECK(r.interval("8:16") == 20);
  CHECK(checks_at(35.5) == 3);
  CHECK(checks_at(36) == 4);
  CHECK(r.interval("8:16") == 20);
  CHECK(checks_at(56) == 5);
  // A different result resets to polling_interval: ghost is usable but not the same as up.
  r.probe("8:16", check_result::ghost);
  CHECK(checks_at(76) == 6);
  CHECK(r.interval("8:16") == 5);
  CHECK(r.state("8:16") == path_check_state::ghost);
  CHECK(r.log().empty()); // ghost is usable: nothing to do
  CHECK(checks_at(81) == 7);
  CHECK(r.interval("8:16") == 10);
}

TEST_CASE("health monitor: a failed path's interval stays at polling_interval") {
  rig r(one_group);
  r.policy("polling_interval", "2");
  r.probe("8:16", check_result::down);
  r.start();
  r.until(1);
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
  r.until(3);
  CHECK(r.checker.checks("8:16") == 2); // down again: no doubling
  CHECK(r.interval("8:16") == 2);
  CHECK(r.log().empty()); // already failed in the engine: nothing sent, nothing logged
  CHECK(r.checker.checks("8:32") == 2);
  CHECK(r.interval("8:32") == 4);
}

TEST_CASE("health monitor: an I/O error failing a path shortens its countdown") {
  rig r(one_group);
  r.start();
  r.until(16); // 8:16 checked at 1, 6, 16; next at 36
  CHECK(r.interval("8:16") == 20);
  r.until(20.5);
  r.dev->backend().set_fault("8:16", true);
  r.dev->io(2); // round-robin sends one of them to 8:16: transport error, the engine fails it
  r.dev->backend().set_fault("8:16", false);
  r.dev->run();
  CHECK(r.dev->take_events() == lines{"PATH_FAILED 8:16 1"});
  CHECK(r.log() == lines{"mp: remaining active paths: 1"}); // seen, not caused
  CHECK(r.state("8:16") == path_check_state::down);         // as multipathd's "mark as failed"
  r.until(24.5);
  CHECK(r.checker.checks("8:16") == 3);
  r.until(25); // at most polling_interval after the event, not at 36
  CHECK(r.checker.checks("8:16") == 4);
  CHECK(r.log() == lines{"8:16: reinstated", "mp: remaining active paths: 2"});
  CHECK(r.info() == "2 0 0 0 1 1 A 0 2 0 8:16 A 1 8:32 A 0 ");
}

TEST_CASE("health monitor: the checker's word wins over a message at the path's next check") {
  rig r(one_group);
  r.start();
  r.until(1);
  r.message("fail_path 8:32"); // by hand, while the checker says up
  r.dev->run();
  CHECK(r.log() == lines{"mp: remaining active paths: 1"});
  r.until(6);
  CHECK(r.log() == lines{"8:32: reinstated", "mp: remaining active paths: 2"});
  r.probe("8:16", check_result::down);
  r.until(16); // 8:16 down at its check at 16
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
  r.message("reinstate_path 8:16"); // by hand, while the checker says down
  r.dev->run();
  CHECK(r.log() == lines{"mp: remaining active paths: 2"});
  r.until(21);
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
}

TEST_CASE("health monitor: pending changes nothing and is checked again at the next tick") {
  rig r(one_group);
  r.probe("8:16", check_result::pending);
  r.start();
  r.until(1);
  CHECK(r.state("8:16") == path_check_state::pending); // nothing known yet
  r.until(3);
  CHECK(r.checker.checks("8:16") == 3); // every tick
  r.probe("8:16", check_result::up);
  r.until(4);
  CHECK(r.state("8:16") == path_check_state::up);
  CHECK(r.checker.checks("8:16") == 4);
  r.until(8);
  CHECK(r.checker.checks("8:16") == 4);
  r.probe("8:16", check_result::pending);
  r.until(9); // pending after up: state and engine unchanged
  CHECK(r.state("8:16") == path_check_state::up);
  r.until(10);
  CHECK(r.checker.checks("8:16") == 6);
  CHECK(r.log().empty());
  CHECK(r.info() == "2 1 0 0 1 1 E 0 2 0 8:16 A 0 8:32 A 0 ");
}

TEST_CASE("health monitor: shaky and timeout are unusable") {
  rig r(one_group);
  r.probe("8:16", check_result::shaky);
  r.probe("8:32", check_result::timeout);
  r.start();
  r.until(1);
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1",
                         "checker failed path 8:32 in map mp", "mp: remaining active paths: 0"});
  CHECK(r.state("8:16") == path_check_state::shaky);
  CHECK(r.state("8:32") == path_check_state::timeout);
}

TEST_CASE("health monitor: checker_timeout turns an unanswered check into timeout, its late answer ignored") {
  rig r(one_group);
  r.policy("checker_timeout", "3");
  r.checker.hold("8:16");
  r.start();
  r.until(3);
  CHECK(r.state("8:16") == path_check_state::pending);
  CHECK(r.checker.checks("8:16") == 1); // polled, not re-checked
  CHECK(r.log().empty());
  r.until(4); // 3 s after the check started
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
  CHECK(r.state("8:16") == path_check_state::timeout);
  r.checker.release("8:16", check_result::up); // late: ignored
  r.until(8);
  CHECK(r.state("8:16") == path_check_state::timeout);
  CHECK(r.info() == "2 1 0 0 1 1 E 0 2 0 8:16 F 1 8:32 A 0 ");
  r.until(9); // the next check, polling_interval later, is answered
  CHECK(r.checker.checks("8:16") == 2);
  CHECK(r.log() == lines{"8:16: reinstated", "mp: remaining active paths: 2"});
}

TEST_CASE("health monitor: an answer that comes after the tick is acted on at the next tick") {
  rig r(one_group);
  r.checker.hold("8:16");
  r.start();
  r.until(1.5);
  r.checker.release("8:16", check_result::down);
  CHECK(r.log().empty());
  r.until(2);
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
}

// =============================================================================== §8.5

/// Group 1 = 8:16 (prio 50), group 2 = 8:32 (prio 10).
struct failback_rig : rig {
  explicit failback_rig(std::string mode) : rig(two_groups) {
    prio.set_priority("8:16", 50);
    prio.set_priority("8:32", 10);
    policy("failback", mode);
  }
};

TEST_CASE("health monitor: failback manual never switches") {
  failback_rig r("manual");
  r.start();
  r.until(1);
  r.message("switch_group 2");
  r.until(30);
  CHECK(r.log().empty());
  CHECK(r.info() == "2 1 0 0 2 2 E 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
}

TEST_CASE("health monitor: failback immediate switches at the tick the best group differs") {
  failback_rig r("immediate");
  r.start();
  r.until(1);
  CHECK(r.log().empty()); // group 1 (prio 50) is the next group already
  CHECK(r.mon->group_priority(1) == 50);
  CHECK(r.mon->group_priority(2) == 10);
  r.message("switch_group 2"); // someone moved it
  r.until(1.5);
  CHECK(r.info() == "2 1 0 0 2 2 E 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
  r.until(2);
  CHECK(r.log() == lines{"mp: switch to path group #1"});
  CHECK(r.info() == "2 1 0 0 2 1 E 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");

  // The preferred path dies: group 1 has no usable path and no priority; the best is group 2.
  r.dev->io(1);
  CHECK(r.info() == "2 0 0 0 2 1 A 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
  r.probe("8:16", check_result::down);
  r.until(6);
  CHECK(r.log() ==
        lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1", "mp: switch to path group #2"});
  CHECK(r.mon->group_priority(1) == 0);
  r.probe("8:16", check_result::up);
  r.until(11);
  CHECK(r.log() == lines{"8:16: reinstated", "mp: remaining active paths: 2", "mp: switch to path group #1"});
  r.dev->complete("", 10, mpath::blk_status::ok);
}

TEST_CASE("health monitor: failback followover switches only when the returning path is alone in the best group") {
  // group 1 = 8:16, 8:48 (prio 50); group 2 = 8:32 (prio 10)
  rig r("0 0 2 1 round-robin 0 2 1 8:16 1 8:48 1 round-robin 0 1 1 8:32 1");
  r.prio.set_priority("8:16", 50);
  r.prio.set_priority("8:48", 50);
  r.prio.set_priority("8:32", 10);
  r.policy("failback", "followover");
  r.start();
  r.until(1);
  r.message("switch_group 2"); // another node failed over: followover leaves it alone
  r.until(20);
  CHECK(r.log().empty());
  CHECK(r.info() == "2 1 0 0 2 2 E 0 2 0 8:16 A 0 8:48 A 0 E 0 1 0 8:32 A 0 ");

  // 8:16 fails and comes back while 8:48 is still usable: not alone, no switch.
  r.probe("8:16", check_result::down);
  r.until(36); // 8:16 checked at 1, 6, 16, 36 (back-off)
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 2"});
  r.probe("8:16", check_result::up);
  r.until(41);
  CHECK(r.log() == lines{"8:16: reinstated", "mp: remaining active paths: 3"});
  CHECK(r.info() == "2 1 0 0 2 2 E 0 2 0 8:16 A 1 8:48 A 0 E 0 1 0 8:32 A 0 ");

  // Both fail; 8:48 comes back first, alone in group 1: switch.
  r.probe("8:16", check_result::down);
  r.probe("8:48", check_result::down);
  r.until(56);
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 2",
                         "checker failed path 8:48 in map mp", "mp: remaining active paths: 1"});
  r.probe("8:48", check_result::up);
  r.until(61);
  CHECK(r.log() == lines{"8:48: reinstated", "mp: remaining active paths: 2", "mp: switch to path group #1"});
  CHECK(r.info() == "2 1 0 0 2 1 E 0 2 0 8:16 F 2 8:48 A 1 E 0 1 0 8:32 A 0 ");
}

TEST_CASE("health monitor: failback N switches N ticks after it became wanted") {
  failback_rig r("3");
  r.start();
  r.until(1.5);
  r.message("switch_group 2");
  r.until(2); // wanted from tick 2: countdown N+1, decremented at this tick too
  CHECK(r.mon->failback_tick() == 3);
  r.until(4);
  CHECK(r.mon->failback_tick() == 1);
  CHECK(r.log().empty());
  r.until(5);
  CHECK(r.log() == lines{"mp: switch to path group #1"});
  CHECK(r.mon->failback_tick() == 0);
  CHECK(r.info() == "2 1 0 0 2 1 E 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
}

TEST_CASE("health monitor: failback N is restarted when another path comes back") {
  // group 1 = 8:16, 8:48 (prio 50); group 2 = 8:32 (prio 10)
  rig r("0 0 2 1 round-robin 0 2 1 8:16 1 8:48 1 round-robin 0 1 1 8:32 1");
  r.prio.set_priority("8:16", 50);
  r.prio.set_priority("8:48", 50);
  r.prio.set_priority("8:32", 10);
  r.policy("failback", "10");
  r.probe("8:16", check_result::down);
  r.start();
  r.until(1);
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 2"});
  r.message("switch_group 2");
  r.until(2);
  CHECK(r.mon->failback_tick() == 10); // would switch at 12
  r.probe("8:16", check_result::up);
  r.until(6); // 8:16 back: restarted
  CHECK(r.log() == lines{"8:16: reinstated", "mp: remaining active paths: 3"});
  CHECK(r.mon->failback_tick() == 10);
  r.until(15);
  CHECK(r.log().empty());
  r.until(16);
  CHECK(r.log() == lines{"mp: switch to path group #1"});
}

TEST_CASE("health monitor: failback N is cancelled when a path fails") {
  failback_rig r("5");
  r.start();
  r.until(1.5);
  r.message("switch_group 2");
  r.until(2);
  CHECK(r.mon->failback_tick() == 5);
  r.probe("8:16", check_result::down);
  r.until(6); // 8:16 fails: cancelled, and with group 1 empty no switch is wanted any more
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
  CHECK(r.mon->failback_tick() == 0);
  r.probe("8:16", check_result::up);
  r.until(11); // back: wanted again, a fresh countdown
  CHECK(r.log() == lines{"8:16: reinstated", "mp: remaining active paths: 2"});
  CHECK(r.mon->failback_tick() == 5);
  r.until(15);
  CHECK(r.log().empty());
  r.until(16);
  CHECK(r.log() == lines{"mp: switch to path group #1"});
}

TEST_CASE("health monitor: best group ties go to more usable paths, then to the lower number") {
  rig r("0 0 3 3 round-robin 0 1 1 8:16 1 round-robin 0 2 1 8:32 1 8:48 1 round-robin 0 1 1 8:64 1");
  r.policy("failback", "immediate");
  r.start();
  r.until(1);
  CHECK(r.log() == lines{"mp: switch to path group #2"}); // all prio 1: group 2 has two usable paths
  r.probe("8:48", check_result::down);
  r.until(6);
  CHECK(r.log() == lines{"checker failed path 8:48 in map mp", "mp: remaining active paths: 3",
                         "mp: switch to path group #1"}); // now a three-way tie: the lowest number
}

TEST_CASE("health monitor: group priority is the integer average of the usable paths'") {
  rig r("0 0 2 1 round-robin 0 3 1 8:16 1 8:32 1 8:48 1 round-robin 0 1 1 8:64 1");
  r.prio.set_priority("8:16", 50);
  r.prio.set_priority("8:32", 10);
  r.prio.set_priority("8:48", 10);
  r.start();
  r.until(1);
  CHECK(r.mon->group_priority(1) == 23); // 70 / 3
  CHECK(r.mon->group_priority(2) == 1);
  r.probe("8:16", check_result::down);
  r.until(6);
  CHECK(r.mon->group_priority(1) == 10);
  CHECK(r.mon->group_priority(3) == 0);
}

// =============================================================================== §8.6

TEST_CASE("health monitor: no_path_retry 12 fails queued I/O after exactly 12 x 5 + 1 ticks") {
  rig r(one_group);
  r.policy("no_path_retry", "12");
  r.start();
  CHECK(r.table() == "1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ");
  r.until(0.5);
  r.probe("8:16", check_result::down);
  r.probe("8:32", check_result::down);
  r.until(1); // every path gone at tick 1: recovery, countdown 61 including this tick
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1",
                         "checker failed path 8:32 in map mp", "mp: Entering recovery mode: max_retries=12",
                         "mp: remaining active paths: 0"});
  CHECK(r.mon->in_recovery());
  CHECK(r.mon->retry_tick() == 60);
  r.until(1.5);
  r.dev->io(3);
  CHECK(r.dev->stats().queued == 3);
  r.until(60.9);
  CHECK(r.mon->retry_tick() == 1);
  CHECK(r.dev->stats().queued == 3); // not before
  CHECK(r.dev->stats().failed == 0);
  CHECK(r.log().empty());
  r.until(61); // the 61st tick
  CHECK(r.log() == lines{"mp: Disable queueing"});
  CHECK(r.table() == "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ");
  r.until(61.2); // request mode: the held I/O is resubmitted within 100 ms and fails now
  CHECK(r.dev->stats().failed == 3);
  CHECK(r.dev->stats().queued == 0);
  CHECK(r.mon->in_recovery()); // until a path comes back

  // A path back after queueing was disabled: queueing again, recovery over.
  r.probe("8:32", check_result::up);
  r.until(66);
  CHECK(r.log() == lines{"8:32: reinstated", "mp: Recovered to normal mode", "mp: remaining active paths: 1"});
  CHECK(r.table() == "1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ");
  CHECK_FALSE(r.mon->in_recovery());
}

TEST_CASE("health monitor: no_path_retry N, a path back in recovery re-enables queueing") {
  rig r(one_group);
  r.policy("no_path_retry", "12");
  r.probe("8:16", check_result::down);
  r.probe("8:32", check_result::down);
  r.start();
  r.until(1);
  r.log();
  r.dev->io(2);
  r.probe("8:16", check_result::up);
  r.until(6);
  CHECK(r.log() == lines{"8:16: reinstated", "mp: Recovered to normal mode", "mp: remaining active paths: 1"});
  CHECK_FALSE(r.mon->in_recovery());
  CHECK(r.mon->retry_tick() == 0);
  r.dev->run();
  CHECK(r.dev->stats().queued == 0); // delivered on 8:16
  CHECK(r.dev->stats().inflight == 2);
  CHECK(r.table() == "1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ");
  r.dev->complete("", 2, mpath::blk_status::ok);
}

TEST_CASE("health monitor: losing the last path by I/O error enters recovery") {
  rig r("0 0 1 1 round-robin 0 1 1 8:16 1");
  r.policy("no_path_retry", "2");
  r.start();
  r.until(1.5);
  r.dev->backend().set_fault("8:16", true);
  r.dev->io(1);
  r.dev->run();
  r.probe("8:16", check_result::down);
  r.dev->backend().set_fault("8:16", false);
  CHECK(r.log() == lines{"mp: Entering recovery mode: max_retries=2", "mp: remaining active paths: 0"});
  CHECK(r.mon->retry_tick() == 11);
  r.until(11);
  CHECK(r.mon->retry_tick() == 1);
  CHECK(r.log().empty()); // the check at 6 found it down: failed already, nothing to do
  r.until(12);            // 2 x 5 + 1 ticks, the first at tick 2
  CHECK(r.log() == lines{"mp: Disable queueing"});
  r.until(12.2);
  CHECK(r.dev->stats().failed == 1);
}

TEST_CASE("health monitor: no_path_retry fail and queue at start and at stop") {
  SUBCASE("fail") {
    rig r("1 queue_if_no_path 0 1 1 round-robin 0 1 1 8:16 1");
    r.policy("no_path_retry", "fail");
    r.start();
    CHECK(r.table() == "0 0 1 1 round-robin 0 1 1 8:16 1 ");
    r.message("queue_if_no_path");
    r.mon->stop();
    CHECK(r.table() == "0 0 1 1 round-robin 0 1 1 8:16 1 ");
  }
  SUBCASE("queue") {
    rig r("0 0 1 1 round-robin 0 1 1 8:16 1");
    r.policy("no_path_retry", "queue");
    r.start();
    CHECK(r.table() == "1 queue_if_no_path 0 1 1 round-robin 0 1 1 8:16 1 ");
    r.mon->stop(); // queue_without_daemon no does not apply to queue
    CHECK(r.table() == "1 queue_if_no_path 0 1 1 round-robin 0 1 1 8:16 1 ");
  }
  SUBCASE("unset") {
    rig r("1 queue_if_no_path 0 1 1 round-robin 0 1 1 8:16 1");
    r.start();
    CHECK(r.table() == "1 queue_if_no_path 0 1 1 round-robin 0 1 1 8:16 1 "); // left alone
    r.mon->stop();
    CHECK(r.table() == "0 0 1 1 round-robin 0 1 1 8:16 1 ");
  }
  SUBCASE("never started") {
    rig r("1 queue_if_no_path 0 1 1 round-robin 0 1 1 8:16 1");
    r.mon->stop();
    CHECK(r.table() == "1 queue_if_no_path 0 1 1 round-robin 0 1 1 8:16 1 ");
  }
}

TEST_CASE("health monitor: settings change while it runs") {
  rig r(one_group);
  r.policy("no_path_retry", "5");
  r.probe("8:16", check_result::down);
  r.probe("8:32", check_result::down);
  r.start();
  r.until(1);
  r.log();
  CHECK(r.mon->in_recovery());
  r.policy("no_path_retry", "fail"); // at once: queueing off, recovery over
  CHECK(r.table() == "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ");
  CHECK_FALSE(r.mon->in_recovery());
  r.policy("no_path_retry", "queue");
  CHECK(r.table() == "1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ");
  std::vector<std::string> bad{"soon"};
  auto e = r.mon->set("failback", bad);
  REQUIRE_FALSE(e);
  CHECK(e.err().text == "invalid failback: soon (expected manual, immediate, followover or seconds >= 1)");
  CHECK(r.mon->settings().failback == mpath::health::failback_mode::manual);
  r.policy("polling_interval", "1");
  r.probe("8:16", check_result::up);
  r.until(6); // the countdown set with the old interval runs out first
  CHECK(r.log() == lines{"8:16: reinstated", "mp: remaining active paths: 1"});
  r.until(7);
  CHECK(r.checker.checks("8:16") == 3); // then every polling_interval = 1 s
  CHECK(r.log().empty());
}

// =============================================================================== §8.4

/// polling_interval 1, hold after more than 1 failure, forget one per 5 good checks, release
/// after 10 s.
struct marginal_rig : rig {
  marginal_rig() : rig(one_group) {
    policy("polling_interval", "1");
    policy("san_path_err_threshold", "1");
    policy("san_path_err_forget_rate", "5");
    policy("san_path_err_recovery_time", "10");
  }
  /// 8:16 flaps: down at `t`, up at `t + 1`.
  void flap(double t) {
    until(t - 0.5);
    probe("8:16", check_result::down);
    until(t + 0.5);
    probe("8:16", check_result::up);
  }
};

TEST_CASE("health monitor: a flapping path is held down after san_path_err_threshold, released after recovery_time") {
  marginal_rig r;
  r.start();
  r.flap(2);
  r.until(3);
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1", "8:16: reinstated",
                         "mp: remaining active paths: 2"}); // one failure: not more than the threshold
  r.flap(4);
  r.until(5);
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1",
                         "8:16 : hit error threshold. Delaying path reinstatement"});
  CHECK(r.state("8:16") == path_check_state::delayed);
  CHECK(r.info() == "2 1 0 0 1 1 E 0 2 0 8:16 F 2 8:32 A 0 ");
  r.until(13); // last seen unusable at 4: held until 10 s have passed since (§8.4)
  CHECK(r.log().empty());
  CHECK(r.state("8:16") == path_check_state::delayed);
  r.until(14);
  CHECK(r.log() == lines{"8:16 : reinstate the path after err recovery time", "8:16: reinstated",
                         "mp: remaining active paths: 2"});
  CHECK(r.state("8:16") == path_check_state::up);
  CHECK(r.info() == "2 1 0 0 1 1 E 0 2 0 8:16 A 2 8:32 A 0 ");
}

TEST_CASE("health monitor: a held path that goes bad again starts its recovery_time over") {
  marginal_rig r;
  r.start();
  r.flap(2);
  r.flap(4);
  r.until(5);
  r.log();
  r.flap(10); // seen down at 10 while held: nothing to fail, but the 10 s count from 10 now
  r.until(19);
  CHECK(r.log().empty());
  r.until(20);
  CHECK(r.log() == lines{"8:16 : reinstate the path after err recovery time", "8:16: reinstated",
                         "mp: remaining active paths: 2"});
}

TEST_CASE("health monitor: the only usable path is reinstated early") {
  marginal_rig r;
  r.start();
  r.flap(2);
  r.flap(4);
  r.until(5);
  r.log();
  r.until(7.5);
  r.probe("8:32", check_result::down);
  r.until(8); // 8:32 checked at 1, 2, 4, 8
  CHECK(r.log() == lines{"checker failed path 8:32 in map mp", "mp: remaining active paths: 0"});
  r.until(9); // 8:16, held, is now the only usable path
  CHECK(r.log() == lines{"8:16 : reinstating path early", "8:16: reinstated", "mp: remaining active paths: 1"});
  // Its count was reset: one more flap does not hold it (checks at 10, then 12 after doubling).
  r.until(11.5);
  r.probe("8:16", check_result::down);
  r.until(12);
  CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 0"});
  r.probe("8:16", check_result::up);
  r.until(13);
  CHECK(r.log() == lines{"8:16: reinstated", "mp: remaining active paths: 1"});
}

TEST_CASE("health monitor: good checks forget failures at san_path_err_forget_rate") {
  marginal_rig r;
  r.start();
  r.flap(2); // failure 1 at 3
  // interval 1, then 2 and 4 (max_polling_interval 4): good checks at 4, 6, 10, 14, 18, 22
  SUBCASE("four good checks forget nothing") {
    r.flap(18); // down at the check of 18: the 5th good check never came
    r.until(19);
    CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1", "8:16: reinstated",
                           "mp: remaining active paths: 2", "checker failed path 8:16 in map mp",
                           "mp: remaining active paths: 1", "8:16 : hit error threshold. Delaying path reinstatement"});
  }
  SUBCASE("the fifth good check forgets the failure") {
    r.until(18.5); // §8.4: "every forget_rate usable checks forget one failure"
    r.log();
    r.flap(22);
    r.until(23); // failure 1 again, not 2: no hold
    CHECK(r.log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1", "8:16: reinstated",
                           "mp: remaining active paths: 2"});
  }
}

TEST_CASE("health monitor: delay_watch_checks and delay_wait_checks hold a flapping path") {
  rig r(one_group);
  r.policy("polling_interval", "1");
  r.policy("delay_watch_checks", "5");
  r.policy("delay_wait_checks", "2"); // recovery_time = 2 x max_polling_interval (4) = 8
  r.start();
  for (double t : {2.0, 4.0}) {
    r.until(t - 0.5);
    r.probe("8:16", check_result::down);
    r.until(t + 0.5);
    r.probe("8:16", check_result::up);
  }
  r.until(5);
  CHECK(r.log().back() == "8:16 : hit error threshold. Delaying path reinstatement");
  r.until(11); // last seen unusable at 4, 8 s before 12
  CHECK(r.log().empty());
  r.until(12);
  CHECK(r.log().front() == "8:16 : reinstate the path after err recovery time");
}

// =============================================================================== teardown

TEST_CASE("health monitor: stop cancels the tick, events after it change nothing") {
  rig r(one_group);
  r.start();
  r.until(2);
  std::uint64_t ticks = r.mon->ticks();
  r.mon->stop();
  r.until(20);
  CHECK(r.mon->ticks() == ticks);
  r.message("fail_path 8:16");
  r.dev->run();
  CHECK(r.log().empty());
  r.mon->start(); // no restart after stop
  r.until(25);
  CHECK(r.mon->ticks() == ticks);
}

TEST_CASE("health monitor: destroying the engine while a monitor is attached aborts") {
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto d = device::create(one_group);
    mpath::testing::sim_checker checker;
    mpath::testing::sim_prioritizer prio;
    mpath::health::vector_log_sink sink;
    std::signal(SIGABRT, SIG_DFL); // not doctest's crash report: the parent checks the signal
    auto* m = new monitor((*d)->engine(), checker, prio, sink, "mp");
    (void)m;
    d->reset(); // the engine goes first: must abort
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
}

} // namespace

// ------------------------------------------------------------------------ regrouping (§8.5)

namespace {

/// The owner's half of the regroup hand-off, as health_sim_device does it after a tick.
bool owner_reloads(rig& r) {
  auto done = r.mon->reload_if_wanted(*r.dev, [&] { r.dev->executor().run(); });
  REQUIRE(done);
  r.dev->run();
  return *done;
}

} // namespace

TEST_CASE("health monitor: group_by_prio regroups by priority, and again after a priority change") {
  rig r(one_group);
  r.prio.set_priority("8:16", 50);
  r.prio.set_priority("8:32", 10);
  r.policy("polling_interval", "1");
  r.policy("path_grouping_policy", "group_by_prio");
  r.start();
  r.dev->io(2); // one in flight on each path: kept across both reloads

  // Tick 1 reads 50 and 10: two priorities, two groups. The tick only asks; the table stays.
  r.until(1);
  CHECK(r.log().empty());
  CHECK(r.mon->wanted_reload() == "0 0 2 1 round-robin 0 1 1 8:16 1 round-robin 0 1 1 8:32 1 ");
  CHECK(r.table() == "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ");

  // The owner reloads: the best group (8:16, 50) first and initial.
  CHECK(owner_reloads(r));
  CHECK(r.log() == lines{"mp: reload"});
  CHECK(r.table() == "0 0 2 1 round-robin 0 1 1 8:16 1 round-robin 0 1 1 8:32 1 ");
  // queue_io 1: the new table has not chosen a group yet (no I/O came since).
  CHECK(r.info() == "2 1 0 0 2 1 E 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0 ");
  CHECK_FALSE(r.mon->wanted_reload());
  auto paths = r.mon->paths();
  REQUIRE(paths.size() == 2);
  CHECK(paths[0].device == "8:16");
  CHECK(paths[0].group == 1);
  CHECK(paths[0].priority == 50);
  CHECK(paths[0].state == path_check_state::up);
  CHECK(paths[1].group == 2);
  CHECK(paths[1].priority == 10);
  CHECK(r.mon->group_priority(1) == 50);
  CHECK(r.mon->group_priority(2) == 10);
  CHECK(r.dev->stats().inflight == 2);

  // Nothing changes at tick 2 but 8:32's priority, read at its check there: one priority, one group.
  r.prio.set_priority("8:32", 50);
  r.until(2);
  CHECK(r.log().empty());
  CHECK(r.mon->wanted_reload() == "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ");
  CHECK(owner_reloads(r));
  CHECK(r.log() == lines{"mp: reload"});
  CHECK(r.table() == "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ");
  CHECK(r.mon->group_priority(1) == 50);

  // The grouping holds from now on: no more reloads.
  r.until(10);
  CHECK_FALSE(r.mon->wanted_reload());
  CHECK(r.log().empty());
  // The I/O of the first table completes there.
  CHECK(r.dev->complete("", 10, mpath::blk_status::ok) == 2);
  CHECK(r.dev->stats().ok == 2);
}

TEST_CASE("health monitor: setting multibus regroups at the next tick, a failed path stays failed") {
  rig r(two_groups);
  r.probe("8:32", check_result::down);
  r.policy("path_grouping_policy", "multibus");
  r.start();
  r.until(1);
  CHECK(r.log() == lines{"checker failed path 8:32 in map mp", "mp: remaining active paths: 1"});
  CHECK(r.mon->wanted_reload() == "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ");
  CHECK(owner_reloads(r));
  CHECK(r.log() == lines{"mp: reload"});
  CHECK(r.table() == "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ");
  // The new table starts with every path active; the monitor fails 8:32 again at once.
  CHECK(r.info() == "2 1 0 0 1 1 E 0 2 0 8:16 A 0 8:32 F 1 ");
  CHECK(r.state("8:32") == path_check_state::down);
  CHECK(r.dev->take_events() == lines{"PATH_FAILED 8:32 1", "PATH_FAILED 8:32 1"});

  // It comes back in the one group; nothing to regroup.
  r.probe("8:32", check_result::up);
  r.until(6);
  CHECK(r.log() == lines{"8:32: reinstated", "mp: remaining active paths: 2"});
  CHECK_FALSE(r.mon->wanted_reload());
  CHECK(r.info() == "2 1 0 0 1 1 E 0 2 0 8:16 A 0 8:32 A 1 ");
}

TEST_CASE("health monitor: only the order of the groups changed: failback switches, no reload") {
  // group 1 = 8:16 (10), group 2 = 8:32, 8:48 (50): group_by_prio's groups, in the wrong order.
  rig r("0 0 2 1 round-robin 0 1 1 8:16 1 round-robin 0 2 1 8:32 1 8:48 1");
  r.prio.set_priority("8:16", 10);
  r.prio.set_priority("8:32", 50);
  r.prio.set_priority("8:48", 50);
  r.policy("path_grouping_policy", "group_by_prio");
  r.policy("failback", "immediate");
  r.start();
  r.until(1);
  CHECK_FALSE(r.mon->wanted_reload());
  CHECK(r.log() == lines{"mp: switch to path group #2"});
  CHECK_FALSE(owner_reloads(r)); // nothing wanted: nothing done
  CHECK(r.table() == "0 0 2 2 round-robin 0 1 1 8:16 1 round-robin 0 2 1 8:32 1 8:48 1 ");
}

TEST_CASE("health monitor: a reload by someone else or a stop drops a wanted regroup") {
  rig r(two_groups);
  r.policy("path_grouping_policy", "multibus");
  r.start();
  r.until(1);
  REQUIRE(r.mon->wanted_reload());
  // The operator reloads a table of their own: the monitor follows it and asks again at the next
  // tick, from that table.
  REQUIRE(r.dev->reload("0 0 2 1 round-robin 0 1 1 8:32 1 round-robin 0 1 1 8:16 1"));
  r.mon->table_reloaded(r.dev->engine(), [&] { r.dev->executor().run(); });
  CHECK_FALSE(r.mon->wanted_reload());
  CHECK_FALSE(owner_reloads(r));
  r.until(2);
  CHECK(r.mon->wanted_reload() == "0 0 1 1 round-robin 0 2 1 8:32 1 8:16 1 ");
  r.mon->stop([&] { r.dev->executor().run(); });
  CHECK_FALSE(r.mon->wanted_reload());
  CHECK_FALSE(owner_reloads(r));
  CHECK(r.log().empty());
}
