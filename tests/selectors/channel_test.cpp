// Channels in round-robin, queue-length, service-time and historical-service-time
// (selectors/detail/channel_core.hpp): each channel selects exactly as a channel-less selector that
// saw only its I/O; several keep to the bounds their headers state; a path failed before a select
// starts is chosen by no channel, on any thread.

#include <mpath/selectors.hpp>

#include "support/rc_doctest.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using mpath::no_path;
using mpath::path_index;
using mpath::selectors::historical_service_time;
using mpath::selectors::queue_length;
using mpath::selectors::round_robin;
using mpath::selectors::service_time;

/// Per-path arguments: repeat_count, and for service-time a relative throughput.
template <class S> void add_path(S& s, std::uint32_t repeat, std::uint32_t throughput) {
  std::vector<std::string> args{std::to_string(repeat)};
  if constexpr (std::is_same_v<S, service_time>)
    args.push_back(std::to_string(throughput));
  (void)throughput;
  REQUIRE(s.add_path(args));
}

template <class S> std::string info(const S& s, path_index p) {
  std::string out;
  s.path_status(p, mpath::status_type::info, out);
  return out;
}

struct op {
  enum kind { select, end, fail, reinstate } what;
  path_index path;     // fail / reinstate
  std::size_t which;   // select: the channel; end: which in-flight I/O
  std::uint64_t bytes; // select: the I/O's size
  std::uint64_t later; // the clock moves on by this much first (ns)
};

} // namespace

// The exactness channels promise (detail/channel_core.hpp and each selector's header): a channel
// chooses as a kernel selector of its own would, one that saw every path change and only this
// channel's I/O. With one channel that is the channel-less select, INFO included.
TEST_CASE_TEMPLATE("channels: each channel selects exactly as a channel-less selector that saw only its I/O", S,
                   round_robin, queue_length, service_time, historical_service_time) {
  MP_RC_CHECK_N("channel k == private selector k", 200, [] {
    auto n = *rc::gen::inRange<std::size_t>(1, 6);
    auto k = *rc::gen::inRange<std::size_t>(1, 4);
    auto repeats = *rc::gen::container<std::vector<std::uint32_t>>(n, rc::gen::inRange<std::uint32_t>(1, 4));
    auto throughputs = *rc::gen::container<std::vector<std::uint32_t>>(n, rc::gen::element<std::uint32_t>(0, 1, 2, 4));
    auto ops = *rc::gen::container<std::vector<op>>(rc::gen::apply(
        [](op::kind what, path_index p, std::size_t which, std::uint64_t bytes, std::uint64_t later) {
          return op{what, p, which, bytes, later};
        },
        rc::gen::weightedElement<op::kind>({{6, op::select}, {4, op::end}, {1, op::fail}, {1, op::reinstate}}),
        rc::gen::inRange<path_index>(0, path_index(n)), rc::gen::inRange<std::size_t>(0, 64),
        rc::gen::element<std::uint64_t>(512, 4096, 65536),
        rc::gen::element<std::uint64_t>(0, 0, 1'000, 50'000, 3'000'000, 40'000'000)));
    S shared;
    std::vector<std::unique_ptr<S>> privates;
    for (std::size_t c = 0; c < k; ++c)
      privates.push_back(std::make_unique<S>());
    for (std::size_t i = 0; i < n; ++i) {
      add_path(shared, repeats[i], throughputs[i]);
      for (auto& own : privates)
        add_path(*own, repeats[i], throughputs[i]);
    }
    // Each channel is attached at its first select, after whatever path changes came before: it
    // must start from the kernel's list as it is then, not from the table's order.
    std::vector<std::unique_ptr<typename S::channel_state>> channels(k);
    struct flight {
      std::size_t channel;
      path_index p;
      std::uint64_t bytes, start;
    };
    std::vector<flight> in_flight;
    std::uint64_t now = 1'000'000;
    for (const op& o : ops) {
      now += o.later;
      switch (o.what) {
      case op::select: {
        std::size_t c = o.which % k;
        if (!channels[c]) {
          channels[c] = std::make_unique<typename S::channel_state>();
          shared.attach(*channels[c]);
        }
        path_index want = privates[c]->select(o.bytes, now), got = shared.select(*channels[c], o.bytes, now);
        RC_ASSERT(got == want);
        if (got != no_path) {
          if constexpr (mpath::AccountingSelector<S>) {
            privates[c]->start_io(got, o.bytes);
            shared.start_io(*channels[c], got, o.bytes);
          }
          in_flight.push_back({c, got, o.bytes, now});
        }
        break;
      }
      case op::end:
        if (!in_flight.empty()) {
          auto f = in_flight[o.which % in_flight.size()];
          in_flight.erase(in_flight.begin() + std::ptrdiff_t(o.which % in_flight.size()));
          if constexpr (mpath::AccountingSelector<S>) {
            privates[f.channel]->end_io(f.p, f.bytes, f.start, now);
            shared.end_io(*channels[f.channel], f.p, f.bytes, f.start, now);
          }
        }
        break;
      case op::fail:
        shared.fail_path(o.path);
        for (auto& own : privates)
          own->fail_path(o.path);
        break;
      case op::reinstate:
        shared.reinstate_path(o.path);
        for (auto& own : privates)
          own->reinstate_path(o.path);
        break;
      }
      if (k == 1)
        for (path_index p = 0; p < n; ++p)
          RC_ASSERT(info(shared, p) == info(*privates[0], p));
    }
    for (const auto& f : in_flight)
      if constexpr (mpath::AccountingSelector<S>)
        shared.end_io(*channels[f.channel], f.p, f.bytes, f.start, now);
    for (auto& c : channels)
      if (c)
        shared.detach(*c);
  });
}

