#!/usr/bin/env python3
"""damage: the tools of tests/e2e/test_damage.sh — post records to `ctrd
serve` one request at a time, read a data directory's write-ahead log with
the byte tables of src/wal.h, and damage the log and the other files at
known places (src/fsutil.h, countmap.h, terms.h, datadir.h). Python 3
standard library only; no ctrd code.

  damage.py post URL OUT.json KIND:FILE...
      POSTs each FILE (KIND q: /v1/queries, c: /v1/clicks; NDJSON) in
      order, each after the answer to the one before, on one connection:
      the log then holds one record per request, in this order. Exit 1
      unless every answer is 200. OUT.json lists [kind, file].
  damage.py wal-map DIR POSTS.json OUT.json
      parses DIR/wal from the MANIFEST's log position: one segment, its
      header, and records whose kinds and payloads are exactly the posted
      bodies in order, nothing after the last. OUT.json: the segment's
      name and size, the position, each record's offset and length.
  damage.py wal-damage DIR MAP.json CASE
      damages the log of DIR (a copy of the mapped one) and prints, as
      shell assignments, what a check must then find: KEPT (records before
      the first damaged one), OFF (its offset in the segment), POS (its
      log position; delete: the MANIFEST's), INTACT (intact records after
      it), DROP (bytes from OFF to the end), SEG (the segment's name).
      CASE: flip2 (a bit of record 2's payload), flip10 (a bit of record
      10's header), len10 (record 10's length field + 1), zero4k (4 KiB
      of zeros in the middle of the segment), delete (the segment), rmdir
      (the directory wal/). Torn
      tails, where TORN is the bytes to cut and OFF where they begin: cut
      (the last record cut short), zeros (4 KiB of zeros after the last
      record). Records count from 1.
  damage.py prefix POSTS.json K Q_OUT C_OUT
      the concatenations of the query and click bodies of the first K
      posts.
  damage.py batch-variants DIR OUT
      for each kind of file of a checkpointed directory (counts,
      countdelta, marks, pending, run, terms, manifest: the largest file
      of the kind the MANIFEST names), copies of DIR into
      OUT/<kind>_<damage>, each with one damage to that file: a bit
      flipped at each of several positions (flip_<what is there>; the
      issue's rows among them: a count, a term's byte, a marked pair),
      cut to half its size (truncated), or deleted (deleted). OUT/list has a line "LABEL FILE HOW POS" for each
      (HOW flip, truncate or delete; POS the byte flipped, or the size
      cut to).
"""
import argparse
import http.client
import json
import os
import shutil
import struct
import sys
import urllib.parse

# src/wal.h
SEG_MAGIC = b"CTRDWAL2"
SEG_HEADER_BYTES = 24
REC_MAGIC = 0x5ec0d1a7
REC_LEN = 8
REC_KIND = 12
REC_NOW = 16
REC_HEADER_BYTES = 56
KIND_NAMES = {"q": "queries", "c": "clicks"}
# src/fsutil.h
FOOTER_BYTES = 24
FS_BLOCK_BYTES = 65536
SEAL_MAGIC = b"CTRDSUM1"
# src/countmap.h, src/terms.h
COUNTS_HEADER_BYTES = 16
TERMS_MAGIC_BYTES = 8
ZERO_BYTES = 4096
BATCH_KINDS = ("counts", "countdelta", "marks", "pending", "run", "terms",
               "manifest")
TIMEOUT_S = 30


def fail(msg):
    print(msg)
    return 1


# ---- posting ----

def cmd_post(args):
    u = urllib.parse.urlsplit(args.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT_S)
    posts = []
    for item in args.items:
        kind, path = item.split(":", 1)
        with open(path, "rb") as f:
            body = f.read()
        conn.request("POST", "/v1/" + KIND_NAMES[kind], body=body,
                     headers={"Content-Type": "application/x-ndjson"})
        r = conn.getresponse()
        answer = r.read()
        if r.status != 200:
            return fail("POST %s: %d %r" % (path, r.status, answer[:200]))
        posts.append([kind, path])
    conn.close()
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(posts, f)
    return 0


# ---- the log ----

def manifest_facts(d):
    with open(os.path.join(d, "MANIFEST"), encoding="utf-8") as f:
        return [line.split() for line in f.read().splitlines()]


def wal_position(d):
    for w in manifest_facts(d):
        if len(w) == 4 and w[:2] == ["input", "wal"]:
            return int(w[2])
    return None


