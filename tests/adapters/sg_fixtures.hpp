#pragma once
// Recorded SG_IO results for the SG_IO adapter and the ALUA handler: what ioctl(SG_IO) leaves in
// an sg_io_hdr (status, host/driver bytes, sense buffer, residual count, data) for each case the
// adapter decodes, and `fake_sg`, the adapter's syscall seam answering from them.

#include "../../examples/adapters/sg_io.hpp"

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

namespace sg_fixtures {

namespace scsi = mpath::adapters::scsi;

/// What one SG_IO call returns.
struct recorded {
  int err = 0; ///< errno of the ioctl itself
  std::uint8_t status = scsi::status_good;
  std::uint16_t host = scsi::did_ok;
  std::uint16_t driver = scsi::driver_ok;
  std::vector<std::uint8_t> sense;
  std::vector<std::uint8_t> data; ///< for data-in commands: copied to the buffer, resid = rest
  int resid = -1;                 ///< explicit residual count; -1: derived from `data`
};

inline recorded good(std::vector<std::uint8_t> data = {}) {
  recorded r;
  r.data = std::move(data);
  return r;
}

/// Fixed-format sense (response code 0x70, or 0x71 deferred), 18 bytes.
inline std::vector<std::uint8_t> fixed_sense(std::uint8_t key, std::uint8_t asc, std::uint8_t ascq,
                                             bool deferred = false) {
  std::vector<std::uint8_t> s(18, 0);
  s[0] = deferred ? 0x71 : 0x70;
  s[2] = key;
  s[7] = 10; // additional sense length
  s[12] = asc;
  s[13] = ascq;
  return s;
}

/// Descriptor-format sense (0x72, or 0x73 deferred), 8 bytes of header, no descriptors.
inline std::vector<std::uint8_t> descriptor_sense(std::uint8_t key, std::uint8_t asc, std::uint8_t ascq,
                                                  bool deferred = false) {
  return {std::uint8_t(deferred ? 0x73 : 0x72), key, asc, ascq, 0, 0, 0, 0};
}

/// CHECK CONDITION with sense data; the sg driver also sets DRIVER_SENSE.
inline recorded check(std::vector<std::uint8_t> sense) {
  recorded r;
  r.status = scsi::status_check_condition;
  r.driver = scsi::driver_sense;
  r.sense = std::move(sense);
  return r;
}
inline recorded check_fixed(std::uint8_t key, std::uint8_t asc, std::uint8_t ascq) {
  return check(fixed_sense(key, asc, ascq));
}
inline recorded check_descriptor(std::uint8_t key, std::uint8_t asc, std::uint8_t ascq) {
  return check(descriptor_sense(key, asc, ascq));
}
inline recorded scsi_status(std::uint8_t status) {
  recorded r;
  r.status = status;
  return r;
}
inline recorded host(std::uint16_t did) {
  recorded r;
  r.host = did;
  return r;
}
inline recorded driver(std::uint16_t code) {
  recorded r;
  r.driver = code;
  return r;
}
inline recorded ioctl_error(int err) {
  recorded r;
  r.err = err;
  return r;
}

/// Standard INQUIRY data with the given TPGS field (byte 5 bits 4-5).
inline std::vector<std::uint8_t> standard_inquiry(std::uint8_t tpgs) {
  std::vector<std::uint8_t> d(36, 0);
  d[2] = 0x06; // SPC-4
  d[3] = 0x02;
  d[4] = 31;
  d[5] = std::uint8_t(tpgs << 4);
  std::memcpy(&d[8], "MPATH   ", 8);
  std::memcpy(&d[16], "FIXTURE LUN     ", 16);
  return d;
}

/// VPD page 0x83 with an NAA designator for the LU, a relative target port and a target port group.
inline std::vector<std::uint8_t> vpd83(int tpg, int relative_port) {
  std::vector<std::uint8_t> d = {0x00, 0x83, 0, 0};
  // NAA 6 designator, associated with the logical unit (association 0), 16 bytes
  std::vector<std::uint8_t> naa = {0x01, 0x03, 0x00, 0x10};
  for (int i = 0; i < 16; ++i)
    naa.push_back(std::uint8_t(0x60 + i));
  d.insert(d.end(), naa.begin(), naa.end());
  if (relative_port >= 0)
    d.insert(d.end(), {0x61, 0x94, 0x00, 0x04, 0, 0, std::uint8_t(relative_port >> 8), std::uint8_t(relative_port)});
  if (tpg >= 0)
    d.insert(d.end(), {0x01, 0x95, 0x00, 0x04, 0, 0, std::uint8_t(tpg >> 8), std::uint8_t(tpg)});
  std::size_t len = d.size() - 4;
  d[2] = std::uint8_t(len >> 8);
  d[3] = std::uint8_t(len);
  return d;
}

struct tpg {
  std::uint16_t id;
  std::uint8_t state; ///< asymmetric access state
  bool preferred = false;
  std::vector<std::uint16_t> ports = {1};
};

/// REPORT TARGET PORT GROUPS parameter data, with or without the extended header.
inline std::vector<std::uint8_t> rtpg_data(const std::vector<tpg>& groups, bool extended = true) {
  std::vector<std::uint8_t> d = {0, 0, 0, 0};
  if (extended)
    d.insert(d.end(), {0x10, 60, 0, 0}); // format type 1, implicit transition time 60 s
  for (const auto& g : groups) {
    d.push_back(std::uint8_t((g.preferred ? 0x80 : 0) | g.state));
    d.push_back(0x8f); // T_SUP, U_SUP, S_SUP, AN_SUP, AO_SUP
    d.push_back(std::uint8_t(g.id >> 8));
    d.push_back(std::uint8_t(g.id));
    d.insert(d.end(), {0, 0, 0, std::uint8_t(g.ports.size())});
    for (auto p : g.ports)
      d.insert(d.end(), {0, 0, std::uint8_t(p >> 8), std::uint8_t(p)});
  }
  std::size_t len = d.size() - 4;
  d[0] = std::uint8_t(len >> 24);
  d[1] = std::uint8_t(len >> 16);
  d[2] = std::uint8_t(len >> 8);
  d[3] = std::uint8_t(len);
  return d;
}

/// One command as the fake saw it.
struct command {
  std::vector<std::uint8_t> cdb;
  std::vector<std::uint8_t> data_out; ///< for data-out commands
  std::uint32_t dxfer_len = 0;
  int direction = 0;
};

/// The SG_IO adapter's syscall seam, answering from a responder. Copies share the state.
struct fake_sg {
  struct state {
    std::mutex mutex;
    std::function<recorded(const command&)> respond = [](const command&) { return good(); };
    std::vector<command> log;
    std::vector<std::uint8_t> disk = std::vector<std::uint8_t>(1 << 20); ///< backs READ/WRITE(16)
    int opened = 0, closed = 0;
  };
  std::shared_ptr<state> s = std::make_shared<state>();

