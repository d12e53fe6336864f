#pragma once
// A completion sink for adapter unit tests: drives an adapter without an engine and waits for the
// statuses it reports.

#include "../../examples/adapters/common.hpp"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>

namespace adapter_tests {

class collector {
public:
  mpath::adapters::completion_sink<mpath::adapters::block_io> sink() noexcept { return {this, &complete}; }

  /// The status reported for `io`, waiting up to five seconds; `std::nullopt` if none came.
  std::optional<mpath::blk_status> wait(mpath::adapters::block_io& io) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, std::chrono::seconds(5), [&] { return got_.count(&io) > 0; }))
      return std::nullopt;
    return got_[&io];
  }
  /// How many times `io` was reported (must stay 1).
  int reports(mpath::adapters::block_io& io) {
    std::lock_guard guard(mutex_);
    return counts_[&io];
  }

private:
  static void complete(void* ctx, mpath::adapters::block_io& io, mpath::blk_status s) noexcept {
    auto* self = static_cast<collector*>(ctx);
    std::lock_guard guard(self->mutex_); // notify under the lock: the waiter may go away right after
    self->got_[&io] = s;
    ++self->counts_[&io];
    self->cv_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<mpath::adapters::block_io*, mpath::blk_status> got_;
  std::map<mpath::adapters::block_io*, int> counts_;
};

} // namespace adapter_tests
