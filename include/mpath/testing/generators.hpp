#pragma once
// rapidcheck generators for multipath tables and mpathctl script steps. Only available when
// rapidcheck is (`__has_include(<rapidcheck.h>)`); link the test with rapidcheck.
//
//   gen_table()         a random valid table: 1-4 groups of 1-4 paths, every selector of
//                       `default_selectors` the reference model knows, with or without a hardware
//                       handler, random features, both queue modes; as text and as the model reads it
//   gen_step(model)     one random script step suited to the model's state: I/O, completions with
//                       every status, faults, handler results, deferred work, time, suspend/resume,
//                       every message valid and invalid, the no-path timeout (and, when asked,
//                       the engine options beyond the kernel: path_failure_threshold,
//                       keep_last_path)

#if __has_include(<rapidcheck.h>)

#include <mpath/selectors.hpp>
#include <mpath/testing/model.hpp>
#include <mpath/testing/script.hpp>

#include <rapidcheck.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mpath::inline v0::testing {

/// A generated table: the text given to the engine and what the model reads.
struct generated_table {
  std::string text;
  model_table model;
};

inline std::ostream& operator<<(std::ostream& os, const generated_table& t) { return os << t.text; }

/// Selector names of `Selectors` that the reference model can predict.
template <class Selectors = default_selectors> std::vector<std::string> model_selectors() {
  std::vector<std::string> out;
  for (auto name : Selectors::names)
    if (reference_model::supports_selector(name))
      out.emplace_back(name);
  return out;
}

