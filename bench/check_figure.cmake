# Fails when docs/figures/slow-path.csv is not what bench/slow_path_figure prints today, i.e. when
# the figure in docs/selectors.md no longer shows what the code does.
#   cmake -DPROGRAM=<slow_path_figure> -DCSV=<docs/figures/slow-path.csv> -P check_figure.cmake
execute_process(COMMAND ${PROGRAM} OUTPUT_VARIABLE _actual RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} failed: ${_rc}")
endif()
file(READ ${CSV} _expected)
if(NOT _actual STREQUAL _expected)
  message(FATAL_ERROR "docs/figures/slow-path.csv is out of date. Regenerate the figure:\n"
                      "  python3 bench/plot_slow_path.py --run ${PROGRAM} --csv docs/figures/slow-path.csv"
                      " > docs/figures/slow-path.svg\nnow:\n${_actual}")
endif()
