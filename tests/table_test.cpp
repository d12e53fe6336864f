// The table grammar's accepted forms (kernel-target.md §1) and canonical output (§2.2), with the
// decisions of product.md §5. Errors are in table_errors_test.cpp, the real-world strings in
// table_vectors_test.cpp.

#include <mpath/table.hpp>

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

namespace {

/// format_table(parse_table(text)); fails the test if the text does not parse.
std::string canon(std::string_view text) {
  auto t = mpath::parse_table(text);
  INFO("input: \"" << text << "\"");
  REQUIRE_MESSAGE(t, (t ? std::string() : t.err().text));
  return mpath::format_table(*t);
}

mpath::table parse(std::string_view text) {
  auto t = mpath::parse_table(text);
  INFO("input: \"" << text << "\"");
  REQUIRE_MESSAGE(t, (t ? std::string() : t.err().text));
  return std::move(*t);
}

/// What survives format_table: no start/length, no handler arguments, the reported group.
mpath::table printable(mpath::table t) {
  t.start.reset();
  t.length.reset();
  t.hw_handler_args.clear();
  t.initial_pg = t.reported_pg();
  return t;
}

/// format(parse(format(parse(x)))) == format(parse(x)), and the re-parsed table is the first
/// one minus what format_table deliberately drops.
void check_fixed_point(std::string_view text) {
  INFO("input: \"" << text << "\"");
  mpath::table first = parse(text);
  std::string once = mpath::format_table(first);
  mpath::table second = parse(once);
  std::string twice = mpath::format_table(second);
  CHECK(twice == once);
  CHECK(second == printable(first));
  CHECK(parse(twice) == second);
}

constexpr std::string_view one_group = "0 1 1 round-robin 0 1 1 8:16 1 ";

/// Features in front of a fixed tail, canonical output of just the feature part.
std::string features_of(std::string_view features) {
  std::string out = canon(std::string(features) + " " + std::string(one_group));
  REQUIRE(out.size() >= one_group.size());
  REQUIRE(out.substr(out.size() - one_group.size()) == one_group);
  return out.substr(0, out.size() - one_group.size());
}

/// Inputs the fixed-point test runs over besides the vectors.
const std::vector<std::string> accepted_forms = {
    "0 209715200 multipath 3 queue_if_no_path pg_init_retries 5 1 alua 2 1 service-time 0 2 2 8:16 1 1 8:32 1 4 "
    "round-robin 0 2 1 8:48 1 8:64 1",
    "1 QUEUE_IF_NO_PATH 0 1 1 round-robin 0 1 0 8:16",
    "2 Queue_Mode BIO 1 alua 1 1 round-robin 0 1 0 8:16",
    "2 queue_mode MQ 1 alua 1 1 round-robin 0 1 0 8:16",
    "2 queue_mode rq 0 1 1 round-robin 0 1 0 8:16",
    "4 pg_init_retries 5 pg_init_retries 7 0 1 1 round-robin 0 1 0 8:16",
    "4 queue_mode bio queue_mode rq 0 1 1 round-robin 0 1 0 8:16",
    "2 queue_if_no_path queue_if_no_path 0 1 1 round-robin 0 1 0 8:16",
    "2 queue_mode bio 3 alua a b 1 1 queue-length 0 1 0 8:16",
    "0 0 0 0",
    "1 queue_if_no_path 1 alua 0 0",
    "0 0 1 2 round-robin 0 1 0 8:16",
    "0 0 2 1024 round-robin 0 1 0 8:16 round-robin 0 1 0 8:32",
    "2 pg_init_delay_msecs 2000 0 1 1 round-robin 0 1 0 8:16",
    "2 pg_init_delay_msecs 0 0 1 1 round-robin 0 1 0 8:16",
    "8 queue_mode bio pg_init_delay_msecs 100 retain_attached_hw_handler pg_init_retries 3 queue_if_no_path 0 1 1 "
    "round-robin 0 1 0 8:16",
    "0 3 rdac x y 1 1 round-robin 0 1 0 8:16",
    "0 0 1 1 round-robin 0 2 1 8:16 128 8:32 128",
    "0 0 1 1 queue-length 3 a b c 2 1 8:16 128 8:32 0",
    "0 0 1 1 service-time 0 2 1 8:16 1 8:32 3",
    "0 0 1 1 service-time 2 x y 3 0 /dev/sdb nvme0c1n1 iscsi://10.0.0.1/iqn.2001-04.com.example:disk/1",
    "0 0 3 2 round-robin 0 1 0 a queue-length 0 1 0 b service-time 0 1 2 c 1 0",
    "\t0  0\n1 1 round-robin 0 1 0 8:16 \n",
    "0 10 multipath 0 0 1 1 round-robin 0 1 0 8:16",
};

} // namespace

