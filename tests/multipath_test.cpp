#include <mpath/multipath.hpp>
#include <mpath/testing/sim.hpp>

#include <doctest/doctest.h>

using mpath::blk_status;
using mpath::status_type;
using mpath::testing::sim_device;

namespace {
std::string info(sim_device<>& d) { return d.engine().status(status_type::info); }
std::string table(sim_device<>& d) { return d.engine().status(status_type::table); }
} // namespace

TEST_CASE("engine: the worked example of kernel-target.md 2.5, step by step") {
  auto made =
      sim_device<>::create("0 209715200 multipath 3 queue_if_no_path pg_init_retries 5 1 alua 2 1 service-time 0 "
                           "2 2 8:16 1 1 8:32 1 4 round-robin 0 2 1 8:48 1 8:64 1");
  REQUIRE(made);
  auto& d = **made;
  CHECK(table(d) ==
        "3 queue_if_no_path pg_init_retries 5 1 alua 2 1 service-time 0 2 2 8:16 1 1 8:32 1 4 round-robin 0 "
        "2 1 8:48 1 8:64 1 ");
  // 1. after resume, no I/O yet
  CHECK(info(d) == "2 1 0 0 2 1 E 0 2 2 8:16 A 0 0 1 8:32 A 0 0 4 E 0 2 0 8:48 A 0 8:64 A 0 ");
  // 2. first I/O selects PG1, the ALUA activation completes, 8 KiB outstanding on 8:32
  d.io(1, 8192);
  CHECK(info(d) == "2 1 1 0 2 1 A 0 2 2 8:16 A 0 0 1 8:32 A 0 0 4 E 0 2 0 8:48 A 0 8:64 A 0 ");
  d.run();
  CHECK(info(d) == "2 0 1 0 2 1 A 0 2 2 8:16 A 0 0 1 8:32 A 0 8192 4 E 0 2 0 8:48 A 0 8:64 A 0 ");
  // 3. fail_path 8:32, in-flight drained
  REQUIRE(d.engine().message("fail_path 8:32"));
  d.complete("8:32", 1, blk_status::ok);
  CHECK(info(d) == "2 0 1 0 2 1 A 0 2 2 8:16 A 0 0 1 8:32 F 1 0 4 E 0 2 0 8:48 A 0 8:64 A 0 ");
  // 4. disable_group 1 and the next I/O switch to PG2
  REQUIRE(d.engine().message("disable_group 1"));
  d.io(1);
  CHECK(info(d) == "2 1 1 0 2 2 D 0 2 2 8:16 A 0 0 1 8:32 F 1 0 4 A 0 2 0 8:48 A 0 8:64 A 0 ");
  d.run();
  CHECK(info(d) == "2 0 1 0 2 2 D 0 2 2 8:16 A 0 0 1 8:32 F 1 0 4 A 0 2 0 8:48 A 0 8:64 A 0 ");
  CHECK(d.take_events() == std::vector<std::string>{"PATH_FAILED 8:32 3"});
}
