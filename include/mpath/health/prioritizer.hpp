#pragma once
// Prioritizers: a path's priority, from which a group's priority and the failback target follow
// (product.md §8.5, multipathd.md b.6). Asynchronous for the same reason as checkers: an ALUA
// REPORT TARGET PORT GROUPS goes to the device and may take a while.

#include <mpath/path.hpp>

#include <concepts>
#include <cstdint>

namespace mpath::inline v0::health {

/// Handed to `get_priority`; call it exactly once with the priority (≥ 0), from any thread,
/// possibly before `get_priority` returns. The same no-allocation shape as `check_done`.
class prio_done {
public:
  using fn_type = void (*)(void* context, std::uint64_t token, int priority) noexcept;
  prio_done(fn_type fn, void* context, std::uint64_t token) noexcept : fn_(fn), context_(context), token_(token) {}
  void operator()(int priority) const noexcept { fn_(context_, token_, priority); }

private:
  fn_type fn_;
  void* context_;
  std::uint64_t token_;
};

/// Requirements on a prioritizer for the engine's paths of type P.
///
// clang-format off
/// | expression | semantics |
/// |---|---|
/// | `pr.get_priority(p, done)` | `noexcept`, returns `void`. Find path `p`'s priority (higher is better: ALUA active/optimized 50, non-optimized 10, ...); never block the caller; answer through `done(priority)` exactly once, from any thread, inline or later |
// clang-format on
///
/// The monitor asks after usable checks, as multipathd's update_prio does; an answer that comes
/// after the tick's failback decision is used from the next tick on. As with checkers, the
/// monitor waits for outstanding answers when it stops, and the prioritizer must outlive it.
template <class R, class P>
concept Prioritizer = Path<P> && requires(R& r, P& p, prio_done done) {
  { r.get_priority(p, done) }
  noexcept->std::same_as<void>;
};

/// multipathd's `prio const`: every path has priority 1 (multipathd.md b.6), answered inline.
struct const_prioritizer {
  template <Path P> void get_priority(P&, prio_done done) noexcept { done(1); }
};

} // namespace mpath::inline v0::health
