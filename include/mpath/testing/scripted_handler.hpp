#pragma once
// A hardware handler whose activation results come from a script: it answers to any handler name
// in the table, and an activation with nothing scripted succeeds.

#include <mpath/hw_handler.hpp>

#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace mpath::inline v0::testing {

class scripted_handler {
public:
  static bool accepts(std::string_view) noexcept { return true; }

  result<void> set_params(std::span<const std::string> args) {
    params_.assign(args.begin(), args.end());
    return {};
  }

  /// Answers at once with the next scripted result (the activation itself already ran as
  /// deferred work, so the engine sees it complete asynchronously).
  template <class P> void activate(P& path, activation_done done) noexcept {
    activation_result r = activation_result::ok;
    {
      std::lock_guard guard(mutex_);
      if (!script_.empty()) {
        r = script_.front();
        script_.pop_front();
      }
      activated_.push_back(std::string(path.device()));
    }
    done(r);
  }

  /// Appends results for the next activations.
  void push(activation_result r) {
    std::lock_guard guard(mutex_);
    script_.push_back(r);
  }

  /// Devices activated so far, in order.
  std::vector<std::string> activated() const {
    std::lock_guard guard(mutex_);
    return activated_;
  }
  const std::vector<std::string>& params() const noexcept { return params_; }

private:
  mutable std::mutex mutex_;
  std::deque<activation_result> script_;
  std::vector<std::string> activated_;
  std::vector<std::string> params_;
};

} // namespace mpath::inline v0::testing
