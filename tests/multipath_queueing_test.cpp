// queue_if_no_path across suspend and resume (kernel-target.md §4.7) and request-based I/O when
// every path is gone (§4.3, §4.4), step by step with exact INFO/TABLE text, dispositions and
// exactly-once completion. Bio mode has its own file (multipath_bio_test.cpp).

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

void all_done(device& d, blk_status status) {
  for (const auto& io : d.ios()) {
    CAPTURE(io.id);
    CHECK(io.completions == 1);
    CHECK(io.final_status == status);
  }
}

constexpr std::string_view qifnp_one = "1 queue_if_no_path 0 1 1 round-robin 0 2 0 8:16 8:32";
constexpr std::string_view qifnp_one_table = "1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ";
constexpr std::string_view plain_one_table = "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ";

} // namespace

// ------------------------------------------------------------------------------- suspend and the saved copy

TEST_CASE("queueing §4.7: a flushing suspend turns queue_if_no_path off and resume restores it") {
  auto d = make(qifnp_one);
  CHECK(table(*d) == qifnp_one_table);
  d->engine().presuspend(false);
  CHECK(table(*d) == plain_one_table); // presuspend already cleared it
  CHECK_FALSE(d->engine().queue_if_no_path());
  d->engine().postsuspend([&] { d->executor().run(); });
  CHECK(table(*d) == plain_one_table);
  d->resume();
  CHECK(table(*d) == qifnp_one_table);
  CHECK(info(*d) == "2 1 0 0 1 1 E 0 2 0 8:16 A 0 8:32 A 0 ");
}

TEST_CASE("queueing §4.7: a noflush suspend in request mode leaves queue_if_no_path alone") {
  auto d = make(qifnp_one);
  d->engine().presuspend(true);
  CHECK(table(*d) == qifnp_one_table);
  d->engine().postsuspend([&] { d->executor().run(); });
  CHECK(table(*d) == qifnp_one_table);
  d->resume();
  CHECK(table(*d) == qifnp_one_table);
}

TEST_CASE("queueing §4.7: a suspend of a table without queue_if_no_path saves nothing to restore") {
  auto d = make("0 0 1 1 round-robin 0 2 0 8:16 8:32");
  d->suspend(false);
  d->resume();
  CHECK(table(*d) == plain_one_table);
  d->suspend(true);
  d->resume();
  CHECK(table(*d) == plain_one_table);
}

TEST_CASE("queueing §4.7: fail_if_no_path in the presuspend window clears the saved copy, resume keeps it off") {
  auto d = make(qifnp_one);
  d->engine().presuspend(false);
  message(*d, "fail_if_no_path");
  d->engine().postsuspend([&] { d->executor().run(); });
  d->resume();
  CHECK(table(*d) == plain_one_table);
  CHECK_FALSE(d->engine().queue_if_no_path());
}

TEST_CASE("queueing §4.7: fail_if_no_path during a noflush suspend's presuspend window survives resume") {
  auto d = make(qifnp_one);
  d->engine().presuspend(true);
  message(*d, "fail_if_no_path");
  CHECK(table(*d) == plain_one_table);
  d->engine().postsuspend([&] { d->executor().run(); });
  d->resume();
  CHECK(table(*d) == plain_one_table);
}

TEST_CASE("queueing §4.7: queue_if_no_path in the presuspend window is kept, the saved copy restores it too") {
  auto d = make("0 0 1 1 round-robin 0 2 0 8:16 8:32");
  d->engine().presuspend(false);
  message(*d, "queue_if_no_path");
  CHECK(table(*d) == qifnp_one_table);
  d->engine().postsuspend([&] { d->executor().run(); });
  d->resume();
  CHECK(table(*d) == qifnp_one_table);
}

