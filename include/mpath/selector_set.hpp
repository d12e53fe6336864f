#pragma once
// A compile-time list of selectors, `rebind_selectors_t`, which gives a whole list another sync
// policy, and `any_selector`, which lets a table name pick one of them at run time without
// virtual calls.

#include <mpath/detail/sync.hpp>
#include <mpath/path_selector.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

namespace mpath::inline v0 {

template <class S> constexpr bool selector_uses_clock() noexcept {
  if constexpr (requires { S::uses_clock; })
    return S::uses_clock;
  else
    return false;
}

template <PathSelector... Ss> struct selector_set {
  static constexpr std::size_t size = sizeof...(Ss);
  static constexpr std::size_t npos = ~std::size_t{0};
  static constexpr std::array<std::string_view, size> names{std::string_view(Ss::name)...};
  /// True when some selector declares `static constexpr bool uses_clock = true` (it wants the
  /// executor's time in select/end_io, like the kernel's DM_PS_USE_HR_TIMER); the engine reads
  /// the clock on the I/O path only then.
  static constexpr bool uses_clock = (selector_uses_clock<Ss>() || ...);

  /// Index of the selector called `name` (case-sensitive, as the kernel's registry), or npos.
  static constexpr std::size_t find(std::string_view name) noexcept {
    for (std::size_t i = 0; i < size; ++i)
      if (names[i] == name)
        return i;
    return npos;
  }
};

namespace detail {
template <class S, class Sync> constexpr auto rebind_selector_sync() noexcept {
  if constexpr (requires { typename S::template rebind_sync<Sync>; })
    return std::type_identity<typename S::template rebind_sync<Sync>>{};
  else
    return std::type_identity<S>{};
}

template <class Set, class Sync> struct rebind_selectors;
template <PathSelector... Ss, class Sync> struct rebind_selectors<selector_set<Ss...>, Sync> {
  using type = selector_set<typename decltype(rebind_selector_sync<Ss, Sync>())::type...>;
};
} // namespace detail

/// `S` built with the sync policy `Sync` (threaded_sync, single_thread_sync or a user's): the
/// selector's `rebind_sync<Sync>` if it declares one, else `S` itself.
template <class S, SelectorSync Sync>
using rebind_selector_t = typename decltype(detail::rebind_selector_sync<S, Sync>())::type;

/// A selector_set whose every selector is rebound to `Sync` (rebind_selector_t); names, order and
/// selectors without `rebind_sync` stay as they are. The engine builds its selectors from
/// `rebind_selectors_t<Traits::selectors, selector_sync_for<Traits>>`.
template <class Set, SelectorSync Sync> using rebind_selectors_t = typename detail::rebind_selectors<Set, Sync>::type;

template <class Set> class any_selector;

namespace detail {
/// Where a selector without channels keeps a channel's state: nowhere (distinct per selector, so
/// a variant of them has no repeated alternative).
template <class S> struct no_channel_state {};
template <class S> constexpr auto channel_state_of() noexcept {
  if constexpr (ChannelSelector<S>)
    return std::type_identity<typename S::channel_state>{};
  else
    return std::type_identity<no_channel_state<S>>{};
}
template <class S> using channel_state_t = typename decltype(channel_state_of<S>())::type;
} // namespace detail

/// One selector out of a set, chosen by name at run time. It satisfies PathSelector itself except
/// for being named at run time, so a priority group can hold it like any selector.
template <PathSelector... Ss> class any_selector<selector_set<Ss...>> {
public:
  using set = selector_set<Ss...>;

  /// Chooses the selector by name and hands it the group's selector arguments.
  result<void> create(std::string_view selector_name, std::span<const std::string> args) {
    std::size_t i = set::find(selector_name);
    if (i == set::npos)
      return einval("unknown path selector type");
    if (!emplace_at<0>(i, args))
      return einval("path selector constructor failed"); // the kernel replaces the selector's text
    return {};
  }

  std::string_view name() const noexcept {
    return visit([](const auto& s) { return std::string_view(std::remove_cvref_t<decltype(s)>::name); });
  }
  bool uses_clock() const noexcept {
    return visit([](const auto& s) { return selector_uses_clock<std::remove_cvref_t<decltype(s)>>(); });
  }
  unsigned table_args() const noexcept {
    return visit([](const auto& s) { return unsigned(std::remove_cvref_t<decltype(s)>::table_args); });
  }
  unsigned info_args() const noexcept {
    return visit([](const auto& s) { return unsigned(std::remove_cvref_t<decltype(s)>::info_args); });
  }

  result<void> add_path(std::span<const std::string> args) {
    return visit([&](auto& s) { return s.add_path(args); });
  }
  path_index select(std::uint64_t nr_bytes, std::uint64_t now_ns) noexcept {
    return visit([&](auto& s) noexcept { return s.select(nr_bytes, now_ns); });
  }
  void fail_path(path_index p) noexcept {
    visit([&](auto& s) noexcept { s.fail_path(p); });
  }
  int reinstate_path(path_index p) noexcept {
    return visit([&](auto& s) noexcept { return s.reinstate_path(p); });
  }
  void start_io(path_index p, std::uint64_t nr_bytes) noexcept {
    visit([&](auto& s) noexcept {
      if constexpr (AccountingSelector<std::remove_cvref_t<decltype(s)>>)
        s.start_io(p, nr_bytes);
    });
  }
  void end_io(path_index p, std::uint64_t nr_bytes, std::uint64_t start_ns, std::uint64_t now_ns) noexcept {
    visit([&](auto& s) noexcept {
      if constexpr (AccountingSelector<std::remove_cvref_t<decltype(s)>>)
        s.end_io(p, nr_bytes, start_ns, now_ns);
    });
  }
  void group_status(std::string& out) const {
    visit([&](const auto& s) { s.group_status(out); });
  }
  void path_status(path_index p, status_type type, std::string& out) const {
    visit([&](const auto& s) { s.path_status(p, type, out); });
  }

  // ---- channels (ChannelSelector); a selector without them is used through its own select

  /// A channel's state in whichever selector this is. Stays at one address while attached.
  using channel_state = std::variant<detail::channel_state_t<Ss>...>;

  void attach(channel_state& c) { attach_at<0>(c); }
  void detach(channel_state& c) noexcept {
    with_channel(c, [](auto& s, auto& slot) noexcept {
      if constexpr (ChannelSelector<std::remove_cvref_t<decltype(s)>>)
        s.detach(slot);
    });
  }
  path_index select(channel_state& c, std::uint64_t nr_bytes, std::uint64_t now_ns) noexcept {
    return with_channel(c, [&](auto& s, auto& slot) noexcept {
      if constexpr (ChannelSelector<std::remove_cvref_t<decltype(s)>>)
        return s.select(slot, nr_bytes, now_ns);
      else
        return s.select(nr_bytes, now_ns);
    });
  }
  void start_io(channel_state& c, path_index p, std::uint64_t nr_bytes) noexcept {
    with_channel(c, [&](auto& s, auto& slot) noexcept {
      using S = std::remove_cvref_t<decltype(s)>;
      if constexpr (ChannelSelector<S>)
        s.start_io(slot, p, nr_bytes);
      else if constexpr (AccountingSelector<S>)
        s.start_io(p, nr_bytes);
    });
  }
  void end_io(channel_state& c, path_index p, std::uint64_t nr_bytes, std::uint64_t start_ns,
              std::uint64_t now_ns) noexcept {
    with_channel(c, [&](auto& s, auto& slot) noexcept {
      using S = std::remove_cvref_t<decltype(s)>;
      if constexpr (ChannelSelector<S>)
        s.end_io(slot, p, nr_bytes, start_ns, now_ns);
      else if constexpr (AccountingSelector<S>)
        s.end_io(p, nr_bytes, start_ns, now_ns);
    });
  }

  /// The concrete selector, for tests and diagnostics.
  template <class S> S* get_if() noexcept { return std::get_if<S>(&v_); }
  template <class S> const S* get_if() const noexcept { return std::get_if<S>(&v_); }

private:
  template <std::size_t I> bool emplace_at(std::size_t i, std::span<const std::string> args) {
    if constexpr (I < sizeof...(Ss)) {
      if (i != I)
        return emplace_at<I + 1>(i, args);
      auto& s = v_.template emplace<I>();
      return s.create(args).has_value();
    } else {
      return false;
    }
  }

  template <std::size_t I> void attach_at(channel_state& c) {
    if constexpr (I < sizeof...(Ss)) {
      if (v_.index() != I)
        return attach_at<I + 1>(c);
      auto& slot = c.template emplace<I>();
      if constexpr (ChannelSelector<std::variant_alternative_t<I, std::variant<Ss...>>>)
        std::get<I>(v_).attach(slot);
    }
  }

  /// `f(selector, its slot in c)`; c was attached to this selector, so their indices match.
  template <std::size_t I = 0, class F> decltype(auto) with_channel(channel_state& c, F&& f) noexcept {
    if constexpr (I + 1 < sizeof...(Ss)) {
      if (v_.index() != I)
        return with_channel<I + 1>(c, std::forward<F>(f));
    }
    return f(*std::get_if<I>(&v_), *std::get_if<I>(&c));
  }

  template <class F> decltype(auto) visit(F&& f) { return std::visit(std::forward<F>(f), v_); }
  template <class F> decltype(auto) visit(F&& f) const { return std::visit(std::forward<F>(f), v_); }

  // Until create() runs this holds a default-constructed first selector, which sees no I/O.
  std::variant<Ss...> v_;
};

} // namespace mpath::inline v0
