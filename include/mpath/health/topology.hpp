#pragma once
// `multipath -ll` / `multipathd show topology` for one engine (product.md §8.7, multipathd.md
// (c)), and the same facts in the JSON shape of `multipathd show maps json` / `show map X json`.
//
//   auto topo = mpath::health::topology_of(engine, monitor, "mpatha"); // or topology_of(engine, "mpatha")
//   std::fputs(mpath::health::format_topology(topo).c_str(), stdout);
//   std::string json = mpath::health::show_maps_json(std::span(&topo, 1));
//
// The facts come from what an operator sees too: the engine's TABLE and INFO status text (§8.7:
// "the TABLE's words") and the health monitor's observers (check state, priorities). Without a
// monitor, or before it has checked, the checker column is `undef` and group priorities are 0.

#include <mpath/health/monitor.hpp>
#include <mpath/path_selector.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mpath::inline v0::health {

/// One path line: `<dev> <dm_st> <chk_st>`.
struct topology_path {
  std::string dev;                                  ///< the table token
  bool active = true;                               ///< the engine's state (INFO's A/F)
  std::uint32_t fail_count = 0;                     ///< INFO's per-path failure count
  path_check_state check = path_check_state::undef; ///< the monitor's view
  int priority = -1;                                ///< the prioritizer's answer, -1 when unknown

  std::string_view dm_st() const noexcept { return active ? "active" : "failed"; }
  std::string_view chk_st() const noexcept { return topology_word(check); }
};

/// One group line: `policy='<selector>' prio=<pri> status=<dm_st>`.
struct topology_group {
  std::string selector;          ///< name, argument count and arguments as in TABLE (`round-robin 0`)
  int priority = 0;              ///< §8.5's group priority, 0 when none or no monitor
  std::string dm_st = "enabled"; ///< INFO's A/E/D as `active`/`enabled`/`disabled`
  std::vector<topology_path> paths;
};

/// One map, as `topology NAME` prints it.
struct map_topology {
  std::string name;
  std::string features;  ///< TABLE's feature words with their count (`1 queue_if_no_path`)
  std::string hwhandler; ///< TABLE's handler words with their count (`0`, `1 alua`)
  std::vector<topology_group> groups;
};

/// What `topology_of` needs of an engine: its status text (`mpath::multipath` models it).
template <class E>
concept TopologySource = requires(const E& e) {
  { e.status(status_type::table) } -> std::same_as<std::string>;
};

/// What `topology_of` needs of a health monitor (`health_monitor` models it).
template <class M>
concept TopologyMonitor = requires(const M& m, std::uint32_t group) {
  { m.paths() } -> std::same_as<std::vector<path_report>>;
  { m.group_priority(group) } -> std::same_as<int>;
};

namespace detail {

/// Status words split on blanks only: TABLE and INFO print tokens unescaped.
inline std::vector<std::string_view> status_words(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ')
      ++i;
    std::size_t start = i;
    while (i < text.size() && text[i] != ' ')
      ++i;
    if (i > start)
      out.push_back(text.substr(start, i - start));
  }
  return out;
}

/// A cursor over status words; a missing or non-numeric word reads as 0 so that a short text
/// gives a short topology rather than undefined behaviour.
class status_reader {
public:
  explicit status_reader(std::string text) : text_(std::move(text)), words_(status_words(text_)) {}
  std::string_view word() { return pos_ < words_.size() ? words_[pos_++] : std::string_view(); }
  std::size_t number() {
    std::uint32_t n = 0;
    return mpath::detail::parse_u32(word(), n) ? n : 0;
  }
  /// `<count> <word>{count}` joined by blanks, count included (TABLE's features and handler).
  std::string counted() {
    std::string_view first = word();
    std::string out(first);
    std::uint32_t n = 0;
    if (!mpath::detail::parse_u32(first, n))
      return out;
    for (std::uint32_t k = 0; k < n; ++k)
      (out += ' ') += word();
    return out;
  }
  void skip(std::size_t n) { pos_ = std::min(words_.size(), pos_ + n); }

private:
  std::string text_; ///< owned: the words point into it
  std::vector<std::string_view> words_;
  std::size_t pos_ = 0;
};

/// §8.7: INFO's group letter in `multipath -ll`'s words.
inline std::string group_state(std::string_view letter) {
  if (letter == "A")
    return "active";
  if (letter == "D")
    return "disabled";
  return "enabled";
}

