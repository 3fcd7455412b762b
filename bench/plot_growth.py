#!/usr/bin/env python3
"""plot_growth.py: bench/growth.sh's CSV as one SVG, hand-written (no
plotting library): a panel per figure against the queries ingested (log
scale), throughput and dashboard latency first.

    plot_growth.py GROWTH.csv OUT.svg"""
import csv
import math
import sys
from xml.sax.saxutils import escape

W, H = 330, 244  # one panel
PAD_L, PAD_R, PAD_T, PAD_B = 58, 26, 44, 38
COLS = 3
COLORS = ("#1f77b4", "#d62728", "#2ca02c")

# (title, [(series name, CSV column)])
PANELS = (
    ("batch ingest, events/s", [("events/s", "events_per_s")]),
    ("dashboard top-100 over HTTP, ms", [("p50", "p50_ms"), ("p99", "p99_ms"), ("p99.9", "p999_ms")]),
    ("peak RSS, MiB", [("RSS", "peak_rss_mib")]),
    ("disk per query, bytes", [("disk", "disk_bytes_per_query")]),
    ("write amplification (written / input)", [("written/input", "write_amplification")]),
)


def nice_step(top):
    """A 1-2-5 step giving about 4 ticks from 0 to top."""
    raw = top / 4 if top > 0 else 1
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def label(v):
    if v >= 1e6:
        return f"{v / 1e6:g} M"
    if v >= 1e3:
        return f"{v / 1e3:g} k"
    return f"{v:g}"


def panel(x0, y0, title, series, xs):
    """The SVG of one panel whose top-left corner is (x0, y0)."""
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    top = max(v for _, vals in series for v in vals) * 1.1 or 1
    step = nice_step(top)
    top = step * math.ceil(top / step)
    lo, hi = math.log10(min(xs)), math.log10(max(xs))
    span = hi - lo or 1
    px = lambda x: x0 + PAD_L + (math.log10(x) - lo) / span * pw
    py = lambda y: y0 + PAD_T + ph - y / top * ph
    out = [f'<text x="{x0 + PAD_L}" y="{y0 + 18}" font-weight="bold">{escape(title)}</text>',
           f'<rect x="{x0 + PAD_L}" y="{y0 + PAD_T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for i in range(int(round(top / step)) + 1):
        y = py(i * step)
        out.append(f'<line x1="{x0 + PAD_L}" x2="{x0 + PAD_L + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 + PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end">{label(i * step)}</text>')
    for x in xs:
        out.append(f'<text x="{px(x):.1f}" y="{y0 + PAD_T + ph + 16}" text-anchor="middle">{label(x)}</text>')
    out.append(f'<text x="{x0 + PAD_L + pw / 2}" y="{y0 + H - 4}" text-anchor="middle" fill="#555">queries ingested</text>')
    for (name, vals), color in zip(series, COLORS):
        pts = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in zip(xs, vals))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="3" fill="{color}"/>' for x, v in zip(xs, vals)]
    if len(series) > 1:
        for i, ((name, _), color) in enumerate(zip(series, COLORS)):
            out.append(f'<text x="{x0 + PAD_L + 50 * i}" y="{y0 + 34}" fill="{color}">{escape(name)}</text>')
    return out


def main():
    rows = list(csv.DictReader(open(sys.argv[1])))
    xs = [int(r["queries"]) for r in rows]
    rows_n = math.ceil(len(PANELS) / COLS)
    body = []
    for i, (title, cols) in enumerate(PANELS):
        series = [(name, [float(r[col]) for r in rows]) for name, col in cols]
        body += panel(i % COLS * W, i // COLS * H, title, series, xs)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{COLS * W}" height="{rows_n * H}" '
           f'font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n'
           + "\n".join(body) + "\n</svg>\n")
    with open(sys.argv[2], "w") as f:
        f.write(svg)


if __name__ == "__main__":
    main()
