#!/usr/bin/env python3
"""Tabulates a select_bench JSON run (--benchmark_out=FILE --benchmark_out_format=json, ideally
with --benchmark_repetitions=N: medians are used) as a Markdown table: each selector's time per
cycle next to the baseline's from the same run, and the ratios, in wall-clock ("real") and CPU
time. On a loaded machine the CPU time of a one-thread run is the steadier of the two (it does
not count time spent descheduled); two-thread runs only mean something when both threads had a
CPU. Standard library only.

    python3 bench/select_ratios.py run.json
"""

import json
import re
import sys
from collections import defaultdict

NAME = re.compile(r"^select/(?P<sel>[^/]+)/(?:paths:(?P<paths>\d+)/)?(?:rmws:(?P<rmws>\d+)/)?real_time(?:/threads:(?P<threads>\d+))?")


def load(path):
    with open(path) as f:
        data = json.load(f)
    runs = {}
    for b in data["benchmarks"]:
        agg = b.get("aggregate_name")
        if agg not in (None, "median"):
            continue
        m = NAME.match(b["run_name"] if "run_name" in b else b["name"])
        if not m:
            continue
        key = (m["sel"], int(m["paths"] or m["rmws"] or 0), int(m["threads"] or 1))
        # Prefer the median when repetitions were run.
        if agg == "median" or key not in runs:
            runs[key] = (b["real_time"], b["cpu_time"], b.get("items_per_second", 0.0))
    return data.get("context", {}), runs


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    context, runs = load(sys.argv[1])
    selectors = []
    for sel, _, _ in runs:
        if sel not in selectors and sel not in ("baseline", "floor"):
            selectors.append(sel)
    print("| selector | paths | threads | ns/cycle real | ns/cycle CPU | baseline real | baseline CPU "
          "| ratio real | ratio CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for sel in selectors + ["baseline"]:
        for (s, paths, threads), (real, cpu, _) in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][2])):
            if s != sel:
                continue
            base = runs.get(("baseline", paths, threads))
            if not base:
                continue
            print(f"| {sel} | {paths} | {threads} | {real:.1f} | {cpu:.1f} | {base[0]:.1f} | {base[1]:.1f} "
                  f"| {real / base[0]:.2f} | {cpu / base[1]:.2f} |")
    floors = sorted((k[1], v) for k, v in runs.items() if k[0] == "floor")
    if floors:
        print()
        print("| floor: K uncontended atomic increments | ns real | ns CPU |")
        print("|---|---:|---:|")
        for k, (real, cpu, _) in floors:
            print(f"| {k} | {real:.1f} | {cpu:.1f} |")
    if context:
        print()
        print(f"host: {context.get('host_name', '?')}, {context.get('num_cpus', '?')} CPUs at "
              f"{context.get('mhz_per_cpu', '?')} MHz, load average {context.get('load_avg', '?')}, "
              f"library build {context.get('library_build_type', '?')}")


if __name__ == "__main__":
    main()
