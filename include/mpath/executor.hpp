#pragma once
// Time and deferred work come from the user: the engine runs the same in a reactor, a thread pool
// or a deterministic simulation (product.md §3).

#include <concepts>
#include <cstdint>

namespace mpath::inline v0 {

/// A unit of deferred work with intrusive links, so posting it never allocates (the kernel's
/// work_struct). The executor owns `next`, `due_ns` and `queued` while the item is posted.
struct work_item {
  void (*fn)(work_item&) noexcept = nullptr;
  void* context = nullptr;
  work_item* next = nullptr;
  std::uint64_t due_ns = 0;
  bool queued = false;
  bool cancelling = false; ///< a cancel_sync is waiting for it: posting it is refused meanwhile
};

/// Monotonic nanoseconds.
template <class C>
concept Clock = requires(const C& c) {
  { c.now_ns() }
  noexcept->std::same_as<std::uint64_t>;
};

/// Runs work items later, never inline, on its clock.
///
// clang-format off
/// | expression | semantics |
/// |---|---|
/// | `e.post(w, delay_ns)` | queue `w` to run `w.fn(w)` once, no earlier than `delay_ns` from now; returns false (and changes nothing) if `w` is already queued, like the kernel's queue_delayed_work |
/// | `e.cancel(w)` | unqueue `w` if it is queued; returns whether it was. Does not wait: an invocation of `w.fn` that has already started may still be running when `cancel` returns |
/// | `e.cancel_sync(w)` | unqueue `w` if it is queued and, unless called from within `w.fn` itself, return only once no invocation of `w.fn` is running; a `post(w)` made while it waits (by `w.fn` itself, say) is refused. Returns whether `w` was queued. After it returns, `w.fn` runs again only if `w` is posted again (the kernel's cancel_delayed_work_sync) |
/// | `e.now_ns()` | the clock delays are measured on |
// clang-format on
///
/// Thread-safety: `post` and `cancel` may be called from any thread, including with the engine's
/// lock held, and must not call back into the engine synchronously. `cancel_sync` may wait for
/// `w.fn`, so it must never be called while holding a lock that `w.fn` takes; the engine and the
/// health layer call it only while tearing down, with no lock held, and rely on it to free the
/// memory `w` and its context live in.
template <class E>
concept Executor = Clock<E> && requires(E& e, work_item& w, std::uint64_t delay_ns) {
  { e.post(w, delay_ns) }
  noexcept->std::same_as<bool>;
  { e.cancel(w) }
  noexcept->std::same_as<bool>;
  { e.cancel_sync(w) }
  noexcept->std::same_as<bool>;
};

} // namespace mpath::inline v0
