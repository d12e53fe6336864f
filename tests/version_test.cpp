#include <mpath/version.hpp>

#include <doctest/doctest.h>

#include <string>

#ifndef MPATH_PROJECT_VERSION
#error "tests/CMakeLists.txt passes MPATH_PROJECT_VERSION, the version CMake's project() was given"
#endif

TEST_CASE("version: version.hpp agrees with the CMake project version") {
  const std::string from_macros = std::to_string(MPATH_VERSION_MAJOR) + "." + std::to_string(MPATH_VERSION_MINOR) +
                                  "." + std::to_string(MPATH_VERSION_PATCH);
  CHECK(from_macros == MPATH_PROJECT_VERSION);
  CHECK(mpath::version_major == MPATH_VERSION_MAJOR);
  CHECK(mpath::version_minor == MPATH_VERSION_MINOR);
  CHECK(mpath::version_patch == MPATH_VERSION_PATCH);
}
