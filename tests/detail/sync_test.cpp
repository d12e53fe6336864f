// detail/sync.hpp's checked locking: checked_lock knows its holder, assert_held reports a caller
// without the lock, and (in builds with MPATH_CHECK_LOCKS, as the ci and tsan presets) the engine
// runs every kind of state change with its lock assertions on and none of them fires.

#include <mpath/detail/sync.hpp>
#include <mpath/multipath.hpp>
#include <mpath/testing/sim.hpp>

#include "support/sim_helpers.hpp"

#include <doctest/doctest.h>

#include <mutex>
#include <string>
#include <thread>
#include <type_traits>

namespace {

int violations = 0;
std::string last_violation;

/// Counts lock violations instead of aborting, for the lifetime of the object.
struct counting_violations {
  decltype(mpath::detail::lock_violation) saved = mpath::detail::lock_violation;
  counting_violations() {
    violations = 0;
    mpath::detail::lock_violation = [](const char* function) noexcept {
      ++violations;
      last_violation = function;
    };
  }
  ~counting_violations() { mpath::detail::lock_violation = saved; }
};

} // namespace

TEST_CASE("sync: checked_lock knows whether the calling thread holds it") {
  mpath::checked_lock<std::mutex> m;
  CHECK_FALSE(m.held_by_this_thread());
  m.lock();
  CHECK(m.held_by_this_thread());
  bool other_sees_held = true;
  std::thread([&] { other_sees_held = m.held_by_this_thread(); }).join();
  CHECK_FALSE(other_sees_held); // held, but not by that thread
  m.unlock();
  CHECK_FALSE(m.held_by_this_thread());
  REQUIRE(m.try_lock());
  CHECK(m.held_by_this_thread());
  m.unlock();
}

TEST_CASE("sync: assert_held reports a caller without the lock, and a plain lock is never checked") {
  counting_violations count;
  mpath::checked_lock<mpath::spinlock> s;
  mpath::detail::assert_held(s, "f_locked");
  CHECK(violations == 1);
  CHECK(last_violation == "f_locked");
  {
    std::lock_guard guard(s);
    mpath::detail::assert_held(s, "f_locked");
  }
  CHECK(violations == 1);
  std::mutex plain;
  mpath::detail::assert_held(plain, "g_locked"); // nothing to ask a plain mutex
  CHECK(violations == 1);
}

#if MPATH_CHECK_LOCKS
static_assert(std::is_same_v<mpath::detail::engine_lock_t<std::mutex>, mpath::checked_lock<std::mutex>>);

TEST_CASE("sync: with MPATH_CHECK_LOCKS every engine state change runs with its lock held") {
  counting_violations count;
  // Request mode with a handler (pg_init, retries, bypass) and bio mode (the worker, held I/O).
  for (const char* t :
       {"1 queue_if_no_path 1 alua 2 1 round-robin 0 2 1 8:16 1 8:32 1 queue-length 0 1 1 8:48 1",
        "3 queue_if_no_path queue_mode bio 0 2 1 service-time 0 1 2 8:16 1 1 round-robin 0 1 1 8:32 1"}) {
    CAPTURE(t);
    auto d = mpath_test::make(t);
    d->io(4);
    d->run();
    d->complete("8:16", 1, mpath::blk_status::transport);
    d->run();
    for (const char* m : {"fail_path 8:32", "reinstate_path 8:16", "switch_group 2", "disable_group 1",
                          "enable_group 1", "fail_if_no_path", "queue_if_no_path"})
      CHECK(d->engine().message(m));
    d->engine().set_queue_if_no_path_timeout(1);
    for (const auto& p : d->backend().paths()) // every path gone: I/O queues
      CHECK(d->engine().message("fail_path " + p.device));
    d->io(2);
    d->sleep(1500); // the no-path timeout fires and fails the held I/O
    CHECK(d->engine().message("reinstate_path 8:32"));
    d->suspend(true);
    d->resume();
    (void)d->engine().probe_paths();
    (void)d->engine().current_path();
    (void)d->engine().busy();
    d->complete("", ~std::size_t{0}, mpath::blk_status::ok);
    d->run();
  }
  CHECK(violations == 0);
}
#endif
