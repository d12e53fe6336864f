#pragma once
// A simulated device with the health layer beside it, as mpathctl runs one (product.md §6, §8):
// a `sim_device`, the scripted checker and prioritizer that `probe` and `prio` set, a log that
// `log` prints, and a `health_monitor` that exists from the device's first accepted `policy`
// command on. A device that never gets one behaves exactly as a plain `sim_device`.
//
// It is also the monitor's owner for the regroup hand-off (§8.5): `sleep` stops after each tick
// and, when the tick asked for a regrouping reload, does it there (health_monitor::
// reload_if_wanted), as a product's control thread would when its reload listener fires.

#include <mpath/health/log.hpp>
#include <mpath/health/monitor.hpp>
#include <mpath/health/path_checker.hpp>
#include <mpath/testing/sim.hpp>
#include <mpath/testing/sim_checker.hpp>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mpath::inline v0::testing {

template <class Traits = sim_traits> class health_sim_device {
public:
  using device_type = sim_device<Traits>;
  using monitor_type =
      health::health_monitor<typename device_type::engine_type, sim_checker, sim_prioritizer, health::vector_log_sink>;

  static result<std::unique_ptr<health_sim_device>> create(std::string_view table_text, std::string map_name = "mp") {
    auto d = device_type::create(table_text);
    if (!d)
      return std::move(d).err();
    return std::unique_ptr<health_sim_device>(new health_sim_device(std::move(*d), std::move(map_name)));
  }

  health_sim_device(const health_sim_device&) = delete;
  health_sim_device& operator=(const health_sim_device&) = delete;
  /// The monitor goes first (§8.6: it sends fail_if_no_path unless `no_path_retry queue`), then
  /// the device.
  ~health_sim_device() { stop_health(); }

  device_type& device() noexcept { return *device_; }
  sim_checker& checker() noexcept { return checker_; }
  sim_prioritizer& prioritizer() noexcept { return prio_; }
  monitor_type* monitor() noexcept { return monitor_.get(); }
  const std::string& map_name() const noexcept { return map_; }

  /// mpathctl's `policy`: the first accepted one starts the health layer (§8.1: first tick 1 s
  /// later). A rejected key or value changes nothing, and so starts nothing.
  result<void> policy(std::string_view key, std::span<const std::string> values) {
    if (monitor_)
      return monitor_->set(key, values);
    health::health_settings settings;
    if (auto r = health::apply_setting(settings, key, values); !r)
      return r;
    monitor_ = std::make_unique<monitor_type>(device_->engine(), checker_, prio_, sink_, map_, settings);
    forward_ = std::make_unique<forward_events<monitor_type>>(device_->backend(), *monitor_);
    monitor_->start(); // its message's deferred effects run at the next run or sleep, as a message's
    return {};
  }

  /// `reload NAME PARAMS...` (product.md §6): the device's reload, then the running health layer
  /// follows the new table (health_monitor::table_reloaded).
  result<void> reload(std::string_view table_text) {
    if (auto r = device_->reload(table_text); !r)
      return r;
    if (monitor_) {
      monitor_->table_reloaded(device_->engine(), [this] { device_->executor().run(); });
      device_->run();
    }
    return {};
  }

  /// mpathctl's `sleep` (§8.1): the device's sleep, stopped at each tick of the health layer so a
  /// regrouping reload the tick asked for is done right after it (and its deferred work), before
  /// the next tick.
  void sleep(std::uint64_t ms) {
    auto& exec = device_->executor();
    const std::uint64_t target = exec.now_ns() + ms * 1'000'000;
    bool slept = false;
    while (monitor_) {
      std::uint64_t due = monitor_->next_tick_ns();
      if (due > target || due < exec.now_ns())
        break;
      device_->sleep((due - exec.now_ns()) / 1'000'000); // the tick, then run until quiescent
      slept = true;
      if (!monitor_ || monitor_->next_tick_ns() == due)
        break; // no tick ran (none is scheduled any more): nothing to stop for
      regroup();
    }
    if (!slept || exec.now_ns() < target)
      device_->sleep((target - exec.now_ns()) / 1'000'000);
  }

  /// Does the regrouping reload the health layer asked for, if any (health_monitor::
  /// reload_if_wanted), then runs the deferred work it caused.
  void regroup() {
    if (!monitor_)
      return;
    if (auto r = monitor_->reload_if_wanted(*device_, [this] { device_->executor().run(); }); r && *r)
      device_->run();
  }

  void probe(std::string_view path, health::check_result r) { checker_.set_result(path, r); }
  void prio(std::string_view path, int priority) { prio_.set_priority(path, priority); }
  std::vector<std::string> take_log() { return sink_.take(); }
  /// What `take_log` would return, without taking it.
  std::vector<std::string> peek_log() const { return sink_.peek(); }

  /// Stops the health layer (as multipathd exiting); the device stays.
  void stop_health() {
    if (!monitor_)
      return;
    forward_.reset();
    monitor_->stop([this] { device_->executor().run(); });
    monitor_.reset();
    device_->run();
  }

private:
  health_sim_device(std::unique_ptr<device_type> d, std::string map_name)
      : device_(std::move(d)), map_(std::move(map_name)) {}

  std::unique_ptr<device_type> device_;
  std::string map_;
  sim_checker checker_;
  sim_prioritizer prio_;
  health::vector_log_sink sink_;
  std::unique_ptr<monitor_type> monitor_;
  std::unique_ptr<forward_events<monitor_type>> forward_;
};

} // namespace mpath::inline v0::testing
