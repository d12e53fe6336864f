#pragma once
// "io-affinity" (kernel-target.md §5.5): each path serves the CPUs named by its cpumask; an I/O
// goes to the path of the CPU it is submitted from, else to a path of a CPU on the same NUMA
// node, else to any mapped path.

#include <mpath/detail/sync.hpp>
#include <mpath/detail/text.hpp>
#include <mpath/path_selector.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if __has_include(<unistd.h>)
#include <unistd.h>
#endif

namespace mpath::inline v0::selectors {

// ------------------------------------------------------------------------------------ the CPU

namespace detail {
inline thread_local int cpu_hint = -1;
} // namespace detail

/// The CPU that io-affinity treats the calling thread's I/O as submitted from, until cleared:
/// a reactor thread that owns a queue pair says which CPU (or queue) it stands for. Without a
/// hint the selector asks `sched_getcpu()` on every select. Negative clears the hint.
inline void set_cpu_hint(int cpu) noexcept { detail::cpu_hint = cpu < 0 ? -1 : cpu; }
/// The calling thread's hint, or -1.
inline int cpu_hint() noexcept { return detail::cpu_hint; }

/// Sets the calling thread's CPU hint for a scope and restores the previous one.
class scoped_cpu_hint {
public:
  explicit scoped_cpu_hint(int cpu) noexcept : previous_(cpu_hint()) { set_cpu_hint(cpu); }
  ~scoped_cpu_hint() { set_cpu_hint(previous_); }
  scoped_cpu_hint(const scoped_cpu_hint&) = delete;
  scoped_cpu_hint& operator=(const scoped_cpu_hint&) = delete;

private:
  int previous_;
};

/// CPU numbering as io-affinity sees it: how many CPU ids there are (the kernel's nr_cpu_ids,
/// which sets the width of the printed cpumask) and the NUMA node of each.
struct cpu_topology {
  std::uint32_t nr_cpu_ids = 1;
  std::vector<std::uint32_t> node_of; ///< per CPU id; empty = every CPU on node 0

  std::uint32_t node(std::uint32_t cpu) const noexcept { return cpu < node_of.size() ? node_of[cpu] : 0; }
};

namespace detail {

/// A kernel cpulist ("0-3,8,10-11"), as in /sys/devices/system/cpu/possible.
inline bool parse_cpulist(std::string_view text, std::vector<std::uint32_t>& cpus) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.remove_suffix(1);
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t end = text.find(',', i);
    if (end == std::string_view::npos)
      end = text.size();
    std::string_view range = text.substr(i, end - i);
    std::size_t dash = range.find('-');
    std::uint32_t lo = 0, hi = 0;
    if (!mpath::detail::parse_u32(range.substr(0, dash), lo))
      return false;
    hi = lo;
    if (dash != std::string_view::npos && !mpath::detail::parse_u32(range.substr(dash + 1), hi))
      return false;
    if (hi < lo || hi - lo > 65535)
      return false;
    for (std::uint32_t c = lo; c <= hi; ++c)
      cpus.push_back(c);
    i = end + 1;
  }
  return true;
}

inline bool read_cpulist_file(const char* path, std::vector<std::uint32_t>& cpus) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line))
    return false;
  return parse_cpulist(line, cpus);
}

/// This machine: nr_cpu_ids = highest possible CPU + 1 (/sys/devices/system/cpu/possible, else
/// sysconf), nodes from /sys/devices/system/node/node<N>/cpulist (else all on node 0).
inline cpu_topology read_system_topology() {
  cpu_topology t;
  std::vector<std::uint32_t> possible;
  if (read_cpulist_file("/sys/devices/system/cpu/possible", possible) && !possible.empty()) {
    std::uint32_t max = 0;
    for (auto c : possible)
      max = c > max ? c : max;
    t.nr_cpu_ids = max + 1;
  } else {
#if defined(_SC_NPROCESSORS_CONF)
    long n = ::sysconf(_SC_NPROCESSORS_CONF);
    t.nr_cpu_ids = n > 0 ? std::uint32_t(n) : 1;
#endif
  }
  t.node_of.assign(t.nr_cpu_ids, 0);
  for (std::uint32_t node = 0; node < 4096; ++node) {
    std::vector<std::uint32_t> cpus;
    std::string path = "/sys/devices/system/node/node" + std::to_string(node) + "/cpulist";
    if (!read_cpulist_file(path.c_str(), cpus)) {
      if (node >= 64)
        break; // node numbers can have holes, but not this many
      continue;
    }
    for (auto c : cpus)
      if (c < t.nr_cpu_ids)
        t.node_of[c] = node;
  }
  return t;
}

} // namespace detail

