#pragma once
// DM core's requeue duty in request mode (product.md §5, kernel-target.md §4.3-4.4): the engine
// answers an I/O with `requeue` (resubmit it now), `delay_requeue` (resubmit it after a delay, or
// as soon as the engine asks for the requeue list to be re-driven) or neither. Whoever plays DM
// core around an engine keeps such a list; this is that list, so no product writes it again.
//
//   mpath::requeue_list<my_io> requeue;
//   if (!requeue.hold(io, engine.submit(io), clock.now_ns())) { ... dispatched, queued or done ... }
//   // backend.kick_requeue():  requeue.kick();  and wake the thread that re-drives the list
//   auto due = requeue.take_due(clock.now_ns());
//   while (my_io* io = due.pop_front())
//     requeue.hold(*io, engine.submit(*io), clock.now_ns());

#include <mpath/detail/io_list.hpp>
#include <mpath/detail/sync.hpp>
#include <mpath/io.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>

namespace mpath::inline v0 {

/// I/Os waiting to be resubmitted, oldest first. Intrusive: while an I/O is on the list, the list
/// uses the engine-owned fields of its `io_context` (`next_` as the link, `start_ns` as the due
/// time); the engine has given the I/O back, so it reads neither until the I/O is submitted
/// again. Nothing allocates.
///
/// Thread safety: every member may be called from any thread when `Lock` is a real lock (the
/// default); with `null_lock`, from one thread. No callback is ever made under the lock: due I/Os
/// come back as a `batch` the caller resubmits.
template <class Io, class Lock = std::mutex> class requeue_list {
public:
  /// DM core's delay for a `delay_requeue` answer.
  static constexpr std::uint64_t default_delay_ns = 100'000'000;

  /// I/Os taken off the list, oldest first; owned by the caller.
  class batch {
  public:
    Io* pop_front() noexcept { return static_cast<Io*>(list_.pop_front()); }
    bool empty() const noexcept { return list_.empty(); }
    std::size_t size() const noexcept { return list_.size(); }

  private:
    friend class requeue_list;
    detail::io_list list_;
  };

  explicit requeue_list(std::uint64_t delay_ns = default_delay_ns) noexcept : delay_ns_(delay_ns) {}
  requeue_list(const requeue_list&) = delete;
  requeue_list& operator=(const requeue_list&) = delete;

  /// Takes `io` when the engine's answer `d` gives it back for a requeue (`requeue`, or
  /// `delay_requeue`: due at `now_ns` plus the delay); returns whether it did. Any other answer
  /// leaves `io` to the caller and the engine.
  bool hold(Io& io, disposition d, std::uint64_t now_ns) noexcept {
    if (d != disposition::requeue && d != disposition::delay_requeue)
      return false;
    io.start_ns = d == disposition::requeue ? immediate : now_ns + delay_ns_;
    std::lock_guard guard(lock_);
    list_.push_back(io);
    return true;
  }

  /// The engine asked for the list to be re-driven (its `kick_requeue`: a pg_init finished, a
  /// path came back): every delayed I/O on the list is due now.
  void kick() noexcept {
    std::lock_guard guard(lock_);
    for (io_context* io = list_.front(); io; io = io->next_)
      if (io->start_ns != immediate)
        io->start_ns = 0;
  }

  /// Takes, oldest first, the delayed I/Os due at `now_ns` (or kicked) and, with
  /// `include_immediate`, the ones to resubmit at once. I/Os held while the caller works through
  /// the batch wait for the next call.
  batch take_due(std::uint64_t now_ns, bool include_immediate = true) noexcept {
    batch out;
    std::lock_guard guard(lock_);
    detail::io_list all;
    all.append(list_);
    while (io_context* io = all.pop_front()) {
      bool due = io->start_ns == immediate ? include_immediate : io->start_ns <= now_ns;
      (due ? out.list_ : list_).push_back(*io);
    }
    return out;
  }

  /// Takes everything (to fail it, when the device goes away).
  batch take_all() noexcept {
    batch out;
    std::lock_guard guard(lock_);
    out.list_.append(list_);
    return out;
  }

  /// When the earliest delayed I/O is due; false when none is delayed (immediate ones are due
  /// whenever the caller next re-drives the list).
  bool next_due(std::uint64_t& due_ns) const noexcept {
    std::lock_guard guard(lock_);
    bool any = false;
    for (const io_context* io = list_.front(); io; io = io->next_)
      if (io->start_ns != immediate && (!any || io->start_ns < due_ns)) {
        due_ns = io->start_ns;
        any = true;
      }
    return any;
  }

  std::size_t size() const noexcept {
    std::lock_guard guard(lock_);
    return list_.size();
  }
  bool empty() const noexcept { return size() == 0; }
  std::uint64_t delay_ns() const noexcept { return delay_ns_; }

private:
  static constexpr std::uint64_t immediate = std::numeric_limits<std::uint64_t>::max();

  std::uint64_t delay_ns_;
  mutable Lock lock_;
  detail::io_list list_; // guarded by lock_
};

} // namespace mpath::inline v0
