#pragma once
// The NBD adapter: one libnbd connection per path, to an NBD server (nbdkit, qemu-nbd, nbd-server).
// Several paths may reach several servers that serve one file (two "controllers" of one LUN), or
// one server. One completion thread runs a poll loop over every connection's socket (libnbd's
// asynchronous API: nbd_aio_pread/nbd_aio_pwrite with completion callbacks, nbd_aio_get_fd and
// nbd_aio_get_direction, nbd_aio_notify_read/write) plus an eventfd that wakes it for new
// submissions; it is the only thread that issues commands on a connection, so a connection's
// commands, their slots and their callbacks never race.
//
//   mpath::adapters::nbd_backend backend({.timeout_ms = 5000});
//   auto host = mpath::adapters::engine_host<decltype(backend)>::create(
//       backend, exec, "1 queue_if_no_path 0 1 1 round-robin 0 2 1 nbd://10.0.0.1 1 nbd://10.0.0.2 1");
//
// Path tokens (the table's path names; no blanks):
//   nbd://HOST[:PORT][/EXPORT], nbd+unix:///EXPORT?socket=PATH, nbds://... (any URI libnbd accepts,
//                        parsed by nbd_connect_uri(3))
//   HOST:PORT, [IPV6]:PORT  plain TCP, the default export
//   HOST                    TCP port 10809
//   /PATH                   a Unix socket, the default export
// HOST is resolved with getaddrinfo on the connecting thread: use numeric addresses when a slow
// resolver must not count against the connect timeout.
//
// The per-I/O timeout (libnbd has none). Every command gets a deadline, `timeout_ms` after it is
// issued; the loop looks for expired ones every timeout_ms/16. When one has expired, the loop
// closes the connection (nbd_close) *first*, and only then completes the expired commands with
// `timeout` and every other command still in flight on that connection with `transport`, each
// exactly once. The path stays dead (its I/O fails at once with `transport`) until `probe` or
// `reconnect` connects it again. A dead connection (reset, EOF, ENOTCONN, ESHUTDOWN) is handled the
// same way, with `transport` for everything in flight.
//
// What closing before completing guarantees, and what it does not (docs/nbd.md):
// - nbd_close frees libnbd's commands without calling their callbacks, so no late answer can
//   complete an I/O a second time, and libnbd never writes into a read's buffer after the I/O was
//   handed back. The socket is closed abortively (SO_LINGER 0), so requests still in this
//   machine's send queue are discarded rather than delivered after the retry.
// - A server that sees the connection closed does not run the requests it has not read yet;
//   nbdkit also abandons a request still waiting in its delay filter (nbd_test.cpp checks this).
// - Not guaranteed: a request the server already received (it may be busy or stopped), or one
//   the network still holds, may be executed after the retry and overwrite a newer write made
//   through another path. NBD has no abort and no fencing. `quiesce_ms` narrows the window as
//   NVMe's Command Quiesce Time does: the I/O of a dropped connection is reported only that long
//   after the close, enough when server and network bound their own delays by that much.
//
// Errors: `nbd_errno_to_blk_status` below. libnbd itself allocates a small record per command;
// that is outside our control. This adapter allocates nothing per I/O: the I/O's state lives in
// block_io's adapter-owned fields and in a fixed array of slots per connection.
//
// Build with `pkg-config --cflags --libs libnbd` (Debian: libnbd-dev).

#include "common.hpp"

#include <mpath/error.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <libnbd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mpath::adapters {

