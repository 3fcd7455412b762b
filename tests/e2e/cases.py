#!/usr/bin/env python3
"""cases: hand-written tricky log lines with their expected verdicts.

One table, two uses:
  cases.py check      checks tests/reference.py against every verdict here
                      (so a bug in the oracle is caught), prints PASS/FAIL
                      lines per group;
  cases.py write DIR  writes the lines as log files for the engine (see
                      test_records.sh): DIR/<group>.<n>.<ext>, each file with
                      at most REJECTS_PER_FILE rejected lines so one
                      invocation's report lists every reject with its line.

A verdict is a reject reason, "empty" (skipped line) or the parsed record:
a query is (query_id, time_ms, term_bytes, [ads]), a click
(query_id, ad_id, time_ms). Every accepted query case has its own query_id
and its own ads (so the engine's per-ad output shows each case), except
where a case is about duplicates.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.dont_write_bytecode = True  # no tests/__pycache__ in the tree
import reference  # noqa: E402  (tests/reference.py)

U64 = (1 << 64) - 1
T0 = 1763805600000  # 2025-11-22T10:00:00Z
MAXT = 253402300799999
REJECTS_PER_FILE = 90


def j(**fields):
    """A JSON line from keyword fields, in the given order."""
    return json.dumps(fields, ensure_ascii=False).encode("utf-8")


def jq(time=T0, query_id=1, query="q", ad_ids=(1,), **extra):
    d = {"time": time, "query_id": query_id, "query": query,
         "ad_ids": list(ad_ids)}
    d.update(extra)
    return json.dumps(d, ensure_ascii=False).encode("utf-8")


def padded(size_bytes, **fields):
    """A query line of exactly size_bytes, padded by an ignored field."""
    bare = len(jq(pad="", **fields))
    return jq(pad="p" * (size_bytes - bare), **fields)


def raw(s):
    return s.encode("utf-8") if isinstance(s, str) else s


# ---------------------------------------------------------------- queries
# Accepted NDJSON queries use query_ids 1000+ and ads 1000+ (one id per case).
Q_NDJSON = []


def qok(name, line, qid, time_ms, term, ads):
    Q_NDJSON.append((name, raw(line), (qid, time_ms, raw(term), list(ads))))


def qbad(name, line, reason):
    Q_NDJSON.append((name, raw(line), reason))


qok("basic", b'{"time":1763805600123,"query_id":"18446744073709551615",'
    b'"query":"Running  Shoes","ad_ids":[1001,2002,3003]}',
    U64, T0 + 123, "running shoes", [1001, 2002, 3003])
qok("qid_int_max", jq(query_id=U64 - 1, ad_ids=[1004], query="a"),
    U64 - 1, T0, "a", [1004])
qok("ads_mixed_dup", jq(query_id=1005, ad_ids=["1005", 1005, "001005", 1006],
                        query="b"), 1005, T0, "b", [1005, 1006])
qok("ad_zero", jq(query_id=1007, ad_ids=[0], query="zero ad"),
    1007, T0, "zero ad", [0])
qok("ads_empty", jq(query_id=1008, ad_ids=[], query="no ads"),
    1008, T0, "no ads", [])
qok("qid_long_zeros", jq(query_id="0" * 40 + "1009", ad_ids=[1009],
                         query="z"), 1009, T0, "z", [1009])
qok("ad_max", jq(query_id=1010, ad_ids=[str(U64), U64 - 1], query="max ad"),
    1010, T0, "max ad", [U64, U64 - 1])
qok("rfc3339_ms", jq(time="2025-11-22T10:00:00.123Z", query_id=1011,
                     ad_ids=[1011]), 1011, T0 + 123, "q", [1011])
qok("rfc3339_offset", jq(time="2025-11-22T11:30:00+01:30", query_id=1012,
                         ad_ids=[1012]), 1012, T0, "q", [1012])
qok("rfc3339_neg_offset", jq(time="2025-11-22T05:15:00.5-04:45",
                             query_id=1013, ad_ids=[1013]),
    1013, T0 + 500, "q", [1013])
qok("rfc3339_lower", jq(time="2025-11-22t10:01:00z", query_id=1014,
                        ad_ids=[1014]), 1014, T0 + 60000, "q", [1014])
qok("rfc3339_truncate", jq(time="2025-11-22T10:00:59.999999999Z",
                           query_id=1015, ad_ids=[1015]),
    1015, T0 + 59999, "q", [1015])
qok("rfc3339_long_fraction", jq(time="2025-11-22T10:00:59." + "9" * 30 + "Z",
                                query_id=1016, ad_ids=[1016]),
    1016, T0 + 59999, "q", [1016])
qok("rfc3339_leap_2024", jq(time="2024-02-29T00:00:00Z", query_id=1017,
                            ad_ids=[1017]), 1017, 1709164800000, "q", [1017])
qok("rfc3339_leap_2000", jq(time="2000-02-29T23:59:59.999Z", query_id=1018,
                            ad_ids=[1018]), 1018, 951868799999, "q", [1018])
qok("time_zero", jq(time=0, query_id=1019, ad_ids=[1019]),
    1019, 0, "q", [1019])
qok("rfc3339_epoch", jq(time="1970-01-01T00:00:00Z", query_id=1020,
                        ad_ids=[1020]), 1020, 0, "q", [1020])
qok("rfc3339_epoch_offset", jq(time="1970-01-01T01:00:00+01:00",
                               query_id=1021, ad_ids=[1021]),
    1021, 0, "q", [1021])
qok("time_max", jq(time=MAXT, query_id=1022, ad_ids=[1022]),
    1022, MAXT, "q", [1022])
qok("rfc3339_max", jq(time="9999-12-31T23:59:59.999Z", query_id=1023,
                      ad_ids=[1023]), 1023, MAXT, "q", [1023])
qok("rfc3339_minus_zero", jq(time="2025-11-22T10:00:00-00:00",
                             query_id=1024, ad_ids=[1024]),
    1024, T0, "q", [1024])
qok("normalise", b'{"time":1763805600000,"query_id":1025,"ad_ids":[1025],'
    b'"query":"\\t Hello\\u000bWORLD\\f\\r\\n  \xc3\x89COLE  "}',
    1025, T0, b"hello world \xc3\x89cole", [1025])
qok("unicode_space_kept", jq(query_id=1026, ad_ids=[1026],
                             query="\u3000A\u00a0B "),
    1026, T0, "\u3000a\u00a0b", [1026])
qok("nul_kept", b'{"time":1763805600000,"query_id":1027,"ad_ids":[1027],'
    b'"query":"a\\u0000B"}', 1027, T0, b"a\x00b", [1027])
qok("escapes", b'{"time":1763805600000,"query_id":1028,"ad_ids":[1028],'
    b'"query":"\\u0041\\/B\\"\\\\"}', 1028, T0, b'a/b"\\', [1028])
qok("surrogate_pair", b'{"time":1763805600000,"query_id":1029,'
    b'"ad_ids":[1029],"query":"\\ud83d\\ude00 Smile"}',
    1029, T0, "\U0001F600 smile", [1029])
qok("raw_4byte", jq(query_id=1030, ad_ids=[1030], query="\U0001D11E clef"),
    1030, T0, "\U0001D11E clef", [1030])
qok("noncharacter", b'{"time":1763805600000,"query_id":1031,'
    b'"ad_ids":[1031],"query":"\\uffff"}', 1031, T0, "\uffff", [1031])
qok("term_512", jq(query_id=1032, ad_ids=[1032], query="  " + "X" * 512 + " "),
    1032, T0, "x" * 512, [1032])
qok("term_512_utf8", jq(query_id=1033, ad_ids=[1033], query="\u00e9" * 256),
    1033, T0, "\u00e9" * 256, [1033])
qok("raw_long_ws", jq(query_id=1034, ad_ids=[1034],
                      query="a" + " \t" * 400 + "b"), 1034, T0, "a b", [1034])
qok("extra_fields", b'{"meta":{"x":[1,2,{"y":null}],"t":true},"time":'
    b'1763805600000,"ad_id":5,"click_id":"c","ad_id":6,"meta":1,'
    b'"query_id":1035,"query":"extra","ad_ids":[1035],"z":1e400,'
    b'"big":123456789012345678901234567890,"neg":-0.0,"":""}',
    1035, T0, "extra", [1035])
qok("nested_dup_named", b'{"time":1763805600000,"query_id":1036,'
    b'"query":"nested","ad_ids":[1036],"m":{"time":1,"time":2}}',
    1036, T0, "nested", [1036])
qok("deep_nesting", b'{"time":1763805600000,"query_id":1037,"query":"deep",'
    b'"ad_ids":[1037],"m":' + b"[" * 10000 + b"]" * 10000 + b"}",
    1037, T0, "deep", [1037])
qok("key_order", b'{"ad_ids":[1038],"query":"order","query_id":1038,'
    b'"time":1763805600000}', 1038, T0, "order", [1038])
qok("json_whitespace", b' \t{ "time" : 1763805600000 ,\t"query_id":1039,'
    b'"query":"ws","ad_ids":[ 1039 ] }\t \r\r', 1039, T0, "ws", [1039])
qok("crlf", jq(query_id=1040, ad_ids=[1040], query="crlf") + b"\r",
    1040, T0, "crlf", [1040])
qok("escaped_key", b'{"\\u0074ime":1763805600000,"query_\\u0069d":1041,'
    b'"query":"esc key","ad_ids":[1041]}', 1041, T0, "esc key", [1041])
qok("escaped_id", b'{"time":1763805600000,"query_id":"\\u0031042",'
    b'"query":"esc id","ad_ids":["\\u0031043"]}',
    1042, T0, "esc id", [1043])
qok("ads_32", jq(query_id=1044, ad_ids=[1044] * 32, query="thirty two"),
    1044, T0, "thirty two", [1044])
qok("ads_32_distinct", jq(query_id=1045, ad_ids=list(range(1045, 1077)),
                          query="many"), 1045, T0, "many",
    list(range(1045, 1077)))
qok("del_char", jq(query_id=1077, ad_ids=[1077], query="a\x7fb"),
    1077, T0, "a\x7fb", [1077])
qok("line_65536", padded(65536, query_id=1078, ad_ids=[1078],
                         query="max line"), 1078, T0, "max line", [1078])
qok("line_65536_crlf", padded(65536, query_id=1079, ad_ids=[1079],
                              query="max crlf") + b"\r",
    1079, T0, "max crlf", [1079])
qok("lone_surrogate_ignored", b'{"time":1763805600000,"query_id":1080,'
    b'"query":"ignored","ad_ids":[1080],"m":"\\udc00","\\ud800":1}',
    1080, T0, "ignored", [1080])
Q_NDJSON.append(("empty_line", b"", "empty"))
Q_NDJSON.append(("cr_only_line", b"\r", "empty"))

qbad("too_long", padded(65537, query_id=1100, ad_ids=[1100]),
     "line_too_long")
qbad("too_long_bad_utf8", b"\xff" * 70000, "line_too_long")
qbad("raw_ff", jq(query_id=1101, ad_ids=[1101])[:-1] + b',"m":"\xff"}',
     "bad_utf8")
qbad("overlong", jq(query_id=1102, ad_ids=[1102], query="\x00")
     .replace(b'"\\u0000"', b'"\xc0\xaf"'), "bad_utf8")
qbad("encoded_surrogate", jq(query_id=1103, ad_ids=[1103])[:-1]
     + b',"m":"\xed\xa0\x80"}', "bad_utf8")
qbad("truncated_utf8", jq(query_id=1104, ad_ids=[1104])[:-1]
     + b',"m":"\xe2\x82"}', "bad_utf8")
qbad("above_10ffff", jq(query_id=1105, ad_ids=[1105])[:-1]
     + b',"m":"\xf4\x90\x80\x80"}', "bad_utf8")
qbad("lone_high_surrogate", b'{"time":1763805600000,"query_id":1106,'
     b'"query":"a\\ud800","ad_ids":[1106]}', "bad_utf8")
qbad("lone_low_surrogate", b'{"time":1763805600000,"query_id":1107,'
     b'"query":"\\udc00b","ad_ids":[1107]}', "bad_utf8")
qbad("high_then_ascii", b'{"time":1763805600000,"query_id":1108,'
     b'"query":"\\ud800\\u0041","ad_ids":[1108]}', "bad_utf8")
qbad("bad_utf8_before_bad_ads", b'{"time":1763805600000,"query_id":1109,'
     b'"query":"\\udfff","ad_ids":7}', "bad_utf8")
for name, line in [
        ("open_brace", b"{"),
        ("trailing_comma", b'{"time":1,}'),
        ("trailing_garbage", jq(query_id=1110, ad_ids=[1110]) + b"x"),
        ("two_objects", jq(query_id=1111, ad_ids=[1111]) + b" {}"),
        ("nan", b'{"time":NaN,"query_id":1112,"query":"q","ad_ids":[]}'),
        ("infinity", b'{"time":1,"query_id":1113,"query":"q","ad_ids":[],'
                     b'"m":-Infinity}'),
        ("single_quotes", b"{'time':1}"),
        ("raw_control", b'{"time":1763805600000,"query_id":1114,'
                        b'"query":"a\x01b","ad_ids":[]}'),
        ("raw_tab_in_string", b'{"time":1763805600000,"query_id":1115,'
                              b'"query":"a\tb","ad_ids":[]}'),
        ("leading_zero", b'{"time":01763805600000,"query_id":1116,'
                         b'"query":"q","ad_ids":[]}'),
        ("plus_number", b'{"time":+1763805600000,"query_id":1117,'
                        b'"query":"q","ad_ids":[]}'),
        ("bad_escape", b'{"time":1763805600000,"query_id":1118,'
                       b'"query":"\\x41","ad_ids":[]}'),
        ("short_u_escape", b'{"time":1763805600000,"query_id":1119,'
                           b'"query":"\\u12","ad_ids":[]}'),
        ("bom", b"\xef\xbb\xbf" + jq(query_id=1120, ad_ids=[1120])),
        ("comment", b'{"time":1763805600000 /* c */,"query_id":1121,'
                    b'"query":"q","ad_ids":[]}'),
        ("vt_whitespace", b'{\x0b"time":1763805600000,"query_id":1122,'
                          b'"query":"q","ad_ids":[]}'),
        ("bare_word", b"tru"),
        ("unquoted_key", b'{time:1763805600000}'),
        ("missing_colon", b'{"time" 1}'),
        ("unclosed_string", b'{"time":"1}'),
        ("nul_raw", b'{"time":1763805600000,"query_id":1123,'
                    b'"query":"a\x00b","ad_ids":[]}'),
        ("deep_unclosed", b'{"m":' + b"[" * 5000 + b"}"),
        ("fraction_dot", b'{"time":1.,"query_id":1,"query":"q",'
                         b'"ad_ids":[]}'),
        ("lone_minus", b'{"time":-,"query_id":1,"query":"q","ad_ids":[]}'),
]:
    qbad("json_" + name, line, "bad_json")
for name, line in [("array", b"[]"), ("number", b"1"), ("string", b'"s"'),
                   ("null", b"null"), ("wrapped", b"[" + jq(query_id=1130,
                                                           ad_ids=[1130])
                                                        + b"]"),
                   ("ws_number", b"  0  ")]:
    qbad("not_object_" + name, line, "not_object")
qbad("dup_time", b'{"time":1763805600000,"time":1763805600000,'
     b'"query_id":1140,"query":"q","ad_ids":[1140]}', "duplicate_field")
qbad("dup_query_id", b'{"time":1763805600000,"query_id":1141,'
     b'"query_id":1141,"query":"q","ad_ids":[1141]}', "duplicate_field")
qbad("dup_query", b'{"time":1763805600000,"query_id":1142,"query":"q",'
     b'"ad_ids":[1142],"query":"r"}', "duplicate_field")
qbad("dup_ad_ids", b'{"time":1763805600000,"query_id":1143,"query":"q",'
     b'"ad_ids":[1143],"ad_ids":[]}', "duplicate_field")
qbad("dup_escaped", b'{"time":1763805600000,"\\u0074ime":1763805600000,'
     b'"query_id":1144,"query":"q","ad_ids":[1144]}', "duplicate_field")
qbad("dup_before_bad_time", b'{"time":"x","time":"y","query_id":1145,'
     b'"query":"q","ad_ids":[1145]}', "duplicate_field")
qbad("missing_all", b"{}", "missing_time")
qbad("missing_time", b'{"query_id":1150,"query":"q","ad_ids":[1150]}',
     "missing_time")
for name, t in [("neg", -1), ("fraction", 1.5), ("float_int", 1763805600000.0),
                ("digit_string", "1763805600000"), ("null", None),
                ("true", True), ("array", [1]), ("object", {"t": 1}),
                ("over_max", MAXT + 1), ("huge", 10 ** 30),
                ("not_leap", "2025-02-29T00:00:00Z"),
                ("not_leap_1900", "1900-02-29T00:00:00Z"),
                ("apr_31", "2025-04-31T00:00:00Z"),
                ("month_13", "2025-13-01T00:00:00Z"),
                ("month_0", "2025-00-01T00:00:00Z"),
                ("day_0", "2025-01-00T00:00:00Z"),
                ("no_seconds", "2025-11-22T10:00Z"),
                ("second_60", "2025-11-22T10:00:60Z"),
                ("hour_24", "2025-11-22T24:00:00Z"),
                ("minute_60", "2025-11-22T10:60:00Z"),
                ("space_sep", "2025-11-22 10:00:00Z"),
                ("no_offset", "2025-11-22T10:00:00"),
                ("empty_fraction", "2025-11-22T10:00:00.Z"),
                ("offset_no_colon", "2025-11-22T10:00:00+0100"),
                ("offset_hour_24", "2025-11-22T10:00:00+24:00"),
                ("offset_min_60", "2025-11-22T10:00:00+01:60"),
                ("before_epoch", "1969-12-31T23:59:59.999Z"),
                ("before_epoch_offset", "1970-01-01T00:30:00+01:00"),
                ("after_max_offset", "9999-12-31T23:59:59.999-00:01"),
                ("leading_space", " 2025-11-22T10:00:00Z"),
                ("trailing_space", "2025-11-22T10:00:00Z "),
                ("double_z", "2025-11-22T10:00:00ZZ"),
                ("short_year", "225-11-22T10:00:00Z"),
                ("fullwidth_digits", "\uff12\uff10\uff12\uff15-11-22T10:00:00Z"),
                ("empty", ""), ("utc_word", "2025-11-22T10:00:00UTC"),
                ("one_digit_month", "2025-1-22T10:00:00Z")]:
    qbad("time_" + name, jq(time=t, query_id=1151, ad_ids=[1151]), "bad_time")
qbad("time_minus_zero", b'{"time":-0,"query_id":1152,"query":"q",'
     b'"ad_ids":[1152]}', "bad_time")
qbad("time_exp", b'{"time":1e3,"query_id":1153,"query":"q",'
     b'"ad_ids":[1153]}', "bad_time")
qbad("time_before_qid", jq(time=-5, query_id=0, ad_ids=[1154]), "bad_time")
qbad("missing_query_id", j(time=T0, query="q", ad_ids=[1160]),
     "missing_query_id")
qbad("missing_qid_before_bad_query", j(time=T0, query=5, ad_ids=[1161]),
     "missing_query_id")
for name, v in [("zero", 0), ("zero_string", "0"), ("zeros", "000"),
                ("neg", -1), ("neg_string", "-1"), ("empty", ""),
                ("lead_space", " 1"), ("trail_space", "1 "), ("plus", "+1"),
                ("float", 1.0), ("over", U64 + 1), ("over_string", str(U64 + 1)),
                ("way_over", "9" * 25), ("null", None), ("true", True),
                ("array", [1]), ("object", {"a": 1}), ("hex", "0x10"),
                ("alnum", "1a"), ("arabic_digit", "\u0661"),
                ("over_zeros", "0" * 30 + str(U64 + 1))]:
    qbad("qid_" + name, jq(query_id=v, ad_ids=[1162]), "bad_query_id")
qbad("qid_minus_zero", b'{"time":1763805600000,"query_id":-0,"query":"q",'
     b'"ad_ids":[1163]}', "bad_query_id")
qbad("qid_exp", b'{"time":1763805600000,"query_id":1e3,"query":"q",'
     b'"ad_ids":[1164]}', "bad_query_id")
qbad("missing_query", j(time=T0, query_id=1170, ad_ids=[1170]),
     "missing_query")
qbad("missing_query_before_missing_ads", j(time=T0, query_id=1171),
     "missing_query")
for name, v in [("number", 5), ("null", None), ("array", ["q"]),
                ("object", {}), ("true", True)]:
    qbad("query_" + name, jq(query_id=1172, query=v, ad_ids=[1172]),
         "bad_query")
qbad("bad_query_before_bad_ads", jq(query_id=1173, query=1, ad_ids=[])
     .replace(b"[]", b"5"), "bad_query")
for name, v in [("empty", ""), ("spaces", "   "), ("ws_mix", "\t\n\r\x0b\x0c ")]:
    qbad("query_" + name, jq(query_id=1174, query=v, ad_ids=[1174]),
         "empty_query")
qbad("empty_query_before_missing_ads", j(time=T0, query_id=1175, query=" "),
     "empty_query")
qbad("query_513", jq(query_id=1176, query="x" * 513, ad_ids=[1176]),
     "query_too_long")
qbad("query_513_utf8", jq(query_id=1177, query="\u00e9" * 256 + "a",
                          ad_ids=[1177]), "query_too_long")
qbad("too_long_before_too_many", jq(query_id=1178, query="y" * 600,
                                    ad_ids=[1] * 40), "query_too_long")
qbad("missing_ad_ids", j(time=T0, query_id=1180, query="q"),
     "missing_ad_ids")
for name, v in [("string", "1"), ("number", 1), ("null", None),
                ("object", {"a": 1}), ("neg", [-1]), ("float", [1.0]),
                ("alnum", ["1a"]), ("empty_string", [""]), ("null_elem", [None]),
                ("nested", [[1]]), ("over", [U64 + 1]), ("minus_zero_str", ["-0"]),
                ("bool", [True]), ("bad_and_many", [1] * 39 + ["x"])]:
    qbad("ads_" + name, jq(query_id=1181, ad_ids=[]).replace(
        b'"ad_ids": []', b'"ad_ids": ' + json.dumps(v).encode()), "bad_ad_ids")
qbad("ads_minus_zero", b'{"time":1763805600000,"query_id":1182,"query":"q",'
     b'"ad_ids":[1,-0]}', "bad_ad_ids")
qbad("ads_33_dup", jq(query_id=1183, ad_ids=[5] * 33), "too_many_ads")
qbad("ads_33", jq(query_id=1184, ad_ids=list(range(33))), "too_many_ads")

# Duplicates: the first valid record per query_id wins.
qbad("first_invalid", jq(query_id=1200, ad_ids=[1200], query=""),
     "empty_query")
qok("then_valid", jq(query_id=1200, ad_ids=[1200], query="first valid"),
    1200, T0, "first valid", [1200])
qok("dup_later", jq(query_id=1200, ad_ids=[1201], query="second",
                    time=T0 + 3600000), 1200, T0 + 3600000, "second", [1201])

# ---------------------------------------------------------------- clicks
# Base queries for the click cases (written first in the click group):
# query_id 2000+k at time TQ with ads [2000+k, 2100+k], term "base k".
TQ = T0 + 5 * 60000 + 500
BASE_QUERIES = [jq(time=TQ, query_id=2000 + k, ad_ids=[2000 + k, 2100 + k],
                   query="Base %d" % k) for k in range(40)]
BASE_QUERIES.append(jq(time=TQ, query_id=2999, ad_ids=[0], query="ad zero"))
# a duplicate of base query 2000 that shows other ads: clicks join the first
BASE_QUERIES.append(jq(time=TQ + 7200000, query_id=2000, ad_ids=[2900],
                       query="dup version"))
C_NDJSON = []


def jc(time=TQ + 1000, query_id=2000, ad_id=2000, **extra):
    d = {"time": time, "query_id": query_id, "ad_id": ad_id}
    d.update(extra)
    return json.dumps(d, ensure_ascii=False).encode("utf-8")


def cok(name, line, qid, ad, time_ms):
    C_NDJSON.append((name, raw(line), (qid, ad, time_ms)))


def cbad(name, line, reason):
    C_NDJSON.append((name, raw(line), reason))


cok("basic", jc(click_id="c-1"), 2000, 2000, TQ + 1000)
cok("dup_other_id", jc(time=TQ + 5000, click_id="c-2"), 2000, 2000,
    TQ + 5000)
cok("click_id_zero", jc(ad_id=2100, click_id=0), 2000, 2100, TQ + 1000)
cok("string_ids", jc(query_id="2001", ad_id="0002001", click_id=U64),
    2001, 2001, TQ + 1000)
cok("click_id_64", jc(query_id=2002, ad_id=2002, click_id="x" * 64),
    2002, 2002, TQ + 1000)
cok("click_id_64_utf8", jc(query_id=2002, ad_id=2102, click_id="\u00e9" * 32),
    2002, 2102, TQ + 1000)
cok("early_edge", jc(time=TQ - 60000, query_id=2003, ad_id=2003),
    2003, 2003, TQ - 60000)
cok("late_edge", jc(time=TQ + 86400000, query_id=2004, ad_id=2004),
    2004, 2004, TQ + 86400000)
cok("rfc3339_truncate_edge", jc(time="2025-11-22T10:04:00.5009999Z",
                                query_id=2005, ad_id=2005),
    2005, 2005, TQ - 60000)
cok("ad_zero", jc(query_id=2999, ad_id=0), 2999, 0, TQ + 1000)
cok("ignored_dup_ad_ids", jc(query_id=2006, ad_id=2006)[:-1]
    + b',"ad_ids":1,"ad_ids":2}', 2006, 2006, TQ + 1000)
cok("first_version_ads", jc(query_id=2000, ad_id=2100, time=TQ + 2),
    2000, 2100, TQ + 2)
cbad("unknown_query", jc(query_id=777777, ad_id=1), "unknown_query")
cok("crlf", jc(query_id=2007, ad_id=2007) + b"\r", 2007, 2007, TQ + 1000)
C_NDJSON.append(("empty_line", b"", "empty"))
cbad("early", jc(time=TQ - 60001, query_id=2008, ad_id=2008),
     "click_outside_window")
cbad("late", jc(time=TQ + 86400001, query_id=2008, ad_id=2108),
     "click_outside_window")
cbad("rfc3339_truncate_early", jc(time="2025-11-22T10:04:00.4999999Z",
                                  query_id=2009, ad_id=2009),
     "click_outside_window")
cbad("ad_not_shown", jc(query_id=2010, ad_id=99), "click_ad_not_shown")
cbad("dup_version_ad", jc(query_id=2000, ad_id=2900), "click_ad_not_shown")
cbad("not_shown_and_late", jc(query_id=2010, ad_id=98, time=TQ + 10 ** 9),
     "click_ad_not_shown")
cbad("outside_on_clicked_pair", jc(query_id=2000, ad_id=2000, time=TQ - 10 ** 6),
     "click_outside_window")
cbad("bad_json", b'{"time":1,', "bad_json")
cbad("not_object", b"[1]", "not_object")
cbad("bad_utf8", jc(query_id=2011, ad_id=2011, click_id="\xff")
     .replace("\xff".encode(), b"\xff"), "bad_utf8")
cbad("missing_time", j(query_id=2011, ad_id=2011), "missing_time")
cbad("bad_time", jc(time="1763805900500", query_id=2011, ad_id=2011),
     "bad_time")
cbad("missing_query_id", j(time=TQ, ad_id=2011), "missing_query_id")
cbad("qid_zero", jc(query_id=0, ad_id=2011), "bad_query_id")
cbad("qid_neg", jc(query_id=-2011, ad_id=2011), "bad_query_id")
cbad("missing_ad_id", j(time=TQ, query_id=2011, click_id="x"),
     "missing_ad_id")
cbad("ad_ids_not_ad_id", j(time=TQ, query_id=2011, ad_ids=[2011]),
     "missing_ad_id")
for name, v in [("neg", -1), ("alnum", "x"), ("null", None), ("float", 1.5),
                ("over", U64 + 1), ("array", [2011]), ("empty", "")]:
    cbad("ad_id_" + name, jc(query_id=2011, ad_id=v), "bad_ad_id")
cbad("ad_id_minus_zero", b'{"time":1763805900500,"query_id":2011,'
     b'"ad_id":-0}', "bad_ad_id")
for name, v in [("empty", ""), ("65", "x" * 65), ("65_utf8", "\u00e9" * 32 + "a"),
                ("null", None), ("neg", -1), ("float", 1.5), ("true", True),
                ("array", []), ("over", U64 + 1), ("object", {})]:
    cbad("click_id_" + name, jc(query_id=2011, ad_id=2011, click_id=v),
         "bad_click_id")
cbad("click_id_lone_surrogate", jc(query_id=2011, ad_id=2011)[:-1]
     + b',"click_id":"\\ud800"}', "bad_click_id")
cbad("click_id_unknown_query", jc(query_id=888888, ad_id=1, click_id=""),
     "bad_click_id")
cbad("bad_ad_before_bad_click_id", jc(query_id=2011, ad_id="x", click_id=""),
     "bad_ad_id")
cbad("dup_ad_id", jc(query_id=2011, ad_id=2011)[:-1] + b',"ad_id":2011}',
     "duplicate_field")
cbad("dup_click_id", jc(query_id=2011, ad_id=2011, click_id="a")[:-1]
     + b',"click_id":"a"}', "duplicate_field")
cbad("dup_time", jc(query_id=2011, ad_id=2011)[:-1] + b',"time":1}',
     "duplicate_field")
cbad("too_long", jc(query_id=2011, ad_id=2011, pad="p" * 65536),
     "line_too_long")

# ---------------------------------------------------------------- TSV
Q_TSV = []
C_TSV = []


def tq(name, line, verdict):
    Q_TSV.append((name, raw(line), verdict))


def tc(name, line, verdict):
    C_TSV.append((name, raw(line), verdict))


tq("basic", b"1763805600123\t3000\t3000,3001\tRunning  Shoes",
   (3000, T0 + 123, b"running shoes", [3000, 3001]))
tq("no_ads", b"1763805600000\t3002\t\tno ads", (3002, T0, b"no ads", []))
tq("rfc3339", b"2025-11-22T11:00:00+01:00\t3003\t3003\tTSV time",
   (3003, T0, b"tsv time", [3003]))
tq("leading_zeros", b"0001763805600000\t0003004\t0,03004,3004\tzeros",
   (3004, T0, b"zeros", [0, 3004]))
tq("ws_and_nul", b"1763805600000\t3005\t3005\t \x0b A\x00B \x0c C  ",
   (3005, T0, b"a\x00b c", [3005]))
tq("quotes_commas", b'1763805600000\t3006\t3006\tsay "hi", bob',
   (3006, T0, b'say "hi", bob', [3006]))
tq("utf8", "1763805600000\t3007\t3007\t\u00c9T\u00c9 \U0001F600".encode(),
   (3007, T0, "\u00c9t\u00c9 \U0001F600".encode(), [3007]))
tq("crlf", b"1763805600000\t3008\t3008\tcrlf\r", (3008, T0, b"crlf", [3008]))
tq("max_ids", b"0\t18446744073709551615\t18446744073709551615\tmax",
   (U64, 0, b"max", [U64]))
tq("time_max", b"253402300799999\t3009\t3009\tlate",
   (3009, MAXT, b"late", [3009]))
tq("term_512", b"1763805600000\t3010\t3010\t" + b"Y" * 512,
   (3010, T0, b"y" * 512, [3010]))
tq("ads_32", b"1763805600000\t3011\t" + b",".join([b"3011"] * 32) + b"\tads",
   (3011, T0, b"ads", [3011]))
tq("empty_line", b"", "empty")
tq("three_fields", b"1763805600000\t3020\t3020", "bad_tsv")
tq("tab_in_text", b"1763805600000\t3020\t3020\ta\tb", "bad_tsv")
tq("one_field", b"hello", "bad_tsv")
tq("cr_in_text", b"1763805600000\t3020\t3020\ta\rb", "bad_tsv")
tq("cr_cr_end", b"1763805600000\t3020\t3020\tab\r\r", "bad_tsv")
tq("empty_time", b"\t3020\t3020\tq", "bad_time")
tq("neg_time", b"-1\t3020\t3020\tq", "bad_time")
tq("frac_time", b"1.5\t3020\t3020\tq", "bad_time")
tq("over_time", b"253402300800000\t3020\t3020\tq", "bad_time")
tq("space_time", b" 1763805600000\t3020\t3020\tq", "bad_time")
tq("bad_rfc3339", b"2025-02-29T00:00:00Z\t3020\t3020\tq", "bad_time")
tq("empty_qid", b"1763805600000\t\t3020\tq", "bad_query_id")
tq("zero_qid", b"1763805600000\t00\t3020\tq", "bad_query_id")
tq("over_qid", b"1763805600000\t18446744073709551616\t3020\tq",
   "bad_query_id")
tq("alnum_qid", b"1763805600000\t12a\t3020\tq", "bad_query_id")
tq("bad_utf8", b"1763805600000\t3020\t3020\tq\xff", "bad_utf8")
tq("empty_text", b"1763805600000\t3020\t3020\t", "empty_query")
tq("ws_text", b"1763805600000\t3020\t3020\t \x0b\x0c ", "empty_query")
tq("long_text", b"1763805600000\t3020\t3020\t" + b"z" * 513, "query_too_long")
tq("text_before_ads", b"1763805600000\t3020\tx\t", "empty_query")
tq("bad_time_before_bad_utf8", b"x\t3020\t3020\t\xff", "bad_time")
tq("bad_utf8_before_bad_ads", b"1763805600000\t3020\tx\t\xff", "bad_utf8")
tq("ads_double_comma", b"1763805600000\t3020\t1,,2\tq", "bad_ad_ids")
tq("ads_trailing_comma", b"1763805600000\t3020\t1,\tq", "bad_ad_ids")
tq("ads_leading_comma", b"1763805600000\t3020\t,1\tq", "bad_ad_ids")
tq("ads_space", b"1763805600000\t3020\t 1\tq", "bad_ad_ids")
tq("ads_over", b"1763805600000\t3020\t18446744073709551616\tq", "bad_ad_ids")
tq("ads_neg", b"1763805600000\t3020\t-1\tq", "bad_ad_ids")
tq("ads_33", b"1763805600000\t3020\t" + b",".join([b"7"] * 33) + b"\tq",
   "too_many_ads")
tq("too_long", b"1763805600000\t3020\t3020\t" + b"w" * 65600, "line_too_long")

TQS = TQ
BASE_TSV = [b"%d\t%d\t%d,%d\tTSV base %d" % (TQS, 4000 + k, 4000 + k,
                                             4100 + k, k) for k in range(10)]
tc("three", b"%d\t4000\t4000" % (TQS + 1), (4000, 4000, TQS + 1))
tc("four", b"%d\t4000\t4000\tc1" % (TQS + 2), (4000, 4000, TQS + 2))
tc("rfc3339", b"2025-11-22T10:05:00.5Z\t4001\t4001\tc", (4001, 4001, TQS))
tc("click_id_64", b"%d\t4002\t4002\t%s" % (TQS, b"k" * 64),
   (4002, 4002, TQS))
tc("click_id_binary", b"%d\t4005\t4105\t\xff\xfe" % TQS,
   (4005, 4105, TQS))
tc("unknown", b"%d\t5555\t1" % TQS, "unknown_query")
tc("empty_line", b"", "empty")
tc("two_fields", b"%d\t4003" % TQS, "bad_tsv")
tc("five_fields", b"%d\t4003\t4003\tc\tx" % TQS, "bad_tsv")
tc("empty_click_id", b"%d\t4003\t4003\t" % TQS, "bad_click_id")
tc("click_id_65", b"%d\t4003\t4003\t%s" % (TQS, b"k" * 65), "bad_click_id")
tc("bad_ad", b"%d\t4003\tx" % TQS, "bad_ad_id")
tc("empty_ad", b"%d\t4003\t" % TQS, "bad_ad_id")
tc("bad_qid", b"%d\t0\t4003" % TQS, "bad_query_id")
tc("bad_time", b"x\t4003\t4003", "bad_time")
tc("late", b"%d\t4004\t4004" % (TQS + 86400001), "click_outside_window")
tc("not_shown", b"%d\t4004\t4005" % TQS, "click_ad_not_shown")

GROUPS = {
    # group: (kind, format, extension, cases, base query lines)
    "q_ndjson": ("query", "ndjson", "ndjson", Q_NDJSON, None),
    "c_ndjson": ("click", "ndjson", "ndjson", C_NDJSON, BASE_QUERIES),
    "q_tsv": ("query", "tsv", "tsv", Q_TSV, None),
    "c_tsv": ("click", "tsv", "tsv", C_TSV, BASE_TSV),
}


def check_group(name):
    """Compare the reference's verdict on every case of the group."""
    kind, fmt, _ext, cases, base = GROUPS[name]
    counter = None
    failures = 0
    if kind == "click":
        # join verdicts need the base queries
        counter = reference.Counter(reference.DEFAULT_JOIN_WINDOW_MS)
        qfmt = fmt
        for line in base:
            status, rec = reference.parse_line("query", qfmt, line)
            assert status == "ok", (line, status)
            if rec[0] not in counter.queries:
                counter.queries[rec[0]] = rec[1:]
    for case, line, expected in cases:
        status, rec = reference.parse_line(kind, fmt, line)
        got = rec if status == "ok" else status
        if status == "ok" and kind == "query":
            got = (rec[0], rec[1], rec[2], list(rec[3]))
        if status == "ok" and kind == "click":
            got = join_verdict(counter, rec)
        if got != expected:
            failures += 1
            print("reference %s/%s: line %r: expected %r, got %r"
                  % (name, case, line[:120], expected, got))
    return failures, len(cases)