namespace detail {

/// Spells a keyword in random case (features and messages are case-insensitive).
inline rc::Gen<std::string> any_case(std::string word) {
  return rc::gen::map(rc::gen::inRange(0, 8), [word](int c) {
    std::string w = word;
    if (c == 0)
      for (auto& ch : w)
        ch = char(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    else if (c == 1)
      w[0] = char(w[0] >= 'a' && w[0] <= 'z' ? w[0] - 32 : w[0]);
    return w;
  });
}

} // namespace detail

/// Options for `gen_table`.
struct table_options {
  int max_groups = 4;
  int max_paths = 4;
  std::vector<std::string> selectors = model_selectors();
  /// When set, the queue mode (bio or not) the table must have, e.g. for a reload.
  std::optional<bool> bio;
};

/// A random valid table.
inline rc::Gen<generated_table> gen_table(table_options opts = {}) {
  return rc::gen::exec([opts] {
    model_table m;
    // Features, in random order and case.
    std::vector<std::vector<std::string>> features;
    if (*rc::gen::arbitrary<bool>()) {
      m.queue_if_no_path = true;
      features.push_back({*detail::any_case("queue_if_no_path")});
    }
    if (*rc::gen::inRange(0, 3) == 0) {
      m.pg_init_retries = *rc::gen::weightedElement<std::uint32_t>({{4, 1}, {3, 2}, {2, 3}, {1, 50}});
      features.push_back({*detail::any_case("pg_init_retries"), std::to_string(m.pg_init_retries)});
    }
    if (*rc::gen::inRange(0, 3) == 0) {
      m.pg_init_delay_msecs = *rc::gen::element<std::uint32_t>(0, 50, 500, 2000);
      features.push_back({*detail::any_case("pg_init_delay_msecs"), std::to_string(*m.pg_init_delay_msecs)});
    }
    if (*rc::gen::inRange(0, 5) == 0) {
      m.retain_attached_hw_handler = true;
      features.push_back({*detail::any_case("retain_attached_hw_handler")});
    }
    int mode = *rc::gen::inRange(0, 8); // 0-1 bio, 2 rq, 3 mq, else unsaid
    if (opts.bio)
      mode = *opts.bio ? mode % 2 : 2 + mode % 6;
    if (mode <= 3) {
      m.bio = mode <= 1;
      features.push_back({*detail::any_case("queue_mode"), *detail::any_case(mode <= 1   ? "bio"
                                                                             : mode == 2 ? "rq"
                                                                                         : "mq")});
    }
    // A random order: each feature gets a random sort key.
    std::vector<std::pair<int, std::size_t>> keyed;
    for (std::size_t i = 0; i < features.size(); ++i)
      keyed.emplace_back(*rc::gen::inRange(0, 8), i);
    std::sort(keyed.begin(), keyed.end());
    std::vector<std::string> words;
    for (const auto& [key, i] : keyed)
      words.insert(words.end(), features[i].begin(), features[i].end());
    std::string text = std::to_string(words.size());
    for (const auto& w : words)
      text += " " + w;

    // Hardware handler: none, a name, or a name with arguments (never printed back).
    int hwh = *rc::gen::inRange(0, 4);
    if (hwh == 0) {
      text += " 0";
    } else {
      m.hw_handler = *rc::gen::element<std::string>("alua", "emc", "rdac");
      if (hwh == 3)
        m.hw_handler_args = {"1"};
      text += " " + std::to_string(1 + m.hw_handler_args.size()) + " " + m.hw_handler;
      for (const auto& a : m.hw_handler_args)
        text += " " + a;
    }

    int groups = *rc::gen::inRange(1, opts.max_groups + 1);
    m.initial_pg = std::uint32_t(*rc::gen::inRange(1, groups + 2)); // one past the end prefers none
    text += " " + std::to_string(groups) + " " + std::to_string(m.initial_pg);
    int next_device = 1;
    std::vector<std::string> devices;
    for (int g = 0; g < groups; ++g) {
      model_table::group mg;
      mg.selector = *rc::gen::elementOf(opts.selectors);
      int nsel = *rc::gen::weightedElement<int>({{6, 0}, {1, 1}, {1, 2}});
      bool hst = mg.selector == "historical-service-time";
      for (int i = 0; i < nsel; ++i) {
        if (!hst) // round-robin, queue-length and service-time ignore their group arguments
          mg.selector_args.push_back(*rc::gen::element<std::string>("0", "7", "x"));
        else if (i == 0) // base_weight < 1024
          mg.selector_args.push_back(*rc::gen::element<std::string>("972", "512", "1000", "0"));
        else // threshold_multiplier
          mg.selector_args.push_back(*rc::gen::element<std::string>("0", "1", "2", "10"));
      }
      int paths = *rc::gen::inRange(1, opts.max_paths + 1);
      int max_args = mg.selector == "service-time" ? 2 : 1;
      int nargs = *rc::gen::inRange(0, max_args + 1);
      text += " " + mg.selector + " " + std::to_string(nsel);
      for (const auto& a : mg.selector_args)
        text += " " + a;
      text += " " + std::to_string(paths) + " " + std::to_string(nargs);
      for (int p = 0; p < paths; ++p) {
        model_table::path mp;
        // Now and then the same device twice: messages and faults act on every occurrence.
        if (!devices.empty() && *rc::gen::inRange(0, 12) == 0) {
          mp.device = *rc::gen::elementOf(devices);
        } else {
          mp.device = "8:" + std::to_string(16 * next_device++);
          devices.push_back(mp.device);
        }
        if (nargs >= 1)
          mp.args.push_back(std::to_string(*rc::gen::weightedElement<int>({{1, 0}, {6, 1}, {2, 2}, {1, 3}})));
        if (nargs >= 2)
          mp.args.push_back(std::to_string(*rc::gen::element<int>(0, 1, 1, 2, 4, 100)));
        text += " " + mp.device;
        for (const auto& a : mp.args)
          text += " " + a;
        mg.paths.push_back(std::move(mp));
      }
      m.groups.push_back(std::move(mg));
    }
    return generated_table{text, m};
  });
}

/// A message (kernel-target.md §3), valid or not, for the model's table.
inline rc::Gen<std::vector<std::string>> gen_message(const reference_model& m) {
  auto devices = m.devices();
  devices.push_back("9:99"); // no such path
  int groups = int(m.group_count());
  auto group_arg = rc::gen::weightedOneOf<std::string>({
      {8, rc::gen::map(rc::gen::inRange(1, groups + 1), [](int n) { return std::to_string(n); })},
      {1, rc::gen::element<std::string>("0", "x", "-1", "01", "4294967296")},
      {1, rc::gen::just(std::to_string(groups + 1))},
  });
  auto two = [](std::string verb, rc::Gen<std::string> arg) {
    return rc::gen::apply(
        [](std::string v, std::string a) {
          return std::vector<std::string>{v, a};
        },
        detail::any_case(std::move(verb)), std::move(arg));
  };
  auto device = rc::gen::weightedOneOf<std::string>(
      {{9, rc::gen::elementOf(m.devices())}, {1, rc::gen::just(std::string("9:99"))}});
  return rc::gen::weightedOneOf<std::vector<std::string>>({
      {3,
       rc::gen::map(detail::any_case("queue_if_no_path"), [](std::string w) { return std::vector<std::string>{w}; })},
      {3, rc::gen::map(detail::any_case("fail_if_no_path"), [](std::string w) { return std::vector<std::string>{w}; })},
      {8, two("fail_path", device)},
      {8, two("reinstate_path", device)},
      {3, two("disable_group", group_arg)},
      {3, two("enable_group", group_arg)},
      {4, two("switch_group", group_arg)},
      {1, rc::gen::elementOf(std::vector<std::vector<std::string>>{
              {"fail_path"}, {"switch_group", "1", "2"}, {"frobnicate", "1"}, {"queue_if_no_path", "1"}})},
  });
}

/// Which steps gen_step may draw beyond the kernel's.
struct step_options {
  /// `option NAME path_failure_threshold N` and `option NAME keep_last_path on|off` (product.md
  /// §6). Off by default: they change what a kernel property may assume (keep_last_path fails I/O
  /// while a path is up).
  bool engine_options = false;
  /// `reload NAME PARAMS...` with a random table of the same queue mode (now and then another mode,
  /// which must fail), whose path tokens overlap the old ones: paths added and removed with I/O
  /// in flight. Off by default: a property about "this table" no longer knows the table.
  bool reload = false;
};

/// One random step for the model's state.
inline rc::Gen<script_step> gen_step(const reference_model& m, step_options o = {}) {
  using k = script_step::kind;
  auto devices = m.devices();
  auto make = [](k what) {
    script_step s;
    s.what = what;
    return s;
  };
  auto io = rc::gen::apply(
      [make](int count, std::uint64_t bytes) {
        auto s = make(k::io);
        s.count = std::uint64_t(count);
        s.bytes = bytes;
        return s;
      },
      rc::gen::inRange(1, 5),
      rc::gen::weightedElement<std::uint64_t>({{6, 4096}, {1, 0}, {1, 512}, {2, 65536}, {1, 1 << 20}}));
  auto status = rc::gen::weightedOneOf<blk_status>({
      {10, rc::gen::just(blk_status::ok)},
      {6, rc::gen::element(blk_status::ioerr, blk_status::timeout, blk_status::transport, blk_status::offline,
                           blk_status::resource, blk_status::again)},
      {3, rc::gen::element(blk_status::notsupp, blk_status::nospc, blk_status::target, blk_status::resv_conflict,
                           blk_status::medium, blk_status::protection)},
  });
  auto complete = rc::gen::apply(
      [make](std::string path, std::uint64_t count, blk_status st) {
        auto s = make(k::complete);
        s.path = std::move(path);
        s.count = count;
        s.status = st;
        return s;
      },
      rc::gen::weightedOneOf<std::string>({{1, rc::gen::just(std::string())}, {2, rc::gen::elementOf(devices)}}),
      rc::gen::weightedElement<std::uint64_t>({{4, 1}, {2, 2}, {1, 3}, {1, script_step::all}}), status);
  auto fault = rc::gen::apply(
      [make](std::string path, bool on) {
        auto s = make(k::fault);
        s.path = std::move(path);
        s.flag = on;
        return s;
      },
      rc::gen::elementOf(devices), rc::gen::weightedElement<bool>({{1, true}, {2, false}}));
  auto hwh =
      rc::gen::map(rc::gen::container<std::vector<activation_result>>(rc::gen::weightedElement<activation_result>({
                       {8, activation_result::ok},
                       {2, activation_result::dev_failed},
                       {2, activation_result::dev_temp_busy},
                       {3, activation_result::retry},
                       {3, activation_result::imm_retry},
                       {2, activation_result::res_temp_unavail},
                       {1, activation_result::dev_offlined},
                       {2, activation_result::nosys},
                       {1, activation_result::timed_out},
                   })),
                   [make](std::vector<activation_result> r) {
                     auto s = make(k::hwh);
                     if (r.empty())
                       r.push_back(activation_result::ok);
                     if (r.size() > 4)
                       r.resize(4);
                     s.results = std::move(r);
                     return s;
                   });
  std::vector<std::uint64_t> sleeps{1, 50, 100, 500, 1000, 2000, 2500};
  if (m.nopath_timeout() > 0)
    sleeps.push_back(std::uint64_t(m.nopath_timeout()) * 1000);
  auto sleep = rc::gen::map(rc::gen::elementOf(sleeps), [make](std::uint64_t ms) {
    auto s = make(k::sleep);
    s.count = ms;
    return s;
  });
  auto suspend = rc::gen::map(rc::gen::arbitrary<bool>(), [make](bool noflush) {
    auto s = make(k::suspend);
    s.flag = noflush;
    return s;
  });
  auto message = rc::gen::map(gen_message(m), [make](std::vector<std::string> w) {
    auto s = make(k::message);
    s.words = std::move(w);
    return s;
  });
  // Engine options (product.md §6): the no-path timeout, seed 003's failure maximum, seed 001's
  // last path.
  auto option = rc::gen::map(
      rc::gen::pair(rc::gen::inRange(0, o.engine_options ? 3 : 1), rc::gen::element<std::uint64_t>(0, 1, 2, 5)),
      [make](auto choice) {
        auto s = make(k::option);
        s.key = choice.first == 0   ? "queue_if_no_path_timeout_secs"
                : choice.first == 1 ? "path_failure_threshold"
                                    : "keep_last_path";
        s.count = choice.second;
        s.flag = choice.second % 2 == 1;
        return s;
      });
  auto reload_with = [make](bool bio) {
    return rc::gen::map(gen_table(table_options{.max_groups = 3, .max_paths = 3, .bio = bio}),
                        [make](generated_table t) {
                          auto s = make(k::reload);
                          s.words = split_script_words(t.text);
                          return s;
                        });
  };
  // Now and then the other queue mode, which must be refused.
  auto reload = rc::gen::weightedOneOf<script_step>({{12, reload_with(m.bio())}, {1, reload_with(!m.bio())}});
  return rc::gen::weightedOneOf<script_step>({
      {std::size_t(o.reload ? 2 : 0), reload},
      {10, io},
      {10, complete},
      {std::size_t(m.has_handler() ? 3 : 0), hwh},
      {7, rc::gen::just(make(k::run))},
      {3, sleep},
      {2, fault},
      {8, message},
      {std::size_t(m.suspended() ? 0 : 1), suspend},
      {std::size_t(m.suspended() ? 6 : 0), rc::gen::just(make(k::resume))},
      {2, option},
      {1, rc::gen::just(make(k::events))},
  });
}

} // namespace mpath::inline v0::testing

#endif
