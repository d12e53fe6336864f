// testing/script.hpp: the mpathctl language as values. A line parses into a command or a usage
// error (as a value), a command prints back as a line that parses to the same command, and the
// interpreter runs the same script over the engine and over the model with the same output.

#include <mpath/testing/script.hpp>

#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

namespace {
namespace mt = mpath::testing;

mt::script_step parsed(std::string_view line) {
  auto r = mt::parse_script_line(line);
  REQUIRE(r);
  REQUIRE(r->has_value());
  return **r;
}

std::string usage_of(std::string_view line) {
  auto r = mt::parse_script_line(line);
  REQUIRE_FALSE(r);
  CHECK(r.err().code == EINVAL);
  return r.err().text;
}
} // namespace

TEST_CASE("script: blank lines and comments are no command") {
  for (const char* line : {"", "   ", "\t", "# a comment", "#io mp 1", "  # indented"}) {
    auto r = mt::parse_script_line(line);
    REQUIRE(r);
    CHECK_FALSE(r->has_value());
  }
}

TEST_CASE("script: every command prints back as a line that parses to the same command") {
  for (const char* line : {"io mp 3 512",
                           "complete mp 8:16 2 transport",
                           "complete mp all all ok",
                           "fault mp 8:16 on",
                           "fault mp 8:32 off",
                           "hwh mp retry ok nosys",
                           "run mp",
                           "sleep mp 2500",
                           "suspend mp noflush",
                           "suspend mp",
                           "resume mp",
                           "message mp fail_path 8:16",
                           "option mp queue_if_no_path_timeout_secs 5",
                           "option mp path_failure_threshold 3",
                           "option mp keep_last_path on",
                           "option mp keep_last_path off",
                           "events mp",
                           "create mp 0 0 1 1 round-robin 0 1 0 8:16",
                           "remove mp",
                           "table mp",
                           "status mp",
                           "stats mp",
                           "echo hello  world"}) {
    CAPTURE(line);
    auto s = parsed(line);
    auto again = parsed(s.line());
    CHECK(again.line() == s.line());
    CHECK(again.what == s.what);
    CHECK(again.name == s.name);
  }
  CHECK(parsed("io mp 3").line() == "io mp 3 4096"); // defaults are printed
  CHECK(parsed("complete mp all 1").line() == "complete mp all 1 ok");
  CHECK(parsed("echo a   b").line() == "echo a b");
}

TEST_CASE("script: usage problems are values with mpathctl's words") {
  CHECK(usage_of("frobnicate mp") == "unknown command 'frobnicate' (mpathctl --help lists the commands)");
  CHECK(usage_of("io mp") == "io NAME COUNT [BYTES]");
  CHECK(usage_of("io mp many") == "COUNT must be a number from 0 to 1000000 (io NAME COUNT [BYTES])");
  CHECK(usage_of("io mp 1000001") == "COUNT must be a number from 0 to 1000000 (io NAME COUNT [BYTES])");
  CHECK(usage_of("io mp 1 4294967296") == "BYTES must be a number from 0 to 4294967295 (io NAME COUNT [BYTES])");
  CHECK(usage_of("complete mp all 1 sideways") ==
        "unknown STATUS 'sideways' (complete NAME PATH|all COUNT|all [STATUS])");
  CHECK(usage_of("fault mp 8:16 maybe") == "'maybe' is not on or off (fault NAME PATH on|off)");
  CHECK(usage_of("hwh mp nope") == "unknown RESULT 'nope' (hwh NAME RESULT...)");
  CHECK(usage_of("suspend mp hard") == "'hard' is not noflush (suspend NAME [noflush])");
  CHECK(usage_of("sleep mp -1") == "MS must be a number from 0 to 4294967295 (sleep NAME MS)");
  CHECK(usage_of("option mp no_path_retry 5") == "unknown option 'no_path_retry' (option NAME "
                                                 "queue_if_no_path_timeout_secs SECS|path_failure_threshold N|"
                                                 "keep_last_path on|off)");
  CHECK(usage_of("option mp path_failure_threshold x") ==
        "N must be a number from 0 to 4294967295 (option NAME queue_if_no_path_timeout_secs "
        "SECS|path_failure_threshold N|keep_last_path on|off)");
  CHECK(usage_of("option mp keep_last_path 1") == "'1' is not on or off (option NAME queue_if_no_path_timeout_secs "
                                                  "SECS|path_failure_threshold N|keep_last_path on|off)");
  CHECK(usage_of("table mp extra") == "table NAME");
}

TEST_CASE("script: the same script over the engine and over the model prints the same lines") {
  const std::string script = "create mp 1 queue_if_no_path 0 2 1 round-robin 0 1 1 a 1 round-robin 0 1 1 b 1\n"
                             "io mp 2\n"
                             "complete mp a 1 transport\n"
                             "run mp\n"
                             "status mp\n"
                             "events mp\n"
                             "complete mp 8:99 1\n"
                             "hwh mp ok\n"
                             "stats mp\n"
                             "table nosuch\n"
                             "message mp reinstate_path a\n"
                             "remove mp\n"
                             "status mp\n";
  std::istringstream in1(script), in2(script);
  std::ostringstream engine_out, model_out;
  int engine_status = mt::run_script<mt::sim_device<>>(in1, engine_out, &mt::make_sim_target<>);
  int model_status = mt::run_script<mt::reference_model>(in2, model_out, &mt::make_model_target);
  CHECK(engine_out.str() == model_out.str());
  CHECK(engine_status == 2);
  CHECK(model_status == 2);
  CHECK(engine_out.str() == "2 0 0 0 2 2 E 0 1 0 a F 1 A 0 1 0 b A 0\n"
                            "PATH_FAILED a 1\n"
                            "usage: line 7: '8:99' is not a path of mp (complete NAME PATH|all COUNT|all [STATUS])\n"
                            "usage: line 8: device 'mp' has no hardware handler (hwh NAME RESULT...)\n"
                            "submitted=2 ok=0 failed=0 queued=0 inflight=2\n"
                            "a dispatched=2 inflight=1\n"
                            "b dispatched=1 inflight=1\n"
                            "usage: line 10: no device named 'nosuch' (create it first)\n"
                            "ok\n"
                            "usage: line 13: no device named 'mp' (create it first)\n");
}