/// The machine the process runs on: topology read once from sysfs; the current CPU is the
/// thread's hint, else sched_getcpu().
struct system_cpus {
  static const cpu_topology& topology() {
    static const cpu_topology t = detail::read_system_topology();
    return t;
  }
  static int current_cpu() noexcept {
    if (int hint = cpu_hint(); hint >= 0)
      return hint;
#if defined(__linux__)
    return ::sched_getcpu(); // a vDSO/rseq read on current glibc, not a system call
#else
    return 0;
#endif
  }
};

/// A configured machine of `NrCpus` CPU ids in NUMA nodes of `CpusPerNode` consecutive CPUs
/// (tests, simulations, or a product that numbers its queues itself). The current CPU is the
/// thread's hint, else sched_getcpu() modulo NrCpus.
template <std::uint32_t NrCpus, std::uint32_t CpusPerNode = NrCpus> struct fixed_cpus {
  static_assert(NrCpus > 0 && CpusPerNode > 0);
  static const cpu_topology& topology() {
    static const cpu_topology t = [] {
      cpu_topology c;
      c.nr_cpu_ids = NrCpus;
      for (std::uint32_t i = 0; i < NrCpus; ++i)
        c.node_of.push_back(i / CpusPerNode);
      return c;
    }();
    return t;
  }
  static int current_cpu() noexcept {
    if (int hint = cpu_hint(); hint >= 0)
      return hint;
#if defined(__linux__)
    int cpu = ::sched_getcpu();
    return cpu < 0 ? cpu : int(std::uint32_t(cpu) % NrCpus);
#else
    return 0;
#endif
  }
};

// ------------------------------------------------------------------------------------ cpumasks

namespace detail {

/// A kernel hex cpumask (`bitmap_parse`): 32-bit groups of at most 8 hex digits separated by
/// commas (blanks too), least significant group last; empty groups are skipped, so "" and ","
/// are the empty mask. Fails on any other character, a group of more than 8 digits, or a bit at
/// or above `nbits` (the kernel's -EINVAL/-EOVERFLOW). Result: ceil(nbits/32) 32-bit words.
inline bool parse_cpumask(std::string_view text, std::uint32_t nbits, std::vector<std::uint32_t>& words) {
  const std::size_t nwords = (std::size_t(nbits) + 31) / 32;
  words.assign(nwords, 0);
  auto separator = [](char c) { return c == ',' || mpath::detail::is_blank(c); };
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  std::size_t end = text.size(); // one past the next character to read, going backwards
  std::size_t group = 0;
  for (;;) {
    while (end > 0 && separator(text[end - 1]))
      --end;
    if (end == 0)
      break;
    if (group == nwords)
      return false; // more groups than the mask holds
    std::uint32_t value = 0;
    for (unsigned shift = 0;; shift += 4) {
      if (shift == 32)
        return false; // a ninth digit (or junk) in one group
      int d = hex(text[end - 1]);
      if (d < 0)
        return false;
      value |= std::uint32_t(d) << shift;
      --end;
      if (end == 0 || separator(text[end - 1]))
        break;
    }
    words[group++] = value;
  }
  if (nbits % 32 != 0 && nwords > 0 && (words[nwords - 1] >> (nbits % 32)) != 0)
    return false; // a CPU at or above nbits
  return true;
}

/// The kernel's `%*pb` form: lowercase hex, 32-bit groups separated by commas, most significant
/// first, the first group as wide as the bits it holds ((nbits mod 32) / 4 rounded up), the
/// others 8 digits.
inline void format_cpumask(const std::vector<std::uint32_t>& words, std::uint32_t nbits, std::string& out) {
  static constexpr char digits[] = "0123456789abcdef";
  if (nbits == 0)
    return;
  std::size_t nwords = (std::size_t(nbits) + 31) / 32;
  unsigned first_bits = nbits % 32 == 0 ? 32 : nbits % 32;
  for (std::size_t g = nwords; g-- > 0;) {
    unsigned width = g == nwords - 1 ? (first_bits + 3) / 4 : 8;
    if (g != nwords - 1)
      out.push_back(',');
    for (unsigned d = width; d-- > 0;)
      out.push_back(digits[(words[g] >> (4 * d)) & 0xf]);
  }
}

} // namespace detail

