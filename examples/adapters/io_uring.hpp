#pragma once
// The io_uring adapter (liburing >= 2.0; Debian bookworm has 2.3). One ring per completion thread;
// each ring thread also does that ring's submissions, so a ring is only ever touched by one
// thread. Other threads hand I/O over through a short locked list and ring a doorbell (an eventfd
// the ring always has a read pending on) when the ring thread is asleep; everything that piled up
// meanwhile goes to the kernel in one io_uring_submit. Path descriptors are registered files on
// every ring. Optional O_DIRECT. The probe is a one-block read through the ring.
//
//   auto backend = mpath::adapters::uring_backend::create({.rings = 1, .direct = false});
//   if (!backend) { /* backend.err(): ring setup failed, e.g. EPERM in a sandbox */ }
//
// Build with `pkg-config --cflags --libs liburing`.

#include "common.hpp"

#include <mpath/error.hpp>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace mpath::adapters {

struct uring_options {
  unsigned rings = 1;               ///< rings, each with its own thread; path i uses ring i % rings
  unsigned entries = 256;           ///< submission queue size of each ring
  unsigned max_paths = 64;          ///< size of the registered file table
  bool direct = false;              ///< open paths with O_DIRECT (then I/O must be aligned)
  std::uint32_t alignment = 4096;   ///< enforced with `direct`
  std::uint32_t probe_bytes = 4096; ///< the probe reads this much at offset 0
  int open_flags = O_RDWR;
};

/// Models mpath::IoBackend.
///
/// Thread safety: `submit`, `probe` and `counters` from any thread; `open_path` from one thread at a
/// time, also while I/O runs (engine construction, a reload). Completions are reported from the ring threads. Destroy
/// the engine first; the destructor waits for I/O in flight, then stops the rings.
class uring_backend : public sink_holder<block_io> {
public:
  struct handle_type {
    int fd = -1;
    std::uint32_t id = 0; ///< index in open order, also the registered-file slot
  };
  using io_type = block_io;

  /// Sets up the rings; the error carries the errno of a failed io_uring_queue_init (EPERM,
  /// ENOSYS or EINVAL where io_uring is unavailable or restricted).
  static result<std::unique_ptr<uring_backend>> create(uring_options options = {}) {
    std::unique_ptr<uring_backend> b(new uring_backend(options));
    if (options.rings == 0 || options.entries < 2)
      return error{EINVAL, "io_uring: at least one ring of two entries"};
    for (unsigned i = 0; i < options.rings; ++i) {
      auto r = std::make_unique<ring>();
      if (int e = r->setup(options); e != 0)
        return error{e, std::string("io_uring setup: ") + std::strerror(e)};
      b->rings_.push_back(std::move(r));
    }
    for (auto& r : b->rings_)
      r->thread = std::thread([self = b.get(), rp = r.get()] { self->ring_loop(*rp); });
    return b;
  }

  uring_backend(const uring_backend&) = delete;
  uring_backend& operator=(const uring_backend&) = delete;
  ~uring_backend() {
    for (auto& r : rings_) {
      if (!r->thread.joinable())
        continue;
      {
        std::lock_guard guard(r->mutex);
        r->stopping = true;
      }
      r->ring_doorbell();
      r->thread.join();
    }
    rings_.clear();
    for (auto& p : paths_)
      ::close(p.fd);
  }

  result<handle_type> open_path(std::string_view device) {
    if (paths_.full())
      return error{ENOSPC, "error getting device"};
    std::string name(device);
    int fd = ::open(name.c_str(), options_.open_flags | O_CLOEXEC | (options_.direct ? O_DIRECT : 0));
    if (fd < 0)
      return error{errno, "error getting device"};
    auto id = std::uint32_t(paths_.size());
    for (auto& r : rings_)
      if (int e = io_uring_register_files_update(&r->uring, id, &fd, 1); e < 0) {
        ::close(fd);
        return error{-e, "error getting device"};
      }
    paths_.add([&](path_rec& p) {
      p.device = std::move(name);
      p.fd = fd;
    });
    return handle_type{fd, id};
  }

  void submit(handle_type& h, block_io& io) noexcept {
    io.path_id = h.id;
    io.done_bytes = 0;
    io.kind = kind_io;
    io.submit_ns = steady_ns();
    paths_[h.id].stats.issued.fetch_add(1, std::memory_order_relaxed);
    ring_of(h.id).push(io);
  }

