#pragma once
// The SG_IO adapter: SCSI commands through ioctl(SG_IO) on a /dev/sgN or /dev/sdX node per path.
// Reads and writes are READ(16)/WRITE(16), the probe is TEST UNIT READY, and the result of every
// command (ioctl errno, host status, driver status, SCSI status, fixed or descriptor sense data)
// is turned into a block status in one function, scsi::decode. Commands block, so they run on a
// small worker pool, as in the POSIX adapter. alua.hpp adds the ALUA hardware handler on top.
//
// The ioctl goes through a seam (`Sys`, default sg_syscalls): the tests answer it with recorded
// sg_io_hdr results and sense buffers.

#include "common.hpp"

#include <mpath/error.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <scsi/sg.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace mpath::adapters {

namespace scsi {

// SCSI status byte (SAM-5).
inline constexpr std::uint8_t status_good = 0x00, status_check_condition = 0x02, status_condition_met = 0x04,
                              status_busy = 0x08, status_reservation_conflict = 0x18, status_task_set_full = 0x28,
                              status_aca_active = 0x30, status_task_aborted = 0x40;
// Sense keys (SPC-5).
inline constexpr std::uint8_t no_sense = 0x0, recovered_error = 0x1, not_ready = 0x2, medium_error = 0x3,
                              hardware_error = 0x4, illegal_request = 0x5, unit_attention = 0x6, data_protect = 0x7,
                              blank_check = 0x8, copy_aborted = 0xa, aborted_command = 0xb, volume_overflow = 0xd,
                              miscompare = 0xe;
// Linux host byte (DID_*).
inline constexpr std::uint16_t did_ok = 0x00, did_no_connect = 0x01, did_bus_busy = 0x02, did_time_out = 0x03,
                               did_bad_target = 0x04, did_abort = 0x05, did_parity = 0x06, did_error = 0x07,
                               did_reset = 0x08, did_bad_intr = 0x09, did_passthrough = 0x0a, did_soft_error = 0x0b,
                               did_imm_retry = 0x0c, did_requeue = 0x0d, did_transport_disrupted = 0x0e,
                               did_transport_failfast = 0x0f, did_target_failure = 0x10, did_nexus_failure = 0x11,
                               did_alloc_failure = 0x12, did_medium_error = 0x13, did_transport_marginal = 0x14;
// Linux driver byte (DRIVER_*); DRIVER_SENSE is a flag in the high nibble.
inline constexpr std::uint16_t driver_ok = 0x00, driver_busy = 0x01, driver_soft = 0x02, driver_media = 0x03,
                               driver_error = 0x04, driver_invalid = 0x05, driver_timeout = 0x06, driver_hard = 0x07,
                               driver_sense = 0x08;
// Opcodes.
inline constexpr std::uint8_t op_test_unit_ready = 0x00, op_inquiry = 0x12, op_read16 = 0x88, op_write16 = 0x8a,
                              op_maintenance_in = 0xa3, op_maintenance_out = 0xa4, sa_target_port_groups = 0x0a;

/// Sense data, fixed (0x70/0x71) or descriptor (0x72/0x73) format, reduced to what decisions need.
struct sense {
  bool valid = false;
  bool deferred = false;   ///< 0x71/0x73: about an earlier command
  bool descriptor = false; ///< 0x72/0x73
  std::uint8_t key = 0, asc = 0, ascq = 0;
};

constexpr sense parse_sense(std::span<const std::uint8_t> b) noexcept {
  sense s;
  if (b.size() < 2)
    return s;
  std::uint8_t code = b[0] & 0x7f;
  if (code == 0x70 || code == 0x71) { // fixed: key in byte 2, ASC/ASCQ in bytes 12/13
    if (b.size() < 3)
      return s;
    s.valid = true;
    s.deferred = code == 0x71;
    s.key = b[2] & 0x0f;
    s.asc = b.size() > 12 ? b[12] : 0;
    s.ascq = b.size() > 13 ? b[13] : 0;
  } else if (code == 0x72 || code == 0x73) { // descriptor: key, ASC, ASCQ in bytes 1..3
    s.valid = true;
    s.descriptor = true;
    s.deferred = code == 0x73;
    s.key = b[1] & 0x0f;
    s.asc = b.size() > 2 ? b[2] : 0;
    s.ascq = b.size() > 3 ? b[3] : 0;
  }
  return s;
}

/// A command's result as a block status, and whether issuing the same command again is worth it
/// (the conditions the kernel's SCSI midlayer would retry before dm-multipath ever saw them).
struct outcome {
  blk_status status = blk_status::ok;
  bool retry = false;
  friend constexpr bool operator==(const outcome&, const outcome&) = default;
};

/// Sense data of a CHECK CONDITION -> outcome (the tables in docs/backends.md).
constexpr outcome decode_sense(const sense& s) noexcept {
  using enum blk_status;
  if (!s.valid)
    return {ioerr, false};
  if (s.deferred) // an earlier command failed; this one may be fine: try it again
    return {ioerr, true};
  switch (s.key) {
  case no_sense:
  case recovered_error: return {ok, false};
  case not_ready:
    if (s.asc == 0x04 && s.ascq == 0x0a) // asymmetric access state transition
      return {transport, true};
    if (s.asc == 0x04 && (s.ascq == 0x0b || s.ascq == 0x0c)) // ALUA standby / unavailable port
      return {transport, false};
    if (s.asc == 0x04 && (s.ascq == 0x01 || s.ascq == 0x07 || s.ascq == 0x08)) // becoming ready, in progress
      return {ioerr, true};
    return {ioerr, false};
  case medium_error: return {medium, false};
  case hardware_error: return {ioerr, false}; // as the kernel: a path error, another controller may do it
  case illegal_request:
    if (s.asc == 0x25) // logical unit not supported: not mapped behind this port any more
      return {offline, false};
    return {target, false};
  case unit_attention:
    if (s.asc == 0x2a && (s.ascq == 0x06 || s.ascq == 0x07)) // ALUA state changed / transition failed
      return {transport, false};
    if (s.asc == 0x3f && s.ascq == 0x03) // inquiry data changed: re-evaluate the path
      return {transport, false};
    return {ioerr, true}; // power on, reset, parameters changed...: the attention is consumed, retry
  case data_protect:
    if (s.asc == 0x27 && s.ascq == 0x07) // space allocation failed (thin pool full)
      return {nospc, false};
    if ((s.asc == 0x0c && s.ascq == 0x12) || (s.asc == 0x55 && (s.ascq == 0x0e || s.ascq == 0x0f)))
      return {zone_open_resource, false}; // insufficient zone resources (the kernel's numbering, 14)
    return {target, false};               // write protected: the same on every path
  case blank_check: return {medium, false};
  case copy_aborted: return {target, false};
  case aborted_command:
    if (s.asc == 0x10) // protection information check failed
      return {protection, false};
    return {transport, true}; // aborted by the target or the fabric: try again, then fail the path
  case volume_overflow: return {nospc, false};
  case miscompare: return {medium, false};
  default: return {ioerr, false};
  }
}

/// The one mapping of an SG_IO result to a block status: the ioctl's own errno first, then the
/// host byte (transport), the driver byte, and the SCSI status with its sense data.
constexpr outcome decode(int ioctl_errno, std::uint16_t host_status, std::uint16_t driver_status,
                         std::uint8_t scsi_status, std::span<const std::uint8_t> sense_bytes) noexcept {
  using enum blk_status;
  if (ioctl_errno != 0)
    return {errno_to_blk_status(ioctl_errno), ioctl_errno == EINTR};
  switch (host_status) {
  case did_ok: break;
  case did_no_connect:
  case did_bad_target:
  case did_transport_disrupted:
  case did_transport_failfast:
  case did_transport_marginal: return {transport, false};
  case did_time_out: return {timeout, false};
  case did_bus_busy:
  case did_reset:
  case did_soft_error:
  case did_imm_retry:
  case did_requeue: return {transport, true};
  case did_target_failure: return {target, false};
  case did_nexus_failure: return {resv_conflict, false};
  case did_alloc_failure: return {nospc, false};
  case did_medium_error: return {medium, false};
  default: return {ioerr, false}; // abort, parity, error, bad_intr, passthrough...
  }
  switch (driver_status & 0x07) { // DRIVER_SENSE (0x08) is a flag, not a code
  case driver_ok: break;
  case driver_timeout: return {timeout, false};
  case driver_busy:
  case driver_soft: return {ioerr, true};
  default: return {ioerr, false};
  }
  switch (scsi_status & 0xfe) {
  case status_good:
  case status_condition_met: return {ok, false};
  case status_check_condition: return decode_sense(parse_sense(sense_bytes));
  case status_busy:
  case status_task_set_full: return {resource, true};
  case status_reservation_conflict: return {resv_conflict, false};
  case status_task_aborted: return {ioerr, true};
  default: return {ioerr, false}; // ACA active and anything unknown
  }
}

inline outcome decode(int ioctl_errno, const sg_io_hdr_t& h) noexcept {
  std::size_t n = std::min<std::size_t>(h.sb_len_wr, h.mx_sb_len);
  return decode(ioctl_errno, h.host_status, h.driver_status, h.status,
                std::span<const std::uint8_t>(static_cast<const std::uint8_t*>(h.sbp), h.sbp ? n : 0));
}

// ---- command descriptor blocks

using cdb16 = std::array<std::uint8_t, 16>;
using cdb12 = std::array<std::uint8_t, 12>;
using cdb6 = std::array<std::uint8_t, 6>;

constexpr void put_be(std::uint8_t* p, std::uint64_t v, int bytes) noexcept {
  for (int i = bytes - 1; i >= 0; --i, v >>= 8)
    p[i] = std::uint8_t(v);
}
constexpr std::uint64_t get_be(const std::uint8_t* p, int bytes) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = v << 8 | p[i];
  return v;
}

