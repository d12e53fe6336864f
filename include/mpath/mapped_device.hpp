#pragma once
// mapped_device: DM core's part around the engine that a reload needs (the kernel's struct
// mapped_device with its live table). A reload builds the new table's engine, suspends the old one
// without flushing, makes the new one live, hands it what the old one held, and keeps the old one
// for the I/O still in flight on its paths (product.md §6 `reload`). This is how paths are added
// and removed without stopping I/O (seed 001's hot_add_disk / hot_remove_disk).

#include <mpath/multipath.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

namespace mpath::inline v0 {

/// Thread safety: submit, complete, engine() and the channels' submits from any thread, at any
/// time, also while a reload runs; reload from one thread at a time (the kernel serialises table
/// loads per device), never from an engine callback. What a reload guarantees:
///   - a bad table leaves the live one untouched and returns the constructor's error;
///   - nothing is lost or completed twice: I/O the old engine holds (bio mode's queued and
///     pushed-back I/O) goes to the new one; a submit racing the swap lands in the new table or is
///     handed to it; I/O in flight on the old table completes through the old engine, and one that
///     errs with a path error is retried through the new table (request mode: answered `requeue`,
///     as DM core resubmits to the live table; bio mode: handed over);
///   - the new table's paths start active (as the kernel's); its engine options are the old one's.
/// A replaced engine stays allocated until the device is destroyed: it may still have I/O in
/// flight, and freeing it safely would need every submitter to announce itself (an RCU grace
/// period) on the I/O path. It is small (its groups, paths and activation slots).
template <IoBackend Backend, Executor Exec, class Traits = default_traits> class mapped_device {
public:
  using engine_type = multipath<Backend, Exec, Traits>;
  using io_type = typename Backend::io_type;

  static result<std::unique_ptr<mapped_device>> create(Backend& backend, Exec& exec, std::string_view table_text,
                                                       engine_options options = {}) {
    auto e = engine_type::create(backend, exec, table_text, options);
    if (!e)
      return std::move(e).err();
    std::unique_ptr<mapped_device> d(new mapped_device(backend, exec));
    d->live_.store(e->get(), std::memory_order_release);
    d->engines_.push_back(std::move(*e));
    return d;
  }

  mapped_device(const mapped_device&) = delete;
  mapped_device& operator=(const mapped_device&) = delete;
  /// Shuts every engine down, the live one first (it fails what it still holds). Precondition as
  /// engine_type::shutdown: no other thread uses the device and no I/O is in flight.
  ~mapped_device() { shutdown(); }

  template <class Drive = yield_drive> void shutdown(Drive&& drive = {}) {
    for (auto it = engines_.rbegin(); it != engines_.rend(); ++it)
      (*it)->shutdown(drive);
  }

  /// The live table's engine (messages, status, suspend/resume, options).
  engine_type& engine() noexcept { return *live_.load(std::memory_order_acquire); }
  const engine_type& engine() const noexcept { return *live_.load(std::memory_order_acquire); }
  /// Reloads so far.
  std::size_t reloads() const {
    std::lock_guard guard(mutex_);
    return engines_.size() - 1;
  }

  /// A submitting thread's channel (engine_type::channel) that follows reloads: after one, its
  /// next submit attaches to the new table (once, allocating). Destroy it before the device, with
  /// none of its I/O in flight.
  class channel {
  public:
    explicit channel(mapped_device&) {}
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;

  private:
    friend class mapped_device;
    typename engine_type::channel& on(engine_type& e) {
      if (engine_ != &e) {
        if (current_)
          old_.push_back(std::move(current_)); // its I/O may still be in flight on the old table
        current_ = std::make_unique<typename engine_type::channel>(e);
        engine_ = &e;
      }
      return *current_;
    }
    engine_type* engine_ = nullptr;
    std::unique_ptr<typename engine_type::channel> current_;
    std::vector<std::unique_ptr<typename engine_type::channel>> old_;
  };

  /// engine_type::submit on the live table.
  [[nodiscard]] disposition submit(io_type& io) noexcept { return engine().submit(io); }
  [[nodiscard]] disposition submit(io_type& io, channel& ch) noexcept {
    engine_type& e = engine();
    return e.submit(io, ch.on(e));
  }

  /// engine_type::complete on the engine that dispatched `io`.
  [[nodiscard]] disposition complete(io_type& io, blk_status status) noexcept {
    engine_type& live = engine();
    if (replaced_.load(std::memory_order_acquire) == 0 || live.owns(io))
      return live.complete(io, status);
    return owner_of(io).complete(io, status);
  }

  /// A table loaded and not live yet (dmsetup load: the inactive table).
  struct loaded_table {
    std::unique_ptr<engine_type> engine;
  };

  /// Builds the engine of `table_text` with the live table's engine options, or returns the
  /// constructor's error (the live table is untouched). A table may not change the queue mode (DM
  /// core's rule: `can't change device type after initial table load`).
  result<loaded_table> load(std::string_view table_text) {
    engine_type& old = engine();
    auto made = engine_type::create(backend_, exec_, table_text, old.options());
    if (!made)
      return std::move(made).err();
    if ((*made)->mode() != old.mode())
      return einval("can't change device type after initial table load");
    return loaded_table{std::move(*made)};
  }

  /// Makes a loaded table live while the device is suspended (dmsetup resume does this for the
  /// kernel): the new table starts suspended without flushing, takes what the old one held, and
  /// the old one is retired (multipath::retire). Resume the device (engine().resume()) to go on.
  /// `drive` runs while the new engine's postsuspend waits (it has no activations yet).
  template <class Drive = yield_drive> void swap(loaded_table t, Drive&& drive = {}) {
    engine_type& old = engine();
    engine_type& fresh = *t.engine;
    fresh.suspend(/*noflush=*/true, drive);
    {
      // The old engine is listed before the new one goes live, so a completion never finds
      // neither owning its I/O.
      std::lock_guard guard(mutex_);
      engines_.push_back(std::move(t.engine));
      replaced_.fetch_add(1, std::memory_order_acq_rel);
      live_.store(&fresh, std::memory_order_release);
    }
    detail::io_list held = old.retire({&mapped_device::hand_off, this});
    while (io_context* io = held.pop_front())
      (void)fresh.submit(static_cast<io_type&>(*io)); // bio mode: held by the suspended new table
  }

  /// Loads `table_text` into the live device as multipathd does: load, noflush suspend, swap,
  /// resume. A device its user suspended stays suspended, with the new table, until its resume.
  /// `drive` runs while an engine waits for its activations (engine_type::postsuspend).
  template <class Drive = yield_drive> result<void> reload(std::string_view table_text, Drive&& drive = {}) {
    auto t = load(table_text);
    if (!t)
      return std::move(t).err();
    engine_type& old = engine();
    const bool was_suspended = old.suspended();
    if (!was_suspended)
      old.suspend(/*noflush=*/true, drive);
    swap(std::move(*t), drive);
    if (!was_suspended)
      engine().resume(); // reissues what the old table held, re-drives DM core's requeue list
    return {};
  }

private:
  mapped_device(Backend& backend, Exec& exec) : backend_(backend), exec_(exec) {}

  static disposition hand_off(void* context, io_type& io) noexcept {
    return static_cast<mapped_device*>(context)->submit(io);
  }

  engine_type& owner_of(const io_type& io) noexcept {
    std::lock_guard guard(mutex_);
    for (auto it = engines_.rbegin(); it != engines_.rend(); ++it)
      if ((*it)->owns(io))
        return **it;
    return engine(); // an I/O never dispatched: the live table reports it as the engine would
  }

  Backend& backend_;
  Exec& exec_;
  std::atomic<engine_type*> live_{nullptr};
  std::atomic<std::size_t> replaced_{0};              ///< reloads done: 0 keeps complete() to the live engine
  mutable std::mutex mutex_;                          ///< engines_
  std::vector<std::unique_ptr<engine_type>> engines_; ///< oldest first; the last is live
};

} // namespace mpath::inline v0