TEST_CASE("table: the worked example of kernel-target.md 2.5 round-trips") {
  auto t =
      mpath::parse_table("0 209715200 multipath 3 queue_if_no_path pg_init_retries 5 1 alua 2 1 service-time 0 2 2 "
                         "8:16 1 1 8:32 1 4 round-robin 0 2 1 8:48 1 8:64 1");
  REQUIRE(t);
  CHECK(mpath::format_table(*t) ==
        "3 queue_if_no_path pg_init_retries 5 1 alua 2 1 service-time 0 2 2 8:16 1 1 8:32 1 4 "
        "round-robin 0 2 1 8:48 1 8:64 1 ");
  CHECK(mpath::format_table_line(*t) ==
        "0 209715200 multipath 3 queue_if_no_path pg_init_retries 5 1 alua 2 1 service-time 0 2 2 8:16 1 1 8:32 1 4 "
        "round-robin 0 2 1 8:48 1 8:64 1 ");
}

TEST_CASE("table: the parsed structure") {
  mpath::table t = parse("0 209715200 multipath 3 queue_if_no_path pg_init_retries 5 3 alua x y 2 2 service-time 0 "
                         "2 2 8:16 1 1 8:32 1 4 round-robin 0 2 1 8:48 1 /dev/sdb 2");
  CHECK(t.start == 0);
  CHECK(t.length == 209715200);
  CHECK(t.features.queue_if_no_path);
  CHECK_FALSE(t.features.retain_attached_hw_handler);
  CHECK(t.features.pg_init_retries == 5);
  CHECK_FALSE(t.features.pg_init_delay_msecs.has_value());
  CHECK(t.features.mode == mpath::queue_mode::request);
  CHECK(t.hw_handler == "alua");
  CHECK(t.hw_handler_args == std::vector<std::string>{"x", "y"});
  CHECK(t.initial_pg == 2);
  CHECK(t.reported_pg() == 2);
  REQUIRE(t.groups.size() == 2);
  CHECK(t.groups[0].selector == "service-time");
  CHECK(t.groups[0].selector_args.empty());
  REQUIRE(t.groups[0].paths.size() == 2);
  CHECK(t.groups[0].paths[0] == mpath::path_spec{"8:16", {"1", "1"}});
  CHECK(t.groups[0].paths[1] == mpath::path_spec{"8:32", {"1", "4"}});
  CHECK(t.groups[1].selector == "round-robin");
  REQUIRE(t.groups[1].paths.size() == 2);
  CHECK(t.groups[1].paths[0] == mpath::path_spec{"8:48", {"1"}});
  CHECK(t.groups[1].paths[1] == mpath::path_spec{"/dev/sdb", {"2"}});
  CHECK(mpath::format_table(t) == "3 queue_if_no_path pg_init_retries 5 1 alua 2 2 service-time 0 2 2 8:16 1 1 8:32 "
                                  "1 4 round-robin 0 2 1 8:48 1 /dev/sdb 2 ");
  CHECK(mpath::format_table_line(t, 99) == "0 209715200 multipath " + mpath::format_table(t));

  mpath::table bare = parse("0 0 1 1 round-robin 0 1 0 8:16");
  CHECK_FALSE(bare.start.has_value());
  CHECK_FALSE(bare.length.has_value());
  CHECK(mpath::format_table_line(bare) == "0 0 multipath 0 0 1 1 round-robin 0 1 1 8:16 1 ");
  CHECK(mpath::format_table_line(bare, 2048) == "0 2048 multipath 0 0 1 1 round-robin 0 1 1 8:16 1 ");
}

