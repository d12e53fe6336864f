// Explicit path probing (kernel-target.md §4.9, the DM_MPATH_PROBE_PATHS ioctl): every active path
// of the current group is read once through the backend; a path error fails the path, and the
// call answers ENOTCONN when no valid path is left anywhere.

#include <mpath/multipath.hpp>
#include <mpath/testing/sim.hpp>

#include "support/sim_helpers.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using mpath::blk_status;
using mpath::status_type;
using mpath_test::device;
using mpath_test::info;
using mpath_test::lines;
using mpath_test::make;

std::vector<std::uint64_t> probes(device& d) {
  std::vector<std::uint64_t> out;
  for (const auto& p : d.backend().paths())
    out.push_back(p.probes);
  return out;
}

using counts = std::vector<std::uint64_t>;

constexpr std::string_view three_and_one = "0 0 2 1 round-robin 0 3 0 8:16 8:32 8:48 round-robin 0 1 0 8:64";

} // namespace

TEST_CASE("probe §4.9: with no current group nothing is probed") {
  auto d = make(three_and_one);
  CHECK(d->engine().probe_paths());
  CHECK(probes(*d) == counts{0, 0, 0, 0});
}

TEST_CASE("probe §4.9: path errors fail the path, non-path errors and success do not") {
  auto d = make(three_and_one);
  d->io(1);
  CHECK(info(*d) == "2 0 0 0 2 1 A 0 3 0 8:16 A 0 8:32 A 0 8:48 A 0 E 0 1 0 8:64 A 0 ");
  d->backend().set_probe_result("8:32", blk_status::transport);
  d->backend().set_probe_result("8:48", blk_status::medium);
  CHECK(d->engine().probe_paths());
  CHECK(probes(*d) == counts{1, 1, 1, 0}); // only the current group
  CHECK(info(*d) == "2 0 0 0 2 1 A 0 3 0 8:16 A 0 8:32 F 1 8:48 A 0 E 0 1 0 8:64 A 0 ");
  d->run();
  CHECK(d->take_events() == lines{"PATH_FAILED 8:32 3"});

  // A failed path is not probed again.
  CHECK(d->engine().probe_paths());
  CHECK(probes(*d) == counts{2, 1, 2, 0});
}

TEST_CASE("probe §4.9: the group stays current while it has paths, ENOTCONN only when none is left anywhere") {
  auto d = make(three_and_one);
  d->io(1);
  for (std::string_view p : {"8:16", "8:32", "8:48"})
    d->backend().set_probe_result(p, blk_status::timeout);
  // The whole current group fails but PG2 still has a path: success.
  CHECK(d->engine().probe_paths());
  CHECK(info(*d) == "2 0 0 0 2 1 A 0 3 0 8:16 F 1 8:32 F 1 8:48 F 1 E 0 1 0 8:64 A 0 ");
  d->io(1);
  CHECK(d->ios().back().last_device == "8:64");
  CHECK(info(*d) == "2 0 0 0 2 2 E 0 3 0 8:16 F 1 8:32 F 1 8:48 F 1 A 0 1 0 8:64 A 0 ");

  d->backend().set_probe_result("8:64", blk_status::transport);
  auto r = d->engine().probe_paths();
  REQUIRE_FALSE(r);
  CHECK(r.err().code == ENOTCONN);
  CHECK(info(*d) == "2 0 0 0 2 2 E 0 3 0 8:16 F 1 8:32 F 1 8:48 F 1 A 0 1 0 8:64 F 1 ");
  CHECK(probes(*d) == counts{1, 1, 1, 1});

  // Without any path the probe is skipped (no current group after the next I/O) but still ENOTCONN.
  d->io(1);
  auto again = d->engine().probe_paths();
  REQUIRE_FALSE(again);
  CHECK(again.err().code == ENOTCONN);
  CHECK(probes(*d) == counts{1, 1, 1, 1});
  CHECK(d->complete("", 10, blk_status::ok) == 2);
  d->run();
  for (const auto& io : d->ios())
    CHECK(io.completions == 1);
}

TEST_CASE("probe §4.9: skipped while the current group is still initialising (QUEUE_IO set)") {
  auto d = make("0 1 alua 1 1 round-robin 0 2 0 8:16 8:32");
  d->backend().set_probe_result("8:16", blk_status::transport);
  d->io(1);
  CHECK(info(*d) == "2 1 1 0 1 1 A 0 2 0 8:16 A 0 8:32 A 0 ");
  CHECK(d->engine().probe_paths());
  CHECK(probes(*d) == counts{0, 0});
  d->run();
  CHECK(d->engine().probe_paths());
  CHECK(probes(*d) == counts{1, 1});
  CHECK(info(*d) == "2 0 1 0 1 1 A 0 2 0 8:16 F 1 8:32 A 0 ");
}

TEST_CASE("probe §4.9: skipped while the device is suspended") {
  auto d = make(three_and_one);
  d->io(1);
  d->backend().set_probe_result("8:16", blk_status::transport);
  d->suspend(true);
  CHECK(d->engine().probe_paths());
  CHECK(probes(*d) == counts{0, 0, 0, 0});
  d->resume();
  CHECK(d->engine().probe_paths());
  CHECK(probes(*d) == counts{1, 1, 1, 0});
}

