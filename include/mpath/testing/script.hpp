#pragma once
// The mpathctl script language (product.md §6), in one place: a line parses into a command value
// (errors as values), a command prints back as a script line, runs on the reference model or on a
// `sim_device`, and `run_script` interprets a whole script over either. mpathctl, its fuzzer, the
// model's scenario test and the property test all use this header, so a failing property-test
// sequence replays with `mpathctl` and prints the same lines.

#include <mpath/error.hpp>
#include <mpath/health/path_checker.hpp>
#include <mpath/health/topology.hpp>
#include <mpath/hw_handler.hpp>
#include <mpath/io.hpp>
#include <mpath/table.hpp>
#include <mpath/testing/health_model.hpp>
#include <mpath/testing/health_sim.hpp>
#include <mpath/testing/model.hpp>
#include <mpath/testing/seed2003_model.hpp>
#include <mpath/testing/seed2003_sim.hpp>
#include <mpath/testing/sim.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <functional>
#include <istream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mpath::inline v0::testing {

// ------------------------------------------------------------------------------------- names

struct script_activation_name {
  std::string_view name;
  activation_result result;
};

/// The `hwh` result words: the nine of the contract first, then the remaining SCSI_DH_* codes and
/// the kernel's spelling of offlined (extensions).
inline constexpr std::array<script_activation_name, 16> script_activation_names{{
    {"ok", activation_result::ok},
    {"dev_failed", activation_result::dev_failed},
    {"dev_temp_busy", activation_result::dev_temp_busy},
    {"retry", activation_result::retry},
    {"imm_retry", activation_result::imm_retry},
    {"res_temp_unavail", activation_result::res_temp_unavail},
    {"offlined", activation_result::dev_offlined},
    {"nosys", activation_result::nosys},
    {"timed_out", activation_result::timed_out},
    {"dev_offlined", activation_result::dev_offlined},
    {"dev_unsupp", activation_result::dev_unsupp},
    {"notconn", activation_result::notconn},
    {"conn_failure", activation_result::conn_failure},
    {"io", activation_result::io},
    {"invalid_io", activation_result::invalid_io},
    {"nomem", activation_result::nomem},
}};

inline std::string_view script_name(activation_result r) {
  for (const auto& a : script_activation_names)
    if (a.result == r)
      return a.name;
  return "ok";
}

inline std::optional<activation_result> parse_script_activation(std::string_view word) {
  for (const auto& a : script_activation_names)
    if (a.name == word)
      return a.result;
  return std::nullopt;
}

/// `complete`'s STATUS words: `ok` or a block status by its name.
inline std::optional<blk_status> parse_script_status(std::string_view word) {
  static constexpr std::array<blk_status, 18> statuses{blk_status::ok,
                                                       blk_status::ioerr,
                                                       blk_status::timeout,
                                                       blk_status::transport,
                                                       blk_status::offline,
                                                       blk_status::resource,
                                                       blk_status::again,
                                                       blk_status::notsupp,
                                                       blk_status::nospc,
                                                       blk_status::target,
                                                       blk_status::resv_conflict,
                                                       blk_status::medium,
                                                       blk_status::protection,
                                                       blk_status::dev_resource,
                                                       blk_status::zone_open_resource,
                                                       blk_status::zone_active_resource,
                                                       blk_status::duration_limit,
                                                       blk_status::inval};
  for (auto s : statuses)
    if (word == to_string(s))
      return s;
  return std::nullopt;
}

// ------------------------------------------------------------------------------------- commands

/// One script command as a value.
struct script_step {
  enum class kind : std::uint8_t {
    io,
    complete,
    fault,
    hwh,
    run,
    sleep,
    suspend,
    resume,
    message,
    option,
    events,
    create,
    remove,
    table,
    status,
    stats,
    echo,
    policy,
    probe,
    prio,
    log,
    reload,
    topology,
    create2003, ///< product.md §9: a device from seed 003's parameters
  };
  static constexpr std::uint64_t all = std::numeric_limits<std::uint64_t>::max();

  kind what = kind::run;
  std::string name;           ///< the device (every command but echo)
  std::string path;           ///< complete, fault: a path token; empty for `all`
  std::uint64_t count = 0;    ///< io: COUNT; complete: COUNT or `all`; sleep: MS; option: SECS or N
  std::uint64_t bytes = 4096; ///< io
  blk_status status = blk_status::ok;
  bool flag = false;                                 ///< fault: on; suspend: noflush; option keep_last_path: on
  std::string key = "queue_if_no_path_timeout_secs"; ///< option: which engine option
  std::vector<activation_result> results;            ///< hwh
  std::vector<std::string> words;                    ///< message, echo; create: the table's words; policy: KEY VALUE...
  health::check_result check = health::check_result::up; ///< probe
  std::int64_t priority = 1;                             ///< prio

