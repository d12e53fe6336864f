#pragma once
// Per-channel selection state for the list-based selectors (round-robin, queue-length,
// service-time, historical-service-time): what lets two submitting threads select without writing a shared cache line.
//
// The kernel keeps one valid list per selector and rotates it on every I/O under a spinlock, so
// every I/O writes the same line from every CPU. Here each channel (one per submitting thread,
// `multipath::channel`) keeps its own copy of that list in its own selection order, its own
// repeat_count state and its own in-flight counters. The shared state is only what path changes
// write: a failed flag per path, the generation at which each path was last reinstated, and a
// generation counter that every fail/reinstate bumps. A select reads the generation (a line that
// only path changes write, so it stays shared in every core's cache) and, when it moved, brings
// its copy up to date under the selector lock.
//
// Exactness: a channel's copy goes through the same changes as the kernel's list would, in the
// same order relative to its own selections (refresh() below), so one channel doing all the I/O
// selects exactly as the kernel does. The selector's own `select(nr_bytes, now)` is such a channel
// used under the lock, which is how the reference model checks it.

#include <mpath/detail/sync.hpp>
#include <mpath/path_selector.hpp>
#include <mpath/selectors/detail/path_list.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <type_traits>
#include <vector>

namespace mpath::inline v0::selectors::detail {

/// What fail_path/reinstate_path change, for channels to follow. Every member but the generation
/// is written and read under the owning selector's lock.
class path_changes {
public:
  void add_path() {
    failed_.push_back(0);
    reinstated_at_.push_back(0);
  }
  std::size_t size() const noexcept { return failed_.size(); }
  bool is_failed(path_index p) const noexcept { return failed_[p] != 0; }
  /// The generation of `p`'s last reinstatement (0: never failed and reinstated).
  std::uint64_t reinstated_at(path_index p) const noexcept { return reinstated_at_[p]; }
  /// The generation a channel compares with its own; bumped after each change is in place.
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

  /// False when `p` was already failed (nothing changes, as the kernel's list).
  bool fail(path_index p) noexcept {
    if (failed_[p])
      return false;
    failed_[p] = 1;
    bump();
    return true;
  }
  bool reinstate(path_index p) noexcept {
    if (!failed_[p])
      return false;
    failed_[p] = 0;
    reinstated_at_[p] = bump();
    return true;
  }

private:
  std::uint64_t bump() noexcept {
    std::uint64_t g = generation_.load(std::memory_order_relaxed) + 1;
    generation_.store(g, std::memory_order_release);
    return g;
  }

  // Its own line: read by every select of every channel, written only by path changes.
  alignas(64) std::atomic<std::uint64_t> generation_{0};
  std::vector<std::uint8_t> failed_;
  std::vector<std::uint64_t> reinstated_at_;
};

/// A heap array on cache lines of its own: what one channel's thread writes on every select must
/// not share a line with another thread's data.
template <class T> class line_array {
public:
  void assign(std::size_t n, T value) {
    lines_.assign((n + per_line - 1) / per_line, line{});
    std::fill_n(data(), n, value);
  }
  T* data() noexcept { return lines_.empty() ? nullptr : lines_.front().v; }
  const T* data() const noexcept { return lines_.empty() ? nullptr : lines_.front().v; }
  T& operator[](std::size_t i) noexcept { return data()[i]; }
  const T& operator[](std::size_t i) const noexcept { return data()[i]; }

private:
  static constexpr std::size_t per_line = 64 / sizeof(T);
  struct alignas(64) line {
    T v[per_line]{};
  };
  static_assert(sizeof(line) == 64, "lines follow each other without a gap");
  std::vector<line> lines_;
};

/// One channel's copy of the valid list, in its own selection order. Owned by one thread at a time
/// (the channel's); refresh() runs under the selector lock.
class path_view {
public:
  /// Sized for every path and ordered as the kernel's list is now for a selector that saw every
  /// path change and no I/O: the table's order, then every change replayed (under the selector
  /// lock). A channel made after paths failed and came back must not start from table order.
  void init(const path_changes& c, bool reinstate_at_head) {
    order_.assign(c.size(), no_path);
    fresh_.assign(c.size(), no_path);
    for (path_index p = 0; p < c.size(); ++p)
      order_[p] = p;
    count_ = c.size();
    seen_ = 0;
    repeat = {};
    refresh(c, reinstate_at_head);
  }

  bool stale(std::uint64_t generation) const noexcept { return generation != seen_; }

