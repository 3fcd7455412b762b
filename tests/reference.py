#!/usr/bin/env python3
"""reference: the independent oracle of ctrd's counting (SPEC sections 1-2).

It shares no code with the engine: it validates every line of the query and
click logs and counts impressions and clicks per (ad, term, minute) with the
Python standard library only, as slowly and plainly as it likes. The
end-to-end tests compare the engine's numbers with these, to the unit.

Usage:
  reference.py --queries F... --clicks F... [--join-window-ms N]
               [--format ndjson|tsv] [--out-json FILE] [--csv FILE]

Input format by extension (.ndjson/.jsonl or .tsv) unless --format.
--out-json writes
  {"counts": [[ad_id_str, term, minute_ms, impressions, clicks], ...],
   "queries": {"lines", "empty_lines", "accepted", "duplicates",
               "rejected", "rejects": {reason: n}},
   "clicks": {"lines", "empty_lines", "joined", "duplicates",
              "unknown_query", "rejected", "rejects": {reason: n}},
   "first_rejects": [{"file", "line", "reason"}, ... first 100]}
counts sorted by (ad_id numerically, term bytes, minute). "lines" counts
the lines that are not empty (a final line without LF is a line), as gen's
manifest.json and ingest's --report do. --csv writes per (ad, term) totals as
`ad_id,term,impressions,clicks` (RFC 4180), ads ascending, terms by
impressions descending then term bytes ascending.

Decisions where SPEC leaves room (each one is a test expectation):
  - a line is what lies between LFs; one CR before the LF is removed, and a
    line that is then empty is skipped (not a reject, not in "lines");
  - checks run line length, then (NDJSON) UTF-8 of the whole line, JSON
    syntax, object-ness, repeated named fields, then the fields in the order
    of the SPEC tables; the first failing check names the reason;
  - named fields are per record kind: a query may repeat "ad_id" or
    "click_id" (they are "anything else" to a query);
  - JSON strings are compared and checked after unescaping: "\\u0031" is
    the id 1, "\\u0074ime" is the field time;
  - a TSV query whose text holds a CR (other than the one removed before
    the LF) is bad_tsv, like one whose text holds a TAB;
  - too_many_ads is checked after every entry was found well-typed;
  - a click on a known query is checked for the ad first
    (click_ad_not_shown), then for the window (click_outside_window);
  - a UTF-8 byte order mark before the object is bad_json; an escaped lone
    surrogate is bad_utf8 in "query", bad_click_id in "click_id", and
    harmless in an ignored field;
  - RFC 3339: any number of fraction digits (truncated to ms), "-00:00"
    allowed, the result must lie in [0, 253402300799999]; in NDJSON a time
    string of digits is not a time, in TSV decimal ms are;
  - a TSV click_id is 1..64 bytes of anything but TAB.
"""
import argparse
import csv
import io
import json
import re
import sys
import threading

U64_MAX = (1 << 64) - 1
TIME_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
LINE_MAX = 65536
TERM_MAX = 512
ADS_MAX = 32
CLICK_ID_MAX = 64
MINUTE_MS = 60000
EARLY_CLICK_MS = 60000
DEFAULT_JOIN_WINDOW_MS = 86400000
FIRST_REJECTS_MAX = 100

QUERY_FIELDS = ("time", "query_id", "query", "ad_ids")
CLICK_FIELDS = ("time", "query_id", "ad_id", "click_id")

WS_RUN = re.compile(rb"[ \t\n\x0b\x0c\r]+")
WS = b" \t\n\x0b\x0c\r"
DIGITS = re.compile(rb"[0-9]+")
RFC3339 = re.compile(
    rb"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    rb"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))")
DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class Reject(Exception):
    """A line that is not a record; args[0] is the reason name."""

    @property
    def reason(self):
        return self.args[0]


class JsonInt:
    """A JSON integer token, kept as its text (so "-0" stays visible and a
    5000-digit number in an ignored field costs nothing)."""
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


class JsonObject:
    """A JSON object as its list of (name, value) pairs, in order (not a
    list subclass, so it can never pass for an array)."""
    __slots__ = ("pairs",)

    def __init__(self, pairs):
        self.pairs = pairs


def reject_constant(name):
    raise ValueError("not JSON: " + name)  # NaN, Infinity, -Infinity


