#!/usr/bin/env bash
# fio's figure for bench/io_bench's workload, to report beside it: 4 KiB random reads, queue depth
# 32, io_uring, one 64 MiB page-cached file, one job. Needs the `fio` package.
#   bench/io_fio.sh [seconds]      (default 10)
set -euo pipefail
seconds=${1:-10}
command -v fio >/dev/null || { echo "io_fio.sh: fio is not installed (apt-get install fio)" >&2; exit 1; }
file=$(mktemp "${TMPDIR:-/tmp}/mpath_io_fio.XXXXXX")
trap 'rm -f "$file"' EXIT
dd if=/dev/zero of="$file" bs=1M count=64 status=none
cat "$file" >/dev/null # into the page cache
fio --name=io_bench --filename="$file" --size=64M --ioengine=io_uring --rw=randread --bs=4k \
    --iodepth=32 --numjobs=1 --time_based --runtime="$seconds" --group_reporting \
    --output-format=json | python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]["read"]
print("fio io_uring randread 4k qd32: %.0f IOPS, %.1f MiB/s" % (j["iops"], j["bw"] / 1024))'
