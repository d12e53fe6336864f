// The reference model of create2003 devices (include/mpath/testing/seed2003_model.hpp) against the
// engine with seed 003's front end (seed2003_sim.hpp): random scripts of the commands the model
// knows, run through the same interpreter on both, must print the same lines (product.md §9).

#include <mpath/testing/script.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace mt = mpath::testing;

std::string run(const std::string& script, mt::script_factory_2003 make2003) {
  std::istringstream in(script);
  std::ostringstream out;
  (void)mt::run_script<mt::sim_device<>>(in, out, &mt::make_sim_target<>, std::move(make2003));
  return out.str();
}

/// A random create2003 table of 2..4 paths, and a script over it.
std::string random_script(std::uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](std::uint32_t n) { return std::uint32_t(rng() % n); };
  const std::vector<std::string> paths{"8:16", "8:32", "8:48", "8:64"};
  const std::size_t n = 2 + pick(3);
  std::string s = "create2003 d";
  for (std::size_t i = 0; i < n; ++i)
    s += " " + paths[i] + " " + std::to_string(pick(3)) + " " + "NLMlm"[pick(5)] + " " + std::to_string(pick(4)) + " " +
         std::to_string(pick(4)) + " " + std::to_string(pick(4));
  s += "\ntable d\n";
  static const char* statuses[] = {"ok", "ok", "ok", "transport", "ioerr", "timeout", "medium", "again"};
  static const char* probes[] = {"up", "down", "ghost", "pending", "timeout"};
  for (int step = 0; step < 80; ++step) {
    const std::string path = paths[pick(std::uint32_t(n))];
    switch (pick(12)) {
    case 0:
    case 1: s += "io d " + std::to_string(1 + pick(4)) + "\n"; break;
    case 2:
    case 3:
      s += "complete d " + (pick(3) == 0 ? std::string("all") : path) + " " + std::to_string(1 + pick(3)) + " " +
           statuses[pick(8)] + "\n";
      break;
    case 4: s += "run d\n"; break;
    case 5: s += "sleep d " + std::to_string(pick(4) * 500 + pick(3)) + "\n"; break;
    case 6: s += "probe d " + path + " " + probes[pick(5)] + "\n"; break;
    case 7: s += "fault d " + path + (pick(2) ? " on\n" : " off\n"); break;
    case 8: s += std::string("message d ") + (pick(2) ? "fail_path " : "reinstate_path ") + path + "\n"; break;
    case 9: s += "events d\n"; break;
    case 10: s += "status d\n"; break;
    default: s += "stats d\n"; break;
    }
  }
  return s + "complete d all all\nstats d\nstatus d\nevents d\n";
}

} // namespace

TEST_CASE("seed2003 model: the seed's errors and a created device print as on the engine") {
  const std::string script = "create2003 a 8:16 1 L 2 3\n"
                             "create2003 a 8:16 1 L 2 3 10 8:16 0 N 1 1 0\n"
                             "create2003 a 8:16 1 L 2 3 10 8:32 0 m 0 0 0\n"
                             "table a\nstatus a\nstats a\n"
                             "policy a failback immediate\nreload a 0 0 0 0\n";
  std::string engine = run(script, &mt::make_seed2003_sim_target);
  CHECK(engine == run(script, &mt::make_seed2003_model_target));
  CHECK(engine == "error: EINVAL: dm-multipath: Wrong argument count\n"
                  "error: EINVAL: dm-multipath: Same device\n"
                  "8:16 1 L 2 3 10 8:32 0 M 1 1 0\n"
                  "8:16 O 8:32 O\n"
                  "submitted=0 ok=0 failed=0 queued=0 inflight=0\n"
                  "8:16 dispatched=0 inflight=0\n"
                  "8:32 dispatched=0 inflight=0\n"
                  "usage: line 7: 'policy' does not apply to a create2003 device (policy NAME KEY VALUE...)\n"
                  "usage: line 8: 'reload' does not apply to a create2003 device (reload NAME PARAMS...)\n");
}

TEST_CASE("seed2003 model: what it does not model is a usage line, never a guess") {
  const std::string script = "create2003 a 8:16 1 L 2 3 10\nsuspend a\noption a keep_last_path on\n"
                             "message a switch_group 1\ncomplete a all all resource\n";
  std::string model = run(script, &mt::make_seed2003_model_target);
  CHECK(model == "usage: line 2: 'suspend' is not modelled for a create2003 device (suspend NAME [noflush])\n"
                 "usage: line 3: 'option' is not modelled for a create2003 device (option NAME "
                 "queue_if_no_path_timeout_secs SECS|path_failure_threshold N|keep_last_path on|off)\n"
                 "usage: line 4: 'message' is not modelled for a create2003 device (message NAME WORDS...)\n"
                 "usage: line 5: 'complete' is not modelled for a create2003 device (complete NAME PATH|all "
                 "COUNT|all [STATUS])\n");
}

TEST_CASE("seed2003 model: random scripts print the same on the model and on the engine") {
  for (std::uint32_t seed = 1; seed <= 300; ++seed) {
    std::string script = random_script(seed);
    CAPTURE(seed);
    CAPTURE(script);
    REQUIRE(run(script, &mt::make_seed2003_model_target) == run(script, &mt::make_seed2003_sim_target));
  }
}
