// health/settings.hpp: product.md §8.2's keys, multipath-tools 0.14's defaults, the deprecated
// delay_* mapping, and the parser's errors (EINVAL, exact text, setting unchanged).

#include <mpath/health/settings.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

using mpath::health::apply_setting;
using mpath::health::failback_mode;
using mpath::health::health_settings;
using mpath::health::no_path_retry_mode;
using mpath::health::pgpolicy;

mpath::result<void> set(health_settings& s, std::string key, std::vector<std::string> values) {
  return apply_setting(s, key, values);
}

/// Applies a bad value and checks the error text and that nothing changed.
void refused(health_settings& s, std::string key, std::vector<std::string> values, std::string text) {
  INFO(key);
  health_settings before = s;
  auto r = apply_setting(s, key, values);
  REQUIRE_FALSE(r);
  CHECK(r.err().code == EINVAL);
  CHECK(r.err().text == text);
  CHECK(s == before);
}

TEST_CASE("health settings: multipath-tools 0.14 defaults") {
  health_settings s;
  CHECK(s.polling_interval == 5);
  CHECK(s.max_checkint() == 20); // 4 x polling_interval
  CHECK(s.failback == failback_mode::manual);
  CHECK(s.no_path_retry == no_path_retry_mode::unset);
  CHECK_FALSE(s.san_path_err().enabled());
  CHECK(s.marginal_pathgroups == false);
  CHECK(s.path_grouping_policy == pgpolicy::none);
  CHECK(s.checker_timeout == 30);
}

TEST_CASE("health settings: every key") {
  health_settings s;
  CHECK(set(s, "polling_interval", {"2"}));
  CHECK(s.polling_interval == 2);
  CHECK(s.max_checkint() == 8); // follows polling_interval while unset
  CHECK(set(s, "max_polling_interval", {"30"}));
  CHECK(s.max_checkint() == 30);
  CHECK(set(s, "max_polling_interval", {"2"})); // equal is allowed
  CHECK(s.max_checkint() == 2);

  CHECK(set(s, "failback", {"immediate"}));
  CHECK(s.failback == failback_mode::immediate);
  CHECK(set(s, "failback", {"followover"}));
  CHECK(s.failback == failback_mode::followover);
  CHECK(set(s, "failback", {"15"}));
  CHECK(s.failback == failback_mode::deferred);
  CHECK(s.failback_seconds == 15);
  CHECK(set(s, "failback", {"manual"}));
  CHECK(s.failback == failback_mode::manual);
  CHECK(s.failback_seconds == 0);

  CHECK(set(s, "no_path_retry", {"fail"}));
  CHECK(s.no_path_retry == no_path_retry_mode::fail);
  CHECK(set(s, "no_path_retry", {"queue"}));
  CHECK(s.no_path_retry == no_path_retry_mode::queue);
  CHECK(set(s, "no_path_retry", {"12"}));
  CHECK(s.no_path_retry == no_path_retry_mode::retries);
  CHECK(s.no_path_retry_count == 12);

  CHECK(set(s, "san_path_err_threshold", {"3"}));
  CHECK_FALSE(s.san_path_err().enabled()); // all three are needed
  CHECK(set(s, "san_path_err_forget_rate", {"10"}));
  CHECK(set(s, "san_path_err_recovery_time", {"60"}));
  CHECK(s.san_path_err() == mpath::health::san_path_err_config{3, 10, 60});
  CHECK(s.san_path_err().enabled());
  CHECK(set(s, "san_path_err_threshold", {"off"}));
  CHECK(s.san_path_err_threshold == 0);
  CHECK_FALSE(s.san_path_err().enabled());
  CHECK(set(s, "san_path_err_forget_rate", {"no"}));
  CHECK(s.san_path_err_forget_rate == 0);

  CHECK(set(s, "marginal_pathgroups", {"on"}));
  CHECK(s.marginal_pathgroups);
  CHECK(set(s, "marginal_pathgroups", {"off"}));
  CHECK_FALSE(s.marginal_pathgroups);

  CHECK(set(s, "path_grouping_policy", {"failover"}));
  CHECK(s.path_grouping_policy == pgpolicy::failover);
  CHECK(set(s, "path_grouping_policy", {"multibus"}));
  CHECK(s.path_grouping_policy == pgpolicy::multibus);
  CHECK(set(s, "path_grouping_policy", {"group_by_prio"}));
  CHECK(s.path_grouping_policy == pgpolicy::group_by_prio);

  CHECK(set(s, "checker_timeout", {"7"}));
  CHECK(s.checker_timeout == 7);
}