TEST_CASE("table: feature words are case-insensitive") {
  CHECK(features_of("1 QUEUE_IF_NO_PATH") == "1 queue_if_no_path ");
  CHECK(features_of("1 Retain_Attached_HW_Handler") == "1 retain_attached_hw_handler ");
  CHECK(features_of("2 Queue_Mode BIO") == "2 queue_mode bio ");
  CHECK(features_of("2 queue_mode Bio") == "2 queue_mode bio ");
  CHECK(features_of("2 PG_INIT_RETRIES 50") == "2 pg_init_retries 50 ");
  CHECK(features_of("2 pg_init_DELAY_msecs 60000") == "2 pg_init_delay_msecs 60000 ");

  mpath::table mq = parse("2 queue_mode MQ 0 1 1 round-robin 0 1 0 8:16");
  CHECK(mq.features.mode == mpath::queue_mode::request);
  mpath::table bio = parse("2 Queue_Mode BIO 0 1 1 round-robin 0 1 0 8:16");
  CHECK(bio.features.mode == mpath::queue_mode::bio);
}

TEST_CASE("table: request-based queue_mode is the default and is not printed back") {
  CHECK(features_of("2 queue_mode rq") == "0 ");
  CHECK(features_of("2 queue_mode mq") == "0 ");
  CHECK(features_of("2 queue_mode MQ") == "0 ");
  CHECK(features_of("3 queue_mode rq queue_if_no_path") == "1 queue_if_no_path ");
}

TEST_CASE("table: a repeated feature: the last one wins") {
  CHECK(features_of("4 pg_init_retries 5 pg_init_retries 7") == "2 pg_init_retries 7 ");
  CHECK(features_of("4 pg_init_delay_msecs 5 pg_init_delay_msecs 0") == "2 pg_init_delay_msecs 0 ");
  CHECK(features_of("4 queue_mode bio queue_mode rq") == "0 ");
  CHECK(features_of("4 queue_mode mq queue_mode bio") == "2 queue_mode bio ");
  CHECK(features_of("2 queue_if_no_path queue_if_no_path") == "1 queue_if_no_path ");
  CHECK(features_of("2 retain_attached_hw_handler RETAIN_ATTACHED_HW_HANDLER") == "1 retain_attached_hw_handler ");
}

TEST_CASE("table: features print in the kernel's order with a recomputed count") {
  CHECK(features_of("0") == "0 ");
  CHECK(features_of("8 queue_mode bio pg_init_delay_msecs 100 retain_attached_hw_handler pg_init_retries 3 "
                    "queue_if_no_path") ==
        "8 queue_if_no_path pg_init_retries 3 pg_init_delay_msecs 100 retain_attached_hw_handler queue_mode bio ");
  CHECK(features_of("3 retain_attached_hw_handler pg_init_retries 1") ==
        "3 pg_init_retries 1 retain_attached_hw_handler ");
  CHECK(features_of("5 queue_mode bio pg_init_delay_msecs 7 queue_if_no_path") ==
        "5 queue_if_no_path pg_init_delay_msecs 7 queue_mode bio ");
  // retain_attached_hw_handler is printed only when given, never forced by bio mode (product.md §5)
  CHECK(features_of("2 queue_mode bio") == "2 queue_mode bio ");
}

TEST_CASE("table: pg_init_delay_msecs is printed whenever given, even the default 2000 and 0") {
  CHECK(features_of("2 pg_init_delay_msecs 2000") == "2 pg_init_delay_msecs 2000 ");
  CHECK(features_of("2 pg_init_delay_msecs 0") == "2 pg_init_delay_msecs 0 ");
  CHECK(features_of("2 pg_init_delay_msecs 060000") == "2 pg_init_delay_msecs 60000 ");
  mpath::table t = parse("2 pg_init_delay_msecs 2000 0 1 1 round-robin 0 1 0 8:16");
  CHECK(t.features.pg_init_delay_msecs == 2000u);
  mpath::table none = parse("0 0 1 1 round-robin 0 1 0 8:16");
  CHECK_FALSE(none.features.pg_init_delay_msecs.has_value());
}

TEST_CASE("table: pg_init_retries bounds") {
  CHECK(features_of("2 pg_init_retries 1") == "2 pg_init_retries 1 ");
  CHECK(features_of("2 pg_init_retries 50") == "2 pg_init_retries 50 ");
  CHECK(features_of("2 pg_init_retries 0005") == "2 pg_init_retries 5 ");
}

