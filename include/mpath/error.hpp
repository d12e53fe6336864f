#pragma once
// Errors are values: a kernel-style errno plus the kernel's text (kernel-target.md §1, §3).

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mpath::inline v0 {

/// An error as the kernel reports it: a positive errno (EINVAL, EBUSY, ...) and the text the
/// kernel would put in `ti->error` or its log line.
struct error {
  int code = EINVAL;
  std::string text;

  friend bool operator==(const error&, const error&) = default;
};

/// Name of an errno as `mpathctl` prints it (`EINVAL`); "E<number>" for ones we never produce.
inline std::string errno_name(int code) {
  switch (code) {
  case EINVAL: return "EINVAL";
  case EBUSY: return "EBUSY";
  case EIO: return "EIO";
  case ENXIO: return "ENXIO";
  case ENODEV: return "ENODEV";
  case ENOMEM: return "ENOMEM";
  case EOVERFLOW: return "EOVERFLOW";
  case ENOTCONN: return "ENOTCONN";
  case ENOENT: return "ENOENT";
  case EEXIST: return "EEXIST";
  case ENOTSUP: return "ENOTSUP";
  default: return "E" + std::to_string(code);
  }
}

/// Either a value or an error. Small on purpose: C++20 has no std::expected.
template <class T> class [[nodiscard]] result {
public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  result(error e) : v_(std::in_place_index<1>, std::move(e)) {}

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { return *std::get_if<0>(&v_); }
  const T& value() const& { return *std::get_if<0>(&v_); }
  T&& value() && { return std::move(*std::get_if<0>(&v_)); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(value()); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const error& err() const& { return *std::get_if<1>(&v_); }
  error&& err() && { return std::move(*std::get_if<1>(&v_)); }

private:
  std::variant<T, error> v_;
};

template <> class [[nodiscard]] result<void> {
public:
  result() = default;
  result(error e) : e_(std::move(e)), failed_(true) {}

  bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return !failed_; }
  const error& err() const& { return e_; }
  error&& err() && { return std::move(e_); }

private:
  error e_{0, {}};
  bool failed_ = false;
};

/// Shorthand for the overwhelmingly common case.
inline error einval(std::string text) { return error{EINVAL, std::move(text)}; }

} // namespace mpath::inline v0