constexpr cdb16 read16(std::uint64_t lba, std::uint32_t blocks) noexcept {
  cdb16 c{};
  c[0] = op_read16;
  put_be(&c[2], lba, 8);
  put_be(&c[10], blocks, 4);
  return c;
}
constexpr cdb16 write16(std::uint64_t lba, std::uint32_t blocks) noexcept {
  cdb16 c = read16(lba, blocks);
  c[0] = op_write16;
  return c;
}
constexpr cdb6 test_unit_ready() noexcept { return cdb6{}; }
constexpr cdb6 inquiry(bool evpd, std::uint8_t page, std::uint16_t alloc) noexcept {
  cdb6 c{};
  c[0] = op_inquiry;
  c[1] = evpd ? 1 : 0;
  c[2] = page;
  put_be(&c[3], alloc, 2);
  return c;
}
/// REPORT TARGET PORT GROUPS; `extended` asks for the extended header (parameter data format 1).
constexpr cdb12 report_target_port_groups(bool extended, std::uint32_t alloc) noexcept {
  cdb12 c{};
  c[0] = op_maintenance_in;
  c[1] = std::uint8_t((extended ? 0x20 : 0x00) | sa_target_port_groups);
  put_be(&c[6], alloc, 4);
  return c;
}
constexpr cdb12 set_target_port_groups(std::uint32_t param_len) noexcept {
  cdb12 c{};
  c[0] = op_maintenance_out;
  c[1] = sa_target_port_groups;
  put_be(&c[6], param_len, 4);
  return c;
}

} // namespace scsi

