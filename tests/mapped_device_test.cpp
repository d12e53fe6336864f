// mapped_device.hpp: reload as multipathd does it (product.md §6), on the simulated device, step by
// step with exact INFO/TABLE text and exactly-once completion: a hot add, a hot remove with I/O in
// flight on the removed path, what a bad table leaves, what a bio-mode table held, channels and
// engine options across a reload.

#include <mpath/mapped_device.hpp>
#include <mpath/testing/sim.hpp>

#include "support/sim_helpers.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace {

using mpath::blk_status;
using mpath_test::device;
using mpath_test::info;
using mpath_test::make;
using mpath_test::message;
using mpath_test::table;

void each_once(device& d, std::size_t ok, std::size_t failed) {
  std::size_t seen_ok = 0, seen_failed = 0;
  for (const auto& io : d.ios()) {
    CAPTURE(io.id);
    CHECK(io.completions == 1);
    (io.final_status == blk_status::ok ? seen_ok : seen_failed) += 1;
  }
  CHECK(seen_ok == ok);
  CHECK(seen_failed == failed);
}

} // namespace

TEST_CASE("reload: a hot add puts new I/O on the new path, I/O in flight on the old table completes there") {
  auto d = make("0 0 1 1 queue-length 0 2 1 8:16 1 8:32 1");
  d->io(4);
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 1 8:16 A 0 2 8:32 A 0 2 ");
  REQUIRE(d->reload("0 0 1 1 queue-length 0 3 1 8:16 1 8:32 1 8:48 1"));
  CHECK(d->device().reloads() == 1);
  CHECK(table(*d) == "0 0 1 1 queue-length 0 3 1 8:16 1 8:32 1 8:48 1 ");
  // A new table: no group chosen yet, its paths count from 0; the four I/Os are the old table's.
  CHECK(info(*d) == "2 1 0 0 1 1 E 0 3 1 8:16 A 0 0 8:32 A 0 0 8:48 A 0 0 ");
  CHECK(d->stats().inflight == 4);
  d->io(3);
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 3 1 8:16 A 0 1 8:32 A 0 1 8:48 A 0 1 ");
  // The old table's I/O: one succeeds, one errs with a path error and is retried on the new table.
  CHECK(d->complete("8:16", 1, blk_status::ok) == 1);
  CHECK(d->complete("8:32", 1, blk_status::transport) == 1);
  d->run();
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 3 1 8:16 A 0 2 8:32 A 0 1 8:48 A 0 1 "); // no path failed in the new table
  CHECK(d->take_events().empty());
  d->complete("", ~std::size_t{0}, blk_status::ok);
  each_once(*d, 7, 0);
}

TEST_CASE("reload: a hot remove with I/O in flight on the removed path") {
  auto d = make("0 0 1 1 round-robin 0 3 1 8:16 1 8:32 1 8:48 1");
  d->io(3); // one on each path
  REQUIRE(d->reload("0 0 1 1 round-robin 0 2 1 8:32 1 8:48 1"));
  CHECK(table(*d) == "0 0 1 1 round-robin 0 2 1 8:32 1 8:48 1 ");
  // 8:16 is no path of the device any more; its I/O errs and goes to the new table's paths.
  CHECK(d->complete("8:16", 1, blk_status::timeout) == 1);
  d->run();
  auto s = d->stats();
  CHECK(s.inflight == 3);
  CHECK(d->live_paths().size() == 2);
  CHECK(d->live_paths()[0].dispatched + d->live_paths()[1].dispatched == 1);
  d->complete("", ~std::size_t{0}, blk_status::ok);
  each_once(*d, 3, 0);
}

TEST_CASE("reload: a bad table leaves the live one untouched and says why") {
  auto d = make("1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
  message(*d, "fail_path 8:16");
  d->io(2);
  auto& before = d->engine();
  const std::string info_before = info(*d), table_before = table(*d);
  auto bad = d->reload("0 0 1 1 no-such-selector 0 1 1 8:48 1");
  REQUIRE_FALSE(bad);
  CHECK(bad.err().code == EINVAL);
  CHECK(bad.err().text == "unknown path selector type");
  auto mode = d->reload("2 queue_mode bio 0 1 1 round-robin 0 1 1 8:48 1");
  REQUIRE_FALSE(mode);
  CHECK(mode.err().text == "can't change device type after initial table load");
  CHECK(&d->engine() == &before);
  CHECK(d->device().reloads() == 0);
  CHECK(info(*d) == info_before);
  CHECK(table(*d) == table_before);
  CHECK_FALSE(d->engine().suspended());
  d->complete("", ~std::size_t{0}, blk_status::ok);
  each_once(*d, 2, 0);
}

TEST_CASE("reload: what a bio-mode table held goes to the new table, which starts with every path active") {
  auto d = make("3 queue_if_no_path queue_mode bio 0 1 1 round-robin 0 1 1 8:16 1");
  message(*d, "fail_path 8:16");
  d->io(2);
  CHECK(d->engine().queued() == 2);
  REQUIRE(d->reload("3 queue_if_no_path queue_mode bio 0 1 1 round-robin 0 2 1 8:16 1 8:32 1"));
  d->run();
  CHECK(d->engine().queued() == 0);
  CHECK(d->stats().inflight == 2);
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 0 8:16 A 0 8:32 A 0 ");
  d->complete("", ~std::size_t{0}, blk_status::ok);
  each_once(*d, 2, 0);
}

TEST_CASE("reload: a device its user suspended takes the table and stays suspended until resume") {
  auto d = make("0 0 1 1 round-robin 0 1 1 8:16 1");
  d->suspend(/*noflush=*/true);
  d->io(1); // DM core holds it while suspended
  REQUIRE(d->reload("0 0 1 1 round-robin 0 1 1 8:32 1"));
  CHECK(d->engine().suspended());
  CHECK(d->stats().inflight == 0);
  d->resume();
  d->run();
  CHECK(d->live_paths()[0].device == "8:32");
  CHECK(d->live_paths()[0].dispatched == 1);
  d->complete("", ~std::size_t{0}, blk_status::ok);
  each_once(*d, 1, 0);
}

TEST_CASE("reload: a channel follows the live table, and the engine options carry over") {
  mpath::engine_options o;
  o.path_failure_threshold = 2;
  auto d = make("0 0 1 1 queue-length 0 2 1 8:16 1 8:32 1", o);
  d->use_channel();
  d->io(2);
  REQUIRE(d->reload("0 0 1 1 queue-length 0 2 1 8:48 1 8:64 1"));
  d->io(2);
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 1 8:48 A 0 1 8:64 A 0 1 ");
  CHECK(d->engine().options().path_failure_threshold == 2);
  // The first path error on 8:48 does not fail it (threshold 2): the I/O is retried.
  CHECK(d->complete("8:48", 1, blk_status::transport) == 1);
  d->run();
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 1 8:48 A 0 1 8:64 A 0 1 ");
  d->complete("", ~std::size_t{0}, blk_status::ok);
  each_once(*d, 4, 0);
}