TEST_CASE("table: hardware handler arguments are kept but never printed") {
  mpath::table t = parse("0 3 alua x y 1 1 round-robin 0 1 0 8:16");
  CHECK(t.hw_handler == "alua");
  CHECK(t.hw_handler_args == std::vector<std::string>{"x", "y"});
  CHECK(mpath::format_table(t) == "0 1 alua 1 1 round-robin 0 1 1 8:16 1 ");
  CHECK(canon("0 1 rdac 1 1 round-robin 0 1 0 8:16") == "0 1 rdac 1 1 round-robin 0 1 1 8:16 1 ");
  CHECK(canon("0 0 1 1 round-robin 0 1 0 8:16") == "0 0 1 1 round-robin 0 1 1 8:16 1 ");
}

TEST_CASE("table: bio mode consumes and drops the hardware handler") {
  mpath::table t = parse("2 queue_mode bio 3 alua x y 1 1 queue-length 0 1 0 8:16");
  CHECK(t.features.mode == mpath::queue_mode::bio);
  CHECK(t.hw_handler.empty());
  CHECK(t.hw_handler_args.empty());
  CHECK(mpath::format_table(t) == "2 queue_mode bio 0 1 1 queue-length 0 1 1 8:16 1 ");
  CHECK(canon("3 queue_if_no_path QUEUE_MODE bio 1 alua 1 1 round-robin 0 1 0 8:16") ==
        "3 queue_if_no_path queue_mode bio 0 1 1 round-robin 0 1 1 8:16 1 ");
  // The last queue_mode decides, so a later rq keeps the handler.
  CHECK(canon("4 queue_mode bio queue_mode rq 1 alua 1 1 round-robin 0 1 0 8:16") ==
        "0 1 alua 1 1 round-robin 0 1 1 8:16 1 ");
}

TEST_CASE("table: zero priority groups") {
  mpath::table t = parse("0 0 0 0");
  CHECK(t.groups.empty());
  CHECK(t.initial_pg == 0);
  CHECK(t.reported_pg() == 0);
  CHECK(mpath::format_table(t) == "0 0 0 0 ");
  CHECK(canon("1 retain_attached_hw_handler 1 alua 0 0") == "1 retain_attached_hw_handler 1 alua 0 0 ");
}

TEST_CASE("table: an initial group above the group count is accepted and reported as 1") {
  mpath::table t = parse("0 0 1 2 round-robin 0 1 0 8:16");
  CHECK(t.initial_pg == 2); // kept for the engine: no group is preferred
  CHECK(t.reported_pg() == 1);
  CHECK(mpath::format_table(t) == "0 0 1 1 round-robin 0 1 1 8:16 1 ");
  CHECK(canon("0 0 2 1024 round-robin 0 1 0 8:16 round-robin 0 1 0 8:32") ==
        "0 0 2 1 round-robin 0 1 1 8:16 1 round-robin 0 1 1 8:32 1 ");
  CHECK(canon("0 0 3 3 round-robin 0 1 0 a round-robin 0 1 0 b round-robin 0 1 0 c") ==
        "0 0 3 3 round-robin 0 1 1 a 1 round-robin 0 1 1 b 1 round-robin 0 1 1 c 1 ");
}

TEST_CASE("table: repeat_count is stored and printed as given") {
  CHECK(canon("0 0 1 1 round-robin 0 2 1 8:16 128 8:32 0") == "0 0 1 1 round-robin 0 2 1 8:16 128 8:32 0 ");
  CHECK(canon("0 0 1 1 queue-length 0 1 1 8:16 128") == "0 0 1 1 queue-length 0 1 1 8:16 128 ");
  CHECK(canon("0 0 1 1 service-time 0 1 2 8:16 128 4") == "0 0 1 1 service-time 0 1 2 8:16 128 4 ");
  CHECK(canon("0 0 1 1 round-robin 0 1 1 8:16 4294967295") == "0 0 1 1 round-robin 0 1 1 8:16 4294967295 ");
  mpath::table t = parse("0 0 1 1 round-robin 0 1 1 8:16 128");
  CHECK(t.groups[0].paths[0].args == std::vector<std::string>{"128"});
}

