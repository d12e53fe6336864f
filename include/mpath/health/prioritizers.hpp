#pragma once
// Every prioritizer beside the health layer's default, multipathd's `const` (const_prioritizer in
// health/prioritizer.hpp): `ana` for NVMe, `path_latency` and `weightedpath` (multipathd.md b.6,
// docs/prioritizers.md). The ALUA one needs SG_IO and lives with that adapter
// (examples/adapters/sg_health.hpp).

#include <mpath/health/prioritizer.hpp>
#include <mpath/health/prioritizers/ana.hpp>
#include <mpath/health/prioritizers/path_latency.hpp>
#include <mpath/health/prioritizers/weighted_path.hpp>
