// The real table strings of tests/data/dm-tables.txt (a copy of ../shared/vectors/dm-tables.txt, so
// a clone stands alone), read at run time. Every TABLE vector
// must parse, and its facts are asserted from the table below, keyed by the exact vector string: a
// vector without facts, or facts without a vector, fail the test.

#include <mpath/table.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#ifndef MPATH_VECTORS_FILE
#error "MPATH_VECTORS_FILE must name dm-tables.txt"
#endif

namespace {

struct vector_line {
  std::string kind; ///< TABLE or STATUS
  std::string text; ///< between "<KIND> " and the first " # "
  bool external;    ///< below the EXTERNAL marker
  int line_number;
};

struct vector_file {
  std::vector<vector_line> lines;
  std::string counts_line; ///< "# counts: ..."
};

vector_file read_vectors() {
  std::ifstream in(MPATH_VECTORS_FILE);
  REQUIRE_MESSAGE(in.good(), "cannot open " MPATH_VECTORS_FILE);
  vector_file file;
  bool external = false;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.starts_with("# ") && line.find("EXTERNAL") != std::string::npos && line.find("=====") != std::string::npos)
      external = true;
    if (line.starts_with("# counts:"))
      file.counts_line = line;
    for (std::string_view kind : {"TABLE", "STATUS"}) {
      std::string prefix = std::string(kind) + " ";
      if (!line.starts_with(prefix))
        continue;
      std::size_t end = line.find(" # ", prefix.size());
      INFO("line " << number);
      REQUIRE(end != std::string::npos);
      file.lines.push_back({std::string(kind), line.substr(prefix.size(), end - prefix.size()), external, number});
    }
  }
  return file;
}

struct path_fact {
  std::string_view device;
  std::vector<std::string> args; ///< per-path arguments as printed back (repeat_count [relative_throughput])
};

struct group_fact {
  std::string_view selector;
  std::vector<path_fact> paths;
};

struct table_fact {
  std::string_view vector; ///< the exact string of the TABLE line
  std::optional<std::uint64_t> start, length;
  bool queue_if_no_path;
  bool retain_attached_hw_handler;
  std::uint32_t pg_init_retries;
  mpath::queue_mode mode;
  std::string_view hw_handler;
  std::uint32_t initial_pg;
  std::vector<group_fact> groups;
  std::string_view canonical; ///< format_table of the parsed table
};

constexpr auto rq = mpath::queue_mode::request;
constexpr auto bio = mpath::queue_mode::bio;