TEST_CASE("queueing §4.7: 'QIFNP disabled but saved as enabled': a second presuspend does not lose the saved copy") {
  auto d = make(qifnp_one);
  // A suspend that got as far as presuspend and was abandoned (the kernel has no presuspend_undo
  // for multipath), then a new suspend: the second presuspend must not save "off".
  d->engine().presuspend(false);
  CHECK(table(*d) == plain_one_table);
  d->engine().presuspend(false);
  CHECK(table(*d) == plain_one_table);
  d->engine().postsuspend([&] { d->executor().run(); });
  d->resume();
  CHECK(table(*d) == qifnp_one_table);
}

TEST_CASE("queueing §4.7: a flushing suspend fails I/O queued for lack of a path, resume queues again") {
  sim_io a, b;
  auto d = make(qifnp_one);
  message(*d, "fail_path 8:16");
  message(*d, "fail_path 8:32");
  CHECK(submit(*d, a) == disposition::delay_requeue);
  CHECK(info(*d) == "2 0 0 0 1 1 E 0 2 0 8:16 F 1 8:32 F 1 ");

  d->engine().presuspend(false);
  CHECK(d->backend().take_kick()); // turning queueing off re-drives the requeue list
  CHECK(submit(*d, a) == disposition::completed);
  CHECK(a.completions == 1);
  CHECK(a.final_status == blk_status::ioerr);
  d->engine().postsuspend([&] { d->executor().run(); });
  d->resume();

  CHECK(table(*d) == qifnp_one_table);
  CHECK(submit(*d, b) == disposition::delay_requeue);
  message(*d, "reinstate_path 8:32");
  CHECK(submit(*d, b) == disposition::dispatched);
  CHECK(complete_one(*d, "8:32", blk_status::ok) == disposition::completed);
  CHECK(b.completions == 1);
  CHECK(b.final_status == blk_status::ok);
  CHECK(a.completions == 1);
}

TEST_CASE("queueing §4.7: a noflush suspend pushes no-path I/O back even without queue_if_no_path") {
  sim_io a, b;
  auto d = make("0 0 1 1 round-robin 0 2 0 8:16 8:32");
  CHECK(submit(*d, a) == disposition::dispatched);
  message(*d, "fail_path 8:32");
  d->engine().presuspend(true);
  // The last path's error while noflush suspending: pushed back (REQUEUE), not failed.
  CHECK(complete_one(*d, "8:16", blk_status::transport) == disposition::requeue);
  CHECK(a.completions == 0);
  CHECK(submit(*d, b) == disposition::delay_requeue); // no path, noflush: DELAY_REQUEUE
  d->engine().postsuspend([&] { d->executor().run(); });
  CHECK(info(*d) == "2 0 0 0 1 1 E 0 2 0 8:16 F 1 8:32 F 1 ");
  d->engine().resume();
  // After the resume the device has neither paths nor queue_if_no_path: KILL.
  CHECK(submit(*d, a) == disposition::completed);
  CHECK(submit(*d, b) == disposition::completed);
  CHECK(a.final_status == blk_status::ioerr);
  CHECK(b.final_status == blk_status::ioerr);
  CHECK(a.completions == 1);
  CHECK(b.completions == 1);
}

// ------------------------------------------------------------------------------- all paths failing, request mode

