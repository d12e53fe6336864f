// Bio-based mode (`queue_mode bio`, kernel-target.md §4.4 "Bio-based mode", §4.7): the engine holds
// I/O in its own FIFO and dispatches it itself, as soon as a path is usable (product.md §5: event
// driven, no polling). Exact INFO/TABLE text, dispositions and exactly-once completion.

#include <mpath/multipath.hpp>
#include <mpath/testing/sim.hpp>

#include "support/sim_helpers.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using mpath::blk_status;
using mpath::disposition;
using mpath::status_type;
using mpath::testing::sim_io;
using mpath_test::complete_one;
using mpath_test::device;
using mpath_test::info;
using mpath_test::lines;
using mpath_test::make;
using mpath_test::message;
using mpath_test::submit;
using mpath_test::table;

constexpr std::string_view bio_qifnp = "3 queue_if_no_path queue_mode bio 0 1 1 round-robin 0 2 0 8:16 8:32";
constexpr std::string_view bio_qifnp_table = "3 queue_if_no_path queue_mode bio 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ";
constexpr std::string_view bio_plain = "2 queue_mode bio 0 1 1 round-robin 0 2 0 8:16 8:32";
constexpr std::string_view bio_plain_table = "2 queue_mode bio 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ";

} // namespace

TEST_CASE("bio §1.3: the table round-trips, hardware handler words are accepted and ignored") {
  auto d = make("3 queue_if_no_path queue_mode bio 1 alua 1 1 round-robin 0 1 0 8:16");
  CHECK(table(*d) == "3 queue_if_no_path queue_mode bio 0 1 1 round-robin 0 1 1 8:16 1 ");
  CHECK(d->handler() == nullptr);
  sim_io a;
  CHECK(submit(*d, a) == disposition::dispatched); // no pg_init in bio mode
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 1 0 8:16 A 0 ");
  CHECK(complete_one(*d, "8:16", blk_status::ok) == disposition::completed);
  CHECK(a.completions == 1);
}

TEST_CASE("bio §4.4: all paths down with queue_if_no_path: held by the engine, dispatched when a path returns") {
  sim_io a, b, c;
  auto d = make(bio_qifnp);
  CHECK(table(*d) == bio_qifnp_table);
  CHECK(submit(*d, a) == disposition::dispatched);
  CHECK(a.last_device == "8:16");
  message(*d, "fail_path 8:16");
  message(*d, "fail_path 8:32");
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 0 8:16 F 1 8:32 F 1 ");

  // The in-flight I/O's path error: held (INCOMPLETE) rather than failed.
  CHECK(complete_one(*d, "8:16", blk_status::transport) == disposition::queued);
  CHECK(submit(*d, b) == disposition::queued);
  CHECK(submit(*d, c) == disposition::queued);
  CHECK(d->engine().queued() == 3);
  CHECK(info(*d) == "2 0 0 0 1 1 E 0 2 0 8:16 F 1 8:32 F 1 ");
  CHECK(d->engine().busy()); // §4.10: no path + queue_if_no_path is busy outside request mode
  d->sleep(5000);            // no polling: nothing is retried while no path exists
  CHECK(d->engine().queued() == 3);
  CHECK(a.dispatches == 1);
  CHECK(b.dispatches == 0);

  message(*d, "reinstate_path 8:32");
  d->run();
  CHECK(d->engine().queued() == 0);
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 0 8:16 F 1 8:32 A 1 ");
  // FIFO order is kept.
  auto flight = d->backend().take_in_flight("8:32", 3);
  REQUIRE(flight.size() == 3);
  CHECK(flight[0] == &a);
  CHECK(flight[1] == &b);
  CHECK(flight[2] == &c);
  for (sim_io* io : flight)
    CHECK(d->engine().complete(*io, blk_status::ok) == disposition::completed);
  for (sim_io* io : {&a, &b, &c}) {
    CHECK(io->completions == 1);
    CHECK(io->final_status == blk_status::ok);
  }
  CHECK(a.dispatches == 2);
}

TEST_CASE("bio §4.4: all paths down without queue_if_no_path: KILL at map, IOERR (normalised) at completion") {
  sim_io a, b;
  auto d = make(bio_plain);
  CHECK(table(*d) == bio_plain_table);
  CHECK(submit(*d, a) == disposition::dispatched);
  message(*d, "fail_path 8:32");
  CHECK(complete_one(*d, "8:16", blk_status::timeout) == disposition::completed);
  CHECK(a.completions == 1);
  CHECK(a.final_status == blk_status::ioerr); // bio mode replaces the original error
  CHECK(submit(*d, b) == disposition::completed);
  CHECK(b.final_status == blk_status::ioerr);
  CHECK(b.completions == 1);
  CHECK(info(*d) == "2 0 0 0 1 1 E 0 2 0 8:16 F 1 8:32 F 1 ");
}