  /// create, reload: the table's words as one text.
  std::string params() const {
    std::string out;
    for (const auto& w : words)
      out += (out.empty() ? "" : " ") + w;
    return out;
  }

  /// The script line, for the device called `device`.
  std::string line(std::string_view device) const {
    std::string n(device);
    auto joined = [&](std::string s) {
      for (const auto& w : words)
        s += " " + w;
      return s;
    };
    switch (what) {
    case kind::io: return "io " + n + " " + std::to_string(count) + " " + std::to_string(bytes);
    case kind::complete:
      return "complete " + n + " " + (path.empty() ? std::string("all") : path) + " " +
             (count == all ? std::string("all") : std::to_string(count)) + " " + std::string(to_string(status));
    case kind::fault: return "fault " + n + " " + path + (flag ? " on" : " off");
    case kind::hwh: {
      std::string s = "hwh " + n;
      for (auto r : results)
        s += " " + std::string(script_name(r));
      return s;
    }
    case kind::run: return "run " + n;
    case kind::sleep: return "sleep " + n + " " + std::to_string(count);
    case kind::suspend: return "suspend " + n + (flag ? " noflush" : "");
    case kind::resume: return "resume " + n;
    case kind::message: return joined("message " + n);
    case kind::option:
      return "option " + n + " " + key + " " +
             (key == "keep_last_path" ? (flag ? "on" : "off") : std::to_string(count));
    case kind::events: return "events " + n;
    case kind::create: return joined("create " + n);
    case kind::create2003: return joined("create2003 " + n);
    case kind::reload: return joined("reload " + n);
    case kind::topology: return "topology " + n;
    case kind::remove: return "remove " + n;
    case kind::table: return "table " + n;
    case kind::status: return "status " + n;
    case kind::stats: return "stats " + n;
    case kind::echo: return joined("echo");
    case kind::policy: return joined("policy " + n);
    case kind::probe: return "probe " + n + " " + path + " " + std::string(health::to_string(check));
    case kind::prio: return "prio " + n + " " + path + " " + std::to_string(priority);
    case kind::log: return "log " + n;
    }
    return {};
  }
  /// The script line for its own device.
  std::string line() const { return line(name); }
};

/// What a command word needs: its synopsis and argument counts (NAME included).
struct script_command_spec {
  std::string_view word;
  std::string_view synopsis;
  std::size_t min_args;
  std::size_t max_args;
  bool needs_device; ///< NAME must name an existing device
  script_step::kind what;
};

inline constexpr std::size_t script_many_args = std::numeric_limits<std::size_t>::max();

namespace detail {
inline constexpr std::size_t script_many = script_many_args;
inline constexpr script_command_spec script_commands[] = {
    {"create", "create NAME PARAMS...", 2, script_many, false, script_step::kind::create},
    {"create2003", "create2003 NAME PARAMS...", 2, script_many, false, script_step::kind::create2003},
    {"reload", "reload NAME PARAMS...", 2, script_many, true, script_step::kind::reload},
    {"topology", "topology NAME", 1, 1, true, script_step::kind::topology},
    {"remove", "remove NAME", 1, 1, true, script_step::kind::remove},
    {"table", "table NAME", 1, 1, true, script_step::kind::table},
    {"status", "status NAME", 1, 1, true, script_step::kind::status},
    {"message", "message NAME WORDS...", 2, script_many, true, script_step::kind::message},
    {"suspend", "suspend NAME [noflush]", 1, 2, true, script_step::kind::suspend},
    {"resume", "resume NAME", 1, 1, true, script_step::kind::resume},
    {"io", "io NAME COUNT [BYTES]", 2, 3, true, script_step::kind::io},
    {"complete", "complete NAME PATH|all COUNT|all [STATUS]", 3, 4, true, script_step::kind::complete},
    {"fault", "fault NAME PATH on|off", 3, 3, true, script_step::kind::fault},
    {"hwh", "hwh NAME RESULT...", 2, script_many, true, script_step::kind::hwh},
    {"run", "run NAME", 1, 1, true, script_step::kind::run},
    {"sleep", "sleep NAME MS", 2, 2, true, script_step::kind::sleep},
    {"stats", "stats NAME", 1, 1, true, script_step::kind::stats},
    {"events", "events NAME", 1, 1, true, script_step::kind::events},
    {"option", "option NAME queue_if_no_path_timeout_secs SECS|path_failure_threshold N|keep_last_path on|off", 3, 3,
     true, script_step::kind::option},
    {"echo", "echo WORDS...", 0, script_many, false, script_step::kind::echo},
    {"policy", "policy NAME KEY VALUE...", 3, script_many, true, script_step::kind::policy},
    {"probe", "probe NAME PATH up|down|ghost|pending|timeout|shaky", 3, 3, true, script_step::kind::probe},
    {"prio", "prio NAME PATH N", 3, 3, true, script_step::kind::prio},
    {"log", "log NAME", 1, 1, true, script_step::kind::log},
};
} // namespace detail

