#pragma once
// Path grouping policies (product.md §8.5, multipathd.md b.5): multipathd's
// `path_grouping_policy`, as functions that take a device's current table and what is known of
// each path (priority, usable, ALUA target port group) and build the table to reload it with.
//
//   using namespace mpath::health;
//   auto t = mpath::parse_table(engine.status(mpath::status_type::table));
//   std::vector<path_prio> facts{{"8:16", 50, true, {}}, {"8:32", 10, true, {}}};
//   auto changes = regrouping_changes(*t, grouping_policy::group_by_prio, facts);
//   if (changes && *changes)
//     reload(*regroup_params(*t, grouping_policy::group_by_prio, facts));
//
// The rules, all from §8.5: `failover` puts each path in a group of its own, `multibus` every
// path in one group, `group_by_prio` one group per distinct path priority, `group_by_tpg` one
// group per ALUA target port group id. A group's priority is the integer average of its usable
// paths' priorities (none when no path is usable). Groups are ordered by priority, highest first;
// a group without one comes after every group with one; ties go to the group with more usable
// paths, then to the group whose first path comes first in the table. Inside a group the paths
// keep table order. Every group takes the first group's selector and selector arguments, every
// path keeps its per-path arguments, the initial group is group 1 (the best group, since the
// order above is §8.5's best-group order), and the features and hardware handler (with its
// arguments) are kept.

#include <mpath/detail/text.hpp>
#include <mpath/error.hpp>
#include <mpath/health/settings.hpp>
#include <mpath/selectors.hpp>
#include <mpath/table.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mpath::inline v0::health {

/// multipathd's `path_grouping_policy` values that this library implements (multipathd.md b.5;
/// `group_by_serial` and `group_by_node_name` need SCSI/FC facts a table token does not carry).
enum class grouping_policy : std::uint8_t { failover, multibus, group_by_prio, group_by_tpg };

/// The multipath.conf word of a policy.
constexpr std::string_view policy_name(grouping_policy p) noexcept {
  switch (p) {
  case grouping_policy::failover: return "failover";
  case grouping_policy::multibus: return "multibus";
  case grouping_policy::group_by_prio: return "group_by_prio";
  case grouping_policy::group_by_tpg: return "group_by_tpg";
  }
  return "failover";
}

/// A policy by its multipath.conf word (exact, lower case, as multipathd matches it).
inline result<grouping_policy> parse_grouping_policy(std::string_view word) {
  for (auto p : {grouping_policy::failover, grouping_policy::multibus, grouping_policy::group_by_prio,
                 grouping_policy::group_by_tpg})
    if (word == policy_name(p))
      return p;
  return einval("unknown path_grouping_policy: " + std::string(word) +
                " (expected failover, multibus, group_by_prio or group_by_tpg)");
}

/// The policy a `path_grouping_policy` setting asks for; nothing for `none` (keep the table's
/// groups, §8.2).
constexpr std::optional<grouping_policy> grouping_policy_of(pgpolicy p) noexcept {
  switch (p) {
  case pgpolicy::none: return std::nullopt;
  case pgpolicy::failover: return grouping_policy::failover;
  case pgpolicy::multibus: return grouping_policy::multibus;
  case pgpolicy::group_by_prio: return grouping_policy::group_by_prio;
  }
  return std::nullopt;
}

/// What the grouping needs to know of one path, named by its table token: multipathd's
/// `pp->priority`, whether the path is usable now (§8.5 counts only usable paths in a group's
/// priority) and, for `group_by_tpg`, `pp->tpg_id`.
struct path_prio {
  std::string device;
  std::optional<int> priority; ///< required for every path of the table
  bool usable = true;
  std::optional<int> tpg_id; ///< required by group_by_tpg only
};