TEST_CASE("bio §4.4: a path error with another path left is retried by the engine on that path") {
  sim_io a;
  auto d = make(bio_plain);
  CHECK(submit(*d, a) == disposition::dispatched);
  CHECK(a.last_device == "8:16");
  CHECK(complete_one(*d, "8:16", blk_status::transport) == disposition::queued);
  CHECK(d->engine().queued() == 1);
  d->run(); // the engine's worker remaps it
  CHECK(d->engine().queued() == 0);
  CHECK(a.last_device == "8:32");
  CHECK(a.dispatches == 2);
  CHECK(complete_one(*d, "8:32", blk_status::ok) == disposition::completed);
  CHECK(a.completions == 1);
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 0 8:16 F 1 8:32 A 0 ");
  d->run();
  CHECK(d->take_events() == lines{"PATH_FAILED 8:16 1"});
}

TEST_CASE("bio §4.4: a non-path error completes with that status and fails nothing") {
  sim_io a;
  auto d = make(bio_plain);
  CHECK(submit(*d, a) == disposition::dispatched);
  CHECK(complete_one(*d, "8:16", blk_status::medium) == disposition::completed);
  CHECK(a.final_status == blk_status::medium);
  CHECK(a.completions == 1);
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 0 8:16 A 0 8:32 A 0 ");
}

TEST_CASE("bio §4.7: fail_if_no_path fails the held I/O with an I/O error") {
  auto d = make(bio_qifnp);
  message(*d, "fail_path 8:16");
  message(*d, "fail_path 8:32");
  d->io(3);
  CHECK(d->engine().queued() == 3);
  message(*d, "fail_if_no_path");
  d->run();
  CHECK(d->engine().queued() == 0);
  for (const auto& io : d->ios()) {
    CHECK(io.completions == 1);
    CHECK(io.final_status == blk_status::ioerr);
  }
  CHECK(table(*d) == bio_plain_table);
}

TEST_CASE("bio §4.7: any suspend turns queue_if_no_path off in bio mode, resume restores it") {
  for (bool noflush : {false, true}) {
    CAPTURE(noflush);
    auto d = make(bio_qifnp);
    d->engine().presuspend(noflush);
    CHECK(table(*d) == bio_plain_table);
    d->engine().postsuspend([&] { d->executor().run(); });
    CHECK(table(*d) == bio_plain_table);
    d->resume();
    CHECK(table(*d) == bio_qifnp_table);
  }
}

TEST_CASE("bio §4.7: a flushing suspend fails held I/O, a noflush suspend keeps it across resume") {
  SUBCASE("flush") {
    auto d = make(bio_qifnp);
    message(*d, "fail_path 8:16");
    message(*d, "fail_path 8:32");
    d->io(2);
    CHECK(d->engine().queued() == 2);
    d->suspend(false);
    CHECK(d->engine().queued() == 0);
    for (const auto& io : d->ios()) {
      CHECK(io.completions == 1);
      CHECK(io.final_status == blk_status::ioerr);
    }
    d->resume();
    CHECK(table(*d) == bio_qifnp_table);
  }
  SUBCASE("noflush") {
    auto d = make(bio_qifnp);
    message(*d, "fail_path 8:16");
    message(*d, "fail_path 8:32");
    d->io(2);
    d->suspend(true);
    CHECK(d->engine().queued() == 2); // pushed back to "DM core", not failed
    d->io(1);                         // I/O arriving while suspended is held too
    CHECK(d->engine().queued() == 3);
    d->resume();
    CHECK(d->engine().queued() == 3); // queue_if_no_path is back: held again, waiting for a path
    for (const auto& io : d->ios())
      CHECK(io.completions == 0);
    message(*d, "reinstate_path 8:16");
    d->run();
    CHECK(d->engine().queued() == 0);
    CHECK(d->complete("8:16", 3, blk_status::ok) == 3);
    for (const auto& io : d->ios()) {
      CHECK(io.completions == 1);
      CHECK(io.final_status == blk_status::ok);
      CHECK(io.dispatches == 1);
    }
  }
}

TEST_CASE("bio: shutting the device down fails whatever the engine still holds, once") {
  std::vector<sim_io> held(3);
  {
    auto d = make(bio_qifnp);
    message(*d, "fail_path 8:16");
    message(*d, "fail_path 8:32");
    for (auto& io : held)
      CHECK(submit(*d, io) == disposition::queued);
  }
  for (const auto& io : held) {
    CHECK(io.completions == 1);
    CHECK(io.final_status == blk_status::ioerr);
  }
}
