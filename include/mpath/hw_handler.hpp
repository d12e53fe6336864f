#pragma once
// Hardware handlers: asynchronous activation of a path group's paths (pg_init, kernel-target.md
// §4.5) and, optionally, classification of I/O errors as in the 2005 hardware-handler design.

#include <mpath/error.hpp>
#include <mpath/io.hpp>
#include <mpath/path.hpp>

#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace mpath::inline v0 {

/// Activation results, numbered as the kernel's SCSI_DH_* codes.
enum class activation_result : std::uint8_t {
  ok = 0,
  dev_failed = 1,
  dev_temp_busy = 2,
  dev_unsupp = 3,
  notconn = 5,
  conn_failure = 6,
  io = 8,
  invalid_io = 9,
  retry = 10,
  imm_retry = 11,
  timed_out = 12,
  res_temp_unavail = 13,
  dev_offlined = 14,
  nomem = 15,
  nosys = 16,
};

/// What to do about a path error, as a handler decodes it. Flags combine; none means "retry the
/// I/O without failing anything".
enum class error_action : std::uint8_t { retry = 0, fail_path = 1, bypass_group = 2, error_io = 4 };
constexpr error_action operator|(error_action a, error_action b) noexcept {
  return error_action(std::uint8_t(a) | std::uint8_t(b));
}
constexpr bool has(error_action set, error_action flag) noexcept {
  return (std::uint8_t(set) & std::uint8_t(flag)) != 0;
}

/// Handed to `activate`; call it exactly once, from any thread, possibly before `activate` returns.
class activation_done {
public:
  using fn_type = void (*)(void* engine, void* path, activation_result) noexcept;
  activation_done(fn_type fn, void* engine, void* path) noexcept : fn_(fn), engine_(engine), path_(path) {}
  void operator()(activation_result r) const noexcept { fn_(engine_, path_, r); }

private:
  fn_type fn_;
  void* engine_;
  void* path_;
};

/// Requirements on a hardware handler for paths of type P.
///
/// - `H::accepts(name)`: whether a table's handler name selects this handler (e.g. `alua`).
/// - `h.set_params(args)`: the handler arguments of the table; cold, may fail.
/// - `h.activate(path, done)`: start activating `path`; report through `done`. Never called with
///   the engine lock held.
template <class H, class P>
concept HwHandler = std::default_initializable<H> && Path<P> &&
    requires(H& h, std::string_view name, std::span<const std::string> args, P& p, activation_done done) {
  { H::accepts(name) }
  noexcept->std::same_as<bool>;
  { h.set_params(args) } -> std::same_as<result<void>>;
  { h.activate(p, done) }
  noexcept;
};

/// A handler that also decodes path errors (MP_FAIL_PATH / MP_BYPASS_PG / MP_ERROR_IO of 2005).
template <class H, class P>
concept ClassifyingHwHandler = HwHandler<H, P> && requires(H& h, P& p, blk_status s) {
  { h.classify(p, s) }
  noexcept->std::same_as<error_action>;
};

template <class... Hs> struct hw_handler_set {};

template <class Set, class P> class any_hw_handler;

/// No handler, or one handler of the set chosen by the table's name.
template <class... Hs, class P> class any_hw_handler<hw_handler_set<Hs...>, P> {
  static_assert((HwHandler<Hs, P> && ...), "every handler of the set must model HwHandler");

public:
  /// Picks the first handler that accepts `name` and configures it.
  result<void> create(std::string_view name, std::span<const std::string> args) {
    if (!emplace_first<0>(name))
      return einval("unknown hardware handler type");
    bool ok = std::visit(
        [&](auto& h) {
          if constexpr (std::is_same_v<std::remove_cvref_t<decltype(h)>, std::monostate>)
            return true;
          else
            return h.set_params(args).has_value();
        },
        v_);
    if (!ok)
      return einval("unable to set hardware handler parameters");
    return {};
  }

  bool present() const noexcept { return v_.index() != 0; }

  void activate(P& p, activation_done done) noexcept {
    std::visit(
        [&](auto& h) noexcept {
          if constexpr (std::is_same_v<std::remove_cvref_t<decltype(h)>, std::monostate>)
            done(activation_result::nosys);
          else
            h.activate(p, done);
        },
        v_);
  }

  /// The handler's verdict on a path error; fail_path when it has no opinion.
  error_action classify(P& p, blk_status s) noexcept {
    return std::visit(
        [&](auto& h) noexcept {
          using H = std::remove_cvref_t<decltype(h)>;
          if constexpr (std::is_same_v<H, std::monostate>)
            return error_action::fail_path;
          else if constexpr (ClassifyingHwHandler<H, P>)
            return h.classify(p, s);
          else
            return error_action::fail_path;
        },
        v_);
  }

  template <class H> H* get_if() noexcept { return std::get_if<H>(&v_); }

private:
  template <std::size_t I> bool emplace_first(std::string_view name) {
    if constexpr (I < sizeof...(Hs)) {
      using H = std::tuple_element_t<I, std::tuple<Hs...>>;
      if (H::accepts(name)) {
        v_.template emplace<I + 1>();
        return true;
      }
      return emplace_first<I + 1>(name);
    } else {
      return false;
    }
  }

  std::variant<std::monostate, Hs...> v_;
};

} // namespace mpath::inline v0
