// End-to-end integrity: thousands of mixed reads and writes of checksummed blocks over four paths
// to one temporary file, through the POSIX and the io_uring adapter, in request and bio mode, while
// a seeded random schedule fails and reinstates paths (sometimes all of them, with and without
// queue_if_no_path). See integrity.hpp for what is checked.

#include "integrity.hpp"

#include "../../examples/adapters/posix.hpp"
#if MPATH_HAVE_LIBURING
#include "../../examples/adapters/io_uring.hpp"
#endif

#include <doctest/doctest.h>

TEST_CASE("integrity: POSIX adapter in request mode with pg_init, without and with a channel") {
  for (std::uint64_t seed : {1, 2}) {
    mpath::adapters::posix_backend<> backend;
    integrity::config c;
    c.seed = seed;
    c.channel = seed == 2;
    integrity::check(integrity::run(backend, c), c);
  }
}

TEST_CASE("integrity: POSIX adapter in bio mode") {
  mpath::adapters::posix_backend<> backend;
  integrity::config c;
  c.bio = true;
  c.channel = true;
  c.seed = 3;
  integrity::check(integrity::run(backend, c), c);
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
} // namespace

TEST_CASE("integrity: io_uring adapter in request mode with pg_init, without and with a channel" *
          doctest::skip(!uring_ok())) {
  for (std::uint64_t seed : {4, 5}) {
    auto backend = mpath::adapters::uring_backend::create();
    REQUIRE(backend.has_value());
    integrity::config c;
    c.seed = seed;
    c.channel = seed == 5;
    integrity::check(integrity::run(**backend, c), c);
  }
}

TEST_CASE("integrity: io_uring adapter in bio mode" * doctest::skip(!uring_ok())) {
  auto backend = mpath::adapters::uring_backend::create();
  REQUIRE(backend.has_value());
  integrity::config c;
  c.bio = true;
  c.seed = 6;
  integrity::check(integrity::run(**backend, c), c);
}
#endif
