#pragma once
// block_workload: mixed reads and writes of self-checking blocks, for proving a backend end to end.
// Every block carries a header (block number, version, checksum of the payload) and a payload
// derived from (seed, block, version), so any read shows whether it got exactly the data the
// workload last wrote there. Each of `depth` slots owns the blocks b with b % depth == slot and has
// one I/O in flight at a time, so the expected contents of every block are always known.
//
// The workload is driven from one thread (`pump`); completions may arrive on any thread. The
// mpathctl demo and the end-to-end tests are built on it.

#include "common.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include <unistd.h>

namespace mpath::adapters {

// ---------------------------------------------------------------- self-checking blocks

struct block_header {
  std::uint64_t magic;
  std::uint64_t block;
  std::uint64_t version;
  std::uint64_t checksum; ///< of the payload that follows the header
};
inline constexpr std::uint64_t block_magic = 0x6d70617468626c6bULL; // "mpathblk"

namespace detail {
inline std::uint64_t splitmix(std::uint64_t& x) noexcept {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
inline std::uint64_t payload_checksum(const unsigned char* p, std::size_t n) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  return h;
}
} // namespace detail

/// Writes the contents of (block, version) into `buf` (`size` >= 64, a multiple of 8).
inline void fill_block(void* buf, std::size_t size, std::uint64_t seed, std::uint64_t block, std::uint64_t version) {
  auto* p = static_cast<unsigned char*>(buf);
  std::uint64_t x = seed ^ (block * 0x9e3779b97f4a7c15ULL) ^ (version << 40) ^ version;
  for (std::size_t i = sizeof(block_header); i + 8 <= size; i += 8) {
    std::uint64_t w = detail::splitmix(x);
    std::memcpy(p + i, &w, 8);
  }
  block_header h{block_magic, block, version, 0};
  h.checksum = detail::payload_checksum(p + sizeof h, size - sizeof h);
  std::memcpy(p, &h, sizeof h);
}

/// What a block holds: whether it is intact (magic and checksum right) and which (block, version).
struct block_identity {
  bool intact = false;
  std::uint64_t block = 0;
  std::uint64_t version = 0;
};
inline block_identity identify_block(const void* buf, std::size_t size) noexcept {
  const auto* p = static_cast<const unsigned char*>(buf);
  block_header h;
  std::memcpy(&h, p, sizeof h);
  bool ok = h.magic == block_magic && h.checksum == detail::payload_checksum(p + sizeof h, size - sizeof h);
  return {ok, h.block, h.version};
}

// ---------------------------------------------------------------- the workload

struct workload_options {
  std::uint64_t blocks = 1024; ///< size of the device in blocks (>= depth)
  std::uint32_t block_size = 4096;
  unsigned depth = 16; ///< I/Os in flight
  unsigned read_percent = 50;
  std::uint64_t seed = 1;
};

/// The I/O the workload issues; `tag` is free for the user's `on_issue` hook.
struct workload_io : block_io {
  std::uint32_t slot = 0;
  std::uint64_t block = 0;
  std::uint64_t version = 0; ///< written, or expected to be read
  std::uint64_t tag = 0;
  std::uint64_t done_ns = 0;
  blk_status status = blk_status::ok;
  bool pending = false; ///< issued and not yet processed (driving thread only)
  std::atomic<std::uint32_t> completions{0};
};

/// Thread safety: every member from the one thread that drives the workload, except that
/// completions (block_io::on_done) arrive from any thread.
class block_workload {
public:
  struct totals {
    std::uint64_t reads = 0, writes = 0; ///< completed successfully
    std::uint64_t errors = 0;            ///< completed with an error
    std::uint64_t bad_data = 0;          ///< reads that returned the wrong contents
    std::uint64_t duplicate_completions = 0;
  };

  /// `submit(io)` hands an I/O to the engine (e.g. engine_host::submit).
  block_workload(workload_options o, std::function<void(workload_io&)> submit)
      : o_(o), submit_(std::move(submit)), expect_(o.blocks), ios_(o.depth), rng_(o.seed) {
    for (unsigned i = 0; i < o_.depth; ++i) {
      auto& io = ios_[i];
      io.slot = i;
      io.nr_bytes = o_.block_size;
      io.buffer = std::aligned_alloc(4096, (o_.block_size + 4095) / 4096 * 4096);
      io.user = this;
      io.on_done = &on_done;
    }
  }
  block_workload(const block_workload&) = delete;
  block_workload& operator=(const block_workload&) = delete;
  ~block_workload() {
    for (auto& io : ios_)
      std::free(io.buffer);
  }

  /// Called on the driving thread just before each I/O is issued (the test stamps it).
  std::function<void(workload_io&)> on_issue;
  /// Called on the driving thread for each completion, after it was checked.
  std::function<void(const workload_io&)> on_complete;

  /// Writes version 0 of every block straight to `fd`, bypassing the engine. Returns false on error.
  bool prepare(int fd) {
    std::vector<unsigned char> buf(o_.block_size);
    for (std::uint64_t b = 0; b < o_.blocks; ++b) {
      fill_block(buf.data(), buf.size(), o_.seed, b, 0);
      if (::pwrite(fd, buf.data(), buf.size(), off_t(b * o_.block_size)) != ssize_t(buf.size()))
        return false;
    }
    return true;
  }

