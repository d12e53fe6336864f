#!/usr/bin/env python3
"""Draws docs/figures/slow-path.svg from the CSV of bench/slow_path_figure (standard library only).

    cmake --build build/release --target slow_path_figure
    python3 bench/plot_slow_path.py --run build/release/bench/slow_path_figure \\
        --csv docs/figures/slow-path.csv > docs/figures/slow-path.svg

or feed it a CSV on stdin:  slow_path_figure | python3 bench/plot_slow_path.py > slow-path.svg

Two panels, one group of bars per selector, one bar per queue depth: the slow path's share of the
bytes (left; dashed lines at an equal split, 0.25, and at the split in proportion to speed, 1/13),
and the mean latency over all I/O (right, log scale).
"""

import argparse
import csv
import io
import math
import subprocess
import sys

COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2"]
SHORT = {
    "round-robin": "round-robin",
    "queue-length": "queue-length",
    "service-time": "service-time",
    "historical-service-time": "historical-st",
    "io-affinity": "io-affinity",
}


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def read_rows(text):
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        sys.exit("plot_slow_path.py: no data")
    return rows


class Panel:
    """One bar chart: groups (selectors) × series (depths)."""

    def __init__(self, x, y, w, h, title, ylabel):
        self.x, self.y, self.w, self.h = x, y, w, h
        self.title, self.ylabel = title, ylabel
        self.out = []

    def text(self, x, y, s, anchor="middle", size=12, weight="normal", rotate=None, colour="#222"):
        transform = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
        self.out.append(
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'font-weight="{weight}" fill="{colour}"{transform}>{esc(s)}</text>'
        )

    def line(self, x1, y1, x2, y2, colour="#999", width=1, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.out.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
            f'stroke-width="{width}"{d}/>'
        )

    def draw(self, groups, series, value, scale, ticks, fmt, guides=()):
        """value(group, series) -> number; scale(v) -> 0..1 of the height."""
        x0, y0, w, h = self.x, self.y, self.w, self.h
        self.text(x0 + w / 2, y0 - 14, self.title, size=14, weight="bold")
        self.text(x0 - 48, y0 + h / 2, self.ylabel, rotate=-90)
        for t in ticks:
            ty = y0 + h - scale(t) * h
            self.line(x0, ty, x0 + w, ty, colour="#e6e6e6")
            self.text(x0 - 6, ty + 4, fmt(t), anchor="end", size=11)
        self.line(x0, y0 + h, x0 + w, y0 + h, colour="#333")
        self.line(x0, y0, x0, y0 + h, colour="#333")
        gw = w / len(groups)
        bw = gw * 0.8 / len(series)
        for gi, g in enumerate(groups):
            gx = x0 + gi * gw + gw * 0.1
            for si, s in enumerate(series):
                v = value(g, s)
                if v is None:
                    continue
                bh = max(scale(v) * h, 0.5)
                self.out.append(
                    f'<rect x="{gx + si * bw:.1f}" y="{y0 + h - bh:.1f}" width="{bw * 0.92:.1f}" '
                    f'height="{bh:.1f}" fill="{COLOURS[si % len(COLOURS)]}">'
                    f"<title>{esc(g)}, depth {s}: {v:g}</title></rect>"
                )
            self.text(x0 + gi * gw + gw / 2, y0 + h + 16, SHORT.get(g, g), size=11)
        for v, label in guides:  # over the bars, labels with a white halo
            gy = y0 + h - scale(v) * h
            self.line(x0, gy, x0 + w, gy, colour="#333", dash="5,4")
            self.out.append(
                f'<text x="{x0 + w - 4:.1f}" y="{gy - 4:.1f}" text-anchor="end" font-size="10" fill="#333" '
                f'stroke="white" stroke-width="3" paint-order="stroke">{esc(label)}</text>'
            )
        return self.out


def render(rows):
    groups = list(dict.fromkeys(r["selector"] for r in rows))
    depths = list(dict.fromkeys(int(r["depth"]) for r in rows))
    data = {(r["selector"], int(r["depth"])): r for r in rows}

    width, height = 1000, 430
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        '<rect width="100%" height="100%" fill="white"/>',
    ]

    share = Panel(70, 50, 400, 300, "Slow path's share of the I/O", "share of bytes")
    top = 0.30
    out += share.draw(
        groups,
        depths,
        lambda g, d: float(data[(g, d)]["slow_share"]) if (g, d) in data else None,
        lambda v: min(v / top, 1.0),
        [0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30],
        lambda t: f"{t:.2f}",
        guides=[(0.25, "equal split"), (1 / 13, "in proportion to speed (1/13)")],
    )

    lat = [float(r["mean_latency_us"]) for r in rows]
    steps = [m * 10**e for e in range(-1, 9) for m in (1, 3)]  # 1-3-10 ticks
    lo = max(t for t in steps if t <= min(lat))
    hi = min(t for t in steps if t >= max(lat))
    latency = Panel(580, 50, 400, 300, "Mean latency", "µs (log scale)")
    ticks = [t for t in steps if lo <= t <= hi]
    out += latency.draw(
        groups,
        depths,
        lambda g, d: float(data[(g, d)]["mean_latency_us"]) if (g, d) in data else None,
        lambda v: (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)),
        ticks,
        lambda t: f"{t:g}",
    )

    # Legend: one swatch per depth.
    lx = 300
    out.append(f'<text x="{lx - 10}" y="{height - 24}" text-anchor="end" font-size="12">I/Os in flight:</text>')
    for i, d in enumerate(depths):
        x = lx + i * 90
        out.append(
            f'<rect x="{x}" y="{height - 36}" width="14" height="14" fill="{COLOURS[i % len(COLOURS)]}"/>'
        )
        out.append(f'<text x="{x + 20}" y="{height - 24}" font-size="12">{d}</text>')
    out.append(
        f'<text x="{width - 20}" y="{height - 8}" text-anchor="end" font-size="10" fill="#666">'
        "4 paths, one 4× slower; simulation, bench/slow_path_figure.cpp</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", metavar="BINARY", help="run bench/slow_path_figure instead of reading stdin")
    ap.add_argument("--csv", metavar="FILE", help="also write the CSV here")
    args = ap.parse_args()
    text = subprocess.run([args.run], check=True, capture_output=True, text=True).stdout if args.run else sys.stdin.read()
    if args.csv:
        with open(args.csv, "w") as f:
            f.write(text)
    sys.stdout.write(render(read_rows(text)))


if __name__ == "__main__":
    main()
