// The dashboard chart's library, chosen by measurement (issue 9): render
// time in headless Debian chromium of a 43,200-point series (30 days of
// 1-minute points: impressions, clicks and CTR, three panels) and of a
// 1,440-point one (24 hours of minutes, the most the page asks) drawn by
//   svg   - the page's own chartEl() from WEB_DIR/app.js (hand-drawn SVG),
//   uplot - uPlot (npm `uplot`, tests/browser/node_modules), three plots
//           of the same size with its default axes,
// and the added page weight (gzip -9 bytes) of each. The page's files are
// served from WEB_DIR by playwright's router (no server, no data); the
// series is synthetic (a daily shape plus noise, every minute non-zero).
// Render time: from building the chart to the end of the first frame that
// shows it (two requestAnimationFrames), one warm-up then RUNS runs, each
// in a fresh page; prints min / median / max in ms.
//
// usage: node bench/chart_render.js [WEB_DIR [RUNS]]   (after scripts/install-deps)
'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const root = path.join(__dirname, '..');
const modules = path.join(root, 'tests/browser/node_modules');
const { chromium } = require(path.join(modules, 'playwright-core'));
const webDir = path.resolve(process.argv[2] || path.join(root, 'web'));
const runs = Number(process.argv[3]) || 7;
const SIZES = [43200, 1440]; // 30 days of minutes; the page's most (24 hours of minutes)
const ORIGIN = 'http://bench.invalid';
const UPLOT = ['uPlot.iife.min.js', 'uPlot.min.css'].map((f) => path.join(modules, 'uplot/dist', f));

const gzip = (file) => zlib.gzipSync(fs.readFileSync(file), { level: 9 }).length;

// Serves /?ad=1 with the page's files and uPlot's; the API answers 404, so
// the page only shows its error state and leaves the chart to the bench.
async function route(page) {
  await page.route('**/*', (r) => {
    const u = new URL(r.request().url());
    const file = u.pathname === '/' ? path.join(webDir, 'index.html')
      : u.pathname.startsWith('/assets/') ? path.join(webDir, path.basename(u.pathname))
        : u.pathname.startsWith('/uplot/') ? path.join(modules, 'uplot/dist', path.basename(u.pathname)) : null;
    if (file && fs.existsSync(file)) return r.fulfill({ path: file });
    return r.fulfill({ status: 404, contentType: 'application/json', body: '{"error":"bench"}' });
  });
}

// In the page: the series, then the chart drawn and painted; answers ms.
const draws = {
  svg: async (n) => {
    const t0 = 1700000000000;
    const points = Array.from({ length: n }, (_, i) => {
      const impressions = Math.round(60 + 40 * Math.sin((i / 1440) * 2 * Math.PI) + ((i * 7919) % 23));
      const clicks = 1 + ((i * 104729) % 7);
      return { t: t0 + i * 60000, impressions, clicks, ctr: clicks / impressions };
    });
    const start = performance.now();
    /* global chartEl */
    document.body.append(chartEl({ step: '1m', points }));
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    return performance.now() - start;
  },
  uplot: async (n) => {
    const t0 = 1700000000;
    const xs = new Float64Array(n);
    const series = { impressions: new Float64Array(n), clicks: new Float64Array(n), ctr: new Float64Array(n) };
    for (let i = 0; i < n; i++) {
      xs[i] = t0 + i * 60;
      series.impressions[i] = Math.round(60 + 40 * Math.sin((i / 1440) * 2 * Math.PI) + ((i * 7919) % 23));
      series.clicks[i] = 1 + ((i * 104729) % 7);
      series.ctr[i] = series.clicks[i] / series.impressions[i];
    }
    const start = performance.now();
    const box = document.createElement('div');
    box.style.cssText = 'display:grid;grid-template-columns:repeat(3,1fr);gap:12px;max-width:1200px';
    document.body.append(box);
    for (const [key, stroke] of [['impressions', '#0b57d0'], ['clicks', '#1a7f37'], ['ctr', '#8250df']]) {
      const div = document.createElement('div');
      box.append(div);
      /* global uPlot */
      new uPlot({ // eslint-disable-line no-new
        width: 390, height: 80, legend: { show: false }, series: [{}, { stroke }],
      }, [xs, series[key]], div);
    }
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    return performance.now() - start;
  },
};

async function measure(browser, kind, points) {
  const times = [];
  for (let i = 0; i <= runs; i++) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await route(page);
    await page.goto(`${ORIGIN}/?ad=1`);
    await page.waitForSelector('#error');
    if (kind === 'uplot') {
      await page.addScriptTag({ url: '/uplot/uPlot.iife.min.js' });
      await page.addStyleTag({ url: '/uplot/uPlot.min.css' });
    }
    const ms = await page.evaluate(draws[kind], points);
    if (i > 0) times.push(ms); // the first warms the browser's caches
    await page.close();
  }
  times.sort((a, b) => a - b);
  const f = (x) => x.toFixed(1);
  return `${f(times[0])} / ${f(times[times.length >> 1])} / ${f(times[times.length - 1])} ms`;
}

async function main() {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  const appJs = path.join(webDir, 'app.js');
  console.log(`3 panels, ${runs} runs (min / median / max), chromium ${browser.version()}`);
  console.log(`svg: ${appJs}, ${gzip(appJs)} B gzip (the whole page script)`);
  console.log(`uplot: +${UPLOT.map(gzip).reduce((a, b) => a + b)} B gzip (js + css)`);
  for (const points of SIZES) {
    for (const kind of Object.keys(draws)) console.log(`${points} points ${kind}: ${await measure(browser, kind, points)}`);
  }
  await browser.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
