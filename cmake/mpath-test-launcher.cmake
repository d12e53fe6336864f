# How our test binaries are started. MPATH_TEST_LAUNCHER (a list: command and arguments) becomes
# CMAKE_CROSSCOMPILING_EMULATOR, which CMake puts in front of every executable target that a test
# or a custom command runs; doctest's build-time test discovery reads it as well.
#
# Why it exists: ThreadSanitizer (GCC 12's libtsan, clang 14's) keeps its shadow memory at fixed
# addresses and aborts with "FATAL: ThreadSanitizer: unexpected memory mapping" when the kernel
# randomises mmap placement with more bits than that layout allows (vm.mmap_rnd_bits = 32, the
# default on some distribution kernels). `setarch <arch> -R` starts the process with address
# randomisation off, which avoids it without touching the machine's sysctl.
#
# On the Debian bookworm build machine (kernel 6.18, vm.mmap_rnd_bits = 28) TSan binaries run as they
# are: the probe below passes and no launcher is used. Set MPATH_TEST_LAUNCHER on the command line
# to force one (e.g. -DMPATH_TEST_LAUNCHER="setarch;x86_64;-R"), or to "" to force none.

if(NOT DEFINED CACHE{MPATH_TEST_LAUNCHER})
  set(_launcher "")
  if(CMAKE_CXX_FLAGS MATCHES "-fsanitize=thread")
    set(_probe_dir ${CMAKE_BINARY_DIR}/CMakeFiles/mpath-tsan-probe)
    file(WRITE ${_probe_dir}/probe.cpp
         "#include <thread>\nint main() { int x = 0; std::thread t([&] { x = 1; }); t.join(); return x - 1; }\n")
    try_compile(_built ${_probe_dir}/build ${_probe_dir}/probe.cpp CXX_STANDARD 20 LINK_LIBRARIES Threads::Threads
                COPY_FILE ${_probe_dir}/probe OUTPUT_VARIABLE _log)
    if(NOT _built)
      message(FATAL_ERROR "mpath: cannot build a ThreadSanitizer program with these flags:\n${_log}")
    endif()
    execute_process(COMMAND ${_probe_dir}/probe RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_VARIABLE _err)
    if(NOT _rc EQUAL 0)
      execute_process(COMMAND setarch ${CMAKE_HOST_SYSTEM_PROCESSOR} -R ${_probe_dir}/probe RESULT_VARIABLE _rc2
                      OUTPUT_QUIET ERROR_QUIET)
      if(_rc2 EQUAL 0)
        set(_launcher setarch ${CMAKE_HOST_SYSTEM_PROCESSOR} -R)
        message(STATUS "mpath: TSan binaries fail here (${_err}); tests run through `setarch -R`")
      else()
        message(WARNING "mpath: TSan binaries cannot run on this machine, even with `setarch -R`:\n${_err}")
      endif()
    endif()
  endif()
  set(MPATH_TEST_LAUNCHER "${_launcher}" CACHE STRING "Command (a list) that starts test binaries, e.g. setarch;x86_64;-R")
endif()

if(MPATH_TEST_LAUNCHER)
  message(STATUS "mpath: test binaries are started with: ${MPATH_TEST_LAUNCHER}")
  set(CMAKE_CROSSCOMPILING_EMULATOR ${MPATH_TEST_LAUNCHER})
endif()
