#pragma once
// What the example adapters (posix.hpp, io_uring.hpp, sg_io.hpp) share: the I/O type they carry,
// how they report completions to whoever drives the engine, the one errno -> block status mapping,
// and a small worker pool for adapters whose system calls block.
//
// Not part of the library: copy the adapter you want together with this file, or include them from
// examples/adapters/. Linux only.

#include <mpath/io.hpp>
#include <mpath/io_backend.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace mpath::adapters {

/// One block I/O as the adapters carry it. The caller fills the first group of fields (and
/// `nr_bytes`, the length, inherited from io_context); the adapter owns the rest while it has the
/// I/O. When the engine is finished with it, the adapter calls `on_done(io, status)` exactly once.
struct block_io : io_context {
  enum class op : std::uint8_t { read, write };

  // ---- set by the caller
  op opcode = op::read;
  void* buffer = nullptr;   ///< nr_bytes long; aligned as the adapter requires (O_DIRECT)
  std::uint64_t offset = 0; ///< in bytes
  void (*on_done)(block_io&, blk_status) noexcept = nullptr;
  void* user = nullptr; ///< free for the caller

  // ---- adapter-owned
  std::uint64_t submit_ns = 0;  ///< steady clock when an adapter last issued it to a path
  std::uint64_t done_bytes = 0; ///< progress of the short-transfer loop
  block_io* link = nullptr;     ///< the adapter's queues
  std::uint32_t path_id = 0;    ///< the path it was last issued to
  std::uint8_t kind = 0;        ///< adapter-internal tag (probe, ...)
};

/// A synchronous probe through an asynchronous adapter: the prober issues it and `wait`s; the
/// adapter's completion path calls `finish` instead of reporting it (io_uring.hpp, nbd.hpp).
struct probe_io : block_io {
  blk_status wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return finished_; });
    return status_;
  }
  void finish(blk_status s) noexcept {
    std::lock_guard guard(mutex_); // the prober frees this once it sees `finished_`
    status_ = s;
    finished_ = true;
    cv_.notify_one();
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool finished_ = false; // guarded by mutex_
  blk_status status_ = blk_status::ok;
};

