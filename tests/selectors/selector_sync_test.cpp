// Selectors take their lock and counters from the engine's traits (detail/sync.hpp):
// `selector_sync_for<Traits>` is the traits' `selector_sync` if they declare one, else
// `single_thread_sync` (null_lock, plain counters) for an engine whose lock is `null_lock`, else
// `threaded_sync` (spinlock, std::atomic). Checked here:
//
//   - at compile time, which policy each kind of traits gets and what the rebound selectors hold;
//   - that the policy is really used: a counting lock and counting counters, given as the traits'
//     `selector_sync`, see every selector's locking and accounting after I/O through the engine;
//   - that a null_lock engine behaves exactly as the default one: the same INFO and TABLE status,
//     events and path choices after the same random sequence of I/O, completions, errors,
//     fail_path/reinstate_path and time, over every selector.

#include <mpath/multipath.hpp>
#include <mpath/selectors.hpp>
#include <mpath/testing/sim.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace {

namespace sel = mpath::selectors;
using mpath::blk_status;
using mpath::null_lock;
using mpath::plain_counter;
using mpath::single_thread_sync;
using mpath::status_type;
using mpath::threaded_sync;
using mpath::testing::sim_device;
using mpath::testing::sim_traits;

// ------------------------------------------------------------------------ which policy, which types

struct null_lock_traits : sim_traits {
  using lock_type = null_lock;
};
struct threaded_despite_null_lock : null_lock_traits {
  using selector_sync = threaded_sync;
};

static_assert(std::is_same_v<mpath::selector_sync_for<mpath::default_traits>, threaded_sync>);
static_assert(std::is_same_v<mpath::selector_sync_for<sim_traits>, threaded_sync>);
static_assert(std::is_same_v<mpath::selector_sync_for<null_lock_traits>, single_thread_sync>);
static_assert(std::is_same_v<mpath::selector_sync_for<threaded_despite_null_lock>, threaded_sync>);
static_assert(mpath::SelectorSync<threaded_sync> && mpath::SelectorSync<single_thread_sync>);

// The default engine keeps exactly today's selectors.
static_assert(
    std::is_same_v<mpath::rebind_selectors_t<mpath::default_selectors, threaded_sync>, mpath::default_selectors>);
static_assert(std::is_same_v<mpath::multipath<mpath::testing::sim_backend, mpath::testing::manual_executor,
                                              mpath::default_traits>::selector_set_type,
                             mpath::default_selectors>);
static_assert(std::is_same_v<sel::round_robin::lock_type, mpath::spinlock>);
static_assert(std::is_same_v<sel::queue_length::sync_type::counter<std::int64_t>, std::atomic<std::int64_t>>);

// A null_lock engine: every selector single-threaded, no lock, no atomics.
using null_lock_engine = sim_device<null_lock_traits>::engine_type;
using single_thread_set = null_lock_engine::selector_set_type;
static_assert(std::is_same_v<
              single_thread_set,
              mpath::selector_set<
                  sel::basic_round_robin<single_thread_sync>, sel::basic_queue_length<single_thread_sync>,
                  sel::basic_service_time<single_thread_sync>, sel::basic_historical_service_time<single_thread_sync>,
                  sel::basic_io_affinity<sel::system_cpus, single_thread_sync>>>);
static_assert(std::is_same_v<null_lock_engine::selector_type, mpath::any_selector<single_thread_set>>);
static_assert(std::is_same_v<sel::basic_round_robin<single_thread_sync>::lock_type, null_lock>);
static_assert(std::is_same_v<sel::basic_queue_length<single_thread_sync>::lock_type, null_lock>);
static_assert(std::is_same_v<sel::basic_service_time<single_thread_sync>::lock_type, null_lock>);
static_assert(std::is_same_v<sel::basic_historical_service_time<single_thread_sync>::lock_type, null_lock>);
template <class S> constexpr bool plain_counters = std::is_same_v<typename S::sync_type, single_thread_sync>;
static_assert(plain_counters<sel::basic_queue_length<single_thread_sync>> &&
              plain_counters<sel::basic_service_time<single_thread_sync>> &&
              plain_counters<sel::basic_historical_service_time<single_thread_sync>> &&
              plain_counters<sel::basic_io_affinity<sel::system_cpus, single_thread_sync>>);
