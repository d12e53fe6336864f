// Laws every selector obeys, checked over all five kernel selectors with one TEST_CASE_TEMPLATE:
//
//   1. select never returns a failed path;
//   2. select returns nothing if and only if no path is valid;
//   3. a failed path that is reinstated is selectable again;
//   4. start_io/end_io pairs leave the accounting at zero once nothing is in flight;
//   5. with equal paths and sequential I/O (one at a time), every path is used.
//
// Laws 1, 2 and 4 run on random operation sequences (fixed seeds, std::mt19937): select + start_io,
// end_io of a random in-flight I/O, fail_path of an active path, reinstate_path of a failed one,
// as the engine calls them. Time moves forward by a random step per operation (HST reads it).
// io-affinity has no notion of "equal" load balancing: its I/O is spread by submitting CPU, so
// for it "sequential I/O" is issued from the CPUs in turn (one path per CPU, on a configured
// 8-CPU machine). Every law also holds for the single-thread variants (single_thread_sync: no
// lock, plain counters), which an engine with a null_lock builds. A last case runs the accounting
// of the threaded ones from several threads at once, with paths failing and coming back, and
// checks that the counters still end at zero (run it under TSan).

#include <mpath/selectors.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using mpath::no_path;
using mpath::path_index;
using mpath::status_type;
namespace sel = mpath::selectors;

using ioa8 = sel::basic_io_affinity<sel::fixed_cpus<8>>;
constexpr std::size_t max_paths = 8; // io-affinity: one CPU per path

/// The variant of selector `S` that an engine with a null_lock builds.
template <class S> using single = mpath::rebind_selector_t<S, mpath::single_thread_sync>;

template <class S> constexpr bool is_ioa = std::is_same_v<S, ioa8> || std::is_same_v<S, single<ioa8>>;

/// `n` paths that are equal for the selector: default arguments (io-affinity: CPU i for path i).
template <class S> void make_equal(S& s, std::size_t n) {
  REQUIRE(s.create({}));
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<std::string> args;
    if constexpr (is_ioa<S>) {
      char mask[16];
      std::snprintf(mask, sizeof mask, "%x", 1u << i);
      args.push_back(mask);
    }
    REQUIRE(s.add_path(args));
  }
}

/// Issue the next I/O from `cpu` (io-affinity: the thread's CPU hint; the others do not care).
template <class S> void submitter(std::size_t cpu) {
  if constexpr (is_ioa<S>)
    sel::set_cpu_hint(int(cpu % max_paths));
}

/// Nothing accounted on `p`, read from the selector's own INFO status (law 4).
template <class S> bool idle(const S& s, path_index p) {
  std::string info;
  s.path_status(p, status_type::info, info);
  auto words = mpath::detail::split_words(info);
  if constexpr (requires { s.in_flight(p); }) // queue-length
    return words.at(0) == "0" && s.in_flight(p) == 0;
  else if constexpr (requires { s.in_flight_bytes(p); }) // service-time
    return words.at(0) == "0" && s.in_flight_bytes(p) == 0;
  else if constexpr (requires { s.outstanding(p); }) // historical-service-time
    return words.at(1) == "0" && s.outstanding(p) == 0;
  else
    return true; // round-robin and io-affinity account nothing per I/O
}

struct in_flight_io {
  path_index path;
  std::uint64_t bytes;
  std::uint64_t start_ns;
};

/// The engine's per-I/O use of a selector: select, then start_io on what it returned.
template <class S>
path_index dispatch(S& s, std::uint64_t bytes, std::uint64_t now, std::vector<in_flight_io>& flight) {
  path_index p = s.select(bytes, now);
  if (p != no_path) {
    if constexpr (mpath::AccountingSelector<S>)
      s.start_io(p, bytes);
    flight.push_back({p, bytes, now});
  }
  return p;
}

template <class S> void complete(S& s, const in_flight_io& io, std::uint64_t now) {
  if constexpr (mpath::AccountingSelector<S>)
    s.end_io(io.path, io.bytes, io.start_ns, now);
}

struct reset_hint {
  ~reset_hint() { sel::set_cpu_hint(-1); }
};

} // namespace

#define MPATH_THREADED_SELECTORS                                                                                       \
  sel::round_robin, sel::queue_length, sel::service_time, sel::historical_service_time, ioa8
