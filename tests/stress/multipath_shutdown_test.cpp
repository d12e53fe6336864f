// Shutdown lifetime (run under TSan and ASan by the test command): an engine destroyed while its
// deferred work is running on a thread_executor, or while a hardware handler's completion is still
// inside the engine, must wait for them. Each case repeats the race many times with a jittered
// delay, and checks after every destruction that no engine code is still running; the sanitizers
// see the use-after-free a missed wait would be.

#include <mpath/multipath.hpp>
#include <mpath/thread_executor.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

void busy_wait(std::chrono::microseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until)
    std::this_thread::yield();
}

/// A backend whose event and kick callbacks take a while and say when they are running.
struct slow_callback_backend {
  using handle_type = int;
  using io_type = mpath::io_context;

  mpath::result<int> open_path(std::string_view) { return 0; }
  void submit(int, io_type&) noexcept {}
  void io_done(io_type&, mpath::blk_status) noexcept {}
  mpath::blk_status probe(int) noexcept { return mpath::blk_status::ok; }

  void on_event(const mpath::path_event& e) noexcept {
    inside.store(true);
    busy_wait(100us);
    std::string device(e.device); // the path's token lives in the engine: freed memory if it is gone
    {
      std::lock_guard guard(mutex);
      devices.push_back(std::move(device));
    }
    inside.store(false);
  }
  void kick_requeue() noexcept {
    inside.store(true);
    busy_wait(100us);
    kicks.fetch_add(1);
    inside.store(false);
  }

  std::atomic<bool> inside{false};
  std::atomic<int> kicks{0};
  std::mutex mutex;
  std::vector<std::string> devices;
};

/// Completes activations later, from a thread of its own (as an ALUA handler's SCSI commands do).
class completion_thread {
public:
  completion_thread() : thread_([this] { loop(); }) {}
  ~completion_thread() {
    {
      std::lock_guard guard(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  void post(mpath::activation_done done) {
    {
      std::lock_guard guard(mutex_);
      queue_.push_back(done);
    }
    wake_.notify_one();
  }

private:
  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty())
        return;
      auto done = queue_.front();
      queue_.pop_front();
      lock.unlock();
      busy_wait(20us);
      done(mpath::activation_result::ok);
      lock.lock();
    }
  }
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<mpath::activation_done> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

completion_thread* g_completions = nullptr;

struct thread_completing_handler {
  static bool accepts(std::string_view name) noexcept { return name == "later"; }
  mpath::result<void> set_params(std::span<const std::string>) { return {}; }
  template <class P> void activate(P&, mpath::activation_done done) noexcept { g_completions->post(done); }
};

struct later_traits : mpath::default_traits {
  using hw_handlers = mpath::hw_handler_set<thread_completing_handler>;
};

} // namespace

TEST_CASE("multipath shutdown: event delivery running on the executor finishes before the engine is freed") {
  using engine_type = mpath::multipath<slow_callback_backend, mpath::thread_executor>;
  mpath::thread_executor exec;
  slow_callback_backend backend;
  constexpr int rounds = 300;
  int still_running = 0;
  for (int i = 0; i < rounds; ++i) {
    auto e = engine_type::create(backend, exec, "0 0 1 1 round-robin 0 2 1 a 1 b 1");
    REQUIRE(e);
    REQUIRE((*e)->message("fail_path a")); // posts event delivery on the executor's thread
    busy_wait(std::chrono::microseconds(i % 7 * 25));
    e->reset();
    still_running += backend.inside.load() ? 1 : 0;
  }
  CHECK(still_running == 0);
  // Every event was delivered exactly once: by the executor, or by shutdown if it never ran.
  std::lock_guard guard(backend.mutex);
  CHECK(backend.devices.size() == std::size_t(rounds));
  for (const auto& d : backend.devices)
    CHECK(d == "a");
}

TEST_CASE("multipath shutdown: an activation completed from the handler's thread has left the engine") {
  using engine_type = mpath::multipath<slow_callback_backend, mpath::thread_executor, later_traits>;
  completion_thread completions;
  g_completions = &completions;
  mpath::thread_executor exec;
  slow_callback_backend backend;
  constexpr int rounds = 200;
  int still_running = 0;
  for (int i = 0; i < rounds; ++i) {
    auto e = engine_type::create(backend, exec, "0 1 later 1 1 round-robin 0 1 1 a 1");
    REQUIRE(e);
    mpath::io_context io;
    io.nr_bytes = 4096;
    // The group needs pg_init: the I/O is given back and an activation posted; its completion
    // (on completions' thread) clears queue_io and kicks the requeue list, slowly.
    CHECK((*e)->submit(io) == mpath::disposition::delay_requeue);
    busy_wait(std::chrono::microseconds(i % 9 * 20));
    e->reset();
    still_running += backend.inside.load() ? 1 : 0; // the kick runs inside pg_init_done
  }
  CHECK(still_running == 0);
  CHECK(backend.kicks.load() > 0); // the race was really run: some completions got as far as the kick
  g_completions = nullptr;
}
