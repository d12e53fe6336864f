// The deterministic executor of include/mpath/testing/manual_executor.hpp: work runs in due-time
// order, FIFO among equal times, only when the test says so, and the clock moves only on advance.

#include <mpath/testing/manual_executor.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using mpath::work_item;
using mpath::testing::manual_executor;

/// A work item that appends its name and the time it ran at to a shared log.
struct logged {
  work_item w;
  std::string name;
  std::vector<std::string>* log = nullptr;
  manual_executor* exec = nullptr;

  logged(std::string n, std::vector<std::string>& l, manual_executor& e) : name(std::move(n)), log(&l), exec(&e) {
    w.context = this;
    w.fn = [](work_item& item) noexcept {
      auto& self = *static_cast<logged*>(item.context);
      self.log->push_back(self.name + "@" + std::to_string(self.exec->now_ns()));
    };
  }
};

using lines = std::vector<std::string>;

} // namespace

TEST_CASE("manual_executor: nothing runs on post, run() runs what is due, in due-time order") {
  manual_executor e;
  lines log;
  logged a("a", log, e), b("b", log, e), c("c", log, e);
  CHECK(e.idle());
  CHECK(e.post(c.w, 30));
  CHECK(e.post(a.w, 10));
  CHECK(e.post(b.w, 20));
  CHECK(log.empty());
  CHECK_FALSE(e.idle());
  CHECK(e.run() == 0); // nothing due at 0
  std::uint64_t due = 0;
  REQUIRE(e.next_due(due));
  CHECK(due == 10);
  e.advance(100);
  CHECK(log == lines{"a@10", "b@20", "c@30"});
  CHECK(e.now_ns() == 100);
  CHECK(e.idle());
  CHECK_FALSE(e.next_due(due));
}

TEST_CASE("manual_executor: equal due times run in posting order") {
  manual_executor e;
  lines log;
  logged a("a", log, e), b("b", log, e), c("c", log, e), z("z", log, e);
  CHECK(e.post(b.w, 5));
  CHECK(e.post(z.w, 0));
  CHECK(e.post(c.w, 5));
  CHECK(e.post(a.w, 5));
  CHECK(e.run() == 1);
  CHECK(log == lines{"z@0"});
  e.advance(5);
  CHECK(log == lines{"z@0", "b@5", "c@5", "a@5"});
}

TEST_CASE("manual_executor: post returns false and changes nothing when the item is already queued") {
  manual_executor e;
  lines log;
  logged a("a", log, e);
  CHECK(e.post(a.w, 10));
  CHECK_FALSE(e.post(a.w, 0)); // not moved earlier
  std::uint64_t due = 0;
  REQUIRE(e.next_due(due));
  CHECK(due == 10);
  CHECK(e.run() == 0);
  e.advance(10);
  CHECK(log == lines{"a@10"}); // ran once
  CHECK(e.post(a.w, 0));       // free again after running
  CHECK(e.run() == 1);
  CHECK(log == lines{"a@10", "a@10"});
}

TEST_CASE("manual_executor: cancel unqueues an item that has not run, cancelling again is false") {
  manual_executor e;
  lines log;
  logged a("a", log, e), b("b", log, e), c("c", log, e);
  CHECK(e.post(a.w, 0));
  CHECK(e.post(b.w, 0));
  CHECK(e.post(c.w, 0));
  CHECK(e.cancel(b.w));
  CHECK_FALSE(e.cancel(b.w));
  CHECK_FALSE(b.w.queued);
  CHECK(e.run() == 2);
  CHECK(log == lines{"a@0", "c@0"});
  CHECK_FALSE(e.cancel(a.w)); // already ran
  // A cancelled item can be posted again.
  CHECK(e.post(b.w, 7));
  e.advance(7);
  CHECK(log == lines{"a@0", "c@0", "b@7"});
}

TEST_CASE("manual_executor: cancel of the head and of the tail keeps the rest in order") {
  manual_executor e;
  lines log;
  logged a("a", log, e), b("b", log, e), c("c", log, e), d("d", log, e);
  CHECK(e.post(a.w, 1));
  CHECK(e.post(b.w, 2));
  CHECK(e.post(c.w, 3));
  CHECK(e.post(d.w, 4));
  CHECK(e.cancel(a.w));
  CHECK(e.cancel(d.w));
  e.advance(10);
  CHECK(log == lines{"b@2", "c@3"});
}

TEST_CASE("manual_executor: advance stops the clock at each timer, so work sees its own due time") {
  manual_executor e;
  lines log;
  logged a("a", log, e), b("b", log, e);
  CHECK(e.post(a.w, 1'000));
  CHECK(e.post(b.w, 250));
  e.advance(100);
  CHECK(log.empty());
  CHECK(e.now_ns() == 100);
  e.advance(150);
  CHECK(log == lines{"b@250"}); // due exactly at the end of the advance: runs
  e.advance(10'000);
  CHECK(log == lines{"b@250", "a@1000"});
  CHECK(e.now_ns() == 10'250);
}

TEST_CASE("manual_executor: work posted by work runs in the same run(), delayed follow-ups wait for advance") {
  manual_executor e;
  lines log;
  struct chain {
    work_item w;
    manual_executor* e;
    lines* log;
    int left;
    std::uint64_t delay;
  };
  chain now{{}, &e, &log, 3, 0};
  chain later{{}, &e, &log, 3, 50};
  auto fn = [](work_item& w) noexcept {
    auto& c = *static_cast<chain*>(w.context);
    c.log->push_back((c.delay ? "later@" : "now@") + std::to_string(c.e->now_ns()));
    if (--c.left > 0)
      c.e->post(c.w, c.delay); // re-posting itself from inside its own run is allowed
  };
  now.w.context = &now;
  now.w.fn = fn;
  later.w.context = &later;
  later.w.fn = fn;
  CHECK(e.post(now.w, 0));
  CHECK(e.post(later.w, 0));
  CHECK(e.run() == 4); // now x3 and the first later
  CHECK(log == lines{"now@0", "later@0", "now@0", "now@0"});
  e.advance(200); // the chained delayed posts each fire at their own due time
  CHECK(log == lines{"now@0", "later@0", "now@0", "now@0", "later@50", "later@100"});
  CHECK(e.idle());
}

TEST_CASE("manual_executor: run_one runs exactly one due item") {
  manual_executor e;
  lines log;
  logged a("a", log, e), b("b", log, e);
  CHECK(e.post(a.w, 0));
  CHECK(e.post(b.w, 0));
  CHECK(e.run_one());
  CHECK(log == lines{"a@0"});
  CHECK(e.run_one());
  CHECK_FALSE(e.run_one());
  CHECK(log == lines{"a@0", "b@0"});
}

TEST_CASE("manual_executor: cancel_sync unqueues, and from inside the running item does not wait") {
  manual_executor e;
  lines log;
  logged a("a", log, e);
  CHECK(e.post(a.w, 5));
  CHECK(e.cancel_sync(a.w));
  CHECK_FALSE(e.cancel_sync(a.w));
  e.advance(10);
  CHECK(log.empty());

  struct self_cancel : mpath::work_item {
    manual_executor* exec = nullptr;
    int result = -1;
  } s;
  s.exec = &e;
  s.fn = [](mpath::work_item& w) noexcept {
    auto& self = static_cast<self_cancel&>(w);
    self.exec->post(self, 0);                           // queued again while running...
    self.result = self.exec->cancel_sync(self) ? 1 : 0; // ...and unqueued, without waiting for itself
  };
  CHECK(e.post(s, 0));
  CHECK(e.run() == 1);
  CHECK(s.result == 1);
  CHECK(e.idle());
}
