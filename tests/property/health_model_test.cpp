// The health layer's reference model (include/mpath/testing/health_model.hpp) on its own: the
// user-pain timelines of product.md §8, step by step, with the exact log lines (§8.7) and the
// kernel model's INFO/TABLE strings after each step. No engine and no monitor are involved: this is
// the model's own evidence, as model_scenarios_test.cpp is for the kernel model.
//
// INFO of a round-robin device: `2 <queue_io> <pg_init_count> 0 <groups> <next group>`, then per
// group `<A|E|D> 0 <paths> 0` and per path `<device> <A|F> <fail count>`.

#include <mpath/health/path_checker.hpp>
#include <mpath/table.hpp>
#include <mpath/testing/health_model.hpp>

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

template <> struct doctest::StringMaker<std::vector<std::string>> {
  static doctest::String convert(const std::vector<std::string>& v) {
    std::string out = "{";
    for (const auto& s : v)
      out += (out.size() > 1 ? ", \"" : "\"") + s + "\"";
    return (out + "}").c_str();
  }
};

namespace {

namespace mt = mpath::testing;
using cr = mpath::health::check_result;
using lines = std::vector<std::string>;

mt::health_reference_model make(const std::string& params) {
  auto t = mpath::parse_table(params);
  REQUIRE(t);
  return mt::health_reference_model(mt::model_table::from(*t), "mp");
}

std::optional<std::string> set(mt::health_reference_model& m, const std::string& key, const std::string& value) {
  std::vector<std::string> v{value};
  return m.policy(key, v);
}

/// Sets every KEY VALUE pair and requires each to be accepted.
void policies(mt::health_reference_model& m, const std::vector<std::pair<std::string, std::string>>& kv) {
  for (const auto& [k, v] : kv)
    REQUIRE(set(m, k, v) == std::nullopt);
}

std::string strip(std::string s) {
  while (!s.empty() && s.back() == ' ')
    s.pop_back();
  return s;
}
std::string info(const mt::health_reference_model& m) { return strip(m.kernel().info()); }
std::string table(const mt::health_reference_model& m) { return strip(m.kernel().table_status()); }
std::string totals(const mt::health_reference_model& m) {
  auto s = m.kernel().stats();
  return "submitted=" + std::to_string(s.submitted) + " ok=" + std::to_string(s.ok) +
         " failed=" + std::to_string(s.failed) + " queued=" + std::to_string(s.queued) +
         " inflight=" + std::to_string(s.inflight);
}
mt::reference_model::message_result message(mt::health_reference_model& m, std::vector<std::string> words) {
  return m.message(words);
}

const std::string one_group = "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1";
const std::string two_groups = "0 0 2 1 round-robin 0 1 1 8:16 1 round-robin 0 1 1 8:32 1";

} // namespace

// ------------------------------------------------------------------------ §8.3: reinstate by itself

TEST_CASE("health model: a path that dies and returns is reinstated by itself") {
  auto m = make(one_group);
  CHECK(m.check_state("8:16") == "undef");
  policies(m, {{"polling_interval", "5"}});
  CHECK(m.running());

  // First tick at 1 s: every path is checked (countdown 1), both up, nothing to do.
  m.sleep(1000);
  CHECK(m.tick_count() == 1);
  CHECK(m.take_log().empty());
  CHECK(m.check_state("8:16") == "ready");
  CHECK(m.interval("8:16") == 5);
  CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 A 0 8:32 A 0");

  // 8:16 dies at 1 s; nobody notices before its next check at 6 s.
  m.probe("8:16", cr::down);
  m.sleep(4000);
  CHECK(m.take_log().empty());
  CHECK(m.countdown("8:16") == 1);
  CHECK(m.check_state("8:16") == "ready");
  CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 A 0 8:32 A 0");

  m.sleep(1000);
  CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
  CHECK(m.check_state("8:16") == "faulty");
  CHECK(m.interval("8:16") == 5);
  CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 F 1 8:32 A 0");

  // I/O goes to 8:32 only.
  m.io(2);
  CHECK(m.kernel().stats().paths[1].dispatched == 2);
  CHECK(info(m) == "2 0 0 0 1 1 A 0 2 0 8:16 F 1 8:32 A 0");

  // 8:16 returns at 6 s; its next check (11 s) reinstates it with no message from anyone.
  m.probe("8:16", cr::up);
  m.sleep(4000);
  CHECK(m.take_log().empty());
  m.sleep(1000);
  CHECK(m.take_log() == lines{"8:16: reinstated", "mp: remaining active paths: 2"});
  CHECK(m.check_state("8:16") == "ready");
  CHECK(info(m) == "2 0 0 0 1 1 A 0 2 0 8:16 A 1 8:32 A 0");
  CHECK(m.take_events() == lines{"PATH_FAILED 8:16 1", "PATH_REINSTATED 8:16 2"});

  // §8.3 back-off: the reinstating check reset the interval; then 5 -> 10 -> 20, capped at 4 x 5.
  CHECK(m.interval("8:16") == 5);
  m.sleep(5000); // check at 16 s
  CHECK(m.interval("8:16") == 10);
  m.sleep(10000); // 26 s
  CHECK(m.interval("8:16") == 20);
  m.sleep(20000); // 46 s
  CHECK(m.interval("8:16") == 20);
  CHECK(m.take_log().empty());
}