def join_verdict(counter, rec):
    qid, ad, time_ms = rec
    q = counter.queries.get(qid)
    if q is None:
        return "unknown_query"
    q_time, _term, ads = q
    if ad not in ads:
        return "click_ad_not_shown"
    if not q_time - 60000 <= time_ms <= q_time + counter.join_window_ms:
        return "click_outside_window"
    return rec


def check_counting(tmp):
    """Small whole-file checks of the counting rules."""
    fails = 0
    qpath = os.path.join(tmp, "q.ndjson")
    cpath = os.path.join(tmp, "c.ndjson")
    with open(qpath, "wb") as f:
        f.write(b"\n".join([
            jq(time=T0 + 61000, query_id=1, ad_ids=[7, 7, 8], query="A B"),
            b"",
            jq(time=T0 + 1000, query_id=1, ad_ids=[9], query="dup"),
            b"garbage",
            jq(time=T0 + 61000, query_id=2, ad_ids=[7], query=" a  b"),
            jq(time=T0 + 125000, query_id=3, ad_ids=[7], query="a b",
               meta="x"),
        ]) + b"\n\r\n")
    with open(cpath, "wb") as f:
        f.write(b"\n".join([
            jc(time=T0 + 300000, query_id=1, ad_id=7),   # joined, minute 1
            jc(time=T0 + 300001, query_id=1, ad_id=7),   # duplicate
            jc(time=T0 + 60000, query_id=1, ad_id=8),    # joined (edge)
            jc(time=T0 + 61000, query_id=1, ad_id=9),    # not shown
            jc(time=T0 + 999, query_id=2, ad_id=7),      # early
            jc(time=T0, query_id=99, ad_id=7),           # unknown
            jc(time=T0 + 125000, query_id=3, ad_id=7),   # joined, minute 2
        ]))  # no final LF: the last line still counts
    c = reference.Counter(reference.DEFAULT_JOIN_WINDOW_MS)
    c.add_query_file(qpath, "ndjson")
    c.add_click_file(cpath, "ndjson")
    r = c.result()
    m1, m2 = T0 + 60000, T0 + 120000
    expected = {
        "counts": [["7", "a b", m1, 2, 1], ["7", "a b", m2, 1, 1],
                   ["8", "a b", m1, 1, 1]],
        "queries": {"lines": 5, "empty_lines": 2, "accepted": 3,
                    "duplicates": 1, "rejected": 1,
                    "rejects": {"bad_json": 1}},
        "clicks": {"lines": 7, "empty_lines": 0, "joined": 3,
                   "duplicates": 1, "unknown_query": 1, "rejected": 2,
                   "rejects": {"click_ad_not_shown": 1,
                               "click_outside_window": 1}},
        "first_rejects": [
            {"file": qpath, "line": 4, "reason": "bad_json"},
            {"file": cpath, "line": 4, "reason": "click_ad_not_shown"},
            {"file": cpath, "line": 5, "reason": "click_outside_window"}],
    }
    for key in expected:
        if r[key] != expected[key]:
            fails += 1
            print("reference counting: %s: expected %r, got %r"
                  % (key, expected[key], r[key]))
    if c.csv_text() != "ad_id,term,impressions,clicks\n7,a b,3,2\n8,a b,1,1\n":
        fails += 1
        print("reference counting: csv: got %r" % c.csv_text())
    if c.totals() != [(7, b"a b", 3, 2), (8, b"a b", 1, 1)]:
        fails += 1
        print("reference counting: totals: got %r" % c.totals())
    return fails


