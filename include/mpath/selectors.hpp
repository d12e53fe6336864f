#pragma once
// Every selector the library ships, and the default set a table may name.

#include <mpath/selector_set.hpp>
#include <mpath/selectors/historical_service_time.hpp>
#include <mpath/selectors/io_affinity.hpp>
#include <mpath/selectors/load_balance_2003.hpp>
#include <mpath/selectors/queue_length.hpp>
#include <mpath/selectors/round_robin.hpp>
#include <mpath/selectors/service_time.hpp>

namespace mpath::inline v0 {

/// The five kernel selectors (kernel-target.md §5), by their kernel names. io-affinity sees this
/// machine's CPUs (`selectors::io_affinity`); a set with `selectors::basic_io_affinity<
/// selectors::fixed_cpus<N>>` instead gives it a configured CPU count. These are the threaded
/// variants (threaded_sync); an engine builds each selector with its traits' policy
/// (`rebind_selectors_t<Traits::selectors, selector_sync_for<Traits>>`), so one whose lock is
/// `null_lock` gets `basic_round_robin<single_thread_sync>` and so on. Seed 003's
/// load-balance-2003 is not among them: `seed2003::traits` names it for the engines of 2003 tables.
using default_selectors = selector_set<selectors::round_robin, selectors::queue_length, selectors::service_time,
                                       selectors::historical_service_time, selectors::io_affinity>;

} // namespace mpath::inline v0
