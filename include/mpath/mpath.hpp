#pragma once
// Everything a product needs from mpath, in one include: the engine (the kernel's dm-multipath
// target), the mapped device around it that reloads tables, its selectors and hardware-handler
// seams, the thread executor, the health layer (multipathd's half), and seed 003's front end
// (docs/seed2003.md). Not included: mpath/testing/ (the simulation, the reference models and the
// property-test harness), which a product's tests include on their own.

#include <mpath/error.hpp>
#include <mpath/executor.hpp>
#include <mpath/hw_handler.hpp>
#include <mpath/io.hpp>
#include <mpath/io_backend.hpp>
#include <mpath/mapped_device.hpp>
#include <mpath/multipath.hpp>
#include <mpath/path.hpp>
#include <mpath/path_selector.hpp>
#include <mpath/priority_group.hpp>
#include <mpath/requeue_list.hpp>
#include <mpath/seed2003.hpp>
#include <mpath/selector_set.hpp>
#include <mpath/selectors.hpp>
#include <mpath/table.hpp>
#include <mpath/thread_executor.hpp>
#include <mpath/version.hpp>

#include <mpath/health/grouping.hpp>
#include <mpath/health/log.hpp>
#include <mpath/health/monitor.hpp>
#include <mpath/health/path_checker.hpp>
#include <mpath/health/prioritizer.hpp>
#include <mpath/health/prioritizers.hpp>
#include <mpath/health/probe_checker.hpp>
#include <mpath/health/settings.hpp>
#include <mpath/health/topology.hpp>
