#pragma once
// Single source of the library version; CMake reads these lines (tests check they agree).

#define MPATH_VERSION_MAJOR 0
#define MPATH_VERSION_MINOR 1
#define MPATH_VERSION_PATCH 0

namespace mpath::inline v0 {
inline constexpr int version_major = MPATH_VERSION_MAJOR;
inline constexpr int version_minor = MPATH_VERSION_MINOR;
inline constexpr int version_patch = MPATH_VERSION_PATCH;
} // namespace mpath::inline v0
