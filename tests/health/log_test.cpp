// health/log.hpp: every event in multipathd's words (product.md §8.7), byte for byte, and the
// vector sink mpathctl's `log` reads.

#include <mpath/health/log.hpp>
#include <mpath/health/monitor.hpp>
#include <mpath/health/path_checker.hpp>

#include <doctest/doctest.h>

#include <string>
#include <thread>

namespace {

using mpath::health::health_event;
using k = health_event::kind;

TEST_CASE("health log: every line in multipathd's words") {
  auto line = [](k kind, std::uint32_t n = 0) { return mpath::health::to_string({kind, "mpatha", "8:16", n}); };
  CHECK(line(k::checker_failed_path) == "checker failed path 8:16 in map mpatha");
  CHECK(line(k::reinstated) == "8:16: reinstated");
  CHECK(line(k::remaining_active_paths, 3) == "mpatha: remaining active paths: 3");
  CHECK(line(k::remaining_active_paths, 0) == "mpatha: remaining active paths: 0");
  CHECK(line(k::hit_error_threshold) == "8:16 : hit error threshold. Delaying path reinstatement");
  CHECK(line(k::reinstating_early) == "8:16 : reinstating path early");
  CHECK(line(k::reinstate_after_recovery) == "8:16 : reinstate the path after err recovery time");
  CHECK(line(k::entering_recovery, 12) == "mpatha: Entering recovery mode: max_retries=12");
  CHECK(line(k::disable_queueing) == "mpatha: Disable queueing");
  CHECK(line(k::recovered) == "mpatha: Recovered to normal mode");
  CHECK(line(k::switch_group, 2) == "mpatha: switch to path group #2");
  CHECK(line(k::reload) == "mpatha: reload");
}

TEST_CASE("health log: format appends") {
  std::string out = "> ";
  mpath::health::format({k::disable_queueing, "m", {}, 0}, out);
  CHECK(out == "> m: Disable queueing");
}

TEST_CASE("health log: the vector sink keeps lines oldest first until taken, from any thread") {
  mpath::health::vector_log_sink sink;
  std::thread t([&] {
    for (int i = 0; i < 100; ++i)
      sink.log({k::reinstated, "m", "a", 0});
  });
  for (int i = 0; i < 100; ++i)
    sink.log({k::switch_group, "m", {}, 1});
  t.join();
  auto lines = sink.take();
  CHECK(lines.size() == 200);
  CHECK(sink.take().empty());
  sink.log({k::recovered, "m", {}, 0});
  sink.log({k::disable_queueing, "m", {}, 0});
  CHECK(sink.take() == std::vector<std::string>{"m: Recovered to normal mode", "m: Disable queueing"});
}

TEST_CASE("health log: checker words and topology words") {
  using mpath::health::check_result;
  for (auto r : {check_result::up, check_result::down, check_result::ghost, check_result::pending,
                 check_result::timeout, check_result::shaky}) {
    check_result back = check_result::pending;
    CHECK(mpath::health::parse_check_result(mpath::health::to_string(r), back));
    CHECK(back == r);
  }
  check_result untouched = check_result::ghost;
  CHECK_FALSE(mpath::health::parse_check_result("UP", untouched));
  CHECK(untouched == check_result::ghost);
  CHECK(mpath::health::is_usable(check_result::up));
  CHECK(mpath::health::is_usable(check_result::ghost));
  CHECK_FALSE(mpath::health::is_usable(check_result::shaky));
  CHECK_FALSE(mpath::health::is_usable(check_result::timeout));

  using s = mpath::health::path_check_state;
  CHECK(mpath::health::topology_word(s::up) == "ready");
  CHECK(mpath::health::topology_word(s::down) == "faulty");
  CHECK(mpath::health::topology_word(s::ghost) == "ghost");
  CHECK(mpath::health::topology_word(s::pending) == "i/o pending");
  CHECK(mpath::health::topology_word(s::timeout) == "i/o timeout");
  CHECK(mpath::health::topology_word(s::delayed) == "delayed");
  CHECK(mpath::health::topology_word(s::undef) == "undef");
  CHECK(mpath::health::topology_word(s::shaky) == "shaky");
}

} // namespace