  int open(const char* path, int) noexcept { return std::strcmp(path, "missing") == 0 ? -ENOENT : 3 + s->opened++; }
  int close(int) noexcept {
    ++s->closed;
    return 0;
  }
  int sg_io(int, sg_io_hdr_t& h) noexcept {
    command c;
    c.cdb.assign(h.cmdp, h.cmdp + h.cmd_len);
    c.dxfer_len = h.dxfer_len;
    c.direction = h.dxfer_direction;
    if (h.dxfer_direction == SG_DXFER_TO_DEV)
      c.data_out.assign(static_cast<std::uint8_t*>(h.dxferp), static_cast<std::uint8_t*>(h.dxferp) + h.dxfer_len);
    recorded r;
    {
      std::lock_guard guard(s->mutex);
      s->log.push_back(c);
      r = s->respond(c);
    }
    if (r.err)
      return -r.err;
    h.status = r.status;
    h.masked_status = std::uint8_t(r.status >> 1);
    h.host_status = r.host;
    h.driver_status = r.driver;
    std::size_t n = std::min<std::size_t>(r.sense.size(), h.mx_sb_len);
    if (n)
      std::memcpy(h.sbp, r.sense.data(), n);
    h.sb_len_wr = std::uint8_t(n);
    if (h.dxfer_direction == SG_DXFER_FROM_DEV && !r.data.empty()) {
      std::size_t m = std::min<std::size_t>(r.data.size(), h.dxfer_len);
      std::memcpy(h.dxferp, r.data.data(), m);
      h.resid = int(h.dxfer_len - m);
    } else {
      h.resid = 0;
    }
    if (r.resid >= 0)
      h.resid = r.resid;
    h.info = (r.status || r.host || (r.driver & 0x07) || n) ? SG_INFO_CHECK : SG_INFO_OK;
    return 0;
  }

  void respond(std::function<recorded(const command&)> fn) {
    std::lock_guard guard(s->mutex);
    s->respond = std::move(fn);
  }
  std::vector<command> log() {
    std::lock_guard guard(s->mutex);
    return s->log;
  }
  void clear_log() {
    std::lock_guard guard(s->mutex);
    s->log.clear();
  }
};

/// A responder that serves READ/WRITE(16) from `disk` with 512-byte blocks and answers `other`
/// for everything else.
/// (`st` is a plain pointer: the responder is stored in the state, a shared_ptr would keep it alive.)
inline std::function<recorded(const command&)> disk_responder(fake_sg::state* st,
                                                              std::function<recorded(const command&)> other = {}) {
  return [st, other](const command& c) -> recorded {
    if (c.cdb[0] == scsi::op_read16 || c.cdb[0] == scsi::op_write16) {
      std::uint64_t lba = scsi::get_be(&c.cdb[2], 8);
      std::uint64_t blocks = scsi::get_be(&c.cdb[10], 4);
      std::size_t off = lba * 512, len = blocks * 512;
      if (off + len > st->disk.size())
        return check_fixed(scsi::illegal_request, 0x21, 0x00); // LBA out of range
      if (c.cdb[0] == scsi::op_write16) {
        std::memcpy(st->disk.data() + off, c.data_out.data(), len);
        return good();
      }
      return good(std::vector<std::uint8_t>(st->disk.begin() + std::ptrdiff_t(off),
                                            st->disk.begin() + std::ptrdiff_t(off + len)));
    }
    return other ? other(c) : good();
  };
}

} // namespace sg_fixtures
