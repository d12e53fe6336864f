#pragma once
// alua_handler: the ALUA hardware handler (the kernel's scsi_dh_alua) over the SG_IO adapter.
// Activating a path learns its target port group once (standard INQUIRY for the TPGS field, VPD
// page 0x83 for the group and relative port ids), asks the target for the groups' states (REPORT
// TARGET PORT GROUPS), and when the group is not active and the target supports explicit ALUA,
// makes it active/optimized (SET TARGET PORT GROUPS), then checks again. The outcome is one of the
// kernel's activation result codes (the table is in docs/backends.md).
//
//   struct traits : mpath::default_traits {
//     using hw_handlers = mpath::hw_handler_set<mpath::adapters::alua_handler>;
//   };
//   table: "1 queue_if_no_path 1 alua 2 1 service-time 0 2 1 /dev/sg1 1 ..."   ("2 alua 1": optimize)
//
// Activations run on the SG_IO adapter's worker pool, never on the engine's executor.

#include "sg_io.hpp"

#include <mpath/hw_handler.hpp>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mpath::adapters {

/// Asymmetric access states (SPC-5 REPORT TARGET PORT GROUPS).
enum class alua_state : std::uint8_t {
  active_optimized = 0x0,
  active_non_optimized = 0x1,
  standby = 0x2,
  unavailable = 0x3,
  lba_dependent = 0x4,
  offline = 0xe,
  transitioning = 0xf,
};

/// One target port group descriptor of REPORT TARGET PORT GROUPS parameter data.
struct tpg_descriptor {
  bool preferred = false;
  alua_state state = alua_state::active_optimized;
  std::uint8_t supported = 0; ///< T_SUP O_SUP - LBD_SUP U_SUP S_SUP AN_SUP AO_SUP
  std::uint16_t id = 0;
  std::uint8_t status_code = 0; ///< 1: altered by SET TARGET PORT GROUPS, 2: implicitly
  std::vector<std::uint16_t> relative_ports;
};

/// Parses REPORT TARGET PORT GROUPS data (length-only or extended header); nullopt if malformed.
inline std::optional<std::vector<tpg_descriptor>> parse_rtpg(std::span<const std::uint8_t> d) {
  if (d.size() < 4)
    return std::nullopt;
  std::size_t end = std::min<std::size_t>(d.size(), 4 + scsi::get_be(d.data(), 4));
  std::size_t off = 4;
  if (end >= 8 && (d[4] & 0x70) == 0x10) // format type 1: extended header
    off = 8;
  std::vector<tpg_descriptor> out;
  while (off + 8 <= end) {
    tpg_descriptor t;
    t.preferred = (d[off] & 0x80) != 0;
    t.state = alua_state(d[off] & 0x0f);
    t.supported = d[off + 1];
    t.id = std::uint16_t(scsi::get_be(&d[off + 2], 2));
    t.status_code = d[off + 5];
    std::size_t ports = d[off + 7];
    if (off + 8 + 4 * ports > end)
      return std::nullopt; // truncated descriptor
    for (std::size_t i = 0; i < ports; ++i)
      t.relative_ports.push_back(std::uint16_t(scsi::get_be(&d[off + 8 + 4 * i + 2], 2)));
    out.push_back(std::move(t));
    off += 8 + 4 * ports;
  }
  return out;
}

/// The target port group and relative target port ids of VPD page 0x83; -1 where absent.
struct port_identity {
  int tpg = -1;
  int relative_port = -1;
};
inline port_identity parse_vpd83(std::span<const std::uint8_t> d) noexcept {
  port_identity id;
  if (d.size() < 4 || d[1] != 0x83)
    return id;
  std::size_t end = std::min<std::size_t>(d.size(), 4 + scsi::get_be(&d[2], 2));
  for (std::size_t off = 4; off + 4 <= end;) {
    std::uint8_t type = d[off + 1] & 0x0f, assoc = (d[off + 1] >> 4) & 0x03;
    std::size_t len = d[off + 3];
    if (off + 4 + len > end)
      break;
    if (assoc == 1 && len >= 4) { // associated with the target port
      if (type == 0x5)
        id.tpg = int(scsi::get_be(&d[off + 4 + 2], 2));
      else if (type == 0x4)
        id.relative_port = int(scsi::get_be(&d[off + 4 + 2], 2));
    }
    off += 4 + len;
  }
  return id;
}