/// The command called `word`, or null.
inline const script_command_spec* find_script_command(std::string_view word) noexcept {
  for (const auto& c : detail::script_commands)
    if (c.word == word)
      return &c;
  return nullptr;
}

/// The command of a step's kind.
inline const script_command_spec& script_command_of(script_step::kind what) noexcept {
  for (const auto& c : detail::script_commands)
    if (c.what == what)
      return c;
  return detail::script_commands[0];
}

namespace detail {

/// Exactly one unsigned decimal number filling the word, at most `max`.
inline std::optional<std::uint64_t> script_number(std::string_view word, std::uint64_t max) {
  if (word.empty())
    return std::nullopt;
  for (char c : word)
    if (c < '0' || c > '9')
      return std::nullopt;
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
  if (ec != std::errc{} || ptr != word.data() + word.size() || v > max)
    return std::nullopt;
  return v;
}

inline constexpr std::uint64_t script_max_io_count = 1'000'000;
inline constexpr std::uint64_t script_max_u32 = std::numeric_limits<std::uint32_t>::max();

} // namespace detail

/// Parses one command's words (the first is the command). A usage problem is an error whose text
/// is what mpathctl prints after `usage: line N: `. Checks that need the device (does PATH belong
/// to it, has it a handler) are `script_target_problem`'s.
inline result<script_step> parse_script_words(std::span<const std::string> words) {
  if (words.empty())
    return einval("empty command");
  const script_command_spec* spec = find_script_command(words[0]);
  if (!spec)
    return einval("unknown command '" + words[0] + "' (mpathctl --help lists the commands)");
  auto args = words.subspan(1);
  if (args.size() < spec->min_args || args.size() > spec->max_args)
    return einval(std::string(spec->synopsis));
  auto bad = [&](const std::string& what) { return einval(what + " (" + std::string(spec->synopsis) + ")"); };

  using k = script_step::kind;
  script_step s;
  s.what = spec->what;
  if (spec->what != k::echo)
    s.name = args[0];
  switch (spec->what) {
  case k::create:
  case k::create2003:
  case k::reload:
  case k::policy:
  case k::message: s.words.assign(args.begin() + 1, args.end()); break;
  case k::probe:
    s.path = args[1];
    if (!health::parse_check_result(args[2], s.check))
      return bad("'" + args[2] + "' is not up, down, ghost, pending, timeout or shaky");
    break;
  case k::prio: {
    s.path = args[1];
    auto n = detail::script_number(args[2], std::numeric_limits<std::int32_t>::max());
    if (!n)
      return bad("N must be a number from 0 to 2147483647");
    s.priority = std::int64_t(*n);
    break;
  }
  case k::echo: s.words.assign(args.begin(), args.end()); break;
  case k::suspend:
    if (args.size() == 2 && args[1] != "noflush")
      return bad("'" + args[1] + "' is not noflush");
    s.flag = args.size() == 2;
    break;
  case k::io: {
    auto count = detail::script_number(args[1], detail::script_max_io_count);
    if (!count)
      return bad("COUNT must be a number from 0 to " + std::to_string(detail::script_max_io_count));
    s.count = *count;
    if (args.size() == 3) {
      auto b = detail::script_number(args[2], detail::script_max_u32);
      if (!b)
        return bad("BYTES must be a number from 0 to 4294967295");
      s.bytes = *b;
    }
    break;
  }
  case k::complete: {
    s.path = args[1] == "all" ? std::string() : args[1];
    s.count = script_step::all;
    if (args[2] != "all") {
      auto n = detail::script_number(args[2], detail::script_max_u32);
      if (!n)
        return bad("COUNT must be a number or all");
      s.count = *n;
    }
    if (args.size() == 4) {
      auto st = parse_script_status(args[3]);
      if (!st)
        return bad("unknown STATUS '" + args[3] + "'");
      s.status = *st;
    }
    break;
  }
  case k::fault:
    if (args[2] != "on" && args[2] != "off")
      return bad("'" + args[2] + "' is not on or off");
    s.path = args[1];
    s.flag = args[2] == "on";
    break;
  case k::hwh:
    for (const auto& word : args.subspan(1)) {
      auto r = parse_script_activation(word);
      if (!r)
        return bad("unknown RESULT '" + word + "'");
      s.results.push_back(*r);
    }
    break;
  case k::sleep: {
    auto ms = detail::script_number(args[1], detail::script_max_u32);
    if (!ms)
      return bad("MS must be a number from 0 to 4294967295");
    s.count = *ms;
    break;
  }
  case k::option: {
    s.key = args[1];
    if (s.key == "keep_last_path") {
      if (args[2] != "on" && args[2] != "off")
        return bad("'" + args[2] + "' is not on or off");
      s.flag = args[2] == "on";
      break;
    }
    if (s.key != "queue_if_no_path_timeout_secs" && s.key != "path_failure_threshold")
      return bad("unknown option '" + args[1] + "'");
    auto n = detail::script_number(args[2], detail::script_max_u32);
    if (!n)
      return bad(std::string(s.key == "path_failure_threshold" ? "N" : "SECS") +
                 " must be a number from 0 to 4294967295");
    s.count = *n;
    break;
  }
  default: break;
  }
  return s;
}