TEST_CASE("health settings: delay_watch_checks and delay_wait_checks map as select_delay_checks() does") {
  health_settings s;
  CHECK(set(s, "delay_watch_checks", {"4"}));
  // watch alone: threshold 1 and forget_rate, no recovery time, so still off (as multipathd)
  CHECK(s.san_path_err() == mpath::health::san_path_err_config{1, 4, 0});
  CHECK_FALSE(s.san_path_err().enabled());
  CHECK(set(s, "delay_wait_checks", {"3"}));
  CHECK(s.san_path_err() == mpath::health::san_path_err_config{1, 4, 3 * 20}); // wait x max_polling_interval
  CHECK(s.san_path_err().enabled());
  CHECK(set(s, "max_polling_interval", {"10"}));
  CHECK(s.san_path_err().recovery_time == 30);
  // any san_path_err_* option set: the aliases are ignored
  CHECK(set(s, "san_path_err_recovery_time", {"100"}));
  CHECK(s.san_path_err() == mpath::health::san_path_err_config{0, 0, 100});
  CHECK_FALSE(s.san_path_err().enabled());
  CHECK(set(s, "delay_watch_checks", {"off"}));
  CHECK(s.delay_watch_checks == 0);
}

TEST_CASE("health settings: bad values keep the old value, with clear text") {
  health_settings s;
  refused(s, "no_such_key", {"1"}, "unknown policy setting: no_such_key");
  refused(s, "Polling_Interval", {"1"}, "unknown policy setting: Polling_Interval");
  refused(s, "polling_interval", {}, "polling_interval takes one value, got 0");
  refused(s, "polling_interval", {"1", "2"}, "polling_interval takes one value, got 2");
  refused(s, "polling_interval", {"0"}, "invalid polling_interval: 0 (expected seconds >= 1)");
  refused(s, "polling_interval", {"-1"}, "invalid polling_interval: -1 (expected seconds >= 1)");
  refused(s, "polling_interval", {"5s"}, "invalid polling_interval: 5s (expected seconds >= 1)");
  refused(s, "polling_interval", {"4294967296"}, "invalid polling_interval: 4294967296 (expected seconds >= 1)");
  refused(s, "polling_interval", {"2147483648"}, "invalid polling_interval: 2147483648 (expected seconds >= 1)");
  refused(s, "max_polling_interval", {"4"}, "invalid max_polling_interval: 4 (expected seconds >= polling_interval 5)");
  refused(s, "max_polling_interval", {"x"}, "invalid max_polling_interval: x (expected seconds >= polling_interval 5)");
  REQUIRE(set(s, "max_polling_interval", {"8"}));
  refused(s, "polling_interval", {"9"}, "invalid polling_interval: 9 (expected seconds <= max_polling_interval 8)");
  refused(s, "failback", {"0"}, "invalid failback: 0 (expected manual, immediate, followover or seconds >= 1)");
  refused(s, "failback", {"Immediate"},
          "invalid failback: Immediate (expected manual, immediate, followover or seconds >= 1)");
  refused(s, "no_path_retry", {"0"}, "invalid no_path_retry: 0 (expected fail, queue or a number >= 1)");
  refused(s, "no_path_retry", {"forever"}, "invalid no_path_retry: forever (expected fail, queue or a number >= 1)");
  refused(s, "san_path_err_threshold", {"0"}, "invalid san_path_err_threshold: 0 (expected a number >= 1 or off)");
  refused(s, "san_path_err_forget_rate", {"x"}, "invalid san_path_err_forget_rate: x (expected a number >= 1 or off)");
  refused(s, "san_path_err_recovery_time", {"0"},
          "invalid san_path_err_recovery_time: 0 (expected seconds >= 1 or off)");
  refused(s, "delay_watch_checks", {"0"}, "invalid delay_watch_checks: 0 (expected a number >= 1 or off)");
  refused(s, "delay_wait_checks", {"y"}, "invalid delay_wait_checks: y (expected a number >= 1 or off)");
  refused(s, "marginal_pathgroups", {"fpin"}, "invalid marginal_pathgroups: fpin (expected off or on)");
  refused(s, "path_grouping_policy", {"group_by_serial"},
          "invalid path_grouping_policy: group_by_serial (expected failover, multibus or group_by_prio)");
  refused(s, "checker_timeout", {"0"}, "invalid checker_timeout: 0 (expected seconds >= 1)");
}

} // namespace