#define MPATH_ALL_SELECTORS                                                                                            \
  MPATH_THREADED_SELECTORS, single<sel::round_robin>, single<sel::queue_length>, single<sel::service_time>,            \
      single<sel::historical_service_time>, single<ioa8>

TEST_CASE_TEMPLATE("selector laws 1, 2, 4: random operations", S, MPATH_ALL_SELECTORS) {
  reset_hint guard;
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    std::size_t n = 1 + rng() % max_paths;
    CAPTURE(n);
    S s;
    make_equal(s, n);
    std::vector<bool> failed(n, false);
    std::vector<in_flight_io> flight;
    std::uint64_t now = 1'000'000;
    std::size_t submitted = 0;

    for (int step = 0; step < 2000; ++step) {
      now += rng() % 3'000'000;
      unsigned op = rng() % 100;
      if (op < 55) {
        submitter<S>(rng());
        std::uint64_t bytes = 512u << (rng() % 8);
        path_index p = dispatch(s, bytes, now, flight);
        bool any_valid = std::count(failed.begin(), failed.end(), false) > 0;
        REQUIRE((p == no_path) == !any_valid); // law 2
        if (p != no_path) {
          REQUIRE(p < n);
          REQUIRE_FALSE(failed[p]); // law 1
          ++submitted;
        }
      } else if (op < 85) {
        if (!flight.empty()) {
          std::size_t i = rng() % flight.size();
          complete(s, flight[i], now);
          flight.erase(flight.begin() + std::ptrdiff_t(i));
        }
      } else if (op < 93) {
        path_index p = path_index(rng() % n);
        if (!failed[p]) {
          s.fail_path(p);
          failed[p] = true;
        }
      } else {
        path_index p = path_index(rng() % n);
        if (failed[p]) {
          REQUIRE(s.reinstate_path(p) == 0);
          failed[p] = false;
        }
      }
    }
    for (auto& io : flight) // drain, including I/O on paths that have failed since
      complete(s, io, now += 1000);
    for (path_index p = 0; p < n; ++p)
      CHECK(idle(s, p)); // law 4
    CHECK(submitted > 0);
  }
}

