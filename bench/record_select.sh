#!/usr/bin/env bash
# Records one run of select_bench in bench/results/select-<date>.md: the machine, the load before
# and after, the ratio table (bench/select_ratios.py) and the raw JSON next to it.
#
#   cmake --preset release && cmake --build build/release --target select_bench
#   bench/record_select.sh [build/release/bench/select_bench] [repetitions]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/release/bench/select_bench}
reps=${2:-5}
day=$(date +%Y-%m-%d)
out=bench/results/select-$day.md
json=bench/results/select-$day.json

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$bin" --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
  --benchmark_out="$json" --benchmark_out_format=json >/dev/null
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "# select_bench, $day"
  echo
  echo "Command: \`$bin --benchmark_repetitions=$reps --benchmark_report_aggregates_only=true\`"
  echo "(medians of $reps repetitions; raw data in \`$(basename "$json")\`)."
  echo
  echo "Machine:"
  echo
  echo '```'
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|Hypervisor|L1d|L2|L3)' || true
  uname -srm
  ${CXX:-c++} --version | head -1
  ldd --version | head -1
  echo "load average before: $load_before; after: $load_after"
  echo '```'
  echo
  python3 bench/select_ratios.py "$json"
} >"$out"
echo "wrote $out and $json"
