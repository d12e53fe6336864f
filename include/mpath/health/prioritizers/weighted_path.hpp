#pragma once
// multipathd's `weightedpath` prioritizer (multipathd.md b.6, multipath-tools
// libmultipath/prioritizers/weightedpath.c): `prio_args` is a key followed by pairs of a POSIX
// extended regular expression and a priority; a path gets the priority of the first expression
// that matches it, 0 when none does. Of multipathd's keys (hbtl, devname, serial, wwn) only
// `devname` means something here: it names the path by its table token, which is what an
// engine path is called (`path.device()`).
//
//   auto prio = mpath::health::weighted_path_prioritizer::create("devname ^nvme0 50 ^nvme1 10");
//   if (!prio) ... prio.err().text ...
//
// The arguments are parsed and the expressions compiled once, by `create`; answering a request
// matches the token against the compiled expressions without allocating, inline.
//
// The expressions are matched by a small engine of our own rather than std::regex or <regex.h>:
// std::regex reports a bad expression only by throwing (the library builds without exceptions,
// product.md §4) and, like regexec, allocates while matching. It follows regcomp(REG_EXTENDED |
// REG_NOSUB) in the C locale, as multipathd calls it: a match anywhere in the token, `^` and `$`
// at its ends, `(` `)` `|` `*` `+` `?` `{m,n}`, bracket expressions with ranges, `[:class:]` and
// one-character `[.c.]`/`[=c=]`, a lone `)` taken literally, and GNU's `\w \W \s \S`. GNU's
// back references (`\1`..`\9`) and word-boundary escapes (`\b \B \< \> \` \'`) are refused
// rather than approximated.

#include <mpath/error.hpp>
#include <mpath/health/prioritizer.hpp>
#include <mpath/path.hpp>

#include <array>
#include <bitset>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace mpath::inline v0::health {

namespace detail {

/// A POSIX extended regular expression compiled to a Thompson automaton, searched by following
/// all its states at once: time linear in the subject, no allocation, no recursion.
class posix_ere {
public:
  /// Automaton states (one per instruction); the matcher's scratch lives on the stack, so the
  /// size is bounded. regcomp's REG_ESPACE case, with a limit well above a device-name pattern.
  static constexpr std::size_t max_states = 1024;
  /// RE_DUP_MAX in glibc.
  static constexpr int max_repeat = 0x7fff;

  /// On error, regerror's text for the case (glibc's wording).
  static result<posix_ere> compile(std::string_view pattern) {
    if (pattern.size() > 8 * max_states) // bounds the parser's and emit's recursion too
      return einval("Regular expression too big");
    parser p{pattern};
    int root = p.alternation();
    if (p.error.empty() && p.pos != pattern.size())
      p.error = "Invalid regular expression"; // not reached: only `)` stops a top-level branch
    if (!p.error.empty())
      return einval(p.error);
    posix_ere re;
    re.sets_ = std::move(p.sets);
    if (!re.emit(p.nodes, root) || !re.push({op::match, 0, 0}))
      return einval("Regular expression too big");
    return re;
  }

  /// True when the expression matches somewhere in `subject` (regexec's answer).
  bool search(std::string_view subject) const noexcept {
    std::bitset<max_states> current, next, seen;
    std::array<std::uint16_t, max_states> stack;
    if (close(0, 0, subject.size(), current, seen, stack))
      return true;
    for (std::size_t i = 0; i < subject.size(); ++i) {
      auto c = static_cast<unsigned char>(subject[i]);
      next.reset();
      seen.reset();
      for (std::size_t pc = 0; pc < program_.size(); ++pc)
        if (current.test(pc) && sets_[program_[pc].x].test(c) &&
            close(pc + 1, i + 1, subject.size(), next, seen, stack))
          return true;
      if (close(0, i + 1, subject.size(), next, seen, stack)) // a match may start anywhere
        return true;
      current = next;
    }
    return false;
  }

private:
  using byte_set = std::bitset<256>;
  enum class op : std::uint8_t { set, split, jump, bol, eol, match };
  struct inst {
    op code;
    std::uint16_t x; ///< set: index in sets_; split, jump: target
    std::uint16_t y; ///< split: second target
  };

  enum class kind : std::uint8_t { set, bol, eol, empty, cat, alt, repeat };
  struct node {
    kind k;
    int a = -1, b = -1;   ///< set: index; cat, alt: children; repeat: child
    int min = 0, max = 0; ///< repeat; max -1: unbounded
  };

  struct parser {
    std::string_view s;
    std::size_t pos = 0;
    int depth = 0;
    std::vector<node> nodes = {};
    std::vector<byte_set> sets = {};
    std::string error = {};