  /// Applies every change since the last refresh, as the kernel's list would have seen them: a
  /// failed path leaves, a path reinstated since goes to the head (round-robin: latest first) or
  /// to the tail (the others: in reinstatement order), the rest keep this channel's order. A
  /// repeat on a path that changed is forgotten, as fail_path forgets it.
  void refresh(const path_changes& c, bool reinstate_at_head) noexcept {
    std::uint64_t seen = seen_;
    auto changed = [&](path_index p) { return c.is_failed(p) || c.reinstated_at(p) > seen; };
    std::size_t kept = 0;
    for (std::size_t i = 0; i < count_; ++i)
      if (!changed(order_[i]))
        order_[kept++] = order_[i];
    // Paths reinstated since, by generation (few: insertion sort, no allocation).
    std::size_t n = 0;
    for (path_index p = 0; p < c.size(); ++p) {
      if (c.is_failed(p) || c.reinstated_at(p) <= seen)
        continue;
      std::size_t at = n++;
      while (at > 0 && c.reinstated_at(fresh_[at - 1]) > c.reinstated_at(p)) {
        fresh_[at] = fresh_[at - 1];
        --at;
      }
      fresh_[at] = p;
    }
    if (reinstate_at_head) {
      std::memmove(order_.data() + n, order_.data(), kept * sizeof(path_index));
      for (std::size_t i = 0; i < n; ++i)
        order_[i] = fresh_[n - 1 - i];
    } else {
      for (std::size_t i = 0; i < n; ++i)
        order_[kept + i] = fresh_[i];
    }
    count_ = kept + n;
    if (path_index r = repeat.current(); r != no_path && changed(r))
      repeat.forget(r);
    seen_ = c.generation();
  }

  std::span<const path_index> valid() const noexcept { return {order_.data(), count_}; }

  /// The kernel's list_move_tail of the entry at `pos`.
  void move_to_tail(std::size_t pos) noexcept {
    path_index p = order_[pos];
    std::memmove(order_.data() + pos, order_.data() + pos + 1, (count_ - pos - 1) * sizeof(path_index));
    order_[count_ - 1] = p;
  }