TEST_CASE("queueing §4.3: all paths down with queue_if_no_path: DELAY_REQUEUE, polling, then dispatch on reinstate") {
  auto d = make(qifnp_one);
  d->io(1);
  CHECK(d->ios()[0].last_device == "8:16");
  message(*d, "fail_path 8:16");
  message(*d, "fail_path 8:32");
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 0 8:16 F 1 8:32 F 1 ");
  // The I/O in flight on the failed path gets a path error: REQUEUE, then DELAY_REQUEUE at map.
  CHECK(d->complete("8:16", 1, blk_status::transport) == 1);
  CHECK(d->stats().queued == 1);
  d->run();
  CHECK(info(*d) == "2 0 0 0 1 1 E 0 2 0 8:16 F 1 8:32 F 1 ");
  d->io(2);
  auto s = d->stats();
  CHECK(s.submitted == 3);
  CHECK(s.queued == 3);
  CHECK(s.inflight == 0);
  d->sleep(1000); // polled every 100 ms; nothing moves
  CHECK(d->stats().queued == 3);
  CHECK(d->ios()[1].dispatches == 0);
  for (const auto& io : d->ios())
    CHECK(io.completions == 0);

  message(*d, "reinstate_path 8:32");
  d->run(); // the reinstate re-drives the requeue list at once, no need to wait for the poll
  CHECK(d->executor().now_ns() == 1000'000'000);
  s = d->stats();
  CHECK(s.queued == 0);
  CHECK(s.inflight == 3);
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 0 8:16 F 1 8:32 A 1 ");
  for (const auto& io : d->ios())
    CHECK(io.last_device == "8:32");
  CHECK(d->complete("8:32", 3, blk_status::ok) == 3);
  all_done(*d, blk_status::ok);
  CHECK(d->take_events() == lines{"PATH_FAILED 8:16 1", "PATH_FAILED 8:32 0", "PATH_REINSTATED 8:32 1"});
}

TEST_CASE("queueing §4.3: all paths down without queue_if_no_path: new I/O is killed with an I/O error") {
  sim_io a;
  auto d = make("0 0 1 1 round-robin 0 2 0 8:16 8:32");
  message(*d, "fail_path 8:16");
  message(*d, "fail_path 8:32");
  CHECK(submit(*d, a) == disposition::completed);
  CHECK(a.completions == 1);
  CHECK(a.final_status == blk_status::ioerr);
  CHECK(a.dispatches == 0);
  CHECK(info(*d) == "2 0 0 0 1 1 E 0 2 0 8:16 F 1 8:32 F 1 ");
}

TEST_CASE("queueing §4.4: the last path's error without queue_if_no_path completes with the original error") {
  for (auto status : {blk_status::transport, blk_status::timeout, blk_status::ioerr, blk_status::offline,
                      blk_status::again, blk_status::resource, blk_status::dev_resource}) {
    CAPTURE(mpath::to_string(status));
    sim_io a;
    auto d = make("0 0 1 1 round-robin 0 1 0 8:16");
    CHECK(submit(*d, a) == disposition::dispatched);
    CHECK(complete_one(*d, "8:16", status) == disposition::completed);
    CHECK(a.completions == 1);
    CHECK(a.final_status == status);
    CHECK(info(*d) == "2 0 0 0 1 1 A 0 1 0 8:16 F 1 ");
  }
}

TEST_CASE("queueing §4.4: the last path's error with queue_if_no_path requeues, it waits for a reinstate") {
  sim_io a;
  auto d = make("1 queue_if_no_path 0 1 1 round-robin 0 1 0 8:16");
  CHECK(submit(*d, a) == disposition::dispatched);
  CHECK(complete_one(*d, "8:16", blk_status::transport) == disposition::requeue);
  CHECK(submit(*d, a) == disposition::delay_requeue);
  CHECK(a.completions == 0);
  message(*d, "reinstate_path 8:16");
  CHECK(d->backend().take_kick());
  CHECK(submit(*d, a) == disposition::dispatched);
  CHECK(complete_one(*d, "8:16", blk_status::ok) == disposition::completed);
  CHECK(a.completions == 1);
  CHECK(a.dispatches == 2);
}

TEST_CASE("queueing §3, §4.7: fail_if_no_path while I/O waits for a path fails it with an I/O error") {
  auto d = make(qifnp_one);
  message(*d, "fail_path 8:16");
  message(*d, "fail_path 8:32");
  d->io(3);
  CHECK(d->stats().queued == 3);
  message(*d, "fail_if_no_path");
  d->run();
  auto s = d->stats();
  CHECK(s.queued == 0);
  CHECK(s.failed == 3);
  all_done(*d, blk_status::ioerr);
  CHECK(table(*d) == plain_one_table);
}

// ------------------------------------------------------------------------------- completion classes

