#!/usr/bin/env python3
"""convert.py: `ctrd gen` NDJSON (without --tricky) -> the flat files the
peers load, so that DuckDB and PostgreSQL get the same records ctrd does.

    convert.py QUERIES.ndjson CLICKS.ndjson OUTDIR

Writes OUTDIR/queries.tsv and OUTDIR/clicks.tsv, tab-separated (CSV
quoting with '"' when a term holds one; terms never hold TAB, CR or LF once
normalised), no header:
    queries.tsv  seq, query_id, time_ms, term, ad  one row per distinct ad
                 of each query record; seq is the record's number, so
                 SQL can keep the first record per query_id (SPEC 2)
    clicks.tsv   query_id, ad, time_ms              one row per click line
and OUTDIR/lines.json: {"queries": N, "clicks": M}, the records read
(non-empty lines).

What the peers get for free, stated in the table's notes: parsing (RFC
3339 times to ms, ids spelled as strings or numbers) and term
normalisation (SPEC 2: ASCII letters lower-cased, white-space runs folded
to one space, trimmed) happen here, as gen spells terms with case and
white-space variations. query_id is unsigned 64-bit; the databases have
signed 64-bit integers only, so ids >= 2^63 are written minus 2^64 (a
bijection: equality and grouping are unchanged). Any record this script
cannot read stops it (exit 1): the input is meant to be clean."""
import csv
import datetime
import json
import os
import re
import sys

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
SPACE = re.compile(r"[ \t\r\n\v\f]+")
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def time_ms(v):
    if isinstance(v, int):
        return v
    d = datetime.datetime.fromisoformat(v.replace("z", "Z")) - EPOCH
    return d.days * 86400000 + d.seconds * 1000 + d.microseconds // 1000


def signed64(v):
    n = int(v)
    if not 0 <= n < 1 << 64:
        raise ValueError(f"id out of range: {v}")
    return n - (1 << 64) if n >= 1 << 63 else n


def term(text):
    return SPACE.sub(" ", text.translate(ASCII_LOWER)).strip(" ")


def records(path):
    """The JSON objects of a file's lines; empty lines skipped (SPEC 1.3)."""
    with open(path, encoding="utf-8", newline="") as src:
        for line in src:
            line = line.rstrip("\n").removesuffix("\r")
            if line:
                yield json.loads(line)


def writer(path):
    f = open(path, "w", newline="", encoding="utf-8")
    return f, csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)


def main():
    queries, clicks, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    n_q = n_c = 0
    f, w = writer(os.path.join(out, "queries.tsv"))
    for seq, r in enumerate(records(queries), 1):
        qid, t, tm = signed64(r["query_id"]), time_ms(r["time"]), term(r["query"])
        for ad in dict.fromkeys(signed64(a) for a in r["ad_ids"]):
            w.writerow((seq, qid, t, tm, ad))
        n_q = seq
    f.close()
    f, w = writer(os.path.join(out, "clicks.tsv"))
    for n_c, r in enumerate(records(clicks), 1):
        w.writerow((signed64(r["query_id"]), signed64(r["ad_id"]), time_ms(r["time"])))
    f.close()
    with open(os.path.join(out, "lines.json"), "w") as f:
        json.dump({"queries": n_q, "clicks": n_c}, f)


if __name__ == "__main__":
    main()
