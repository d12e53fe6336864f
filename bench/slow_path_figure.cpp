// slow_path_figure: the data behind docs/figures/slow-path.svg. Four paths, one of them 4× slower:
// a 4 KiB I/O occupies paths a, b, c for 50 µs (one I/O after the other) plus 100 µs of latency
// that overlaps with other I/Os, and path d for 4× both, each ±20% jitter; each selector at
// several queue depths, on the simulation backend's virtual clock
// (tests/selectors/slow_path_sim.hpp). Prints CSV on stdout:
//
//   selector,depth,slow_share,mean_latency_us,throughput_mib_s
//
// slow_share is the slow path's share of the bytes. bench/plot_slow_path.py turns it into the
// figure:  ./build/release/bench/slow_path_figure | python3 bench/plot_slow_path.py > docs/figures/slow-path.svg
// (or just `python3 bench/plot_slow_path.py --run <binary>`). Deterministic: same output each run.

#include "selectors/slow_path_sim.hpp"

#include <cstdio>
#include <string>
#include <vector>

namespace {

/// io-affinity needs one CPU per path: a machine of 4 CPU ids, I/O submitted from each in turn.
struct four_cpu_traits : mpath::testing::sim_traits {
  using selectors = mpath::selector_set<mpath::selectors::basic_io_affinity<mpath::selectors::fixed_cpus<4>>>;
};

} // namespace

int main(int argc, char** argv) {
  std::size_t ios = argc > 1 ? std::stoul(argv[1]) : 40'000;
  const std::vector<selector_sim::path_model> paths = {
      {"a", 50'000, 100'000}, {"b", 50'000, 100'000}, {"c", 50'000, 100'000}, {"d", 200'000, 400'000}};
  struct config {
    const char* selector;
    std::vector<std::string> path_args;
  };
  const std::vector<config> configs = {
      {"round-robin", {}},
      {"queue-length", {}},
      {"service-time", {}},
      {"historical-service-time", {}},
      {"io-affinity", {"1", "2", "4", "8"}},
  };
  std::printf("selector,depth,slow_share,mean_latency_us,throughput_mib_s\n");
  for (const auto& c : configs) {
    for (std::size_t depth : {1, 4, 16, 64}) {
      selector_sim::workload w;
      w.depth = depth;
      w.ios = ios;
      w.warmup = ios / 10;
      w.seed = 42;
      w.sizes = {4096}; // as fio's bs=4k
      std::string table = selector_sim::table_for(c.selector, paths, c.path_args);
      selector_sim::outcome o;
      if (std::string(c.selector) == "io-affinity") {
        w.cpus = 4;
        o = selector_sim::run<four_cpu_traits>(table, paths, w);
      } else {
        o = selector_sim::run(table, paths, w);
      }
      std::printf("%s,%zu,%.4f,%.1f,%.2f\n", c.selector, depth, o.byte_share[3], o.mean_latency_us_all,
                  o.throughput_mib_s);
    }
  }
  return 0;
}