/// An NBD command's errno -> block status. The server's answer is about the request or the export
/// when it is EINVAL, ERANGE or EOVERFLOW (out of range, too large, misaligned: SCSI's ILLEGAL
/// REQUEST) or EPERM (a write to a read-only export: SCSI's DATA PROTECT): every path would answer
/// the same, so these are `target`, not path errors, as sg_io.hpp decodes the SCSI senses.
/// Everything else is common.hpp's mapping: ENOSPC `nospc` and ENOTSUP `notsupp` (not path
/// errors); ENOTCONN, ECONNRESET, ESHUTDOWN and the other connection errnos `transport`, ETIMEDOUT
/// `timeout`, ENOMEM `resource` (path errors).
///
/// EIO is `ioerr`, a path error, as in the POSIX adapter and as the kernel does for SCSI's
/// HARDWARE ERROR and for host-side failures: an NBD server's EIO does not say whether the medium
/// is bad (which every path would see) or this server's way to it (another controller may do the
/// I/O). multipathd and dm-multipath resolve that doubt by failing the path and retrying elsewhere;
/// the cost is that a block that is bad for every server fails each path in turn (and, with
/// queue_if_no_path, then queues until no_path_retry runs out).
constexpr blk_status nbd_errno_to_blk_status(int err) noexcept {
  switch (err) {
  case EINVAL:
  case ERANGE:
  case EOVERFLOW:
  case EPERM: return blk_status::target;
  default: return errno_to_blk_status(err);
  }
}

struct nbd_options {
  std::uint32_t timeout_ms = 5000; ///< per command (and per connection attempt, unless set below)
  /// per connection attempt (TCP handshake and NBD negotiation, which take round trips an I/O does
  /// not); 0: timeout_ms
  std::uint32_t connect_timeout_ms = 0;
  std::uint32_t quiesce_ms = 0;     ///< hold the I/O of a dropped connection this long (see above)
  std::uint32_t max_in_flight = 64; ///< commands per connection; more wait in the adapter
  std::uint32_t max_paths = 64;
  std::uint32_t probe_bytes = 4096; ///< the probe reads this much at offset 0
};

/// Models mpath::IoBackend.
///
/// Thread safety: `submit`, `probe`, `reconnect` and the accessors from any thread; `open_path`
/// only while no I/O runs (the engine calls it during construction). Completions are reported from
/// the completion thread. Destroy the engine first; the destructor waits for I/O in flight (bounded
/// by the timeout), then closes the connections.
class nbd_backend : public sink_holder<block_io> {
public:
  struct handle_type {
    std::uint32_t id = 0; ///< index of the path in open order
  };
  using io_type = block_io;

  explicit nbd_backend(nbd_options options = {}) : options_(options) {
    if (options_.max_in_flight == 0)
      options_.max_in_flight = 1;
    if (options_.timeout_ms == 0)
      options_.timeout_ms = 1;
    if (options_.connect_timeout_ms == 0)
      options_.connect_timeout_ms = options_.timeout_ms;
    paths_.resize(options_.max_paths);
    fds_.resize(std::size_t(options_.max_paths) + 1);
    polled_.resize(options_.max_paths);
    efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    thread_ = std::thread([this] { loop(); });
  }
  nbd_backend(const nbd_backend&) = delete;
  nbd_backend& operator=(const nbd_backend&) = delete;
  ~nbd_backend() {
    {
      std::lock_guard guard(mutex_);
      stopping_ = true;
      ring_locked();
    }
    thread_.join();
    for (auto& p : paths_)
      if (p && p->fresh)
        nbd_close(p->fresh);
    if (efd_ >= 0)
      ::close(efd_);
  }

  /// Connects to the server named by `token` (the forms above), within the timeout.
  result<handle_type> open_path(std::string_view token) {
    if (efd_ < 0)
      return error{EMFILE, "error getting device"};
    auto id = npaths_.load(std::memory_order_relaxed);
    if (id >= options_.max_paths)
      return error{ENOSPC, "error getting device"};
    auto p = std::make_unique<path_rec>();
    p->token = std::string(token);
    p->slots = std::make_unique<slot[]>(options_.max_in_flight);
    p->free_slots = std::make_unique<std::uint32_t[]>(options_.max_in_flight);
    for (std::uint32_t i = 0; i < options_.max_in_flight; ++i) {
      p->slots[i].path = p.get();
      p->free_slots[i] = options_.max_in_flight - 1 - i;
    }
    p->nr_free = options_.max_in_flight;
    nbd_handle* h = nullptr;
    if (int e = connect(p->token, h); e != 0)
      return error{e, "error getting device"};
    p->size = nbd_get_size(h);
    p->fresh = h;
    p->connected = true;
    p->connects = 1;
    paths_[id] = std::move(p);
    npaths_.store(id + 1, std::memory_order_release); // the loop sees the path from here on
    {
      std::lock_guard guard(mutex_);
      ring_locked();
    }
    return handle_type{id};
  }