TEST_CASE("health model: a path the engine failed on an I/O error is checked within polling_interval") {
  auto m = make(one_group);
  policies(m, {{"polling_interval", "5"}});
  m.sleep(6000); // checks at 1 s and 6 s: the second doubles the interval to 10
  CHECK(m.interval("8:16") == 10);
  CHECK(m.countdown("8:16") == 10);

  // An I/O error on 8:16: the engine fails it, the health layer sees it (PATH_FAILED).
  m.fault("8:16", true);
  m.io(2);
  CHECK(m.take_log().empty()); // the event reaches the layer with the engine's deferred work
  CHECK(info(m) == "2 0 0 0 1 1 A 0 2 0 8:16 F 1 8:32 A 0");
  CHECK(totals(m) == "submitted=2 ok=0 failed=0 queued=1 inflight=1"); // requeued until the next run
  m.run();
  CHECK(m.take_log() == lines{"mp: remaining active paths: 1"});
  CHECK(m.check_state("8:16") == "faulty");
  CHECK(m.countdown("8:16") == 5); // "at most polling_interval": checked at 11 s, not 16 s

  // The checker still says up: the path comes back at its next check.
  m.sleep(4000);
  CHECK(m.take_log().empty());
  m.sleep(1000);
  CHECK(m.take_log() == lines{"8:16: reinstated", "mp: remaining active paths: 2"});
  CHECK(info(m) == "2 0 0 0 1 1 A 0 2 0 8:16 A 1 8:32 A 0");
}

TEST_CASE("health model: the checker's word wins over a hand message at the next check") {
  auto m = make(one_group);
  policies(m, {{"polling_interval", "2"}});
  m.sleep(1000);
  // A hand fail_path of a path the checker finds up: seen, then undone at its next check (3 s).
  CHECK(message(m, {"fail_path", "8:32"}).code == 0);
  m.run(); // its event is delivered
  CHECK(m.take_log() == lines{"mp: remaining active paths: 1"});
  CHECK(m.countdown("8:32") == 2);
  m.sleep(2000);
  CHECK(m.take_log() == lines{"8:32: reinstated", "mp: remaining active paths: 2"});
  // A hand reinstate of a path the checker finds down: seen, then failed again at its next check.
  // 8:16 was checked at 1 s and 3 s (up, unchanged, active: interval 4), so next at 7 s.
  m.probe("8:16", cr::down);
  m.sleep(2000); // 5 s
  CHECK(m.take_log().empty());
  m.sleep(2000); // 7 s
  CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
  CHECK(message(m, {"reinstate_path", "8:16"}).code == 0);
  m.run();
  CHECK(m.take_log() == lines{"mp: remaining active paths: 2"});
  CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 A 1 8:32 A 1");
  CHECK(m.check_state("8:16") == "faulty");
  m.sleep(2000); // 9 s: the failed path's interval was reset to 2
  CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
  CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 F 2 8:32 A 1");
}

TEST_CASE("health model: a message refused while suspended is not logged and acts at the next check") {
  auto m = make(one_group);
  policies(m, {{"polling_interval", "2"}});
  m.sleep(1000);
  m.suspend(false);
  m.probe("8:16", cr::down);
  m.sleep(2000); // 3 s: fail_path refused with EBUSY
  CHECK(m.take_log().empty());
  CHECK(m.check_state("8:16") == "faulty");
  CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 A 0 8:32 A 0");
  m.resume();
  CHECK(m.take_log().empty());
  m.sleep(2000); // 5 s: the next check acts
  CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
  CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 F 1 8:32 A 0");
}

TEST_CASE("health model: pending changes nothing and is checked again at the next tick") {
  auto m = make(one_group);
  policies(m, {{"polling_interval", "5"}});
  m.sleep(1000);
  m.probe("8:16", cr::pending);
  m.sleep(5000); // check at 6 s: pending
  CHECK(m.check_state("8:16") == "i/o pending");
  CHECK(m.countdown("8:16") == 1);
  CHECK(m.interval("8:16") == 5);
  m.sleep(3000); // pending at 7, 8 and 9 s
  CHECK(m.take_log().empty());
  CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 A 0 8:32 A 0");
  m.probe("8:16", cr::down);
  m.sleep(1000); // 10 s: checked again at once
  CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
  m.probe("8:16", cr::pending);
  m.sleep(5000);
  CHECK(m.check_state("8:16") == "i/o pending");
  CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 F 1 8:32 A 0");
  CHECK(m.take_log().empty());
}

TEST_CASE("health model: ghost is usable and timeout and shaky are not") {
  auto m = make("0 0 1 1 round-robin 0 3 1 a 1 b 1 c 1");
  m.probe("a", cr::ghost);
  m.probe("b", cr::timeout);
  m.probe("c", cr::shaky);
  policies(m, {{"polling_interval", "5"}});
  m.sleep(1000);
  CHECK(m.take_log() == lines{"checker failed path b in map mp", "mp: remaining active paths: 2",
                              "checker failed path c in map mp", "mp: remaining active paths: 1"});
  CHECK(m.check_state("a") == "ghost");
  CHECK(m.check_state("b") == "i/o timeout");
  CHECK(m.check_state("c") == "shaky");
  CHECK(info(m) == "2 1 0 0 1 1 E 0 3 0 a A 0 b F 1 c F 1");
  // A ghost answer that stays ghost on an active path backs off like up.
  m.sleep(5000);
  CHECK(m.interval("a") == 10);
}

