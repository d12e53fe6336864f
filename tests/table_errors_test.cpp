// Every constructor error of kernel-target.md §1 (and the selectors' own, §5.1-5.3) with inputs that
// trigger it; exact text and errno. Numbers above 2^32-1 are rejected with the field's own text
// (product.md §5) where the kernel would wrap them.

#include <mpath/table.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <vector>

namespace {

/// Parses every input and expects the same error text with EINVAL for all of them.
void expect_error(std::string_view text, std::vector<std::string> inputs) {
  static_assert(EINVAL == 22);
  for (const auto& input : inputs) {
    INFO("input: \"" << input << "\"");
    auto t = mpath::parse_table(input);
    REQUIRE_FALSE(t);
    CHECK(t.err().code == 22);
    CHECK(t.err().text == text);
  }
}

/// A valid tail after the features: no handler, one round-robin group with one path.
constexpr std::string_view one_group = " 0 1 1 round-robin 0 1 0 8:16";

std::string features(std::string_view f) { return std::string(f) + std::string(one_group); }

/// `0 0 1 1 <selector> <#selector-args> ...` with the rest given.
std::string group(std::string_view rest) { return "0 0 1 1 " + std::string(rest); }

} // namespace

TEST_CASE("table errors: invalid number of feature args") {
  expect_error("invalid number of feature args",
               {
                   "",                                      // nothing at all
                   "   \t\n",                               // only blanks
                   features("9 a b c d e f g h i"),         // more than 8
                   "1",                                     // more than the words that remain
                   "2 queue_if_no_path",                    //
                   features("x"),                           // not a number
                   features("-1"),                          // no sign
                   features("+1 queue_if_no_path"),         //
                   features("1x queue_if_no_path"),         // trailing junk
                   features("0x1 queue_if_no_path"),        // decimal only
                   features("4294967296"),                  // 2^32 (the kernel reads 0)
                   features("4294967297 queue_if_no_path"), // 2^32+1 (the kernel reads 1)
                   features("99999999999999999999999"),     // beyond 64 bits
                   "0 10 multipath",                        // a full line with no parameters
               });
}

TEST_CASE("table errors: Unrecognised multipath feature request") {
  expect_error("Unrecognised multipath feature request",
               {
                   features("1 queue_if_no_paths"),
                   features("1 no_path_retry"),
                   features("2 queue_if_no_path bogus"), // stops at the first bad word
                   features("1 pg_init_retries"),        // needs one more word inside the group
                   features("1 pg_init_delay_msecs"),
                   features("1 queue_mode"),
                   features("2 queue_if_no_path pg_init_retries"),
                   "1 pg_init_retries 5 0 1 1 round-robin 0 1 0 8:16", // the value lies outside the group
                   features("1 queue-if-no-path"),
                   features("1 0"),
               });
}

TEST_CASE("table errors: pg_init_retries must be between 1 and 50") {
  expect_error("pg_init_retries must be between 1 and 50",
               {
                   features("2 pg_init_retries 0"),
                   features("2 pg_init_retries 51"),
                   features("2 pg_init_retries x"),
                   features("2 pg_init_retries -1"),
                   features("2 pg_init_retries +5"),
                   features("2 pg_init_retries 5x"),
                   features("2 pg_init_retries 4294967297"), // the kernel would read 1
                   features("2 pg_init_retries 4294967296"),
                   features("3 queue_if_no_path PG_INIT_RETRIES 100"),
               });
}

TEST_CASE("table errors: pg_init_delay_msecs must be between 0 and 60000") {
  expect_error("pg_init_delay_msecs must be between 0 and 60000",
               {
                   features("2 pg_init_delay_msecs 60001"),
                   features("2 pg_init_delay_msecs x"),
                   features("2 pg_init_delay_msecs -1"),
                   features("2 pg_init_delay_msecs 4294967296"), // the kernel would read 0
                   features("2 pg_init_delay_msecs 4294967295"),
                   features("2 Pg_Init_Delay_Msecs 1.5"),
               });
}

TEST_CASE("table errors: Unknown 'queue_mode' requested") {
  expect_error("Unknown 'queue_mode' requested",
               {
                   features("2 queue_mode nvme"), // existed in ~4.16-5.0 kernels only
                   features("2 queue_mode request"),
                   features("2 queue_mode 0"),
                   features("2 queue_mode queue_if_no_path"),
                   features("3 queue_if_no_path queue_mode bi"),
               });
}

TEST_CASE("table errors: invalid number of hardware handler args") {
  expect_error("invalid number of hardware handler args",
               {
                   "0",                                            // missing
                   "0 1",                                          // more than remain
                   "0 3 alua a",                                   //
                   "0 x 1 1 round-robin 0 1 0 8:16",               //
                   "0 -1 1 1 round-robin 0 1 0 8:16",              //
                   "0 1025 " + std::string(1025 * 2, 'a'),         // above 1024 (one long word)
                   "0 4294967297 alua 1 1 round-robin 0 1 0 8:16", // the kernel would read 1
                   "2 queue_mode bio 2 alua",                      // counted in bio mode too
               });

  // 1025 words that do remain: still above the range.
  std::string many = "0 1025";
  for (int i = 0; i < 1025; ++i)
    many += " w";
  many += std::string(one_group.substr(2));
  expect_error("invalid number of hardware handler args", {many});
}

