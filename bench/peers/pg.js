// pg.js: the comparison's work on PostgreSQL, over its unix socket.
//   node pg.js --socket DIR --port P --db NAME --flat DIR --ad AD --runs N
//              --batch B --totals OUT --incremental-totals OUT2
// In database NAME (created fresh; the server must read DIR's files):
// (a) COPY DIR/queries.tsv and DIR/clicks.tsv (convert.py) into q and c,
// join and aggregate into counts, index counts on ad, ANALYZE; (b) the
// dashboard query for AD as a prepared statement, N timed runs after 100
// untimed; (c) the same records again as a stream: batches of B records,
// queries first then clicks, each batch one durable INSERT ... ON CONFLICT
// statement into counters of their own (inc). Writes the (ad, term)
// totals of counts to OUT and of inc to OUT2 (untimed) and prints one JSON
// line of figures.
"use strict";
const fs = require("fs");
const path = require("path");
const readline = require("readline");
const { Client } = require("pg");
const sql = require("./sql.js");

// (c): first record per qid wins (ON CONFLICT DO NOTHING); the inserted
// ones add their impressions.
const INC_QUERIES = `
WITH b AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[])
           AS b(qid, t, term, ads)),
ins AS (INSERT INTO qi SELECT qid, t, term, string_to_array(ads, ',')::bigint[] FROM b
        ON CONFLICT (qid) DO NOTHING RETURNING qid, t, term, ads)
INSERT INTO inc SELECT a.ad, ins.term, ins.t - ins.t % 60000, count(*), 0
FROM ins, unnest(ins.ads) AS a(ad) GROUP BY 1, 2, 3
ON CONFLICT (ad, term, minute) DO UPDATE SET impressions = inc.impressions + excluded.impressions`;

// (c): a valid click (its query showed the ad, within the window) not yet
// in clicked adds one click to its query's (ad, term, minute).
const INC_CLICKS = `
WITH b AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS b(qid, ad, t)),
v AS (SELECT DISTINCT b.qid, b.ad, q.t, q.term FROM b JOIN qi AS q ON q.qid = b.qid
      WHERE b.ad = ANY (q.ads) AND b.t BETWEEN q.t - 60000 AND q.t + 86400000),
ins AS (INSERT INTO clicked SELECT qid, ad FROM v ON CONFLICT DO NOTHING RETURNING qid, ad)
INSERT INTO inc SELECT v.ad, v.term, v.t - v.t % 60000, 0, count(*)
FROM ins JOIN v ON ins.qid = v.qid AND ins.ad = v.ad GROUP BY 1, 2, 3
ON CONFLICT (ad, term, minute) DO UPDATE SET clicks = inc.clicks + excluded.clicks`;

const INC_TABLES = `
CREATE TABLE qi (qid bigint PRIMARY KEY, t bigint, term text, ads bigint[]);
CREATE TABLE clicked (qid bigint, ad bigint, PRIMARY KEY (qid, ad));
CREATE TABLE inc (ad bigint, term text, minute bigint, impressions bigint, clicks bigint,
                  PRIMARY KEY (ad, term, minute))`;

// The tab-separated fields of a convert.py line, a quoted term unquoted.
function fields(line) {
    return line.split("\t").map((f) => (f.startsWith('"') ? f.slice(1, -1).replaceAll('""', '"') : f));
}

// Calls fn(columns) for each batch of `batch` records of FILE; a record is
// the run of lines that rec(fields) maps to the same key (one query's
// ads) and add(columns, fields, first) appends to the columns.
async function batches(file, batch, key, add, fn) {
    let cols = null, n = 0, last = null;
    for await (const line of readline.createInterface({ input: fs.createReadStream(file) })) {
        const f = fields(line);
        const k = key(f);
        if (k !== last && n === batch) {
            await fn(cols);
            cols = null;
            n = 0;
        }
        if (cols === null) cols = [[], [], [], []];
        add(cols, f, k !== last);
        if (k !== last) n++;
        last = k;
    }
    if (cols !== null) await fn(cols);
}

async function incremental(db, flat, batch) {
    await db.query(INC_TABLES);
    return sql.seconds(async () => {
        await batches(path.join(flat, "queries.tsv"), batch, (f) => f[0], (cols, [, qid, t, term, ad], first) => {
            if (first) {
                cols[0].push(qid);
                cols[1].push(t);
                cols[2].push(term);
                cols[3].push(ad);
            } else cols[3][cols[3].length - 1] += "," + ad;
        }, (cols) => db.query(INC_QUERIES, cols));
        let line = 0;
        await batches(path.join(flat, "clicks.tsv"), batch, () => line++, (cols, [qid, ad, t]) => {
            cols[0].push(qid);
            cols[1].push(ad);
            cols[2].push(t);
        }, (cols) => db.query(INC_CLICKS, cols.slice(0, 3)));
    });
}

async function totals(db, query, out) {
    const rows = (await db.query({ text: query, rowMode: "array" })).rows;
    const quote = (s) => (/["\t]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
    fs.writeFileSync(out, rows.map(([ad, term, i, c]) => `${ad}\t${quote(term)}\t${i}\t${c}\n`).join(""));
}

async function main() {
    const a = sql.args();
    const connect = async (database) => {
        const c = new Client({ host: a.socket, port: Number(a.port), user: "postgres", database });
        await c.connect();
        return c;
    };
    const admin = await connect("postgres");
    await admin.query(`DROP DATABASE IF EXISTS ${a.db}`);
    await admin.query(`CREATE DATABASE ${a.db}`);
    await admin.end();
    const db = await connect(a.db);
    const pgColumns = (c) => c.replaceAll("VARCHAR", "text");
    const load_s = await sql.seconds(async () => {
        await db.query(`CREATE TABLE q (${pgColumns(sql.Q_COLUMNS)}); CREATE TABLE c (${pgColumns(sql.C_COLUMNS)})`);
        for (const [table, file] of [["q", "queries.tsv"], ["c", "clicks.tsv"]])
            await db.query(`COPY ${table} FROM '${path.resolve(a.flat, file)}' WITH (FORMAT csv, DELIMITER E'\\t')`);
        await db.query(sql.COUNTS);
        await db.query("CREATE INDEX counts_ad ON counts (ad); ANALYZE counts; CHECKPOINT");
    });
    const disk_bytes = Number((await db.query(`SELECT sum(pg_total_relation_size(t)) AS n
                                                  FROM unnest('{q,c,counts}'::regclass[]) AS t`)).rows[0].n);
    const lat = await sql.latency(() => db.query({ name: "top", text: sql.DASHBOARD, values: [a.ad] }), Number(a.runs), 100);
    await totals(db, sql.TOTALS, a.totals);
    const incremental_s = await incremental(db, a.flat, Number(a.batch));
    await totals(db, sql.TOTALS.replace("counts", "inc"), a["incremental-totals"]);
    const version = (await db.query("SHOW server_version")).rows[0].server_version;
    await db.end();
    console.log(JSON.stringify({ system: "postgresql", version, load_s, disk_bytes, ...lat, incremental_s }));
}

main().catch((e) => {
    console.error(`pg.js: ${e.message}`);
    process.exit(1);
});