// ------------------------------------------------------------------------ §8.5 failback

namespace {

/// Group 1 (8:16, prio 50) fails at 2 s and comes back at 3 s; group 2 (8:32, prio 10) carries the
/// I/O in between. Returns the model after the tick at 3 s, with the log of each tick.
struct group_timeline {
  mt::health_reference_model m = make(two_groups);
  lines log_at_2, log_at_3;
  std::string info_at_2;

  explicit group_timeline(const std::string& failback) {
    m.prio("8:16", 50);
    m.prio("8:32", 10);
    policies(m, {{"polling_interval", "1"}, {"max_polling_interval", "1"}, {"failback", failback}});
    m.io(1);
    m.complete("", 1, mpath::blk_status::ok);
    m.sleep(1000);
    CHECK(m.take_log().empty());
    CHECK(info(m) == "2 0 0 0 2 1 A 0 1 0 8:16 A 0 E 0 1 0 8:32 A 0");
    CHECK(m.best_group() == 1);
    m.probe("8:16", cr::down);
    m.sleep(1000);
    log_at_2 = m.take_log();
    info_at_2 = info(m);
    CHECK(m.best_group() == 2);
    m.io(1); // the engine moves to group 2 by itself when it still used group 1
    m.complete("", 1, mpath::blk_status::ok);
    CHECK(m.used_group() == 2);
    m.probe("8:16", cr::up);
    m.sleep(1000);
    log_at_3 = m.take_log();
    CHECK(m.best_group() == 1);
  }
};

const lines failed_at_2{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"};
const lines back_at_3{"8:16: reinstated", "mp: remaining active paths: 2"};

} // namespace

TEST_CASE("health model: a whole group fails and comes back with failback manual") {
  group_timeline t("manual");
  CHECK(t.log_at_2 == failed_at_2);
  CHECK(t.info_at_2 == "2 0 0 0 2 1 A 0 1 0 8:16 F 1 E 0 1 0 8:32 A 0");
  CHECK(t.log_at_3 == back_at_3);
  CHECK(info(t.m) == "2 0 0 0 2 2 E 0 1 0 8:16 A 1 A 0 1 0 8:32 A 0");
  t.m.sleep(60000);
  CHECK(t.m.take_log().empty()); // manual never switches
  CHECK(t.m.used_group() == 2);
}

TEST_CASE("health model: a whole group fails and comes back with failback immediate") {
  group_timeline t("immediate");
  // At 2 s the engine still shows group 1 as active: the best group (2) differs, so switch.
  CHECK(t.log_at_2 ==
        lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1", "mp: switch to path group #2"});
  CHECK(t.info_at_2 == "2 0 0 0 2 2 E 0 1 0 8:16 F 1 E 0 1 0 8:32 A 0");
  CHECK(t.log_at_3 == lines{"8:16: reinstated", "mp: remaining active paths: 2", "mp: switch to path group #1"});
  CHECK(info(t.m) == "2 0 0 0 2 1 E 0 1 0 8:16 A 1 E 0 1 0 8:32 A 0");
  t.m.io(1);
  CHECK(info(t.m) == "2 0 0 0 2 1 A 0 1 0 8:16 A 1 E 0 1 0 8:32 A 0");
  t.m.sleep(10000);
  CHECK(t.m.take_log().empty());
}

TEST_CASE("health model: a whole group fails and comes back with failback followover") {
  group_timeline t("followover");
  CHECK(t.log_at_2 == failed_at_2); // no path came back: no switch
  CHECK(t.log_at_3 == lines{"8:16: reinstated", "mp: remaining active paths: 2", "mp: switch to path group #1"});
  CHECK(info(t.m) == "2 0 0 0 2 1 E 0 1 0 8:16 A 1 E 0 1 0 8:32 A 0");
}

TEST_CASE("health model: a whole group fails and comes back with failback 3") {
  group_timeline t("3");
  // At 2 s the switch became wanted (group 1 still shown active): countdown 4, 3 after this tick.
  CHECK(t.log_at_2 == failed_at_2);
  CHECK(t.info_at_2 == "2 0 0 0 2 1 A 0 1 0 8:16 F 1 E 0 1 0 8:32 A 0");
  // At 3 s 8:16 came back: the countdown restarts (4, then 3 after this tick).
  CHECK(t.log_at_3 == back_at_3);
  CHECK(t.m.failback_ticks_left() == 3);
  t.m.sleep(2000); // 5 s
  CHECK(t.m.take_log().empty());
  CHECK(t.m.failback_ticks_left() == 1);
  CHECK(info(t.m) == "2 0 0 0 2 2 E 0 1 0 8:16 A 1 A 0 1 0 8:32 A 0");
  t.m.sleep(1000); // 6 s = 3 s after the path came back
  CHECK(t.m.take_log() == lines{"mp: switch to path group #1"});
  CHECK(t.m.failback_ticks_left() == std::nullopt);
  CHECK(info(t.m) == "2 0 0 0 2 1 E 0 1 0 8:16 A 1 E 0 1 0 8:32 A 0");
}

TEST_CASE("health model: a path failure cancels a failback countdown") {
  // Group 1 = 8:16 (prio 50), group 2 = 8:32 and 8:48 (prio 10).
  auto m = make("0 0 2 1 round-robin 0 1 1 8:16 1 round-robin 0 2 1 8:32 1 8:48 1");
  m.prio("8:16", 50);
  m.prio("8:32", 10);
  m.prio("8:48", 10);
  m.probe("8:16", cr::down);
  policies(m, {{"polling_interval", "1"}, {"max_polling_interval", "1"}, {"failback", "3"}});
  m.sleep(1000);
  CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 2"});
  // INFO's next group was still 1: a switch to 2 became wanted, countdown 4 -> 3.
  CHECK(m.failback_ticks_left() == 3);
  m.io(1); // the engine moves to group 2 by itself
  CHECK(m.used_group() == 2);
  m.sleep(1000);
  CHECK(m.failback_ticks_left() == 2); // nothing wanted any more; the countdown runs out harmlessly
  m.probe("8:16", cr::up);
  m.sleep(1000); // 3 s: 8:16 back, switch wanted: countdown 4 -> 3
  CHECK(m.take_log() == lines{"8:16: reinstated", "mp: remaining active paths: 3"});
  CHECK(m.failback_ticks_left() == 3);
  m.probe("8:48", cr::down);
  m.sleep(1000); // 4 s: 8:48 fails: the countdown is cancelled
  CHECK(m.take_log() == lines{"checker failed path 8:48 in map mp", "mp: remaining active paths: 2"});
  CHECK(m.failback_ticks_left() == std::nullopt);
  m.sleep(5000); // still wanted, but nothing came back: no switch
  CHECK(m.take_log().empty());
  CHECK(m.used_group() == 2);
  m.probe("8:48", cr::up);
  m.sleep(1000); // 10 s: 8:48 back: the countdown starts again, switch at 13 s
  CHECK(m.take_log() == lines{"8:48: reinstated", "mp: remaining active paths: 3"});
  m.sleep(2000);
  CHECK(m.take_log().empty());
  m.sleep(1000);
  CHECK(m.take_log() == lines{"mp: switch to path group #1"});
}

TEST_CASE("health model: followover does not undo a switch when the best group kept a usable path") {
  // Group 1 = 8:16 and 8:48, group 2 = 8:32; equal priorities: group 1 is best (more paths).
  auto m = make("0 0 2 1 round-robin 0 2 1 8:16 1 8:48 1 round-robin 0 1 1 8:32 1");
  policies(m, {{"polling_interval", "1"}, {"max_polling_interval", "1"}, {"failback", "followover"}});
  m.sleep(1000);
  CHECK(message(m, {"switch_group", "2"}).code == 0); // another node failed over by hand
  m.io(1);
  CHECK(m.used_group() == 2);
  m.probe("8:16", cr::down);
  m.sleep(1000);
  m.probe("8:16", cr::up);
  m.sleep(1000);
  // 8:16 came back but 8:48 stayed usable: it is not the only usable path of group 1.
  CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 2", "8:16: reinstated",
                              "mp: remaining active paths: 3"});
  CHECK(m.used_group() == 2);
  // Both paths of group 1 go; the first to come back is its only usable path: switch.
  m.probe("8:16", cr::down);
  m.probe("8:48", cr::down);
  m.sleep(1000);
  m.probe("8:48", cr::up);
  m.sleep(1000);
  CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 2",
                              "checker failed path 8:48 in map mp", "mp: remaining active paths: 1", "8:48: reinstated",
                              "mp: remaining active paths: 2", "mp: switch to path group #1"});
}

