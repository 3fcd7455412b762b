#!/usr/bin/env python3
"""table.py: bench/compare.sh's markdown table from its runs.

    table.py RESULTS.jsonl LINES.json ROWS AD

RESULTS.jsonl: one JSON object per run and system (ctrd.sh's, duckdb.js's
and pg.js's lines: system, version, load_s, disk_bytes, p50_ms, p99_ms,
p999_ms, and incremental_s but for DuckDB); LINES.json: convert.py's
record counts; ROWS: the (ad, term) rows every system agreed on; AD: the
ad the dashboard query read. Each figure is the median over the runs."""
import json
import statistics
import sys

SYSTEMS = (("ctrd", "ctrd"), ("duckdb", "DuckDB"), ("postgresql", "PostgreSQL"))


def main():
    runs = [json.loads(line) for line in open(sys.argv[1])]
    lines = json.load(open(sys.argv[2]))
    rows, ad = int(sys.argv[3]), sys.argv[4]
    events = lines["queries"] + lines["clicks"]

    def median(system, key, f=lambda v: v):
        vals = [f(r[key]) for r in runs if r["system"] == system and key in r]
        return statistics.median(vals) if vals else None

    # (label, key, to figure, format, higher is better)
    figures = (
        ("batch load + join + aggregate, events/s", "load_s", lambda s: events / s, "{:,.0f}", True),
        ("batch load + join + aggregate, s", "load_s", lambda s: s, "{:.2f}", False),
        ("dashboard top-100 terms of the busiest ad, p50 ms", "p50_ms", lambda v: v, "{:.2f}", False),
        ("dashboard p99 ms", "p99_ms", lambda v: v, "{:.2f}", False),
        ("dashboard p99.9 ms", "p999_ms", lambda v: v, "{:.2f}", False),
        ("durable incremental ingest, events/s (ctrd: HTTP POST; PostgreSQL: INSERT … ON CONFLICT)", "incremental_s", lambda s: events / s, "{:,.0f}", True),
        ("disk per query, bytes", "disk_bytes", lambda b: b / lines["queries"], "{:.1f}", False),
    )
    n = len([r for r in runs if r["system"] == "ctrd"])
    versions = ", ".join(f"{name} {next(r['version'] for r in runs if r['system'] == s)}" for s, name in SYSTEMS)
    print(f"{lines['queries']:,} queries + {lines['clicks']:,} clicks = {events:,} events; "
          f"{rows:,} (ad, term) rows, equal in every system; dashboard ad {ad}; medians of {n} runs; {versions}\n")
    print("| figure | ctrd | DuckDB | PostgreSQL | ctrd vs DuckDB | ctrd vs PostgreSQL |")
    print("|---|---|---|---|---|---|")
    for label, key, f, fmt, higher in figures:
        vals = [median(s, key, f) for s, _ in SYSTEMS]
        cells = [fmt.format(v) if v is not None else "—" for v in vals]
        for peer in vals[1:]:
            if vals[0] is None or peer is None:
                cells.append("—")
            else:
                cells.append(f"{(vals[0] / peer if higher else peer / vals[0]):.2f}×")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\nctrd vs X: how many times ctrd is better (faster, quicker, smaller); below 1, X is.")


if __name__ == "__main__":
    main()