    int add(node n) {
      nodes.push_back(n);
      return int(nodes.size()) - 1;
    }
    int add_set(const byte_set& b) {
      sets.push_back(b);
      return add({kind::set, int(sets.size()) - 1});
    }
    bool fail(const char* why) {
      if (error.empty())
        error = why;
      return false;
    }
    bool at_end() const noexcept { return pos >= s.size(); }

    int alternation() {
      int left = branch();
      while (error.empty() && !at_end() && s[pos] == '|') {
        ++pos;
        int right = branch();
        left = add({kind::alt, left, right});
      }
      return left;
    }

    int branch() {
      int acc = -1;
      while (error.empty() && !at_end() && s[pos] != '|' && !(s[pos] == ')' && depth > 0)) {
        int p = piece();
        acc = acc < 0 ? p : add({kind::cat, acc, p});
      }
      return acc < 0 ? add({kind::empty}) : acc;
    }

    static bool is_quantifier(char c) noexcept { return c == '*' || c == '+' || c == '?' || c == '{'; }

    int piece() {
      if (is_quantifier(s[pos])) {
        fail("Invalid preceding regular expression");
        return -1;
      }
      bool anchor = s[pos] == '^' || s[pos] == '$'; // glibc refuses `^*` but not `(^)*`
      int atom_index = atom();
      while (error.empty() && !at_end() && is_quantifier(s[pos])) {
        if (anchor) {
          fail("Invalid preceding regular expression");
          return -1;
        }
        int lo = 0, hi = -1;
        char c = s[pos++];
        if (c == '+')
          lo = 1;
        else if (c == '?')
          hi = 1;
        else if (c == '{' && !bound(lo, hi))
          return -1;
        atom_index = add({kind::repeat, atom_index, -1, lo, hi});
      }
      return atom_index;
    }

    /// After `{`: `m}`, `m,}`, `m,n}` or (GNU) `,n}`.
    bool bound(int& lo, int& hi) {
      auto number = [&](int& out) {
        std::size_t start = pos;
        long v = 0;
        while (!at_end() && s[pos] >= '0' && s[pos] <= '9') {
          v = v * 10 + (s[pos++] - '0');
          if (v > max_repeat)
            v = max_repeat + 1;
        }
        out = int(v);
        return pos > start;
      };
      bool have_lo = number(lo);
      if (!have_lo)
        lo = 0;
      if (!at_end() && s[pos] == ',') {
        ++pos;
        if (!number(hi))
          hi = -1;
      } else {
        if (!have_lo)
          return at_end() ? fail("Unmatched \\{") : fail("Invalid content of \\{\\}");
        hi = lo;
      }
      if (at_end())
        return fail("Unmatched \\{");
      if (s[pos] != '}')
        return fail("Invalid content of \\{\\}");
      ++pos;
      if (lo > max_repeat || hi > max_repeat)
        return fail("Regular expression too big");
      if (hi >= 0 && hi < lo)
        return fail("Invalid content of \\{\\}");
      return true;
    }

    int atom() {
      char c = s[pos++];
      switch (c) {
      case '(': {
        ++depth;
        int inner = alternation();
        --depth;
        if (!error.empty())
          return -1;
        if (at_end() || s[pos] != ')') {
          fail("Unmatched ( or \\(");
          return -1;
        }
        ++pos;
        return inner;
      }
      case '.': return add_set(byte_set().set());
      case '^': return add({kind::bol});
      case '$': return add({kind::eol});
      case '[': return bracket();
      case '\\': {
        if (at_end()) {
          fail("Trailing backslash");
          return -1;
        }
        char e = s[pos++];
        switch (e) {
        case 'w': return add_set(word_chars());
        case 'W': return add_set(~word_chars());
        case 's': return add_set(class_set("space"));
        case 'S': return add_set(~class_set("space"));
        case 'b':
        case 'B':
        case '<':
        case '>':
        case '`':
        case '\'': fail("Unsupported word-boundary escape"); return -1;
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
        case '8':
        case '9': fail("Unsupported back reference"); return -1; // GNU; an automaton cannot
        default: return literal(e);
        }
      }
      default: return literal(c); // including a `)` with no open group, as glibc takes it
      }
    }

    int literal(char c) {
      byte_set b;
      b.set(static_cast<unsigned char>(c));
      return add_set(b);
    }

    static byte_set word_chars() {
      byte_set b = class_set("alnum");
      b.set('_');
      return b;
    }