namespace detail {
/// The SG_IO handle inside whatever wraps it (fault_injector's handle keeps it in `inner`).
template <class H> auto& sg_handle(H& h) noexcept {
  if constexpr (requires { h.inner; })
    return sg_handle(h.inner);
  else
    return h;
}
} // namespace detail

/// Models mpath::HwHandler for paths whose handle is (or wraps) an sg_backend handle.
class alua_handler {
public:
  static bool accepts(std::string_view name) noexcept { return name == "alua"; }

  /// No argument, or one: flags, bit 0 = also switch an active/non-optimized group to optimized
  /// (the kernel's ALUA_OPTIMIZE_STPG).
  result<void> set_params(std::span<const std::string> args) {
    if (args.empty())
      return {};
    unsigned long flags = 0;
    std::size_t used = 0;
    try {
      flags = std::stoul(args[0], &used);
    } catch (...) {
      used = 0;
    }
    if (args.size() > 1 || used != args[0].size() || flags > 1)
      return einval("alua: invalid handler arguments");
    optimize_ = flags & 1;
    return {};
  }

  bool optimize() const noexcept { return optimize_; }

  template <class P> void activate(P& path, activation_done done) noexcept {
    auto& h = detail::sg_handle(path.handle());
    using handle = std::remove_cvref_t<decltype(h)>;
    using backend = std::remove_pointer_t<decltype(h.owner)>;
    struct job : backend::task {
      job(activation_done d, handle& hh, bool opt) : done(d), h(&hh), optimize(opt) {}
      activation_done done;
      handle* h;
      bool optimize;
    };
    job* j = nullptr;
    try {
      j = new job(done, h, optimize_);
    } catch (...) {
      done(activation_result::nomem);
      return;
    }
    j->fn = [](typename backend::task& t) noexcept {
      auto* self = static_cast<job*>(&t);
      activation_result r = activate_now(*self->h->owner, *self->h, self->optimize);
      activation_done d = self->done;
      delete self;
      d(r);
    };
    h.owner->post(*j);
  }

  /// The activation itself, synchronously, on the calling thread.
  template <class Backend>
  static activation_result activate_now(Backend& b, typename Backend::handle_type& h, bool optimize) noexcept {
    using enum activation_result;
    if (h.tpgs == 0xff || h.tpg < 0)
      if (auto r = identify(b, h); r != ok)
        return r;
    if ((h.tpgs & 0x3) == 0)
      return dev_unsupp; // the target does not do ALUA at all
    std::optional<tpg_descriptor> d;
    if (auto r = report(b, h, d); r != ok)
      return r;
    bool explicit_alua = (h.tpgs & 0x2) != 0;
    switch (d->state) {
    case alua_state::active_optimized:
    case alua_state::lba_dependent: return ok;
    case alua_state::active_non_optimized:
      if (!(optimize && explicit_alua))
        return ok;
      break;
    case alua_state::standby:
    case alua_state::unavailable:
      if (!explicit_alua)
        return dev_failed; // only the target can move it (implicit ALUA)
      break;
    case alua_state::offline: return dev_offlined;
    case alua_state::transitioning: return retry;
    default: return dev_failed;
    }

    std::uint8_t param[8] = {0, 0, 0, 0, std::uint8_t(alua_state::active_optimized), 0, 0, 0};
    scsi::put_be(&param[6], std::uint16_t(h.tpg), 2);
    sg_result s = b.execute(h.fd, scsi::set_target_port_groups(sizeof param), SG_DXFER_TO_DEV, param, sizeof param);
    if (s.outcome.status != blk_status::ok)
      return failure(s, /*stpg=*/true);
    if (auto r = report(b, h, d); r != ok) // confirm
      return r;
    switch (d->state) {
    case alua_state::active_optimized:
    case alua_state::active_non_optimized:
    case alua_state::lba_dependent: return ok;
    case alua_state::transitioning: return retry;
    default: return dev_failed;
    }
  }

