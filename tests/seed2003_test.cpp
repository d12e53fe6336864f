// Unit tests of include/mpath/seed2003.hpp (product.md §9): seed 003's parameters and errors, the
// equivalent kernel table, and the front end over a simulated engine (testing/seed2003_sim.hpp):
// TABLE and INFO after each step, per-path failure maxima, and reactivation by test read.

#include <mpath/health/probe_checker.hpp>
#include <mpath/seed2003.hpp>
#include <mpath/testing/seed2003_sim.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <string>

namespace {

namespace mt = mpath::testing;
using mpath::blk_status;
using mpath::status_type;
using mpath::health::check_result;

std::string error_of(std::string_view text) {
  auto p = mpath::seed2003::parse_params(text);
  if (p)
    return "ok";
  CHECK(p.err().code == EINVAL);
  return p.err().text;
}

std::unique_ptr<mt::seed2003_sim_device<>> make(std::string_view text) {
  auto d = mt::seed2003_sim_device<>::create(text);
  REQUIRE(d);
  return std::move(*d);
}

std::string info(mt::seed2003_sim_device<>& d) { return d.status(status_type::info); }

std::uint64_t dispatched(mt::seed2003_sim_device<>& d, std::string_view path) {
  for (const auto& p : d.device().backend().paths())
    if (p.device == path)
      return p.dispatched;
  return 0;
}

} // namespace

TEST_CASE("seed2003: each error text, in the order the seed's constructor checks") {
  CHECK(error_of("8:16 1 L 2 3") == "dm-multipath: Wrong argument count");
  CHECK(error_of("8:16 1 L 2 3 10 8:32") == "dm-multipath: Wrong argument count");
  CHECK(error_of("8:16 x L 2 3 10") == "dm-multipath: Invalid priority");
  CHECK(error_of("8:16 8193 L 2 3 10") == "dm-multipath: Invalid priority");
  CHECK(error_of("8:16 -1 L 2 3 10") == "dm-multipath: Invalid priority");
  CHECK(error_of("8:16 1 X 2 3 10") == "load-balance flags");
  CHECK(error_of("8:16 1 LL 2 3 10") == "load-balance flags");
  CHECK(error_of("8:16 1 L 8193 3 10") == "dm-multipath: Invalid ios min");
  CHECK(error_of("8:16 1 L two 3 10") == "dm-multipath: Invalid ios min");
  CHECK(error_of("8:16 1 L 2 1025 10") == "dm-multipath: Invalid failure-maximum");
  CHECK(error_of("8:16 1 L 2 3 31536001") == "dm-multipath: Invalid reactivation-timeout");
  CHECK(error_of("8:16 1 L 2 3 10 8:16 0 N 1 1 0") == "dm-multipath: Same device");
  // Field by field, path by path: an earlier path's error wins, and a path's own fields come
  // before the same-device check.
  CHECK(error_of("8:16 x X 2 3 10") == "dm-multipath: Invalid priority");
  CHECK(error_of("8:16 1 L 2 3 10 8:16 1 L 2 3 -5") == "dm-multipath: Invalid reactivation-timeout");
  CHECK(error_of("8:16 1 L 2 3 10 8:16 1 L 2 3 10 8:32 x L 2 3 10") == "dm-multipath: Same device");
  // The limits themselves are accepted.
  CHECK(error_of("8:16 8192 M 8192 1024 31536000 8:32 0 n 0 0 0") == "ok");
}

TEST_CASE("seed2003: numbers as sscanf %d reads them, 0 raised to 1 for min-ios and failure-maximum") {
  auto p = mpath::seed2003::parse_params("8:16 5x l 02 +3 10 8:32 0 N 0 0 0");
  REQUIRE(p);
  CHECK(mpath::seed2003::format_table(*p) == "8:16 5 L 2 3 10 8:32 0 N 1 1 0 ");
}

TEST_CASE("seed2003: the equivalent kernel table, one group per priority, highest first") {
  auto p = mpath::seed2003::parse_params("8:16 1 L 2 3 10 8:48 0 N 0 0 5 8:32 1 M 4 1 0 8:64 7 N 1 1 1");
  REQUIRE(p);
  CHECK(mpath::format_table(mpath::seed2003::to_table(*p)) ==
        "0 0 3 1 load-balance-2003 0 1 2 8:64 N 1 load-balance-2003 0 2 2 8:16 L 2 8:32 M 4 "
        "load-balance-2003 0 1 2 8:48 N 1 ");
  auto none = mpath::seed2003::parse_params("");
  REQUIRE(none);
  CHECK(mpath::format_table(mpath::seed2003::to_table(*none)) == "0 0 0 0 ");
}

