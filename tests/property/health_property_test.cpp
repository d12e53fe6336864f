// The health layer against its reference model (testing/health_model.hpp): random tables and random
// mpathctl scripts with `policy` (path_grouping_policy included, so ticks regroup and reload the
// device, §8.5), `probe`, `prio` (also while the layer runs) and `sleep`, run on a simulated device with the
// real health monitor (testing/health_sim.hpp, what mpathctl runs) and on the two models. After
// every command both must print the same lines and show the same TABLE, INFO and stats; `log` and
// `events` are in the commands. Beside the comparison, the properties of issue 10 are asserted on
// their own:
//
//   * a path whose checker says up is active within polling_interval + 1 s of being told so (the
//     checker's word is what the script sets with `probe`; while no hold-down is configured);
//   * a path whose checker says down receives no I/O dispatched after the check that failed it;
//   * with `no_path_retry N`, no I/O stays queued longer than N × polling_interval + 2 s after the
//     last path went;
//   * a path held by the san_path_err hold-down (§8.4) is reinstated only through one of its two
//     release rules, and released by recovery_time no sooner than recovery_time after the check
//     that last saw it unusable (bounded from the log: that check came one polling_interval
//     before the hold, unless a `pending` answer stretched the gap).
//
// A failure prints the shrunk script; `mpathctl` replays it.
//
// More cases: RC_PARAMS="max_success=2000" build/ci/tests/mpath_tests -tc='health property*'

#include <mpath/testing/generators.hpp>
#include <mpath/testing/script.hpp>

#include "support/rc_doctest.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace {

namespace mt = mpath::testing;
using step = mt::script_step;
using k = step::kind;

step make(k what) {
  step s;
  s.what = what;
  s.name = "mp";
  return s;
}

/// `prio NAME PATH N` with the priorities of real prioritizers (ALUA's 50 and 10, const's 1, 0).
rc::Gen<step> gen_prio_step(const std::vector<std::string>& devices) {
  return rc::gen::apply(
      [](std::string path, int n) {
        auto s = make(k::prio);
        s.path = std::move(path);
        s.priority = n;
        return s;
      },
      rc::gen::elementOf(devices), rc::gen::element(0, 1, 10, 50));
}