TEST_CASE_TEMPLATE("channels: a failed path is chosen by no channel and a reinstated one comes back in each", S,
                   round_robin, queue_length, service_time, historical_service_time) {
  S s;
  for (int i = 0; i < 3; ++i)
    add_path(s, 1, 1);
  typename S::channel_state a, b;
  s.attach(a);
  s.attach(b);
  for (int i = 0; i < 5; ++i) { // both channels under way
    (void)s.select(a, 4096, 0);
    (void)s.select(b, 4096, 0);
  }
  s.fail_path(1);
  for (int i = 0; i < 12; ++i) {
    CHECK(s.select(a, 4096, 0) != 1);
    CHECK(s.select(b, 4096, 0) != 1);
  }
  s.reinstate_path(1);
  bool seen_a = false, seen_b = false;
  for (int i = 0; i < 3; ++i) {
    seen_a = seen_a || s.select(a, 4096, 0) == 1;
    seen_b = seen_b || s.select(b, 4096, 0) == 1;
  }
  CHECK(seen_a);
  CHECK(seen_b);
  if constexpr (std::is_same_v<S, round_robin>) { // at the head: chosen next, in every channel
    s.fail_path(2);
    s.reinstate_path(2);
    CHECK(s.select(a, 4096, 0) == 2);
    CHECK(s.select(b, 4096, 0) == 2);
  }
  s.fail_path(0);
  s.fail_path(1);
  s.fail_path(2);
  CHECK(s.select(a, 4096, 0) == no_path);
  CHECK(s.select(b, 4096, 0) == no_path);
  s.detach(a);
  s.detach(b);
}

TEST_CASE("channels: queue-length picks a channel's own least loaded path, off the device's by at most the others' "
          "I/O on it") {
  MP_RC_CHECK_N("queue-length with three channels", 200, [] {
    constexpr std::size_t paths = 4, channels = 3;
    queue_length s;
    for (std::size_t i = 0; i < paths; ++i)
      add_path(s, 1, 1);
    std::vector<std::unique_ptr<queue_length::channel_state>> ch;
    for (std::size_t c = 0; c < channels; ++c) {
      ch.push_back(std::make_unique<queue_length::channel_state>());
      s.attach(*ch.back());
    }
    std::vector<std::vector<std::int64_t>> own(channels, std::vector<std::int64_t>(paths, 0));
    struct flight {
      std::size_t c;
      path_index p;
    };
    std::vector<flight> in_flight;
    auto steps = *rc::gen::container<std::vector<std::pair<std::size_t, bool>>>(
        rc::gen::pair(rc::gen::inRange<std::size_t>(0, 1000), rc::gen::arbitrary<bool>()));
    for (auto [pick, submit] : steps) {
      if (submit || in_flight.empty()) {
        std::size_t c = pick % channels;
        path_index p = s.select(*ch[c], 4096, 0);
        RC_ASSERT(p != no_path);
        std::int64_t least = s.in_flight(0), others_on_p = s.in_flight(p) - own[c][p];
        for (path_index q = 0; q < paths; ++q) {
          least = std::min(least, s.in_flight(q));
          RC_ASSERT(own[c][p] <= own[c][q]); // its own least loaded
        }
        RC_ASSERT(s.in_flight(p) <= least + others_on_p);
        s.start_io(*ch[c], p, 4096);
        ++own[c][p];
        in_flight.push_back({c, p});
      } else {
        auto f = in_flight[pick % in_flight.size()];
        in_flight.erase(in_flight.begin() + std::ptrdiff_t(pick % in_flight.size()));
        s.end_io(*ch[f.c], f.p, 4096, 0, 0);
        --own[f.c][f.p];
      }
      // INFO is the device-wide count, the sum over the channels.
      for (path_index q = 0; q < paths; ++q) {
        std::int64_t total = 0;
        for (std::size_t c = 0; c < channels; ++c)
          total += own[c][q];
        RC_ASSERT(s.in_flight(q) == total);
        RC_ASSERT(info(s, q) == std::to_string(total) + " ");
      }
    }
    for (const auto& f : in_flight)
      s.end_io(*ch[f.c], f.p, 4096, 0, 0);
    for (auto& c : ch)
      s.detach(*c);
  });
}

