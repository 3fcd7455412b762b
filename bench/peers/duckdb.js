// duckdb.js: the comparison's work on DuckDB, in-process, on a database
// file (DuckDB's store, as ctrd's data directory is ctrd's).
//   node duckdb.js --flat DIR --db FILE --ad AD --runs N --totals OUT
// (a) load DIR/queries.tsv and DIR/clicks.tsv (convert.py), join and
// aggregate into counts, checkpointed; (b) the dashboard query for AD, N
// timed runs after 100 untimed; then writes the (ad, term) totals to OUT
// (TSV, untimed) and prints one JSON line of figures.
"use strict";
const fs = require("fs");
const path = require("path");
const { DuckDBInstance } = require("@duckdb/node-api");
const sql = require("./sql.js");

function readCsv(file, columns) {
    const cols = columns.split(", ").map((c) => `'${c.split(" ")[0]}': '${c.split(" ")[1]}'`);
    return `read_csv('${file}', delim = '\t', header = false, quote = '"', escape = '"',
                     columns = {${cols.join(", ")}})`;
}

async function main() {
    const a = sql.args();
    const db = await DuckDBInstance.create(a.db);
    const conn = await db.connect();
    const load_s = await sql.seconds(async () => {
        await conn.run(`CREATE TABLE q AS SELECT * FROM ${readCsv(path.join(a.flat, "queries.tsv"), sql.Q_COLUMNS)}`);
        await conn.run(`CREATE TABLE c AS SELECT * FROM ${readCsv(path.join(a.flat, "clicks.tsv"), sql.C_COLUMNS)}`);
        await conn.run(sql.COUNTS);
        await conn.run("CHECKPOINT");
    });
    const disk_bytes = fs.statSync(a.db).size;
    const top = await conn.prepare(sql.DASHBOARD);
    top.bindBigInt(1, BigInt(a.ad));
    const lat = await sql.latency(() => top.runAndReadAll(), Number(a.runs), 100);
    await conn.run(`COPY (${sql.TOTALS}) TO '${a.totals}' (DELIMITER '\t', HEADER false)`);
    const version = (await conn.runAndReadAll("SELECT version()")).getRows()[0][0];
    console.log(JSON.stringify({ system: "duckdb", version, load_s, disk_bytes, ...lat }));
}

main().catch((e) => {
    console.error(`duckdb.js: ${e.message}`);
    process.exit(1);
});
