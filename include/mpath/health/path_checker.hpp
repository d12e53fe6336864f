#pragma once
// Path checkers: how the health layer learns whether a path works (product.md §8.3, multipathd.md
// b.1). A checker is asynchronous, like multipathd's tur and directio checkers, so that a slow or
// hung path never stalls the monitor's tick nor any other path's check.

#include <mpath/path.hpp>

#include <concepts>
#include <cstdint>
#include <string_view>

namespace mpath::inline v0::health {

/// What a check says about a path: multipathd's checker states (multipathd.md b.1) that a checker
/// may return. `up` and `ghost` are usable; `down`, `timeout` and `shaky` are not; `pending`
/// changes nothing and the path is checked again at the next tick (product.md §8.3).
enum class check_result : std::uint8_t { up, down, ghost, pending, timeout, shaky };

/// The words mpathctl's `probe` command uses for each result.
constexpr std::string_view to_string(check_result r) noexcept {
  switch (r) {
  case check_result::up: return "up";
  case check_result::down: return "down";
  case check_result::ghost: return "ghost";
  case check_result::pending: return "pending";
  case check_result::timeout: return "timeout";
  case check_result::shaky: return "shaky";
  }
  return "?";
}

/// Parses `to_string`'s words; false (and `out` untouched) for anything else.
constexpr bool parse_check_result(std::string_view word, check_result& out) noexcept {
  for (auto r : {check_result::up, check_result::down, check_result::ghost, check_result::pending,
                 check_result::timeout, check_result::shaky})
    if (word == to_string(r)) {
      out = r;
      return true;
    }
  return false;
}

/// Up and ghost (an ALUA standby port) may carry I/O; multipathd reinstates both (b.1).
constexpr bool is_usable(check_result r) noexcept { return r == check_result::up || r == check_result::ghost; }

/// Handed to `check`; call it exactly once, from any thread, possibly before `check` returns. No
/// allocation: a function pointer, the monitor's context and a token that names the check, so
/// that the monitor can ignore an answer that comes after `checker_timeout` (product.md §8.2).
class check_done {
public:
  using fn_type = void (*)(void* context, std::uint64_t token, check_result) noexcept;
  check_done(fn_type fn, void* context, std::uint64_t token) noexcept : fn_(fn), context_(context), token_(token) {}
  void operator()(check_result r) const noexcept { fn_(context_, token_, r); }

private:
  fn_type fn_;
  void* context_;
  std::uint64_t token_;
};

/// Requirements on a path checker for the engine's paths of type P.
///
/// A check is identified by the engine's path object itself rather than by its handle or its
/// position: the path carries both the table token (what an operator, a script or a simulated
/// checker names) and the backend handle (what a real checker talks to), and the engine's paths
/// never move while the engine lives, so a checker may keep the reference until it answers.
///
// clang-format off
/// | expression | semantics |
/// |---|---|
/// | `c.check(p, done)` | `noexcept`, returns `void`. Start checking path `p`; never block the caller (the caller is the monitor's tick). Answer through `done(result)` exactly once, from any thread, inline or later |
// clang-format on
///
/// The monitor counts a check that is not answered within `checker_timeout` seconds as `timeout`
/// and ignores its late answer, but it still waits for that answer when it stops (it may not be
/// destroyed while a `done` can still reach it): a checker must answer every check eventually,
/// with its own bound if the transport can hang. The checker must outlive the monitors using it.
template <class C, class P>
concept PathChecker = Path<P> && requires(C& c, P& p, check_done done) {
  { c.check(p, done) }
  noexcept->std::same_as<void>;
};

} // namespace mpath::inline v0::health