const std::vector<table_fact>& facts() {
  static const std::vector<table_fact> all = {
      // multipath-tools tests/mapinfo.c: the kernel's own read-back form, so it is already canonical.
      {"2 pg_init_retries 50 1 alua 2 1 service-time 0 3 2 65:32 1 1 67:64 1 1 69:96 1 1 service-time 0 3 2 8:16 1 1 "
       "66:48 1 1 68:80 1 1 ",
       std::nullopt,
       std::nullopt,
       false,
       false,
       50,
       rq,
       "alua",
       1,
       {{"service-time", {{"65:32", {"1", "1"}}, {"67:64", {"1", "1"}}, {"69:96", {"1", "1"}}}},
        {"service-time", {{"8:16", {"1", "1"}}, {"66:48", {"1", "1"}}, {"68:80", {"1", "1"}}}}},
       "2 pg_init_retries 50 1 alua 2 1 service-time 0 3 2 65:32 1 1 67:64 1 1 69:96 1 1 service-time 0 3 2 8:16 1 1 "
       "66:48 1 1 68:80 1 1 "},
      // multipath-tools commit 11dc7577de28
      {"0 125829120 multipath 1 queue_if_no_path 1 alua 2 1 queue-length 0 2 1 8:144 1 8:240 1 queue-length 0 2 1 "
       "8:48 1 65:80 1",
       0,
       125829120,
       true,
       false,
       0,
       rq,
       "alua",
       1,
       {{"queue-length", {{"8:144", {"1"}}, {"8:240", {"1"}}}}, {"queue-length", {{"8:48", {"1"}}, {"65:80", {"1"}}}}},
       "1 queue_if_no_path 1 alua 2 1 queue-length 0 2 1 8:144 1 8:240 1 queue-length 0 2 1 8:48 1 65:80 1 "},
      // multipath-tools commit d51da42b33c2: one per-path arg for service-time -> two printed
      {"0 4194304 multipath 1 retain_attached_hw_handler 0 1 1 service-time 0 1 1 8:16 1",
       0,
       4194304,
       false,
       true,
       0,
       rq,
       "",
       1,
       {{"service-time", {{"8:16", {"1", "1"}}}}},
       "1 retain_attached_hw_handler 0 1 1 service-time 0 1 2 8:16 1 1 "},
      // multipath-tools commit 5e3131e7d6aa: failover grouping, rr_min_io 100
      {"0 71122560 multipath 0 0 4 1 round-robin 0 1 1 8:32 100 round-robin 0 1 1 8:64 100 round-robin 0 1 1 8:96 100 "
       "round-robin 0 1 1 8:176 100",
       0,
       71122560,
       false,
       false,
       0,
       rq,
       "",
       1,
       {{"round-robin", {{"8:32", {"100"}}}},
        {"round-robin", {{"8:64", {"100"}}}},
        {"round-robin", {{"8:96", {"100"}}}},
        {"round-robin", {{"8:176", {"100"}}}}},
       "0 0 4 1 round-robin 0 1 1 8:32 100 round-robin 0 1 1 8:64 100 round-robin 0 1 1 8:96 100 round-robin 0 1 1 "
       "8:176 100 "},
      // dm-queue-length.rst: repeat_count 128 is kept (a current kernel would print 1)
      {"0 10 multipath 0 0 1 1 queue-length 0 2 1 8:0 128 8:16 128",
       0,
       10,
       false,
       false,
       0,
       rq,
       "",
       1,
       {{"queue-length", {{"8:0", {"128"}}, {"8:16", {"128"}}}}},
       "0 0 1 1 queue-length 0 2 1 8:0 128 8:16 128 "},
      // dm-service-time.rst example 1
      {"0 10 multipath 0 0 1 1 service-time 0 2 2 8:0 128 1 8:16 128 4",
       0,
       10,
       false,
       false,
       0,
       rq,
       "",
       1,
       {{"service-time", {{"8:0", {"128", "1"}}, {"8:16", {"128", "4"}}}}},
       "0 0 1 1 service-time 0 2 2 8:0 128 1 8:16 128 4 "},
      // dm-service-time.rst example 2
      {"0 10 multipath 0 0 1 1 service-time 0 2 2 8:0 128 2 8:16 128 8",
       0,
       10,
       false,
       false,
       0,
       rq,
       "",
       1,
       {{"service-time", {{"8:0", {"128", "2"}}, {"8:16", {"128", "8"}}}}},
       "0 0 1 1 service-time 0 2 2 8:0 128 2 8:16 128 8 "},
      // dm-devel 2019-11-22: bio mode; retain printed because it was given
      {"0 1562378240 multipath 4 queue_if_no_path retain_attached_hw_handler queue_mode bio 0 1 1 queue-length 0 4 1 "
       "253:11 1 253:8 1 253:9 1 253:10 1",
       0,
       1562378240,
       true,
       true,
       0,
       bio,
       "",
       1,
       {{"queue-length", {{"253:11", {"1"}}, {"253:8", {"1"}}, {"253:9", {"1"}}, {"253:10", {"1"}}}}},
       "4 queue_if_no_path retain_attached_hw_handler queue_mode bio 0 1 1 queue-length 0 4 1 253:11 1 253:8 1 253:9 1 "
       "253:10 1 "},
      // packet-block-storage #25
      {"0 20971520 multipath 1 retain_attached_hw_handler 1 alua 1 1 round-robin 0 1 1 8:32 50",
       0,
       20971520,
       false,
       true,
       0,
       rq,
       "alua",
       1,
       {{"round-robin", {{"8:32", {"50"}}}}},
       "1 retain_attached_hw_handler 1 alua 1 1 round-robin 0 1 1 8:32 50 "},
      // packet-block-storage #25: zero priority groups, initial 0
      {"0 20971520 multipath 1 retain_attached_hw_handler 1 alua 0 0",
       0,
       20971520,
       false,
       true,
       0,
       rq,
       "alua",
       0,
       {},
       "1 retain_attached_hw_handler 1 alua 0 0 "},
      // systemd #22920: multibus
      {"0 467664896 multipath 0 0 1 1 service-time 0 2 1 8:0 1 8:16 1",
       0,
       467664896,
       false,
       false,
       0,
       rq,
       "",
       1,
       {{"service-time", {{"8:0", {"1", "1"}}, {"8:16", {"1", "1"}}}}},
       "0 0 1 1 service-time 0 2 2 8:0 1 1 8:16 1 1 "},
      // xenlens.com
      {"0 209715200 multipath 1 queue_if_no_path 1 alua 1 1 round-robin 0 1 1 8:0 100",
       0,
       209715200,
       true,
       false,
       0,
       rq,
       "alua",
       1,
       {{"round-robin", {{"8:0", {"100"}}}}},
       "1 queue_if_no_path 1 alua 1 1 round-robin 0 1 1 8:0 100 "},
  };
  return all;
}

