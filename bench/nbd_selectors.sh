#!/usr/bin/env bash
# Regenerates docs/figures/nbd-selectors.{csv,svg} and bench/results/nbd-selectors-DATE.txt: each
# list selector over two NBD paths to nbdkit servers on 127.0.0.1, one delayed by 30 ms (nbdkit's
# delay filter), 4 KiB random reads, 32 in flight (`mpathctl demo --backend nbd --selectors-only`).
# Needs nbdkit and a Release build with libnbd:
#     cmake --workflow --preset release && bench/nbd_selectors.sh [BUILD_DIR] [SECONDS_PER_SELECTOR]
# Run it on a quiet machine (no build or test beside it): the load average is recorded with it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
secs=${2:-10}
mpathctl=$build/examples/mpathctl/mpathctl
out=bench/results/nbd-selectors-$(date -u +%Y-%m-%d).txt
{
  echo "# $(date -u '+%F %T UTC'), $(nproc) CPUs, nbdkit $(nbdkit --version | awk '{print $2}'), ${secs} s per selector"
  echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$mpathctl" demo --backend nbd --selectors-only --selector-secs "$secs" --size 64 --csv docs/figures/nbd-selectors.csv
  echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out"
python3 bench/plot_nbd_selectors.py < docs/figures/nbd-selectors.csv > docs/figures/nbd-selectors.svg
echo "wrote docs/figures/nbd-selectors.csv, docs/figures/nbd-selectors.svg, $out"
