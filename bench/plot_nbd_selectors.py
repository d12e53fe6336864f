#!/usr/bin/env python3
"""Draws docs/figures/nbd-selectors.svg from the CSV of `mpathctl demo --backend nbd --csv`
(bench/nbd_selectors.sh runs both; standard library only).

Two panels, one bar per selector: throughput over the two NBD paths (left), and throughput as a
multiple of round-robin's (right), beside the published anchor for the same setup over NVMe/TCP
(peers.md §8 item 4: round-robin 105, queue-depth 230, adaptive 350 MiB/s, i.e. 2.2x and 3.3x;
queue-depth is the counterpart of queue-length, the adaptive policy of historical-service-time).
"""

import csv
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plot_slow_path import COLOURS, Panel  # noqa: E402  (one bar-chart drawer for both figures)

ANCHOR = {"round-robin": 1.0, "queue-length": 230 / 105, "historical-service-time": 350 / 105}


def render(rows):
    selectors = [r["selector"] for r in rows]
    data = {r["selector"]: r for r in rows}
    width, height = 1000, 430
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        '<rect width="100%" height="100%" fill="white"/>',
    ]

    mib = [float(r["mib_per_s"]) for r in rows]
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000) if max(mib) / s <= 6)
    top = step * (int(max(mib) / step) + 1)
    left = Panel(70, 50, 400, 300, "Throughput, two NBD paths, one +30 ms", "MiB/s")
    out += left.draw(
        selectors,
        ["mpath"],
        lambda g, s: float(data[g]["mib_per_s"]),
        lambda v: v / top,
        [step * i for i in range(int(top / step) + 1)],
        lambda t: f"{t:g}",
    )

    ratios = [float(r["ratio_to_round_robin"]) for r in rows] + list(ANCHOR.values())
    rstep = next(s for s in (0.5, 1, 2, 5, 10) if max(ratios) / s <= 8)
    rtop = rstep * (int(max(ratios) / rstep) + 1)
    right = Panel(580, 50, 400, 300, "Throughput / round-robin's", "ratio")
    out += right.draw(
        selectors,
        ["mpath", "anchor"],
        lambda g, s: float(data[g]["ratio_to_round_robin"]) if s == "mpath" else ANCHOR.get(g),
        lambda v: v / rtop,
        [rstep * i for i in range(int(rtop / rstep) + 1)],
        lambda t: f"{t:g}",
        guides=[(1.0, "round-robin")],
    )

    legend = [
        "mpath over nbdkit (this run)",
        "published NVMe/TCP anchor (queue-depth, adaptive)",
    ]
    for i, label in enumerate(legend):
        x = 120 + i * 330
        out.append(f'<rect x="{x}" y="{height - 36}" width="14" height="14" fill="{COLOURS[i]}"/>')
        out.append(f'<text x="{x + 20}" y="{height - 24}" font-size="12">{label}</text>')
    out.append(
        f'<text x="{width - 20}" y="{height - 8}" text-anchor="end" font-size="10" fill="#666">'
        "4 KiB random reads, 32 in flight, nbdkit delay filter; bench/nbd_selectors.sh</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    rows = list(csv.DictReader(io.StringIO(sys.stdin.read())))
    if not rows:
        sys.exit("plot_nbd_selectors.py: no data")
    sys.stdout.write(render(rows))


if __name__ == "__main__":
    main()