  void submit(handle_type& h, block_io& io) noexcept {
    io.path_id = h.id;
    io.kind = kind_io;
    io.submit_ns = steady_ns();
    paths_[h.id]->stats.issued.fetch_add(1, std::memory_order_relaxed);
    push(*paths_[h.id], io);
  }

  /// Reads `probe_bytes` at offset 0 through the path's connection, with the timeout. A dead
  /// connection is connected again first: a successful probe is what brings a path back. Never
  /// blocks longer than the connect timeout plus the I/O timeout.
  blk_status probe(handle_type& h) noexcept {
    auto& p = *paths_[h.id];
    std::lock_guard serial(p.probe_mutex); // one probe or reconnect of a path at a time
    if (blk_status s = reconnect_serialized(p); s != blk_status::ok)
      return s;
    std::size_t size = (options_.probe_bytes + 4095) / 4096 * 4096;
    std::unique_ptr<void, decltype(&std::free)> buf(std::aligned_alloc(4096, size ? size : 4096), &std::free);
    if (!buf)
      return blk_status::resource;
    probe_io io;
    io.buffer = buf.get();
    io.nr_bytes = options_.probe_bytes;
    io.path_id = h.id;
    io.kind = kind_probe;
    io.submit_ns = steady_ns();
    push(p, io);
    return io.wait(); // the loop answers within the timeout
  }

  /// Connects a dead path again without reading through it (`ok` if it is connected already).
  blk_status reconnect(handle_type& h) noexcept {
    auto& p = *paths_[h.id];
    std::lock_guard serial(p.probe_mutex);
    return reconnect_serialized(p);
  }

  std::size_t path_count() const noexcept { return npaths_.load(std::memory_order_acquire); }
  const std::string& device(std::uint32_t id) const noexcept { return paths_[id]->token; }
  path_counters counters(std::uint32_t id) const noexcept { return paths_[id]->stats.snapshot(); }
  /// Whether the path has a live connection (false from the moment the loop dropped it).
  bool connected(std::uint32_t id) const {
    std::lock_guard guard(mutex_);
    return paths_[id]->connected;
  }
  /// Connections made so far (open_path's is the first).
  std::uint64_t connects(std::uint32_t id) const {
    std::lock_guard guard(mutex_);
    return paths_[id]->connects;
  }
  /// Connections dropped because a command timed out.
  std::uint64_t timeouts(std::uint32_t id) const noexcept {
    return paths_[id]->timeouts.load(std::memory_order_relaxed);
  }
  /// The export's size in bytes as the first connection reported it.
  std::int64_t export_size(std::uint32_t id) const noexcept { return paths_[id]->size; }

private:
  static constexpr std::uint8_t kind_io = 0, kind_probe = 1;

  struct path_rec;

  /// A command in flight on a connection. Loop thread only (the callback runs on it too).
  struct slot {
    enum class state : std::uint8_t { free, issuing, in_flight, answered, aborted };
    path_rec* path = nullptr;
    block_io* io = nullptr;
    std::uint64_t deadline_ns = 0;
    int err = 0;
    blk_status status = blk_status::ok; ///< for `aborted`
    state st = state::free;
    slot* next = nullptr; ///< the answered list
  };

  struct path_rec {
    std::string token;
    std::int64_t size = -1;
    path_stats stats;
    std::atomic<std::uint64_t> timeouts{0};
    std::mutex probe_mutex;

    // guarded by nbd_backend::mutex_
    block_io* head = nullptr; ///< submitted, not yet taken by the loop
    block_io* tail = nullptr;
    nbd_handle* fresh = nullptr; ///< connected by open_path/probe/reconnect, for the loop to adopt
    bool connected = false;
    std::uint64_t connects = 0;

