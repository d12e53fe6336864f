// engine/map_complete: one steady-state submit + complete through the engine (no lock, no
// allocation), against engine/baseline: the pre-2016 kernel's shape, one mutex around map and
// complete with a list-rotation selector. Same run, so read the results as ratios.
//
// The failover benchmark is failover_bench.cpp: a second engine type in this program makes GCC
// stop inlining the selectors' code called from both (measured: round-robin through a channel
// 6.9 ns alone, 9.9 ns beside it).

#include <mpath/multipath.hpp>
#include <mpath/testing/manual_executor.hpp>

#include <benchmark/benchmark.h>

#include <list>
#include <memory>
#include <mutex>

namespace {

struct bench_io : mpath::io_context {};

/// Completes nothing by itself: the benchmark loop completes the I/O it just submitted.
struct inline_backend {
  using handle_type = int;
  using io_type = bench_io;
  mpath::result<int> open_path(std::string_view) { return 0; }
  void submit(int, bench_io&) noexcept {}
  void io_done(bench_io&, mpath::blk_status) noexcept {}
  mpath::blk_status probe(int) noexcept { return mpath::blk_status::ok; }
};

using engine_type = mpath::multipath<inline_backend, mpath::testing::manual_executor>;

struct shared_engine {
  inline_backend backend;
  mpath::testing::manual_executor exec;
  std::unique_ptr<engine_type> engine;
};
shared_engine* g_engine = nullptr;

const char* table_for(int64_t selector) {
  switch (selector) {
  case 0: return "0 0 1 1 round-robin 0 4 1 a 1 b 1 c 1 d 1";
  case 1: return "0 0 1 1 queue-length 0 4 1 a 1 b 1 c 1 d 1";
  case 2: return "0 0 1 1 service-time 0 4 2 a 1 1 b 1 1 c 1 1 d 1 1";
  default: return "0 0 1 1 historical-service-time 0 4 1 a 0 b 0 c 0 d 0";
  }
}

void BM_engine_map_complete(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_engine = new shared_engine;
    g_engine->engine = std::move(*engine_type::create(g_engine->backend, g_engine->exec, table_for(state.range(0))));
  }
  // Google Benchmark starts the timed loop on every thread only after the setup above.
  bench_io io;
  io.nr_bytes = 4096;
  for (auto _ : state) {
    auto mapped = g_engine->engine->submit(io);
    auto done = g_engine->engine->complete(io, mpath::blk_status::ok);
    benchmark::DoNotOptimize(mapped);
    benchmark::DoNotOptimize(done);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    delete g_engine;
    g_engine = nullptr;
  }
}

void make_engine(const benchmark::State& state) {
  g_engine = new shared_engine;
  g_engine->engine = std::move(*engine_type::create(g_engine->backend, g_engine->exec, table_for(state.range(0))));
}
void drop_engine(const benchmark::State&) {
  delete g_engine;
  g_engine = nullptr;
}

/// The same through a channel per submitting thread (multipath::channel, issue 11); the engine is
/// made before the threads start and dropped after they all end.
void BM_engine_map_complete_channel(benchmark::State& state) {
  bench_io io;
  io.nr_bytes = 4096;
  auto ch = std::make_unique<engine_type::channel>(*g_engine->engine);
  for (auto _ : state) {
    auto mapped = g_engine->engine->submit(io, *ch);
    auto done = g_engine->engine->complete(io, mpath::blk_status::ok);
    benchmark::DoNotOptimize(mapped);
    benchmark::DoNotOptimize(done);
  }
  ch.reset();
  state.SetItemsProcessed(state.iterations());
}

/// The baseline: every map and every completion takes one device-wide mutex.
struct baseline_device {
  std::mutex lock;
  std::list<int> valid{0, 1, 2, 3};
  int map() {
    std::lock_guard guard(lock);
    int p = valid.front();
    valid.splice(valid.end(), valid, valid.begin());
    return p;
  }
  void complete(int) { std::lock_guard guard(lock); }
};
baseline_device* g_baseline = nullptr;

void BM_baseline_map_complete(benchmark::State& state) {
  if (state.thread_index() == 0)
    g_baseline = new baseline_device;
  for (auto _ : state) {
    int p = g_baseline->map();
    benchmark::DoNotOptimize(p);
    g_baseline->complete(p);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    delete g_baseline;
    g_baseline = nullptr;
  }
}

} // namespace

BENCHMARK(BM_engine_map_complete)
    ->Name("engine/map_complete")
    ->ArgName("selector")
    ->DenseRange(0, 3)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_engine_map_complete_channel)
    ->Name("engine/map_complete.channel")
    ->Setup(make_engine)
    ->Teardown(drop_engine)
    ->ArgName("selector")
    ->DenseRange(0, 3)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_baseline_map_complete)->Name("engine/baseline")->Threads(1)->Threads(2)->UseRealTime();