def read_records(data, off):
    """[(offset, payload length, kind byte)] from off to the end, by the
    length fields only; stops at the first header that does not parse."""
    out = []
    while off + REC_HEADER_BYTES <= len(data):
        magic, = struct.unpack_from("<I", data, off)
        n, = struct.unpack_from("<I", data, off + REC_LEN)
        end = off + REC_HEADER_BYTES + n
        if magic != REC_MAGIC or end > len(data):
            break
        out.append((off, n, data[off + REC_KIND]))
        off = end
    return out, off


def cmd_wal_map(args):
    pos = wal_position(args.dir)
    wal = os.path.join(args.dir, "wal")
    segs = sorted(n for n in os.listdir(wal) if n.endswith(".log"))
    if pos is None or len(segs) != 1:
        return fail("wal-map: MANIFEST log position %r, segments %r (want "
                    "one segment and a position)" % (pos, segs))
    start = int(segs[0][:16], 16)
    with open(os.path.join(wal, segs[0]), "rb") as f:
        data = f.read()
    if data[:8] != SEG_MAGIC or struct.unpack_from("<Q", data, 8)[0] != \
            start or pos < start + SEG_HEADER_BYTES:
        return fail("wal-map: segment %s: header %r, position %d"
                    % (segs[0], data[:16], pos))
    records, end = read_records(data, pos - start)
    with open(args.posts, encoding="utf-8") as f:
        posts = json.load(f)
    if end != len(data) or len(records) != len(posts):
        return fail("wal-map: %d records ending at %d of %d bytes, %d posts"
                    % (len(records), end, len(data), len(posts)))
    kinds = {"q": 0, "c": 1}  # enum engine_kind
    for i, ((off, n, kind), (k, path)) in enumerate(zip(records, posts)):
        with open(path, "rb") as f:
            body = f.read()
        payload = data[off + REC_HEADER_BYTES:off + REC_HEADER_BYTES + n]
        if payload != body or kind != kinds[k]:
            return fail("wal-map: record %d (offset %d, kind %d) is not the "
                        "body of post %d (%s)" % (i + 1, off, kind, i + 1,
                                                  path))
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"segment": segs[0], "size": len(data), "position": pos,
                   "records": [[off, REC_HEADER_BYTES + n]
                               for off, n, _k in records]}, f)
    print("wal-map: %d records in %s (%d bytes) after position %d"
          % (len(records), segs[0], len(data), pos))
    return 0


def record_holding(records, at):
    """Index of the record that holds byte at."""
    return next(i for i, (off, n) in enumerate(records) if off <= at < off + n)