    /// The C locale's classes; an empty set for an unknown name.
    static byte_set class_set(std::string_view name) {
      byte_set b;
      auto range = [&](int lo, int hi) {
        for (int i = lo; i <= hi; ++i)
          b.set(std::size_t(i));
      };
      if (name == "alpha" || name == "alnum") {
        range('a', 'z');
        range('A', 'Z');
      }
      if (name == "digit" || name == "alnum" || name == "xdigit")
        range('0', '9');
      if (name == "xdigit") {
        range('a', 'f');
        range('A', 'F');
      }
      if (name == "upper")
        range('A', 'Z');
      if (name == "lower")
        range('a', 'z');
      if (name == "space") {
        range('\t', '\r');
        b.set(' ');
      }
      if (name == "blank") {
        b.set(' ');
        b.set('\t');
      }
      if (name == "punct") {
        range('!', '/');
        range(':', '@');
        range('[', '`');
        range('{', '~');
      }
      if (name == "print")
        range(' ', '~');
      if (name == "graph")
        range('!', '~');
      if (name == "cntrl") {
        range(0, 31);
        b.set(127);
      }
      return b;
    }

    /// `[.c.]` or `[=c=]` after the `[`: the one character they name; -1 after an error.
    int collating(char delim) {
      std::size_t close = s.find(std::string_view{delim == '.' ? ".]" : "=]"}, pos);
      if (close == std::string_view::npos) {
        fail("Unmatched [, [^, [:, [., or [=");
        return -1;
      }
      if (close != pos + 1) {
        fail("Invalid collation character");
        return -1;
      }
      int c = static_cast<unsigned char>(s[pos]);
      pos = close + 2;
      return c;
    }

    /// One range end: a character or a collating element; -1 after an error.
    int bracket_char() {
      if (s[pos] == '[' && pos + 1 < s.size() && (s[pos + 1] == '.' || s[pos + 1] == '=')) {
        char delim = s[pos + 1];
        pos += 2;
        return collating(delim);
      }
      return static_cast<unsigned char>(s[pos++]);
    }

    int bracket() {
      byte_set b;
      bool negate = !at_end() && s[pos] == '^';
      if (negate)
        ++pos;
      for (bool first = true;; first = false) {
        if (at_end()) {
          fail("Unmatched [, [^, [:, [., or [=");
          return -1;
        }
        if (s[pos] == ']' && !first) {
          ++pos;
          break;
        }
        if (s[pos] == '[' && pos + 1 < s.size() && s[pos + 1] == ':') {
          std::size_t close = s.find(":]", pos + 2);
          if (close == std::string_view::npos) {
            fail("Unmatched [, [^, [:, [., or [=");
            return -1;
          }
          byte_set cls = class_set(s.substr(pos + 2, close - pos - 2));
          if (cls.none()) {
            fail("Invalid character class name");
            return -1;
          }
          b |= cls;
          pos = close + 2;
          continue;
        }
        int lo = bracket_char();
        if (lo < 0)
          return -1;
        int hi = lo;
        if (pos + 1 < s.size() && s[pos] == '-' && s[pos + 1] != ']') {
          ++pos;
          hi = bracket_char();
          if (hi < 0)
            return -1;
          if (hi < lo) {
            fail("Invalid range end");
            return -1;
          }
        }
        for (int i = lo; i <= hi; ++i)
          b.set(std::size_t(i));
      }
      if (negate)
        b.flip();
      return add_set(b);
    }
  };

  bool push(inst i) {
    if (program_.size() >= max_states)
      return false;
    program_.push_back(i);
    return true;
  }
  std::uint16_t here() const noexcept { return std::uint16_t(program_.size()); }

  /// Appends the automaton of `nodes[n]`; false when it would exceed max_states.
  bool emit(const std::vector<node>& nodes, int n) {
    const node& d = nodes[std::size_t(n)];
    switch (d.k) {
    case kind::set: return push({op::set, std::uint16_t(d.a), 0});
    case kind::bol: return push({op::bol, 0, 0});
    case kind::eol: return push({op::eol, 0, 0});
    case kind::empty: return true;
    case kind::cat: return emit(nodes, d.a) && emit(nodes, d.b);
    case kind::alt: {
      std::uint16_t split = here();
      if (!push({op::split, std::uint16_t(split + 1), 0}) || !emit(nodes, d.a))
        return false;
      std::uint16_t jump = here();
      if (!push({op::jump, 0, 0}))
        return false;
      program_[split].y = here();
      if (!emit(nodes, d.b))
        return false;
      program_[jump].x = here();
      return true;
    }
    case kind::repeat: {
      for (int i = 0; i < d.min; ++i)
        if (!emit(nodes, d.a))
          return false;
      if (d.max < 0) { // a loop: split into the body or out, the body jumps back
        std::uint16_t split = here();
        if (!push({op::split, std::uint16_t(split + 1), 0}) || !emit(nodes, d.a) || !push({op::jump, split, 0}))
          return false;
        program_[split].y = here();
        return true;
      }
      // max - min optional copies, each one skipping to the end
      std::vector<std::uint16_t> skips;
      for (int i = d.min; i < d.max; ++i) {
        skips.push_back(here());
        if (!push({op::split, std::uint16_t(here() + 1), 0}) || !emit(nodes, d.a))
          return false;
      }
      for (auto at : skips)
        program_[at].y = here();
      return true;
    }
    }
    return false;
  }