  /// A failed command as an activation result.
  static activation_result failure(const sg_result& r, bool stpg) noexcept {
    using enum activation_result;
    if (r.err == ENOMEM)
      return nomem;
    if (r.err == ETIMEDOUT || r.host_status == scsi::did_time_out || (r.driver_status & 0x07) == scsi::driver_timeout)
      return timed_out;
    if (r.err != 0 || r.host_status != scsi::did_ok)
      return io; // the path itself does not carry commands
    if ((r.status & 0xfe) == scsi::status_busy || (r.status & 0xfe) == scsi::status_task_set_full)
      return retry;
    if (r.sense.valid) {
      switch (r.sense.key) {
      case scsi::unit_attention: return retry; // e.g. 2a/06: states changed under us; ask again
      case scsi::not_ready:
        if (r.sense.asc == 0x04 && r.sense.ascq == 0x0a)
          return retry; // transitioning
        return io;
      case scsi::illegal_request: return stpg ? dev_failed : dev_unsupp; // refused / not implemented
      case scsi::aborted_command: return imm_retry;
      default: return io;
      }
    }
    return io;
  }

  // identify and report are public for the ALUA prioritizer (sg_health.hpp), which asks the same
  // questions; both only touch `h`, so a caller may pass a handle of its own with the same fd.

  /// Learns `h.tpgs` (standard INQUIRY) and, for an ALUA target, `h.tpg` and `h.relative_port`
  /// (VPD page 0x83).
  template <class Backend> static activation_result identify(Backend& b, typename Backend::handle_type& h) noexcept {
    std::uint8_t std_inq[96] = {};
    sg_result r = b.execute(h.fd, scsi::inquiry(false, 0, sizeof std_inq), SG_DXFER_FROM_DEV, std_inq, sizeof std_inq);
    if (r.outcome.status != blk_status::ok)
      return failure(r, false);
    if (r.transferred < 6)
      return activation_result::io;
    h.tpgs = (std_inq[5] >> 4) & 0x3;
    if (h.tpgs == 0)
      return activation_result::ok;
    std::uint8_t vpd[512] = {};
    r = b.execute(h.fd, scsi::inquiry(true, 0x83, sizeof vpd), SG_DXFER_FROM_DEV, vpd, sizeof vpd);
    if (r.outcome.status != blk_status::ok)
      return failure(r, false);
    port_identity id = parse_vpd83(std::span<const std::uint8_t>(vpd, r.transferred));
    if (id.tpg < 0) {
      h.tpgs = 0xff;
      return activation_result::dev_unsupp; // "no target port group found"
    }
    h.tpg = id.tpg;
    h.relative_port = id.relative_port;
    return activation_result::ok;
  }

  /// REPORT TARGET PORT GROUPS until our group's descriptor is in hand: the extended header first
  /// (retried without it when refused), a larger buffer when the data does not fit.
  template <class Backend>
  static activation_result report(Backend& b, typename Backend::handle_type& h,
                                  std::optional<tpg_descriptor>& out) noexcept {
    std::uint32_t size = 256;
    bool extended = true;
    for (int round = 0; round < 4; ++round) {
      std::unique_ptr<std::uint8_t, decltype(&std::free)> buf(static_cast<std::uint8_t*>(std::calloc(size, 1)),
                                                              &std::free);
      if (!buf)
        return activation_result::nomem;
      sg_result r =
          b.execute(h.fd, scsi::report_target_port_groups(extended, size), SG_DXFER_FROM_DEV, buf.get(), size);
      if (r.outcome.status != blk_status::ok) {
        if (extended && r.sense.valid && r.sense.key == scsi::illegal_request) {
          extended = false; // an older target: ask for the length-only format
          continue;
        }
        return failure(r, false);
      }
      if (r.transferred < 4)
        return activation_result::io;
      auto needed = std::uint32_t(scsi::get_be(buf.get(), 4) + 4);
      if (needed > size && needed <= 65536 && r.transferred >= size) {
        size = needed;
        continue;
      }
      std::optional<std::vector<tpg_descriptor>> groups;
      try {
        groups = parse_rtpg(std::span<const std::uint8_t>(buf.get(), std::min(r.transferred, size)));
      } catch (...) {
        return activation_result::nomem;
      }
      if (!groups)
        return activation_result::io;
      for (auto& g : *groups)
        if (g.id == h.tpg) {
          h.alua_state = std::uint8_t(g.state);
          out = std::move(g);
          return activation_result::ok;
        }
      return activation_result::dev_failed; // our group is not reported
    }
    return activation_result::io;
  }

private:
  bool optimize_ = false;
};

} // namespace mpath::adapters