/// The system calls of the SG_IO adapter. Each returns its result, or -errno.
struct sg_syscalls {
  int open(const char* path, int flags) noexcept {
    int fd = ::open(path, flags | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
  }
  int close(int fd) noexcept { return ::close(fd) < 0 ? -errno : 0; }
  int sg_io(int fd, sg_io_hdr_t& h) noexcept { return ::ioctl(fd, SG_IO, &h) < 0 ? -errno : 0; }
};

struct sg_options {
  unsigned workers = 4;
  std::uint32_t block_size = 512;          ///< the logical block size of the LU
  std::uint32_t max_transfer = 512 * 1024; ///< bytes per READ/WRITE command; larger I/O is split
  unsigned timeout_ms = 30'000;
  unsigned retries = 3; ///< extra attempts for conditions decode marks as worth retrying
  int open_flags = O_RDWR | O_NONBLOCK;
};

/// One SCSI command's complete result.
struct sg_result {
  int err = 0; ///< the ioctl's errno, 0 when it ran
  std::uint8_t status = 0;
  std::uint16_t host_status = 0, driver_status = 0;
  std::uint32_t transferred = 0;
  scsi::sense sense;
  std::array<std::uint8_t, 64> sense_bytes{};
  scsi::outcome outcome;
};

/// Models mpath::IoBackend.
///
/// Thread safety: `submit`, `probe`, `execute` and `post` from any thread; `open_path` only while
/// no I/O runs. Completions are reported from worker threads. Destroy the engine first.
template <class Sys = sg_syscalls> class sg_backend : public sink_holder<block_io> {
public:
  /// A path. The ALUA fields belong to the hardware handler, which fills them on first activation.
  struct handle_type {
    int fd = -1;
    std::uint32_t id = 0;
    sg_backend* owner = nullptr;
    int tpg = -1;                   ///< target port group id, -1 until known
    int relative_port = -1;         ///< relative target port id, -1 until known
    std::uint8_t tpgs = 0xff;       ///< INQUIRY TPGS field (1 implicit, 2 explicit, 3 both), 0xff until known
    std::uint8_t alua_state = 0xff; ///< last asymmetric access state seen, 0xff until known
  };
  using io_type = block_io;

  /// Work for the pool that is not a read or write (the ALUA handler's activations).
  struct task : block_io {
    void (*fn)(task&) noexcept = nullptr;
  };

  explicit sg_backend(sg_options options = {}, Sys sys = {}) : options_(options), sys_(std::move(sys)) {
    pool_.emplace(options_.workers, runner{this});
  }
  sg_backend(const sg_backend&) = delete;
  sg_backend& operator=(const sg_backend&) = delete;
  ~sg_backend() {
    pool_.reset();
    for (auto& p : paths_)
      sys_.close(p.fd);
  }

  result<handle_type> open_path(std::string_view device) {
    std::string name(device);
    int fd = sys_.open(name.c_str(), options_.open_flags);
    if (fd < 0)
      return error{-fd, "error getting device"};
    auto& p = paths_.emplace_back();
    p.device = std::move(name);
    p.fd = fd;
    handle_type h;
    h.fd = fd;
    h.id = std::uint32_t(paths_.size() - 1);
    h.owner = this;
    return h;
  }

  void submit(handle_type& h, block_io& io) noexcept {
    io.path_id = h.id;
    io.done_bytes = 0;
    io.kind = kind_io;
    io.submit_ns = steady_ns();
    paths_[h.id].stats.issued.fetch_add(1, std::memory_order_relaxed);
    pool_->push(io);
  }

  /// TEST UNIT READY, retried on transient conditions. ALUA standby (NOT READY 04/0b) and
  /// transitioning (04/0a) answer ok: the path works, it only needs activation or patience
  /// (multipathd's "ghost" and "pending"); everything else decodes as for I/O.
  blk_status probe(handle_type& h) noexcept {
    auto cdb = scsi::test_unit_ready();
    sg_result r;
    for (unsigned attempt = 0;; ++attempt) {
      r = execute(h.fd, cdb, SG_DXFER_NONE, nullptr, 0);
      if (r.sense.valid && r.sense.key == scsi::not_ready && r.sense.asc == 0x04 &&
          (r.sense.ascq == 0x0a || r.sense.ascq == 0x0b))
        return blk_status::ok;
      if (!r.outcome.retry || attempt >= options_.retries)
        return r.outcome.status;
    }
  }

  /// Runs one SCSI command synchronously on `fd` (EINTR restarts the ioctl; nothing else is retried).
  sg_result execute(int fd, std::span<const std::uint8_t> cdb, int direction, void* buf, std::uint32_t len) noexcept {
    sg_result r;
    sg_io_hdr_t h{};
    h.interface_id = 'S';
    h.dxfer_direction = direction;
    h.cmd_len = std::uint8_t(cdb.size());
    h.cmdp = const_cast<unsigned char*>(cdb.data());
    h.dxferp = buf;
    h.dxfer_len = len;
    h.sbp = r.sense_bytes.data();
    h.mx_sb_len = std::uint8_t(r.sense_bytes.size());
    h.timeout = options_.timeout_ms;
    int e = 0;
    do
      e = sys_.sg_io(fd, h);
    while (e == -EINTR);
    r.err = -e;
    r.status = h.status;
    r.host_status = h.host_status;
    r.driver_status = h.driver_status;
    std::uint32_t resid = h.resid > 0 ? std::min(std::uint32_t(h.resid), len) : 0; // bytes not transferred
    r.transferred = len - resid;
    std::size_t n = std::min<std::size_t>(h.sb_len_wr, r.sense_bytes.size());
    r.sense = scsi::parse_sense(std::span<const std::uint8_t>(r.sense_bytes.data(), n));
    r.outcome = scsi::decode(r.err, h);
    return r;
  }
  template <std::size_t N>
  sg_result execute(int fd, const std::array<std::uint8_t, N>& cdb, int direction, void* buf,
                    std::uint32_t len) noexcept {
    return execute(fd, std::span<const std::uint8_t>(cdb.data(), N), direction, buf, len);
  }

  /// Runs `t.fn(t)` on a worker thread.
  void post(task& t) noexcept {
    t.kind = kind_task;
    pool_->push(t);
  }

  /// The read/write itself: split into commands of at most max_transfer bytes, a short transfer
  /// continues where it stopped, retryable conditions are retried `retries` times.
  blk_status transfer(int fd, block_io& io) noexcept {
    const std::uint32_t bs = options_.block_size;
    if ((io.nr_bytes != 0 && !io.buffer) || io.offset % bs || io.nr_bytes % bs)
      return blk_status::notsupp; // the request, not the path
    unsigned attempts = 0;
    while (io.done_bytes < io.nr_bytes) {
      auto chunk = std::uint32_t(std::min<std::uint64_t>(io.nr_bytes - io.done_bytes, options_.max_transfer / bs * bs));
      std::uint64_t lba = (io.offset + io.done_bytes) / bs;
      bool rd = io.opcode == block_io::op::read;
      auto cdb = rd ? scsi::read16(lba, chunk / bs) : scsi::write16(lba, chunk / bs);
      sg_result r = execute(fd, cdb, rd ? SG_DXFER_FROM_DEV : SG_DXFER_TO_DEV,
                            static_cast<unsigned char*>(io.buffer) + io.done_bytes, chunk);
      if (r.outcome.status == blk_status::ok) {
        std::uint32_t moved = r.transferred / bs * bs;
        if (moved == 0) // no progress without an error: do not spin
          return blk_status::ioerr;
        io.done_bytes += moved;
        continue;
      }
      if (r.outcome.retry && attempts++ < options_.retries)
        continue;
      return r.outcome.status;
    }
    return blk_status::ok;
  }

  std::size_t path_count() const noexcept { return paths_.size(); }
  const std::string& device(std::uint32_t id) const noexcept { return paths_[id].device; }
  path_counters counters(std::uint32_t id) const noexcept { return paths_[id].stats.snapshot(); }
  const sg_options& options() const noexcept { return options_; }
  Sys& syscalls() noexcept { return sys_; }

private:
  static constexpr std::uint8_t kind_io = 0, kind_task = 2;

  struct path_rec {
    std::string device;
    int fd = -1;
    path_stats stats;
  };
  struct runner {
    sg_backend* self;
    void operator()(block_io& io) const noexcept { self->run(io); }
  };

  void run(block_io& io) noexcept {
    if (io.kind == kind_task) {
      auto& t = static_cast<task&>(io);
      t.fn(t);
      return;
    }
    auto& p = paths_[io.path_id];
    blk_status s = transfer(p.fd, io);
    p.stats.count(s);
    report(io, s);
  }

  sg_options options_;
  Sys sys_;
  std::deque<path_rec> paths_;
  std::optional<worker_pool<runner>> pool_; // last: its threads use the members above
};

} // namespace mpath::adapters