/// A script line's words: split on blanks, nothing unescaped (a path token is taken as written).
inline std::vector<std::string> split_script_words(std::string_view line) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; };
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && blank(line[i]))
      ++i;
    std::size_t start = i;
    while (i < line.size() && !blank(line[i]))
      ++i;
    if (i > start)
      words.emplace_back(line.substr(start, i - start));
  }
  return words;
}

/// A script line: nothing for a blank line or a comment, else the command or its usage problem.
inline result<std::optional<script_step>> parse_script_line(std::string_view line) {
  auto words = split_script_words(line);
  if (words.empty() || words.front().front() == '#')
    return std::optional<script_step>();
  auto s = parse_script_words(words);
  if (!s)
    return std::move(s).err();
  return std::optional<script_step>(std::move(*s));
}

inline std::string script_error_line(int code, std::string_view text) {
  return "error: " + errno_name(code) + ": " + std::string(text);
}

// ------------------------------------------------------------------------------------- targets

/// `status`, `table` and `stats` of a device as mpathctl prints them (trailing blanks removed).
inline std::string strip_trailing_blank(std::string s) {
  while (!s.empty() && s.back() == ' ')
    s.pop_back();
  return s;
}

namespace detail {
template <class Stats, class Paths>
void script_stats_lines(const Stats& s, const Paths& paths, std::vector<std::string>& out) {
  out.push_back("submitted=" + std::to_string(s.submitted) + " ok=" + std::to_string(s.ok) +
                " failed=" + std::to_string(s.failed) + " queued=" + std::to_string(s.queued) +
                " inflight=" + std::to_string(s.inflight));
  for (const auto& p : paths)
    out.push_back(p.device + " dispatched=" + std::to_string(p.dispatched) +
                  " inflight=" + std::to_string(p.in_flight));
}
} // namespace detail

namespace detail {
/// format_topology's text as lines.
inline std::vector<std::string> topology_lines(const health::map_topology& t) {
  std::vector<std::string> out;
  std::string text = health::format_topology(t);
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos)
      end = text.size();
    out.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}
/// The kernel model as a TopologySource: its TABLE and INFO text.
struct model_status_view {
  const reference_model& m;
  std::string status(status_type t) const { return t == status_type::table ? m.table_status() : m.info(); }
};
} // namespace detail

/// TABLE, INFO, then the `stats` lines: everything a script can observe of a device.
inline std::vector<std::string> observe(const reference_model& m) {
  std::vector<std::string> out{strip_trailing_blank(m.table_status()), strip_trailing_blank(m.info())};
  auto s = m.stats();
  detail::script_stats_lines(s, s.paths, out);
  return out;
}

template <class Traits> std::vector<std::string> observe(sim_device<Traits>& d) {
  std::vector<std::string> out{strip_trailing_blank(d.engine().status(status_type::table)),
                               strip_trailing_blank(d.engine().status(status_type::info))};
  detail::script_stats_lines(d.stats(), d.live_paths(), out);
  return out;
}

/// The device-dependent usage problem of a step (a PATH not of the device, `hwh` without a
/// handler), as `parse_script_words` words it; nothing when the step can run.
inline std::optional<std::string> script_target_problem(const std::vector<std::string>& paths, bool has_handler,
                                                        const script_step& s) {
  using k = script_step::kind;
  std::string synopsis = " (" + std::string(script_command_of(s.what).synopsis) + ")";
  bool path_needed =
      (s.what == k::complete && !s.path.empty()) || s.what == k::fault || s.what == k::probe || s.what == k::prio;
  if (path_needed && std::find(paths.begin(), paths.end(), s.path) == paths.end())
    return "'" + s.path + "' is not a path of " + s.name + synopsis;
  if (s.what == k::hwh && !has_handler)
    return "device '" + s.name + "' has no hardware handler" + synopsis;
  return std::nullopt;
}

inline std::optional<std::string> script_target_problem(const reference_model& m, const script_step& s) {
  return script_target_problem(m.devices(), m.has_handler(), s);
}

template <class Traits> std::optional<std::string> script_target_problem(sim_device<Traits>& d, const script_step& s) {
  std::vector<std::string> paths;
  for (const auto& p : d.backend().paths()) // every path the device has had: I/O may still be on it
    paths.push_back(p.device);
  return script_target_problem(paths, d.handler() != nullptr, s);
}

