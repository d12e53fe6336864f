# CTest runs every doctest case on its own (doctest_discover_tests), and CMake splits a name at
# each ';': such a case would run as two filters that match nothing, and pass without running.
# Fails on any test case name with a ';'. Usage: cmake -DTESTS=<mpath_tests> -P check_test_names.cmake
execute_process(COMMAND ${TESTS} --list-test-cases --no-version --no-colors OUTPUT_VARIABLE names RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TESTS} --list-test-cases failed: ${rc}")
endif()
string(FIND "${names}" ";" at)
if(NOT at EQUAL -1)
  string(REPLACE ";" "<;>" shown "${names}")
  message(FATAL_ERROR "test case names must not contain ';' (CTest would not run them):\n${shown}")
endif()
message(STATUS "no test case name contains ';'")