static_assert(std::is_same_v<single_thread_sync::counter<std::uint64_t>, plain_counter<std::uint64_t>>);
static_assert(sizeof(plain_counter<std::uint64_t>) == sizeof(std::uint64_t));
static_assert(std::is_trivially_destructible_v<plain_counter<std::uint64_t>>);
static_assert(!std::is_copy_constructible_v<plain_counter<int>>); // as std::atomic
static_assert(mpath::PathSelector<sel::basic_round_robin<single_thread_sync>>);
static_assert(mpath::AccountingSelector<sel::basic_queue_length<single_thread_sync>>);

// Rebinding keeps io-affinity's CPUs and leaves a selector without rebind_sync alone.
static_assert(std::is_same_v<mpath::rebind_selector_t<sel::basic_io_affinity<sel::fixed_cpus<8>>, single_thread_sync>,
                             sel::basic_io_affinity<sel::fixed_cpus<8>, single_thread_sync>>);
struct user_selector {
  static constexpr std::string_view name = "user";
  static constexpr unsigned table_args = 0;
  static constexpr unsigned info_args = 0;
  mpath::result<void> create(std::span<const std::string>) { return {}; }
  mpath::result<void> add_path(std::span<const std::string>) { return {}; }
  mpath::path_index select(std::uint64_t, std::uint64_t) noexcept { return 0; }
  void fail_path(mpath::path_index) noexcept {}
  int reinstate_path(mpath::path_index) noexcept { return 0; }
  void group_status(std::string&) const {}
  void path_status(mpath::path_index, status_type, std::string&) const {}
};
static_assert(
    std::is_same_v<mpath::rebind_selectors_t<mpath::selector_set<sel::round_robin, user_selector>, single_thread_sync>,
                   mpath::selector_set<sel::basic_round_robin<single_thread_sync>, user_selector>>);

// ------------------------------------------------------------------------ the policy is used

/// Counts lock acquisitions, and counter loads, stores and read-modify-writes, made through the
/// policy (single-threaded: the simulation runs on this thread).
struct sync_counts {
  static inline std::size_t locks = 0, loads = 0, stores = 0, rmws = 0;
  static void reset() { locks = loads = stores = rmws = 0; }
};

struct counting_lock {
  void lock() noexcept { ++sync_counts::locks; }
  bool try_lock() noexcept {
    ++sync_counts::locks;
    return true;
  }
  void unlock() noexcept {}
};

template <class T> class counting_counter {
public:
  counting_counter() = default;
  counting_counter(T v) : v_(v) {}
  counting_counter(const counting_counter&) = delete;
  counting_counter& operator=(const counting_counter&) = delete;
  T load(std::memory_order = std::memory_order_seq_cst) const noexcept {
    ++sync_counts::loads;
    return v_;
  }
  void store(T v, std::memory_order = std::memory_order_seq_cst) noexcept {
    ++sync_counts::stores;
    v_ = v;
  }
  T exchange(T v, std::memory_order = std::memory_order_seq_cst) noexcept {
    ++sync_counts::rmws;
    T old = v_;
    v_ = v;
    return old;
  }
  T fetch_add(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    ++sync_counts::rmws;
    T old = v_;
    v_ = T(v_ + d);
    return old;
  }
  T fetch_sub(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    ++sync_counts::rmws;
    T old = v_;
    v_ = T(v_ - d);
    return old;
  }

private:
  T v_{};
};

struct counting_sync {
  using lock_type = counting_lock;
  template <class T> using counter = counting_counter<T>;
};
struct counting_traits : sim_traits {
  using selector_sync = counting_sync;
};

