#pragma once
// "load-balance-2003": seed 003's path choice inside one priority (product.md §9), as a selector
// of the engine. Seed 003 kept one flat list of paths; `create2003` (seed2003.hpp) turns each
// priority into a group of this selector, so this class only chooses among paths of one priority.
//
// Per path the seed gave a load-balance flag and min-ios:
//   N  stay on the current path until it fails;
//   L  after min-ios I/Os, move to the next valid path (table order, circular);
//   M  as L, but move only to the first path, in that order, whose weighted latency is not higher
//      than the current path's; with none, stay.
// The flag and min-ios that apply are the current path's. A path's weighted latency is the sum,
// over the I/Os that completed on it while it was an M path, of t⁴ with t the I/O's service time
// in milliseconds (the seed squares t and then squares the square, "heavy weight on long
// latencies"; a jiffy taken as 1 ms); every path's sum goes back to 0 when a path is reinstated.
//
// The count follows the seed exactly: each path counts down from min-ios, the I/O that brings the
// current path's count to 0 resets it and goes to the newly chosen path, so in steady state every
// path gets min-ios I/Os in a row (the very first path min-ios - 1). A failover to another path
// leaves every count as it is.

#include <mpath/detail/sync.hpp>
#include <mpath/detail/text.hpp>
#include <mpath/error.hpp>
#include <mpath/path_selector.hpp>

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mpath::inline v0::selectors {

/// Seed 003's load-balance flag of a path.
enum class load_balance_flag : char { none = 'N', load = 'L', maximize = 'M' };

/// The weight of one I/O's service time in the M comparison: t⁴ (t in milliseconds), saturated.
constexpr std::uint64_t latency_weight_2003(std::uint64_t ms) noexcept {
  if (ms > 0xffff) // (2^16)^4 would not fit
    return ~std::uint64_t{0};
  std::uint64_t sq = ms * ms;
  return sq * sq;
}

/// Arguments: none for the selector (any given are ignored); per path `<N|L|M> <min-ios>`, the
/// flag one character of either case, min-ios a number (0 is taken as 1, as the seed does).
/// `seed2003.hpp` writes these; a kernel-style table naming the selector may too.
///
/// INFO prints per path its weighted latency; TABLE its flag and min-ios.
///
/// Thread safety (threaded_sync): every call under the selector's lock (the kernel's shape:
/// the seed took its spinlock to switch paths); create/add_path before any other call.
template <SelectorSync Sync = threaded_sync> class basic_load_balance_2003 {
public:
  using sync_type = Sync;
  using lock_type = typename Sync::lock_type;
  template <SelectorSync S> using rebind_sync = basic_load_balance_2003<S>;

  static constexpr std::string_view name = "load-balance-2003";
  static constexpr unsigned table_args = 2;
  static constexpr unsigned info_args = 1;
  /// M needs each I/O's service time.
  static constexpr bool uses_clock = true;

  result<void> create(std::span<const std::string>) { return {}; }

  result<void> add_path(std::span<const std::string> args) {
    if (args.size() != 2)
      return einval("load-balance-2003 ps: incorrect number of arguments");
    std::string_view flag = args[0];
    if (flag.size() != 1)
      return einval("load-balance flags");
    path_state p;
    switch (flag[0]) {
    case 'n':
    case 'N': p.flag = load_balance_flag::none; break;
    case 'l':
    case 'L': p.flag = load_balance_flag::load; break;
    case 'm':
    case 'M': p.flag = load_balance_flag::maximize; break;
    default: return einval("load-balance flags");
    }
    std::uint32_t min_ios = 0;
    if (!mpath::detail::parse_u32(args[1], min_ios))
      return einval("dm-multipath: Invalid ios min");
    p.min_ios = min_ios == 0 ? 1 : min_ios;
    p.left = p.min_ios;
    paths_.push_back(p);
    return {};
  }

  path_index select(std::uint64_t, std::uint64_t) noexcept {
    std::lock_guard guard(lock_);
    if (paths_.empty())
      return no_path;
    if (paths_[current_].failed) { // failover: the next valid path after the failed one
      path_index next = next_valid(current_);
      if (next == no_path)
        return no_path;
      current_ = next;
      return current_;
    }
    path_state& cur = paths_[current_];
    if (cur.flag == load_balance_flag::none || --cur.left != 0)
      return current_;
    cur.left = cur.min_ios;
    // Circular from the one after the current path, ending at the current path itself.
    for (path_index p = next_valid(current_); p != current_; p = next_valid(p))
      if (cur.flag != load_balance_flag::maximize || paths_[p].latency <= cur.latency) {
        current_ = p;
        break;
      }
    return current_;
  }

  void start_io(path_index, std::uint64_t) noexcept {}
  void end_io(path_index p, std::uint64_t, std::uint64_t start_ns, std::uint64_t now_ns) noexcept {
    std::lock_guard guard(lock_);
    path_state& s = paths_[p];
    if (s.flag != load_balance_flag::maximize)
      return;
    std::uint64_t ms = now_ns > start_ns ? (now_ns - start_ns) / 1'000'000 : 0;
    std::uint64_t w = latency_weight_2003(ms);
    s.latency = s.latency > ~std::uint64_t{0} - w ? ~std::uint64_t{0} : s.latency + w;
  }

  void fail_path(path_index p) noexcept {
    std::lock_guard guard(lock_);
    paths_[p].failed = true;
  }
  /// The seed forgets every path's latency when one comes back (a fresh comparison).
  int reinstate_path(path_index p) noexcept {
    std::lock_guard guard(lock_);
    if (!paths_[p].failed)
      return 0;
    paths_[p].failed = false;
    reset_latencies_locked();
    return 0;
  }

  /// Forgets every path's weighted latency; seed2003.hpp calls it on every group when a path of
  /// any priority is reinstated, as the seed's flat list did.
  void reset_latencies() noexcept {
    std::lock_guard guard(lock_);
    reset_latencies_locked();
  }

  void group_status(std::string& out) const { mpath::detail::status_writer(out).number(0); }
  void path_status(path_index p, status_type type, std::string& out) const {
    std::lock_guard guard(lock_);
    mpath::detail::status_writer w(out);
    if (type == status_type::table)
      w.letter(char(paths_[p].flag)).number(paths_[p].min_ios);
    else
      w.number(paths_[p].latency);
  }

  // ---- observers (tests, seed2003.hpp)
  load_balance_flag flag(path_index p) const noexcept { return paths_[p].flag; }
  std::uint32_t min_ios(path_index p) const noexcept { return paths_[p].min_ios; }
  std::uint64_t latency(path_index p) const noexcept {
    std::lock_guard guard(lock_);
    return paths_[p].latency;
  }
  /// The path the next I/O goes to unless it fails or its count runs out.
  path_index current() const noexcept {
    std::lock_guard guard(lock_);
    return paths_.empty() ? no_path : current_;
  }

private:
  struct path_state {
    load_balance_flag flag = load_balance_flag::none;
    std::uint32_t min_ios = 1;
    std::uint32_t left = 1;    ///< I/Os until the switch, counting down from min_ios
    std::uint64_t latency = 0; ///< Σ latency_weight_2003 (M paths only)
    bool failed = false;
  };

  /// The first valid path after `from` in circular table order (`from` itself last), or no_path.
  path_index next_valid(path_index from) const noexcept {
    const auto n = path_index(paths_.size());
    for (path_index i = 1; i <= n; ++i) {
      path_index p = (from + i) % n;
      if (!paths_[p].failed)
        return p;
    }
    return no_path;
  }

  void reset_latencies_locked() noexcept {
    for (auto& s : paths_)
      s.latency = 0;
  }

  mutable lock_type lock_;
  std::vector<path_state> paths_;
  path_index current_ = 0;
};

/// load-balance-2003 shared by threads: a spinlock per selector.
using load_balance_2003 = basic_load_balance_2003<>;

} // namespace mpath::inline v0::selectors
