// The monitor on mpath::thread_executor with the real clock, against I/O and messages from two
// other threads, then stopped and destroyed: meaningful under TSan (the monitor's state is touched
// by its tick, by engine events, by checker answers from another thread and by set()). Bounded:
// ticks of 5 ms, polling_interval 1, about 300 ms of run.

#include <mpath/health/monitor.hpp>
#include <mpath/health/probe_checker.hpp>
#include <mpath/mapped_device.hpp>
#include <mpath/multipath.hpp>
#include <mpath/testing/sim.hpp>
#include <mpath/testing/sim_checker.hpp>
#include <mpath/thread_executor.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using engine_type = mpath::multipath<mpath::testing::sim_backend, mpath::thread_executor, mpath::testing::sim_traits>;
using mpath::health::check_result;

template <class Checker>
void run_against_traffic(Checker& checker, mpath::testing::sim_backend& backend, engine_type& engine,
                         mpath::testing::sim_checker* script) {
  mpath::testing::sim_prioritizer prio;
  mpath::health::vector_log_sink sink;
  using monitor = mpath::health::health_monitor<engine_type, Checker, mpath::testing::sim_prioritizer>;
  auto m = std::make_unique<monitor>(engine, checker, prio, sink, "mp", mpath::health::health_settings{},
                                     mpath::health::monitor_options{5'000'000});
  backend.set_event_listener({&monitor::forward_event, m.get()});
  auto set = [&](std::string key, std::string value) {
    std::vector<std::string> v{value};
    REQUIRE(m->set(key, v));
  };
  set("polling_interval", "1");
  set("no_path_retry", "3");
  set("failback", "immediate");
  set("san_path_err_threshold", "2");
  set("san_path_err_forget_rate", "2");
  set("san_path_err_recovery_time", "3");
  m->start();

  std::atomic<bool> done{false};
  std::thread io([&] {
    std::vector<mpath::testing::sim_io> ios(4);
    std::uint64_t n = 0;
    while (!done.load()) {
      for (auto& x : ios) {
        x.nr_bytes = 4096;
        (void)engine.submit(x); // dispatched, or handed back (requeue) / completed at once
      }
      for (auto* x : backend.take_in_flight("", ios.size()))
        (void)engine.complete(*x, (++n % 7) == 0 ? mpath::blk_status::transport : mpath::blk_status::ok);
      std::this_thread::yield();
    }
    while (backend.in_flight_count() > 0)
      for (auto* x : backend.take_in_flight("", ios.size()))
        (void)engine.complete(*x, mpath::blk_status::ok);
  });
  std::thread control([&] {
    const char* paths[] = {"8:16", "8:32", "8:48"};
    const check_result results[] = {check_result::up, check_result::down, check_result::ghost, check_result::up};
    for (unsigned i = 0; !done.load(); ++i) {
      const char* p = paths[i % 3];
      if (script)
        script->set_result(p, results[(i / 3) % 4]);
      prio.set_priority(p, int(i % 50));
      (void)engine.message(std::string(i % 2 ? "fail_path " : "reinstate_path ") + p);
      if (i % 5 == 0) {
        std::vector<std::string> v{i % 10 ? "queue" : "2"};
        (void)m->set("no_path_retry", v);
      }
      (void)m->paths();
      (void)m->group_priority(1);
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (std::chrono::steady_clock::now() < until && m->ticks() < 40)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  done = true;
  control.join();
  io.join();
  CHECK(m->ticks() > 0);
  m->stop();
  backend.set_event_listener({});
  m.reset();
  CHECK_FALSE(sink.take().empty());
}

TEST_CASE("health monitor threads: scripted checker on a thread executor against I/O and messages") {
  mpath::thread_executor exec;
  mpath::testing::sim_backend backend;
  auto e = engine_type::create(backend, exec, "0 0 2 1 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 1 1 8:48 1");
  REQUIRE(e);
  mpath::testing::sim_checker checker;
  run_against_traffic(checker, backend, **e, &checker);
  (*e)->shutdown();
}

TEST_CASE("health monitor threads: probe checker answering from its own thread") {
  mpath::thread_executor exec;
  mpath::thread_executor probe_exec; // probes off the tick, as a deployment runs them
  mpath::testing::sim_backend backend;
  auto e = engine_type::create(backend, exec, "0 0 2 1 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 1 1 8:48 1");
  REQUIRE(e);
  {
    mpath::health::probe_checker<mpath::testing::sim_backend, mpath::thread_executor> checker(backend, probe_exec);
    std::thread flip([&] {
      for (int i = 0; i < 200; ++i) {
        backend.set_probe_result(i % 2 ? "8:32" : "8:16", i % 3 ? mpath::blk_status::ok : mpath::blk_status::transport);
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
    });
    run_against_traffic(checker, backend, **e, nullptr);
    flip.join();
  }
  (*e)->shutdown();
}

TEST_CASE("health monitor threads: a regroup asked for by the tick is reloaded by the owner's thread") {
  // The hand-off: the tick (on the executor's thread) records the regrouped table and calls the
  // listener; this thread, which owns the mapped_device, reloads while I/O runs.
  using device_type =
      mpath::mapped_device<mpath::testing::sim_backend, mpath::thread_executor, mpath::testing::sim_traits>;
  using monitor =
      mpath::health::health_monitor<engine_type, mpath::testing::sim_checker, mpath::testing::sim_prioritizer>;
  mpath::thread_executor exec;
  mpath::testing::sim_backend backend;
  auto d = device_type::create(backend, exec, "0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
  REQUIRE(d);
  auto& dev = **d;
  mpath::testing::sim_checker checker;
  mpath::testing::sim_prioritizer prio;
  mpath::health::vector_log_sink sink;
  prio.set_priority("8:16", 50);
  prio.set_priority("8:32", 10);
  auto m = std::make_unique<monitor>(dev.engine(), checker, prio, sink, "mp", mpath::health::health_settings{},
                                     mpath::health::monitor_options{5'000'000});
  backend.set_event_listener({&monitor::forward_event, m.get()});
  struct wake {
    std::mutex mutex;
    std::condition_variable cv;
    bool wanted = false;
  } w;
  m->set_reload_listener(
      [](void* ctx) noexcept {
        auto& x = *static_cast<wake*>(ctx);
        std::lock_guard guard(x.mutex);
        x.wanted = true;
        x.cv.notify_one();
      },
      &w);
  std::vector<std::string> v{"group_by_prio"};
  REQUIRE(m->set("path_grouping_policy", v));
  m->start();

  std::atomic<bool> done{false};
  std::thread io([&] {
    std::vector<mpath::testing::sim_io> ios(4);
    while (!done.load()) {
      for (auto& x : ios) {
        x.nr_bytes = 4096;
        (void)dev.submit(x);
      }
      for (auto* x : backend.take_in_flight("", ios.size()))
        (void)dev.complete(*x, mpath::blk_status::ok);
      std::this_thread::yield();
    }
    while (backend.in_flight_count() > 0)
      for (auto* x : backend.take_in_flight("", ios.size()))
        (void)dev.complete(*x, mpath::blk_status::ok);
  });
  {
    std::unique_lock lock(w.mutex);
    REQUIRE(w.cv.wait_for(lock, std::chrono::seconds(10), [&] { return w.wanted; }));
  }
  auto r = m->reload_if_wanted(dev);
  REQUIRE(r);
  CHECK(*r);
  CHECK(dev.reloads() == 1u);
  CHECK(dev.engine().status(mpath::status_type::table) == "0 0 2 1 round-robin 0 1 1 8:16 1 round-robin 0 1 1 8:32 1 ");
  // The grouping holds: a few more ticks ask for nothing.
  auto ticks = m->ticks();
  while (m->ticks() < ticks + 3)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK_FALSE(m->wanted_reload());
  done = true;
  io.join();
  m->stop();
  backend.set_event_listener({});
  m.reset();
  auto log = sink.take();
  CHECK(std::count(log.begin(), log.end(), std::string("mp: reload")) == 1);
  dev.shutdown();
}

} // namespace
