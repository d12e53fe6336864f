#pragma once
// One mpathctl script command (product.md §6) as a value: printed as a script line, run against the
// reference model, or run against a `sim_device` exactly as mpathctl runs it. Each returns the
// lines mpathctl would print, so a model run and a device run can be compared line by line and a
// failing sequence replays with `mpathctl`.

#include <mpath/error.hpp>
#include <mpath/hw_handler.hpp>
#include <mpath/io.hpp>
#include <mpath/testing/model.hpp>
#include <mpath/testing/sim.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace mpath::inline v0::testing {

/// The `hwh` result words of mpathctl.
inline constexpr std::array<std::pair<std::string_view, activation_result>, 9> script_activation_names{{
    {"ok", activation_result::ok},
    {"dev_failed", activation_result::dev_failed},
    {"dev_temp_busy", activation_result::dev_temp_busy},
    {"retry", activation_result::retry},
    {"imm_retry", activation_result::imm_retry},
    {"res_temp_unavail", activation_result::res_temp_unavail},
    {"offlined", activation_result::dev_offlined},
    {"nosys", activation_result::nosys},
    {"timed_out", activation_result::timed_out},
}};

inline std::string_view script_name(activation_result r) {
  for (const auto& [name, value] : script_activation_names)
    if (value == r)
      return name;
  return "ok";
}

struct script_step {
  enum class kind : std::uint8_t { io, complete, fault, hwh, run, sleep, suspend, resume, message, option, events };
  static constexpr std::uint64_t all = std::numeric_limits<std::uint64_t>::max();

  kind what = kind::run;
  std::string path;           ///< complete, fault: a path token; empty for `all`
  std::uint64_t count = 0;    ///< io: COUNT; complete: COUNT or `all`; sleep: MS; option: SECS
  std::uint64_t bytes = 4096; ///< io
  blk_status status = blk_status::ok;
  bool flag = false;                      ///< fault: on; suspend: noflush
  std::vector<activation_result> results; ///< hwh
  std::vector<std::string> words;         ///< message

  /// The script line, for the device called `name`.
  std::string line(std::string_view name) const {
    std::string n(name);
    switch (what) {
    case kind::io: return "io " + n + " " + std::to_string(count) + " " + std::to_string(bytes);
    case kind::complete:
      return "complete " + n + " " + (path.empty() ? std::string("all") : path) + " " +
             (count == all ? std::string("all") : std::to_string(count)) + " " + std::string(to_string(status));
    case kind::fault: return "fault " + n + " " + path + (flag ? " on" : " off");
    case kind::hwh: {
      std::string s = "hwh " + n;
      for (auto r : results)
        s += " " + std::string(script_name(r));
      return s;
    }
    case kind::run: return "run " + n;
    case kind::sleep: return "sleep " + n + " " + std::to_string(count);
    case kind::suspend: return "suspend " + n + (flag ? " noflush" : "");
    case kind::resume: return "resume " + n;
    case kind::message: {
      std::string s = "message " + n;
      for (const auto& w : words)
        s += " " + w;
      return s;
    }
    case kind::option: return "option " + n + " queue_if_no_path_timeout_secs " + std::to_string(count);
    case kind::events: return "events " + n;
    }
    return {};
  }
};

inline std::string script_error_line(int code, std::string_view text) {
  return "error: " + errno_name(code) + ": " + std::string(text);
}

/// Runs a step on the model; returns what mpathctl prints.
inline std::vector<std::string> run_step(reference_model& m, const script_step& s) {
  using k = script_step::kind;
  switch (s.what) {
  case k::io: m.io(std::size_t(s.count), s.bytes); break;
  case k::complete:
    m.complete(s.path, s.count == script_step::all ? ~std::size_t{0} : std::size_t(s.count), s.status);
    break;
  case k::fault: m.fault(s.path, s.flag); break;
  case k::hwh: m.hwh(s.results); break;
  case k::run: m.run(); break;
  case k::sleep: m.sleep(s.count); break;
  case k::suspend: m.suspend(s.flag); break;
  case k::resume: m.resume(); break;
  case k::message: {
    auto r = m.message(s.words);
    return {r.code == 0 ? std::string("ok") : script_error_line(r.code, r.text)};
  }
  case k::option: m.set_nopath_timeout(std::uint32_t(s.count)); break;
  case k::events: return m.take_events();
  }
  return {};
}

/// Runs a step on a simulated device as mpathctl does; returns what mpathctl prints.
template <class Traits> std::vector<std::string> run_step(sim_device<Traits>& d, const script_step& s) {
  using k = script_step::kind;
  switch (s.what) {
  case k::io: d.io(std::size_t(s.count), s.bytes); break;
  case k::complete:
    d.complete(s.path, s.count == script_step::all ? ~std::size_t{0} : std::size_t(s.count), s.status);
    break;
  case k::fault: d.backend().set_fault(s.path, s.flag); break;
  case k::hwh:
    if (auto* h = d.handler())
      for (auto r : s.results)
        h->push(r);
    break;
  case k::run: d.run(); break;
  case k::sleep: d.sleep(s.count); break;
  case k::suspend: d.suspend(s.flag); break;
  case k::resume: d.resume(); break;
  case k::message: {
    auto r = d.engine().message(std::span<const std::string>(s.words));
    return {r ? std::string("ok") : script_error_line(r.err().code, r.err().text)};
  }
  case k::option: d.engine().set_queue_if_no_path_timeout(std::uint32_t(s.count)); break;
  case k::events: return d.take_events();
  }
  return {};
}

/// `status`, `table` and `stats` of a device as mpathctl prints them (trailing blanks removed).
inline std::string strip_trailing_blank(std::string s) {
  while (!s.empty() && s.back() == ' ')
    s.pop_back();
  return s;
}

inline std::vector<std::string> observe(const reference_model& m) {
  std::vector<std::string> out{strip_trailing_blank(m.table_status()), strip_trailing_blank(m.info())};
  auto s = m.stats();
  out.push_back("submitted=" + std::to_string(s.submitted) + " ok=" + std::to_string(s.ok) +
                " failed=" + std::to_string(s.failed) + " queued=" + std::to_string(s.queued) +
                " inflight=" + std::to_string(s.inflight));
  for (const auto& p : s.paths)
    out.push_back(p.device + " dispatched=" + std::to_string(p.dispatched) +
                  " inflight=" + std::to_string(p.in_flight));
  return out;
}

template <class Traits> std::vector<std::string> observe(sim_device<Traits>& d) {
  std::vector<std::string> out{strip_trailing_blank(d.engine().status(status_type::table)),
                               strip_trailing_blank(d.engine().status(status_type::info))};
  auto s = d.stats();
  out.push_back("submitted=" + std::to_string(s.submitted) + " ok=" + std::to_string(s.ok) +
                " failed=" + std::to_string(s.failed) + " queued=" + std::to_string(s.queued) +
                " inflight=" + std::to_string(s.inflight));
  for (const auto& p : d.backend().paths())
    out.push_back(p.device + " dispatched=" + std::to_string(p.dispatched) +
                  " inflight=" + std::to_string(p.in_flight));
  return out;
}

} // namespace mpath::inline v0::testing
