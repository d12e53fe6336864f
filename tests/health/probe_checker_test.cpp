// health/probe_checker.hpp: multipathd's directio over the backend's probe, run as work items on
// the executor it is given. On the simulation's manual executor the probe runs right after the
// tick that started it, and the monitor acts on its answer at the next tick.

#include <mpath/health/monitor.hpp>
#include <mpath/health/probe_checker.hpp>
#include <mpath/testing/sim.hpp>
#include <mpath/testing/sim_checker.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

namespace {

using device = mpath::testing::sim_device<>;
using checker_type = mpath::health::probe_checker<mpath::testing::sim_backend, mpath::testing::manual_executor>;
using monitor = mpath::health::health_monitor<device::engine_type, checker_type>;
using lines = std::vector<std::string>;
using mpath::health::check_result;

std::unique_ptr<device> make(std::string_view table) {
  auto d = device::create(table);
  REQUIRE(d);
  return std::move(*d);
}

TEST_CASE("probe checker: a failing probe fails the path, a good one reinstates it, one tick later") {
  auto dev = make("0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
  checker_type checker(dev->backend(), dev->executor());
  mpath::health::const_prioritizer prio;
  mpath::health::vector_log_sink sink;
  monitor m(dev->engine(), checker, prio, sink, "mp");
  mpath::testing::forward_events<monitor> fwd(dev->backend(), m);
  dev->backend().set_probe_result("8:16", mpath::blk_status::transport);
  m.start();
  dev->sleep(1000); // tick 1 starts both probes; they run after it
  CHECK(checker.probes() == 2);
  CHECK(dev->backend().paths()[0].probes == 1);
  CHECK(sink.take().empty());
  CHECK(m.check_state("8:16") == mpath::health::path_check_state::pending);
  dev->sleep(1000); // tick 2 sees the answers
  CHECK(sink.take() == lines{"checker failed path 8:16 in map mp", "mp: remaining active paths: 1"});
  CHECK(m.check_state("8:32") == mpath::health::path_check_state::up);

  // A non-path error on the probe (a medium error) still means the path carries I/O.
  dev->backend().set_probe_result("8:16", mpath::blk_status::medium);
  dev->sleep(5000); // checked again at 7, answered at 8
  CHECK(sink.take().empty());
  dev->sleep(1000);
  CHECK(sink.take() == lines{"8:16: reinstated", "mp: remaining active paths: 2"});
  CHECK(dev->backend().paths()[0].probes == 2);
}

TEST_CASE("probe checker: a path whose probe is still running is answered timeout at once") {
  auto dev = make("0 0 1 1 round-robin 0 1 1 8:16 1");
  checker_type checker(dev->backend(), dev->executor());
  auto& path = dev->engine().groups()[0].paths()[0];
  std::vector<check_result> answers;
  auto record = [](void* ctx, std::uint64_t, check_result r) noexcept {
    static_cast<std::vector<check_result>*>(ctx)->push_back(r);
  };
  checker.check(path, mpath::health::check_done(record, &answers, 1));
  checker.check(path, mpath::health::check_done(record, &answers, 2)); // the first has not run
  CHECK(answers == std::vector<check_result>{check_result::timeout});
  dev->executor().run();
  CHECK(answers == std::vector<check_result>{check_result::timeout, check_result::up});
  CHECK(checker.probes() == 1);
}

TEST_CASE("probe checker: destroyed with a probe not yet run, it answers timeout") {
  auto dev = make("0 0 1 1 round-robin 0 1 1 8:16 1");
  std::vector<check_result> answers;
  auto record = [](void* ctx, std::uint64_t, check_result r) noexcept {
    static_cast<std::vector<check_result>*>(ctx)->push_back(r);
  };
  {
    checker_type checker(dev->backend(), dev->executor());
    checker.check(dev->engine().groups()[0].paths()[0], mpath::health::check_done(record, &answers, 1));
  }
  CHECK(answers == std::vector<check_result>{check_result::timeout});
  CHECK(dev->executor().run() == 0); // nothing left queued
}

TEST_CASE("probe checker: stopping the monitor waits for a probe in flight") {
  auto dev = make("0 0 1 1 round-robin 0 1 1 8:16 1");
  mpath::testing::manual_executor probe_exec; // probes wait here until the test runs them
  checker_type checker(dev->backend(), probe_exec);
  mpath::health::const_prioritizer prio;
  mpath::health::vector_log_sink sink;
  auto m = std::make_unique<monitor>(dev->engine(), checker, prio, sink, "mp");
  m->start();
  dev->sleep(1000); // tick 1 posts the probe on probe_exec
  CHECK(checker.probes() == 1);
  CHECK(dev->backend().paths()[0].probes == 0);
  int drives = 0;
  m->stop([&] {
    ++drives;
    probe_exec.run();
  });
  CHECK(drives == 1);
  CHECK(dev->backend().paths()[0].probes == 1);
  m.reset(); // nothing outstanding: no wait, no late answer possible
  CHECK(probe_exec.idle());
}

} // namespace