  /// Reads `probe_bytes` at offset 0 through the path's ring and waits for the answer.
  blk_status probe(handle_type& h) noexcept {
    std::size_t size = (options_.probe_bytes + options_.alignment - 1) / options_.alignment * options_.alignment;
    std::unique_ptr<void, decltype(&std::free)> buf(std::aligned_alloc(options_.alignment, size), &std::free);
    if (!buf)
      return blk_status::resource;
    probe_io p;
    p.buffer = buf.get();
    p.nr_bytes = options_.probe_bytes;
    p.path_id = h.id;
    p.kind = kind_probe;
    ring_of(h.id).push(p);
    return p.wait();
  }

  std::size_t path_count() const noexcept { return paths_.size(); }
  const std::string& device(std::uint32_t id) const noexcept { return paths_[id].device; }
  path_counters counters(std::uint32_t id) const noexcept { return paths_[id].stats.snapshot(); }
  /// How many io_uring_submit calls carried more than one SQE (batching at work).
  std::uint64_t batched_submits() const noexcept { return batched_.load(std::memory_order_relaxed); }

private:
  static constexpr std::uint8_t kind_io = 0, kind_probe = 1;
  static constexpr std::uint64_t doorbell_tag = 1; // user_data of the eventfd read; I/O pointers are aligned

  struct path_rec {
    std::string device;
    int fd = -1;
    path_stats stats;
  };

  struct ring {
    io_uring uring{};
    int efd = -1;
    std::uint64_t efd_value = 0; // the doorbell read lands here
    std::thread thread;
    unsigned capacity = 0;

    std::mutex mutex;
    block_io* head = nullptr; // handed over by other threads; guarded by mutex
    block_io* tail = nullptr;
    bool sleeping = false; // the ring thread waits in the kernel; guarded by mutex
    bool stopping = false; // guarded by mutex

    int setup(const uring_options& o) {
      efd = ::eventfd(0, EFD_CLOEXEC);
      if (efd < 0)
        return errno;
      io_uring_params params{};
      params.flags = IORING_SETUP_CLAMP;
      if (int e = io_uring_queue_init_params(o.entries, &uring, &params); e < 0) {
        ::close(efd);
        efd = -1;
        return -e;
      }
      if (int e = io_uring_register_files_sparse(&uring, o.max_paths); e < 0) {
        io_uring_queue_exit(&uring);
        ::close(efd);
        efd = -1;
        return -e;
      }
      capacity = params.sq_entries - 1; // one entry for the doorbell
      return 0;
    }
    ~ring() {
      if (efd >= 0) {
        io_uring_queue_exit(&uring);
        ::close(efd);
      }
    }

    void push(block_io& io) noexcept {
      io.link = nullptr;
      std::lock_guard guard(mutex);
      if (tail)
        tail->link = &io;
      else
        head = &io;
      tail = &io;
      if (std::exchange(sleeping, false))
        ring_doorbell(); // only when the ring thread waits; under the lock, so the ring is still there
    }
    void ring_doorbell() noexcept {
      std::uint64_t one = 1;
      while (::write(efd, &one, sizeof one) < 0 && errno == EINTR) {
      }
    }
  };

  explicit uring_backend(uring_options options) : options_(options), paths_(options.max_paths) {
    if (!options_.direct)
      options_.alignment = alignof(std::max_align_t);
  }

  ring& ring_of(std::uint32_t path_id) noexcept { return *rings_[path_id % rings_.size()]; }

  /// The request itself is unfit (alignment under O_DIRECT, no buffer): not the path's fault.
  bool invalid(const block_io& io) const noexcept {
    if (io.nr_bytes != 0 && !io.buffer)
      return true;
    std::uint64_t a = options_.direct ? options_.alignment : 1;
    return std::uint64_t(reinterpret_cast<std::uintptr_t>(io.buffer)) % a || io.offset % a || io.nr_bytes % a;
  }

  void finish(block_io& io, blk_status s) noexcept {
    if (io.kind == kind_probe) {
      static_cast<probe_io&>(io).finish(s);
      return;
    }
    paths_[io.path_id].stats.count(s);
    report(io, s); // io is no longer ours after this
  }

