#pragma once
// multipathd's `ana` prioritizer for NVMe paths (multipathd.md b.6): a path's priority follows the
// Asymmetric Namespace Access state of its ANA group. multipathd reads the state itself (Identify
// Controller, then the ANA log page); here the backend knows how to reach its controller, so it
// supplies the state and this header only scores it (multipath-tools
// libmultipath/prioritizers/ana.c).
//
//   // a state the backend keeps up to date (ANA change notices), answered inline:
//   mpath::health::ana_prioritizer ana{[&nvme](auto& path) noexcept { return nvme.ana_state(path.handle()); }};
//   // or a query that answers later, from any thread:
//   mpath::health::ana_prioritizer ana{[&nvme](auto& path, mpath::health::ana_done done) noexcept {
//     nvme.read_ana_log(path.handle(), done); // calls done(state) once
//   }};

#include <mpath/health/prioritizer.hpp>
#include <mpath/path.hpp>

#include <concepts>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

namespace mpath::inline v0::health {

/// ANA states with the NVMe encoding of the ANA group descriptor's state field, so a backend can
/// convert the log page byte with `to_ana_state`. `unknown` (0, reserved by NVMe) stands for a
/// state the backend could not learn: multipathd's "ANA error" cases.
enum class ana_state : std::uint8_t {
  unknown = 0x0,
  optimized = 0x1,
  non_optimized = 0x2,
  inaccessible = 0x3,
  persistent_loss = 0x4,
  change = 0xf,
};

/// The state field of an ANA group descriptor (its low four bits); reserved values are `unknown`.
constexpr ana_state to_ana_state(std::uint8_t descriptor_state) noexcept {
  switch (descriptor_state & 0x0f) {
  case 0x1: return ana_state::optimized;
  case 0x2: return ana_state::non_optimized;
  case 0x3: return ana_state::inaccessible;
  case 0x4: return ana_state::persistent_loss;
  case 0xf: return ana_state::change;
  default: return ana_state::unknown;
  }
}

/// nvme-cli's words for the states (`nvme ana-log`), for logs and scripts.
constexpr std::string_view to_string(ana_state s) noexcept {
  switch (s) {
  case ana_state::optimized: return "optimized";
  case ana_state::non_optimized: return "non-optimized";
  case ana_state::inaccessible: return "inaccessible";
  case ana_state::persistent_loss: return "persistent-loss";
  case ana_state::change: return "change";
  case ana_state::unknown: break;
  }
  return "unknown";
}

/// multipathd's scores (ana.c's getprio): change is treated like inaccessible, as the ANA TP
/// suggests; persistent loss is below both. `unknown` is 0: multipathd leaves such a path's
/// priority undefined (-1), which the health layer, whose priorities are ≥ 0, counts as 0.
constexpr int ana_priority(ana_state s) noexcept {
  switch (s) {
  case ana_state::optimized: return 50;
  case ana_state::non_optimized: return 10;
  case ana_state::inaccessible:
  case ana_state::change: return 1;
  case ana_state::persistent_loss:
  case ana_state::unknown: break;
  }
  return 0;
}

/// Handed to an asynchronous ANA state source: call it exactly once with the path's state, from
/// any thread, possibly before the source returns. It only wraps the monitor's `prio_done`, so it
/// allocates nothing.
class ana_done {
public:
  explicit ana_done(prio_done done) noexcept : done_(done) {}
  void operator()(ana_state s) const noexcept { done_(ana_priority(s)); }

private:
  prio_done done_;
};

/// What `ana_prioritizer` needs from the product for paths of type P: a `noexcept` callable that
/// either returns the path's state at once (`s(p)`, e.g. one the backend caches from ANA change
/// notices; it must not block) or starts a query and answers through `ana_done` (`s(p, done)`).
template <class S, class P>
concept AnaStateSource = Path<P> &&(
    requires(S& s, P& p) {
      { s(p) }
      noexcept->std::same_as<ana_state>;
    } ||
    requires(S & s, P& p, ana_done done) {
      { s(p, done) }
      noexcept->std::same_as<void>;
    });

/// multipathd's `prio ana` over the product's AnaStateSource, kept by value (a lambda capturing
/// the backend by reference is the usual source). Models Prioritizer for every path type the
/// source accepts. Thread safety: that of the source.
template <class Source> class ana_prioritizer {
public:
  explicit ana_prioritizer(Source source) noexcept(std::is_nothrow_move_constructible_v<Source>)
      : source_(std::move(source)) {}

  template <Path P>
  requires AnaStateSource<Source, P>
  void get_priority(P& p, prio_done done) noexcept {
    if constexpr (requires {
                    { source_(p) }
                    noexcept->std::same_as<ana_state>;
                  })
      done(ana_priority(source_(p)));
    else
      source_(p, ana_done(done));
  }

  Source& source() noexcept { return source_; }

private:
  Source source_;
};

template <class Source> ana_prioritizer(Source) -> ana_prioritizer<Source>;

} // namespace mpath::inline v0::health