TEST_CASE("queueing §4.4: a non-path error completes with that status and never fails the path") {
  for (auto status : {blk_status::notsupp, blk_status::nospc, blk_status::target, blk_status::resv_conflict,
                      blk_status::medium, blk_status::protection}) {
    CAPTURE(mpath::to_string(status));
    sim_io a;
    auto d = make("0 0 1 1 round-robin 0 1 0 8:16");
    CHECK(submit(*d, a) == disposition::dispatched);
    CHECK(complete_one(*d, "8:16", status) == disposition::completed);
    CHECK(a.completions == 1);
    CHECK(a.final_status == status);
    CHECK(info(*d) == "2 0 0 0 1 1 A 0 1 0 8:16 A 0 ");
    CHECK(d->engine().event_nr() == 0);
  }
}

TEST_CASE("queueing §4.4: a path error fails the path and REQUEUEs, RESOURCE asks for DELAY_REQUEUE") {
  for (auto status : {blk_status::timeout, blk_status::transport, blk_status::ioerr, blk_status::again,
                      blk_status::dev_resource, blk_status::offline, blk_status::inval, blk_status::resource}) {
    CAPTURE(mpath::to_string(status));
    sim_io a;
    auto d = make("0 0 1 1 round-robin 0 2 0 8:16 8:32");
    CHECK(submit(*d, a) == disposition::dispatched);
    CHECK(a.last_device == "8:16");
    auto expected = status == blk_status::resource ? disposition::delay_requeue : disposition::requeue;
    CHECK(complete_one(*d, "8:16", status) == expected);
    CHECK(a.completions == 0);
    CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 0 8:16 F 1 8:32 A 0 ");
    CHECK(submit(*d, a) == disposition::dispatched);
    CHECK(a.last_device == "8:32");
    CHECK(complete_one(*d, "8:32", blk_status::ok) == disposition::completed);
    CHECK(a.completions == 1);
    CHECK(a.final_status == blk_status::ok);
    d->run();
    CHECK(d->take_events() == lines{"PATH_FAILED 8:16 1"});
  }
}

TEST_CASE("queueing §4.4: the queue-length counters drain on failed paths, one end_io per start_io") {
  auto d = make("0 0 1 1 queue-length 0 2 1 8:16 1 8:32 1");
  d->io(4);
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 1 8:16 A 0 2 8:32 A 0 2 ");
  message(*d, "fail_path 8:16");
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 1 8:16 F 1 2 8:32 A 0 2 ");
  CHECK(d->complete("8:16", 1, blk_status::ok) == 1);
  CHECK(d->complete("8:16", 1, blk_status::transport) == 1); // already failed: fail_count stays 1
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 1 8:16 F 1 0 8:32 A 0 2 ");
  d->run(); // the requeued one goes to 8:32
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 1 8:16 F 1 0 8:32 A 0 3 ");
  CHECK(d->complete("8:32", 3, blk_status::ok) == 3);
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 1 8:16 F 1 0 8:32 A 0 0 ");
  all_done(*d, blk_status::ok);
}

// ------------------------------------------------------------------------------- busy and current_path

TEST_CASE("queueing §4.10: busy() and current_path() basics") {
  auto d = make(qifnp_one);
  CHECK_FALSE(d->engine().busy()); // no current group yet: just try mapping
  auto p = d->engine().current_path();
  REQUIRE(p);
  CHECK((*p)->device() == "8:16");
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 0 8:16 A 0 8:32 A 0 "); // selection made PG1 current
  CHECK_FALSE(d->engine().busy());

  message(*d, "fail_path 8:16");
  message(*d, "fail_path 8:32");
  // No path, queue_if_no_path: request mode relies on mapping, so not busy; ioctls get ENOTCONN.
  CHECK_FALSE(d->engine().busy());
  auto q = d->engine().current_path();
  REQUIRE_FALSE(q);
  CHECK(q.err().code == ENOTCONN);
  message(*d, "fail_if_no_path");
  auto r = d->engine().current_path();
  REQUIRE_FALSE(r);
  CHECK(r.err().code == EIO);
  message(*d, "reinstate_path 8:32");
  auto s = d->engine().current_path();
  REQUIRE(s);
  CHECK((*s)->device() == "8:32");
}