const table_fact* find_fact(std::string_view vector) {
  for (const auto& f : facts())
    if (f.vector == vector)
      return &f;
  return nullptr;
}

void check_facts(const mpath::table& t, const table_fact& f) {
  CHECK(t.start == f.start);
  CHECK(t.length == f.length);
  CHECK(t.features.queue_if_no_path == f.queue_if_no_path);
  CHECK(t.features.retain_attached_hw_handler == f.retain_attached_hw_handler);
  CHECK(t.features.pg_init_retries == f.pg_init_retries);
  CHECK_FALSE(t.features.pg_init_delay_msecs.has_value()); // no vector sets it
  CHECK(t.features.mode == f.mode);
  CHECK(t.hw_handler == f.hw_handler);
  CHECK(t.hw_handler_args.empty()); // no vector has handler parameters
  CHECK(t.initial_pg == f.initial_pg);
  REQUIRE(t.groups.size() == f.groups.size());
  for (std::size_t g = 0; g < f.groups.size(); ++g) {
    INFO("group " << g + 1);
    CHECK(t.groups[g].selector == f.groups[g].selector);
    CHECK(t.groups[g].selector_args.empty());
    REQUIRE(t.groups[g].paths.size() == f.groups[g].paths.size());
    for (std::size_t p = 0; p < f.groups[g].paths.size(); ++p) {
      INFO("path " << p + 1);
      CHECK(t.groups[g].paths[p].device == f.groups[g].paths[p].device);
      CHECK(t.groups[g].paths[p].args == f.groups[g].paths[p].args);
    }
  }
  CHECK(mpath::format_table(t) == f.canonical);
  if (f.start)
    CHECK(mpath::format_table_line(t) ==
          std::to_string(*f.start) + " " + std::to_string(*f.length) + " multipath " + std::string(f.canonical));
}

} // namespace

TEST_CASE("vectors: every TABLE vector parses to its recorded facts") {
  const vector_file file = read_vectors();
  std::vector<const table_fact*> used;
  int tables = 0;
  for (const auto& v : file.lines) {
    if (v.kind != "TABLE")
      continue;
    ++tables;
    INFO("line " << v.line_number << ": \"" << v.text << "\"");
    const table_fact* f = find_fact(v.text);
    REQUIRE_MESSAGE(f != nullptr, "no facts recorded for this vector");
    used.push_back(f);
    auto t = mpath::parse_table(v.text);
    REQUIRE_MESSAGE(t, (t ? std::string() : t.err().text));
    check_facts(*t, *f);
  }
  CHECK(tables == 12);
  CHECK(used.size() == facts().size());
  for (const auto& f : facts()) {
    INFO("facts for \"" << f.vector << "\"");
    CHECK(std::count(used.begin(), used.end(), &f) == 1); // every fact matched exactly one vector
  }
}