/// Appends `s` as a JSON string literal (quotes included); JSON needs `"`, `\` and control
/// characters escaped, nothing else.
inline void json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    default:
      if (static_cast<unsigned char>(c) < 0x20) {
        out += "\\u00";
        out += hex[(c >> 4) & 0xf];
        out += hex[c & 0xf];
      } else {
        out += c;
      }
    }
  }
  out += '"';
}

} // namespace detail

/// The map's topology from the engine alone (no health layer: checker `undef`, priorities 0 and
/// path priorities -1, §8.7).
template <TopologySource Engine> map_topology topology_of(const Engine& engine, std::string name) {
  map_topology m;
  m.name = std::move(name);
  detail::status_reader t(engine.status(status_type::table));
  detail::status_reader info(engine.status(status_type::info));
  m.features = t.counted();
  m.hwhandler = t.counted();
  std::size_t groups = t.number();
  t.skip(1);                // initial group
  info.skip(info.number()); // features
  info.skip(info.number()); // hardware handler status
  info.skip(2);             // group count, next group
  for (std::size_t g = 0; g < groups; ++g) {
    topology_group group;
    group.selector = std::string(t.word());
    std::size_t nargs = t.number();
    group.selector += ' ' + std::to_string(nargs);
    for (std::size_t k = 0; k < nargs; ++k)
      (group.selector += ' ') += t.word();
    std::size_t paths = t.number();
    std::size_t per_path = t.number();

    group.dm_st = detail::group_state(info.word());
    info.skip(info.number()); // selector status
    (void)info.number();      // path count, the same as TABLE's
    std::size_t info_per_path = info.number();
    for (std::size_t k = 0; k < paths; ++k) {
      topology_path p;
      p.dev = std::string(t.word());
      t.skip(per_path);
      (void)info.word(); // the same token
      p.active = info.word() != "F";
      p.fail_count = std::uint32_t(info.number());
      info.skip(info_per_path);
      group.paths.push_back(std::move(p));
    }
    m.groups.push_back(std::move(group));
  }
  return m;
}

/// The map's topology with the health monitor's check states and priorities (§8.5, §8.7). Pass
/// the monitor of this engine while it runs; it reports every path in table order.
template <TopologySource Engine, TopologyMonitor Monitor>
map_topology topology_of(const Engine& engine, const Monitor& monitor, std::string name) {
  map_topology m = topology_of(engine, std::move(name));
  std::vector<path_report> reports = monitor.paths();
  std::size_t k = 0;
  for (std::size_t g = 0; g < m.groups.size(); ++g) {
    m.groups[g].priority = monitor.group_priority(std::uint32_t(g + 1));
    for (auto& p : m.groups[g].paths) {
      if (k < reports.size() && reports[k].device == p.dev) {
        p.check = reports[k].state;
        p.priority = reports[k].priority;
      }
      ++k;
    }
  }
  return m;
}

/// `multipath -ll`'s layout without the fields a simulation does not have (§8.7), one line per
/// `\n`: the map name, `features=... hwhandler=... wp=rw`, a line per group and one per path, with
/// the path and engine-state columns padded to their widest entry in the map.
inline std::string format_topology(const map_topology& m) {
  std::string out = m.name + "\nfeatures='" + m.features + "' hwhandler='" + m.hwhandler + "' wp=rw\n";
  std::size_t dev_width = 0, state_width = 0;
  for (const auto& g : m.groups)
    for (const auto& p : g.paths) {
      dev_width = std::max(dev_width, p.dev.size());
      state_width = std::max(state_width, p.dm_st().size());
    }
  for (std::size_t g = 0; g < m.groups.size(); ++g) {
    const auto& group = m.groups[g];
    bool last_group = g + 1 == m.groups.size();
    out += last_group ? "`-+- " : "|-+- ";
    out += "policy='" + group.selector + "' prio=" + std::to_string(group.priority) + " status=" + group.dm_st + "\n";
    for (std::size_t k = 0; k < group.paths.size(); ++k) {
      const auto& p = group.paths[k];
      out += last_group ? "  " : "| ";
      out += k + 1 == group.paths.size() ? "`- " : "|- ";
      out += p.dev;
      out.append(dev_width - p.dev.size() + 1, ' ');
      out += p.dm_st();
      out.append(state_width - p.dm_st().size() + 1, ' ');
      out += p.chk_st();
      out += '\n';
    }
  }
  return out;
}

