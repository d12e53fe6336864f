// The no-path timeout (kernel-target.md §4.8), an engine option here (product.md §5): armed when
// the last path goes with queue_if_no_path set, it turns queue_if_no_path off when the virtual
// clock passes, failing queued I/O. Cancelled by a reinstate and by fail_if_no_path; re-armed by
// the queue_if_no_path message.

#include <mpath/multipath.hpp>
#include <mpath/testing/sim.hpp>

#include "support/sim_helpers.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>

namespace {

using mpath::blk_status;
using mpath::status_type;
using mpath_test::device;
using mpath_test::info;
using mpath_test::message;
using mpath_test::table;

std::unique_ptr<device> make(std::string_view table_text, std::uint32_t timeout_secs) {
  mpath::engine_options options;
  options.queue_if_no_path_timeout_secs = timeout_secs;
  auto d = device::create(table_text, options);
  REQUIRE(d);
  return std::move(*d);
}

constexpr std::string_view qifnp = "1 queue_if_no_path 0 1 1 round-robin 0 2 0 8:16 8:32";
constexpr std::string_view qifnp_table = "1 queue_if_no_path 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ";
constexpr std::string_view plain_table = "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1 ";

void all_paths_down(device& d) {
  message(d, "fail_path 8:16");
  message(d, "fail_path 8:32");
}

} // namespace

TEST_CASE("timeout §4.8: fires after the configured time and fails the queued I/O") {
  auto d = make(qifnp, 10);
  d->sleep(3000); // no path lost yet: nothing armed
  CHECK(d->executor().idle());
  all_paths_down(*d); // armed at t = 3 s, due at 13 s
  d->io(2);
  CHECK(d->stats().queued == 2);

  d->sleep(9999);
  CHECK(table(*d) == qifnp_table);
  CHECK(d->stats().queued == 2);
  for (const auto& io : d->ios())
    CHECK(io.completions == 0);

  d->sleep(1);
  CHECK(table(*d) == plain_table);
  CHECK_FALSE(d->engine().queue_if_no_path());
  CHECK(d->stats().queued == 0);
  for (const auto& io : d->ios()) {
    CHECK(io.completions == 1);
    CHECK(io.final_status == blk_status::ioerr);
  }
  CHECK(info(*d) == "2 0 0 0 1 1 E 0 2 0 8:16 F 1 8:32 F 1 ");
  // New I/O is killed now, and resume does not bring queueing back (nothing was saved).
  d->suspend(false);
  d->resume();
  CHECK(table(*d) == plain_table);
}

