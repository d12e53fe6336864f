#pragma once
// A simulated seed 003 device, as mpathctl's `create2003` makes one (product.md §6, §9): a
// `sim_device` whose engine was made from the seed's parameters (seed2003::to_table), the
// seed2003 front end beside it fed with the backend's path events, and a scripted checker whose
// answer to a test read is the path's `probe` state.

#include <mpath/seed2003.hpp>
#include <mpath/testing/sim.hpp>
#include <mpath/testing/sim_checker.hpp>

#include <memory>
#include <string_view>

namespace mpath::inline v0::testing {

template <class Traits = seed2003::traits<sim_traits>> class seed2003_sim_device {
public:
  using device_type = sim_device<Traits>;
  using engine_type = typename device_type::engine_type;
  using front_end_type = seed2003::front_end<engine_type, sim_checker>;

  /// From the seed's parameters; the seed's error texts, then the engine's.
  static result<std::unique_ptr<seed2003_sim_device>> create(std::string_view params_text) {
    auto p = seed2003::parse_params(params_text);
    if (!p)
      return std::move(p).err();
    auto d = device_type::create(mpath::format_table(seed2003::to_table(*p)));
    if (!d)
      return std::move(d).err();
    return std::unique_ptr<seed2003_sim_device>(new seed2003_sim_device(std::move(*d), std::move(*p)));
  }

  seed2003_sim_device(const seed2003_sim_device&) = delete;
  seed2003_sim_device& operator=(const seed2003_sim_device&) = delete;
  /// The front end stops (and stops hearing events) before the device goes.
  ~seed2003_sim_device() {
    device_->backend().set_event_listener({});
    front_->stop([this] { device_->executor().run(); });
    front_.reset();
  }

  device_type& device() noexcept { return *device_; }
  front_end_type& front_end() noexcept { return *front_; }
  sim_checker& checker() noexcept { return checker_; }
  /// What a test read of `path` finds from now on (mpathctl's `probe`).
  void probe(std::string_view path, health::check_result r) { checker_.set_result(path, r); }
  /// The seed's TABLE or INFO text, trailing blank included.
  std::string status(status_type type) const { return front_->status(type); }

private:
  seed2003_sim_device(std::unique_ptr<device_type> d, seed2003::params p)
      : device_(std::move(d)), front_(std::make_unique<front_end_type>(device_->engine(), checker_, std::move(p))) {
    device_->backend().set_event_listener({&front_end_type::forward_event, front_.get()});
  }

  std::unique_ptr<device_type> device_;
  sim_checker checker_;
  std::unique_ptr<front_end_type> front_; // after the device and the checker: it goes first
};

} // namespace mpath::inline v0::testing