/// Four I/Os through a one-group device, completed, then fail_path and reinstate_path of `a`.
void run_through_engine(std::string_view table_text) {
  sel::scoped_cpu_hint cpu(0); // io-affinity: CPU 0, which path a serves
  auto made = sim_device<counting_traits>::create(table_text);
  REQUIRE(made);
  auto& d = **made;
  sync_counts::reset();
  d.io(4);
  d.run();
  d.complete("", 4, blk_status::ok);
  REQUIRE(d.engine().message("fail_path a"));
  REQUIRE(d.engine().message("reinstate_path a"));
  d.io(1);
  d.complete("", 1, blk_status::ok);
  CHECK(d.stats().ok == 5);
}

} // namespace

TEST_CASE("selector sync: selectors lock and count through the traits' selector_sync") {
  SUBCASE("round-robin") {
    run_through_engine("0 0 1 1 round-robin 0 2 1 a 1 b 1");
    CHECK(sync_counts::locks >= 5 + 2); // every select, the fail and the reinstate
  }
  SUBCASE("queue-length") {
    run_through_engine("0 0 1 1 queue-length 0 2 1 a 1 b 1");
    CHECK(sync_counts::locks >= 5 + 2);
    CHECK(sync_counts::rmws == 2 * 5); // start_io +1 and end_io -1 of every I/O
    CHECK(sync_counts::loads > 0);
  }
  SUBCASE("service-time") {
    run_through_engine("0 0 1 1 service-time 0 2 2 a 1 1 b 1 2");
    CHECK(sync_counts::locks >= 5 + 2);
    CHECK(sync_counts::rmws == 2 * 5);
    CHECK(sync_counts::loads > 0);
  }
  SUBCASE("historical-service-time") {
    run_through_engine("0 0 1 1 historical-service-time 0 2 1 a 0 b 0");
    CHECK(sync_counts::locks >= 5 + 5 + 2); // select, end_io (the path's record), fail, reinstate
    CHECK(sync_counts::rmws == 5);          // start_io's +1 on the selector's own channel
    CHECK(sync_counts::stores > 0);
    CHECK(sync_counts::loads > 0);
  }
  SUBCASE("io-affinity") {
    run_through_engine("0 0 1 1 io-affinity 0 2 1 a 1 b 2");
    CHECK(sync_counts::locks == 0);  // it has no lock
    CHECK(sync_counts::stores >= 2); // the failed flag, by fail_path and reinstate_path
    CHECK(sync_counts::loads >= 5);  // the failed flag, by every select
  }
}

TEST_CASE("selector sync: a default engine's selectors do not use a policy they were not given") {
  sync_counts::reset();
  auto made = sim_device<>::create("0 0 1 1 queue-length 0 2 1 a 1 b 1");
  REQUIRE(made);
  (*made)->io(4);
  (*made)->complete("", 4, blk_status::ok);
  CHECK(sync_counts::locks + sync_counts::loads + sync_counts::stores + sync_counts::rmws == 0);
}

// ------------------------------------------------------------------------ same behaviour