  /// Starts one I/O on every idle slot while issuing is on.
  void start() {
    issuing_ = true;
    for (auto& io : ios_)
      if (!io.pending)
        issue(io);
  }
  void stop_issuing() noexcept { issuing_ = false; }

  /// Processes completions, waiting up to `wait` for the first; reissues on each slot while issuing
  /// is on. Returns how many completions were processed.
  std::size_t pump(std::chrono::nanoseconds wait) {
    std::vector<workload_io*> batch;
    {
      std::unique_lock lock(mutex_);
      if (done_.empty())
        arrived_.wait_for(lock, wait, [this] { return !done_.empty(); });
      batch.swap(done_);
    }
    for (workload_io* io : batch) {
      process(*io);
      if (issuing_)
        issue(*io);
    }
    return batch.size();
  }

  /// Stops issuing and pumps until nothing is in flight or `timeout` passed; returns the number
  /// of I/Os still outstanding (lost, if the backend should have finished them).
  std::size_t drain(std::chrono::nanoseconds timeout) {
    stop_issuing();
    auto end = std::chrono::steady_clock::now() + timeout;
    while (outstanding_ > 0 && std::chrono::steady_clock::now() < end)
      pump(std::chrono::milliseconds(10));
    return outstanding_;
  }

  /// Reads every block straight from `fd` and checks it; returns the number of wrong blocks.
  std::uint64_t verify(int fd) const {
    std::vector<unsigned char> buf(o_.block_size);
    std::uint64_t bad = 0;
    for (std::uint64_t b = 0; b < o_.blocks; ++b) {
      if (::pread(fd, buf.data(), buf.size(), off_t(b * o_.block_size)) != ssize_t(buf.size())) {
        ++bad;
        continue;
      }
      auto id = identify_block(buf.data(), buf.size());
      if (!id.intact || id.block != b || !expect_[b].allows(id.version))
        ++bad;
    }
    return bad;
  }

  const totals& stats() const noexcept { return totals_; }
  std::size_t outstanding() const noexcept { return outstanding_; }
  std::uint64_t blocks_written() const noexcept {
    std::uint64_t n = 0;
    for (const auto& e : expect_)
      n += e.version > 0 ? 1 : 0;
    return n;
  }

private:
  /// What a block may hold: `version`, or one of the writes that failed since (they may have
  /// reached the medium before the error).
  struct expectation {
    std::uint64_t version = 0;
    std::vector<std::uint64_t> maybe;
    std::uint64_t next = 1;
    bool allows(std::uint64_t v) const noexcept {
      return v == version || std::find(maybe.begin(), maybe.end(), v) != maybe.end();
    }
  };

  static void on_done(block_io& b, blk_status s) noexcept {
    auto& io = static_cast<workload_io&>(b);
    auto* self = static_cast<block_workload*>(io.user);
    if (io.completions.fetch_add(1, std::memory_order_acq_rel) != 0) {
      self->duplicates_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    io.status = s;
    io.done_ns = steady_ns();
    // Notify under the lock: once the driving thread sees the I/O it may destroy the workload.
    std::lock_guard guard(self->mutex_);
    self->done_.push_back(&io);
    self->arrived_.notify_one();
  }

  void issue(workload_io& io) {
    std::uint64_t per_slot = o_.blocks / o_.depth;
    std::uint64_t pick = per_slot ? std::uniform_int_distribution<std::uint64_t>(0, per_slot - 1)(rng_) : 0;
    io.block = io.slot + pick * o_.depth;
    io.offset = io.block * o_.block_size;
    auto& e = expect_[io.block];
    if (std::uniform_int_distribution<unsigned>(0, 99)(rng_) < o_.read_percent) {
      io.opcode = block_io::op::read;
      io.version = e.version;
      std::memset(io.buffer, 0, o_.block_size);
    } else {
      io.opcode = block_io::op::write;
      io.version = e.next++;
      fill_block(io.buffer, o_.block_size, o_.seed, io.block, io.version);
    }
    io.completions.store(0, std::memory_order_relaxed);
    io.pending = true;
    ++outstanding_;
    if (on_issue)
      on_issue(io);
    submit_(io);
  }

  void process(workload_io& io) {
    --outstanding_;
    io.pending = false;
    auto& e = expect_[io.block];
    if (io.status != blk_status::ok) {
      ++totals_.errors;
      if (io.opcode == block_io::op::write)
        e.maybe.push_back(io.version); // it may have reached the medium before the error
    } else if (io.opcode == block_io::op::write) {
      ++totals_.writes;
      e.version = io.version;
      e.maybe.clear();
    } else {
      ++totals_.reads;
      auto id = identify_block(io.buffer, o_.block_size);
      if (!id.intact || id.block != io.block || !e.allows(id.version))
        ++totals_.bad_data;
    }
    totals_.duplicate_completions = duplicates_.load(std::memory_order_relaxed);
    if (on_complete)
      on_complete(io);
  }

  workload_options o_;
  std::function<void(workload_io&)> submit_;
  std::vector<expectation> expect_;
  std::vector<workload_io> ios_;
  std::mt19937_64 rng_;
  totals totals_;
  std::size_t outstanding_ = 0;
  bool issuing_ = false;

  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<workload_io*> done_; // guarded by mutex_
  std::atomic<std::uint64_t> duplicates_{0};
};

} // namespace mpath::adapters
