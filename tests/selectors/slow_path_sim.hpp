#pragma once
// A closed-loop workload over the simulation backend, for selectors on paths of different speed.
// Used by tests/selectors/heterogeneous_paths_test.cpp and by bench/slow_path_figure.cpp, which
// produces the data of docs/figures/slow-path.svg.
//
// Each path is a FIFO server plus a delay line: an I/O of B bytes occupies it for `ns_per_4k` ×
// B/4096 (transfer, one I/O after the other) and then takes `latency_ns` more (overlapping with
// other I/Os; but a path completes its I/Os in order), both scaled by one jitter factor drawn
// uniformly from [1 - jitter, 1 + jitter]. The
// workload keeps `depth` I/Os in flight (saturation when depth ≥ paths), sizes drawn from
// a list (4..64 KiB by default). The engine runs on the sim_device's virtual clock, which this driver moves from one
// completion to the next with nanosecond precision (completions go through sim_device::complete,
// so the engine's end_io sees the completion time on its clock, as HST needs). Everything is
// deterministic for a given seed.

#include <mpath/testing/sim.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <queue>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace selector_sim {

struct path_model {
  std::string device;
  std::uint64_t ns_per_4k;      ///< serial part: transfer time of 4 KiB, one I/O after the other
  std::uint64_t latency_ns = 0; ///< parallel part: added to every I/O, however many are in flight
};

struct workload {
  std::size_t depth = 8;      ///< I/Os kept in flight
  std::size_t ios = 20'000;   ///< I/Os completed in total
  std::size_t warmup = 2'000; ///< of those, not counted (estimators settle first)
  double jitter = 0.2;        ///< ± fraction of the service time
  std::uint32_t seed = 1;
  int cpus = 0; ///< > 0: the i-th I/O is submitted from CPU i mod cpus (io-affinity's CPU hint)
  std::vector<std::uint64_t> sizes = {4096, 8192, 16384, 32768, 65536}; ///< drawn uniformly
};

struct outcome {
  std::vector<double> byte_share;      ///< per path, of the counted bytes
  std::vector<double> io_share;        ///< per path, of the counted I/Os
  std::vector<double> mean_latency_us; ///< per path, submission to completion
  double mean_latency_us_all = 0;
  double throughput_mib_s = 0; ///< counted bytes over the counted span of virtual time
};

/// Runs `w` on a device built from `table` (its paths named as in `paths`); `Traits` chooses the
/// selector set (e.g. io-affinity on a configured number of CPUs).
template <class Traits = mpath::testing::sim_traits>
outcome run(const std::string& table, const std::vector<path_model>& paths, const workload& w) {
  auto created = mpath::testing::sim_device<Traits>::create(table);
  if (!created)
    throw std::runtime_error("table: " + created.err().text);
  auto& dev = **created;
  std::mt19937_64 rng(w.seed);
  std::uniform_real_distribution<double> jitter(1.0 - w.jitter, 1.0 + w.jitter);

  const std::size_t n = paths.size();
  struct completion {
    std::uint64_t due;
    std::size_t path;
    std::uint64_t submitted;
    std::uint64_t bytes;
    std::size_t seq;
    bool operator>(const completion& o) const { return due != o.due ? due > o.due : seq > o.seq; }
  };
  std::priority_queue<completion, std::vector<completion>, std::greater<>> pending;
  std::vector<std::uint64_t> busy_until(n, 0), last_due(n, 0);
  std::vector<double> bytes(n, 0), count(n, 0), latency(n, 0);
  std::size_t submitted = 0, completed = 0;
  std::uint64_t counted_from = 0;
  auto now = [&] { return dev.executor().now_ns(); };

  auto submit_one = [&] {
    std::uint64_t size = w.sizes[rng() % w.sizes.size()];
    std::vector<double> factor(n); // drawn for every path, so the random stream does not depend
    for (auto& f : factor)         // on the selector's choice
      f = jitter(rng);
    if (w.cpus > 0)
      mpath::selectors::set_cpu_hint(int(submitted % std::size_t(w.cpus)));
    dev.io(1, size);
    if (w.cpus > 0)
      mpath::selectors::set_cpu_hint(-1);
    const auto& io = dev.ios().back();
    std::size_t p = 0;
    while (p < n && paths[p].device != io.last_device)
      ++p;
    if (io.dispatches != 1 || p == n)
      throw std::runtime_error("an I/O was not dispatched");
    auto service = std::uint64_t(double(paths[p].ns_per_4k) * double(size) / 4096.0 * factor[p]);
    std::uint64_t start = busy_until[p] > now() ? busy_until[p] : now();
    busy_until[p] = start + service;
    auto extra = std::uint64_t(double(paths[p].latency_ns) * factor[p]);
    // Completions leave a path in submission order (sim_device::complete takes the oldest).
    last_due[p] = std::max(last_due[p], busy_until[p] + extra);
    pending.push({last_due[p], p, now(), size, submitted++});
  };

  while (completed < w.ios) {
    while (submitted < w.ios && submitted - completed < w.depth)
      submit_one();
    completion c = pending.top();
    pending.pop();
    if (c.due > now())
      dev.executor().advance(c.due - now());
    if (dev.complete(paths[c.path].device, 1, mpath::blk_status::ok) != 1)
      throw std::runtime_error("no I/O in flight on " + paths[c.path].device);
    if (++completed == w.warmup)
      counted_from = now();
    if (completed > w.warmup) {
      bytes[c.path] += double(c.bytes);
      count[c.path] += 1;
      latency[c.path] += double(now() - c.submitted) / 1000.0;
    }
  }

  outcome o;
  double total_bytes = 0, total_count = 0, total_latency = 0;
  for (std::size_t p = 0; p < n; ++p) {
    total_bytes += bytes[p];
    total_count += count[p];
    total_latency += latency[p];
  }
  for (std::size_t p = 0; p < n; ++p) {
    o.byte_share.push_back(bytes[p] / total_bytes);
    o.io_share.push_back(count[p] / total_count);
    o.mean_latency_us.push_back(count[p] > 0 ? latency[p] / count[p] : 0.0);
  }
  o.mean_latency_us_all = total_latency / total_count;
  double seconds = double(now() - counted_from) / 1e9;
  o.throughput_mib_s = seconds > 0 ? total_bytes / (1024.0 * 1024.0) / seconds : 0.0;
  return o;
}

/// One group of `selector` over `paths`, with the per-path arguments `path_args` (same for all
/// when it has one entry).
inline std::string table_for(const std::string& selector, const std::vector<path_model>& paths,
                             const std::vector<std::string>& path_args = {}) {
  std::size_t nargs = path_args.empty() ? 0 : mpath::detail::split_words(path_args[0]).size();
  std::string t = "0 0 1 1 " + selector + " 0 " + std::to_string(paths.size()) + " " + std::to_string(nargs);
  for (std::size_t p = 0; p < paths.size(); ++p) {
    t += " " + paths[p].device;
    if (!path_args.empty())
      t += " " + path_args[path_args.size() == 1 ? 0 : p];
  }
  return t;
}

} // namespace selector_sim