/// One random command for a device whose paths are `devices`.
rc::Gen<step> gen_health_step(const std::vector<std::string>& devices, bool bio) {
  auto policy =
      rc::gen::map(rc::gen::elementOf(std::vector<std::vector<std::string>>{{"polling_interval", "1"},
                                                                            {"polling_interval", "2"},
                                                                            {"polling_interval", "5"},
                                                                            {"max_polling_interval", "4"},
                                                                            {"failback", "immediate"},
                                                                            {"failback", "manual"},
                                                                            {"failback", "followover"},
                                                                            {"failback", "2"},
                                                                            {"no_path_retry", "fail"},
                                                                            {"no_path_retry", "queue"},
                                                                            {"no_path_retry", "2"},
                                                                            {"no_path_retry", "5"},
                                                                            {"san_path_err_threshold", "1"},
                                                                            {"san_path_err_threshold", "2"},
                                                                            {"san_path_err_forget_rate", "1"},
                                                                            {"san_path_err_forget_rate", "3"},
                                                                            {"san_path_err_recovery_time", "3"},
                                                                            {"san_path_err_recovery_time", "10"},
                                                                            {"delay_watch_checks", "2"},
                                                                            {"delay_wait_checks", "2"},
                                                                            {"san_path_err_threshold", "off"},
                                                                            {"path_grouping_policy", "failover"},
                                                                            {"path_grouping_policy", "multibus"},
                                                                            {"path_grouping_policy", "group_by_prio"},
                                                                            {"path_grouping_policy", "group_by_prio"},
                                                                            {"path_grouping_policy", "group_by_tpg"},
                                                                            {"polling_interval", "0"},
                                                                            {"frobnicate", "1"}}),
                   [](std::vector<std::string> w) {
                     auto s = make(k::policy);
                     s.words = std::move(w);
                     return s;
                   });
  auto probe = rc::gen::apply(
      [](std::string path, mpath::health::check_result r) {
        auto s = make(k::probe);
        s.path = std::move(path);
        s.check = r;
        return s;
      },
      rc::gen::elementOf(devices),
      rc::gen::weightedElement<mpath::health::check_result>({{6, mpath::health::check_result::up},
                                                             {5, mpath::health::check_result::down},
                                                             {1, mpath::health::check_result::ghost},
                                                             {1, mpath::health::check_result::pending},
                                                             {1, mpath::health::check_result::timeout},
                                                             {1, mpath::health::check_result::shaky}}));
  auto prio = gen_prio_step(devices);
  auto sleep = rc::gen::map(rc::gen::element<std::uint64_t>(300, 1000, 1000, 2500, 5000), [](std::uint64_t ms) {
    auto s = make(k::sleep);
    s.count = ms;
    return s;
  });
  auto io = rc::gen::map(rc::gen::inRange(1, 4), [](int n) {
    auto s = make(k::io);
    s.count = std::uint64_t(n);
    return s;
  });
  auto complete = rc::gen::apply(
      [](std::string path, mpath::blk_status st) {
        auto s = make(k::complete);
        s.path = std::move(path);
        s.count = step::all;
        s.status = st;
        return s;
      },
      rc::gen::weightedOneOf<std::string>({{1, rc::gen::just(std::string())}, {2, rc::gen::elementOf(devices)}}),
      rc::gen::element(mpath::blk_status::ok, mpath::blk_status::ok, mpath::blk_status::transport));
  auto fault = rc::gen::apply(
      [](std::string path, bool on) {
        auto s = make(k::fault);
        s.path = std::move(path);
        s.flag = on;
        return s;
      },
      rc::gen::elementOf(devices), rc::gen::arbitrary<bool>());
  auto message = rc::gen::map(rc::gen::elementOf(devices), [](std::string path) {
    auto s = make(k::message);
    s.words = {"fail_path", std::move(path)};
    return s;
  });
  // A reload: paths added and removed under the running layer (product.md §6), each token once (see
  // the RC_PRE below).
  mt::table_options reload_opts;
  reload_opts.max_groups = 3;
  reload_opts.max_paths = 3;
  reload_opts.bio = bio;
  auto reload = rc::gen::map(rc::gen::suchThat(mt::gen_table(reload_opts),
                                               [](const mt::generated_table& t) {
                                                 std::vector<std::string> seen;
                                                 for (const auto& g : t.model.groups)
                                                   for (const auto& p : g.paths) {
                                                     if (std::find(seen.begin(), seen.end(), p.device) != seen.end())
                                                       return false;
                                                     seen.push_back(p.device);
                                                   }
                                                 return true;
                                               }),
                             [](const mt::generated_table& t) {
                               auto s = make(k::reload);
                               s.words = mt::split_script_words(t.text);
                               return s;
                             });
  return rc::gen::weightedOneOf<step>({
      {1, reload},
      {5, policy},
      {6, probe},
      {3, prio},
      {8, sleep},
      {4, io},
      {3, complete},
      {2, fault},
      {1, message},
      {2, rc::gen::just(make(k::log))},
      {1, rc::gen::just(make(k::events))},
      {1, rc::gen::just(make(k::run))},
  });
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines)
    out += "    " + l + "\n";
  return out.empty() ? "    (nothing)\n" : out;
}