template <class Traits>
std::optional<std::string> script_target_problem(health_sim_device<Traits>& d, const script_step& s) {
  return script_target_problem(d.device(), s);
}

template <class Traits> std::vector<std::string> observe(health_sim_device<Traits>& d) { return observe(d.device()); }

inline std::optional<std::string> script_target_problem(const health_reference_model& m, const script_step& s) {
  return script_target_problem(m.kernel(), s);
}

inline std::vector<std::string> observe(const health_reference_model& m) { return observe(m.kernel()); }

/// Runs a device-level step on the model; returns what mpathctl prints.
/// `option NAME KEY VALUE` on a model (reference_model or health_reference_model).
template <class Model> void apply_option(Model& m, const script_step& s) {
  if (s.key == "path_failure_threshold")
    m.set_path_failure_threshold(std::uint32_t(s.count));
  else if (s.key == "keep_last_path")
    m.set_keep_last_path(s.flag);
  else
    m.set_nopath_timeout(std::uint32_t(s.count));
}

inline std::vector<std::string> run_step(reference_model& m, const script_step& s) {
  using k = script_step::kind;
  switch (s.what) {
  case k::io: m.io(std::size_t(s.count), s.bytes); break;
  case k::complete:
    m.complete(s.path, s.count == script_step::all ? ~std::size_t{0} : std::size_t(s.count), s.status);
    break;
  case k::fault: m.fault(s.path, s.flag); break;
  case k::hwh: m.hwh(s.results); break;
  case k::run: m.run(); break;
  case k::sleep: m.sleep(s.count); break;
  case k::suspend: m.suspend(s.flag); break;
  case k::resume: m.resume(); break;
  case k::message: {
    auto r = m.message(s.words);
    return {r.code == 0 ? std::string("ok") : script_error_line(r.code, r.text)};
  }
  case k::option: apply_option(m, s); break;
  case k::reload: {
    auto t = parse_table(s.params());
    if (!t)
      return {script_error_line(t.err().code, t.err().text)};
    auto r = m.reload(model_table::from(*t));
    if (r.code != 0)
      return {script_error_line(r.code, r.text)};
    break;
  }
  case k::topology: return detail::topology_lines(health::topology_of(detail::model_status_view{m}, s.name));
  case k::events: return m.take_events();
  case k::table: return {observe(m)[0]};
  case k::status: return {observe(m)[1]};
  case k::stats: {
    auto lines = observe(m);
    return {lines.begin() + 2, lines.end()};
  }
  default: break; // create, remove, echo: the interpreter's
  }
  return {};
}

/// Runs a device-level step on a simulated device as mpathctl does; returns what it prints.
template <class Traits> std::vector<std::string> run_step(sim_device<Traits>& d, const script_step& s) {
  using k = script_step::kind;
  switch (s.what) {
  case k::io: d.io(std::size_t(s.count), s.bytes); break;
  case k::complete:
    d.complete(s.path, s.count == script_step::all ? ~std::size_t{0} : std::size_t(s.count), s.status);
    break;
  case k::fault: d.backend().set_fault(s.path, s.flag); break;
  case k::hwh:
    if (auto* h = d.handler())
      for (auto r : s.results)
        h->push(r);
    break;
  case k::run: d.run(); break;
  case k::sleep: d.sleep(s.count); break;
  case k::suspend: d.suspend(s.flag); break;
  case k::resume: d.resume(); break;
  case k::message: {
    auto r = d.engine().message(std::span<const std::string>(s.words));
    return {r ? std::string("ok") : script_error_line(r.err().code, r.err().text)};
  }
  case k::option:
    if (s.key == "path_failure_threshold")
      d.engine().set_path_failure_threshold(std::uint32_t(s.count));
    else if (s.key == "keep_last_path")
      d.engine().set_keep_last_path(s.flag);
    else
      d.engine().set_queue_if_no_path_timeout(std::uint32_t(s.count));
    break;
  case k::reload:
    if (auto r = d.reload(s.params()); !r)
      return {script_error_line(r.err().code, r.err().text)};
    break;
  case k::topology: return detail::topology_lines(health::topology_of(d.engine(), s.name));
  case k::events: return d.take_events();
  case k::table: return {strip_trailing_blank(d.engine().status(status_type::table))};
  case k::status: return {strip_trailing_blank(d.engine().status(status_type::info))};
  case k::stats: {
    std::vector<std::string> out;
    detail::script_stats_lines(d.stats(), d.live_paths(), out);
    return out;
  }
  default: break; // create, remove, echo: the interpreter's
  }
  return {};
}

