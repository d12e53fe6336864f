#pragma once
// Every selector the library ships, and the default set a table may name.

#include <mpath/selector_set.hpp>
#include <mpath/selectors/queue_length.hpp>
#include <mpath/selectors/round_robin.hpp>
#include <mpath/selectors/service_time.hpp>

namespace mpath::inline v0 {

using default_selectors = selector_set<selectors::round_robin, selectors::queue_length, selectors::service_time>;

} // namespace mpath::inline v0
