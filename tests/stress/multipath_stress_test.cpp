// Concurrency stress (run under TSan by the test command): submitter and completer threads against
// a control thread that fails and reinstates paths, switches groups and toggles queueing. Every
// I/O must complete exactly once, and the engine must end in a consistent state.

#include <mpath/multipath.hpp>
#include <mpath/testing/manual_executor.hpp>
#include <mpath/testing/scripted_handler.hpp>

#include <doctest/doctest.h>

#include "support/locked_queue.hpp"

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct stress_io : mpath::io_context {
  std::atomic<int> completions{0};
  std::atomic<bool> dispatched_to_failed{false};
};

/// I/Os wait in one shared queue until a completer thread takes them.
class stress_backend {
public:
  using handle_type = std::uint32_t;
  using io_type = stress_io;

  mpath::result<handle_type> open_path(std::string_view) { return handle_type(next_handle_++); }
  void submit(handle_type, stress_io& io) noexcept {
    std::lock_guard guard(mutex_);
    queue_.push_back(&io);
  }
  void io_done(stress_io& io, mpath::blk_status) noexcept {
    io.completions.fetch_add(1, std::memory_order_acq_rel);
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
  mpath::blk_status probe(handle_type) noexcept { return mpath::blk_status::ok; }

  stress_io* take() {
    std::lock_guard guard(mutex_);
    if (queue_.empty())
      return nullptr;
    stress_io* io = queue_.front();
    queue_.pop_front();
    return io;
  }
  std::size_t done() const noexcept { return done_.load(std::memory_order_acquire); }

private:
  std::mutex mutex_;
  std::deque<stress_io*> queue_;
  std::atomic<std::size_t> done_{0};
  std::uint32_t next_handle_ = 0;
};

struct stress_traits : mpath::default_traits {
  using hw_handlers = mpath::hw_handler_set<mpath::testing::scripted_handler>;
};

using engine_type = mpath::multipath<stress_backend, mpath::testing::manual_executor, stress_traits>;

/// I/Os the engine answered requeue / delay_requeue wait here for a submitter to retry them.
using requeue_list = mpath_test::locked_queue<stress_io>;

void run_stress(std::string_view table_text, unsigned seed) {
  constexpr int submitters = 2, completers = 2, per_submitter = 3000, control_ops = 400;
  stress_backend backend;
  mpath::testing::manual_executor exec;
  auto made = engine_type::create(backend, exec, table_text);
  REQUIRE(made);
  engine_type& engine = **made;
  std::vector<std::string> devices;
  for (auto& g : engine.groups())
    for (auto& p : g.paths())
      devices.push_back(p.device());

  std::vector<stress_io> ios(submitters * per_submitter);
  for (auto& io : ios)
    io.nr_bytes = 4096;
  requeue_list requeued;
  std::atomic<int> ops_done{0};
  std::atomic<bool> chaos{true};    // completers inject errors only while the control thread runs
  std::atomic<bool> give_up{false}; // the drain took too long: report instead of hanging
  std::atomic<int> submitters_done{0};

  auto handle = [&](stress_io& io, mpath::disposition d) {
    if (d == mpath::disposition::requeue || d == mpath::disposition::delay_requeue)
      requeued.push(&io);
  };

  // Every submitter but the last has its own channel (issue 11), the last submits without one;
  // they outlive every thread, so no channel goes with I/O in flight.
  std::vector<std::unique_ptr<engine_type::channel>> channels;
  for (int s = 0; s + 1 < submitters; ++s)
    channels.push_back(std::make_unique<engine_type::channel>(engine));
  auto submit = [&](int s, stress_io& io) {
    return std::size_t(s) < channels.size() ? engine.submit(io, *channels[std::size_t(s)]) : engine.submit(io);
  };

  std::vector<std::thread> threads;
  for (int s = 0; s < submitters; ++s)
    threads.emplace_back([&, s] {
      for (int i = 0; i < per_submitter; ++i) {
        // Pace submissions against the control thread so failovers land among in-flight I/O.
        while (ops_done.load() < std::int64_t(i) * control_ops / per_submitter)
          std::this_thread::yield();
        stress_io& io = ios[std::size_t(s * per_submitter + i)];
        handle(io, submit(s, io));
        if (stress_io* again = requeued.pop())
          handle(*again, submit(s, *again));
      }
      submitters_done.fetch_add(1);
    });
  for (int c = 0; c < completers; ++c)
    threads.emplace_back([&, c] {
      std::mt19937 rng(seed + unsigned(c));
      while (backend.done() < ios.size() && !give_up.load()) {
        stress_io* io = backend.take();
        if (!io) {
          if (submitters_done.load() == submitters)
            if (stress_io* again = requeued.pop())
              handle(*again, engine.submit(*again));
          std::this_thread::yield();
          continue;
        }
        unsigned roll = chaos.load() ? rng() % 100 : 99;
        auto status = roll < 5   ? mpath::blk_status::transport
                      : roll < 7 ? mpath::blk_status::medium
                      : roll < 8 ? mpath::blk_status::resource
                                 : mpath::blk_status::ok;
        handle(*io, engine.complete(*io, status));
      }
    });
  std::thread control([&] {
    std::mt19937 rng(seed * 7919u);
    for (int op = 0; op < control_ops; ++op, ops_done.fetch_add(1)) {
      const std::string& dev = devices[rng() % devices.size()];
      switch (rng() % 8) {
      case 0: (void)engine.message("fail_path " + dev); break;
      case 1:
      case 2: (void)engine.message("reinstate_path " + dev); break;
      case 3: (void)engine.message("switch_group " + std::to_string(1 + rng() % engine.groups().size())); break;
      case 4: (void)engine.message("disable_group 1"); break;
      case 5: (void)engine.message("enable_group 1"); break;
      case 6: (void)engine.status(mpath::status_type::info); break;
      default: (void)engine.message(rng() % 2 ? "queue_if_no_path" : "fail_if_no_path"); break;
      }
      exec.advance(3'000'000'000); // fire delayed pg_init retries and deferred work
      std::this_thread::yield();
    }
    // Stop injecting errors and bring every path back so held I/O can drain.
    chaos.store(false);
    (void)engine.message("queue_if_no_path");
    for (auto& g : engine.groups())
      (void)engine.message("enable_group " + std::to_string(g.number()));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    do { // repeated: an error rolled just before chaos stopped may still fail a path
      for (const auto& dev : devices)
        (void)engine.message("reinstate_path " + dev);
      exec.advance(3'000'000'000);
      std::this_thread::yield();
      if (std::chrono::steady_clock::now() > deadline)
        give_up.store(true);
    } while (backend.done() < ios.size() && !give_up.load());
  });

  for (auto& t : threads)
    t.join();
  control.join();
  // A completer may have rolled an error just before chaos stopped and failed a path after the
  // control thread's last reinstate round: with every thread joined, nothing can fail one now.
  for (const auto& dev : devices)
    (void)engine.message("reinstate_path " + dev);
  exec.run();

  INFO("engine status at the end: ", engine.status(mpath::status_type::info), " queued=", engine.queued(),
       " pg_init_in_progress=", engine.pg_init_in_progress(), " executor idle=", exec.idle());
  CHECK_FALSE(give_up.load());
  std::size_t exactly_once = 0;
  for (auto& io : ios)
    exactly_once += io.completions.load() == 1 ? 1 : 0;
  CHECK(exactly_once == ios.size());
  CHECK(engine.queued() == 0);
  CHECK(engine.nr_valid_paths() == devices.size());
  std::uint32_t failures = 0;
  for (auto& g : engine.groups())
    for (auto& p : g.paths())
      failures += p.fail_count();
  CHECK(failures > 10); // the run really failed paths under load
  CHECK(engine.event_nr() > 10);
  engine.shutdown([&] { exec.run(); });
}

} // namespace

TEST_CASE("stress: request mode, two groups, concurrent failover") {
  run_stress("1 queue_if_no_path 0 2 1 round-robin 0 2 1 a 1 b 1 queue-length 0 2 1 c 1 d 1", 1);
}

TEST_CASE("stress: bio mode holds and reissues I/O across failover") {
  run_stress("3 queue_if_no_path queue_mode bio 0 2 1 service-time 0 2 2 a 1 1 b 1 4 round-robin 0 2 1 c 2 d 1", 2);
}

TEST_CASE("stress: request mode with a hardware handler (pg_init on every switch)") {
  run_stress("3 queue_if_no_path pg_init_retries 3 1 alua 3 1 round-robin 0 1 1 a 1 round-robin 0 2 1 b 1 c 1 "
             "queue-length 0 1 1 d 1",
             3);
}