TEST_CASE("timeout §4.8: a reinstate cancels it, the queued I/O goes to the path") {
  auto d = make(qifnp, 10);
  all_paths_down(*d);
  d->io(1);
  d->sleep(5000);
  message(*d, "reinstate_path 8:16");
  d->run();
  CHECK(d->ios()[0].last_device == "8:16");
  d->sleep(60'000);
  CHECK(table(*d) == qifnp_table);
  CHECK(d->executor().idle());
  CHECK(d->complete("8:16", 1, blk_status::ok) == 1);
  CHECK(d->ios()[0].completions == 1);
}

TEST_CASE("timeout §4.8: the queue_if_no_path message re-arms (restarts) the timer") {
  auto d = make(qifnp, 10);
  all_paths_down(*d); // due at 10 s
  d->io(1);
  d->sleep(5000);
  message(*d, "queue_if_no_path"); // restarted: due at 15 s
  d->sleep(9999);
  CHECK(table(*d) == qifnp_table);
  CHECK(d->ios()[0].completions == 0);
  d->sleep(1);
  CHECK(table(*d) == plain_table);
  CHECK(d->ios()[0].completions == 1);
  CHECK(d->ios()[0].final_status == blk_status::ioerr);

  // After it fired, the message turns queueing back on and arms it again.
  message(*d, "queue_if_no_path");
  CHECK(table(*d) == qifnp_table);
  d->io(1);
  CHECK(d->stats().queued == 1);
  d->sleep(10'000);
  CHECK(table(*d) == plain_table);
  CHECK(d->ios()[1].completions == 1);
  CHECK(d->ios()[1].final_status == blk_status::ioerr);
}

TEST_CASE("timeout §4.8: fail_if_no_path cancels it") {
  auto d = make(qifnp, 10);
  all_paths_down(*d);
  message(*d, "fail_if_no_path");
  d->run(); // delivers the path events
  CHECK(d->executor().idle());
  d->sleep(20'000);
  CHECK(table(*d) == plain_table);
}

TEST_CASE("timeout §4.8: not armed without queue_if_no_path, nor when the option is 0") {
  {
    auto d = make("0 0 1 1 round-robin 0 2 0 8:16 8:32", 10);
    all_paths_down(*d);
    d->run();
    CHECK(d->executor().idle());
  }
  {
    auto d = make(qifnp, 0);
    all_paths_down(*d);
    d->run();
    CHECK(d->executor().idle());
    d->io(1);
    d->sleep(3'600'000);
    CHECK(table(*d) == qifnp_table);
    CHECK(d->ios()[0].completions == 0);
  }
}

TEST_CASE("timeout §4.8: the option is read when the timer is armed, not when it fires") {
  auto d = make("1 queue_if_no_path 0 1 1 round-robin 0 3 0 8:16 8:32 8:48", 10);
  message(*d, "fail_path 8:16");
  message(*d, "fail_path 8:32");
  message(*d, "fail_path 8:48"); // armed at 0, due at 10 s
  d->engine().set_queue_if_no_path_timeout(30);
  d->sleep(10'000);
  CHECK(table(*d) == "0 0 1 1 round-robin 0 3 1 8:16 1 8:32 1 8:48 1 ");

  message(*d, "queue_if_no_path"); // armed with the new value: due at 40 s
  d->sleep(29'999);
  CHECK(table(*d) == "1 queue_if_no_path 0 1 1 round-robin 0 3 1 8:16 1 8:32 1 8:48 1 ");
  d->sleep(1);
  CHECK(table(*d) == "0 0 1 1 round-robin 0 3 1 8:16 1 8:32 1 8:48 1 ");
}

TEST_CASE("timeout §1.4, §4.8: a table without groups and with queue_if_no_path is armed at construction") {
  auto d = make("1 queue_if_no_path 0 0 0", 5);
  CHECK(table(*d) == "1 queue_if_no_path 0 0 0 ");
  CHECK(info(*d) == "2 1 0 0 0 0 ");
  d->io(1);
  CHECK(d->stats().queued == 1);
  d->sleep(4999);
  CHECK(table(*d) == "1 queue_if_no_path 0 0 0 ");
  d->sleep(1);
  CHECK(table(*d) == "0 0 0 0 ");
  CHECK(d->ios()[0].completions == 1);
  CHECK(d->ios()[0].final_status == blk_status::ioerr);
  CHECK(info(*d) == "2 0 0 0 0 0 ");
}

TEST_CASE("timeout §4.8: in bio mode the held I/O fails when it fires") {
  auto d = make("3 queue_if_no_path queue_mode bio 0 1 1 round-robin 0 1 0 8:16", 2);
  message(*d, "fail_path 8:16");
  d->io(2);
  CHECK(d->engine().queued() == 2);
  d->sleep(2000);
  CHECK(d->engine().queued() == 0);
  CHECK(table(*d) == "2 queue_mode bio 0 1 1 round-robin 0 1 1 8:16 1 ");
  for (const auto& io : d->ios()) {
    CHECK(io.completions == 1);
    CHECK(io.final_status == blk_status::ioerr);
  }
}

TEST_CASE("timeout §4.7, §4.8: firing during a flushing suspend also clears the saved copy, resume keeps it off") {
  auto d = make(qifnp, 10);
  all_paths_down(*d); // armed, due at 10 s; a suspend does not stop it
  d->suspend(false);
  CHECK(table(*d) == plain_table);
  d->sleep(10'000);
  d->resume();
  CHECK(table(*d) == plain_table);
  CHECK_FALSE(d->engine().queue_if_no_path());
}

TEST_CASE("timeout §4.7, §4.8: resume does not arm it, a later path failure does") {
  auto d = make("1 queue_if_no_path 0 1 1 round-robin 0 1 0 8:16", 10);
  d->suspend(false);
  d->resume();
  d->run();
  CHECK(d->executor().idle());
  message(*d, "fail_path 8:16");
  d->io(1);
  d->sleep(10'000);
  CHECK(table(*d) == "0 0 1 1 round-robin 0 1 1 8:16 1 ");
  CHECK(d->ios()[0].completions == 1);
  CHECK(d->ios()[0].final_status == blk_status::ioerr);
}
