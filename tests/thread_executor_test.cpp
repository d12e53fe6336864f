#include <mpath/thread_executor.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {
struct counter_work : mpath::work_item {
  std::atomic<int> runs{0};
  std::atomic<std::uint64_t> ran_at{0};
  mpath::thread_executor* exec = nullptr;
  counter_work() {
    fn = [](mpath::work_item& w) noexcept {
      auto& self = static_cast<counter_work&>(w);
      self.ran_at.store(self.exec->now_ns());
      self.runs.fetch_add(1);
    };
  }
};

void wait_for(const std::atomic<int>& v, int target) {
  for (int i = 0; i < 5000 && v.load() < target; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}
} // namespace

TEST_CASE("thread_executor: runs posted work once, not before its delay") {
  mpath::thread_executor exec;
  counter_work w;
  w.exec = &exec;
  std::uint64_t posted = exec.now_ns();
  CHECK(exec.post(w, 20'000'000));
  CHECK_FALSE(exec.post(w, 0)); // already queued: unchanged, like queue_delayed_work
  wait_for(w.runs, 1);
  CHECK(w.runs.load() == 1);
  CHECK(w.ran_at.load() >= posted + 20'000'000);
  CHECK(exec.post(w, 0)); // runnable again once it ran
  wait_for(w.runs, 2);
  CHECK(w.runs.load() == 2);
}

TEST_CASE("thread_executor: cancel stops queued work") {
  mpath::thread_executor exec;
  counter_work w;
  w.exec = &exec;
  CHECK(exec.post(w, 10'000'000'000)); // ten seconds: never reached
  CHECK(exec.cancel(w));
  CHECK_FALSE(exec.cancel(w));
  CHECK(w.runs.load() == 0);
}

TEST_CASE("thread_executor: work posted from many threads all runs") {
  mpath::thread_executor exec;
  std::vector<counter_work> items(64);
  std::vector<std::thread> posters;
  for (int t = 0; t < 4; ++t)
    posters.emplace_back([&, t] {
      for (int i = t; i < 64; i += 4) {
        items[std::size_t(i)].exec = &exec;
        exec.post(items[std::size_t(i)], std::uint64_t(i) * 1000);
      }
    });
  for (auto& p : posters)
    p.join();
  for (auto& w : items)
    wait_for(w.runs, 1);
  int total = 0;
  for (auto& w : items)
    total += w.runs.load();
  CHECK(total == 64);
}

namespace {
/// Work that takes a while, so a cancel can arrive while it runs; optionally posts itself again.
struct slow_work : mpath::work_item {
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  std::atomic<int> runs{0};
  bool repost = false;
  mpath::thread_executor* exec = nullptr;
  slow_work() {
    fn = [](mpath::work_item& w) noexcept {
      auto& self = static_cast<slow_work&>(w);
      self.finished.store(false);
      self.started.store(true);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      self.runs.fetch_add(1);
      if (self.repost)
        self.exec->post(self, 0);
      self.finished.store(true);
    };
  }
};
} // namespace

TEST_CASE("thread_executor: cancel_sync waits for a running item and cancel does not") {
  mpath::thread_executor exec;
  slow_work w;
  w.exec = &exec;
  CHECK(exec.post(w, 0));
  while (!w.started.load())
    std::this_thread::yield();
  CHECK_FALSE(exec.cancel(w));    // not queued any more: it is running
  CHECK_FALSE(w.finished.load()); // cancel did not wait
  CHECK_FALSE(exec.cancel_sync(w));
  CHECK(w.finished.load()); // cancel_sync did
  CHECK(w.runs.load() == 1);
}

TEST_CASE("thread_executor: cancel_sync also stops an item that posts itself again") {
  mpath::thread_executor exec;
  slow_work w;
  w.exec = &exec;
  w.repost = true;
  CHECK(exec.post(w, 0));
  while (!w.started.load())
    std::this_thread::yield();
  CHECK_FALSE(exec.cancel_sync(w)); // it was running, not queued; its re-post while we waited was refused
  int runs = w.runs.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(w.runs.load() == runs); // and it never ran again
  CHECK_FALSE(w.queued);
}

TEST_CASE("thread_executor: cancel_sync from inside the item does not wait for itself") {
  mpath::thread_executor exec;
  struct self_cancel : mpath::work_item {
    mpath::thread_executor* exec = nullptr;
    std::atomic<int> result{-1};
  } w;
  w.exec = &exec;
  w.fn = [](mpath::work_item& item) noexcept {
    auto& self = static_cast<self_cancel&>(item);
    self.result.store(self.exec->cancel_sync(self) ? 1 : 0);
  };
  CHECK(exec.post(w, 0));
  for (int i = 0; i < 5000 && w.result.load() < 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(w.result.load() == 0);
}
