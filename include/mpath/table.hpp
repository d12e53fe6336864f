#pragma once
// The multipath target's table grammar (kernel-target.md §1) and its canonical text (§2.2).
//
//   <#features> <feature>* <#hwh-args> [<hwh-name> <hwh-arg>*] <#pgs> <initial-pg>
//   ( <selector> <#selector-args> <selector-arg>* <#paths> <#per-path-args>
//     ( <path> <per-path-arg>* ){#paths} ){#pgs}

#include <mpath/detail/text.hpp>
#include <mpath/error.hpp>
#include <mpath/selectors.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mpath::inline v0 {

enum class queue_mode : std::uint8_t { request, bio };

struct table_features {
  bool queue_if_no_path = false;
  bool retain_attached_hw_handler = false;
  std::uint32_t pg_init_retries = 0;                ///< 0 = no retries (1..50 when given)
  std::optional<std::uint32_t> pg_init_delay_msecs; ///< unset = 2000 ms when a delay applies
  queue_mode mode = queue_mode::request;

  friend bool operator==(const table_features&, const table_features&) = default;
};

struct path_spec {
  std::string device;            ///< an opaque token (`8:16`, `/dev/sdb`, a URL), matched exactly
  std::vector<std::string> args; ///< per-path arguments as the selector prints them back
  friend bool operator==(const path_spec&, const path_spec&) = default;
};

struct priority_group_spec {
  std::string selector;                   ///< e.g. `round-robin`
  std::vector<std::string> selector_args; ///< as the selector prints them back (HST: base_weight, threshold)
  std::vector<path_spec> paths;
  friend bool operator==(const priority_group_spec&, const priority_group_spec&) = default;
};

/// A validated multipath table. Selector arguments are kept in the form the kernel's TABLE status
/// prints them, so `format_table(parse_table(x))` is canonical and a fixed point.
struct table {
  std::optional<std::uint64_t> start; ///< set when parsed from a full `<start> <len> multipath` line
  std::optional<std::uint64_t> length;
  table_features features;
  std::string hw_handler;                   ///< empty: no hardware handler
  std::vector<std::string> hw_handler_args; ///< never printed back (kernel-target.md §2.2)
  std::uint32_t initial_pg = 0;             ///< 1-based; a value above the group count prefers none
  std::vector<priority_group_spec> groups;

  friend bool operator==(const table&, const table&) = default;

  /// The group the kernel reports before any I/O: initial_pg if it exists, else 1 (0 if no groups).
  std::uint32_t reported_pg() const noexcept {
    if (initial_pg >= 1 && initial_pg <= groups.size())
      return initial_pg;
    return groups.empty() ? 0 : 1;
  }
};

namespace detail {

inline bool parse_u64(std::string_view word, std::uint64_t& out) noexcept {
  if (word.empty())
    return false;
  for (char c : word)
    if (c < '0' || c > '9')
      return false;
  auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), out);
  return ec == std::errc{} && ptr == word.data() + word.size();
}

inline result<void> parse_features(arg_cursor& as, table_features& f) {
  auto count = as.read_number(0, 8, "invalid number of feature args", true);
  if (!count)
    return std::move(count).err();
  std::uint32_t left = *count;
  while (left > 0) {
    const std::string& word = *as.shift();
    --left;
    if (iequals(word, "queue_if_no_path")) {
      f.queue_if_no_path = true;
    } else if (iequals(word, "retain_attached_hw_handler")) {
      f.retain_attached_hw_handler = true;
    } else if (iequals(word, "pg_init_retries") && left >= 1) {
      auto n = as.read_number(1, 50, "pg_init_retries must be between 1 and 50");
      if (!n)
        return std::move(n).err();
      f.pg_init_retries = *n;
      --left;
    } else if (iequals(word, "pg_init_delay_msecs") && left >= 1) {
      auto n = as.read_number(0, 60000, "pg_init_delay_msecs must be between 0 and 60000");
      if (!n)
        return std::move(n).err();
      f.pg_init_delay_msecs = *n;
      --left;
    } else if (iequals(word, "queue_mode") && left >= 1) {
      const std::string& mode = *as.shift();
      --left;
      if (iequals(mode, "bio"))
        f.mode = queue_mode::bio;
      else if (iequals(mode, "rq") || iequals(mode, "mq"))
        f.mode = queue_mode::request;
      else
        return einval("Unknown 'queue_mode' requested");
    } else {
      return einval("Unrecognised multipath feature request");
    }
  }
  return {};
}

inline result<void> parse_hw_handler(arg_cursor& as, table& t) {
  auto count = as.read_number(0, 1024, "invalid number of hardware handler args", true);
  if (!count)
    return std::move(count).err();
  if (*count == 0)
    return {};
  if (t.features.mode == queue_mode::bio) {
    as.consume(*count); // the kernel logs "bio-based multipath doesn't allow hardware handler args"
    return {};
  }
  auto words = as.peek(*count);
  t.hw_handler = words[0];
  t.hw_handler_args.assign(words.begin() + 1, words.end());
  as.consume(*count);
  return {};
}