TEST_CASE("health model: group priority is the integer average of the usable paths") {
  auto m = make("0 0 2 1 round-robin 0 3 1 a 1 b 1 c 1 round-robin 0 1 1 d 1");
  m.prio("a", 10);
  m.prio("b", 5);
  m.prio("c", 100);
  m.prio("d", 7);
  m.probe("c", cr::down);
  policies(m, {{"polling_interval", "5"}});
  // Nothing checked yet: no path is known usable, so no group has a priority.
  CHECK_FALSE(m.group_priority(1).has_value());
  m.sleep(1000);
  CHECK(m.group_priority(1) == 7); // (10 + 5) / 2, c is not usable
  CHECK(m.group_priority(2) == 7);
  CHECK(m.best_group() == 1); // tie: more usable paths
  m.probe("a", cr::down);
  m.probe("b", cr::down);
  m.sleep(5000);
  CHECK(m.group_priority(1) == std::nullopt);
  CHECK(m.best_group() == 2);
  m.probe("d", cr::down);
  m.sleep(5000); // d backed off to 10 at 6 s: not checked before 16 s
  CHECK(m.best_group() == 2);
  m.sleep(5000);
  CHECK(m.best_group() == std::nullopt);
}

// ------------------------------------------------------------------------ §8.6 no_path_retry