TEST_CASE("table: per-path arguments are normalised to the selector's table_args") {
  // round-robin / queue-length: 0 given -> 1 printed, repeat_count 1
  CHECK(canon("0 0 1 1 round-robin 0 2 0 8:16 8:32") == "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ");
  CHECK(canon("0 0 1 1 queue-length 0 2 0 8:16 8:32") == "0 0 1 1 queue-length 0 2 1 8:16 1 8:32 1 ");
  // service-time: 0 or 1 given -> 2 printed, relative_throughput 1
  CHECK(canon("0 0 1 1 service-time 0 2 0 8:16 8:32") == "0 0 1 1 service-time 0 2 2 8:16 1 1 8:32 1 1 ");
  CHECK(canon("0 0 1 1 service-time 0 2 1 8:16 1 8:32 3") == "0 0 1 1 service-time 0 2 2 8:16 1 1 8:32 3 1 ");
  CHECK(canon("0 0 1 1 service-time 0 1 2 8:16 0 0") == "0 0 1 1 service-time 0 1 2 8:16 0 0 ");
  mpath::table t = parse("0 0 1 1 service-time 0 1 1 8:16 1");
  CHECK(t.groups[0].paths[0].args == std::vector<std::string>{"1", "1"});
}

TEST_CASE("table: selector arguments are validated and printed as the selector prints them") {
  mpath::table t = parse("0 0 1 1 queue-length 3 a b c 1 0 8:16");
  CHECK(t.groups[0].selector_args.empty());
  CHECK(mpath::format_table(t) == "0 0 1 1 queue-length 0 1 1 8:16 1 ");
  CHECK(canon("0 0 1 1 round-robin 1 x 1 0 8:16") == "0 0 1 1 round-robin 0 1 1 8:16 1 ");
  CHECK(canon("0 0 1 1 service-time 2 1 2 1 0 8:16") == "0 0 1 1 service-time 0 1 2 8:16 1 1 ");
}

TEST_CASE("table: paths are opaque tokens printed as given") {
  CHECK(canon("0 0 1 1 round-robin 0 4 0 /dev/sdb nvme0c1n1 iscsi://10.0.0.1:3260/iqn.x,1 8:16") ==
        "0 0 1 1 round-robin 0 4 1 /dev/sdb 1 nvme0c1n1 1 iscsi://10.0.0.1:3260/iqn.x,1 1 8:16 1 ");
  // The same device twice is two paths.
  mpath::table t = parse("0 0 1 1 round-robin 0 2 0 8:16 8:16");
  REQUIRE(t.groups[0].paths.size() == 2);
  CHECK(t.groups[0].paths[0].device == "8:16");
  CHECK(t.groups[0].paths[1].device == "8:16");
  // A word that only looks like a number or a keyword is still a path.
  CHECK(canon("0 0 1 1 round-robin 0 2 0 0 queue_if_no_path") == "0 0 1 1 round-robin 0 2 1 0 1 queue_if_no_path 1 ");
}

TEST_CASE("table: a backslash makes the next character part of the word, as DM core splits") {
  CHECK(canon("0 0 1 1 round-robin 0 1 0 8\\:16") == "0 0 1 1 round-robin 0 1 1 8:16 1 ");
  CHECK(canon("0 0 1 1 round-robin 0 1 1 8:16 \\1\\2\\8") == "0 0 1 1 round-robin 0 1 1 8:16 128 ");
  CHECK(canon("1 queue_if_no_pat\\h 0 0 0") == "1 queue_if_no_path 0 0 0 ");
}

TEST_CASE("table: whitespace variants parse to the same table") {
  const std::string plain = "1 queue_if_no_path 1 alua 2 1 round-robin 0 1 0 8:16 service-time 0 1 2 8:32 1 4";
  const mpath::table reference = parse(plain);
  const std::vector<std::string> variants = {
      "1\tqueue_if_no_path\t1\talua\t2\t1\tround-robin\t0\t1\t0\t8:16\tservice-time\t0\t1\t2\t8:32\t1\t4",
      "1  queue_if_no_path   1 alua  2 1     round-robin 0 1 0 8:16 service-time 0 1 2 8:32 1 4",
      "   1 queue_if_no_path 1 alua 2 1 round-robin 0 1 0 8:16 service-time 0 1 2 8:32 1 4",
      "1 queue_if_no_path 1 alua 2 1 round-robin 0 1 0 8:16 service-time 0 1 2 8:32 1 4   ",
      "1 queue_if_no_path 1 alua 2 1 round-robin 0 1 0 8:16 service-time 0 1 2 8:32 1 4\n",
      "1 queue_if_no_path\n1 alua\n2 1\nround-robin 0 1 0\n  8:16\nservice-time 0 1 2\n  8:32 1 4\n",
      "\r\n1 queue_if_no_path 1 alua 2 1\r\nround-robin 0 1 0 8:16\r\nservice-time 0 1 2 8:32 1 4\r\n",
      " \t\n1\v\fqueue_if_no_path \t 1 alua 2 1 round-robin 0 1 0 8:16 service-time 0 1 2 8:32 1 4 \t\n ",
  };
  for (const auto& v : variants) {
    INFO("variant: \"" << v << "\"");
    CHECK(parse(v) == reference);
    CHECK(canon(v) == "1 queue_if_no_path 1 alua 2 1 round-robin 0 1 1 8:16 1 service-time 0 1 2 8:32 1 4 ");
  }
  // The same for a full dmsetup line.
  mpath::table full = parse("\t0\t2048  multipath\n" + plain + "\n");
  CHECK(full.start == 0);
  CHECK(full.length == 2048);
  full.start.reset();
  full.length.reset();
  CHECK(full == reference);
}

