#pragma once
// fault_injector<B>: a backend decorator that makes paths misbehave on demand, around any backend
// that reports completions through a completion_sink (every adapter here). Per path it can
//   - fail I/O with a chosen status, either before the I/O reaches the path (the data is not
//     touched) or after the path really did it (the write landed, but the answer is an error);
//   - fail only the next N I/Os;
//   - delay I/O by a fixed latency before handing it to the path;
//   - fail probes (what the path checker sees).
// `path_down`/`path_up` combine I/O and probe failure, as a pulled cable would.
//
// Faults are kept per path token (the path's name in the table), not per handle: a reload opens
// its table's paths again, and a token opened again is the same path, with the same faults, for
// the old table's I/O still in flight and for the new table's.
//
//   mpath::adapters::fault_injector<mpath::adapters::posix_backend<>> backend;
//   ... create the engine over `backend` ...
//   backend.path_down(*backend.find("/dev/sdb"));   // its I/O now ends in `transport`

#include "common.hpp"

#include <mpath/error.hpp>
#include <mpath/io_backend.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mpath::adapters {

/// When an injected I/O failure happens.
enum class fault_when : std::uint8_t {
  before, ///< the I/O never reaches the path
  after,  ///< the path performs it, then the completion is replaced by the error
};

/// Models mpath::IoBackend when B does. B is the wrapped backend, owned (`fault_injector<X>`,
/// constructed from the arguments) or borrowed (`fault_injector<X&>`, constructed from an X&).
///
/// Thread safety: every member from any thread; `open_path` from one thread at a time (engine
/// construction, a reload), also while I/O runs when the wrapped backend allows that. Injected
/// failures of the `before` kind complete inside `submit`, which the IoBackend contract allows.
template <class B> class fault_injector {
  struct path_fault;

public:
  using inner_type = std::remove_reference_t<B>;
  using io_type = typename inner_type::io_type;
  struct handle_type {
    typename inner_type::handle_type inner;
    std::uint32_t id = 0;        ///< the token's id: tokens are numbered in the order first opened
    path_fault* fault = nullptr; ///< the token's faults
  };

  template <class... Args> explicit fault_injector(Args&&... args) : inner_(std::forward<Args>(args)...) {
    if constexpr (requires { inner_.set_sink(completion_sink<io_type>{}); })
      inner_.set_sink({this, &inner_complete, nullptr, nullptr});
    timer_ = std::thread([this] { timer_loop(); });
  }
  fault_injector(const fault_injector&) = delete;
  fault_injector& operator=(const fault_injector&) = delete;
  /// Hands I/O still waiting out its latency to the path at once, then stops the timer thread.
  ~fault_injector() {
    {
      std::lock_guard guard(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    timer_.join();
  }

  inner_type& inner() noexcept { return inner_; }
  void set_sink(const completion_sink<io_type>& s) noexcept { sink_ = s; }

  // ---- IoBackend

  result<handle_type> open_path(std::string_view device) {
    auto h = inner_.open_path(device);
    if (!h)
      return std::move(h).err();
    std::lock_guard guard(mutex_);
    auto id = find_locked(device);
    if (!id) {
      paths_.emplace_back().device = std::string(device);
      id = std::uint32_t(paths_.size() - 1);
    }
    return handle_type{std::move(*h), *id, &paths_[*id]};
  }

  void submit(handle_type& h, io_type& io) noexcept {
    auto& p = *h.fault;
    p.busy.fetch_add(1, std::memory_order_seq_cst); // before looking at the faults: see settled()
    if (auto s = take_failure(p)) {
      p.injected.fetch_add(1, std::memory_order_relaxed);
      sink_.complete(sink_.ctx, io, *s);
      p.busy.fetch_sub(1, std::memory_order_seq_cst);
      return;
    }
    if (p.fail_after.load(std::memory_order_acquire)) {
      std::lock_guard guard(mutex_);
      doomed_.emplace(&io, &p); // the path does it; inner_complete swaps the status
      doomed_count_.fetch_add(1, std::memory_order_release);
      p.doomed.fetch_add(1, std::memory_order_seq_cst);
    }
    p.busy.fetch_sub(1, std::memory_order_seq_cst);
    if (std::uint64_t lat = p.latency_ns.load(std::memory_order_relaxed)) {
      p.waiting.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard guard(mutex_);
      delayed_.push_back({steady_ns() + lat, &h, &io});
      std::push_heap(delayed_.begin(), delayed_.end(), later);
      wake_.notify_one();
      return;
    }
    inner_.submit(h.inner, io);
  }

  void io_done(io_type& io, blk_status s) noexcept { inner_.io_done(io, s); }

  blk_status probe(handle_type& h) noexcept {
    auto& p = *h.fault;
    if (p.probe_fails.load(std::memory_order_acquire))
      return p.probe_status.load(std::memory_order_relaxed);
    return inner_.probe(h.inner);
  }

  void kick_requeue() noexcept {
    if (sink_.kick)
      sink_.kick(sink_.ctx);
  }
  void on_event(const path_event& e) noexcept {
    if (sink_.event)
      sink_.event(sink_.ctx, e);
  }

  // ---- controls, by path id (the order in which tokens were first opened; `find` maps a table
  // token to it)

  std::optional<std::uint32_t> find(std::string_view device) const noexcept {
    std::lock_guard guard(mutex_);
    return find_locked(device);
  }
  /// How many distinct tokens were opened.
  std::size_t path_count() const noexcept {
    std::lock_guard guard(mutex_);
    return paths_.size();
  }
  const std::string& device(std::uint32_t id) const noexcept { return path(id).device; }

  /// Every I/O dispatched to the path from now on fails with `s`.
  void fail_io(std::uint32_t id, blk_status s, fault_when when = fault_when::before) noexcept {
    auto& p = path(id);
    if (when == fault_when::before) {
      p.fail_status.store(s, std::memory_order_relaxed);
      p.fail_after.store(false, std::memory_order_release);
      p.fails.store(true, std::memory_order_release);
    } else {
      p.fails.store(false, std::memory_order_release);
      p.after_status.store(s, std::memory_order_relaxed);
      p.fail_after.store(true, std::memory_order_release);
    }
  }
  /// Only the next `count` I/Os dispatched to the path fail, with `s`, before reaching it.
  void fail_next(std::uint32_t id, std::uint32_t count, blk_status s) noexcept {
    auto& p = path(id);
    p.next_status.store(s, std::memory_order_relaxed);
    p.fail_next.store(count, std::memory_order_release);
  }
  void clear_io(std::uint32_t id) noexcept {
    auto& p = path(id);
    p.fails.store(false, std::memory_order_release);
    p.fail_after.store(false, std::memory_order_release);
    p.fail_next.store(0, std::memory_order_release);
  }
  /// Probes of the path answer `s` (a path error reads as "down" to a checker).
  void fail_probe(std::uint32_t id, blk_status s = blk_status::transport) noexcept {
    auto& p = path(id);
    p.probe_status.store(s, std::memory_order_relaxed);
    p.probe_fails.store(true, std::memory_order_release);
  }
  void clear_probe(std::uint32_t id) noexcept { path(id).probe_fails.store(false, std::memory_order_release); }
  /// Every I/O waits this long before it reaches the path (0: none).
  void set_latency(std::uint32_t id, std::uint64_t ns) noexcept {
    path(id).latency_ns.store(ns, std::memory_order_relaxed);
  }
  /// The path is gone: its I/O and its probes fail with `s`.
  void path_down(std::uint32_t id, blk_status s = blk_status::transport) noexcept {
    fail_probe(id, s);
    fail_io(id, s);
  }
  /// The path is back: no I/O or probe failure (latency stays).
  void path_up(std::uint32_t id) noexcept {
    clear_io(id);
    clear_probe(id);
  }
  /// True when no failure injected on the path is still on its way to the engine: no submit is
  /// deciding on the faults, no fail-after I/O is in flight. After `path_up`, wait for this before
  /// reinstating the path, or a late error can fail it again (as a late error would on a real
  /// transport).
  bool settled(std::uint32_t id) const noexcept {
    const auto& p = path(id);
    return p.busy.load(std::memory_order_seq_cst) == 0 && p.doomed.load(std::memory_order_seq_cst) == 0;
  }
  /// How many I/Os dispatched to the path wait out their latency now (they have not reached it).
  std::uint32_t delayed(std::uint32_t id) const noexcept { return path(id).waiting.load(std::memory_order_relaxed); }
  /// How many I/Os on the path were failed by injection.
  std::uint64_t injected(std::uint32_t id) const noexcept { return path(id).injected.load(std::memory_order_relaxed); }

private:
  struct path_fault {
    std::string device;
    std::atomic<bool> fails{false};
    std::atomic<blk_status> fail_status{blk_status::transport};
    std::atomic<bool> fail_after{false};
    std::atomic<blk_status> after_status{blk_status::transport};
    std::atomic<std::uint32_t> fail_next{0};
    std::atomic<blk_status> next_status{blk_status::transport};
    std::atomic<bool> probe_fails{false};
    std::atomic<blk_status> probe_status{blk_status::transport};
    std::atomic<std::uint64_t> latency_ns{0};
    std::atomic<std::uint64_t> injected{0};
    std::atomic<std::uint32_t> busy{0};    ///< submits deciding on the faults now
    std::atomic<std::uint32_t> doomed{0};  ///< fail-after I/Os not yet reported
    std::atomic<std::uint32_t> waiting{0}; ///< I/Os waiting out the latency
  };
  struct delayed_io {
    std::uint64_t due_ns;
    handle_type* handle; // the engine's path keeps it alive and in place
    io_type* io;
  };
  static bool later(const delayed_io& a, const delayed_io& b) noexcept { return a.due_ns > b.due_ns; }

  std::optional<std::uint32_t> find_locked(std::string_view device) const noexcept {
    for (std::size_t i = 0; i < paths_.size(); ++i)
      if (paths_[i].device == device)
        return std::uint32_t(i);
    return std::nullopt;
  }
  path_fault& path(std::uint32_t id) noexcept {
    std::lock_guard guard(mutex_);
    return paths_[id];
  }
  const path_fault& path(std::uint32_t id) const noexcept {
    std::lock_guard guard(mutex_);
    return paths_[id];
  }

  static std::optional<blk_status> take_failure(path_fault& p) noexcept {
    if (p.fails.load(std::memory_order_acquire))
      return p.fail_status.load(std::memory_order_relaxed);
    for (std::uint32_t n = p.fail_next.load(std::memory_order_acquire); n > 0;)
      if (p.fail_next.compare_exchange_weak(n, n - 1, std::memory_order_acq_rel))
        return p.next_status.load(std::memory_order_relaxed);
    return std::nullopt;
  }

  static void inner_complete(void* ctx, io_type& io, blk_status s) noexcept {
    auto* self = static_cast<fault_injector*>(ctx);
    if (self->doomed_count_.load(std::memory_order_acquire) > 0) {
      path_fault* doomed = nullptr;
      {
        std::lock_guard guard(self->mutex_);
        if (auto it = self->doomed_.find(&io); it != self->doomed_.end()) {
          doomed = it->second;
          self->doomed_.erase(it);
          self->doomed_count_.fetch_sub(1, std::memory_order_release);
        }
      }
      if (doomed) {
        auto& p = *doomed;
        p.injected.fetch_add(1, std::memory_order_relaxed);
        s = p.after_status.load(std::memory_order_relaxed);
        self->sink_.complete(self->sink_.ctx, io, s);
        p.doomed.fetch_sub(1, std::memory_order_seq_cst); // reported: the engine has seen it
        return;
      }
    }
    self->sink_.complete(self->sink_.ctx, io, s);
  }

  void timer_loop() {
    std::vector<delayed_io> ready;
    std::unique_lock lock(mutex_);
    for (;;) {
      std::uint64_t now = steady_ns();
      while (!delayed_.empty() && (stopping_ || delayed_.front().due_ns <= now)) {
        std::pop_heap(delayed_.begin(), delayed_.end(), later);
        ready.push_back(delayed_.back());
        delayed_.pop_back();
      }
      if (!ready.empty()) {
        lock.unlock();
        for (auto& d : ready) {
          path_fault& p = *d.handle->fault; // the handle may go once the I/O is done; p stays
          inner_.submit(d.handle->inner, *d.io);
          p.waiting.fetch_sub(1, std::memory_order_relaxed);
        }
        ready.clear();
        lock.lock();
        continue;
      }
      if (stopping_)
        return;
      if (delayed_.empty())
        wake_.wait(lock);
      else
        wake_.wait_for(lock, std::chrono::nanoseconds(delayed_.front().due_ns - now));
    }
  }

  B inner_;
  completion_sink<io_type> sink_;
  mutable std::mutex mutex_;
  std::deque<path_fault> paths_; // one per token; grows only in open_path, elements never move; guarded by mutex_
  std::condition_variable wake_;
  std::vector<delayed_io> delayed_;                  // heap by due time; guarded by mutex_
  std::unordered_map<io_type*, path_fault*> doomed_; // fail-after I/Os and their path; guarded by mutex_
  std::atomic<std::size_t> doomed_count_{0};         // doomed_.size(), read without the lock
  bool stopping_ = false;                            // guarded by mutex_
  std::thread timer_;
};

} // namespace mpath::adapters