/// Runs `steps` on both and asserts after each; `script` collects the replayable lines.
void check_health_run(const mt::generated_table& t, const std::vector<step>& steps) {
  auto dev = mt::make_health_sim_target<>("mp", t.text);
  RC_ASSERT(dev.has_value());
  mt::health_reference_model model(t.model, "mp");
  auto& d = **dev;
  std::string script = "create mp " + t.text + "\n";
  auto fail = [&](const std::string& what, const std::string& want, const std::string& got) {
    RC_FAIL(what + "\n  model:\n" + want + "  engine + health monitor:\n" + got + "  replay with mpathctl:\n" + script);
  };

  // Property bookkeeping, from what the script told the checker.
  std::map<std::string, mpath::health::check_result> told;
  std::map<std::string, bool> faulty; // I/O on it fails: the engine may fail it again after each reinstate
  struct up_since {
    std::uint64_t ms;
    std::uint32_t polling_interval; // in force then: a later, shorter one does not shorten the countdown
  };
  std::map<std::string, up_since> up_since_ms; // told up, engine has it failed
  std::uint64_t now_ms = 0;
  std::uint32_t longest_pi = 0;
  bool health_on = false;
  // §8.4 bookkeeping, from the log lines each step added (peeked, so `log` still prints them).
  struct hold {
    std::uint64_t began_after_ms;   // the hold came after this time (the step before the one logging it)
    std::uint32_t recovery_time;    // the shortest in force since
    std::uint32_t polling_interval; // the longest in force since
    bool pending_told = false;      // a `pending` answer may have stretched the gap: no timing bound
    bool released = false;          // a release line came; `reinstated` may follow
  };
  std::map<std::string, hold> held;
  std::map<std::string, bool> pending_since_unusable; // told `pending` after its last unusable word
  std::size_t log_seen = 0;
  bool regrouped = false; // a tick regrouped and reloaded the device (§8.5)
  for (const auto& s : steps) {
    std::uint64_t before_ms = now_ms;
    script += s.line() + "\n";
    if (auto problem = mt::script_target_problem(d, s))
      continue; // the generator only names paths of the table, but hwh-free anyway
    const auto reloads_before = d.device().device().reloads(); // a `sleep` may regroup and reload
    auto before_paths = d.device().live_paths();
    std::vector<bool> active_before;
    for (auto& g : d.device().engine().groups())
      for (auto& p : g.paths())
        active_before.push_back(p.is_active());

    auto told_before = told;
    auto want = mt::run_step(model, s);
    auto got = mt::run_step(d, s);
    if (want != got)
      fail("what `" + s.line() + "` printed", joined(want), joined(got));
    auto want_state = mt::observe(model), got_state = mt::observe(d);
    if (want_state != got_state)
      fail("table / status / stats after `" + s.line() + "`", joined(want_state), joined(got_state));

    if (s.what == k::policy && !want.size())
      health_on = true;
    if (s.what == k::probe) {
      told[s.path] = s.check;
      if (s.check == mpath::health::check_result::pending)
        pending_since_unusable[s.path] = true;
      else if (!mpath::health::is_usable(s.check))
        pending_since_unusable[s.path] = false;
    }
    if (s.what == k::fault)
      faulty[s.path] = s.flag;
    if (s.what == k::sleep)
      now_ms += s.count;

    // No dispatch to a path the checker failed: a path that was failed before this step while
    // its checker said down, and still is, received nothing new.
    auto after_paths = d.device().live_paths();
    std::size_t i = 0;
    for (auto& g : d.device().engine().groups())
      for (auto& p : g.paths()) {
        if (d.device().device().reloads() != reloads_before) // the new table's paths are other paths
          break;
        auto said = told_before.find(std::string(p.device()));
        bool checker_down = said != told_before.end() && !mpath::health::is_usable(said->second);
        if (checker_down && !active_before[i] && !p.is_active() &&
            after_paths[i].dispatched != before_paths[i].dispatched)
          fail("no I/O to a failed path",
               before_paths[i].device + " dispatched=" + std::to_string(before_paths[i].dispatched) + "\n",
               "dispatched=" + std::to_string(after_paths[i].dispatched) + "\n");
        ++i;
      }

    // The hold-down: no reinstatement but through a release rule, none by recovery_time too soon.
    if (s.what == k::log)
      log_seen = 0; // the step took them: every line it printed was looked at after an earlier step
    auto log_now = d.peek_log();
    std::vector<std::string> new_lines(log_now.begin() + std::ptrdiff_t(std::min(log_seen, log_now.size())),
                                       log_now.end());
    log_seen = log_now.size();
    if (d.monitor()) {
      auto san = d.monitor()->settings().san_path_err();
      for (auto it = held.begin(); it != held.end();) {
        if (!san.enabled()) { // turned off: let go at its next usable answer, silently
          it = held.erase(it);
          continue;
        }
        it->second.recovery_time = std::min(it->second.recovery_time, san.recovery_time);
        it->second.polling_interval = std::max(it->second.polling_interval, d.monitor()->settings().polling_interval);
        ++it;
      }
      for (const auto& line : new_lines) {
        if (line == "mp: reload") {
          regrouped = true;
          if (d.monitor()->settings().path_grouping_policy == mpath::health::pgpolicy::none)
            fail("only path_grouping_policy regroups", "no reload\n", line + "\n");
        }
        // "PATH : what" (§8.4's lines) or "PATH: reinstated"; path tokens may hold colons.
        const std::string reinstated = ": reinstated";
        auto spaced = line.find(" : ");
        std::string path = spaced != std::string::npos  ? line.substr(0, spaced)
                           : line.ends_with(reinstated) ? line.substr(0, line.size() - reinstated.size())
                                                        : std::string();
        if (line.ends_with(" : hit error threshold. Delaying path reinstatement")) {
          held[path] = hold{before_ms, san.recovery_time, d.monitor()->settings().polling_interval,
                            pending_since_unusable[path]};
        } else if (auto h = held.find(path); h != held.end()) {
          if (line.ends_with(" : reinstating path early")) {
            h->second.released = true;
          } else if (line.ends_with(" : reinstate the path after err recovery time")) {
            h->second.released = true;
            const hold& hd = h->second;
            if (!hd.pending_told && hd.recovery_time > hd.polling_interval &&
                now_ms <= hd.began_after_ms + std::uint64_t(hd.recovery_time - hd.polling_interval) * 1000)
              fail("a held path is released no sooner than recovery_time after it was last seen unusable",
                   path + " held after " + std::to_string(hd.began_after_ms) + " ms, recovery_time " +
                       std::to_string(hd.recovery_time) + " s\n",
                   "released by " + std::to_string(now_ms) + " ms\n");
          } else if (line == path + ": reinstated") {
            if (!h->second.released)
              fail("a held path is reinstated only through a release rule", path + " held\n", line + "\n");
            held.erase(h);
          }
        }
      }
    }

    // Up means active within polling_interval + 1 s (the path's interval is at most
    // polling_interval while it is failed; +1 s for the tick it is told between).
    if (health_on) {
      auto settings = d.monitor() ? d.monitor()->settings() : mpath::health::health_settings{};
      longest_pi = std::max(longest_pi, settings.polling_interval);
      for (auto& g : d.device().engine().groups())
        for (auto& p : g.paths()) {
          std::string dev_name(p.device());
          auto it = told.find(dev_name);
          bool up = it == told.end() || mpath::health::is_usable(it->second);
          // A path the hold-down may keep out (§8.4) is bounded by the property on holds instead.
          bool may_hold =
              settings.san_path_err().enabled() ||
              (d.monitor() && d.monitor()->check_state(dev_name) == mpath::health::path_check_state::delayed);
          if (!up || faulty[dev_name] || p.is_active() || may_hold) {
            up_since_ms.erase(dev_name);
            continue;
          }
          auto [at, inserted] = up_since_ms.emplace(dev_name, up_since{now_ms, longest_pi});
          // A countdown set under a longer polling_interval still runs: the longest one in force
          // since bounds it.
          std::uint64_t pi = std::max(at->second.polling_interval, longest_pi);
          if (!inserted && now_ms - at->second.ms > (pi + 1) * 1000)
            fail("a path the checker calls up is active within polling_interval + 1 s",
                 dev_name + " active by " + std::to_string(at->second.ms + (pi + 1) * 1000) + " ms\n",
                 "still failed at " + std::to_string(now_ms) + " ms\n");
        }
    }
  }
  RC_CLASSIFY(regrouped, "regrouped and reloaded");
}

} // namespace