def is_leap(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_from_epoch(year, month, day):
    """Days from 1970-01-01 to the given proleptic Gregorian date."""
    days = 0
    if year >= 1970:
        for y in range(1970, year):
            days += 366 if is_leap(y) else 365
    else:
        for y in range(year, 1970):
            days -= 366 if is_leap(y) else 365
    for m in range(1, month):
        days += DAYS_IN_MONTH[m - 1] + (1 if m == 2 and is_leap(year) else 0)
    return days + day - 1


def parse_rfc3339(b):
    """bytes -> ms since the epoch, or None."""
    m = RFC3339.fullmatch(b)
    if not m:
        return None
    year, month, day, hour, minute, sec = (int(m.group(i)) for i in range(1, 7))
    if not 1 <= month <= 12:
        return None
    mdays = DAYS_IN_MONTH[month - 1] + (1 if month == 2 and is_leap(year) else 0)
    if not 1 <= day <= mdays or hour > 23 or minute > 59 or sec > 59:
        return None
    frac = m.group(7) or b""
    frac_ms = int((frac + b"000")[:3])
    offset_min = 0
    if m.group(8) is None:
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            return None
        offset_min = (oh * 60 + om) * (1 if m.group(9) == b"+" else -1)
    ms = ((days_from_epoch(year, month, day) * 86400 + hour * 3600
           + minute * 60 + sec) * 1000 + frac_ms - offset_min * 60000)
    if ms < 0 or ms > TIME_MAX_MS:
        return None
    return ms


def digits_value(b):
    """ASCII digits (leading zeros allowed) -> int <= U64_MAX, or None."""
    if not DIGITS.fullmatch(b):
        return None
    b = b.lstrip(b"0") or b"0"
    if len(b) > 20:
        return None
    v = int(b)
    return v if v <= U64_MAX else None


def json_u64(v):
    """A JSON integer or a string of ASCII digits -> int, or None."""
    if isinstance(v, JsonInt):
        return digits_value(v.text.encode("ascii"))
    if isinstance(v, str):
        try:
            return digits_value(v.encode("utf-8"))
        except UnicodeEncodeError:
            return None
    return None


def json_time(v):
    if isinstance(v, JsonInt):
        ms = digits_value(v.text.encode("ascii"))
        return ms if ms is not None and ms <= TIME_MAX_MS else None
    if isinstance(v, str):
        try:
            return parse_rfc3339(v.encode("utf-8"))
        except UnicodeEncodeError:
            return None
    return None


def tsv_time(b):
    if DIGITS.fullmatch(b):
        ms = digits_value(b)
        return ms if ms is not None and ms <= TIME_MAX_MS else None
    return parse_rfc3339(b)


def normalise(b):
    """Query text bytes (valid UTF-8) -> the search term bytes."""
    return WS_RUN.sub(b" ", b.lower()).strip(WS)


def check_term(b):
    """Raw text bytes -> term bytes, or raise Reject."""
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        raise Reject("bad_utf8")
    term = normalise(b)
    if not term:
        raise Reject("empty_query")
    if len(term) > TERM_MAX:
        raise Reject("query_too_long")
    return term


def check_ads(ids):
    """A list of ids (None = ill-typed) -> distinct ads in first-seen order."""
    if any(a is None for a in ids):
        raise Reject("bad_ad_ids")
    if len(ids) > ADS_MAX:
        raise Reject("too_many_ads")
    return list(dict.fromkeys(ids))


def json_fields(line, names):
    """Decode one NDJSON line; return {name: value} of the named fields."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise Reject("bad_utf8")
    try:
        value = json.loads(text, parse_int=JsonInt,
                           parse_constant=reject_constant,
                           object_pairs_hook=JsonObject)
    except ValueError:  # JSONDecodeError and the NaN/Infinity hook
        raise Reject("bad_json")
    if not isinstance(value, JsonObject):
        raise Reject("not_object")
    fields = {}
    for name, v in value.pairs:
        if name in names:
            if name in fields:
                raise Reject("duplicate_field")
            fields[name] = v
    return fields


def require(fields, name):
    if name not in fields:
        raise Reject("missing_" + name)
    return fields[name]


def parse_query_ndjson(line):
    f = json_fields(line, QUERY_FIELDS)
    time_ms = json_time(require(f, "time"))
    if time_ms is None:
        raise Reject("bad_time")
    qid = json_u64(require(f, "query_id"))
    if not qid:
        raise Reject("bad_query_id")
    text = require(f, "query")
    if not isinstance(text, str):
        raise Reject("bad_query")
    try:
        raw = text.encode("utf-8")  # fails on a lone surrogate escape
    except UnicodeEncodeError:
        raise Reject("bad_utf8")
    term = check_term(raw)
    ads = require(f, "ad_ids")
    if not isinstance(ads, list):
        raise Reject("bad_ad_ids")
    return qid, time_ms, term, check_ads([json_u64(a) for a in ads])


def parse_click_ndjson(line):
    f = json_fields(line, CLICK_FIELDS)
    time_ms = json_time(require(f, "time"))
    if time_ms is None:
        raise Reject("bad_time")
    qid = json_u64(require(f, "query_id"))
    if not qid:
        raise Reject("bad_query_id")
    ad = json_u64(require(f, "ad_id"))
    if ad is None:
        raise Reject("bad_ad_id")
    if "click_id" in f:
        cid = f["click_id"]
        if isinstance(cid, JsonInt):
            ok = json_u64(cid) is not None
        elif isinstance(cid, str):
            try:
                ok = 1 <= len(cid.encode("utf-8")) <= CLICK_ID_MAX
            except UnicodeEncodeError:
                ok = False
        else:
            ok = False
        if not ok:
            raise Reject("bad_click_id")
    return qid, ad, time_ms


def parse_query_tsv(line):
    parts = line.split(b"\t")
    if len(parts) != 4 or b"\r" in parts[3]:
        raise Reject("bad_tsv")  # the text may hold any byte but TAB, CR, LF
    time_ms = tsv_time(parts[0])
    if time_ms is None:
        raise Reject("bad_time")
    qid = digits_value(parts[1])
    if not qid:
        raise Reject("bad_query_id")
    term = check_term(parts[3])
    ads = [digits_value(a) for a in parts[2].split(b",")] if parts[2] else []
    return qid, time_ms, term, check_ads(ads)


def parse_click_tsv(line):
    parts = line.split(b"\t")
    if len(parts) not in (3, 4):
        raise Reject("bad_tsv")
    time_ms = tsv_time(parts[0])
    if time_ms is None:
        raise Reject("bad_time")
    qid = digits_value(parts[1])
    if not qid:
        raise Reject("bad_query_id")
    ad = digits_value(parts[2])
    if ad is None:
        raise Reject("bad_ad_id")
    if len(parts) == 4 and not 1 <= len(parts[3]) <= CLICK_ID_MAX:
        raise Reject("bad_click_id")
    return qid, ad, time_ms


PARSERS = {
    ("query", "ndjson"): parse_query_ndjson,
    ("query", "tsv"): parse_query_tsv,
    ("click", "ndjson"): parse_click_ndjson,
    ("click", "tsv"): parse_click_tsv,
}


def parse_line(kind, fmt, line):
    """One line without its LF -> ("empty", None), ("ok", record) or
    (reason, None). A query record is (query_id, time_ms, term_bytes, ads);
    a click record is (query_id, ad_id, time_ms)."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line:
        return "empty", None
    if len(line) > LINE_MAX:
        return "line_too_long", None
    try:
        return "ok", PARSERS[(kind, fmt)](line)
    except Reject as r:
        return r.reason, None


def file_format(path, forced):
    if forced:
        return forced
    if path.endswith((".ndjson", ".jsonl")):
        return "ndjson"
    if path.endswith(".tsv"):
        return "tsv"
    raise SystemExit("reference: cannot tell the format of " + path)


def file_lines(path):
    """(line number from 1, line without LF) for every line of the file."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            yield number, line[:-1] if line.endswith(b"\n") else line


class Counter:
    def __init__(self, join_window_ms):
        self.join_window_ms = join_window_ms
        self.queries = {}  # query_id -> (time_ms, term, ads)
        self.clicked = set()  # (query_id, ad_id)
        self.impressions = {}  # (ad, term, minute) -> n
        self.clicks = {}
        self.q = {"lines": 0, "empty_lines": 0, "accepted": 0,
                  "duplicates": 0, "rejected": 0, "rejects": {}}
        self.c = {"lines": 0, "empty_lines": 0, "joined": 0,
                  "duplicates": 0, "unknown_query": 0, "rejected": 0,
                  "rejects": {}}
        self.first_rejects = []

    def reject(self, stats, path, number, reason):
        stats["rejected"] += 1
        stats["rejects"][reason] = stats["rejects"].get(reason, 0) + 1
        if len(self.first_rejects) < FIRST_REJECTS_MAX:
            self.first_rejects.append(
                {"file": path, "line": number, "reason": reason})

    def add_query_file(self, path, fmt):
        for number, line in file_lines(path):
            status, rec = parse_line("query", fmt, line)
            if status == "empty":
                self.q["empty_lines"] += 1
                continue
            self.q["lines"] += 1
            if status != "ok":
                self.reject(self.q, path, number, status)
                continue
            qid, time_ms, term, ads = rec
            if qid in self.queries:
                self.q["duplicates"] += 1
                continue
            self.queries[qid] = (time_ms, term, ads)
            self.q["accepted"] += 1
            minute = time_ms // MINUTE_MS * MINUTE_MS
            for ad in ads:
                key = (ad, term, minute)
                self.impressions[key] = self.impressions.get(key, 0) + 1

    def add_click_file(self, path, fmt):
        for number, line in file_lines(path):
            status, rec = parse_line("click", fmt, line)
            if status == "empty":
                self.c["empty_lines"] += 1
                continue
            self.c["lines"] += 1
            if status != "ok":
                self.reject(self.c, path, number, status)
                continue
            qid, ad, time_ms = rec
            query = self.queries.get(qid)
            if query is None:
                self.c["unknown_query"] += 1
                continue
            q_time_ms, term, ads = query
            if ad not in ads:
                self.reject(self.c, path, number, "click_ad_not_shown")
            elif not (q_time_ms - EARLY_CLICK_MS <= time_ms
                      <= q_time_ms + self.join_window_ms):
                self.reject(self.c, path, number, "click_outside_window")
            elif (qid, ad) in self.clicked:
                self.c["duplicates"] += 1
            else:
                self.clicked.add((qid, ad))
                self.c["joined"] += 1
                key = (ad, term, q_time_ms // MINUTE_MS * MINUTE_MS)
                self.clicks[key] = self.clicks.get(key, 0) + 1

    def buckets(self):
        """[(ad, term_bytes, minute, impressions, clicks)] sorted."""
        return [(ad, term, minute, n, self.clicks.get((ad, term, minute), 0))
                for (ad, term, minute), n in sorted(self.impressions.items())]

    def totals(self):
        """[(ad, term_bytes, impressions, clicks)] in the order of
        `ctrd query --format csv`."""
        sums = {}
        for ad, term, _minute, imps, clicks in self.buckets():
            s = sums.setdefault((ad, term), [0, 0])
            s[0] += imps
            s[1] += clicks
        rows = [(ad, term, s[0], s[1]) for (ad, term), s in sums.items()]
        rows.sort(key=lambda r: (r[0], -r[2], r[1]))
        return rows

    def result(self):
        return {
            "counts": [[str(ad), term.decode("utf-8"), minute, imps, clicks]
                       for ad, term, minute, imps, clicks in self.buckets()],
            "queries": self.q,
            "clicks": self.c,
            "first_rejects": self.first_rejects,
        }

    def csv_text(self):
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["ad_id", "term", "impressions", "clicks"])
        for ad, term, imps, clicks in self.totals():
            w.writerow([ad, term.decode("utf-8"), imps, clicks])
        return out.getvalue()


def run(args):
    counter = Counter(args.join_window_ms)
    for path in args.queries:
        counter.add_query_file(path, file_format(path, args.format))
    for path in args.clicks:
        counter.add_click_file(path, file_format(path, args.format))
    if args.out_json:
        with open(args.out_json, "w", encoding="utf-8") as f:
            json.dump(counter.result(), f, sort_keys=True)
            f.write("\n")
    if args.csv:
        with open(args.csv, "w", encoding="utf-8", newline="") as f:
            f.write(counter.csv_text())
    if not args.out_json and not args.csv:
        sys.stdout.write(counter.csv_text())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--queries", nargs="*", default=[])
    p.add_argument("--clicks", nargs="*", default=[])
    p.add_argument("--join-window-ms", type=int,
                   default=DEFAULT_JOIN_WINDOW_MS)
    p.add_argument("--format", choices=("ndjson", "tsv"))
    p.add_argument("--out-json")
    p.add_argument("--csv")
    args = p.parse_args()
    with_big_stack(lambda: run(args))


def with_big_stack(fn):
    """Run fn() in a thread with the stack and recursion limit that JSON
    nested 32768 deep (the most a 64 KiB line can hold) needs: deep nesting
    in an ignored field is valid JSON, and the json module recurses once per
    level. Returns fn's result; re-raises its exception."""
    sys.setrecursionlimit(200000)
    threading.stack_size(256 * 1024 * 1024)
    box = {}

    def body():
        try:
            box["value"] = fn()
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


if __name__ == "__main__":
    main()
