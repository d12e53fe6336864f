#pragma once
// engine_host: plays the part of DM core around an engine for the real adapters. It owns the
// engine, receives the adapter's completions (through the adapter's completion_sink) and acts on
// the engine's answers: in request mode an I/O answered `requeue` is resubmitted at once, one
// answered `delay_requeue` after 100 ms or as soon as the engine asks for the requeue list to be
// re-driven (kick_requeue: pg_init finished, a path came back). In bio mode the engine holds and
// reissues I/O itself and the requeue list stays empty.
//
//   mpath::thread_executor exec;
//   mpath::adapters::posix_backend<> backend;
//   auto host = mpath::adapters::engine_host<decltype(backend)>::create(backend, exec, table_text);
//   host.value()->submit(io);   // io.on_done(io, status) runs exactly once, on some adapter thread
//
// A thread that submits much I/O should do it through a channel of its own (make_channel,
// mapped_device::channel: per-thread selection state, docs/performance.md); the requeue thread has
// one. The engine sits in a mapped_device, so `reload` adds and removes paths with I/O running
// (docs/reload.md).
//
// With a health monitor regrouping the device (path_grouping_policy, docs/grouping.md), the host is
// the monitor's owner for the reload: the monitor's reload listener wakes the product's control
// thread, which calls `monitor.reload_if_wanted(host.device())` (not from a completion or the
// executor: a reload waits for activations that run there).

#include "common.hpp"

#include <mpath/mapped_device.hpp>
#include <mpath/multipath.hpp>
#include <mpath/requeue_list.hpp>
#include <mpath/thread_executor.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

namespace mpath::adapters {

/// Thread safety: `submit` from any thread; completions arrive from adapter threads; the requeue
/// list is re-driven on the host's own thread. Destroy the host only when no I/O is in flight in
/// the backend any more: it stops the requeue thread, shuts the engine down, and fails whatever
/// is still waiting for a requeue with `ioerr`.
template <class Backend, class Exec = thread_executor, class Traits = default_traits> class engine_host {
public:
  using engine_type = multipath<Backend, Exec, Traits>;
  using device_type = mapped_device<Backend, Exec, Traits>;
  using channel = typename device_type::channel;
  using io_type = typename Backend::io_type;
  using event_fn = void (*)(void* ctx, const path_event& e) noexcept;
  static constexpr std::uint64_t delay_requeue_ns = requeue_list<io_type>::default_delay_ns; ///< DM core's 100 ms

  static result<std::unique_ptr<engine_host>> create(Backend& backend, Exec& exec, std::string_view table_text,
                                                     engine_options options = {}) {
    std::unique_ptr<engine_host> h(new engine_host(backend));
    backend.set_sink({h.get(), &on_complete, &on_kick, &on_event});
    auto device = device_type::create(backend, exec, table_text, options);
    if (!device)
      return std::move(device).err();
    h->device_ = std::move(*device);
    h->requeue_channel_ = std::make_unique<channel>(*h->device_);
    h->thread_ = std::thread([p = h.get()] { p->requeue_loop(); });
    return h;
  }

  engine_host(const engine_host&) = delete;
  engine_host& operator=(const engine_host&) = delete;
  ~engine_host() {
    {
      std::lock_guard guard(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable())
      thread_.join();
    requeue_channel_.reset();
    device_.reset(); // shutdown: waits for activations, fails I/O the engine holds (bio mode)
    auto left = list_.take_all();
    while (io_type* io = left.pop_front())
      backend_.io_done(*io, blk_status::ioerr);
  }

  /// The live table's engine (messages, status, suspend/resume).
  engine_type& engine() noexcept { return device_->engine(); }
  device_type& device() noexcept { return *device_; }

  /// mapped_device::reload: a new table with I/O running; nothing changes when it is bad. From
  /// one thread at a time, not from a completion or an engine callback.
  result<void> reload(std::string_view table_text) { return device_->reload(table_text); }

  /// A new I/O from the application.
  void submit(io_type& io) noexcept { act(io, device_->submit(io)); }
  /// The same through the submitting thread's channel.
  void submit(io_type& io, channel& ch) noexcept { act(io, device_->submit(io, ch)); }

  /// A channel for one submitting thread. Destroy it before the host, with none of the I/O
  /// submitted through it in flight.
  std::unique_ptr<channel> make_channel() { return std::make_unique<channel>(*device_); }

  /// Called with every path event, on the executor's thread. Set it before I/O starts.
  void set_event_listener(event_fn fn, void* ctx) noexcept {
    listener_ = fn;
    listener_ctx_ = ctx;
  }

  /// I/O waiting in the requeue list now (request mode), plus what the engine holds (bio mode).
  std::size_t held() const {
    std::size_t n = device_->engine().queued();
    std::lock_guard guard(mutex_);
    return n + list_.size();
  }
  /// How many times an I/O was put on the requeue list.
  std::uint64_t requeues() const {
    std::lock_guard guard(mutex_);
    return requeues_;
  }

private:
  explicit engine_host(Backend& backend) : backend_(backend) {}

  static void on_complete(void* ctx, io_type& io, blk_status s) noexcept {
    auto* self = static_cast<engine_host*>(ctx);
    self->act(io, self->device_->complete(io, s));
  }
  static void on_kick(void* ctx) noexcept {
    auto* self = static_cast<engine_host*>(ctx);
    std::lock_guard guard(self->mutex_);
    self->list_.kick();
    self->wake_.notify_one();
  }
  static void on_event(void* ctx, const path_event& e) noexcept {
    auto* self = static_cast<engine_host*>(ctx);
    if (self->listener_)
      self->listener_(self->listener_ctx_, e);
  }

  void act(io_type& io, disposition d) noexcept {
    if (d != disposition::requeue && d != disposition::delay_requeue)
      return; // dispatched, held by the engine, or finished
    // Notify under the lock: the I/O may be resubmitted, finish, and the application tear the host
    // down before a notify made after unlocking would run.
    std::lock_guard guard(mutex_);
    list_.hold(io, d, steady_ns());
    ++requeues_;
    wake_.notify_one();
  }

  void requeue_loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      std::uint64_t now = steady_ns();
      auto due = list_.take_due(now);
      if (due.empty()) {
        std::uint64_t next = 0;
        if (!list_.next_due(next))
          wake_.wait(lock);
        else if (next > now)
          wake_.wait_for(lock, std::chrono::nanoseconds(next - now));
        continue;
      }
      lock.unlock();
      while (io_type* io = due.pop_front())
        submit(*io, *requeue_channel_); // the engine's new answer may hold it again
      lock.lock();
    }
  }

  Backend& backend_;
  std::unique_ptr<device_type> device_;
  std::unique_ptr<channel> requeue_channel_; // the requeue thread's
  event_fn listener_ = nullptr;
  void* listener_ctx_ = nullptr;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  requeue_list<io_type, null_lock> list_; // guarded by mutex_
  std::uint64_t requeues_ = 0;            // guarded by mutex_
  bool stopping_ = false;                 // guarded by mutex_
  std::thread thread_;
};

} // namespace mpath::adapters