TEST_CASE("health property: engine + health monitor behave as the health model on random scripts") {
  MP_RC_CHECK_N("health: engine + monitor == model", 300, [] {
    mt::table_options opts;
    opts.max_groups = 3;
    opts.max_paths = 3;
    auto t = *mt::gen_table(opts);
    std::vector<std::string> devices = t.model.groups.empty() ? std::vector<std::string>{} : [&] {
      std::vector<std::string> out;
      for (const auto& g : t.model.groups)
        for (const auto& p : g.paths)
          if (std::find(out.begin(), out.end(), p.device) == out.end())
            out.push_back(p.device);
      return out;
    }();
    std::size_t entries = 0;
    for (const auto& g : t.model.groups)
      entries += g.paths.size();
    // A token listed twice (in two groups) is one device to the checker but two paths to the
    // engine; the model and the monitor resolve that differently and the spec is silent.
    RC_PRE(!devices.empty() && entries == devices.size());
    // Priorities before the layer runs, then more `prio` steps among the others: both read a
    // priority when the monitor does (multipathd's update_prio, health_model.hpp).
    auto prios = *rc::gen::container<std::vector<step>>(gen_prio_step(devices));
    auto steps = *rc::gen::container<std::vector<step>>(gen_health_step(devices, t.model.bio));
    steps.insert(steps.begin(), prios.begin(), prios.end());
    check_health_run(t, steps);
  });
}