namespace detail {

/// One path of the current table with what the caller said of it.
struct grouping_path {
  const path_spec* spec;
  int priority;
  bool usable;
  int key; ///< what the policy groups by
};

struct grouping_bucket {
  int key = 0;
  std::vector<const grouping_path*> paths;
  long long sum = 0; ///< priorities of the usable paths
  std::uint32_t usable = 0;
  std::optional<int> priority() const {
    if (usable == 0)
      return std::nullopt;
    return int(sum / (long long)usable); // §8.5's integer average (truncates toward zero)
  }
};

/// True when `a` should come before `b` (§8.5's best-group order; a stable sort keeps table
/// order for the rest).
inline bool better_bucket(const grouping_bucket& a, const grouping_bucket& b) {
  auto pa = a.priority(), pb = b.priority();
  if (pa.has_value() != pb.has_value())
    return pa.has_value();
  if (pa && *pa != *pb)
    return *pa > *pb;
  return a.usable > b.usable;
}

/// The parameter text of `t` for `create`/`reload`: `format_table`'s canonical text, with the
/// hardware handler's arguments put back (§8.5 keeps the handler; `format_table` prints it as
/// TABLE status does, without arguments).
inline std::string reload_params(const table& t) {
  std::string text = format_table(t);
  if (t.hw_handler.empty() || t.hw_handler_args.empty())
    return text;
  std::string head, with_args;
  {
    mpath::detail::status_writer w(head);
    mpath::detail::format_features(t.features, w);
    mpath::detail::format_hw_handler(t.hw_handler, w);
  }
  {
    mpath::detail::status_writer w(with_args);
    mpath::detail::format_features(t.features, w);
    w.number(1 + t.hw_handler_args.size()).word(t.hw_handler);
    for (const auto& a : t.hw_handler_args)
      w.word(a);
  }
  text.replace(0, head.size(), with_args);
  return text;
}

} // namespace detail

