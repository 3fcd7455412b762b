// sql.js: the SQL both peers run, word for word, and what they share
// around it. SPEC 2 in SQL over the tables convert.py's files load into:
//   q(seq, qid, t, term, ad)  one row per distinct ad of each query record
//   c(qid, ad, t)             one row per click record
// counts(ad, term, minute, impressions, clicks) is the store both peers
// build, sorted by ad (DuckDB prunes row groups by ad with it; PostgreSQL
// adds an index on ad); the dashboard and the totals read it.
"use strict";

// First query record per qid wins; a click is valid when its query exists,
// showed its ad and the click is in [query - 60 s, query + 24 h]; one click
// per (qid, ad); clicks count in the query's minute and term.
const COUNTS = `
CREATE TABLE counts AS
WITH first AS (SELECT qid, min(seq) AS seq FROM q GROUP BY qid),
imp AS (SELECT q.qid, q.ad, q.t, q.term FROM q
        JOIN first ON q.qid = first.qid AND q.seq = first.seq),
clk AS (SELECT DISTINCT c.qid, c.ad FROM c
        JOIN imp ON c.qid = imp.qid AND c.ad = imp.ad
        WHERE c.t BETWEEN imp.t - 60000 AND imp.t + 86400000)
SELECT imp.ad, imp.term, imp.t - imp.t % 60000 AS minute,
       count(*) AS impressions, count(clk.qid) AS clicks
FROM imp LEFT JOIN clk ON imp.qid = clk.qid AND imp.ad = clk.ad
GROUP BY imp.ad, imp.term, imp.t - imp.t % 60000
ORDER BY imp.ad`;

// GET /v1/ads/{ad}/terms's default: top 100 terms by impressions over all
// time, ties by term.
const DASHBOARD = `
SELECT term, sum(impressions) AS impressions, sum(clicks) AS clicks
FROM counts WHERE ad = $1 GROUP BY term
ORDER BY impressions DESC, term LIMIT 100`;

// What verify.py compares with ctrd's: (ad, term) totals over all time.
const TOTALS = `
SELECT ad, term, sum(impressions) AS impressions, sum(clicks) AS clicks
FROM counts GROUP BY ad, term`;

const Q_COLUMNS = "seq BIGINT, qid BIGINT, t BIGINT, term VARCHAR, ad BIGINT";
const C_COLUMNS = "qid BIGINT, ad BIGINT, t BIGINT";

// Command-line flags "--name value" into an object.
function args() {
    const a = {};
    const v = process.argv.slice(2);
    for (let i = 0; i + 1 < v.length; i += 2) a[v[i].replace(/^--/, "")] = v[i + 1];
    return a;
}

// p50, p99 and p99.9 in ms of nanosecond samples.
function percentiles(ns) {
    const s = [...ns].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    const at = (p) => Number(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]) / 1e6;
    return { p50_ms: at(50), p99_ms: at(99), p999_ms: at(99.9) };
}

// Times `runs` calls of the async fn after `warmup` untimed ones.
async function latency(fn, runs, warmup) {
    for (let i = 0; i < warmup; i++) await fn();
    const ns = [];
    for (let i = 0; i < runs; i++) {
        const t0 = process.hrtime.bigint();
        await fn();
        ns.push(process.hrtime.bigint() - t0);
    }
    return percentiles(ns);
}

// Seconds an async fn takes.
async function seconds(fn) {
    const t0 = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - t0) / 1e9;
}

module.exports = { COUNTS, DASHBOARD, TOTALS, Q_COLUMNS, C_COLUMNS, args, latency, seconds };
