// End-to-end integrity: thousands of mixed reads and writes of checksummed blocks over four paths
// to one temporary file, through the POSIX and the io_uring adapter, in request and bio mode, while
// a seeded random schedule fails and reinstates paths (sometimes all of them, with and without
// queue_if_no_path), and again with live reloads among the faults: hot add, hot remove with I/O in
// flight, regrouping. See integrity.hpp for what is checked.

#include "integrity.hpp"

#include "../../examples/adapters/posix.hpp"
#if MPATH_HAVE_LIBURING
#include "../../examples/adapters/io_uring.hpp"
#endif

#include <doctest/doctest.h>

#include <initializer_list>
#include <memory>
#include <utility>

namespace {
/// One checked run per (seed, through a channel), each on a fresh backend from `make`.
template <class Make>
void runs(Make make, bool bio, bool reloads, std::initializer_list<std::pair<std::uint64_t, bool>> seeds) {
  for (auto [seed, channel] : seeds) {
    auto backend = make();
    integrity::config c;
    c.bio = bio;
    c.channel = channel;
    c.seed = seed;
    c.reloads = reloads;
    integrity::check(integrity::run(*backend, c), c);
  }
}

auto posix() { return std::make_unique<mpath::adapters::posix_backend<>>(); }
} // namespace

TEST_CASE("integrity: POSIX adapter in request mode with pg_init, without and with a channel") {
  runs(posix, false, false, {{1, false}, {2, true}});
}

TEST_CASE("integrity: POSIX adapter in bio mode") { runs(posix, true, false, {{3, true}}); }

TEST_CASE("integrity with reloads: POSIX adapter in request mode with pg_init, without and with a channel") {
  runs(posix, false, true, {{7, false}, {8, true}});
}

TEST_CASE("integrity with reloads: POSIX adapter in bio mode, with and without a channel") {
  runs(posix, true, true, {{9, true}, {10, false}});
}

#if MPATH_HAVE_LIBURING
namespace {
bool uring_ok() {
  static const bool ok = [] {
    auto b = mpath::adapters::uring_backend::create();
    if (b)
      return true;
    int e = b.err().code;
    return !(e == EPERM || e == ENOSYS || e == EINVAL); // unavailable here: skip; anything else: fail
  }();
  return ok;
}

/// Every reload opens its table's paths again: room for them in the registered file table.
auto uring() {
  mpath::adapters::uring_options o;
  o.max_paths = 512;
  auto b = mpath::adapters::uring_backend::create(o);
  REQUIRE(b.has_value());
  return std::move(*b);
}
} // namespace

TEST_CASE("integrity: io_uring adapter in request mode with pg_init, without and with a channel" *
          doctest::skip(!uring_ok())) {
  runs(uring, false, false, {{4, false}, {5, true}});
}

TEST_CASE("integrity: io_uring adapter in bio mode" * doctest::skip(!uring_ok())) {
  runs(uring, true, false, {{6, false}});
}

TEST_CASE("integrity with reloads: io_uring adapter in request mode with pg_init, without and with a channel" *
          doctest::skip(!uring_ok())) {
  runs(uring, false, true, {{11, false}, {12, true}});
}

TEST_CASE("integrity with reloads: io_uring adapter in bio mode, with and without a channel" *
          doctest::skip(!uring_ok())) {
  runs(uring, true, true, {{13, true}, {14, false}});
}
#endif