// ------------------------------------------------------------------------------- deferred switch

namespace {

/// The simulation backend with a hook that runs inside each probe, to act while a probe is in
/// progress (the kernel's DELAY_PG_SWITCH window).
struct hooked_backend : mpath::testing::sim_backend {
  std::function<void(handle_type)> during_probe;
  blk_status probe(handle_type h) noexcept {
    if (during_probe)
      during_probe(h);
    return sim_backend::probe(h);
  }
};
static_assert(mpath::IoBackend<hooked_backend>);

using hooked_engine = mpath::multipath<hooked_backend, mpath::testing::manual_executor, mpath::testing::sim_traits>;

std::unique_ptr<hooked_engine> make_hooked(hooked_backend& b, mpath::testing::manual_executor& e,
                                           std::string_view table_text) {
  auto m = hooked_engine::create(b, e, table_text);
  REQUIRE(m);
  return std::move(m.value());
}

} // namespace

TEST_CASE("probe §4.9: group messages during a probe are deferred: the current group stays in use") {
  using mpath::testing::sim_io;
  hooked_backend backend;
  mpath::testing::manual_executor exec;
  sim_io first, during, after;
  auto m = make_hooked(backend, exec, "0 0 2 1 round-robin 0 2 0 8:16 8:32 round-robin 0 1 0 8:48");
  first.nr_bytes = during.nr_bytes = after.nr_bytes = 4096;
  CHECK(m->submit(first) == mpath::disposition::dispatched);
  CHECK(first.last_device == "8:16");

  std::vector<std::string> seen;
  backend.during_probe = [&](std::uint32_t h) {
    if (h != 0)
      return;
    // While 8:16 is being probed: ask for PG2, disable PG1, and submit an I/O.
    REQUIRE(m->message("switch_group 2"));
    REQUIRE(m->message("disable_group 1"));
    seen.push_back(m->status(status_type::info));
    CHECK(m->submit(during) == mpath::disposition::dispatched);
  };
  CHECK(m->probe_paths());
  // Both paths of PG1 were probed: the switch did not stop the probe.
  CHECK(backend.paths()[0].probes == 1);
  CHECK(backend.paths()[1].probes == 1);
  CHECK(backend.paths()[2].probes == 0);
  // During the probe PG1 was still current (shown D, bypassed) and the I/O went to it.
  CHECK(seen == std::vector<std::string>{"2 0 0 0 2 1 D 0 2 0 8:16 A 0 8:32 A 0 E 0 1 0 8:48 A 0 "});
  CHECK(during.last_device == "8:32");
  // After the probe the deferred switch happened: no current group, next_pg = 2.
  CHECK(m->status(status_type::info) == "2 0 0 0 2 2 D 0 2 0 8:16 A 0 8:32 A 0 E 0 1 0 8:48 A 0 ");
  CHECK(m->submit(after) == mpath::disposition::dispatched);
  CHECK(after.last_device == "8:48");
  CHECK(m->status(status_type::info) == "2 0 0 0 2 2 D 0 2 0 8:16 A 0 8:32 A 0 A 0 1 0 8:48 A 0 ");

  for (auto* io : backend.take_in_flight("", 10))
    CHECK(m->complete(*io, blk_status::ok) == mpath::disposition::completed);
  for (auto* io : {&first, &during, &after})
    CHECK(io->completions == 1);
  m->shutdown([&] { exec.run(); });
}

TEST_CASE("probe §4.9: a probe stops early when the current group changes under it") {
  using mpath::testing::sim_io;
  hooked_backend backend;
  mpath::testing::manual_executor exec;
  sim_io first, during;
  auto m = make_hooked(backend, exec, "0 0 2 1 round-robin 0 3 0 8:16 8:32 8:48 round-robin 0 1 0 8:64");
  first.nr_bytes = during.nr_bytes = 4096;
  CHECK(m->submit(first) == mpath::disposition::dispatched);
  backend.set_probe_result("8:16", blk_status::transport);
  backend.during_probe = [&](std::uint32_t h) {
    if (h != 1)
      return;
    // While 8:32 is probed, the other paths of PG1 are failed by the user; the next I/O has to
    // leave PG1, which changes the current group.
    REQUIRE(m->message("fail_path 8:32"));
    REQUIRE(m->message("fail_path 8:48"));
    CHECK(m->submit(during) == mpath::disposition::dispatched);
  };
  CHECK(m->probe_paths());
  CHECK(during.last_device == "8:64");
  CHECK(backend.paths()[0].probes == 1);
  CHECK(backend.paths()[1].probes == 1);
  CHECK(backend.paths()[2].probes == 0); // not reached: PG1 is no longer current
  CHECK(m->status(status_type::info) == "2 0 0 0 2 2 E 0 3 0 8:16 F 1 8:32 F 1 8:48 F 1 A 0 1 0 8:64 A 0 ");
  for (auto* io : backend.take_in_flight("", 10))
    CHECK(m->complete(*io, blk_status::ok) == mpath::disposition::completed);
  CHECK(first.completions == 1);
  CHECK(during.completions == 1);
  m->shutdown([&] { exec.run(); });
}