def cmd_wal_damage(args):
    with open(args.map, encoding="utf-8") as f:
        m = json.load(f)
    recs, size, seg = m["records"], m["size"], m["segment"]
    path = os.path.join(args.dir, "wal", seg)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    case, n = args.case, len(recs)
    if case in ("delete", "rmdir"):
        if case == "delete":
            os.unlink(path)
        else:
            shutil.rmtree(os.path.dirname(path))
        print("KEPT=0 OFF=0 POS=%d INTACT=0 DROP=0 SEG=%s"
              % (m["position"], seg))
        return 0
    if case in ("cut", "zeros"):
        off, length = recs[-1]
        if case == "cut":
            del data[off + length // 2:]
            print("KEPT=%d OFF=%d TORN=%d SEG=%s" % (n - 1, off,
                                                     length // 2, seg))
        else:
            data += bytes(ZERO_BYTES)
            print("KEPT=%d OFF=%d TORN=%d SEG=%s" % (n, size, ZERO_BYTES, seg))
        with open(path, "wb") as f:
            f.write(data)
        return 0
    if case == "flip2":
        off, length = recs[1]
        lo = hi = off + REC_HEADER_BYTES + (length - REC_HEADER_BYTES) // 2
        data[lo] ^= 0x10
    elif case == "flip10":
        lo = hi = recs[9][0] + REC_NOW
        data[lo] ^= 0x01
    elif case == "len10":
        lo = recs[9][0] + REC_LEN
        hi = lo + 3
        length, = struct.unpack_from("<I", data, lo)
        struct.pack_into("<I", data, lo, length + 1)
    elif case == "zero4k":
        lo = size // 2 - ZERO_BYTES // 2
        hi = lo + ZERO_BYTES - 1
        data[lo:hi + 1] = bytes(ZERO_BYTES)
    else:
        return fail("wal-damage: unknown case %s" % case)
    k, last = record_holding(recs, lo), record_holding(recs, hi)
    if k == 0 or last == n - 1:
        return fail("wal-damage: %s hits records %d..%d of %d: not in the "
                    "middle" % (case, k + 1, last + 1, n))
    with open(path, "wb") as f:
        f.write(data)
    print("KEPT=%d OFF=%d POS=%d INTACT=%d DROP=%d SEG=%s"
          % (k, recs[k][0], int(seg[:16], 16) + recs[k][0], n - 1 - last,
             size - recs[k][0], seg))
    return 0


def cmd_prefix(args):
    with open(args.posts, encoding="utf-8") as f:
        posts = json.load(f)[:args.k]
    for kind, out in (("q", args.q_out), ("c", args.c_out)):
        with open(out, "wb") as o:
            for k, path in posts:
                if k == kind:
                    with open(path, "rb") as f:
                        o.write(f.read())
    return 0


# ---- damaging files ----

def sealed_content_len(data):
    if data[-8:] != SEAL_MAGIC:
        raise ValueError("no sealed-file trailer")
    return struct.unpack_from("<Q", data, len(data) - FOOTER_BYTES)[0]


def named_file(d, kind):
    """The file of that kind the MANIFEST names (the largest one)."""
    fixed = {"terms": "terms.dat", "manifest": "MANIFEST"}
    if kind in fixed:
        return fixed[kind]
    names = [w[-3] for w in manifest_facts(d) if w and w[0] == kind]
    return max(names, key=lambda n: os.path.getsize(os.path.join(d, n)))


def flip_positions(kind, data):
    """[(position, why)] of the bytes to flip in a file of that kind."""
    size = len(data)
    if kind == "terms":
        if struct.unpack_from("<I", data, TERMS_MAGIC_BYTES)[0] < 1:
            raise ValueError("terms.dat: an empty first term")
        return [(0, "magic"), (TERMS_MAGIC_BYTES, "first_length"),
                (TERMS_MAGIC_BYTES + 4, "first_crc"),
                (TERMS_MAGIC_BYTES + 8, "first_term_byte"),
                (size - 1, "last_term_byte")]
    if kind == "manifest":
        text = data.decode("utf-8")
        return [(0, "magic"), (text.index("\nseq ") + 5, "seq_digit"),
                (size - 2, "checksum_digit")]
    L = sealed_content_len(data)
    out = [(0, "content_start"), (L // 2, "content_middle"),
           (L - 1, "content_end"), (L, "block_crcs"),
           (size - FOOTER_BYTES, "trailer_length"), (size - 1, "trailer_magic")]
    if kind in ("counts", "countdelta"):
        # the first bucket's impressions: ads, then ad_id, n, then {term,
        # minute, impressions, clicks}
        out.append((COUNTS_HEADER_BYTES + 16 + 8, "impressions"))
    if kind == "marks":
        out.append(((L // 16) // 3 * 16, "marked_query_id"))
    return out


def cmd_batch_variants(args):
    """One copy of the directory per damage, and a line for each."""
    os.makedirs(args.out)
    lines = []
    for kind in BATCH_KINDS:
        name = named_file(args.dir, kind)
        with open(os.path.join(args.dir, name), "rb") as f:
            data = f.read()
        damages = [("flip_" + why, "flip", pos)
                   for pos, why in flip_positions(kind, data)]
        damages += [("truncated", "truncate", len(data) // 2),
                    ("deleted", "delete", 0)]
        for what, how, pos in damages:
            label = "%s_%s" % (kind, what)
            d = os.path.join(args.out, label)
            shutil.copytree(args.dir, d)
            path = os.path.join(d, name)
            if how == "delete":
                os.unlink(path)
            else:
                with open(path, "r+b") as f:
                    if how == "flip":
                        f.seek(pos)
                        f.write(bytes([data[pos] ^ 1]))
                    else:
                        f.truncate(pos)
            lines.append("%s %s %s %d\n" % (label, name, how, pos))
    with open(os.path.join(args.out, "list"), "w", encoding="utf-8") as f:
        f.writelines(lines)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("post")
    s.add_argument("url")
    s.add_argument("out")
    s.add_argument("items", nargs="+")
    s.set_defaults(fn=cmd_post)
    s = sub.add_parser("wal-map")
    s.add_argument("dir")
    s.add_argument("posts")
    s.add_argument("out")
    s.set_defaults(fn=cmd_wal_map)
    s = sub.add_parser("wal-damage")
    s.add_argument("dir")
    s.add_argument("map")
    s.add_argument("case")
    s.set_defaults(fn=cmd_wal_damage)
    s = sub.add_parser("prefix")
    s.add_argument("posts")
    s.add_argument("k", type=int)
    s.add_argument("q_out")
    s.add_argument("c_out")
    s.set_defaults(fn=cmd_prefix)
    s = sub.add_parser("batch-variants")
    s.add_argument("dir")
    s.add_argument("out")
    s.set_defaults(fn=cmd_batch_variants)
    args = p.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
