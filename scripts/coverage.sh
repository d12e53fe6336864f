#!/usr/bin/env bash
# Line coverage of the library headers (include/mpath/) by the test suite, with gcov + lcov.
#
#   scripts/coverage.sh [BUILD_DIR]     default build-coverage/ (git-ignored)
#
# Builds the unit tests and the fuzz drivers with GCC --coverage -O0, runs them (labels unit, fuzz,
# mpathctl; the packaging tests add nothing here), and prints the per-file and total line coverage
# of include/mpath/. An HTML report goes to BUILD_DIR/coverage/html/index.html. Exits 1 when the
# total is below MPATH_COVERAGE_MIN (default 95).
#
# Needs: cmake, ninja, g++, gcov, lcov (apt-get install lcov), and the test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-coverage}
min=${MPATH_COVERAGE_MIN:-95}
for tool in cmake ninja g++ gcov lcov genhtml; do
  command -v "$tool" > /dev/null || { echo "coverage.sh: $tool not found (apt-get install lcov cmake ninja-build g++)" >&2; exit 2; }
done

mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="--coverage -O0" \
  -DMPATH_BUILD_BENCH=OFF -DMPATH_FUZZ_DRIVER_RUNS=5000 > "$build/coverage-configure.log" 2>&1 ||
  { cat "$build/coverage-configure.log"; exit 1; }
cmake --build "$build" > "$build/coverage-build.log" 2>&1 || { tail -50 "$build/coverage-build.log"; exit 1; }

lcov --quiet --zerocounters --directory "$build"
# Only what runs in-process with the coverage build: unit tests, fuzz drivers, mpathctl scenarios.
ctest --test-dir "$build" -L 'unit|fuzz|mpathctl' -E '^fuzz\.(build|table|message|mpathctl)$' --output-on-failure \
  -j "$(nproc)" > "$build/coverage-test.log" 2>&1 || { tail -50 "$build/coverage-test.log"; exit 1; }

out="$build/coverage"
mkdir -p "$out"
lcov --quiet --capture --directory "$build" --output-file "$out/all.info" --rc lcov_branch_coverage=0 2> /dev/null
lcov --quiet --extract "$out/all.info" "$PWD/include/mpath/*" --output-file "$out/mpath.info"
genhtml --quiet "$out/mpath.info" --output-directory "$out/html" --prefix "$PWD" > /dev/null
lcov --list "$out/mpath.info" --rc lcov_list_full_path=0
total=$(lcov --summary "$out/mpath.info" 2>&1 | sed -n 's/.*lines\.*: \([0-9.]*\)%.*/\1/p')
echo "include/mpath/ line coverage: ${total}% (minimum ${min}%); report: $out/html/index.html"
awk -v t="$total" -v m="$min" 'BEGIN { exit (t + 0 >= m + 0) ? 0 : 1 }'
