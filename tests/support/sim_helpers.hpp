#pragma once
// Shared vocabulary of the engine scenario tests: build a simulated device, read its status,
// send messages, submit and complete single I/Os.

#include <mpath/multipath.hpp>
#include <mpath/testing/sim.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mpath_test {

using device = mpath::testing::sim_device<>;
using lines = std::vector<std::string>;

inline std::unique_ptr<device> make(std::string_view table_text, mpath::engine_options options = {}) {
  auto d = device::create(table_text, options);
  REQUIRE(d);
  return std::move(*d);
}

inline std::string info(device& d) { return d.engine().status(mpath::status_type::info); }
inline std::string table(device& d) { return d.engine().status(mpath::status_type::table); }

/// Sends a message that must succeed.
inline void message(device& d, std::string_view text) {
  INFO("message: ", text);
  REQUIRE(d.engine().message(text));
}

inline mpath::disposition submit(device& d, mpath::testing::sim_io& io, std::uint64_t bytes = 4096) {
  io.nr_bytes = bytes;
  return d.device().submit(io);
}

/// Completes the oldest I/O in flight on `device_name` with `status`; returns the engine's answer.
inline mpath::disposition complete_one(device& d, std::string_view device_name, mpath::blk_status status) {
  auto ios = d.backend().take_in_flight(device_name, 1);
  REQUIRE(ios.size() == 1);
  return d.device().complete(*ios[0], status); // the engine that dispatched it, after a reload too
}

} // namespace mpath_test
