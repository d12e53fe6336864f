// select/<selector>/paths:N/real_time/threads:T: one select + start_io + end_io cycle of a path
// selector (the engine's per-I/O use of it; round-robin and io-affinity have no start/end), on one
// selector shared by T threads; <selector>.channel is the same through a channel per thread (the
// engine's `multipath::channel`). select/baseline is the same cycle through a deliberately simple
// selector: a mutex around a std::list rotation, with the counters under that mutex too (the
// pre-2016 kernel's shape). select/floor/rmws:K is K uncontended atomic increments, the least that
// K read-modify-writes cost on this machine: an exactly ordered, thread-safe queue-length needs 3
// per cycle (its lock, +1, -1). The machine may be shared and noisy: compare within one run.
//
// historical-service-time gets a clock that advances 1 µs per cycle; io-affinity runs on a
// configured 64-CPU machine with every CPU mapped, the CPU read by sched_getcpu() each select.
// <selector>.single-thread is the variant a null_lock engine builds (single_thread_sync: no lock,
// plain counters, no atomic instruction), run by one thread only.

#include <mpath/selectors.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using mpath::path_index;

/// The baseline: one mutex around a list rotation and around the accounting.
class baseline_selector {
public:
  void add_path() {
    std::lock_guard guard(lock_);
    valid_.push_back(path_index(in_flight_.size()));
    in_flight_.push_back(0);
  }
  path_index select(std::uint64_t, std::uint64_t) noexcept {
    std::lock_guard guard(lock_);
    if (valid_.empty())
      return mpath::no_path;
    path_index p = valid_.front();
    valid_.splice(valid_.end(), valid_, valid_.begin());
    return p;
  }
  void start_io(path_index p, std::uint64_t) noexcept {
    std::lock_guard guard(lock_);
    ++in_flight_[p];
  }
  void end_io(path_index p, std::uint64_t, std::uint64_t, std::uint64_t) noexcept {
    std::lock_guard guard(lock_);
    --in_flight_[p];
  }

private:
  std::mutex lock_;
  std::list<path_index> valid_;
  std::vector<std::int64_t> in_flight_;
};

using io_affinity_64 = mpath::selectors::basic_io_affinity<mpath::selectors::fixed_cpus<64>>;

template <class S> void add_paths(S& s, std::size_t n) {
  if constexpr (std::is_same_v<S, baseline_selector>) {
    for (std::size_t i = 0; i < n; ++i)
      s.add_path();
  } else if constexpr (std::is_same_v<S, io_affinity_64>) {
    (void)s.create({});
    for (std::size_t i = 0; i < n; ++i) { // path i serves CPUs i, i + n, i + 2n, ...
      std::uint64_t mask = 0;
      for (std::size_t cpu = i; cpu < 64; cpu += n)
        mask |= std::uint64_t{1} << cpu;
      char text[32];
      std::snprintf(text, sizeof text, "%x,%08x", unsigned(mask >> 32), unsigned(mask & 0xffffffffu));
      std::vector<std::string> args{text};
      if (!s.add_path(args))
        std::abort();
    }
  } else {
    std::vector<std::string> none;
    (void)s.create(none);
    for (std::size_t i = 0; i < n; ++i)
      (void)s.add_path(none);
  }
}

template <class S> S* g_selector = nullptr;

template <class S> void setup(const benchmark::State& state) {
  g_selector<S> = new S;
  add_paths(*g_selector<S>, std::size_t(state.range(0)));
}
template <class S> void teardown(const benchmark::State&) {
  delete g_selector<S>;
  g_selector<S> = nullptr;
}

template <class S> void BM_select(benchmark::State& state) {
  S& s = *g_selector<S>;
  std::uint64_t now = 1'000'000;
  for (auto _ : state) {
    path_index p = s.select(4096, now);
    benchmark::DoNotOptimize(p);
    if constexpr (mpath::AccountingSelector<S> || std::is_same_v<S, baseline_selector>) {
      s.start_io(p, 4096);
      now += 1000;
      s.end_io(p, 4096, now - 1000, now);
    }
  }
  state.SetItemsProcessed(state.iterations());
}

/// The same cycle through a channel of the thread's own (ChannelSelector: issue 11), attached
/// before the timed loop.
template <class S> void BM_select_channel(benchmark::State& state) {
  S& s = *g_selector<S>;
  typename S::channel_state ch;
  s.attach(ch);
  std::uint64_t now = 1'000'000;
  for (auto _ : state) {
    path_index p = s.select(ch, 4096, now);
    benchmark::DoNotOptimize(p);
    s.start_io(ch, p, 4096);
    now += 1000;
    s.end_io(ch, p, 4096, now - 1000, now);
  }
  s.detach(ch);
  state.SetItemsProcessed(state.iterations());
}

/// K atomic increments per iteration on separate cache lines: the cost floor of K
/// read-modify-writes.
struct alignas(64) padded_counter {
  std::atomic<std::uint64_t> value{0};
};
padded_counter g_counters[3];

void BM_floor(benchmark::State& state) {
  const auto k = std::size_t(state.range(0));
  for (auto _ : state)
    for (std::size_t i = 0; i < k; ++i)
      g_counters[i].value.fetch_add(1, std::memory_order_relaxed);
  state.SetItemsProcessed(state.iterations());
}

/// `max_threads` 1 for a selector that must not be shared (single_thread_sync).
template <class S> void register_selector(const char* name, int max_threads = 2) {
  auto* b = benchmark::RegisterBenchmark(name, BM_select<S>)
                ->Setup(setup<S>)
                ->Teardown(teardown<S>)
                ->ArgName("paths")
                ->RangeMultiplier(2)
                ->Range(2, 16);
  for (int t = 1; t <= max_threads; ++t)
    b->Threads(t);
  b->UseRealTime();
}

template <class S> void register_channel(const char* name) {
  benchmark::RegisterBenchmark(name, BM_select_channel<S>)
      ->Setup(setup<S>)
      ->Teardown(teardown<S>)
      ->ArgName("paths")
      ->RangeMultiplier(2)
      ->Range(2, 16)
      ->Threads(1)
      ->Threads(2)
      ->UseRealTime();
}

template <class S> using single_thread = mpath::rebind_selector_t<S, mpath::single_thread_sync>;

int register_all = [] {
  // glibc skips the atomic instructions of a mutex while the process has never started a thread,
  // which flatters the baseline in a single-threaded run; a real engine always has threads.
  std::thread([] {}).join();
  register_selector<mpath::selectors::round_robin>("select/round-robin");
  register_selector<single_thread<mpath::selectors::round_robin>>("select/round-robin.single-thread", 1);
  register_selector<mpath::selectors::queue_length>("select/queue-length");
  register_selector<single_thread<mpath::selectors::queue_length>>("select/queue-length.single-thread", 1);
  register_selector<mpath::selectors::service_time>("select/service-time");
  register_channel<mpath::selectors::round_robin>("select/round-robin.channel");
  register_channel<mpath::selectors::queue_length>("select/queue-length.channel");
  register_channel<mpath::selectors::service_time>("select/service-time.channel");
  register_selector<mpath::selectors::historical_service_time>("select/historical-service-time");
  register_channel<mpath::selectors::historical_service_time>("select/historical-service-time.channel");
  register_selector<io_affinity_64>("select/io-affinity");
  register_selector<baseline_selector>("select/baseline");
  benchmark::RegisterBenchmark("select/floor", BM_floor)->ArgName("rmws")->Arg(1)->Arg(3)->UseRealTime();
  return 0;
}();

} // namespace