/// Runs a step on a simulated device with its health layer, as mpathctl does.
template <class Traits> std::vector<std::string> run_step(health_sim_device<Traits>& d, const script_step& s) {
  using k = script_step::kind;
  switch (s.what) {
  case k::policy: {
    auto r = d.policy(s.words[0], std::span<const std::string>(s.words).subspan(1));
    if (!r)
      return {script_error_line(r.err().code, r.err().text)};
    return {};
  }
  case k::probe: d.probe(s.path, s.check); return {};
  case k::prio: d.prio(s.path, int(s.priority)); return {};
  case k::log: return d.take_log();
  case k::sleep: d.sleep(s.count); return {}; // stops at each tick for a regrouping reload
  case k::reload:
    if (auto r = d.reload(s.params()); !r)
      return {script_error_line(r.err().code, r.err().text)};
    return {};
  case k::topology:
    if (auto* monitor = d.monitor())
      return detail::topology_lines(health::topology_of(d.device().engine(), *monitor, s.name));
    return detail::topology_lines(health::topology_of(d.device().engine(), s.name));
  default: return run_step(d.device(), s);
  }
}

/// Runs a step on the model of the target with its health layer (health_model.hpp).
inline std::vector<std::string> run_step(health_reference_model& m, const script_step& s) {
  using k = script_step::kind;
  switch (s.what) {
  case k::policy: {
    auto problem = m.policy(s.words[0], std::span<const std::string>(s.words).subspan(1));
    if (problem)
      return {script_error_line(EINVAL, *problem)};
    return {};
  }
  case k::probe: m.probe(s.path, s.check); return {};
  case k::prio: m.prio(s.path, int(s.priority)); return {};
  case k::log: return m.take_log();
  case k::reload: {
    auto t = parse_table(s.params());
    if (!t)
      return {script_error_line(t.err().code, t.err().text)};
    if (auto r = m.reload(model_table::from(*t)); r.code != 0)
      return {script_error_line(r.code, r.text)};
    return {};
  }
  case k::topology: return m.topology();
  case k::io: m.io(std::size_t(s.count), s.bytes); return {};
  case k::complete:
    m.complete(s.path, s.count == script_step::all ? ~std::size_t{0} : std::size_t(s.count), s.status);
    return {};
  case k::fault: m.fault(s.path, s.flag); return {};
  case k::hwh: m.hwh(s.results); return {};
  case k::run: m.run(); return {};
  case k::sleep: m.sleep(s.count); return {};
  case k::suspend: m.suspend(s.flag); return {};
  case k::resume: m.resume(); return {};
  case k::message: {
    auto r = m.message(s.words);
    return {r.code == 0 ? std::string("ok") : script_error_line(r.code, r.text)};
  }
  case k::option: apply_option(m, s); return {};
  case k::events: return m.take_events();
  default: return run_step(m.kernel(), s); // table, status, stats
  }
}

// ------------------------------------------------------------------------------------- create2003

/// A device that `create2003` made (product.md §9). It has a type of its own, beside the script's
/// Target, so that a target without seed 003 support (the reference models) needs nothing for it.
class script_device_2003 {
public:
  virtual ~script_device_2003() = default;
  /// As script_target_problem: a usage problem of `s` on this device, or nothing.
  virtual std::optional<std::string> problem(const script_step& s) = 0;
  /// Runs a device-level step; returns what mpathctl prints.
  virtual std::vector<std::string> run(const script_step& s) = 0;
};

/// Makes a `create2003` device from the seed's parameters, or the seed's (then the engine's) error.
using script_factory_2003 = std::function<result<std::unique_ptr<script_device_2003>>(std::string_view params)>;

namespace detail {
/// The commands a create2003 device refuses, whichever runs it: the multipathd half (`policy`,
/// `prio`, `log`, `topology`) and `reload` do not apply, the seed's own daemon being its
/// reactivation.
inline std::optional<std::string> seed2003_inapplicable(const script_step& s) {
  using k = script_step::kind;
  if (s.what == k::policy || s.what == k::prio || s.what == k::log || s.what == k::topology || s.what == k::reload)
    return "'" + std::string(script_command_of(s.what).word) + "' does not apply to a create2003 device (" +
           std::string(script_command_of(s.what).synopsis) + ")";
  return std::nullopt;
}
} // namespace detail

