#!/usr/bin/python3
"""Draws bench/compare's throughput as one self-contained SVG: a group of bars per workload and
client count, one bar per system (Synod, etcd, Redis), log scale, each bar labelled with its ops/s.

    bench/plot.py RESULTS.tsv OUT.svg

RESULTS.tsv: one line per cell, "workload<TAB>clients<TAB>system<TAB>ops_per_s" (n/a: not run).
Only the standard library: a plot must not need a plotting package to be drawn."""
import math
import sys
from xml.sax.saxutils import escape

COLORS = {"synod": "#2e7d32", "etcd": "#1565c0", "redis": "#c62828"}
SYSTEMS = ["synod", "etcd", "redis"]


def read(path):
    cells, order = {}, []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                continue
            workload, clients, system, value = parts
            key = (workload, clients)
            if key not in cells:
                cells[key] = {}
                order.append(key)
            try:
                cells[key][system] = float(value)
            except ValueError:
                pass  # n/a: the system does not run this workload
    return cells, order


def draw(cells, order):
    bar_w, gap, left, top, height = 14, 18, 70, 40, 300
    values = [v for c in cells.values() for v in c.values() if v > 0]
    if not values:
        raise SystemExit("plot: no numbers to draw")
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    span = math.log10(hi) - math.log10(lo) or 1
    y = lambda v: top + height - (math.log10(v) - math.log10(lo)) / span * height
    group_w = bar_w * len(SYSTEMS) + gap
    width = max(560, left + group_w * len(order) + 20)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + height + 110}" '
           'font-family="sans-serif">',
           f'<text x="{left}" y="20" font-size="13">ops/s (log scale): '
           + " ".join(f'<tspan fill="{COLORS[s]}">■ {s}</tspan>' for s in SYSTEMS) + "</text>"]
    decade = lo
    while decade <= hi:
        out.append(f'<line x1="{left}" x2="{width - 20}" y1="{y(decade):.1f}" y2="{y(decade):.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(decade) + 4:.1f}" font-size="10" '
                   f'text-anchor="end">{decade:g}</text>')
        decade *= 10
    for i, key in enumerate(order):
        x0 = left + i * group_w + gap / 2
        for j, system in enumerate(SYSTEMS):
            v = cells[key].get(system)
            if not v or v <= 0:
                continue
            x = x0 + j * bar_w
            out.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w - 2}" '
                       f'height="{top + height - y(v):.1f}" fill="{COLORS[system]}">'
                       f'<title>{escape(key[0])} x{escape(key[1])} {system}: {v:,.0f} ops/s</title></rect>')
        label = escape(f"{key[0]} x{key[1]}")
        cx, cy = x0 + group_w / 2 - gap / 2, top + height + 10
        out.append(f'<text x="{cx:.1f}" y="{cy:.1f}" font-size="10" text-anchor="end" '
                   f'transform="rotate(-45 {cx:.1f} {cy:.1f})">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    cells, order = read(sys.argv[1])
    with open(sys.argv[2], "w") as f:
        f.write(draw(cells, order))


if __name__ == "__main__":
    main()
