#pragma once
// The POSIX adapter: pread/pwrite on one file descriptor per path, run on a small worker pool so a
// blocking call never stalls the thread that submits. Paths are file names (a block device, a
// file, a hard link to it); each path gets its own descriptor.
//
//   mpath::adapters::posix_backend<> backend;                       // 4 workers, O_RDWR
//   auto host = mpath::adapters::engine_host<decltype(backend)>::create(backend, executor, table);
//
// The system calls go through a seam (`Sys`, default posix_syscalls) so tests can inject EINTR,
// errors and short transfers. Statuses come from errno_to_blk_status (common.hpp).

#include "common.hpp"

#include <mpath/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <unistd.h>

namespace mpath::adapters {

/// The system calls of the POSIX adapter. Each returns its result, or -errno.
struct posix_syscalls {
  int open(const char* path, int flags) noexcept {
    int fd = ::open(path, flags | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
  }
  int close(int fd) noexcept { return ::close(fd) < 0 ? -errno : 0; }
  std::int64_t pread(int fd, void* buf, std::size_t n, std::uint64_t off) noexcept {
    ssize_t r = ::pread(fd, buf, n, off_t(off));
    return r < 0 ? -errno : r;
  }
  std::int64_t pwrite(int fd, const void* buf, std::size_t n, std::uint64_t off) noexcept {
    ssize_t r = ::pwrite(fd, buf, n, off_t(off));
    return r < 0 ? -errno : r;
  }
};

struct posix_options {
  unsigned workers = 4;             ///< threads running pread/pwrite
  int open_flags = O_RDWR;          ///< add O_DIRECT for direct I/O (then set alignment)
  std::uint32_t alignment = 0;      ///< buffer/offset/length alignment to enforce; 0 = none
  std::uint32_t probe_bytes = 4096; ///< the probe reads this much at offset 0
  unsigned max_paths = 1024;        ///< descriptors open_path may open (each reload opens its table's paths)
};

/// Models mpath::IoBackend.
///
/// Thread safety: `submit`, `probe` and `counters` from any thread. `open_path` from one thread at
/// a time, also while I/O runs (engine construction, a reload). Completions are reported from
/// worker threads.
/// Destroy the engine first; the destructor finishes queued work, then closes the descriptors.
template <class Sys = posix_syscalls> class posix_backend : public sink_holder<block_io> {
public:
  struct handle_type {
    int fd = -1;
    std::uint32_t id = 0; ///< index of the path in open order
  };
  using io_type = block_io;

  explicit posix_backend(posix_options options = {}, Sys sys = {})
      : options_(options), sys_(std::move(sys)), paths_(options.max_paths) {
    pool_.emplace(options_.workers, runner{this});
  }
  posix_backend(const posix_backend&) = delete;
  posix_backend& operator=(const posix_backend&) = delete;
  ~posix_backend() {
    pool_.reset();
    for (auto& p : paths_)
      sys_.close(p.fd);
  }

  result<handle_type> open_path(std::string_view device) {
    if (paths_.full())
      return error{ENOSPC, "error getting device"};
    std::string name(device);
    int fd = sys_.open(name.c_str(), options_.open_flags);
    if (fd < 0)
      return error{-fd, "error getting device"};
    auto id = paths_.add([&](path_rec& p) {
      p.device = std::move(name);
      p.fd = fd;
    });
    return handle_type{fd, *id};
  }

  void submit(handle_type& h, block_io& io) noexcept {
    io.path_id = h.id;
    io.done_bytes = 0;
    io.submit_ns = steady_ns();
    paths_[h.id].stats.issued.fetch_add(1, std::memory_order_relaxed);
    pool_->push(io);
  }

  /// Reads `probe_bytes` at offset 0 through the path, on the calling thread.
  blk_status probe(handle_type& h) noexcept {
    std::size_t align = options_.alignment ? options_.alignment : alignof(std::max_align_t);
    std::size_t size = (options_.probe_bytes + align - 1) / align * align;
    std::unique_ptr<void, decltype(&std::free)> buf(std::aligned_alloc(align, size), &std::free);
    if (!buf)
      return blk_status::resource;
    block_io io;
    io.buffer = buf.get();
    io.nr_bytes = options_.probe_bytes;
    return transfer(h.fd, io);
  }

  /// Performs `io` on `fd`: EINTR restarts the call, a short transfer continues where it stopped.
  blk_status transfer(int fd, block_io& io) noexcept {
    if (io.nr_bytes != 0 && !io.buffer)
      return blk_status::notsupp;
    if (std::uint64_t a = options_.alignment;
        a && (std::uint64_t(reinterpret_cast<std::uintptr_t>(io.buffer)) % a || io.offset % a || io.nr_bytes % a))
      return blk_status::notsupp; // the request, not the path: do not fail a path over it
    auto* base = static_cast<unsigned char*>(io.buffer);
    while (io.done_bytes < io.nr_bytes) {
      std::size_t n = std::size_t(io.nr_bytes - io.done_bytes);
      std::uint64_t off = io.offset + io.done_bytes;
      std::int64_t r = io.opcode == block_io::op::read ? sys_.pread(fd, base + io.done_bytes, n, off)
                                                       : sys_.pwrite(fd, base + io.done_bytes, n, off);
      if (r == -EINTR)
        continue;
      if (r < 0)
        return errno_to_blk_status(int(-r));
      if (r == 0) // end of the device: every path would say the same
        return io.opcode == block_io::op::read ? blk_status::target : blk_status::ioerr;
      io.done_bytes += std::uint64_t(r);
    }
    return blk_status::ok;
  }

  std::size_t path_count() const noexcept { return paths_.size(); }
  const std::string& device(std::uint32_t id) const noexcept { return paths_[id].device; }
  path_counters counters(std::uint32_t id) const noexcept { return paths_[id].stats.snapshot(); }
  Sys& syscalls() noexcept { return sys_; }

private:
  struct path_rec {
    std::string device;
    int fd = -1;
    path_stats stats;
  };

  struct runner {
    posix_backend* self;
    void operator()(block_io& io) const noexcept { self->run(io); }
  };

  void run(block_io& io) noexcept {
    auto& p = paths_[io.path_id];
    blk_status s = transfer(p.fd, io);
    p.stats.count(s);
    report(io, s); // io is no longer ours after this
  }

  posix_options options_;
  Sys sys_;
  path_table<path_rec> paths_;              // grows only in open_path; records never move
  std::optional<worker_pool<runner>> pool_; // last: its threads use the members above
};

} // namespace mpath::adapters