TEST_CASE("table errors: invalid number of priority groups") {
  expect_error("invalid number of priority groups",
               {
                   "0 0",
                   "0 0 1025 1",
                   "0 0 x 1",
                   "0 0 -1 1",
                   "0 0 4294967297 1 round-robin 0 1 0 8:16", // the kernel would read 1
                   "0 1 alua",
               });
}

TEST_CASE("table errors: invalid initial priority group number") {
  expect_error("invalid initial priority group number",
               {
                   "0 0 1", "0 0 1 1025 round-robin 0 1 0 8:16", "0 0 1 x round-robin 0 1 0 8:16",
                   "0 0 1 -1 round-robin 0 1 0 8:16",
                   "0 0 1 4294967297 round-robin 0 1 0 8:16", // the kernel would read 1
                   "0 0 0 4294967296",                        // the kernel would read 0
               });
}

TEST_CASE("table errors: invalid initial priority group") {
  expect_error("invalid initial priority group",
               {
                   "0 0 0 1",                        // no groups but an initial one
                   "0 0 0 1024",                     //
                   "0 0 1 0 round-robin 0 1 0 8:16", // groups but no initial one
                   "0 0 2 0",                        // checked before the groups are read
                   "1 queue_if_no_path 1 alua 0 5",  //
               });
}

TEST_CASE("table errors: not enough priority group arguments") {
  expect_error("not enough priority group arguments",
               {
                   "0 0 1 1 round-robin",                        // one word
                   "0 0 1 1 round-robin 0 1 0 8:16 x",           // a single surplus word
                   "0 0 2 1 round-robin 0 1 0 8:16 x",           // one word left for the second group
                   "0 0 2 1 round-robin 0 1 0 8:16 round-robin", //
               });
}

TEST_CASE("table errors: priority group count mismatch") {
  expect_error("priority group count mismatch",
               {
                   "0 0 1 1",                                                  // no group words at all
                   "0 0 1024 1",                                               //
                   "0 0 2 1 round-robin 0 1 0 8:16",                           // too few groups
                   "0 0 3 2 round-robin 0 1 0 8:16 round-robin 0 1 0 8:32",    //
                   "0 0 1 1 round-robin 0 1 0 8:16 round-robin 0 1 0 8:32",    // surplus words forming a group
                   "0 0 0 0 round-robin 0 1 0 8:16",                           // surplus words with no groups
                   "0 0 1 1 round-robin 0 1 1 8:16 1 queue-length 0 1 0 8:32", //
               });
}

TEST_CASE("table errors: unknown path selector type") {
  expect_error("unknown path selector type",
               {
                   group("Round-Robin 0 1 0 8:16"), // case-sensitive, unlike feature words
                   group("ROUND-ROBIN 0 1 0 8:16"),
                   group("Service-Time 0 1 0 8:16"),
                   group("round_robin 0 1 0 8:16"),
                   group("rr 0 1 0 8:16"),
                   group("Historical-Service-Time 0 1 0 8:16"),
                   group("io_affinity 0 1 1 8:16 1"),
                   group("0 0 1 0 8:16"),
                   "0 0 1 1 round-robin 0 1 0 8:16 junk junk", // surplus words are read as a group
                   "0 0 2 1 round-robin 0 1 0 8:16 queue_length 0 1 0 8:32",
               });
}

TEST_CASE("table errors: invalid number of path selector args") {
  expect_error("invalid number of path selector args",
               {
                   group("round-robin x 1 0 8:16"),
                   group("round-robin -1 1 0 8:16"),
                   group("round-robin 5 1 0 8:16"),           // more than remain
                   group("round-robin 1025 1 0 8:16"),        //
                   group("queue-length 4294967296 1 0 8:16"), // the kernel would read 0
                   group("service-time 4294967297 1 1 0 8:16"),
               });

  // 1025 words that do remain: still above the range.
  std::string many = "0 0 1 1 round-robin 1025";
  for (int i = 0; i < 1025; ++i)
    many += " a";
  many += " 1 0 8:16";
  expect_error("invalid number of path selector args", {many});

  // 1024 selector arguments are fine (round-robin ignores them, and they are not printed back).
  std::string max = "0 0 1 1 round-robin 1024";
  for (int i = 0; i < 1024; ++i)
    max += " a";
  max += " 1 0 8:16";
  auto t = mpath::parse_table(max);
  REQUIRE(t);
  CHECK(mpath::format_table(*t) == "0 0 1 1 round-robin 0 1 1 8:16 1 ");
}