    // loop thread only
    nbd_handle* h = nullptr;
    std::unique_ptr<slot[]> slots;
    std::unique_ptr<std::uint32_t[]> free_slots; ///< a stack of free slot indices
    std::uint32_t nr_free = 0;
    block_io* pending = nullptr; ///< taken from the queue, waiting for a slot
    block_io* pending_tail = nullptr;
    slot* answered = nullptr;
    block_io* held = nullptr; ///< dropped-connection I/O waiting out quiesce_ms
    std::uint64_t held_until = 0;
  };

  // ---------------------------------------------------------------- connecting

  /// Connects a handle to `token` within the timeout, on the calling thread. Returns 0 or an errno.
  int connect(const std::string& token, nbd_handle*& out) noexcept {
    nbd_handle* h = nbd_create();
    if (!h)
      return ENOMEM;
    int rc = 0;
    if (token.find("://") != std::string::npos) {
      rc = nbd_aio_connect_uri(h, token.c_str());
    } else if (!token.empty() && token[0] == '/') {
      rc = nbd_aio_connect_unix(h, token.c_str());
    } else {
      std::string host = token, port = "10809";
      if (!host.empty() && host[0] == '[') { // [v6]:port
        auto close = host.find(']');
        if (close == std::string::npos) {
          nbd_close(h);
          return EINVAL;
        }
        if (close + 1 < host.size() && host[close + 1] == ':')
          port = host.substr(close + 2);
        host = host.substr(1, close - 1);
      } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
        port = host.substr(colon + 1);
        host = host.substr(0, colon);
      }
      rc = nbd_aio_connect_tcp(h, host.c_str(), port.c_str());
    }
    int err = rc < 0 ? nbd_get_errno() : 0;
    std::uint64_t deadline = steady_ns() + std::uint64_t(options_.connect_timeout_ms) * 1000000;
    while (err == 0 && !nbd_aio_is_ready(h)) {
      if (nbd_aio_is_dead(h) || nbd_aio_is_closed(h)) {
        err = nbd_get_errno();
        break;
      }
      std::uint64_t now = steady_ns();
      int fd = nbd_aio_get_fd(h);
      if (now >= deadline) {
        err = ETIMEDOUT;
        break;
      }
      if (fd < 0) {
        err = nbd_get_errno();
        break;
      }
      unsigned dir = nbd_aio_get_direction(h);
      pollfd pfd{
          fd, short((dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) | (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0)),
          0};
      int r = ::poll(&pfd, 1, int((deadline - now + 999999) / 1000000));
      if (r < 0 && errno != EINTR) {
        err = errno;
        break;
      }
      if (r <= 0)
        continue;
      if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
        rc = nbd_aio_notify_read(h);
      if (rc == 0 && (pfd.revents & POLLOUT))
        rc = nbd_aio_notify_write(h);
      if (rc < 0)
        err = nbd_get_errno();
    }
    if (err != 0 || !nbd_aio_is_ready(h)) {
      nbd_close(h);
      return err ? err : ECONNREFUSED;
    }
    out = h;
    return 0;
  }

  /// With the path's probe_mutex held: connects it again if the loop dropped its connection.
  blk_status reconnect_serialized(path_rec& p) noexcept {
    {
      std::lock_guard guard(mutex_);
      if (p.connected)
        return blk_status::ok;
    }
    nbd_handle* h = nullptr;
    if (int e = connect(p.token, h); e != 0) {
      blk_status s = errno_to_blk_status(e);
      return is_path_error(s) ? s : blk_status::transport; // no connection is always a path error
    }
    std::lock_guard guard(mutex_);
    p.fresh = h;
    p.connected = true;
    ++p.connects;
    ring_locked();
    return blk_status::ok;
  }

  // ---------------------------------------------------------------- submission

  void push(path_rec& p, block_io& io) noexcept {
    io.link = nullptr;
    std::lock_guard guard(mutex_);
    if (p.tail)
      p.tail->link = &io;
    else
      p.head = &io;
    p.tail = &io;
    ring_locked();
  }
  /// With mutex_ held, so the backend cannot be gone when the write runs.
  void ring_locked() noexcept {
    if (!std::exchange(sleeping_, false))
      return; // the loop is awake and will look at the queues before it sleeps
    std::uint64_t one = 1;
    while (::write(efd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

  static void append(block_io*& head, block_io*& tail, block_io* first, block_io* last) noexcept {
    if (!first)
      return;
    if (tail)
      tail->link = first;
    else
      head = first;
    tail = last;
  }

  // ---------------------------------------------------------------- completion

  void finish(block_io& io, blk_status s) noexcept {
    if (io.kind == kind_probe) {
      static_cast<probe_io&>(io).finish(s);
      return;
    }
    paths_[io.path_id]->stats.count(s);
    report(io, s); // io is no longer ours after this
  }

  /// libnbd's completion callback, on the loop thread inside nbd_aio_notify_* or nbd_aio_p*; it
  /// only records the answer (the I/O is completed after libnbd's call returns, outside its lock).
  static int on_reply(void* user, int* error) {
    auto* s = static_cast<slot*>(user);
    if (s->st == slot::state::issuing || s->st == slot::state::in_flight) {
      s->err = *error;
      s->st = slot::state::answered;
      s->next = s->path->answered;
      s->path->answered = s;
    }
    return 1; // retire the command: we never call nbd_aio_command_completed
  }

  void release(path_rec& p, slot& s) noexcept {
    s.io = nullptr;
    s.st = slot::state::free;
    p.free_slots[p.nr_free++] = std::uint32_t(&s - p.slots.get());
  }

  void drain_answered(path_rec& p) noexcept {
    while (slot* s = p.answered) {
      p.answered = s->next;
      block_io* io = s->io;
      int err = s->err;
      release(p, *s);
      finish(*io, err == 0 ? blk_status::ok : nbd_errno_to_blk_status(err));
    }
  }

  /// Issues what waits for a slot; on a dead path fails it with `transport` at once.
  void issue_pending(path_rec& p, std::uint64_t now) noexcept {
    while (p.pending) {
      block_io* io = p.pending;
      if (!p.h) {
        p.pending = io->link;
        if (!p.pending)
          p.pending_tail = nullptr;
        finish(*io, blk_status::transport);
        continue;
      }
      if (p.nr_free == 0)
        return;
      p.pending = io->link;
      if (!p.pending)
        p.pending_tail = nullptr;
      slot& s = p.slots[p.free_slots[--p.nr_free]];
      s.io = io;
      s.st = slot::state::issuing;
      s.deadline_ns = now + std::uint64_t(options_.timeout_ms) * 1000000;
      if (io->nr_bytes != 0 && !io->buffer) { // the request, not the path
        release(p, s);
        finish(*io, blk_status::notsupp);
        continue;
      }
      nbd_completion_callback cb{.callback = &on_reply, .user_data = &s, .free = nullptr};
      std::int64_t cookie = io->opcode == block_io::op::read
                                ? nbd_aio_pread(p.h, io->buffer, io->nr_bytes, io->offset, cb, 0)
                                : nbd_aio_pwrite(p.h, io->buffer, io->nr_bytes, io->offset, cb, 0);
      if (cookie >= 0) {
        if (s.st == slot::state::issuing)
          s.st = slot::state::in_flight;
        continue; // (or already answered: it is on the answered list)
      }
      if (s.st == slot::state::answered)
        continue; // the callback ran after all
      int err = nbd_get_errno();
      if (nbd_aio_is_ready(p.h) || nbd_aio_is_processing(p.h)) {
        release(p, s); // refused by libnbd itself (strict mode: out of range, too large)
        finish(*io, err ? nbd_errno_to_blk_status(err) : blk_status::ioerr);
        continue;
      }
      release(p, s); // the connection is gone: this one goes with the rest
      io->link = p.pending;
      p.pending = io;
      if (!p.pending_tail)
        p.pending_tail = io;
      drop(p, now, false);
    }
  }

  /// Drops the connection: closes it first, then completes every command it had, exactly once.
  void drop(path_rec& p, std::uint64_t now, bool timed_out) noexcept {
    if (!p.h)
      return;
    // Commands whose answer has not come: aborted, with the status they will get. The callback
    // ignores aborted slots (nbd_close does not call it, but a transition to dead might).
    bool any_aborted = false;
    for (std::uint32_t i = 0; i < options_.max_in_flight; ++i) {
      slot& s = p.slots[i];
      if (s.st == slot::state::issuing || s.st == slot::state::in_flight) {
        s.st = slot::state::aborted;
        s.status = timed_out && s.deadline_ns <= now ? blk_status::timeout : blk_status::transport;
        any_aborted = true;
      }
    }
    // Close before completing anything: from here on libnbd can neither call back for these
    // commands nor touch their buffers, and the server sees the socket closed before any retry.
    // Abortively (SO_LINGER 0: a reset): a plain close leaves requests libnbd already wrote in the
    // kernel's send queue, and the kernel would still deliver them after a black-holed link came
    // back, long after their retry (tests/adapters/nbd_test.cpp's black-hole test caught this).
    if (int fd = nbd_aio_get_fd(p.h); fd >= 0) {
      linger off{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof off);
    }
    nbd_close(p.h);
    p.h = nullptr;
    if (timed_out)
      p.timeouts.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard guard(mutex_);
      p.connected = false;
    }
    drain_answered(p); // answers that arrived before the drop are genuine
    std::uint64_t hold = std::uint64_t(options_.quiesce_ms) * 1000000;
    for (std::uint32_t i = 0; any_aborted && i < options_.max_in_flight; ++i) {
      slot& s = p.slots[i];
      if (s.st != slot::state::aborted)
        continue;
      block_io* io = s.io;
      blk_status st = s.status;
      release(p, s);
      if (hold == 0) {
        finish(*io, st);
      } else {
        io->done_bytes = std::uint64_t(st); // the status to report when the hold ends
        io->link = p.held;
        p.held = io;
        p.held_until = now + hold;
      }
    }
    issue_pending(p, now); // no connection: fails what waited for a slot
  }

  void release_held(path_rec& p, std::uint64_t now) noexcept {
    if (!p.held || now < p.held_until)
      return;
    block_io* io = std::exchange(p.held, nullptr);
    while (io) {
      block_io* next = io->link;
      finish(*io, blk_status(io->done_bytes));
      io = next;
    }
  }

  // ---------------------------------------------------------------- the loop

  void loop() {
    const std::uint64_t timeout_ns = std::uint64_t(options_.timeout_ms) * 1000000;
    const std::uint64_t scan_ns = std::max<std::uint64_t>(timeout_ns / 16, 1000000);
    std::uint64_t next_scan = 0;
    for (;;) {
      std::uint32_t n = npaths_.load(std::memory_order_acquire);
      bool stopping = false;
      {
        std::lock_guard guard(mutex_);
        for (std::uint32_t i = 0; i < n; ++i) {
          path_rec& p = *paths_[i];
          if (p.fresh) {
            p.h = std::exchange(p.fresh, nullptr);
          }
          append(p.pending, p.pending_tail, p.head, p.tail);
          p.head = p.tail = nullptr;
        }
        stopping = stopping_;
      }
      std::uint64_t now = steady_ns();
      bool busy = false, held = false;
      std::uint64_t wake_at = ~std::uint64_t(0);
      for (std::uint32_t i = 0; i < n; ++i)
        issue_pending(*paths_[i], now);
      if (now >= next_scan) {
        for (std::uint32_t i = 0; i < n; ++i) {
          path_rec& p = *paths_[i];
          for (std::uint32_t j = 0; p.h && j < options_.max_in_flight; ++j) {
            const slot& s = p.slots[j];
            if ((s.st == slot::state::in_flight || s.st == slot::state::issuing) && s.deadline_ns <= now) {
              drop(p, now, true);
              break;
            }
          }
        }
        next_scan = now + scan_ns;
      }
      for (std::uint32_t i = 0; i < n; ++i) {
        path_rec& p = *paths_[i];
        release_held(p, now);
        busy = busy || p.nr_free != options_.max_in_flight || p.pending;
        if (p.held) {
          held = true;
          wake_at = std::min(wake_at, p.held_until);
        }
      }
      if (busy)
        wake_at = std::min(wake_at, next_scan);
      if (stopping && !busy && !held)
        break;

      std::size_t k = 0;
      fds_[k++] = pollfd{efd_, POLLIN, 0};
      for (std::uint32_t i = 0; i < n; ++i) {
        path_rec& p = *paths_[i];
        if (!p.h)
          continue;
        int fd = nbd_aio_get_fd(p.h);
        if (fd < 0) {
          drop(p, now, false);
          continue;
        }
        unsigned dir = nbd_aio_get_direction(p.h);
        fds_[k] = pollfd{
            fd,
            short((dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) | (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0)),
            0};
        polled_[k - 1] = &p;
        ++k;
      }
      int wait_ms = -1;
      if (wake_at != ~std::uint64_t(0))
        wait_ms = wake_at <= now ? 0 : int((wake_at - now + 999999) / 1000000);
      {
        std::lock_guard guard(mutex_);
        // A path opened since `n` was read is work too: open_path may have rung while this loop
        // was awake, and a submit to that path would then not ring again (a lost wake-up).
        bool queued = stopping_ != stopping || npaths_.load(std::memory_order_acquire) != n;
        for (std::uint32_t i = 0; i < n && !queued; ++i)
          queued = paths_[i]->head || paths_[i]->fresh;
        if (queued)
          wait_ms = 0;
        else
          sleeping_ = true; // from here on a push rings the eventfd
      }
      int r = ::poll(fds_.data(), nfds_t(k), wait_ms);
      {
        std::lock_guard guard(mutex_);
        sleeping_ = false;
      }
      if (r <= 0)
        continue;
      if (fds_[0].revents & POLLIN) {
        std::uint64_t v;
        while (::read(efd_, &v, sizeof v) < 0 && errno == EINTR) {
        }
      }
      now = steady_ns();
      for (std::size_t j = 1; j < k; ++j) {
        path_rec& p = *polled_[j - 1];
        short rev = fds_[j].revents;
        if (!p.h || rev == 0)
          continue;
        int rc = 0;
        if (rev & (POLLIN | POLLHUP | POLLERR)) {
          if (fds_[j].events & POLLIN)
            rc = nbd_aio_notify_read(p.h);
          else
            rc = -1; // hang-up or error while libnbd waits for nothing to read: the connection is gone
        }
        if (rc == 0 && (rev & POLLOUT))
          rc = nbd_aio_notify_write(p.h);
        // A dying connection is dropped before any of its answers is reported (libnbd answers
        // its commands with ENOTCONN as it dies): whoever sees the error then sees the path down.
        if (rc < 0 || nbd_aio_is_dead(p.h) || nbd_aio_is_closed(p.h))
          drop(p, now, false); // reports the answers that came, then the rest
        else
          drain_answered(p);
      }
    }
    for (std::uint32_t i = 0, n = npaths_.load(std::memory_order_acquire); i < n; ++i)
      if (paths_[i]->h) {
        nbd_close(paths_[i]->h);
        paths_[i]->h = nullptr;
      }
  }

  nbd_options options_;
  std::vector<std::unique_ptr<path_rec>> paths_; // sized once; entries below npaths_ never change
  std::atomic<std::uint32_t> npaths_{0};
  std::vector<pollfd> fds_;       // loop thread only
  std::vector<path_rec*> polled_; // loop thread only
  int efd_ = -1;
  mutable std::mutex mutex_;
  bool sleeping_ = false; // the loop waits in poll; guarded by mutex_
  bool stopping_ = false; // guarded by mutex_
  std::thread thread_;    // last: it uses the members above
};

} // namespace mpath::adapters
