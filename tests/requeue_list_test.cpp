// requeue_list.hpp: DM core's requeue list. Immediate requeues come back at the next re-drive,
// delayed ones after their delay or when kicked, oldest first, each exactly once; what is held
// while a batch is worked through waits for the next one.

#include <mpath/requeue_list.hpp>

#include <doctest/doctest.h>

#include <array>
#include <thread>
#include <vector>

namespace {
struct test_io : mpath::io_context {
  int id = 0;
};

std::vector<int> ids(mpath::requeue_list<test_io>::batch b) {
  std::vector<int> out;
  while (test_io* io = b.pop_front())
    out.push_back(io->id);
  return out;
}

using mpath::disposition;
} // namespace

TEST_CASE("requeue_list: takes only the two requeue answers") {
  mpath::requeue_list<test_io> list;
  test_io io;
  for (auto d : {disposition::dispatched, disposition::queued, disposition::completed})
    CHECK_FALSE(list.hold(io, d, 0));
  CHECK(list.empty());
  CHECK(list.hold(io, disposition::requeue, 0));
  CHECK(list.size() == 1);
}

TEST_CASE("requeue_list: immediate now, delayed after 100 ms, in the order they were held") {
  mpath::requeue_list<test_io> list;
  std::array<test_io, 4> io;
  for (int i = 0; i < 4; ++i)
    io[std::size_t(i)].id = i + 1;
  CHECK(list.hold(io[0], disposition::delay_requeue, 1000));
  CHECK(list.hold(io[1], disposition::requeue, 1000));
  CHECK(list.hold(io[2], disposition::delay_requeue, 2000));
  CHECK(list.hold(io[3], disposition::requeue, 2000));
  std::uint64_t due = 0;
  REQUIRE(list.next_due(due));
  CHECK(due == 1000 + mpath::requeue_list<test_io>::default_delay_ns);
  CHECK(ids(list.take_due(5000, false)).empty()); // nothing due, immediate ones not asked for
  CHECK(ids(list.take_due(5000)) == std::vector<int>{2, 4});
  CHECK(ids(list.take_due(1000 + 100'000'000)) == std::vector<int>{1});
  CHECK(list.size() == 1);
  CHECK(ids(list.take_due(2000 + 100'000'000)) == std::vector<int>{3});
  CHECK(list.empty());
  CHECK_FALSE(list.next_due(due));
}

TEST_CASE("requeue_list: a kick makes the delayed ones due at once, not later arrivals") {
  mpath::requeue_list<test_io> list;
  std::array<test_io, 3> io;
  for (int i = 0; i < 3; ++i)
    io[std::size_t(i)].id = i + 1;
  CHECK(list.hold(io[0], disposition::delay_requeue, 0));
  CHECK(list.hold(io[1], disposition::requeue, 0));
  list.kick();
  CHECK(list.hold(io[2], disposition::delay_requeue, 0));     // after the kick: waits its 100 ms
  CHECK(ids(list.take_due(0, false)) == std::vector<int>{1}); // kicked, the immediate one left
  CHECK(ids(list.take_due(0)) == std::vector<int>{2});
  CHECK(ids(list.take_all()) == std::vector<int>{3});
  CHECK(list.empty());
}

TEST_CASE("requeue_list: an I/O held again while its batch is worked through waits for the next") {
  mpath::requeue_list<test_io> list;
  test_io a, b;
  a.id = 1;
  b.id = 2;
  CHECK(list.hold(a, disposition::requeue, 0));
  CHECK(list.hold(b, disposition::requeue, 0));
  auto batch = list.take_due(0);
  std::vector<int> seen;
  while (test_io* io = batch.pop_front()) {
    seen.push_back(io->id);
    CHECK(list.hold(*io, disposition::requeue, 0)); // the engine gave it back again
  }
  CHECK(seen == std::vector<int>{1, 2});
  CHECK(ids(list.take_due(0)) == std::vector<int>{1, 2});
}

TEST_CASE("requeue_list: holders and a re-driver on two threads see every I/O exactly once") {
  mpath::requeue_list<test_io> list;
  std::vector<test_io> ios(2000);
  std::vector<int> seen(ios.size(), 0);
  std::thread holder([&] {
    for (std::size_t i = 0; i < ios.size(); ++i) {
      ios[i].id = int(i);
      CHECK(list.hold(ios[i], i % 3 ? disposition::requeue : disposition::delay_requeue, 0));
      if (i % 100 == 0)
        list.kick();
    }
  });
  std::size_t taken = 0;
  for (int spins = 0; taken < ios.size() && spins < 10'000'000; ++spins) {
    list.kick();
    auto b = list.take_due(0);
    while (test_io* io = b.pop_front()) {
      ++seen[std::size_t(io->id)];
      ++taken;
    }
  }
  holder.join();
  auto rest = list.take_due(~std::uint64_t{0} - 1);
  while (test_io* io = rest.pop_front()) {
    ++seen[std::size_t(io->id)];
    ++taken;
  }
  CHECK(taken == ios.size());
  for (int n : seen)
    CHECK(n == 1);
}
