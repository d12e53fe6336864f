#pragma once
// Word splitting, strict number reading and status writing shared by the table grammar,
// messages and selectors.

#include <mpath/error.hpp>

#include <charconv>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mpath::inline v0::detail {

inline bool is_blank(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/// Splits on blanks as DM core does; a backslash makes the next character part of the word.
inline std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_blank(text[i]))
      ++i;
    if (i == text.size())
      break;
    std::string w;
    while (i < text.size() && !is_blank(text[i])) {
      if (text[i] == '\\' && i + 1 < text.size())
        ++i;
      w.push_back(text[i++]);
    }
    words.push_back(std::move(w));
  }
  return words;
}

inline char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i]))
      return false;
  return true;
}

/// Exactly one unsigned decimal number filling the word, at most 2^32-1. The kernel's sscanf
/// would wrap larger values; we reject them (product.md §5).
inline bool parse_u32(std::string_view word, std::uint32_t& out) noexcept {
  if (word.empty())
    return false;
  for (char c : word)
    if (c < '0' || c > '9')
      return false;
  std::uint32_t v = 0;
  auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
  if (ec != std::errc{} || ptr != word.data() + word.size())
    return false;
  out = v;
  return true;
}

/// The words still to be read, like DM's dm_arg_set.
class arg_cursor {
public:
  explicit arg_cursor(std::span<const std::string> words) noexcept : words_(words) {}

  std::size_t remaining() const noexcept { return words_.size() - pos_; }
  bool empty() const noexcept { return remaining() == 0; }

  /// The next word, or nullptr when none is left.
  const std::string* shift() noexcept { return empty() ? nullptr : &words_[pos_++]; }

  std::span<const std::string> peek(std::size_t n) const noexcept { return words_.subspan(pos_, n); }
  void consume(std::size_t n) noexcept { pos_ += n; }

  /// One number in [lo, hi]; `grouped` additionally demands that many words remain after it.
  result<std::uint32_t> read_number(std::uint32_t lo, std::uint32_t hi, std::string_view what, bool grouped = false) {
    const std::string* w = shift();
    std::uint32_t v = 0;
    if (w == nullptr || !parse_u32(*w, v) || v < lo || v > hi || (grouped && remaining() < v))
      return einval(std::string(what));
    return v;
  }

private:
  std::span<const std::string> words_;
  std::size_t pos_ = 0;
};

/// Appends status words, each followed by exactly one blank as the kernel prints them.
class status_writer {
public:
  explicit status_writer(std::string& out) noexcept : out_(out) {}

  status_writer& word(std::string_view w) {
    out_.append(w);
    out_.push_back(' ');
    return *this;
  }
  status_writer& number(std::uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return word(std::string_view(buf, std::size_t(r.ptr - buf)));
  }
  status_writer& signed_number(std::int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return word(std::string_view(buf, std::size_t(r.ptr - buf)));
  }
  status_writer& letter(char c) {
    out_.push_back(c);
    out_.push_back(' ');
    return *this;
  }
  std::string& str() noexcept { return out_; }

private:
  std::string& out_;
};

/// Views of the words, for APIs that take std::span<const std::string_view>.
inline std::vector<std::string_view> as_views(std::span<const std::string> words) {
  return {words.begin(), words.end()};
}

} // namespace mpath::inline v0::detail