TEST_CASE("queueing §4.10: current_path() is ENOTCONN while the group initialises, and starts pg_init") {
  auto d = make("0 1 alua 1 1 round-robin 0 1 0 8:16");
  auto p = d->engine().current_path();
  REQUIRE_FALSE(p);
  CHECK(p.err().code == ENOTCONN);
  CHECK(info(*d) == "2 1 1 0 1 1 A 0 1 0 8:16 A 0 ");
  CHECK(d->engine().busy());
  d->run();
  CHECK(d->handler()->activated() == lines{"8:16"});
  CHECK_FALSE(d->engine().busy());
  auto q = d->engine().current_path();
  REQUIRE(q);
  CHECK((*q)->device() == "8:16");
  CHECK(info(*d) == "2 0 1 0 1 1 A 0 1 0 8:16 A 0 ");
}

// ------------------------------------------------------------------------------- repeat_count

TEST_CASE("queueing, product.md §5: repeat_count is honoured: round-robin with 3 sends 3 I/Os in a row to a path") {
  auto d = make("0 0 1 1 round-robin 0 2 1 8:16 3 8:32 3");
  CHECK(table(*d) == "0 0 1 1 round-robin 0 2 1 8:16 3 8:32 3 ");
  d->io(9);
  lines got;
  for (const auto& io : d->ios())
    got.push_back(io.last_device);
  CHECK(got == lines{"8:16", "8:16", "8:16", "8:32", "8:32", "8:32", "8:16", "8:16", "8:16"});
  auto paths = d->backend().paths();
  CHECK(paths[0].dispatched == 6);
  CHECK(paths[1].dispatched == 3);

  // Failing the path being repeated ends its run at once.
  d->io(1);
  CHECK(d->ios().back().last_device == "8:32");
  message(*d, "fail_path 8:32");
  d->io(2);
  CHECK(d->ios()[10].last_device == "8:16");
  CHECK(d->ios()[11].last_device == "8:16");
  CHECK(d->complete("", 100, blk_status::ok) == 12);
  all_done(*d, blk_status::ok);
}

// ------------------------------------------------------------------------------- fault injection

TEST_CASE("queueing §4.4: a faulty path is failed by its first error, the I/O completes once on the other path") {
  auto d = make("0 0 1 1 round-robin 0 2 0 8:16 8:32");
  REQUIRE(d->backend().set_fault("8:16", true));
  d->io(1); // 8:16 answers `transport` at once: REQUEUE
  CHECK(info(*d) == "2 0 0 0 1 1 A 0 2 0 8:16 F 1 8:32 A 0 ");
  CHECK(d->stats().queued == 1);
  d->run();
  CHECK(d->ios()[0].last_device == "8:32");
  CHECK(d->ios()[0].dispatches == 2);
  d->io(3);
  for (const auto& io : d->ios())
    CHECK(io.last_device == "8:32");
  CHECK(d->complete("8:32", 4, blk_status::ok) == 4);
  all_done(*d, blk_status::ok);
  auto paths = d->backend().paths();
  CHECK(paths[0].dispatched == 1);
  CHECK(paths[1].dispatched == 4);
}

TEST_CASE("queueing §4.4: every path faulty, no queue_if_no_path: each I/O fails once with the original error") {
  auto d = make("0 0 1 1 round-robin 0 2 0 8:16 8:32");
  d->backend().set_fault("8:16", true);
  d->backend().set_fault("8:32", true);
  d->io(1);
  d->run();
  d->io(2);
  d->run();
  CHECK(info(*d) == "2 0 0 0 1 1 E 0 2 0 8:16 F 1 8:32 F 1 ");
  CHECK(d->ios()[0].final_status == blk_status::transport); // failed by the last path: its error
  CHECK(d->ios()[0].dispatches == 2);
  CHECK(d->ios()[1].final_status == blk_status::ioerr); // killed at map: no path
  CHECK(d->ios()[2].final_status == blk_status::ioerr);
  for (const auto& io : d->ios())
    CHECK(io.completions == 1);
  auto s = d->stats();
  CHECK(s.failed == 3);
  CHECK(s.queued == 0);
  CHECK(s.inflight == 0);
}