  /// Adds state `pc` and every state reachable from it without reading, at position `at` of a
  /// subject of `size` bytes, to `into`; true when the match state is among them.
  bool close(std::size_t pc, std::size_t at, std::size_t size, std::bitset<max_states>& into,
             std::bitset<max_states>& seen, std::array<std::uint16_t, max_states>& stack) const noexcept {
    std::size_t top = 0;
    auto visit = [&](std::size_t p) noexcept {
      if (!seen.test(p)) {
        seen.set(p);
        stack[top++] = std::uint16_t(p);
      }
    };
    visit(pc);
    while (top > 0) {
      std::size_t p = stack[--top];
      const inst& i = program_[p];
      switch (i.code) {
      case op::set: into.set(p); break;
      case op::split:
        visit(i.x);
        visit(i.y);
        break;
      case op::jump: visit(i.x); break;
      case op::bol:
        if (at == 0)
          visit(p + 1);
        break;
      case op::eol:
        if (at == size)
          visit(p + 1);
        break;
      case op::match: return true;
      }
    }
    return false;
  }

  std::vector<inst> program_;
  std::vector<byte_set> sets_;
};

} // namespace detail

/// multipathd's `prio weightedpath` over path tokens. Models Prioritizer for every path type;
/// answers inline. Thread safety: `get_priority` and `priority` from any thread (they only read).
class weighted_path_prioritizer {
public:
  /// multipath.conf's `prio_args`: `"devname <regex> <prio> [<regex> <prio>]..."`, words separated
  /// by blanks (so an expression cannot contain one), priorities integers ≥ 0. multipathd skips
  /// an expression regcomp refuses and a trailing expression without a priority, and reads a
  /// priority with atoi; each of those is an EINVAL error here, as are the other keys.
  static result<weighted_path_prioritizer> create(std::string_view args) {
    std::vector<std::string_view> words;
    for (std::size_t i = 0; i < args.size();) {
      if (args[i] == ' ' || args[i] == '\t') {
        ++i;
        continue;
      }
      std::size_t end = args.find_first_of(" \t", i);
      if (end == std::string_view::npos)
        end = args.size();
      words.push_back(args.substr(i, end - i));
      i = end;
    }
    if (words.empty())
      return einval("weightedpath prio: missing arguments (expected \"devname <regex> <prio> ...\")");
    if (words[0] != "devname")
      return einval("weightedpath prio: " + std::string(words[0]) +
                    " - Invalid arguments (only devname, the path's token, is known here)");
    if (words.size() % 2 == 0)
      return einval("weightedpath prio: regex \"" + std::string(words.back()) + "\" has no priority");
    weighted_path_prioritizer out;
    for (std::size_t i = 1; i + 1 < words.size(); i += 2) {
      auto re = detail::posix_ere::compile(words[i]);
      if (!re)
        return einval("weightedpath prio: bad regex \"" + std::string(words[i]) + "\": " + re.err().text);
      std::string_view p = words[i + 1];
      int prio = 0;
      auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prio);
      if (ec != std::errc{} || ptr != p.data() + p.size() || prio < 0)
        return einval("weightedpath prio: bad priority \"" + std::string(p) + "\" for regex \"" +
                      std::string(words[i]) + "\"");
      out.rules_.push_back({std::move(*re), prio});
    }
    return out;
  }

  template <Path P> void get_priority(P& p, prio_done done) noexcept { done(priority(p.device())); }

  /// The priority of the first expression that matches `device`; 0 when none does.
  int priority(std::string_view device) const noexcept {
    for (const auto& r : rules_)
      if (r.re.search(device))
        return r.priority;
    return 0;
  }

  /// The number of (regex, priority) pairs.
  std::size_t size() const noexcept { return rules_.size(); }

private:
  weighted_path_prioritizer() = default;

  struct rule {
    detail::posix_ere re;
    int priority;
  };
  std::vector<rule> rules_;
};

} // namespace mpath::inline v0::health