TEST_CASE("channels: over equal paths two queue-length channels keep the device within one I/O per channel") {
  queue_length s;
  for (int i = 0; i < 4; ++i)
    add_path(s, 1, 1);
  queue_length::channel_state a, b;
  s.attach(a);
  s.attach(b);
  // a submits three times as often as b; neither completes anything.
  for (int i = 0; i < 40; ++i) {
    auto& c = i % 4 == 3 ? b : a;
    s.start_io(c, s.select(c, 4096, 0), 4096);
    std::int64_t lo = s.in_flight(0), hi = lo;
    for (path_index p = 1; p < 4; ++p) {
      lo = std::min(lo, s.in_flight(p));
      hi = std::max(hi, s.in_flight(p));
    }
    CHECK(hi - lo <= 2);
  }
  // Each channel rotates from the first path: a's 30 are 8 8 7 7, b's 10 are 3 3 2 2.
  CHECK(info(s, 0) == "11 ");
  CHECK(info(s, 1) == "11 ");
  CHECK(info(s, 2) == "9 ");
  CHECK(info(s, 3) == "9 ");
  // A channel goes with none of its I/O in flight (ChannelSelector).
  for (path_index p = 0; p < 4; ++p) {
    for (int i = 0; i < (p < 2 ? 8 : 7); ++i)
      s.end_io(a, p, 4096, 0, 0);
    for (int i = 0; i < (p < 2 ? 3 : 2); ++i)
      s.end_io(b, p, 4096, 0, 0);
    CHECK(s.in_flight(p) == 0);
  }
  s.detach(a);
  s.detach(b);
}

TEST_CASE_TEMPLATE("channels: after fail_path returns no channel selects the path, on any thread", S, round_robin,
                   queue_length, service_time, historical_service_time) {
  constexpr int workers = 2, rounds = 60;
  S s;
  for (int i = 0; i < 4; ++i)
    add_path(s, 1, 1);
  std::atomic<int> failed_round{-1}; // the round whose path is failed now (path = round % 4)
  std::atomic<int> acked{0};         // workers done with the current round
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w)
    threads.emplace_back([&] {
      typename S::channel_state ch;
      s.attach(ch);
      for (int seen = -1; seen + 1 < rounds;) {
        int r = failed_round.load(std::memory_order_acquire);
        if (r == seen) {
          // Selects between rounds race with the fail/reinstate: anything goes, but keep the
          // channel's accounting balanced.
          path_index p = s.select(ch, 4096, 0);
          if constexpr (mpath::AccountingSelector<S>)
            if (p != no_path) {
              s.start_io(ch, p, 4096);
              s.end_io(ch, p, 4096, 0, 0);
            }
          std::this_thread::yield();
          continue;
        }
        // fail_path(r % 4) returned before failed_round said r: no select from here on returns it.
        for (int i = 0; i < 50; ++i) {
          path_index p = s.select(ch, 4096, 0);
          if (p == path_index(r % 4))
            bad.fetch_add(1);
          if constexpr (mpath::AccountingSelector<S>)
            if (p != no_path) {
              s.start_io(ch, p, 4096);
              s.end_io(ch, p, 4096, 0, 0);
            }
        }
        seen = r;
        acked.fetch_add(1, std::memory_order_acq_rel);
      }
      s.detach(ch);
    });
  for (int r = 0; r < rounds; ++r) {
    s.fail_path(path_index(r % 4));
    acked.store(0, std::memory_order_relaxed);
    failed_round.store(r, std::memory_order_release);
    while (acked.load(std::memory_order_acquire) < workers)
      std::this_thread::yield();
    s.reinstate_path(path_index(r % 4));
  }
  for (auto& t : threads)
    t.join();
  CHECK(bad.load() == 0);
}