TEST_CASE("vectors: the canonical form of every TABLE vector is a fixed point") {
  for (const auto& v : read_vectors().lines) {
    if (v.kind != "TABLE")
      continue;
    INFO("line " << v.line_number << ": \"" << v.text << "\"");
    auto first = mpath::parse_table(v.text);
    REQUIRE(first);
    std::string once = mpath::format_table(*first);
    auto second = mpath::parse_table(once);
    REQUIRE(second);
    CHECK(mpath::format_table(*second) == once);
    // format_table drops only the <start> <length> prefix here (no vector has handler args or an
    // initial group above the count).
    mpath::table expected = *first;
    expected.start.reset();
    expected.length.reset();
    CHECK(*second == expected);
    // The full line round-trips too, prefix included.
    if (first->start) {
      auto line = mpath::parse_table(mpath::format_table_line(*first));
      REQUIRE(line);
      CHECK(*line == *first);
    }
  }
}

TEST_CASE("vectors: the counts line matches the file") {
  const vector_file file = read_vectors();
  int table_mt = 0, status_mt = 0, table_ext = 0, status_ext = 0;
  for (const auto& v : file.lines) {
    CHECK_FALSE(v.text.empty());
    if (v.kind == "TABLE")
      ++(v.external ? table_ext : table_mt);
    else
      ++(v.external ? status_ext : status_mt);
  }
  std::ostringstream expected;
  expected << "# counts: multipath-tools TABLE=" << table_mt << " STATUS=" << status_mt
           << "; EXTERNAL TABLE=" << table_ext << " STATUS=" << status_ext << "; total=" << file.lines.size();
  CHECK(file.counts_line == expected.str());
  // What the file says today; a change to it should be looked at.
  CHECK(file.counts_line == "# counts: multipath-tools TABLE=4 STATUS=1; EXTERNAL TABLE=8 STATUS=11; total=24");
}

TEST_CASE("vectors: STATUS strings are status, not tables") {
  // The engine produces status; until then, check the shape every STATUS vector shares: after an
  // optional "<start> <len> multipath", "2 <queue_io> <pg_init_count> 0 <#pgs> <pg>".
  for (const auto& v : read_vectors().lines) {
    if (v.kind != "STATUS")
      continue;
    INFO("line " << v.line_number << ": \"" << v.text << "\"");
    std::vector<std::string> w = mpath::detail::split_words(v.text);
    std::size_t i = (w.size() > 3 && w[2] == "multipath") ? 3 : 0;
    REQUIRE(w.size() >= i + 6);
    CHECK(w[i] == "2");
    CHECK((w[i + 1] == "0" || w[i + 1] == "1"));
    CHECK(w[i + 3] == "0");
    // A STATUS string is not a valid table: its group states (A/E/D) are not selector names.
    CHECK_FALSE(mpath::parse_table(v.text));
  }
}

TEST_CASE("vectors: the repository's copy equals ../shared/vectors/dm-tables.txt when that exists") {
  std::ifstream shared(MPATH_SHARED_VECTORS_FILE);
  if (!shared.good()) {
    MESSAGE("no " MPATH_SHARED_VECTORS_FILE " beside the repository: nothing to compare");
    return;
  }
  std::ifstream copy(MPATH_VECTORS_FILE);
  REQUIRE(copy.good());
  std::stringstream a, b;
  a << shared.rdbuf();
  b << copy.rdbuf();
  CHECK_MESSAGE(a.str() == b.str(), "tests/data/dm-tables.txt is stale: copy ../shared/vectors/dm-tables.txt over it");
}