TEST_CASE("seed2003: TABLE and INFO of a new device") {
  auto d = make("8:16 1 L 2 3 10 8:32 1 L 2 1 0 8:48 0 N 0 0 5");
  CHECK(d->status(status_type::table) == "8:16 1 L 2 3 10 8:32 1 L 2 1 0 8:48 0 N 1 1 5 ");
  CHECK(info(*d) == "8:16 O 8:32 O 8:48 O ");
  // The engine underneath: its kernel status shows the groups and the selector's arguments.
  CHECK(d->device().engine().status(status_type::table) ==
        "0 0 2 1 load-balance-2003 0 2 2 8:16 L 2 8:32 L 2 load-balance-2003 0 1 2 8:48 N 1 ");
}

TEST_CASE("seed2003: L alternates within the highest priority, the lower one waits") {
  auto d = make("8:16 1 L 2 3 10 8:32 1 L 2 1 0 8:48 0 N 0 0 5");
  d->device().io(5);
  // 8:16, 8:32, 8:32, 8:16, 8:16: the first path's count starts the switch one I/O early.
  CHECK(dispatched(*d, "8:16") == 3);
  CHECK(dispatched(*d, "8:32") == 2);
  CHECK(dispatched(*d, "8:48") == 0);
  auto ios = d->device().ios();
  CHECK(ios[0].last_device == "8:16");
  CHECK(ios[1].last_device == "8:32");
  CHECK(ios[2].last_device == "8:32");
  CHECK(ios[3].last_device == "8:16");
  CHECK(ios[4].last_device == "8:16");
}

TEST_CASE("seed2003: a path fails at its own failure-maximum, then the next priority takes over") {
  auto d = make("8:16 1 N 1 3 0 8:32 0 N 1 0 0");
  auto& dev = d->device();
  dev.io(1);
  dev.complete("8:16", 1, blk_status::transport);
  dev.run();
  CHECK(info(*d) == "8:16 O 8:32 O "); // one error of three: retried on 8:16
  dev.complete("8:16", 1, blk_status::timeout);
  dev.run();
  CHECK(info(*d) == "8:16 O 8:32 O ");
  CHECK(dev.take_events().empty());
  dev.complete("8:16", 1, blk_status::transport);
  CHECK(info(*d) == "8:16 I(0/0)[1] 8:32 O "); // the third fails it (event not delivered yet)
  dev.run();
  CHECK(dev.take_events() == std::vector<std::string>{"PATH_FAILED 8:16 1"});
  CHECK(dispatched(*d, "8:16") == 3);
  CHECK(dispatched(*d, "8:32") == 1); // the I/O, retried on the lower priority
  // 8:32's failure-maximum 0 means 1: its first error fails it, and with no path left the I/O
  // fails (no queue_if_no_path in the seed).
  dev.complete("8:32", 1, blk_status::transport);
  dev.run();
  CHECK(info(*d) == "8:16 I(0/0)[1] 8:32 I(0/0)[1] ");
  CHECK(dev.stats().failed == 1);
  // The engine-wide option does not override a path's own maximum.
  dev.engine().set_path_failure_threshold(5);
  CHECK(dev.engine().message("reinstate_path 8:32"));
  dev.run();
  dev.io(1);
  dev.complete("8:32", 1, blk_status::ioerr);
  dev.run();
  CHECK(info(*d) == "8:16 I(0/0)[1] 8:32 I(0/0)[2] ");
  CHECK(dev.stats().failed == 2);
}

TEST_CASE("seed2003: a success forgets the errors counted toward the failure-maximum") {
  auto d = make("8:16 1 N 1 2 0 8:32 1 N 1 2 0");
  auto& dev = d->device();
  dev.io(2);
  dev.complete("8:16", 1, blk_status::transport);
  dev.run();
  dev.complete("8:16", 1, blk_status::ok);
  dev.complete("8:16", 1, blk_status::transport);
  dev.run();
  CHECK(info(*d) == "8:16 O 8:32 O ");
  dev.complete("8:16", 1, blk_status::transport);
  dev.run();
  CHECK(info(*d) == "8:16 I(0/0)[1] 8:32 O ");
}