/// The regrouped table (§8.5), validated by parsing its text back with `Selectors`, so it is in
/// canonical form. Errors (EINVAL): a table path with no priority given, a path without a
/// target port group under group_by_tpg, a path token given twice or found twice in the table,
/// paths with different numbers of per-path arguments put in one group, or a result the table
/// parser rejects (its text is quoted).
template <class Selectors = default_selectors>
result<table> regroup(const table& current, grouping_policy policy, std::span<const path_prio> paths) {
  for (std::size_t i = 0; i < paths.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (paths[i].device == paths[j].device)
        return einval("path " + paths[i].device + " is given twice");

  std::vector<detail::grouping_path> all;
  for (const auto& g : current.groups) {
    for (const auto& p : g.paths) {
      for (const auto& seen : all)
        if (seen.spec->device == p.device)
          return einval("path " + p.device + " is more than once in the table");
      const path_prio* facts = nullptr;
      for (const auto& f : paths)
        if (f.device == p.device)
          facts = &f;
      if (!facts || !facts->priority)
        return einval("no priority given for path " + p.device);
      int key = 0;
      switch (policy) {
      case grouping_policy::failover: key = int(all.size()); break;
      case grouping_policy::multibus: key = 0; break;
      case grouping_policy::group_by_prio: key = *facts->priority; break;
      case grouping_policy::group_by_tpg:
        if (!facts->tpg_id)
          return einval("no target port group given for path " + p.device);
        key = *facts->tpg_id;
        break;
      }
      all.push_back({&p, *facts->priority, facts->usable, key});
    }
  }

  // Buckets in the order of their first path in the table: the last tie-break of §8.5.
  std::vector<detail::grouping_bucket> buckets;
  for (const auto& p : all) {
    auto it = std::find_if(buckets.begin(), buckets.end(), [&](const auto& b) { return b.key == p.key; });
    if (it == buckets.end()) {
      buckets.push_back({});
      buckets.back().key = p.key;
      it = buckets.end() - 1;
    }
    it->paths.push_back(&p);
    if (p.usable) {
      it->sum += p.priority;
      ++it->usable;
    }
  }
  std::stable_sort(buckets.begin(), buckets.end(), detail::better_bucket);

  table out;
  out.start = current.start;
  out.length = current.length;
  out.features = current.features;
  out.hw_handler = current.hw_handler;
  out.hw_handler_args = current.hw_handler_args;
  out.initial_pg = buckets.empty() ? 0 : 1;
  for (const auto& b : buckets) {
    priority_group_spec g;
    g.selector = current.groups.front().selector;
    g.selector_args = current.groups.front().selector_args;
    for (const auto* p : b.paths) {
      if (p->spec->args.size() != b.paths.front()->spec->args.size())
        return einval("paths " + b.paths.front()->spec->device + " and " + p->spec->device +
                      " have different numbers of per-path arguments and cannot share a group");
      g.paths.push_back(*p->spec);
    }
    out.groups.push_back(std::move(g));
  }

  // The reload must be accepted: the parser is the same one `create`/`reload` use.
  std::string text = detail::reload_params(out);
  auto parsed = parse_table<Selectors>(text);
  if (!parsed) {
    error e = std::move(parsed).err();
    e.text = "regrouped table '" + text + "' is invalid: " + e.text;
    return e;
  }
  parsed->start = current.start;
  parsed->length = current.length;
  return std::move(*parsed);
}

/// The regrouped table's parameter text, what `create` and `reload` take (with the hardware
/// handler's arguments, unlike TABLE status).
template <class Selectors = default_selectors>
result<std::string> regroup_params(const table& current, grouping_policy policy, std::span<const path_prio> paths) {
  auto t = regroup<Selectors>(current, policy, paths);
  if (!t)
    return std::move(t).err();
  return detail::reload_params(*t);
}

/// The same from table text (parameters or a whole `<start> <len> multipath` line, e.g. TABLE
/// status) and a policy word.
template <class Selectors = default_selectors>
result<std::string> regroup_params(std::string_view current, std::string_view policy,
                                   std::span<const path_prio> paths) {
  auto p = parse_grouping_policy(policy);
  if (!p)
    return std::move(p).err();
  auto t = parse_table<Selectors>(current);
  if (!t)
    return std::move(t).err();
  return regroup_params<Selectors>(*t, *p, paths);
}

/// Whether two tables group their paths the same: the same number of groups and, for each group
/// of `a`, a group of `b` with the same selector, selector arguments and paths (with their
/// per-path arguments). Group order, path order inside a group and the initial group are not
/// compared: like multipathd, which reloads only when the path groups themselves differ and
/// otherwise switches to the best group (failback, §8.5) without a reload.
inline bool same_grouping(const table& a, const table& b) {
  if (a.groups.size() != b.groups.size())
    return false;
  auto same_paths = [](const priority_group_spec& x, const priority_group_spec& y) {
    if (x.paths.size() != y.paths.size())
      return false;
    for (const auto& p : x.paths)
      if (std::find(y.paths.begin(), y.paths.end(), p) == y.paths.end())
        return false;
    return true;
  };
  std::vector<bool> used(b.groups.size(), false);
  for (const auto& g : a.groups) {
    bool found = false;
    for (std::size_t j = 0; j < b.groups.size() && !found; ++j) {
      const auto& h = b.groups[j];
      if (used[j] || h.selector != g.selector || h.selector_args != g.selector_args || !same_paths(g, h))
        continue;
      used[j] = true;
      found = true;
    }
    if (!found)
      return false;
  }
  return true;
}

/// Whether regrouping `current` with `policy` would change its grouping (`same_grouping`), so
/// a caller reloads only when it does (§8.5: "reloads when priorities change the grouping").
template <class Selectors = default_selectors>
result<bool> regrouping_changes(const table& current, grouping_policy policy, std::span<const path_prio> paths) {
  auto t = regroup<Selectors>(current, policy, paths);
  if (!t)
    return std::move(t).err();
  return !same_grouping(current, *t);
}

} // namespace mpath::inline v0::health