def cmd_check(tmp):
    failed = 0
    for name in GROUPS:
        fails, n = check_group(name)
        print("%s reference_cases_%s (%d cases)"
              % ("FAIL" if fails else "PASS", name, n))
        failed += bool(fails)
    fails = check_counting(tmp)
    print("%s reference_counting" % ("FAIL" if fails else "PASS"))
    failed += bool(fails)
    return 1 if failed else 0


def cmd_write(out):
    """Write every group's lines in chunks of at most REJECTS_PER_FILE
    rejects; print one line per file: `group kind path`, base files first."""
    for name, (kind, fmt, ext, cases, base) in GROUPS.items():
        if base is not None:
            path = os.path.join(out, "%s.base.%s" % (name, ext))
            with open(path, "wb") as f:
                f.write(b"\n".join(base) + b"\n")
            print(name, "query", path)
        chunks = [[]]
        rejects = 0
        for _case, line, expected in cases:
            is_reject = expected not in ("empty", "unknown_query") and \
                isinstance(expected, str)
            if is_reject and rejects == REJECTS_PER_FILE:
                chunks.append([])
                rejects = 0
            chunks[-1].append(line)
            rejects += is_reject
        for i, lines in enumerate(chunks):
            path = os.path.join(out, "%s.%d.%s" % (name, i, ext))
            with open(path, "wb") as f:
                f.write(b"\n".join(lines) + b"\n")
            print(name, kind, path)
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        return reference.with_big_stack(lambda: cmd_check(sys.argv[2]))
    if len(sys.argv) == 3 and sys.argv[1] == "write":
        return cmd_write(sys.argv[2])
    print("usage: cases.py check TMPDIR | write DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