  repeat_state repeat;

private:
  line_array<path_index> order_;
  line_array<path_index> fresh_; // refresh()'s scratch, sized once
  std::size_t count_ = 0;
  std::uint64_t seen_ = 0;
};

/// A path's in-flight work (I/Os or bytes) in one channel, as what was started less what ended:
/// the channel's thread is the only one to start I/O on its own channel, so a start is a plain
/// store; completions may come from any thread.
template <class Sync, class T> struct io_counts {
  using counter_type = typename Sync::template counter<T>;

  T in_flight() const noexcept {
    return T(started.load(std::memory_order_relaxed) - ended.load(std::memory_order_relaxed));
  }
  /// `many_starters`: the selector's own channel, which every thread starts I/O on.
  void start(T n, bool many_starters) noexcept {
    if (many_starters)
      started.fetch_add(n, std::memory_order_relaxed);
    else
      started.store(T(started.load(std::memory_order_relaxed) + n), std::memory_order_relaxed);
  }
  void end(T n) noexcept { ended.fetch_add(n, std::memory_order_relaxed); }

  counter_type started{}; ///< written by the channel's thread only (not so for the shared one)
  counter_type ended{};   ///< written by whichever thread completes
};

/// One channel's state in one selector: its view, a per-path `Entry` (io_counts, or the selector's
/// own record; none when `Entry` is void) and its link in the selector's list of channels, which
/// the status sums walk under the selector lock.
template <class Sync, class Entry> class alignas(64) channel_state {
public:
  using entry_type = Entry;

  channel_state() = default;
  channel_state(const channel_state&) = delete;
  channel_state& operator=(const channel_state&) = delete;

  path_view view;

  Entry& entry(path_index p) noexcept { return lines_[p / per_line].e[p % per_line]; }
  const Entry& entry(path_index p) const noexcept { return lines_[p / per_line].e[p % per_line]; }
  /// The selector's own channel, which every thread starts I/O on.
  bool many_starters() const noexcept { return many_starters_; }

  /// In-flight work this channel put on path `p` (Entry = io_counts or alike).
  auto in_flight(path_index p) const noexcept { return entry(p).in_flight(); }
  /// From the channel's own thread, or, for the selector's own channel, from any thread.
  template <class T> void start(path_index p, T n) noexcept { entry(p).start(n, many_starters_); }
  /// From any thread (completions).
  template <class T> void end(path_index p, T n) noexcept { entry(p).end(n); }

private:
  template <class, class> friend class channel_core;
  // A channel's entries share lines with each other and with no other channel's: whole 64-byte
  // lines, allocated per channel. Packed even in the selector's own channel, which every thread
  // uses: a select reads every valid path's entry, and one line moving between cores costs less
  // than one line per path (measured: queue-length at two threads 10 M/s packed, 3.4 M/s spread).
  static constexpr std::size_t per_line = 64 / sizeof(Entry) > 0 ? 64 / sizeof(Entry) : 1;
  struct alignas(64) line {
    Entry e[per_line]{};
  };
  std::vector<line> lines_;
  bool many_starters_ = false;
  channel_state* prev_ = nullptr;
  channel_state* next_ = nullptr;
};

template <class Sync> class alignas(64) channel_state<Sync, void> {
public:
  using entry_type = void;

  channel_state() = default;
  channel_state(const channel_state&) = delete;
  channel_state& operator=(const channel_state&) = delete;
  path_view view;

private:
  template <class, class> friend class channel_core;
  channel_state* prev_ = nullptr;
  channel_state* next_ = nullptr;
};

/// What the list-based selectors share: the lock, the path changes, the selector's own (locked)
/// channel, the list of channels, and select's skeleton.
template <class Sync, class Entry> class channel_core {
public:
  using lock_type = typename Sync::lock_type;
  using state = channel_state<Sync, Entry>;

  explicit channel_core(bool reinstate_at_head) : reinstate_at_head_(reinstate_at_head) {}

  /// Construction only, before any other channel and any I/O: the selector's own channel grows
  /// with it.
  void add_path(std::uint32_t repeat_count) {
    changes_.add_path();
    repeat_count_.push_back(repeat_count);
    if (head_ == &shared_)
      detach(shared_);
    if constexpr (!std::is_void_v<Entry>)
      shared_.many_starters_ = true;
    valid_count_.store(valid_count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    attach(shared_);
  }
  std::uint32_t repeat_count(path_index p) const noexcept { return repeat_count_[p]; }
  void attach(state& s) {
    std::lock_guard guard(lock_);
    s.view.init(changes_, reinstate_at_head_);
    if constexpr (!std::is_void_v<Entry>)
      s.lines_ = std::vector<typename state::line>((changes_.size() + state::per_line - 1) / state::per_line);
    s.prev_ = nullptr;
    s.next_ = head_;
    if (head_)
      head_->prev_ = &s;
    head_ = &s;
  }
  /// The channel must have no I/O in flight (its counters go with it).
  void detach(state& s) noexcept {
    std::lock_guard guard(lock_);
    (s.prev_ ? s.prev_->next_ : head_) = s.next_;
    if (s.next_)
      s.next_->prev_ = s.prev_;
    s.prev_ = s.next_ = nullptr;
  }

  /// select's skeleton: bring the view up to date, reuse a repeat, else let `choose` pick a
  /// position in the valid list; the chosen entry goes to the tail (ties rotate evenly).
  template <class Choose> path_index select(state& s, Choose&& choose) noexcept {
    if (s.view.stale(changes_.generation())) {
      std::lock_guard guard(lock_);
      s.view.refresh(changes_, reinstate_at_head_);
    }
    return choose_in(s, choose);
  }

  /// The selector's own channel, under the lock (PathSelector::select: callers without a channel).
  template <class Choose> path_index select_shared(Choose&& choose) noexcept {
    std::lock_guard guard(lock_);
    if (shared_.view.stale(changes_.generation()))
      shared_.view.refresh(changes_, reinstate_at_head_);
    return choose_in(shared_, choose);
  }
  state& shared() noexcept { return shared_; }

  void fail_path(path_index p) noexcept {
    std::lock_guard guard(lock_);
    if (changes_.fail(p))
      valid_count_.store(valid_count_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  void reinstate_path(path_index p) noexcept {
    std::lock_guard guard(lock_);
    if (changes_.reinstate(p))
      valid_count_.store(valid_count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  /// Valid paths now, without the lock (written under it).
  std::uint32_t valid_count() const noexcept { return valid_count_.load(std::memory_order_relaxed); }

  /// Σ over every channel of its in-flight work on `p` (status; not on the I/O path).
  auto sum(path_index p) const noexcept requires(!std::is_void_v<Entry>) {
    std::lock_guard guard(lock_);
    decltype(shared_.in_flight(p)) total{};
    for (const state* s = head_; s; s = s->next_)
      total = decltype(total)(total + s->in_flight(p));
    return total;
  }
  /// Calls `f(const state&)` for every attached channel, the selector's own included, under the
  /// lock (status; not on the I/O path).
  template <class F> void for_each_channel(F&& f) const {
    std::lock_guard guard(lock_);
    for (const state* s = head_; s; s = s->next_)
      f(*s);
  }

private:
  template <class Choose> path_index choose_in(state& s, Choose& choose) noexcept {
    if (path_index again = s.view.repeat.reuse(); again != no_path)
      return again;
    auto valid = s.view.valid();
    std::size_t pos = valid.empty() ? valid.size() : choose(valid);
    if (pos >= valid.size())
      return no_path;
    path_index p = valid[pos];
    s.view.move_to_tail(pos);
    s.view.repeat.chose(p, repeat_count_[p]);
    return p;
  }

  mutable lock_type lock_;
  path_changes changes_;
  bool reinstate_at_head_;
  std::vector<std::uint32_t> repeat_count_;
  typename Sync::template counter<std::uint32_t> valid_count_{0}; ///< written under lock_
  state* head_ = nullptr; ///< every attached channel, the shared one included (under lock_)
  state shared_;
};

} // namespace mpath::inline v0::selectors::detail