template <class Selectors> result<priority_group_spec> parse_group(arg_cursor& as) {
  if (as.remaining() < 2) {
    as.consume(as.remaining());
    return einval("not enough priority group arguments");
  }
  priority_group_spec g;
  g.selector = *as.shift();
  if (Selectors::find(g.selector) == Selectors::npos)
    return einval("unknown path selector type");
  auto nr_selector_args = as.read_number(0, 1024, "invalid number of path selector args", true);
  if (!nr_selector_args)
    return std::move(nr_selector_args).err();
  // A throw-away selector validates the arguments exactly as the engine's will.
  any_selector<Selectors> selector;
  if (auto r = selector.create(g.selector, as.peek(*nr_selector_args)); !r)
    return std::move(r).err();
  as.consume(*nr_selector_args);

  auto nr_paths = as.read_number(1, 1024, "invalid number of paths");
  if (!nr_paths)
    return std::move(nr_paths).err();
  auto nr_path_args = as.read_number(0, 1024, "invalid number of selector args");
  if (!nr_path_args)
    return std::move(nr_path_args).err();

  for (std::uint32_t i = 0; i < *nr_paths; ++i) {
    if (as.remaining() < 1 + std::size_t(*nr_path_args))
      return einval("not enough path parameters");
    path_spec p;
    p.device = *as.shift();
    if (auto r = selector.add_path(as.peek(*nr_path_args)); !r)
      return std::move(r).err();
    as.consume(*nr_path_args);
    std::string canonical;
    selector.path_status(path_index(i), status_type::table, canonical);
    p.args = split_words(canonical);
    g.paths.push_back(std::move(p));
  }
  std::string group_args;
  selector.group_status(group_args);
  auto words = split_words(group_args); // "<count> <arg>..."
  g.selector_args.assign(words.begin() + 1, words.end());
  return g;
}

} // namespace detail

/// Parses multipath target parameters, or a whole `<start> <length> multipath <params>` line.
/// Errors carry the kernel's constructor text and errno (kernel-target.md §1).
template <class Selectors = default_selectors> result<table> parse_table(std::string_view text) {
  std::vector<std::string> words = detail::split_words(text);
  table t;
  std::span<const std::string> params(words);
  std::uint64_t start = 0, length = 0;
  if (words.size() >= 3 && words[2] == "multipath" && detail::parse_u64(words[0], start) &&
      detail::parse_u64(words[1], length)) {
    t.start = start;
    t.length = length;
    params = params.subspan(3);
  }
  detail::arg_cursor as(params);

  if (auto r = detail::parse_features(as, t.features); !r)
    return std::move(r).err();
  if (auto r = detail::parse_hw_handler(as, t); !r)
    return std::move(r).err();
  auto nr_groups = as.read_number(0, 1024, "invalid number of priority groups");
  if (!nr_groups)
    return std::move(nr_groups).err();
  auto initial = as.read_number(0, 1024, "invalid initial priority group number");
  if (!initial)
    return std::move(initial).err();
  if ((*nr_groups == 0) != (*initial == 0))
    return einval("invalid initial priority group");
  t.initial_pg = *initial;

  while (!as.empty()) {
    auto g = detail::parse_group<Selectors>(as);
    if (!g)
      return std::move(g).err();
    t.groups.push_back(std::move(*g));
  }
  if (t.groups.size() != *nr_groups)
    return einval("priority group count mismatch");
  return t;
}

namespace detail {

inline void format_features(const table_features& f, status_writer& w) {
  unsigned count = (f.queue_if_no_path ? 1 : 0) + (f.pg_init_retries ? 2 : 0) + (f.pg_init_delay_msecs ? 2 : 0) +
                   (f.retain_attached_hw_handler ? 1 : 0) + (f.mode == queue_mode::bio ? 2 : 0);
  w.number(count);
  if (f.queue_if_no_path)
    w.word("queue_if_no_path");
  if (f.pg_init_retries)
    w.word("pg_init_retries").number(f.pg_init_retries);
  if (f.pg_init_delay_msecs)
    w.word("pg_init_delay_msecs").number(*f.pg_init_delay_msecs);
  if (f.retain_attached_hw_handler)
    w.word("retain_attached_hw_handler");
  if (f.mode == queue_mode::bio)
    w.word("queue_mode").word("bio");
}

inline void format_hw_handler(std::string_view name, status_writer& w) {
  if (name.empty())
    w.number(0);
  else
    w.number(1).word(name);
}

} // namespace detail

/// The canonical kernel text of a table's parameters, as `dmsetup table` prints a freshly loaded
/// one: each word followed by one blank, feature count recomputed, handler arguments dropped.
inline std::string format_table(const table& t) {
  std::string out;
  detail::status_writer w(out);
  detail::format_features(t.features, w);
  detail::format_hw_handler(t.hw_handler, w);
  w.number(t.groups.size()).number(t.reported_pg());
  for (const auto& g : t.groups) {
    w.word(g.selector).number(g.selector_args.size());
    for (const auto& a : g.selector_args)
      w.word(a);
    std::size_t nr_args = g.paths.empty() ? 0 : g.paths.front().args.size();
    w.number(g.paths.size()).number(nr_args);
    for (const auto& p : g.paths) {
      w.word(p.device);
      for (const auto& a : p.args)
        w.word(a);
    }
  }
  return out;
}

/// `format_table` with the `<start> <length> multipath ` prefix (0 and the given length when the
/// table was not parsed from a full line).
inline std::string format_table_line(const table& t, std::uint64_t default_length = 0) {
  std::string out;
  detail::status_writer(out).number(t.start.value_or(0)).number(t.length.value_or(default_length)).word("multipath");
  return out + format_table(t);
}

} // namespace mpath::inline v0