TEST_CASE("table: 1024 priority groups") {
  std::string text = "0 0 1024 1024";
  std::string expected = "0 0 1024 1024 ";
  for (int i = 0; i < 1024; ++i) {
    const char* selector = i % 3 == 0 ? "round-robin" : (i % 3 == 1 ? "queue-length" : "service-time");
    std::string dev = "dev" + std::to_string(i);
    text += std::string(" ") + selector + " 0 1 0 " + dev;
    expected += std::string(selector) + " 0 1 " + (i % 3 == 2 ? "2 " + dev + " 1 1 " : "1 " + dev + " 1 ");
  }
  mpath::table t = parse(text);
  REQUIRE(t.groups.size() == 1024);
  CHECK(t.initial_pg == 1024);
  CHECK(t.reported_pg() == 1024);
  CHECK(t.groups[1023].selector == "round-robin"); // 1023 % 3 == 0
  CHECK(t.groups[1022].selector == "service-time");
  CHECK(t.groups[1022].paths[0].args == std::vector<std::string>{"1", "1"});
  CHECK(t.groups[1023].paths[0].device == "dev1023");
  CHECK(mpath::format_table(t) == expected);
  check_fixed_point(text);
}

TEST_CASE("table: 1025 priority groups are rejected") {
  std::string text = "0 0 1025 1";
  for (int i = 0; i < 1025; ++i)
    text += " round-robin 0 1 0 dev" + std::to_string(i);
  auto t = mpath::parse_table(text);
  REQUIRE_FALSE(t);
  CHECK(t.err().code == 22);
  CHECK(t.err().text == "invalid number of priority groups");
}

TEST_CASE("table: 1024 paths in one group, 1025 rejected") {
  std::string paths, expected;
  for (int i = 0; i < 1024; ++i) {
    paths += " 8:" + std::to_string(i) + " " + std::to_string(i % 5) + " " + std::to_string(i % 101);
    expected += "8:" + std::to_string(i) + " " + std::to_string(i % 5) + " " + std::to_string(i % 101) + " ";
  }
  const std::string text = "1 queue_if_no_path 0 1 1 service-time 0 1024 2" + paths;
  mpath::table t = parse(text);
  REQUIRE(t.groups.size() == 1);
  REQUIRE(t.groups[0].paths.size() == 1024);
  CHECK(t.groups[0].paths[1023] == mpath::path_spec{"8:1023", {"3", "13"}});
  CHECK(mpath::format_table(t) == "1 queue_if_no_path 0 1 1 service-time 0 1024 2 " + expected);
  check_fixed_point(text);

  auto too_many = mpath::parse_table("0 0 1 1 service-time 0 1025 2" + paths + " 9:0 1 1");
  REQUIRE_FALSE(too_many);
  CHECK(too_many.err().code == 22);
  CHECK(too_many.err().text == "invalid number of paths");
}

TEST_CASE("table: format(parse(x)) is a fixed point for the accepted forms") {
  for (const auto& text : accepted_forms)
    check_fixed_point(text);
}

TEST_CASE("table: format never changes a canonical string") {
  for (const auto& text : accepted_forms) {
    std::string once = canon(text);
    CHECK(canon(once) == once);
    CHECK(once.back() == ' '); // every word is followed by exactly one blank
    CHECK(once.find("  ") == std::string::npos);
  }
}