namespace {

/// Every selector, io-affinity on a configured 4-CPU machine so that tables do not depend on
/// this one.
using equal_selectors = mpath::selector_set<sel::round_robin, sel::queue_length, sel::service_time,
                                            sel::historical_service_time, sel::basic_io_affinity<sel::fixed_cpus<4>>>;
struct threaded_traits : sim_traits {
  using selectors = equal_selectors;
};
struct reactor_traits : threaded_traits {
  using lock_type = null_lock;
};
static_assert(std::is_same_v<sim_device<threaded_traits>::engine_type::selector_set_type, equal_selectors>);
static_assert(std::is_same_v<sim_device<reactor_traits>::engine_type::selector_set_type,
                             mpath::rebind_selectors_t<equal_selectors, single_thread_sync>>);

struct op {
  enum kind { io, complete, error, fail, reinstate, sleep, run } what;
  std::size_t count;
  std::uint64_t bytes;
  std::string device;
  int cpu;
};

op random_op(std::mt19937& rng, const std::vector<std::string>& devices) {
  op o{};
  unsigned r = rng() % 100;
  o.what = r < 40   ? op::io
           : r < 65 ? op::complete
           : r < 72 ? op::error
           : r < 80 ? op::fail
           : r < 88 ? op::reinstate
           : r < 95 ? op::sleep
                    : op::run;
  o.count = 1 + rng() % 3;
  o.bytes = 512u << (rng() % 6);
  o.device = rng() % 4 == 0 ? std::string() : devices[rng() % devices.size()];
  o.cpu = int(rng() % 4);
  if (o.what == op::sleep)
    o.count = rng() % 30;
  if ((o.what == op::fail || o.what == op::reinstate) && o.device.empty())
    o.device = devices[0];
  return o;
}

/// What the op did, as far as it shows outside the engine.
template <class Device> std::string apply(Device& d, const op& o) {
  switch (o.what) {
  case op::io: {
    sel::scoped_cpu_hint cpu(o.cpu);
    d.io(o.count, o.bytes);
    return {};
  }
  case op::complete: return std::to_string(d.complete(o.device, o.count, blk_status::ok));
  case op::error: return std::to_string(d.complete(o.device, 1, blk_status::ioerr));
  case op::fail: return d.engine().message("fail_path " + o.device) ? "ok" : "refused";
  case op::reinstate: return d.engine().message("reinstate_path " + o.device) ? "ok" : "refused";
  case op::sleep: d.sleep(o.count); return {};
  case op::run: d.run(); return {};
  }
  return {};
}

template <class Device> std::string snapshot(Device& d) {
  std::string s = d.engine().status(status_type::info) + "| " + d.engine().status(status_type::table) + "|";
  for (const auto& e : d.take_events())
    s += " " + e;
  auto st = d.stats();
  s += " | " + std::to_string(st.submitted) + " " + std::to_string(st.ok) + " " + std::to_string(st.failed) + " " +
       std::to_string(st.queued) + " " + std::to_string(st.inflight);
  return s;
}

} // namespace

TEST_CASE("selector sync: a null_lock engine behaves exactly as the default one") {
  struct scenario {
    std::string_view table;
    std::vector<std::string> devices;
  };
  const scenario scenarios[] = {
      {"1 queue_if_no_path 0 2 1 round-robin 0 3 1 a 2 b 1 c 3 queue-length 0 2 1 d 1 e 2", {"a", "b", "c", "d", "e"}},
      {"0 0 2 1 service-time 0 3 2 a 1 1 b 2 4 c 1 0 historical-service-time 2 900 2 2 1 d 0 e 0",
       {"a", "b", "c", "d", "e"}},
      {"1 queue_if_no_path 0 2 1 historical-service-time 0 3 1 a 0 b 0 c 0 service-time 0 2 1 d 3 e 1",
       {"a", "b", "c", "d", "e"}},
      {"0 0 2 1 io-affinity 0 3 1 a 3 b 4 c 8 queue-length 0 2 1 d 1 e 1", {"a", "b", "c", "d", "e"}},
  };
  for (const auto& sc : scenarios) {
    CAPTURE(sc.table);
    for (std::uint32_t seed = 1; seed <= 8; ++seed) {
      CAPTURE(seed);
      auto threaded = sim_device<threaded_traits>::create(sc.table);
      auto reactor = sim_device<reactor_traits>::create(sc.table);
      REQUIRE(threaded);
      REQUIRE(reactor);
      auto& a = **threaded;
      auto& b = **reactor;
      REQUIRE(snapshot(a) == snapshot(b));
      std::mt19937 rng(seed);
      for (int step = 0; step < 300; ++step) {
        CAPTURE(step);
        op o = random_op(rng, sc.devices);
        REQUIRE(apply(a, o) == apply(b, o));
        REQUIRE(snapshot(a) == snapshot(b));
      }
      a.sleep(1000); // let everything finish the same way too
      b.sleep(1000);
      a.complete("", 1000, blk_status::ok);
      b.complete("", 1000, blk_status::ok);
      CHECK(snapshot(a) == snapshot(b));
      REQUIRE(a.ios().size() == b.ios().size());
      for (std::size_t i = 0; i < a.ios().size(); ++i) {
        CAPTURE(i);
        CHECK(a.ios()[i].last_device == b.ios()[i].last_device); // the same path choices
        CHECK(a.ios()[i].dispatches == b.ios()[i].dispatches);
      }
    }
  }
}