TEST_CASE("health property: with no_path_retry N queued I/O fails after N x polling_interval and within 2 s more") {
  MP_RC_CHECK_N("health: no_path_retry bounds queueing", 60, [] {
    unsigned n = *rc::gen::inRange(1u, 4u);
    unsigned pi = *rc::gen::element(1u, 2u, 5u);
    auto dev = mt::make_health_sim_target<>("mp", "0 0 2 1 round-robin 0 1 1 a 1 round-robin 0 1 1 b 1");
    RC_ASSERT(dev.has_value());
    auto& d = **dev;
    std::vector<std::string> pi_word{std::to_string(pi)}, n_word{std::to_string(n)};
    RC_ASSERT(d.policy("polling_interval", pi_word).has_value());
    RC_ASSERT(d.policy("no_path_retry", n_word).has_value());
    d.device().sleep(*rc::gen::inRange(0, 3000));
    // Every path goes at once; I/O before and after.
    d.device().io(std::size_t(*rc::gen::inRange(0, 3)));
    for (const char* p : {"a", "b"}) {
      d.probe(p, mpath::health::check_result::down);
      d.device().backend().set_fault(p, true);
    }
    d.device().complete("", ~std::size_t{0}, mpath::blk_status::transport);
    for (const char* p : {"a", "b"}) // what the I/O errors did not fail yet, the host does now
      (void)d.device().engine().message(std::string("fail_path ") + p);
    d.device().run();
    d.device().io(std::size_t(*rc::gen::inRange(1, 4)));
    RC_ASSERT(d.device().engine().nr_valid_paths() == 0u);
    // Not before N x polling_interval...
    auto held = d.device().stats().queued;
    RC_ASSERT(held > 0u);
    d.device().sleep(std::uint64_t(n) * pi * 1000 - 1);
    RC_ASSERT(d.device().stats().queued == held);
    // ...and not later than 2 s after it.
    d.device().sleep(2001);
    auto s = d.device().stats();
    RC_ASSERT(s.queued == 0u);
    RC_ASSERT(s.inflight == 0u);
    RC_ASSERT(s.ok + s.failed == s.submitted);
  });
}