// JSON in multipathd's `show maps json` layout (format version 0.1: three-blank indents, objects
// of an array joined as `},{`, `"key" : value` inside objects). Fields kept, with multipathd's
// names: map "name", "paths" (count), "write_prot" (always "rw", as the text's wp=rw),
// "features", "hwhandler", "path_faults" (the sum of INFO's per-path failure counts);
// group "selector", "pri", "dm_st", "group"; path "dev" (the table token), "dm_st", "chk_st",
// "pri" (-1 until the prioritizer answered, as multipathd's undefined priority).
// Left out, because neither the engine nor the health layer has them: the map's "uuid", "sysfs",
// "dm_st", "action", "vend", "prod", "rev" (device identity and device-mapper state),
// "failback"/"queueing" (settings, not topology; ask the monitor), the statistics counters
// "switch_grp", "map_loads", "total_q_time", "q_timeouts"; the group's and path's "marginal_st"
// (marginal path groups are not implemented); the path's "dev_t", "dev_st", "checker",
// "host_wwnn", "target_wwnn", "host_wwpn", "target_wwpn", "host_adapter", "lun_hex" (SCSI and FC
// facts a table token does not carry).

namespace detail {

inline void json_map(std::string& out, const map_topology& m) {
  std::size_t nr_paths = 0, faults = 0;
  for (const auto& g : m.groups)
    for (const auto& p : g.paths) {
      ++nr_paths;
      faults += p.fail_count;
    }
  auto field = [&out](std::string_view indent, std::string_view key) {
    out += indent;
    json_string(out, key);
    out += " : ";
  };
  const std::string_view i2 = "      ", i3 = "         ", i4 = "            ";
  out += "{\n";
  field(i2, "name");
  json_string(out, m.name);
  out += ",\n";
  field(i2, "paths");
  out += std::to_string(nr_paths) + ",\n";
  field(i2, "write_prot");
  out += "\"rw\",\n";
  field(i2, "features");
  json_string(out, m.features);
  out += ",\n";
  field(i2, "hwhandler");
  json_string(out, m.hwhandler);
  out += ",\n";
  field(i2, "path_faults");
  out += std::to_string(faults) + ",\n";
  out += i2;
  out += "\"path_groups\": [";
  for (std::size_t g = 0; g < m.groups.size(); ++g) {
    const auto& group = m.groups[g];
    out += "{\n";
    field(i3, "selector");
    json_string(out, group.selector);
    out += ",\n";
    field(i3, "pri");
    out += std::to_string(group.priority) + ",\n";
    field(i3, "dm_st");
    json_string(out, group.dm_st);
    out += ",\n";
    field(i3, "group");
    out += std::to_string(g + 1) + ",\n";
    out += i3;
    out += "\"paths\": [";
    for (std::size_t k = 0; k < group.paths.size(); ++k) {
      const auto& p = group.paths[k];
      out += "{\n";
      field(i4, "dev");
      json_string(out, p.dev);
      out += ",\n";
      field(i4, "dm_st");
      json_string(out, p.dm_st());
      out += ",\n";
      field(i4, "chk_st");
      json_string(out, p.chk_st());
      out += ",\n";
      field(i4, "pri");
      out += std::to_string(p.priority) + "\n";
      out += i3;
      out += k + 1 == group.paths.size() ? "}" : "},";
    }
    out += "]\n";
    out += i2;
    out += g + 1 == m.groups.size() ? "}" : "},";
  }
  out += "]\n   }";
}

inline void json_header(std::string& out) { out += "{\n   \"major_version\": 0,\n   \"minor_version\": 1,\n"; }

} // namespace detail

/// `multipathd show maps json`: every map in `maps`, in order.
inline std::string show_maps_json(std::span<const map_topology> maps) {
  std::string out;
  detail::json_header(out);
  out += "   \"maps\": [";
  for (std::size_t i = 0; i < maps.size(); ++i) {
    detail::json_map(out, maps[i]);
    if (i + 1 < maps.size())
      out += ',';
  }
  out += "]\n}\n";
  return out;
}

/// `multipathd show map NAME json`: one map under "map".
inline std::string show_map_json(const map_topology& m) {
  std::string out;
  detail::json_header(out);
  out += "   \"map\":";
  detail::json_map(out, m);
  out += "\n}\n";
  return out;
}

} // namespace mpath::inline v0::health