TEST_CASE_TEMPLATE("selector law 2: no valid path, no selection, one valid path, that one", S, MPATH_ALL_SELECTORS) {
  reset_hint guard;
  S empty;
  REQUIRE(empty.create({}));
  CHECK(empty.select(4096, 0) == no_path);

  S s;
  make_equal(s, 4);
  for (path_index p = 0; p < 4; ++p)
    s.fail_path(p);
  for (std::size_t i = 0; i < 8; ++i) {
    submitter<S>(i);
    CHECK(s.select(4096, 1000 * i) == no_path);
  }
  REQUIRE(s.reinstate_path(2) == 0);
  for (std::size_t i = 0; i < 8; ++i) {
    submitter<S>(i);
    CHECK(s.select(4096, 10'000 + 1000 * i) == 2);
  }
}

TEST_CASE_TEMPLATE("selector law 3: a reinstated path is selectable again", S, MPATH_ALL_SELECTORS) {
  reset_hint guard;
  constexpr std::size_t n = 4;
  for (path_index victim = 0; victim < n; ++victim) {
    CAPTURE(victim);
    S s;
    make_equal(s, n);
    std::vector<in_flight_io> flight;
    std::uint64_t now = 1'000'000;
    auto sequential = [&](std::size_t count) {
      std::set<path_index> used;
      for (std::size_t i = 0; i < count; ++i) {
        submitter<S>(i % n); // io-affinity: each path's CPU in turn
        path_index p = dispatch(s, 4096, now, flight);
        REQUIRE(p != no_path);
        used.insert(p);
        now += 100'000;
        complete(s, flight.back(), now);
        flight.pop_back();
      }
      return used;
    };
    sequential(3);
    s.fail_path(victim);
    CHECK(sequential(3 * n).count(victim) == 0);
    REQUIRE(s.reinstate_path(victim) == 0);
    CHECK(sequential(3 * n).count(victim) == 1);
  }
}

TEST_CASE_TEMPLATE("selector law 4: start/end pairs leave nothing accounted", S, MPATH_ALL_SELECTORS) {
  reset_hint guard;
  S s;
  make_equal(s, 3);
  std::vector<in_flight_io> flight;
  std::uint64_t now = 1'000'000;
  for (std::size_t i = 0; i < 50; ++i) {
    submitter<S>(i);
    dispatch(s, 4096 * (1 + i % 5), now += 1000, flight);
  }
  // Completions in another order than submissions.
  std::reverse(flight.begin(), flight.end());
  std::stable_partition(flight.begin(), flight.end(), [](const in_flight_io& io) { return io.path == 1; });
  for (auto& io : flight)
    complete(s, io, now += 5000);
  for (path_index p = 0; p < 3; ++p)
    CHECK(idle(s, p));
}

TEST_CASE_TEMPLATE("selector law 5: equal paths, sequential I/O, every path used", S, MPATH_ALL_SELECTORS) {
  reset_hint guard;
  for (std::size_t n = 1; n <= max_paths; ++n) {
    CAPTURE(n);
    S s;
    make_equal(s, n);
    std::vector<in_flight_io> flight;
    std::vector<std::size_t> uses(n, 0);
    std::uint64_t now = 1'000'000;
    for (std::size_t i = 0; i < 4 * n; ++i) {
      submitter<S>(i % n); // io-affinity: each path's CPU in turn
      path_index p = dispatch(s, 4096, now, flight);
      REQUIRE(p != no_path);
      ++uses[p];
      now += 200'000; // every path serves in the same time
      complete(s, flight.back(), now);
      flight.pop_back();
    }
    for (path_index p = 0; p < n; ++p) {
      CAPTURE(p);
      CHECK(uses[p] == 4); // not just used: used evenly
    }
  }
}

TEST_CASE_TEMPLATE("selector laws under concurrency: accounting ends at zero, no failed path after the fact", S,
                   MPATH_THREADED_SELECTORS) {
  reset_hint guard;
  constexpr std::size_t n = 4;
  S s;
  make_equal(s, n);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> clock{1'000'000};
  std::atomic<std::uint64_t> selected{0};

  auto worker = [&](unsigned id) {
    std::mt19937 rng(id);
    std::vector<in_flight_io> flight;
    std::size_t i = id;
    while (!stop.load(std::memory_order_relaxed)) {
      submitter<S>(i++);
      std::uint64_t now = clock.fetch_add(1000, std::memory_order_relaxed);
      if (dispatch(s, 4096, now, flight) != no_path)
        selected.fetch_add(1, std::memory_order_relaxed);
      if (flight.size() > 16 || (!flight.empty() && rng() % 2)) {
        std::size_t k = rng() % flight.size();
        complete(s, flight[k], clock.fetch_add(1000, std::memory_order_relaxed));
        flight.erase(flight.begin() + std::ptrdiff_t(k));
      }
    }
    for (auto& io : flight)
      complete(s, io, clock.fetch_add(1000, std::memory_order_relaxed));
    sel::set_cpu_hint(-1);
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 3; ++t)
    threads.emplace_back(worker, t + 1);

  // The engine's side: fail and reinstate under its own lock, concurrently with the I/O.
  std::mt19937 rng(99);
  std::vector<bool> failed(n, false);
  // Until the workers have done a fair amount of I/O (bounded in time for slow sanitizer runs).
  // The deadline is generous: on a loaded machine the workers may get no CPU for seconds.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int round = 0; round < 3000 || (selected.load() < 20'000 && std::chrono::steady_clock::now() < deadline);
       ++round) {
    path_index p = path_index(rng() % n);
    if (failed[p])
      s.reinstate_path(p);
    else
      s.fail_path(p);
    failed[p] = !failed[p];
    if (round % 64 == 0)
      std::this_thread::yield();
  }
  stop.store(true);
  for (auto& t : threads)
    t.join();

  CHECK(selected.load() > 0);
  for (path_index p = 0; p < n; ++p)
    CHECK(idle(s, p));
  // Once fail_path has returned, no later select returns that path.
  for (path_index p = 0; p < n; ++p)
    if (!failed[p])
      s.fail_path(p);
  for (std::size_t i = 0; i < 8; ++i) {
    submitter<S>(i);
    CHECK(s.select(4096, clock.load()) == no_path);
  }
}