TEST_CASE("health model: no_path_retry 12 with polling_interval 5 queues for 60 s and fails at 61 s") {
  auto m = make(one_group);
  CHECK(table(m) == "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
  policies(m, {{"no_path_retry", "12"}, {"polling_interval", "5"}});
  // N turns queueing on when the layer starts.
  CHECK(table(m) == "1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
  m.probe("8:16", cr::down);
  m.probe("8:32", cr::down);

  // 1 s: both fail; no usable path left: recovery with 12 x 5 + 1 ticks, this tick included.
  m.sleep(1000);
  CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1",
                              "checker failed path 8:32 in map mp", "mp: Entering recovery mode: max_retries=12",
                              "mp: remaining active paths: 0"});
  CHECK(m.in_recovery());
  CHECK(m.recovery_ticks_left() == 60);
  m.io(2);
  CHECK(totals(m) == "submitted=2 ok=0 failed=0 queued=2 inflight=0");
  CHECK(info(m) == "2 0 0 0 1 1 E 0 2 0 8:16 F 1 8:32 F 1");

  // 60 s: still queued.
  m.sleep(59000);
  CHECK(m.take_log().empty());
  CHECK(m.recovery_ticks_left() == 1);
  CHECK(totals(m) == "submitted=2 ok=0 failed=0 queued=2 inflight=0");
  CHECK(table(m) == "1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");

  // 61 s: queueing disabled, the queued I/O fails.
  m.sleep(1000);
  CHECK(m.take_log() == lines{"mp: Disable queueing"});
  CHECK(totals(m) == "submitted=2 ok=0 failed=2 queued=0 inflight=0");
  CHECK(table(m) == "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
  CHECK(m.in_recovery());
  CHECK(m.recovery_ticks_left() == 0);

  // A path comes back (checked at 66 s): queueing again, recovery over.
  m.probe("8:32", cr::up);
  m.sleep(5000);
  CHECK(m.take_log() == lines{"8:32: reinstated", "mp: Recovered to normal mode", "mp: remaining active paths: 1"});
  CHECK(!m.in_recovery());
  CHECK(table(m) == "1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
  m.io(1);
  CHECK(totals(m) == "submitted=3 ok=0 failed=2 queued=0 inflight=1");
}

TEST_CASE("health model: a path back during the no_path_retry countdown ends recovery") {
  auto m = make(one_group);
  policies(m, {{"polling_interval", "1"}, {"max_polling_interval", "1"}, {"no_path_retry", "2"}});
  m.probe("8:16", cr::down);
  m.probe("8:32", cr::down);
  m.sleep(1000);
  CHECK(m.recovery_ticks_left() == 2); // 2 x 1 + 1, minus this tick
  m.io(1);
  m.take_log();
  m.probe("8:16", cr::up);
  m.sleep(1000);
  CHECK(m.take_log() == lines{"8:16: reinstated", "mp: Recovered to normal mode", "mp: remaining active paths: 1"});
  CHECK(!m.in_recovery());
  CHECK(totals(m) == "submitted=1 ok=0 failed=0 queued=0 inflight=1");
  m.sleep(10000);
  CHECK(m.take_log().empty());
}

TEST_CASE("health model: an I/O error on the last path enters recovery at once") {
  auto m = make(one_group);
  policies(m, {{"polling_interval", "5"}, {"no_path_retry", "1"}});
  m.sleep(1000);
  m.fault("8:16", true);
  m.fault("8:32", true);
  m.io(1); // errs on 8:16: the engine fails it; the I/O waits in DM core's requeue list
  CHECK(m.take_log().empty());
  m.run(); // resubmitted: errs on 8:32 too; both events delivered: recovery (1 x 5 + 1) starts now
  CHECK(m.take_log() == lines{"mp: remaining active paths: 1", "mp: Entering recovery mode: max_retries=1",
                              "mp: remaining active paths: 0"});
  CHECK(m.in_recovery());
  CHECK(m.recovery_ticks_left() == 6);
  CHECK(totals(m) == "submitted=1 ok=0 failed=0 queued=1 inflight=0");
  CHECK(info(m) == "2 0 0 0 1 1 A 0 2 0 8:16 F 1 8:32 F 1");
  m.sleep(4000); // ticks at 2..5 s: the first decrement is at 2 s
  CHECK(m.take_log().empty());
  CHECK(m.recovery_ticks_left() == 2);
  CHECK(m.countdown("8:16") == 1); // at most polling_interval after the failure: checked at 6 s
  // The faults go; the checker (which never saw them) says up at 6 s.
  m.fault("8:16", false);
  m.fault("8:32", false);
  m.sleep(1000);
  CHECK(m.take_log() == lines{"8:16: reinstated", "mp: Recovered to normal mode", "mp: remaining active paths: 1",
                              "8:32: reinstated", "mp: remaining active paths: 2"});
  CHECK(!m.in_recovery());
  CHECK(totals(m) == "submitted=1 ok=0 failed=0 queued=0 inflight=1");
}

TEST_CASE("health model: no_path_retry fail and queue at start and when stopped") {
  SUBCASE("fail") {
    auto m = make("1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
    policies(m, {{"no_path_retry", "fail"}});
    CHECK(table(m) == "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
    m.probe("8:16", cr::down);
    m.probe("8:32", cr::down);
    m.sleep(1000);
    m.io(1);
    CHECK(totals(m) == "submitted=1 ok=0 failed=1 queued=0 inflight=0");
    CHECK(!m.in_recovery());
  }
  SUBCASE("queue") {
    auto m = make(one_group);
    policies(m, {{"no_path_retry", "queue"}});
    CHECK(table(m) == "1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
    m.probe("8:16", cr::down);
    m.probe("8:32", cr::down);
    m.sleep(1000);
    m.io(1);
    m.sleep(600000);
    CHECK(totals(m) == "submitted=1 ok=0 failed=0 queued=1 inflight=0");
    CHECK(!m.in_recovery());
    m.take_log();
    m.stop(); // queue: queueing stays on
    CHECK(table(m) == "1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
    CHECK(totals(m) == "submitted=1 ok=0 failed=0 queued=1 inflight=0");
    CHECK(m.take_log().empty());
  }
  SUBCASE("N then stopped") {
    auto m = make(one_group);
    policies(m, {{"no_path_retry", "30"}});
    m.probe("8:16", cr::down);
    m.probe("8:32", cr::down);
    m.sleep(1000);
    m.io(1);
    m.stop(); // queue_without_daemon no
    CHECK(table(m) == "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
    CHECK(totals(m) == "submitted=1 ok=0 failed=1 queued=0 inflight=0");
    std::uint64_t ticks = m.tick_count();
    m.sleep(10000);
    CHECK(m.tick_count() == ticks);
    CHECK(m.check_state("8:16") == "undef");
  }
  SUBCASE("unset leaves the table alone") {
    auto m = make("1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
    policies(m, {{"polling_interval", "5"}});
    CHECK(table(m) == "1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
    m.probe("8:16", cr::down);
    m.probe("8:32", cr::down);
    m.sleep(1000);
    CHECK(!m.in_recovery());
    CHECK(table(m) == "1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
  }
}

// ------------------------------------------------------------------------ §8.4 marginal paths

TEST_CASE("health model: a flapping path is held down and released after recovery_time") {
  auto m = make(one_group);
  policies(m, {{"polling_interval", "1"},
               {"max_polling_interval", "1"},
               {"san_path_err_threshold", "2"},
               {"san_path_err_forget_rate", "10"},
               {"san_path_err_recovery_time", "5"}});
  m.sleep(1000);
  CHECK(m.take_log().empty());
  const lines fail{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"};
  const lines back{"8:16: reinstated", "mp: remaining active paths: 2"};
  // Two flaps (2 s down, 3 s up, 4 s down, 5 s up): counted, not above the threshold.
  for (std::uint32_t n = 1; n <= 2; ++n) {
    m.probe("8:16", cr::down);
    m.sleep(1000);
    CHECK(m.take_log() == fail);
    m.probe("8:16", cr::up);
    m.sleep(1000);
    CHECK(m.take_log() == back);
    CHECK(m.failures("8:16") == n);
  }
  // Third flap: down at 6 s, up at 7 s: 3 > 2, held out.
  m.probe("8:16", cr::down);
  m.sleep(1000);
  CHECK(m.take_log() == fail);
  m.probe("8:16", cr::up);
  m.sleep(1000);
  CHECK(m.take_log() == lines{"8:16 : hit error threshold. Delaying path reinstatement"});
  CHECK(m.check_state("8:16") == "delayed");
  CHECK(m.held("8:16"));
  CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 F 3 8:32 A 0");
  // 8, 9, 10 s: still held (last seen unusable at 6 s).
  m.sleep(3000);
  CHECK(m.take_log().empty());
  CHECK(m.check_state("8:16") == "delayed");
  CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 F 3 8:32 A 0");
  // 11 s = 6 s + recovery_time: released, count reset.
  m.sleep(1000);
  CHECK(m.take_log() == lines{"8:16 : reinstate the path after err recovery time", "8:16: reinstated",
                              "mp: remaining active paths: 2"});
  CHECK(m.check_state("8:16") == "ready");
  CHECK(m.failures("8:16") == 0);
  CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 A 3 8:32 A 0");
}

TEST_CASE("health model: an unusable answer during the hold restarts the recovery time") {
  auto m = make(one_group);
  policies(m, {{"polling_interval", "1"},
               {"max_polling_interval", "1"},
               {"san_path_err_threshold", "1"},
               {"san_path_err_forget_rate", "10"},
               {"san_path_err_recovery_time", "5"}});
  m.sleep(1000);
  for (int flap = 0; flap < 2; ++flap) { // down 2 s, up 3 s, down 4 s, up 5 s: held at 5 s
    m.probe("8:16", cr::down);
    m.sleep(1000);
    m.probe("8:16", cr::up);
    m.sleep(1000);
  }
  CHECK(m.held("8:16"));
  m.take_log();
  m.probe("8:16", cr::down);
  m.sleep(1000); // 6 s: down while held (already failed: nothing to send)
  CHECK(m.take_log().empty());
  CHECK(m.check_state("8:16") == "faulty");
  CHECK(m.held("8:16"));
  m.probe("8:16", cr::up);
  m.sleep(4000); // 7..10 s: held, 6 s + 5 s not reached
  CHECK(m.take_log().empty());
  CHECK(m.check_state("8:16") == "delayed");
  m.sleep(1000); // 11 s
  CHECK(m.take_log() == lines{"8:16 : reinstate the path after err recovery time", "8:16: reinstated",
                              "mp: remaining active paths: 2"});
}

TEST_CASE("health model: usable checks forget failures at forget_rate") {
  auto flap = [](mt::health_reference_model& m) {
    m.probe("8:16", cr::down);
    m.sleep(1000);
    m.probe("8:16", cr::up);
    m.sleep(1000);
  };
  SUBCASE("two usable checks forget the first failure") {
    auto m = make(one_group);
    policies(m, {{"polling_interval", "1"},
                 {"max_polling_interval", "1"},
                 {"san_path_err_threshold", "1"},
                 {"san_path_err_forget_rate", "2"},
                 {"san_path_err_recovery_time", "30"}});
    m.sleep(1000);
    flap(m);
    CHECK(m.failures("8:16") == 1);
    m.sleep(1000);
    CHECK(m.failures("8:16") == 1);
    m.sleep(1000);
    CHECK(m.failures("8:16") == 0);
    flap(m);
    CHECK(m.failures("8:16") == 1);
    CHECK(!m.held("8:16"));
    CHECK(m.check_state("8:16") == "ready");
  }
  SUBCASE("one usable check too few") {
    auto m = make(one_group);
    policies(m, {{"polling_interval", "1"},
                 {"max_polling_interval", "1"},
                 {"san_path_err_threshold", "1"},
                 {"san_path_err_forget_rate", "3"},
                 {"san_path_err_recovery_time", "30"}});
    m.sleep(1000);
    flap(m);
    m.sleep(2000);
    CHECK(m.failures("8:16") == 1);
    flap(m);
    CHECK(m.failures("8:16") == 2);
    CHECK(m.held("8:16"));
    CHECK(m.check_state("8:16") == "delayed");
  }
}

TEST_CASE("health model: delay_watch_checks and delay_wait_checks map to san_path_err") {
  auto m = make(one_group);
  // watch 2 -> forget_rate 2, wait 3 -> recovery_time 3 x max_polling_interval (1) = 3 s,
  // threshold 1.
  policies(m, {{"polling_interval", "1"},
               {"max_polling_interval", "1"},
               {"delay_watch_checks", "2"},
               {"delay_wait_checks", "3"}});
  m.sleep(1000);
  for (int flap = 0; flap < 2; ++flap) { // down 2 s, up 3 s, down 4 s, up 5 s
    m.probe("8:16", cr::down);
    m.sleep(1000);
    m.probe("8:16", cr::up);
    m.sleep(1000);
  }
  CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1", "8:16: reinstated",
                              "mp: remaining active paths: 2", "checker failed path 8:16 in map mp",
                              "mp: remaining active paths: 1",
                              "8:16 : hit error threshold. Delaying path reinstatement"});
  m.sleep(1000); // 6 s: 2 s since 4 s
  CHECK(m.take_log().empty());
  m.sleep(1000); // 7 s = 4 s + 3 s
  CHECK(m.take_log() == lines{"8:16 : reinstate the path after err recovery time", "8:16: reinstated",
                              "mp: remaining active paths: 2"});
}

TEST_CASE("health model: the only usable path is reinstated early") {
  const std::vector<std::pair<std::string, std::string>> marginal{{"polling_interval", "1"},
                                                                  {"max_polling_interval", "1"},
                                                                  {"san_path_err_threshold", "1"},
                                                                  {"san_path_err_forget_rate", "10"},
                                                                  {"san_path_err_recovery_time", "60"}};
  SUBCASE("held while it is the only usable path") {
    auto m = make("1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
    m.probe("8:32", cr::down);
    policies(m, marginal);
    m.sleep(1000);
    CHECK(m.take_log() == lines{"checker failed path 8:32 in map mp", "mp: remaining active paths: 1"});
    m.probe("8:16", cr::down);
    m.sleep(1000);
    CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 0"});
    m.probe("8:16", cr::up);
    m.sleep(1000);
    CHECK(m.take_log() == lines{"8:16: reinstated", "mp: remaining active paths: 1"});
    m.probe("8:16", cr::down);
    m.sleep(1000);
    CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 0"});
    m.io(1);
    CHECK(totals(m) == "submitted=1 ok=0 failed=0 queued=1 inflight=0");
    m.probe("8:16", cr::up);
    m.sleep(1000); // 5 s: second failure, 2 > 1: held, though no other path is usable...
    CHECK(m.take_log() == lines{"8:16 : hit error threshold. Delaying path reinstatement"});
    CHECK(m.held("8:16"));
    CHECK(totals(m) == "submitted=1 ok=0 failed=0 queued=1 inflight=0");
    m.sleep(1000); // ...and released early at its next check, as multipathd
    CHECK(m.take_log() == lines{"8:16 : reinstating path early", "8:16: reinstated", "mp: remaining active paths: 1"});
    CHECK(!m.held("8:16"));
    CHECK(m.failures("8:16") == 0);
    CHECK(info(m) == "2 0 0 0 1 1 A 0 2 0 8:16 A 2 8:32 F 1");
    CHECK(totals(m) == "submitted=1 ok=0 failed=0 queued=0 inflight=1");
  }
  SUBCASE("the other path goes during the hold") {
    auto m = make(one_group);
    policies(m, marginal);
    m.sleep(1000);
    for (int flap = 0; flap < 2; ++flap) { // held at 5 s, 8:32 usable
      m.probe("8:16", cr::down);
      m.sleep(1000);
      m.probe("8:16", cr::up);
      m.sleep(1000);
    }
    CHECK(m.held("8:16"));
    m.take_log();
    // 6 s: 8:16 is checked first (8:32 still usable), then 8:32 fails.
    m.probe("8:32", cr::down);
    m.sleep(1000);
    CHECK(m.take_log() == lines{"checker failed path 8:32 in map mp", "mp: remaining active paths: 0"});
    CHECK(m.check_state("8:16") == "delayed");
    // 7 s: no other usable path: 8:16 early.
    m.sleep(1000);
    CHECK(m.take_log() == lines{"8:16 : reinstating path early", "8:16: reinstated", "mp: remaining active paths: 1"});
    CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 A 2 8:32 F 1");
  }
}

// ------------------------------------------------------------------------ §8.2 settings, §8.1 time

TEST_CASE("health model: policy errors carry the settings parser's text and do not start the layer") {
  auto m = make(one_group);
  CHECK(set(m, "frobnicate", "1") == "unknown policy setting: frobnicate");
  CHECK(set(m, "polling_interval", "0") == "invalid polling_interval: 0 (expected seconds >= 1)");
  CHECK(set(m, "failback", "sometimes") ==
        "invalid failback: sometimes (expected manual, immediate, followover or seconds >= 1)");
  m.probe("8:16", cr::down);
  m.sleep(5000);
  CHECK(!m.running());
  CHECK(m.tick_count() == 0);
  CHECK(m.check_state("8:16") == "undef");
  CHECK(m.take_log().empty());
  CHECK(info(m) == "2 1 0 0 1 1 E 0 2 0 8:16 A 0 8:32 A 0");
  // The first good one starts it at 5 s: first tick at 6 s.
  CHECK(set(m, "checker_timeout", "10") == std::nullopt);
  m.sleep(999);
  CHECK(m.tick_count() == 0);
  m.sleep(1);
  CHECK(m.tick_count() == 1);
  CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
  // path_grouping_policy and marginal_pathgroups are parsed, and change nothing here.
  CHECK(set(m, "path_grouping_policy", "multibus") == std::nullopt);
  CHECK(set(m, "marginal_pathgroups", "on") == std::nullopt);
  CHECK(set(m, "path_grouping_policy", "bogus") ==
        "invalid path_grouping_policy: bogus (expected failover, multibus or group_by_prio)");
  m.sleep(10000);
  CHECK(table(m) == "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
}

TEST_CASE("health model: a device without a policy command has no health layer") {
  auto m = make(one_group);
  m.probe("8:16", cr::down);
  m.fault("8:32", true);
  m.io(2);
  m.sleep(30000);
  CHECK(m.tick_count() == 0);
  CHECK(m.take_log().empty());
  CHECK(info(m) == "2 0 0 0 1 1 A 0 2 0 8:16 A 0 8:32 F 1");
  CHECK(m.topology() == lines{"mp", "features='0' hwhandler='0' wp=rw",
                              "`-+- policy='round-robin 0' prio=0 status=active", "  |- 8:16 active undef",
                              "  `- 8:32 failed undef"});
}

TEST_CASE("health model: every tick inside a sleep fires in order and one at its very end too") {
  auto m = make(one_group);
  policies(m, {{"polling_interval", "1"}, {"max_polling_interval", "1"}});
  m.sleep(999);
  CHECK(m.tick_count() == 0);
  m.sleep(1);
  CHECK(m.tick_count() == 1);
  m.sleep(2500);
  CHECK(m.tick_count() == 3);
  m.sleep(500);
  CHECK(m.tick_count() == 4);
  CHECK(m.now_ms() == 4000);
  // One sleep over several state changes: each tick acts on what the checker says then.
  m.probe("8:16", cr::down);
  m.sleep(3000);
  CHECK(m.take_log() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
}

// ------------------------------------------------------------------------ §8.7 topology

TEST_CASE("health model: topology shows the example of product.md 8.7") {
  auto m = make("1 queue_if_no_path 0 2 1 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 1 1 8:48 1");
  CHECK(m.topology() == lines{"mp", "features='1 queue_if_no_path' hwhandler='0' wp=rw",
                              "|-+- policy='round-robin 0' prio=0 status=enabled", "| |- 8:16 active undef",
                              "| `- 8:32 active undef", "`-+- policy='round-robin 0' prio=0 status=enabled",
                              "  `- 8:48 active undef"});
  m.probe("8:32", cr::down);
  policies(m, {{"polling_interval", "5"}});
  m.sleep(1000);
  m.io(1);
  CHECK(m.topology() == lines{"mp", "features='1 queue_if_no_path' hwhandler='0' wp=rw",
                              "|-+- policy='round-robin 0' prio=1 status=active", "| |- 8:16 active ready",
                              "| `- 8:32 failed faulty", "`-+- policy='round-robin 0' prio=1 status=enabled",
                              "  `- 8:48 active ready"});
}

TEST_CASE("health model: topology pads the path and state columns") {
  auto m = make("0 1 alua 1 1 round-robin 0 2 1 /dev/sdb 1 8:32 1");
  m.probe("8:32", cr::ghost);
  policies(m, {{"polling_interval", "5"}});
  m.sleep(1000);
  CHECK(m.topology() == lines{"mp", "features='0' hwhandler='1 alua' wp=rw",
                              "`-+- policy='round-robin 0' prio=1 status=enabled", "  |- /dev/sdb active ready",
                              "  `- 8:32     active ghost"});
  CHECK(message(m, {"disable_group", "1"}).code == 0);
  CHECK(m.topology()[2] == "`-+- policy='round-robin 0' prio=1 status=disabled");
}
