#include <mpath/table.hpp>

#include <doctest/doctest.h>

TEST_CASE("table: the worked example of kernel-target.md 2.5 round-trips") {
  auto t =
      mpath::parse_table("0 209715200 multipath 3 queue_if_no_path pg_init_retries 5 1 alua 2 1 service-time 0 2 2 "
                         "8:16 1 1 8:32 1 4 round-robin 0 2 1 8:48 1 8:64 1");
  REQUIRE(t);
  CHECK(mpath::format_table(*t) ==
        "3 queue_if_no_path pg_init_retries 5 1 alua 2 1 service-time 0 2 2 8:16 1 1 8:32 1 4 "
        "round-robin 0 2 1 8:48 1 8:64 1 ");
}