/// The engine's seed 003 device (seed2003_sim.hpp) as a script device: the sim device's steps,
/// the seed's TABLE and INFO for `table` and `status`, `stats` in the seed's table order, and
/// `probe` setting what a test read finds.
template <class Traits = seed2003::traits<sim_traits>> class seed2003_script_device final : public script_device_2003 {
public:
  explicit seed2003_script_device(std::unique_ptr<seed2003_sim_device<Traits>> d) : d_(std::move(d)) {}

  std::optional<std::string> problem(const script_step& s) override {
    if (auto p = detail::seed2003_inapplicable(s))
      return p;
    return script_target_problem(d_->device(), s);
  }

  std::vector<std::string> run(const script_step& s) override {
    using k = script_step::kind;
    switch (s.what) {
    case k::table: return {strip_trailing_blank(d_->status(status_type::table))};
    case k::status: return {strip_trailing_blank(d_->status(status_type::info))};
    case k::probe: d_->probe(s.path, s.check); return {};
    case k::stats: {
      // The engine's groups order paths by priority; the seed's list is the order to print.
      auto all = d_->device().backend().paths();
      std::vector<sim_backend::path_state> ordered;
      for (const auto& p : d_->front_end().parameters().paths)
        for (const auto& b : all)
          if (b.device == p.device)
            ordered.push_back(b);
      std::vector<std::string> out;
      detail::script_stats_lines(d_->device().stats(), ordered, out);
      return out;
    }
    default: return run_step(d_->device(), s);
    }
  }

private:
  std::unique_ptr<seed2003_sim_device<Traits>> d_;
};

/// The reference model of a create2003 device (seed2003_model.hpp) as a script device.
class seed2003_model_script_device final : public script_device_2003 {
public:
  explicit seed2003_model_script_device(const seed2003::params& p) : m_(p) {}

  std::optional<std::string> problem(const script_step& s) override {
    if (auto p = detail::seed2003_inapplicable(s))
      return p;
    const auto& c = script_command_of(s.what);
    if (!seed2003_model::modelled(c.word, s.words, s.status))
      return "'" + std::string(c.word) + "' is not modelled for a create2003 device (" + std::string(c.synopsis) + ")";
    return script_target_problem(m_.devices(), false, s);
  }

  std::vector<std::string> run(const script_step& s) override {
    using k = script_step::kind;
    switch (s.what) {
    case k::io: m_.io(std::size_t(s.count), s.bytes); break;
    case k::complete:
      m_.complete(s.path, s.count == script_step::all ? ~std::size_t{0} : std::size_t(s.count), s.status);
      break;
    case k::fault: m_.fault(s.path, s.flag); break;
    case k::probe: m_.probe(s.path, s.check); break;
    case k::run: m_.run(); break;
    case k::sleep: m_.sleep(s.count); break;
    case k::message: {
      auto problem = m_.message(s.words);
      return {problem.empty() ? std::string("ok") : script_error_line(EINVAL, problem)};
    }
    case k::events: return m_.take_events();
    case k::table: return {strip_trailing_blank(m_.table_status())};
    case k::status: return {strip_trailing_blank(m_.info())};
    case k::stats: {
      std::vector<std::string> out;
      auto st = m_.stats();
      detail::script_stats_lines(st, st.paths, out);
      return out;
    }
    default: break;
    }
    return {};
  }

private:
  seed2003_model m_;
};

/// `create2003` on the reference model, for the model's scenario test.
inline result<std::unique_ptr<script_device_2003>> make_seed2003_model_target(std::string_view params) {
  auto p = seed2003::parse_params(params);
  if (!p)
    return std::move(p).err();
  return std::unique_ptr<script_device_2003>(std::make_unique<seed2003_model_script_device>(*p));
}

/// `create2003` over the engine, what mpathctl uses.
inline result<std::unique_ptr<script_device_2003>> make_seed2003_sim_target(std::string_view params) {
  auto d = seed2003_sim_device<>::create(params);
  if (!d)
    return std::move(d).err();
  return std::unique_ptr<script_device_2003>(std::make_unique<seed2003_script_device<>>(std::move(*d)));
}

// ------------------------------------------------------------------------------------- scripts

/// Makes the device NAME from `create`'s parameters, or the constructor's error.
template <class Target>
using script_factory = std::function<result<std::unique_ptr<Target>>(std::string_view name, std::string_view params)>;

/// The model as a script target: the library's grammar, then the model.
inline result<std::unique_ptr<reference_model>> make_model_target(std::string_view, std::string_view params) {
  auto t = parse_table(params);
  if (!t)
    return std::move(t).err();
  return std::make_unique<reference_model>(model_table::from(*t));
}

/// The model with its health layer as a script target: NAME is the map in the log.
inline result<std::unique_ptr<health_reference_model>> make_health_model_target(std::string_view name,
                                                                                std::string_view params) {
  auto t = parse_table(params);
  if (!t)
    return std::move(t).err();
  return std::make_unique<health_reference_model>(model_table::from(*t), std::string(name));
}

/// A simulated device as a script target.
template <class Traits = sim_traits>
result<std::unique_ptr<sim_device<Traits>>> make_sim_target(std::string_view, std::string_view params) {
  return sim_device<Traits>::create(params);
}

/// A simulated device with its health layer (what mpathctl uses): NAME is the map in the log.
template <class Traits = sim_traits>
result<std::unique_ptr<health_sim_device<Traits>>> make_health_sim_target(std::string_view name,
                                                                          std::string_view params) {
  return health_sim_device<Traits>::create(params, std::string(name));
}