/// Steady-clock nanoseconds, the time base of `block_io::submit_ns` and of mpath::thread_executor.
inline std::uint64_t steady_ns() noexcept {
  return std::uint64_t(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

/// Where an adapter reports to: `complete` for every I/O it finishes (the host calls the engine's
/// complete() and acts on the answer), `kick` when the engine asks to re-drive requeued I/O, and
/// `event` for path events. `complete` may be called from any adapter thread.
template <class Io> struct completion_sink {
  void* ctx = nullptr;
  void (*complete)(void* ctx, Io& io, blk_status status) noexcept = nullptr;
  void (*kick)(void* ctx) noexcept = nullptr;
  void (*event)(void* ctx, const path_event& e) noexcept = nullptr;
};

/// The IoBackend members every adapter has in the same form: the sink, `io_done`, `kick_requeue`
/// and `on_event`. Set the sink before the first I/O.
template <class Io> class sink_holder {
public:
  void set_sink(const completion_sink<Io>& s) noexcept { sink_ = s; }
  const completion_sink<Io>& sink() const noexcept { return sink_; }

  void io_done(Io& io, blk_status status) noexcept {
    if (io.on_done)
      io.on_done(io, status);
  }
  void kick_requeue() noexcept {
    if (sink_.kick)
      sink_.kick(sink_.ctx);
  }
  void on_event(const path_event& e) noexcept {
    if (sink_.event)
      sink_.event(sink_.ctx, e);
  }

protected:
  void report(Io& io, blk_status status) noexcept { sink_.complete(sink_.ctx, io, status); }

private:
  completion_sink<Io> sink_;
};

/// The one errno -> block status mapping of the POSIX and io_uring adapters (and of SG_IO's ioctl
/// failures). It is the inverse of the kernel's blk_errors table (kernel-target.md §4.4), so the
/// non-path statuses come from the same errnos as in the kernel, plus the errnos a user-space
/// transport reports when a path goes away. Anything unknown is `ioerr`, a path error, as in the
/// kernel's errno_to_blk_status.
constexpr blk_status errno_to_blk_status(int err) noexcept {
  switch (err) {
  case 0: return blk_status::ok;
  // Not path errors: every path would answer the same.
  case EOPNOTSUPP: return blk_status::notsupp;
  case ENOSPC:
  case EDQUOT:
  case EFBIG: return blk_status::nospc;
  case EREMOTEIO:
  case EROFS: return blk_status::target;
  case EBADE: return blk_status::resv_conflict;
  case ENODATA: return blk_status::medium;
  case EILSEQ: return blk_status::protection;
  // Path errors.
  case ETIMEDOUT: return blk_status::timeout;
  case ENOLINK:
  case ENXIO:
  case ENOTCONN:
  case ECONNRESET:
  case ECONNREFUSED:
  case ECONNABORTED:
  case EPIPE:
  case ESHUTDOWN:
  case EHOSTUNREACH:
  case EHOSTDOWN:
  case ENETUNREACH:
  case ENETDOWN:
  case ENETRESET: return blk_status::transport;
  case ENODEV:
  case EBADF: return blk_status::offline;
  case ENOMEM:
  case ENOBUFS: return blk_status::resource;
  case EBUSY: return blk_status::dev_resource;
  case EAGAIN: return blk_status::again;
  case ETOOMANYREFS: return blk_status::zone_open_resource;
  case EOVERFLOW: return blk_status::zone_active_resource;
  case ETIME: return blk_status::duration_limit;
  case EINVAL: return blk_status::inval;
  default: return blk_status::ioerr; // EIO and everything else
  }
}

/// A fixed set of threads taking items from one FIFO, for adapters whose calls block (pread,
/// ioctl). Items are linked through `block_io::link`, so queueing never allocates.
///
/// Thread safety: `push` from any thread. `Fn` runs on a worker thread, one item at a time per
/// worker. The destructor runs whatever is still queued, then joins.
template <class Fn> class worker_pool {
public:
  worker_pool(unsigned threads, Fn fn) : fn_(std::move(fn)) {
    if (threads == 0)
      threads = 1;
    threads_.reserve(threads);
    for (unsigned i = 0; i < threads; ++i)
      threads_.emplace_back([this] { loop(); });
  }
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;
  ~worker_pool() {
    {
      std::lock_guard guard(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_)
      t.join();
  }

  void push(block_io& io) noexcept {
    io.link = nullptr;
    std::lock_guard guard(mutex_);
    if (tail_)
      tail_->link = &io;
    else
      head_ = &io;
    tail_ = &io;
    if (idle_ > 0)
      wake_.notify_one(); // under the lock, so the pool cannot be gone when it runs
  }

private:
  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (head_) {
        block_io* io = head_;
        head_ = io->link;
        if (!head_)
          tail_ = nullptr;
        io->link = nullptr;
        lock.unlock();
        fn_(*io);
        lock.lock();
        continue;
      }
      if (stopping_)
        return;
      ++idle_;
      wake_.wait(lock);
      --idle_;
    }
  }

  Fn fn_;
  std::mutex mutex_;
  std::condition_variable wake_;
  block_io* head_ = nullptr; // guarded by mutex_
  block_io* tail_ = nullptr; // guarded by mutex_
  unsigned idle_ = 0;        // guarded by mutex_
  bool stopping_ = false;    // guarded by mutex_
  std::vector<std::thread> threads_;
};

/// The paths an adapter opened, numbered in open order, in a table of fixed capacity: a reload
/// opens paths while adapter threads look up the ones they do I/O on, so records never move and
/// the table never reallocates. Rec is default-constructible.
///
/// Thread safety: `add` from one thread at a time (open_path: engine construction, a reload);
/// the rest from any thread, for ids `add` returned (published to that thread through the engine).
template <class Rec> class path_table {
public:
  explicit path_table(std::size_t capacity) : recs_(std::make_unique<Rec[]>(capacity)), capacity_(capacity) {}

  /// Fills the next record with `fill(rec)` and publishes it; its id, or nothing when full.
  template <class Fill> std::optional<std::uint32_t> add(Fill&& fill) {
    std::size_t n = size_.load(std::memory_order_relaxed);
    if (n >= capacity_)
      return std::nullopt;
    fill(recs_[n]);
    size_.store(n + 1, std::memory_order_release);
    return std::uint32_t(n);
  }
  bool full() const noexcept { return size() >= capacity_; }
  std::size_t size() const noexcept { return size_.load(std::memory_order_acquire); }
  Rec& operator[](std::uint32_t id) noexcept { return recs_[id]; }
  const Rec& operator[](std::uint32_t id) const noexcept { return recs_[id]; }
  Rec* begin() noexcept { return recs_.get(); }
  Rec* end() noexcept { return recs_.get() + size(); }

private:
  std::unique_ptr<Rec[]> recs_;
  std::size_t capacity_;
  std::atomic<std::size_t> size_{0};
};

/// A snapshot of a path's counters (the demo prints IOPS from them).
struct path_counters {
  std::uint64_t issued = 0;    ///< I/Os issued to the path
  std::uint64_t completed = 0; ///< I/Os it finished successfully
  std::uint64_t failed = 0;    ///< I/Os it finished with an error
};

/// The live counters behind path_counters; updated by adapter threads, read from any thread.
struct path_stats {
  std::atomic<std::uint64_t> issued{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};

  void count(blk_status s) noexcept {
    (s == blk_status::ok ? completed : failed).fetch_add(1, std::memory_order_relaxed);
  }
  path_counters snapshot() const noexcept {
    return {issued.load(std::memory_order_relaxed), completed.load(std::memory_order_relaxed),
            failed.load(std::memory_order_relaxed)};
  }
};

} // namespace mpath::adapters
