// The I/O path allocates nothing in steady state (product.md §4, §7): 100k map+complete cycles
// under every selector, counted by a replaced global operator new.

#include <mpath/multipath.hpp>
#include <mpath/testing/manual_executor.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <new>

// GCC pairs the replaced operator delete's free() with the operator new it inlined, and calls it
// a mismatch; both sides here are malloc/free.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
thread_local bool counting = false;
thread_local std::size_t allocations = 0;
} // namespace

// Every replaceable form, so no allocation escapes the count and every pointer is freed by the
// allocator that made it (the library uses over-aligned types; std::stable_partition uses nothrow).
namespace {
void* counted_alloc(std::size_t n, std::size_t align = 0) noexcept {
  if (counting)
    ++allocations;
  if (align <= alignof(std::max_align_t))
    return std::malloc(n ? n : 1);
  void* p = nullptr;
  return posix_memalign(&p, align, n ? n : 1) == 0 ? p : nullptr;
}
void* counted_alloc_or_throw(std::size_t n, std::size_t align = 0) {
  if (void* p = counted_alloc(n, align))
    return p;
  throw std::bad_alloc();
}
} // namespace

void* operator new(std::size_t n) { return counted_alloc_or_throw(n); }
void* operator new[](std::size_t n) { return counted_alloc_or_throw(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_alloc_or_throw(n, std::size_t(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_alloc_or_throw(n, std::size_t(a)); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, std::size_t(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, std::size_t(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

struct null_io : mpath::io_context {};

/// Remembers the one I/O in flight; the test completes it.
struct null_backend {
  using handle_type = int;
  using io_type = null_io;
  null_io* in_flight = nullptr;
  std::size_t done = 0;

  mpath::result<int> open_path(std::string_view) { return 0; }
  void submit(int, null_io& io) noexcept { in_flight = &io; }
  void io_done(null_io&, mpath::blk_status) noexcept { ++done; }
  mpath::blk_status probe(int) noexcept { return mpath::blk_status::ok; }
};

/// A lock that counts how often the engine takes it.
struct counting_lock {
  static inline thread_local std::size_t acquisitions = 0;
  std::mutex m;
  void lock() {
    if (counting)
      ++acquisitions;
    m.lock();
  }
  bool try_lock() {
    if (counting)
      ++acquisitions;
    return m.try_lock();
  }
  void unlock() { m.unlock(); }
};

struct counting_traits : mpath::default_traits {
  using lock_type = counting_lock;
};

std::size_t allocations_in_steady_state(std::string_view table_text) {
  null_backend backend;
  mpath::testing::manual_executor exec;
  auto engine = mpath::multipath<null_backend, mpath::testing::manual_executor, counting_traits>::create(backend, exec,
                                                                                                         table_text);
  REQUIRE(engine);
  null_io io;
  io.nr_bytes = 4096;
  REQUIRE((*engine)->submit(io) == mpath::disposition::dispatched); // first I/O chooses the group
  REQUIRE((*engine)->complete(io, mpath::blk_status::ok) == mpath::disposition::completed);

  allocations = 0;
  counting_lock::acquisitions = 0;
  counting = true;
  for (int i = 0; i < 100000; ++i) {
    backend.in_flight = nullptr;
    if ((*engine)->submit(io) != mpath::disposition::dispatched || backend.in_flight != &io)
      break;
    (void)(*engine)->complete(io, mpath::blk_status::ok);
  }
  counting = false;
  CHECK(backend.done == 100001);
  CHECK(counting_lock::acquisitions == 0); // and no engine lock either (kernel-target.md §4.11)
  return allocations;
}

} // namespace

TEST_CASE("steady state: 100k map+complete cycles allocate nothing and take no engine lock") {
  CHECK(allocations_in_steady_state("0 0 2 1 round-robin 0 2 1 a 1 b 1 round-robin 0 1 1 c 1") == 0);
  CHECK(allocations_in_steady_state("0 0 1 1 queue-length 0 4 1 a 1 b 1 c 1 d 1") == 0);
  CHECK(allocations_in_steady_state("0 0 1 1 service-time 0 2 2 a 1 1 b 1 4") == 0);
  CHECK(allocations_in_steady_state("2 queue_mode bio 0 1 1 round-robin 0 2 1 a 100 b 100") == 0);
}

TEST_CASE("steady state: path failure, reinstate and current_path's errors allocate nothing either") {
  null_backend backend;
  mpath::testing::manual_executor exec;
  auto engine = mpath::multipath<null_backend, mpath::testing::manual_executor>::create(
      backend, exec, "0 0 1 1 round-robin 0 2 1 a 1 b 1");
  REQUIRE(engine);
  auto& e = **engine;
  auto& a = e.groups()[0].path(0);
  auto& b = e.groups()[0].path(1);
  allocations = 0;
  counting = true;
  // Events raised and delivered repeatedly: the pending-event buffers were reserved up front.
  for (int i = 0; i < 100; ++i) {
    e.fail_path(a);
    e.fail_path(b);
    (void)e.current_path(); // EIO: no path, no queueing
    (void)e.reinstate_path(a);
    (void)e.reinstate_path(b);
    exec.run();
  }
  counting = false;
  CHECK(allocations == 0);
  CHECK(e.events_lost() == 0);
  CHECK(e.event_nr() == 400);
}

TEST_CASE("steady state: the counter notices an allocation") {
  allocations = 0;
  counting = true;
  auto* p = new int(7);
  counting = false;
  delete p;
  CHECK(allocations == 1);
}