/// Interprets script lines over devices of type Target, printing what mpathctl prints.
template <class Target> class script_interpreter {
public:
  /// `make2003` makes `create2003`'s devices; without one, create2003 is a usage error.
  script_interpreter(std::ostream& out, script_factory<Target> make, script_factory_2003 make2003 = {})
      : out_(out), make_(std::move(make)), make2003_(std::move(make2003)) {}

  /// Runs line `number` of a script.
  void line(std::string_view text, std::size_t number) {
    line_ = number;
    auto words = split_script_words(text);
    if (words.empty() || words.front().front() == '#')
      return;
    // What needs no parsing comes first, in mpathctl's order: the command, its argument count,
    // then whether NAME exists, then the arguments themselves.
    const script_command_spec* spec = find_script_command(words[0]);
    std::size_t nargs = words.size() - 1;
    if (spec && nargs >= spec->min_args && nargs <= spec->max_args && spec->needs_device && !exists(words[1])) {
      usage("no device named '" + words[1] + "' (create it first)");
      return;
    }
    auto step = parse_script_words(words);
    if (!step) {
      usage(step.err().text);
      return;
    }
    run(*step);
  }

  /// Runs one parsed command.
  void run(const script_step& s) {
    using k = script_step::kind;
    if (s.what == k::echo) {
      std::string joined;
      for (const auto& w : s.words)
        joined += (joined.empty() ? "" : " ") + w;
      out_ << joined << '\n';
      return;
    }
    if (s.what == k::create || s.what == k::create2003) {
      if (exists(s.name)) {
        usage("device '" + s.name + "' already exists (" + std::string(script_command_of(s.what).synopsis) + ")");
        return;
      }
      if (s.what == k::create2003) {
        create2003(s);
        return;
      }
      std::string params;
      for (const auto& w : s.words)
        params += (params.empty() ? "" : " ") + w;
      auto made = make_(s.name, params);
      if (!made) {
        out_ << script_error_line(made.err().code, made.err().text) << '\n';
        return;
      }
      devices_.emplace(s.name, std::move(*made));
      return;
    }
    if (auto seed = devices2003_.find(s.name); seed != devices2003_.end()) {
      run2003(seed, s);
      return;
    }
    auto it = devices_.find(s.name);
    if (it == devices_.end()) {
      usage("no device named '" + s.name + "' (create it first)");
      return;
    }
    if (s.what == k::remove) {
      devices_.erase(it);
      return;
    }
    if (auto problem = script_target_problem(*it->second, s)) {
      usage(*problem);
      return;
    }
    for (const auto& l : run_step(*it->second, s))
      out_ << l << '\n';
  }

  bool usage_seen() const noexcept { return usage_seen_; }
  Target* device(std::string_view name) {
    auto it = devices_.find(name);
    return it == devices_.end() ? nullptr : it->second.get();
  }

private:
  void usage(const std::string& text) {
    out_ << "usage: line " << line_ << ": " << text << '\n';
    usage_seen_ = true;
  }

  bool exists(std::string_view name) const { return devices_.count(name) != 0 || devices2003_.count(name) != 0; }

  void create2003(const script_step& s) {
    if (!make2003_) {
      usage("create2003 is not supported by this target (" + std::string(script_command_of(s.what).synopsis) + ")");
      return;
    }
    auto made = make2003_(s.params());
    if (!made) {
      out_ << script_error_line(made.err().code, made.err().text) << '\n';
      return;
    }
    devices2003_.emplace(s.name, std::move(*made));
  }

  template <class It> void run2003(It it, const script_step& s) {
    if (s.what == script_step::kind::remove) {
      devices2003_.erase(it);
      return;
    }
    if (auto problem = it->second->problem(s)) {
      usage(*problem);
      return;
    }
    for (const auto& l : it->second->run(s))
      out_ << l << '\n';
  }

  std::ostream& out_;
  script_factory<Target> make_;
  script_factory_2003 make2003_;
  std::map<std::string, std::unique_ptr<Target>, std::less<>> devices_;
  std::map<std::string, std::unique_ptr<script_device_2003>, std::less<>> devices2003_;
  std::size_t line_ = 0;
  bool usage_seen_ = false;
};

/// Runs a whole script; returns mpathctl's exit status: 2 if a line was not understood, else 0.
/// `make2003` makes `create2003`'s devices (none: create2003 is a usage error).
template <class Target>
int run_script(std::istream& in, std::ostream& out, script_factory<Target> make, script_factory_2003 make2003 = {}) {
  script_interpreter<Target> interp(out, std::move(make), std::move(make2003));
  std::string text;
  for (std::size_t number = 1; std::getline(in, text); ++number)
    interp.line(text, number);
  out.flush();
  return interp.usage_seen() ? 2 : 0;
}

} // namespace mpath::inline v0::testing
