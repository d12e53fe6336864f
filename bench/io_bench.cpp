// io/<harness>: product.md §7's end-to-end figure. 4 KiB random reads at queue depth 32 over two
// paths to one page-cached file (two descriptors of a 64 MiB file), through the io_uring adapter
// (examples/adapters/io_uring.hpp, one ring). io/engine sends every I/O through an engine
// (round-robin over the two paths, engine_host playing DM core); io/direct is the same harness
// with the engine taken out: the completion resubmits straight to the backend, alternating the
// paths. One benchmark iteration is one I/O; compare the two within one run. fio's figure for the
// same workload comes from bench/io_fio.sh, beside it.
//
// MPATH_IO_BENCH_FILE names the file to use (default: a new one in $TMPDIR or /tmp).

#include "adapters/engine_host.hpp"
#include "adapters/io_uring.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <memory>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using mpath::adapters::block_io;
using mpath::adapters::uring_backend;

constexpr std::size_t depth = 32;
constexpr std::uint64_t block = 4096;
constexpr std::uint64_t file_size = 64ull << 20;

/// The data file, written once and read once so that it is in the page cache.
const std::string& data_file() {
  static const std::string path = [] {
    if (const char* given = std::getenv("MPATH_IO_BENCH_FILE"))
      return std::string(given);
    const char* dir = std::getenv("TMPDIR");
    std::string p = std::string(dir ? dir : "/tmp") + "/mpath_io_bench." + std::to_string(::getpid());
    int fd = ::open(p.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0600);
    if (fd < 0) {
      std::perror("io_bench: create the data file");
      std::exit(1);
    }
    std::vector<char> chunk(1 << 20, 'm');
    for (std::uint64_t off = 0; off < file_size; off += chunk.size())
      if (::pwrite(fd, chunk.data(), chunk.size(), off_t(off)) != ssize_t(chunk.size())) {
        std::perror("io_bench: write the data file");
        std::exit(1);
      }
    for (std::uint64_t off = 0; off < file_size; off += chunk.size())
      (void)!::pread(fd, chunk.data(), chunk.size(), off_t(off));
    ::close(fd);
    std::atexit([] { ::unlink(data_file().c_str()); });
    return p;
  }();
  return path;
}

/// Keeps `depth` reads in flight until `target` have completed; `issue` sends one I/O.
struct harness {
  std::vector<block_io> ios{depth};
  std::vector<std::vector<char>> buffers{depth, std::vector<char>(block)};
  std::mt19937_64 rng{42};
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint64_t> failed{0};
  std::uint64_t target = 0;
  std::atomic<std::uint64_t> issued{0};
  void (*issue)(harness&, block_io&) noexcept = nullptr;
  void* ctx = nullptr;

  void prepare(block_io& io) noexcept {
    io.opcode = block_io::op::read;
    io.nr_bytes = block;
    // rng is only touched by the thread that completes I/O (one ring) or, at the start, by main.
    io.offset = (rng() % (file_size / block)) * block;
  }
  static void on_done(block_io& io, mpath::blk_status s) noexcept {
    auto& h = *static_cast<harness*>(io.user);
    if (s != mpath::blk_status::ok)
      h.failed.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t n = h.done.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (h.issued.fetch_add(1, std::memory_order_relaxed) < h.target) {
      h.prepare(io);
      h.issue(h, io);
    }
    if (n == h.target)
      h.done.notify_all();
  }
  /// Runs `count` I/Os; returns when all have completed.
  void run(std::uint64_t count) {
    done.store(0);
    target = count;
    std::size_t first = std::size_t(std::min<std::uint64_t>(count, depth));
    issued.store(first);
    for (std::size_t i = 0; i < first; ++i) { // all prepared before any can complete
      block_io& io = ios[i];
      io.buffer = buffers[i].data();
      io.user = this;
      io.on_done = &on_done;
      prepare(io);
    }
    for (std::size_t i = 0; i < first; ++i)
      issue(*this, ios[i]);
    for (std::uint64_t d = done.load(std::memory_order_acquire); d < count; d = done.load(std::memory_order_acquire))
      done.wait(d);
  }
};

std::unique_ptr<uring_backend> make_backend() {
  auto b = uring_backend::create({.rings = 1});
  if (!b) {
    std::fprintf(stderr, "io_bench: %s\n", b.err().text.c_str());
    std::exit(1);
  }
  return std::move(*b);
}

void report(benchmark::State& state, const harness& h) {
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(std::int64_t(state.iterations() * block));
  if (h.failed.load() != 0)
    state.SkipWithError("an I/O failed");
}

/// Runs the benchmark's iterations in batches so the harness, not the timer, paces the I/O.
template <class F> void run_batches(benchmark::State& state, harness& h, F&& issue_batch) {
  constexpr std::uint64_t batch = 4096;
  std::uint64_t i = 0;
  for (auto _ : state) {
    (void)_;
    // One iteration = one I/O: every `batch` iterations run the next batch (or what is left).
    if (i % batch == 0)
      issue_batch(h, std::min<std::uint64_t>(batch, std::uint64_t(state.max_iterations) - i));
    ++i;
  }
}

void BM_io_engine(benchmark::State& state) {
  auto backend = make_backend();
  mpath::thread_executor exec;
  std::string table = "0 0 1 1 round-robin 0 2 1 " + data_file() + " 1 " + data_file() + " 1";
  auto host = mpath::adapters::engine_host<uring_backend>::create(*backend, exec, table);
  if (!host) {
    state.SkipWithError(host.err().text.c_str());
    return;
  }
  harness h;
  h.ctx = host->get();
  h.issue = [](harness& hh, block_io& io) noexcept {
    static_cast<mpath::adapters::engine_host<uring_backend>*>(hh.ctx)->submit(io);
  };
  run_batches(state, h, [](harness& hh, std::uint64_t n) { hh.run(n); });
  report(state, h);
}

struct direct_target {
  uring_backend* backend;
  uring_backend::handle_type paths[2];
  std::atomic<unsigned> next{0};
};

void BM_io_direct(benchmark::State& state) {
  auto backend = make_backend();
  direct_target t{backend.get(), {}, {}};
  for (auto& p : t.paths) {
    auto h = backend->open_path(data_file());
    if (!h) {
      state.SkipWithError(h.err().text.c_str());
      return;
    }
    p = *h;
  }
  // Completions go straight back to the harness: no engine, no host.
  backend->set_sink(
      {nullptr, [](void*, block_io& io, mpath::blk_status s) noexcept { io.on_done(io, s); }, nullptr, nullptr});
  harness h;
  h.ctx = &t;
  h.issue = [](harness& hh, block_io& io) noexcept {
    auto& tt = *static_cast<direct_target*>(hh.ctx);
    tt.backend->submit(tt.paths[tt.next.fetch_add(1, std::memory_order_relaxed) & 1], io);
  };
  run_batches(state, h, [](harness& hh, std::uint64_t n) { hh.run(n); });
  report(state, h);
}

} // namespace

BENCHMARK(BM_io_direct)->Name("io/direct")->UseRealTime();
BENCHMARK(BM_io_engine)->Name("io/engine")->UseRealTime();
