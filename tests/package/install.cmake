# Configures the mpath source tree as a user would (library only) and installs it into PREFIX.
# Run by CTest as the setup fixture of the packaging tests:
#   cmake -DSOURCE_DIR=... -DBINARY_DIR=... -DPREFIX=... -DGENERATOR=... -DCXX=... -P install.cmake
foreach(_var SOURCE_DIR BINARY_DIR PREFIX GENERATOR CXX)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "install.cmake: -D${_var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${BINARY_DIR}" "${PREFIX}")

function(run)
  execute_process(COMMAND ${ARGV} COMMAND_ECHO STDOUT RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc})")
  endif()
endfunction()

run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${BINARY_DIR}" -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX}"
    -DMPATH_BUILD_TESTS=OFF -DMPATH_BUILD_EXAMPLES=OFF -DMPATH_BUILD_BENCH=OFF)
run(${CMAKE_COMMAND} --build "${BINARY_DIR}")
run(${CMAKE_COMMAND} --install "${BINARY_DIR}" --prefix "${PREFIX}")
