// engine/failover: failover latency in simulation, from the backend's path error to the I/O's
// retried dispatch on the other path (manual time: only that stretch is timed). request: the
// engine fails the path and answers requeue, and the caller resubmits at once (DM core's
// immediate requeue); bio: the engine holds the I/O and its worker (a thread_executor thread)
// reissues it, so the figure includes waking that thread. Round-robin over two paths.

#include <mpath/multipath.hpp>
#include <mpath/thread_executor.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace {

struct bench_io : mpath::io_context {};

/// Records when and where each dispatch happens; paths are opened as "0" and "1".
struct timing_backend {
  using handle_type = int;
  using io_type = bench_io;
  std::atomic<int> last_path{-1};
  std::atomic<std::int64_t> dispatched_ns{0};
  mpath::result<int> open_path(std::string_view name) { return name == "1" ? 1 : 0; }
  void submit(int path, bench_io&) noexcept {
    dispatched_ns.store(now_ns(), std::memory_order_relaxed);
    last_path.store(path, std::memory_order_release);
  }
  void io_done(bench_io&, mpath::blk_status) noexcept {}
  mpath::blk_status probe(int) noexcept { return mpath::blk_status::ok; }
  static std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

template <bool Bio> void BM_engine_failover(benchmark::State& state) {
  using failover_engine = mpath::multipath<timing_backend, mpath::thread_executor>;
  timing_backend backend;
  mpath::thread_executor exec;
  auto created = failover_engine::create(
      backend, exec, Bio ? "2 queue_mode bio 0 1 1 round-robin 0 2 1 0 1 1 1" : "0 0 1 1 round-robin 0 2 1 0 1 1 1");
  if (!created) {
    state.SkipWithError(created.err().text.c_str());
    return;
  }
  auto& engine = **created;
  auto paths = engine.groups().front().paths();
  bench_io io;
  io.nr_bytes = 4096;
  std::uint64_t wrong = 0;
  for (auto _ : state) {
    backend.last_path.store(-1);
    if (engine.submit(io) != mpath::disposition::dispatched) {
      state.SkipWithError("not dispatched");
      break;
    }
    int first = backend.last_path.load(std::memory_order_acquire);
    backend.last_path.store(-1);
    std::int64_t t0 = timing_backend::now_ns();
    auto d = engine.complete(io, mpath::blk_status::transport); // the path error
    if (d == mpath::disposition::requeue)
      (void)engine.submit(io); // DM core resubmits at once
    int second;
    while ((second = backend.last_path.load(std::memory_order_acquire)) < 0) // bio: the worker reissues
      ;
    state.SetIterationTime(double(backend.dispatched_ns.load(std::memory_order_relaxed) - t0) * 1e-9);
    wrong += second == first;
    (void)engine.complete(io, mpath::blk_status::ok);
    engine.reinstate_path(paths[std::size_t(first)]); // both valid again for the next round
  }
  if (wrong != 0)
    state.SkipWithError("retried on the failed path");
  state.SetItemsProcessed(state.iterations());
}

} // namespace

BENCHMARK(BM_engine_failover<false>)->Name("engine/failover/request")->UseManualTime();
BENCHMARK(BM_engine_failover<true>)->Name("engine/failover/bio")->UseManualTime();