  /// One ring's thread: prepares what was handed over, submits it in one call, reaps completions.
  void ring_loop(ring& r) {
    block_io* pending = nullptr; // handed over but not yet in the SQ (SQ full or at capacity)
    block_io* pending_tail = nullptr;
    unsigned in_flight = 0;
    auto append = [&](block_io* first, block_io* last) {
      if (!first)
        return;
      if (pending_tail)
        pending_tail->link = first;
      else
        pending = first;
      pending_tail = last;
    };
    arm_doorbell(r);
    io_uring_submit(&r.uring);
    for (;;) {
      bool stopping = false;
      {
        std::lock_guard guard(r.mutex);
        append(r.head, r.tail);
        r.head = r.tail = nullptr;
        stopping = r.stopping;
      }
      if (stopping && !pending && in_flight == 0)
        return;

      while (pending && in_flight < r.capacity) {
        block_io* io = pending;
        if (invalid(*io)) {
          pending = io->link;
          if (!pending)
            pending_tail = nullptr;
          finish(*io, blk_status::notsupp);
          continue;
        }
        io_uring_sqe* sqe = io_uring_get_sqe(&r.uring);
        if (!sqe)
          break;
        pending = io->link;
        if (!pending)
          pending_tail = nullptr;
        prep(sqe, *io);
        ++in_flight;
      }

      bool idle = false;
      if (!pending) {
        std::lock_guard guard(r.mutex);
        if (!r.head && !r.stopping)
          idle = r.sleeping = true; // from here on a push rings the doorbell
      }
      int n = idle ? io_uring_submit_and_wait(&r.uring, 1) : io_uring_submit(&r.uring);
      if (n > 1)
        batched_.fetch_add(1, std::memory_order_relaxed);
      if (idle) {
        std::lock_guard guard(r.mutex);
        r.sleeping = false;
      }

      io_uring_cqe* cqe = nullptr;
      unsigned head = 0, seen = 0;
      io_uring_for_each_cqe(&r.uring, head, cqe) {
        ++seen;
        std::uint64_t tag = io_uring_cqe_get_data64(cqe);
        if (tag == doorbell_tag) {
          arm_doorbell(r);
          continue;
        }
        --in_flight;
        auto& io = *reinterpret_cast<block_io*>(tag);
        if (auto s = progress(io, cqe->res)) {
          finish(io, *s);
        } else {
          io.link = nullptr; // short transfer or EINTR: issue the rest again
          append(&io, &io);
        }
      }
      io_uring_cq_advance(&r.uring, seen);
    }
  }

  void prep(io_uring_sqe* sqe, block_io& io) noexcept {
    auto* at = static_cast<unsigned char*>(io.buffer) + io.done_bytes;
    auto n = unsigned(io.nr_bytes - io.done_bytes);
    std::uint64_t off = io.offset + io.done_bytes;
    if (io.opcode == block_io::op::read)
      io_uring_prep_read(sqe, int(io.path_id), at, n, off);
    else
      io_uring_prep_write(sqe, int(io.path_id), at, n, off);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(&io));
  }

public:
  /// Applies one CQE result to `io`: its final status, or nothing when the rest must be issued
  /// again (EINTR, a short transfer). Errors go through errno_to_blk_status.
  static std::optional<blk_status> progress(block_io& io, int res) noexcept {
    if (res == -EINTR)
      return std::nullopt;
    if (res < 0)
      return errno_to_blk_status(-res);
    if (res == 0 && io.nr_bytes != 0) // end of the device: every path would say the same
      return io.opcode == block_io::op::read ? blk_status::target : blk_status::ioerr;
    io.done_bytes += std::uint64_t(res);
    if (io.done_bytes < io.nr_bytes)
      return std::nullopt;
    return blk_status::ok;
  }

private:
  void arm_doorbell(ring& r) noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&r.uring);
    if (!sqe) { // full: submit what is there and try again
      io_uring_submit(&r.uring);
      sqe = io_uring_get_sqe(&r.uring);
    }
    io_uring_prep_read(sqe, r.efd, &r.efd_value, sizeof r.efd_value, 0);
    io_uring_sqe_set_data64(sqe, doorbell_tag);
  }

  uring_options options_;
  path_table<path_rec> paths_; // grows only in open_path; records never move
  std::vector<std::unique_ptr<ring>> rings_;
  std::atomic<std::uint64_t> batched_{0};
};

} // namespace mpath::adapters
