#!/usr/bin/env python3
"""Draws docs/figures/scaling.svg: aggregate throughput at 1 and 2 threads for every selector, the
channel variants and the mutex baseline, from Google Benchmark JSON (standard library only).

    build/release/bench/select_bench --benchmark_filter='paths:4/' --benchmark_repetitions=3 \\
        --benchmark_out=select.json --benchmark_out_format=json
    build/release/bench/engine_bench --benchmark_repetitions=3 --benchmark_out=engine.json \\
        --benchmark_out_format=json
    python3 bench/plot_scaling.py select.json engine.json > docs/figures/scaling.svg

One panel per JSON file; one group of bars per benchmark, one bar per thread count (medians when
the run has repetitions). A line over each pair gives the 2-thread / 1-thread ratio.
"""

import json
import re
import sys

COLOURS = {1: "#4e79a7", 2: "#f28e2b", 4: "#59a14f", 8: "#b07aa1"}


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def load(path):
    """{label: {threads: items_per_second}} in first-seen order, and the run's context."""
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        m = re.match(r"(.*?)/real_time/threads:(\d+)$", name)
        if not m:
            continue
        label = m.group(1).replace("/paths:4", "").replace("select/", "").replace("engine/", "")
        for i, short in enumerate(("rr", "ql", "st", "hst")):
            label = label.replace(f"map_complete/selector:{i}", short)
            label = label.replace(f"map_complete.channel/selector:{i}", f"{short}.channel")
        out.setdefault(label, {})[int(m.group(2))] = b["items_per_second"] / 1e6
    return out, data.get("context", {})


def panel(title, series, x0, y0, width, height):
    parts = []
    labels = list(series)
    top = max(v for s in series.values() for v in s.values())
    group = width / len(labels)
    parts.append(f'<text x="{x0}" y="{y0 - 8}" font-size="13" font-weight="bold">{esc(title)}</text>')
    parts.append(f'<line x1="{x0}" y1="{y0 + height}" x2="{x0 + width}" y2="{y0 + height}" stroke="#333"/>')
    for tick in range(0, 6):
        v = top * tick / 5
        y = y0 + height - height * tick / 5
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + width}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{v:.0f}</text>')
    parts.append(
        f'<text x="{x0 - 40}" y="{y0 + height / 2}" font-size="11" transform="rotate(-90 {x0 - 40} '
        f'{y0 + height / 2})" text-anchor="middle">million I/Os per second (all threads)</text>')
    for i, label in enumerate(labels):
        threads = sorted(series[label])
        bar = group * 0.8 / len(threads)
        for j, t in enumerate(threads):
            v = series[label][t]
            h = height * v / top
            x = x0 + i * group + group * 0.1 + j * bar
            parts.append(f'<rect x="{x:.1f}" y="{y0 + height - h:.1f}" width="{bar - 1:.1f}" height="{h:.1f}" '
                         f'fill="{COLOURS.get(t, "#999")}"><title>{esc(label)} threads {t}: {v:.1f} M/s</title></rect>')
        if 1 in series[label] and 2 in series[label]:
            ratio = series[label][2] / series[label][1]
            y = y0 + height - height * max(series[label].values()) / top - 4
            parts.append(f'<text x="{x0 + i * group + group / 2:.1f}" y="{y:.1f}" font-size="10" '
                         f'text-anchor="middle">{ratio:.2f}×</text>')
        parts.append(f'<text x="{x0 + i * group + group / 2:.1f}" y="{y0 + height + 14}" font-size="10" '
                     f'text-anchor="end" transform="rotate(-35 {x0 + i * group + group / 2:.1f} '
                     f'{y0 + height + 14})">{esc(label)}</text>')
    return parts


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    panels = [load(p) for p in sys.argv[1:]]
    width, height, pw, ph = 900, 330 * len(panels) + 40, 800, 220
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif">', f'<rect width="{width}" height="{height}" fill="white"/>']
    for k, (series, context) in enumerate(panels):
        title = ("select + start_io + end_io, 4 paths" if "round-robin" in series else
                 "engine map + complete, 4 paths")
        parts += panel(title, series, 80, 30 + k * 330, pw, ph)
    y = height - 12
    for n, (t, c) in enumerate(sorted(COLOURS.items())[:2]):
        parts.append(f'<rect x="{80 + n * 110}" y="{y - 9}" width="10" height="10" fill="{c}"/>')
        parts.append(f'<text x="{94 + n * 110}" y="{y}" font-size="11">{t} thread{"s" if t > 1 else ""}</text>')
    ctx = panels[0][1]
    parts.append(f'<text x="{330}" y="{y}" font-size="10">{esc(str(ctx.get("num_cpus", "?")))} CPUs at '
                 f'{esc(str(ctx.get("mhz_per_cpu", "?")))} MHz, load {esc(str(ctx.get("load_avg", "?")))}'
                 f'; labels over the bars: 2 threads / 1 thread</text>')
    parts.append("</svg>")
    print("\n".join(parts))


if __name__ == "__main__":
    main()
