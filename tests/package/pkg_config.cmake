# Builds consumer.cpp against the installed mpath with nothing but pkg-config, as a Makefile user
# would: c++ -std=c++20 $(pkg-config --cflags mpath) consumer.cpp $(pkg-config --libs mpath)
#   cmake -DPKG_CONFIG=... -DPREFIX=... -DCXX=... "-DCXXFLAGS=..." -DSOURCE=... -DBINARY_DIR=... -DVERSION=...
#         -P pkg_config.cmake
foreach(_var PKG_CONFIG PREFIX CXX SOURCE BINARY_DIR VERSION)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "pkg_config.cmake: -D${_var}=... is required")
  endif()
endforeach()

# Only the temporary prefix, never a system-wide mpath.pc.
set(ENV{PKG_CONFIG_PATH} "${PREFIX}/share/pkgconfig")
set(ENV{PKG_CONFIG_LIBDIR} "${PREFIX}/share/pkgconfig")

# Runs a command, echoing it; with OUTPUT_VARIABLE <var>, also captures its output.
function(run)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "OUTPUT_VARIABLE" "")
  if(arg_OUTPUT_VARIABLE)
    set(_capture OUTPUT_VARIABLE out OUTPUT_STRIP_TRAILING_WHITESPACE)
  endif()
  execute_process(COMMAND ${arg_UNPARSED_ARGUMENTS} COMMAND_ECHO STDOUT RESULT_VARIABLE rc ${_capture})
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc})")
  endif()
  if(arg_OUTPUT_VARIABLE)
    message(STATUS "  -> ${out}")
    set(${arg_OUTPUT_VARIABLE} "${out}" PARENT_SCOPE)
  endif()
endfunction()

run(${PKG_CONFIG} --modversion mpath OUTPUT_VARIABLE modversion)
if(NOT modversion STREQUAL VERSION)
  message(FATAL_ERROR "mpath.pc says version ${modversion}, the project is ${VERSION}")
endif()
run(${PKG_CONFIG} --cflags mpath OUTPUT_VARIABLE cflags)
run(${PKG_CONFIG} --libs mpath OUTPUT_VARIABLE libs)
separate_arguments(cflags UNIX_COMMAND "${cflags}")
separate_arguments(libs UNIX_COMMAND "${libs}")
separate_arguments(cxxflags UNIX_COMMAND "${CXXFLAGS}")

file(MAKE_DIRECTORY "${BINARY_DIR}")
run(${CXX} -std=c++20 ${cxxflags} ${cflags} "${SOURCE}" -o "${BINARY_DIR}/consumer" ${libs})
run("${BINARY_DIR}/consumer")
