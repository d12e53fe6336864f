// health/prioritizers/weighted_path.hpp: multipathd's weightedpath (libmultipath/prioritizers/
// weightedpath.c) over path tokens: first match wins, no match is 0, bad arguments are EINVAL at
// construction. The expression engine is checked against what glibc's regcomp/regexec
// (REG_EXTENDED | REG_NOSUB), which multipathd uses, answer for the same patterns.

#include <mpath/health/prioritizer.hpp>
#include <mpath/health/prioritizers/weighted_path.hpp>
#include <mpath/path.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <vector>

namespace {

using mpath::health::prio_done;
using mpath::health::weighted_path_prioritizer;
using mpath::health::detail::posix_ere;
using path = mpath::basic_path<int>;

static_assert(mpath::health::Prioritizer<weighted_path_prioritizer, path>);
static_assert(mpath::health::Prioritizer<weighted_path_prioritizer, mpath::basic_path<std::string>>);

weighted_path_prioritizer make(std::string_view args) {
  auto p = weighted_path_prioritizer::create(args);
  REQUIRE(p);
  return std::move(*p);
}

std::string error_of(std::string_view args) {
  auto p = weighted_path_prioritizer::create(args);
  REQUIRE_FALSE(p);
  CHECK(p.err().code == EINVAL);
  return p.err().text;
}

bool matches(std::string_view pattern, std::string_view subject) {
  auto re = posix_ere::compile(pattern);
  REQUIRE(re);
  return re->search(subject);
}

std::string regex_error(std::string_view pattern) {
  auto re = posix_ere::compile(pattern);
  REQUIRE_FALSE(re);
  return re.err().text;
}

TEST_CASE("weightedpath prioritizer: the first matching expression gives the priority") {
  auto prio = make("devname nvme0 50 nvme 10 ^/dev/sd[a-c]$ 5 sd 2");
  CHECK(prio.size() == 4);
  CHECK(prio.priority("nvme0n1") == 50);
  CHECK(prio.priority("nvme1n1") == 10); // not nvme0: the second pair
  CHECK(prio.priority("nvme10n1") == 10);
  CHECK(prio.priority("/dev/sdb") == 5);
  CHECK(prio.priority("/dev/sdd") == 2); // the anchored third misses, the fourth matches
  CHECK(prio.priority("/dev/sdab") == 2);

  path p("nvme0n1", 0, 0, nullptr);
  std::vector<int> got;
  prio.get_priority(
      p, prio_done([](void* ctx, std::uint64_t, int v) noexcept { static_cast<std::vector<int>*>(ctx)->push_back(v); },
                   &got, 0));
  CHECK(got == std::vector<int>{50}); // inline
}

TEST_CASE("weightedpath prioritizer: the order of the pairs decides, not the best match") {
  auto prio = make("devname sd 2 sda 20");
  CHECK(prio.priority("sda") == 2);
  auto reversed = make("devname\tsda  20 \t sd 2");
  CHECK(reversed.priority("sda") == 20);
  CHECK(reversed.priority("sdb") == 2);
}

TEST_CASE("weightedpath prioritizer: a path no expression matches gets 0") {
  auto prio = make("devname ^8:16$ 30 ^8:32$ 20");
  CHECK(prio.priority("8:16") == 30);
  CHECK(prio.priority("8:48") == 0);
  CHECK(prio.priority("18:16") == 0);
  CHECK(prio.priority("") == 0);
  auto none = make("devname"); // no pairs: everything 0, as multipathd
  CHECK(none.size() == 0);
  CHECK(none.priority("8:16") == 0);
}

TEST_CASE("weightedpath prioritizer: an expression without a priority is refused") {
  CHECK(error_of("devname sda") == "weightedpath prio: regex \"sda\" has no priority");
  CHECK(error_of("devname sda 10 sdb") == "weightedpath prio: regex \"sdb\" has no priority");
}

TEST_CASE("weightedpath prioritizer: a bad expression is refused with regerror's words") {
  CHECK(error_of("devname sd[a 10") == "weightedpath prio: bad regex \"sd[a\": Unmatched [, [^, [:, [., or [=");
  CHECK(error_of("devname ok 1 (sda 10") == "weightedpath prio: bad regex \"(sda\": Unmatched ( or \\(");
  CHECK(error_of("devname *sda 10") == "weightedpath prio: bad regex \"*sda\": Invalid preceding regular expression");
  CHECK(error_of("devname [z-a] 10") == "weightedpath prio: bad regex \"[z-a]\": Invalid range end");
}

TEST_CASE("weightedpath prioritizer: other bad arguments") {
  CHECK(error_of("") == "weightedpath prio: missing arguments (expected \"devname <regex> <prio> ...\")");
  CHECK(error_of("hbtl 1:.:.:. 2") ==
        "weightedpath prio: hbtl - Invalid arguments (only devname, the path's token, is known here)");
  CHECK(error_of("serial abc 2").starts_with("weightedpath prio: serial - Invalid arguments"));
  CHECK(error_of("devname sda ten") == "weightedpath prio: bad priority \"ten\" for regex \"sda\"");
  CHECK(error_of("devname sda 10x") == "weightedpath prio: bad priority \"10x\" for regex \"sda\"");
  CHECK(error_of("devname sda -1") == "weightedpath prio: bad priority \"-1\" for regex \"sda\"");
}

// ------------------------------------------------------------------ the expressions, as glibc answers

TEST_CASE("weightedpath prioritizer: expressions match as regexec does") {
  CHECK(matches("sda", "/dev/sda1")); // anywhere in the token
  CHECK_FALSE(matches("^sda", "/dev/sda"));
  CHECK(matches("a$", "sda"));
  CHECK_FALSE(matches("a$", "sdab"));
  CHECK(matches("^$", ""));
  CHECK(matches("", "anything"));
  CHECK(matches("^nvme[0-9]+n1$", "nvme12n1"));
  CHECK_FALSE(matches("^nvme[0-9]+n1$", "nvmen1"));
  CHECK(matches("^(sd|vd)[a-z]$", "vdc"));
  CHECK_FALSE(matches("^(sd|vd)[a-z]$", "hdc"));
  CHECK(matches("1:.:.:.", "1:0:2:3"));
  CHECK(matches("^a{2,3}$", "aaa"));
  CHECK_FALSE(matches("^a{2,3}$", "aaaa"));
  CHECK_FALSE(matches("^a{2,3}$", "a"));
  CHECK(matches("^a{2}$", "aa"));
  CHECK(matches("^a{2,}$", "aaaaa"));
  CHECK(matches("^x{,2}y$", "xxy")); // GNU: {,n}
  CHECK(matches("^x{0}y$", "y"));
  CHECK(matches("a**", "aa"));
  CHECK(matches("a+?", "a"));
  CHECK(matches("^(ab)*c$", "ababc"));
  CHECK_FALSE(matches("^(ab)*c$", "abac"));
  CHECK(matches("^()*$", ""));
  CHECK(matches("a|", "zzz")); // an empty branch matches the empty string
  CHECK(matches("[]a]", "]"));
  CHECK(matches("[a-]", "-"));
  CHECK(matches("^[^0-9]+$", "sda"));
  CHECK_FALSE(matches("^[^0-9]+$", "sda1"));
  CHECK(matches("[[:digit:]]", "sd9"));
  CHECK_FALSE(matches("^[[:alpha:]]+$", "sd9"));
  CHECK(matches("[[.a.]]", "a"));
  CHECK(matches("[[=a=]]", "a"));
  CHECK(matches("a)", "a)")); // glibc takes a lone ) literally
  CHECK(matches("\\.", "8.16"));
  CHECK_FALSE(matches("\\.", "8:16"));
  CHECK(matches("[.]", "."));
  CHECK(matches("\\d", "d")); // not a digit class in POSIX: an escaped d
  CHECK(matches("^\\w+$", "nvme_0"));
  CHECK_FALSE(matches("\\s", "nvme0"));
  CHECK(matches("SDA|sda", "sda"));
  CHECK_FALSE(matches("SDA", "sda")); // case matters
}

TEST_CASE("weightedpath prioritizer: expressions regcomp refuses are refused alike") {
  CHECK(regex_error("*a") == "Invalid preceding regular expression");
  CHECK(regex_error("^*") == "Invalid preceding regular expression");
  CHECK(regex_error("a|*b") == "Invalid preceding regular expression");
  CHECK(regex_error("(*a)") == "Invalid preceding regular expression");
  CHECK(regex_error("{1}") == "Invalid preceding regular expression");
  CHECK(regex_error("a{2") == "Unmatched \\{");
  CHECK(regex_error("a{") == "Unmatched \\{");
  CHECK(regex_error("a{x}") == "Invalid content of \\{\\}");
  CHECK(regex_error("a{3,2}") == "Invalid content of \\{\\}");
  CHECK(regex_error("\\") == "Trailing backslash");
  CHECK(regex_error("(") == "Unmatched ( or \\(");
  CHECK(regex_error("[a") == "Unmatched [, [^, [:, [., or [=");
  CHECK(regex_error("[[:foo:]]") == "Invalid character class name");
  CHECK(regex_error("[z-a]") == "Invalid range end");
  CHECK(regex_error("[[.ab.]]") == "Invalid collation character");
  CHECK(regex_error("\\bsda") == "Unsupported word-boundary escape");
  CHECK(regex_error("a{2000}") == "Regular expression too big"); // over max_states here
  CHECK(matches("^a{1000}$", std::string(1000, 'a')));
  CHECK(regex_error(std::string(9000, 'a')) == "Regular expression too big");
}

} // namespace