// ------------------------------------------------------------------------------------ selector

/// Arguments: none for the selector (ignored); per path exactly one, the kernel hex cpumask of
/// the CPUs whose I/O it serves (`3`, `ff,00000000`). A CPU already taken by an earlier path
/// stays with that path (the kernel logs "CPU mapping for <c> exists. Ignoring."); a path that
/// gets no CPU at all is refused. A bit at or above nr_cpu_ids makes the mask invalid, as on
/// current kernels, where cpumask_parse() is bounded by nr_cpumask_bits = nr_cpu_ids (older
/// configurations bounded it by NR_CPUS and then ignored such CPUs with "Ignoring mapping for
/// CPU <c>"; with our bound that case cannot arise).
///
/// "The submitting CPU" is `Cpus::current_cpu()`: with `system_cpus` (the default
/// `io_affinity`) the calling thread's `set_cpu_hint` value if it set one, else `sched_getcpu()`.
/// A value outside 0..nr_cpu_ids-1 (sched_getcpu failing) counts as an unmapped CPU on no node.
/// nr_cpu_ids, which sets the width of the TABLE cpumask, comes from `Cpus::topology()`: this
/// machine's for `system_cpus`, a configured one for `fixed_cpus<N>`.
///
/// Locking: none on the I/O path, as in the kernel: the CPU→path map and the node lists are
/// immutable once the paths are added; a path's failed flag is a `Sync::counter<bool>` written
/// by fail_path/reinstate_path (release) and read by select (acquire); the map-miss counter is a
/// `Sync::counter` incremented only on a miss. No start_io/end_io. With `threaded_sync` (the
/// default, `io_affinity`) both are atomics; with `single_thread_sync` plain values, so a miss
/// costs no atomic read-modify-write either.
///
/// Thread safety (threaded_sync): select, fail_path and reinstate_path may run concurrently;
/// create/add_path before any of them; the status writers at any time after add_path. With
/// single_thread_sync every call must come from one thread at a time.
template <class Cpus = system_cpus, SelectorSync Sync = threaded_sync> class basic_io_affinity {
  template <class T> using counter = typename Sync::template counter<T>;

public:
  using cpus_type = Cpus;
  using sync_type = Sync;
  /// The same selector with another sync policy (rebind_selectors_t).
  template <SelectorSync S> using rebind_sync = basic_io_affinity<Cpus, S>;

  static constexpr std::string_view name = "io-affinity";
  static constexpr unsigned table_args = 1;
  static constexpr unsigned info_args = 1;

  result<void> create(std::span<const std::string>) {
    const cpu_topology& t = Cpus::topology();
    nr_cpu_ids_ = t.nr_cpu_ids;
    map_.assign(nr_cpu_ids_, no_path);
    node_of_.assign(nr_cpu_ids_, 0);
    std::uint32_t nodes = 0;
    for (std::uint32_t c = 0; c < nr_cpu_ids_; ++c) {
      node_of_[c] = t.node(c);
      nodes = node_of_[c] + 1 > nodes ? node_of_[c] + 1 : nodes;
    }
    node_cpus_.assign(nodes, {});
    for (std::uint32_t c = 0; c < nr_cpu_ids_; ++c)
      node_cpus_[node_of_[c]].push_back(c);
    return {};
  }

  result<void> add_path(std::span<const std::string> args) {
    if (map_.empty())
      (void)create({}); // used without create(): take the topology now
    if (args.size() != 1)
      return einval("io-affinity ps: invalid number of arguments");
    std::vector<std::uint32_t> mask;
    if (!detail::parse_cpumask(args[0], nr_cpu_ids_, mask))
      return einval("io-affinity ps: invalid cpumask");
    path_index p = path_index(masks_.size());
    std::vector<std::uint32_t> taken;
    for (std::uint32_t cpu = 0; cpu < nr_cpu_ids_; ++cpu) {
      if (!(mask[cpu / 32] >> (cpu % 32) & 1))
        continue;
      if (map_[cpu] != no_path)
        continue; // the kernel warns "CPU mapping for <cpu> exists. Ignoring."
      taken.push_back(cpu);
    }
    if (taken.empty())
      return einval("io-affinity ps: No new/valid CPU mapping found");
    for (std::uint32_t cpu : taken)
      map_[cpu] = p;
    mapped_cpus_.insert(mapped_cpus_.end(), taken.begin(), taken.end());
    std::sort(mapped_cpus_.begin(), mapped_cpus_.end());
    masks_.push_back(std::move(mask));
    auto failed = std::make_unique<counter<bool>[]>(masks_.size());
    for (std::size_t i = 0; i + 1 < masks_.size(); ++i)
      failed[i].store(failed_[i].load(std::memory_order_relaxed), std::memory_order_relaxed);
    failed_ = std::move(failed);
    return {};
  }

  path_index select(std::uint64_t, std::uint64_t) noexcept {
    int current = Cpus::current_cpu();
    bool known = current >= 0 && std::uint32_t(current) < nr_cpu_ids_;
    std::uint32_t cpu = known ? std::uint32_t(current) : 0;
    path_index p = known ? map_[cpu] : no_path;
    if (p != no_path && !failed_[p].load(std::memory_order_acquire))
      return p;
    if (p == no_path) // a mapped CPU whose path failed is not a miss
      map_misses_.fetch_add(1, std::memory_order_relaxed);
    if (known)
      for (std::uint32_t c : node_cpus_[node_of_[cpu]])
        if (path_index q = map_[c]; q != no_path && !failed_[q].load(std::memory_order_acquire))
          return q;
    for (std::uint32_t c : mapped_cpus_)
      if (path_index q = map_[c]; !failed_[q].load(std::memory_order_acquire))
        return q;
    return no_path;
  }

  void fail_path(path_index p) noexcept { failed_[p].store(true, std::memory_order_release); }
  int reinstate_path(path_index p) noexcept {
    failed_[p].store(false, std::memory_order_release);
    return 0;
  }

  void group_status(std::string& out) const { mpath::detail::status_writer(out).number(0); }
  /// INFO: the selector-wide map-miss count (printed as the kernel's signed atomic_t); TABLE: the
  /// path's cpumask as parsed, nr_cpu_ids bits wide.
  void path_status(path_index p, status_type type, std::string& out) const {
    if (type == status_type::info) {
      mpath::detail::status_writer(out).signed_number(std::int32_t(map_misses_.load(std::memory_order_relaxed)));
      return;
    }
    detail::format_cpumask(masks_[p], nr_cpu_ids_, out);
    out.push_back(' ');
  }

  // ---- diagnostics and tests

  std::uint32_t nr_cpu_ids() const noexcept { return nr_cpu_ids_; }
  std::uint32_t map_misses() const noexcept { return map_misses_.load(std::memory_order_relaxed); }
  /// The path serving `cpu`, or no_path.
  path_index path_of_cpu(std::uint32_t cpu) const noexcept { return cpu < map_.size() ? map_[cpu] : no_path; }

private:
  std::uint32_t nr_cpu_ids_ = 0;
  std::vector<path_index> map_;                       // CPU → path (immutable after add_path)
  std::vector<std::uint32_t> node_of_;                // CPU → node
  std::vector<std::vector<std::uint32_t>> node_cpus_; // node → its CPUs, ascending
  std::vector<std::uint32_t> mapped_cpus_;            // every mapped CPU, ascending
  std::vector<std::vector<std::uint32_t>> masks_;     // per path, as parsed
  std::unique_ptr<counter<bool>[]> failed_;           // per path
  counter<std::uint32_t> map_misses_{0};
};

/// io-affinity on this machine (nr_cpu_ids and NUMA nodes from sysfs, CPU from the thread's hint
/// or sched_getcpu()).
using io_affinity = basic_io_affinity<system_cpus>;

} // namespace mpath::inline v0::selectors