TEST_CASE("table errors: invalid number of paths") {
  expect_error("invalid number of paths",
               {
                   group("round-robin 0 0 0"),               // a group with no paths
                   group("round-robin 0 0 0 8:16"),          //
                   group("round-robin 0 1025 0 8:16"),       // above 1024
                   group("round-robin 0 x 0 8:16"),          //
                   group("round-robin 0 -1 0 8:16"),         //
                   group("round-robin 0 4294967297 0 8:16"), // the kernel would read 1
                   group("round-robin 0"),                   // nothing left
                   "0 0 2 1 round-robin 0 1 0 8:16 round-robin 0",
               });
}

TEST_CASE("table errors: invalid number of selector args") {
  expect_error("invalid number of selector args",
               {
                   group("round-robin 0 1"),                      // missing
                   group("round-robin 0 1 x 8:16"),               //
                   group("round-robin 0 1 -1 8:16"),              //
                   group("round-robin 0 1 1025 8:16"),            // above 1024
                   group("round-robin 0 1 4294967296 8:16"),      // the kernel would read 0
                   group("service-time 0 1 4294967298 8:16 1 1"), // the kernel would read 2
               });
}

TEST_CASE("table errors: not enough path parameters") {
  expect_error("not enough path parameters",
               {
                   group("round-robin 0 2 0 8:16"),        // second path missing
                   group("round-robin 0 1 1 8:16"),        // per-path argument missing
                   group("round-robin 0 2 1 8:16 1 8:32"), //
                   group("service-time 0 1 2 8:16 1"),     //
                   group("round-robin 0 1024 0 8:16"),     // not checked against the remaining words up front
                   group("round-robin 0 1 1024 8:16 1 1"), //
               });
}

TEST_CASE("table errors: the selectors' own per-path argument errors") {
  expect_error("round-robin ps: incorrect number of arguments",
               {group("round-robin 0 1 2 8:16 1 1"), group("round-robin 0 2 2 8:16 1 1 8:32 1 1")});
  expect_error("round-robin ps: invalid repeat count",
               {
                   group("round-robin 0 1 1 8:16 x"), group("round-robin 0 1 1 8:16 -1"),
                   group("round-robin 0 1 1 8:16 +1"), group("round-robin 0 1 1 8:16 1x"),
                   group("round-robin 0 1 1 8:16 4294967296"),
                   group("round-robin 0 2 1 8:16 1 8:32 y"), // second path
               });
  expect_error("queue-length ps: incorrect number of arguments", {group("queue-length 0 1 2 8:16 1 1")});
  expect_error("queue-length ps: invalid repeat count", {
                                                            group("queue-length 0 1 1 8:16 x"),
                                                            group("queue-length 0 1 1 8:16 -1"),
                                                            group("queue-length 0 1 1 8:16 4294967296"),
                                                        });
  expect_error("service-time ps: incorrect number of arguments", {group("service-time 0 1 3 8:16 1 1 1")});
  expect_error("service-time ps: invalid repeat count", {
                                                            group("service-time 0 1 1 8:16 x"),
                                                            group("service-time 0 1 2 8:16 x 1"),
                                                            group("service-time 0 1 2 8:16 -1 1"),
                                                            group("service-time 0 1 2 8:16 4294967296 1"),
                                                        });
  expect_error("service-time ps: invalid relative_throughput value",
               {
                   group("service-time 0 1 2 8:16 1 101"),
                   group("service-time 0 1 2 8:16 1 x"),
                   group("service-time 0 1 2 8:16 1 -1"),
                   group("service-time 0 1 2 8:16 1 1x"),
                   group("service-time 0 1 2 8:16 1 4294967297"), // the kernel would read 1
                   group("service-time 0 2 2 8:16 1 100 8:32 1 1000"),
               });
}

TEST_CASE("table errors: the first error wins, in the kernel's parse order") {
  // features before the handler, the handler before the groups, groups in table order
  auto check = [](std::string input, std::string_view text) {
    INFO("input: \"" << input << "\"");
    auto t = mpath::parse_table(input);
    REQUIRE_FALSE(t);
    CHECK(t.err().text == text);
  };
  check("1 bogus 9 9 9 9", "Unrecognised multipath feature request");
  check("0 9 0 0", "invalid number of hardware handler args");
  check("0 0 1025 1025", "invalid number of priority groups");
  check("0 0 2 1 round-robin 0 1 1 8:16 x Bogus 0 1 0 8:32", "round-robin ps: invalid repeat count");
  check("0 0 2 1 Bogus 0 1 1 8:16 x round-robin 0 1 0 8:32", "unknown path selector type");
  check("0 0 2 1 round-robin 0 1 0 8:16 service-time 0 1 2 8:32 1 101",
        "service-time ps: invalid relative_throughput value");
  check("0 0 3 1 round-robin 0 1 0 8:16 round-robin 0 1 0 8:32", "priority group count mismatch");
}