TEST_CASE("queueing §4.4: every path faulty with queue_if_no_path: held until a healthy path is reinstated") {
  auto d = make(qifnp_one);
  d->backend().set_fault("8:16", true);
  d->backend().set_fault("8:32", true);
  d->io(2);
  d->sleep(500);
  CHECK(info(*d) == "2 0 0 0 1 1 E 0 2 0 8:16 F 1 8:32 F 1 ");
  CHECK(d->stats().queued == 2);
  d->backend().set_fault("8:32", false);
  message(*d, "reinstate_path 8:32");
  d->run();
  CHECK(d->stats().inflight == 2);
  CHECK(d->complete("8:32", 2, blk_status::ok) == 2);
  all_done(*d, blk_status::ok);
  CHECK(d->take_events() == lines{"PATH_FAILED 8:16 1", "PATH_FAILED 8:32 0", "PATH_REINSTATED 8:32 1"});
}

// ------------------------------------------------------------------------------- busy with path back-pressure

namespace {

/// The simulation backend plus the optional `busy(h)` hook (§4.10 pgpath_busy).
struct busy_backend : mpath::testing::sim_backend {
  std::vector<bool> busy_paths = std::vector<bool>(8, false);
  bool busy(handle_type h) noexcept { return busy_paths[h]; }
};
using busy_engine = mpath::multipath<busy_backend, mpath::testing::manual_executor, mpath::testing::sim_traits>;

} // namespace

TEST_CASE("queueing §4.10: busy() guesses the next group and is busy only when all its active paths are") {
  busy_backend backend;
  mpath::testing::manual_executor exec;
  auto made = busy_engine::create(backend, exec, "0 0 2 1 round-robin 0 2 0 8:16 8:32 round-robin 0 1 0 8:48");
  REQUIRE(made);
  auto& m = **made;
  // Before any I/O the guess is next_pg, the initial group.
  backend.busy_paths = {true, true, false};
  CHECK(m.busy());

  sim_io a;
  a.nr_bytes = 4096;
  CHECK(m.submit(a) == disposition::dispatched); // mapping does not look at busy()
  CHECK(m.busy());                               // PG1 current, both its paths busy
  backend.busy_paths = {true, false, true};
  CHECK_FALSE(m.busy()); // one path of PG1 can take I/O
  REQUIRE(m.message("fail_path 8:32"));
  CHECK(m.busy()); // the failed path does not count
  REQUIRE(m.message("fail_path 8:16"));
  CHECK_FALSE(m.busy()); // no active path in the guessed group: try mapping

  // switch_group: current_pgpath is gone, so next_pg is the guess.
  REQUIRE(m.message("reinstate_path 8:16"));
  REQUIRE(m.message("switch_group 2"));
  backend.busy_paths = {false, false, true};
  CHECK(m.busy());
  backend.busy_paths = {true, true, false};
  CHECK_FALSE(m.busy());

  for (auto* io : backend.take_in_flight("", 10))
    CHECK(m.complete(*io, blk_status::ok) == disposition::completed);
  CHECK(a.completions == 1);
  m.shutdown([&] { exec.run(); });
}

TEST_CASE("queueing §4.10: busy() with no group to guess (initial-pg beyond the groups) is not busy") {
  busy_backend backend;
  mpath::testing::manual_executor exec;
  auto made = busy_engine::create(backend, exec, "0 0 1 9 round-robin 0 2 0 8:16 8:32");
  REQUIRE(made);
  backend.busy_paths = {true, true};
  CHECK_FALSE((*made)->busy());
}
