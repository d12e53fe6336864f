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
};

/// Monotonic nanoseconds.
template <class C>
concept Clock = requires(const C& c) {
  { c.now_ns() }
  noexcept->std::same_as<std::uint64_t>;
};

/// Runs work items later, never inline, on its clock.
///
/// | expression | semantics |
/// |---|---|
/// | `e.post(w, delay_ns)` | run `w.fn(w)` once, no earlier than `delay_ns` from now; returns false (and changes
/// nothing) if `w` is already queued, like the kernel's queue_delayed_work | | `e.cancel(w)` | unqueue `w` if it has
/// not started; returns whether it was queued | | `e.now_ns()` | the clock delays are measured on |
///
/// Thread-safety: `post` and `cancel` may be called from any thread, including with the engine's
/// lock held, and must not call back into the engine synchronously.
template <class E>
concept Executor = Clock<E> && requires(E& e, work_item& w, std::uint64_t delay_ns) {
  { e.post(w, delay_ns) }
  noexcept->std::same_as<bool>;
  { e.cancel(w) }
  noexcept->std::same_as<bool>;
};

} // namespace mpath::inline v0