TEST_CASE("seed2003: reactivation: a test read each timeout, reinstating when it succeeds") {
  auto d = make("8:16 1 L 1 1 10 8:32 1 L 1 1 0");
  auto& dev = d->device();
  d->probe("8:16", check_result::down);
  CHECK(dev.engine().message("fail_path 8:16"));
  dev.run();
  CHECK(info(*d) == "8:16 I(0/10)[1] 8:32 O ");
  dev.sleep(4000);
  CHECK(info(*d) == "8:16 I(4/10)[1] 8:32 O ");
  CHECK(d->front_end().test_reads("8:16") == 0);
  dev.sleep(6000); // 10 s: a test read, which fails; the seed's clock restarts
  CHECK(d->front_end().test_reads("8:16") == 1);
  CHECK(d->checker().checks("8:16") == 1);
  CHECK(info(*d) == "8:16 I(0/10)[1] 8:32 O ");
  dev.sleep(9999);
  CHECK(info(*d) == "8:16 I(9/10)[1] 8:32 O ");
  d->probe("8:16", check_result::up);
  dev.sleep(1); // 20 s: the second test read succeeds
  CHECK(d->front_end().test_reads("8:16") == 2);
  CHECK(info(*d) == "8:16 O[1] 8:32 O ");
  CHECK(dev.take_events() == std::vector<std::string>{"PATH_FAILED 8:16 1", "PATH_REINSTATED 8:16 2"});
  dev.sleep(60000); // reinstated: no more test reads
  CHECK(d->front_end().test_reads("8:16") == 2);
}

TEST_CASE("seed2003: reactivation-timeout 0 never tests, and a reinstatement by message stops the clock") {
  auto d = make("8:16 1 N 1 1 0 8:32 1 N 1 1 3");
  auto& dev = d->device();
  CHECK(dev.engine().message("fail_path 8:16"));
  CHECK(dev.engine().message("fail_path 8:32"));
  dev.run();
  dev.sleep(2000);
  CHECK(info(*d) == "8:16 I(2/0)[1] 8:32 I(2/3)[1] ");
  CHECK(dev.engine().message("reinstate_path 8:32"));
  dev.run();
  dev.sleep(100000);
  CHECK(info(*d) == "8:16 I(102/0)[1] 8:32 O[1] ");
  CHECK(d->front_end().test_reads("8:16") == 0);
  CHECK(d->front_end().test_reads("8:32") == 0);
}

TEST_CASE("seed2003: a reinstatement forgets the weighted latency of every priority") {
  auto d = make("8:16 1 M 1 1 0 8:32 1 M 1 1 0 8:48 0 M 1 1 0");
  auto& dev = d->device();
  auto& engine = dev.engine();
  dev.io(1); // 8:16's count runs out at once: to 8:32
  dev.sleep(3);
  dev.complete("", 1, blk_status::ok);
  CHECK(engine.status(status_type::info) == "2 0 0 0 2 1 A 0 2 1 8:16 A 0 0 8:32 A 0 81 E 0 1 1 8:48 A 0 0 ");
  CHECK(engine.message("fail_path 8:48"));
  CHECK(engine.message("reinstate_path 8:48"));
  dev.run();
  CHECK(engine.status(status_type::info) == "2 0 0 0 2 1 A 0 2 1 8:16 A 0 0 8:32 A 0 0 E 0 1 1 8:48 A 1 0 ");
}

TEST_CASE("seed2003: in code, over an engine and the directio-like probe_checker (docs/seed2003.md)") {
  using traits = mpath::seed2003::traits<mt::sim_traits>;
  using engine_type = mpath::multipath<mt::sim_backend, mt::manual_executor, traits>;
  using checker_type = mpath::health::probe_checker<mt::sim_backend, mt::manual_executor>;
  mt::sim_backend backend;
  mt::manual_executor exec;
  auto params = mpath::seed2003::parse_params("sda 1 L 16 3 10 sdb 1 L 16 3 10 sdc 0 N 0 1 30");
  REQUIRE(params);
  auto engine = engine_type::create(backend, exec, mpath::seed2003::to_table(*params));
  REQUIRE(engine);
  {
    checker_type checker(backend, exec); // the test read: one block read through the backend's probe
    mpath::seed2003::front_end<engine_type, checker_type> seed(**engine, checker, *params);
    backend.set_event_listener({&decltype(seed)::forward_event, &seed});
    CHECK(seed.status(status_type::table) == "sda 1 L 16 3 10 sdb 1 L 16 3 10 sdc 0 N 1 1 30 ");
    backend.set_probe_result("sda", blk_status::transport);
    CHECK((*engine)->message("fail_path sda"));
    exec.run();
    exec.advance(10'000'000'000); // the probe runs as deferred work, and answers down
    CHECK(checker.probes() == 1);
    CHECK(seed.status(status_type::info) == "sda I(0/10)[1] sdb O sdc O ");
    backend.set_probe_result("sda", blk_status::ok);
    exec.advance(10'000'000'000);
    CHECK(checker.probes() == 2);
    CHECK(seed.status(status_type::info) == "sda O[1] sdb O sdc O ");
    backend.set_event_listener({});
    seed.stop([&] { exec.run(); });
  }
  (*engine)->shutdown([&] { exec.run(); });
}
