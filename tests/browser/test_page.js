// The dashboard in a real browser: headless Debian chromium driven by
// playwright-core against a running `ctrd serve` (started with --auth and
// --ads by tests/e2e/test_page.sh, which passes its URL, tokens and ads).
// Every number the page shows is checked against the API's own answer,
// fetched here independently. Prints PASS/FAIL lines; exits 1 on any FAIL.
//
// usage: node test_page.js URL ADV_TOKEN INGEST_TOKEN AD OTHER_AD ADVERTISER OUT_DIR ADMIN_TOKEN
//   AD: an ad of ADVERTISER (whose token ADV_TOKEN is); OTHER_AD: another
//   advertiser's ad; OUT_DIR: where the screenshots and timings go;
//   ADMIN_TOKEN: an admin's, for the list of advertisers.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const [url, advToken, ingestToken, ad, otherAd, advertiser, outDir, adminToken] = process.argv.slice(2);
const PAGE_SIZE = 50;
const fmtInt = new Intl.NumberFormat('en-US');
const fmtPct = new Intl.NumberFormat('en-US', {
  style: 'percent', minimumFractionDigits: 2, maximumFractionDigits: 2,
});
let failed = false;
const pass = (name) => console.log(`PASS ${name}`);
const fail = (name, why) => {
  console.log(`FAIL ${name}: ${String(why).slice(0, 600)}`);
  failed = true;
};

async function api(p, token = advToken) {
  const r = await fetch(url + p, { headers: { Authorization: `Bearer ${token}` } });
  return { status: r.status, body: r.status === 200 ? await r.json() : null };
}

async function post(p, lines) {
  const r = await fetch(url + p, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ingestToken}`, 'Content-Type': 'application/x-ndjson' },
    body: `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`,
  });
  if (r.status !== 200) throw new Error(`POST ${p}: ${r.status} ${await r.text()}`);
}

// What a row of the API looks like on the page.
const asShown = (r) => [r.term, fmtInt.format(r.impressions), fmtInt.format(r.clicks), fmtPct.format(r.ctr)];
const totalsShown = (t) => [fmtInt.format(t.impressions), fmtInt.format(t.clicks), fmtPct.format(t.ctr)];
// Totals compared with the previous period's, as the page words them:
// [current, previous, change, % change] for impressions, clicks and CTR.
const fmtIntChange = new Intl.NumberFormat('en-US', { signDisplay: 'exceptZero' });
const fmtPointsChange = new Intl.NumberFormat('en-US', {
  signDisplay: 'exceptZero', minimumFractionDigits: 2, maximumFractionDigits: 2,
});
const fmtPctChange = new Intl.NumberFormat('en-US', { style: 'percent', signDisplay: 'exceptZero', maximumFractionDigits: 1 });
const pctChange = (c, p) => (p === 0 ? (c === 0 ? '—' : 'new') : fmtPctChange.format((c - p) / p));
const comparedShown = (c, p) => [
  ['impressions', (n) => fmtInt.format(n), (d) => fmtIntChange.format(d)],
  ['clicks', (n) => fmtInt.format(n), (d) => fmtIntChange.format(d)],
  ['ctr', (n) => fmtPct.format(n), (d) => `${fmtPointsChange.format(d * 100)} pp`],
].map(([k, fmt, change]) => [fmt(c[k]), fmt(p[k]), change(c[k] - p[k]), pctChange(c[k], p[k])]);
async function shownCompared(page) {
  return page.evaluate(() => ['impressions', 'clicks', 'ctr'].map((k) => ['total', 'prev', 'change', 'pct']
    .map((w) => document.getElementById(`${w}-${k}`)?.textContent)));
}
// The chart's step and each panel's maximum, as the page shows them.
async function shownChart(page) {
  return page.evaluate(() => [document.querySelector('#chart')?.dataset.step,
    ...[...document.querySelectorAll('#chart figure')].map((f) => f.dataset.max)]);
}
const chartOf = (series) => [series.step, ...['impressions', 'clicks', 'ctr']
  .map((k) => String(Math.max(...series.points.map((p) => p[k]))))];

async function shownRows(page) {
  return page.$$eval('#table tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
}
async function shownTotals(page) {
  return page.$$eval('#total-impressions, #total-clicks, #total-ctr', (ds) => ds.map((d) => d.textContent));
}

// Polls until what the page shows equals want (at most ms): PASS or FAIL.
async function expectShown(name, page, want, read, ms = 3000) {
  const until = Date.now() + ms;
  let got;
  for (;;) {
    try { got = await read(page); } catch (e) { got = String(e); }
    if (JSON.stringify(got) === JSON.stringify(want)) return pass(name);
    if (Date.now() > until) return fail(name, `shown ${JSON.stringify(got).slice(0, 250)} want ${JSON.stringify(want).slice(0, 250)}`);
    await page.waitForTimeout(50);
  }
}

// The page compares the range length long just before its range, and shows
// the totals totalsOf(query) answers for both ranges.
async function expectCompared(name, page, length, totalsOf) {
  // [previous from, previous to = current from), as the page shows them.
  const range = () => page.$$eval('#previous-range time', (ts) => ts.map((t) => Date.parse(t.dateTime)));
  await expectShown(`${name}_same_length`, page, length, async () => {
    const [f, t] = await range();
    return t - f;
  });
  const [from, to] = await range();
  const [cur, prev] = [await totalsOf(`from=${to}`), await totalsOf(`from=${from}&to=${to}`)];
  await expectShown(name, page, comparedShown(cur, prev), shownCompared);
  return [cur, prev];
}

// The page's table and totals equal the API's answer to query (sorted as
// it says), first page.
async function expectTerms(name, page, query) {
  const { status, body } = await api(`/v1/ads/${ad}/terms?${query}&limit=${PAGE_SIZE}`);
  if (status !== 200) return fail(name, `API ${status}`);
  if (!body.terms.length) return fail(name, 'the API has no terms: the test data is wrong');
  await expectShown(`${name}_rows`, page, body.terms.map(asShown), shownRows);
  await expectShown(`${name}_totals`, page, totalsShown(body.totals), shownTotals);
  return body;
}

// / as the token is (GET /v1/whoami): an advertiser's token may not list
// the advertisers (the API answers 403) and lands on its own advertiser's
// view, in place of / in the history; an ingest token, which cannot read,
// gets a note; an admin's sees every advertiser with the API's totals, each
// the sum of its ads' (GET /v1/advertisers/{id}/ads), linking to its view
// over the range chosen; a range preset asks the API for that range.
async function checkAdvertisers(page) {
  const denied = await api('/v1/advertisers');
  if (denied.status === 403) pass('advertisers_403_for_advertiser'); else fail('advertisers_403_for_advertiser', denied.status);
  const me = await api('/v1/whoami');
  if (JSON.stringify(me.body) === JSON.stringify({ role: 'advertiser', advertiser_id: advertiser })) pass('whoami_advertiser');
  else fail('whoami_advertiser', JSON.stringify(me));
  await page.goto(`${url}/?ad=${ad}`);
  await page.goto(`${url}/?range=1h`);
  await expectShown('start_advertiser_own_view', page, [`${url}/?advertiser=${advertiser}&range=1h`, true], async () => [
    page.url(), (await page.$$('#table tbody tr a[href^="/?ad="]')).length > 0]);
  await page.goBack();
  await expectShown('start_advertiser_replaces_history', page, `${url}/?ad=${ad}`, () => page.url());

  await page.evaluate((t) => sessionStorage.setItem('ctrd-token', t), ingestToken);
  await page.goto(`${url}/`);
  await expectShown('start_ingest_cannot_read', page, [true, 0], async () => [
    /cannot read/.test(await page.textContent('#cannot-read')), (await page.$$('#table')).length]);

  await page.evaluate((t) => sessionStorage.setItem('ctrd-token', t), adminToken);
  const [req] = await Promise.all([page.waitForRequest((r) => r.url().includes('/v1/advertisers?')), page.goto(`${url}/`)]);
  const list = async (q) => (await api(`/v1/advertisers?${q}`, adminToken)).body;
  const rowsOf = (body) => body.advertisers.map((r) => [`Advertiser ${r.advertiser_id}`, fmtInt.format(r.total_ads),
    fmtInt.format(r.impressions), fmtInt.format(r.clicks), fmtPct.format(r.ctr)]);
  const sum = (rows) => {
    const t = rows.reduce((a, r) => ({ impressions: a.impressions + r.impressions, clicks: a.clicks + r.clicks }),
      { impressions: 0, clicks: 0 });
    return { ...t, ctr: t.impressions ? t.clicks / t.impressions : 0 };
  };
  const all = await list(new URL(req.url()).searchParams);
  if (all.catalog === true && all.advertisers.length === 2 && all.advertisers.every((r) => r.total_ads === 10 && r.impressions > 0)) {
    pass('advertisers_api_lists_both');
  } else {
    fail('advertisers_api_lists_both', JSON.stringify(all));
  }
  // Each advertiser's totals are its ads' summed, over all time and over
  // the last hour.
  const from = Date.now() - 3600e3;
  for (const q of ['', `from=${from}`]) {
    const some = await list(q);
    const want = await Promise.all(some.advertisers.map(async (r) => {
      const { body } = await api(`/v1/advertisers/${r.advertiser_id}/ads?${q}`, adminToken);
      const t = sum(body.ads);
      return [r.advertiser_id, body.ads.length, t.impressions, t.clicks, Number(t.ctr.toFixed(6))]; // as the API rounds
    }));
    const got = some.advertisers.map((r) => [r.advertiser_id, r.total_ads, r.impressions, r.clicks, r.ctr]);
    const name = `advertisers_sum_their_ads${q ? '_1h' : ''}`;
    if (JSON.stringify(got) === JSON.stringify(want)) pass(name); else fail(name, `${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
  }
  await expectShown('advertisers_rows', page, rowsOf(all), shownRows);
  await expectShown('advertisers_totals', page, totalsShown(sum(all.advertisers)), shownTotals);
  const href = await page.getAttribute('#table tbody tr a', 'href');
  if (href === `/?advertiser=${all.advertisers[0].advertiser_id}`) pass('advertisers_link'); else fail('advertisers_link', href);
  const [hourReq] = await Promise.all([
    page.waitForRequest((r) => r.url().includes('/v1/advertisers?') && r.url().includes('from=')),
    page.click('[data-range="1h"]'),
  ]);
  const hour = await list(new URL(hourReq.url()).searchParams);
  await expectShown('advertisers_range_1h', page, rowsOf(hour), shownRows);
  if (sum(hour.advertisers).impressions < sum(all.advertisers).impressions) pass('advertisers_range_changes_numbers');
  else fail('advertisers_range_changes_numbers', JSON.stringify(hour));
  // The link keeps the range: the advertiser's view opens over the last
  // hour, its ads' links too.
  const rangedHref = await page.getAttribute('#table tbody tr a', 'href');
  if (rangedHref === `/?advertiser=${all.advertisers[0].advertiser_id}&range=1h`) pass('advertisers_link_keeps_range');
  else fail('advertisers_link_keeps_range', rangedHref);
  await page.click('#table tbody tr a');
  await page.waitForSelector('#table tbody tr a[href^="/?ad="]');
  pass('advertisers_link_opens_advertiser');
  const adHref = await page.getAttribute('#table tbody tr a', 'href');
  if (new URL(page.url()).searchParams.get('range') === '1h' && /^\/\?ad=\d+&range=1h$/.test(adHref)) pass('advertiser_link_keeps_range');
  else fail('advertiser_link_keeps_range', `${page.url()} ${adHref}`);
}

// 503: the page says the service is busy and offers Retry; it recovers by
// itself after Retry-After (1 s), or at once by Retry (Retry-After 30 s),
// to the API's numbers. One answer of the terms is a 503 each time.
let busyAnswers = 0; // 503 answers the page got, each one a line the browser may log
let fakedBusy = 0, seenBusy = 0;
async function checkBusy(page) {
  const terms = '**/v1/ads/*/terms?*';
  for (const [name, wait, retry] of [['busy_recovers_by_itself', '1', false], ['busy_retry_button', '30', true]]) {
    let busy = 1;
    await page.route(terms, (route) => {
      if (busy-- <= 0) return route.continue();
      fakedBusy++;
      return route.fulfill({
        status: 503, headers: { 'Retry-After': wait }, contentType: 'application/json', body: '{"error":"overloaded; try again"}',
      });
    });
    await page.goto(`${url}/?ad=${ad}`);
    await expectShown(`${name}_503_state`, page, [true, true, 0], async () => [
      /busy/.test(await page.textContent('#error')), !!(await page.$('#retry')), (await page.$$('#table')).length]);
    if (retry) await page.click('#retry');
    await expectTerms(name, page, 'sort=impressions&order=desc');
    await page.unroute(terms);
  }
}

async function main() {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  const context = await browser.newContext({
    locale: 'en-US', timezoneId: 'Europe/Paris', viewport: { width: 1280, height: 900 }, acceptDownloads: true,
  });
  const errors = [];
  const outside = [];
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.hostname === '127.0.0.1' || u.protocol === 'blob:') return route.continue();
    outside.push(u.href);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  // A 503 is an answer, not a page error: the ones the test makes up, and
  // reads the server shed (admission control, e.g. under ASan with other
  // tests beside it); the page must recover from each (the checks of its
  // numbers poll until they equal the API's).
  page.on('response', (r) => { if (r.status() === 503) { busyAnswers++; seenBusy++; } });
  page.on('console', (m) => {
    // The browser logs the 401, 403 and 404 answers the test asks for
    // itself, and a line per 503 answer.
    if (m.type() !== 'error' || /Failed to load resource: .*status of (401|403|404)/.test(m.text())) return;
    if (/Failed to load resource: .*status of 503/.test(m.text()) && busyAnswers-- > 0) return;
    errors.push(m.text());
  });

  // 401: the login form; the token goes to sessionStorage, not the URL.
  await page.goto(`${url}/?ad=${ad}`);
  await page.waitForSelector('#token', { timeout: 5000 });
  pass('login_form_on_401');
  await page.fill('#token', advToken);
  await page.press('#token', 'Enter');
  await page.waitForSelector('#table tbody tr', { timeout: 5000 });
  if (page.url().includes(advToken)) fail('token_not_in_url', page.url()); else pass('token_not_in_url');

  // First render of /?ad=ID, timed from navigation start to rows visible.
  await page.goto(`${url}/?ad=${ad}`);
  await page.waitForSelector('#table tbody tr');
  const firstRender = await page.evaluate(() => performance.getEntriesByName('ctrd-first-rows')[0].startTime);
  const all = await expectTerms('first_render', page, 'sort=impressions&order=desc');

  // Each sort order (the header's button; CTR by keyboard).
  for (const [key, order] of [['clicks', 'desc'], ['term', 'asc'], ['term', 'desc'], ['ctr', 'desc'], ['impressions', 'desc']]) {
    if (key === 'ctr') {
      await page.focus('[data-sort=ctr]');
      await page.keyboard.press('Enter');
    } else {
      await page.click(`[data-sort=${key}]`);
    }
    await expectTerms(`sort_${key}_${order}`, page, `sort=${key}&order=${order}`);
    const q = new URL(page.url()).searchParams;
    const want = key === 'impressions' ? null : key;
    if (q.get('sort') !== want) fail(`sort_${key}_${order}_url`, page.url()); else pass(`sort_${key}_${order}_url`);
  }

  // Paging, then filtering by text (state in the URL).
  if (all.total_terms > PAGE_SIZE) {
    await page.click('#next');
    const { body } = await api(`/v1/ads/${ad}/terms?limit=${PAGE_SIZE}&offset=${PAGE_SIZE}`);
    await expectShown('page_2_rows', page, body.terms.map(asShown), shownRows);
    await page.click('#prev');
  } else {
    fail('page_2_rows', `only ${all.total_terms} terms: the test data is too small`);
  }
  const { body: every } = await api(`/v1/ads/${ad}/terms?limit=10000`);
  const needle = every.terms[3].term.slice(0, 3);
  await page.fill('#filter', needle);
  const matching = every.terms.filter((r) => r.term.toLowerCase().includes(needle.toLowerCase()));
  await expectShown('filter_rows', page, matching.slice(0, PAGE_SIZE).map(asShown), shownRows);
  if (new URL(page.url()).searchParams.get('filter') !== needle) fail('filter_url', page.url()); else pass('filter_url');

  // CSV: exactly the rows the table shows.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
  const csv = fs.readFileSync(await download.path(), 'utf8').trimEnd().split('\r\n');
  const quote = (t) => `"${t.replace(/"/g, '""')}"`;
  const wantCsv = ['term,impressions,clicks,ctr',
    ...matching.slice(0, PAGE_SIZE).map((r) => [quote(r.term), r.impressions, r.clicks, r.ctr].join(','))];
  const tableTerms = (await shownRows(page)).map((r) => r[0]);
  if (JSON.stringify(csv) !== JSON.stringify(wantCsv)) fail('csv_equals_table', `${csv.slice(0, 3)} vs ${wantCsv.slice(0, 3)}`);
  else if (JSON.stringify(tableTerms) !== JSON.stringify(matching.slice(0, PAGE_SIZE).map((r) => r.term))) fail('csv_equals_table', 'the table changed');
  else pass('csv_equals_table');
  await page.fill('#filter', '');

  // A range preset: the numbers the API gives for the range the page asked.
  const [termsReq, seriesReq] = await Promise.all([
    page.waitForRequest((r) => r.url().includes('/terms?') && r.url().includes('from=')),
    page.waitForRequest((r) => r.url().includes('/series?') && r.url().includes('from=')),
    page.click('[data-range="1h"]'),
  ]);
  const from = new URL(termsReq.url()).searchParams.get('from');
  const lastHour = await expectTerms('range_1h', page, `from=${from}&sort=impressions&order=desc`);
  if (lastHour.totals.impressions < all.totals.impressions && lastHour.totals.impressions > 0) pass('range_1h_changes_numbers');
  else fail('range_1h_changes_numbers', `${lastHour.totals.impressions} of ${all.totals.impressions}`);
  if (new URL(page.url()).searchParams.get('range') !== '1h') fail('range_url', page.url()); else pass('range_url');
  // The chart: per-minute series of that range, each panel's maximum as
  // the API's.
  const sq = new URL(seriesReq.url()).searchParams;
  const { body: series } = await api(`/v1/ads/${ad}/series?from=${sq.get('from')}&step=${sq.get('step')}`);
  const maxOf = (k) => String(Math.max(...series.points.map((p) => p[k])));
  if (sq.get('step') !== '1m') fail('chart_step', sq.get('step')); else pass('chart_step');
  await expectShown('chart_maxima', page, ['impressions', 'clicks', 'ctr'].map(maxOf),
    () => page.$$eval('#chart figure', (fs) => fs.map((f) => f.dataset.max)));
  await page.goBack();
  await expectShown('back_button_range', page, totalsShown(all.totals), shownTotals);

  // Live: a click POSTed now shows within 2 s, without a reload.
  await page.evaluate(() => { window.notReloaded = true; });
  const now = Date.now();
  const qid = String(now * 1000 + 7);
  await post('/v1/queries', [{ query_id: qid, query: 'live dashboard check', time: now, ad_ids: [Number(ad)] }]);
  await expectShown('live_impression', page, fmtInt.format(all.totals.impressions + 1),
    () => page.textContent('#total-impressions'), 2000);
  await post('/v1/clicks', [{ query_id: qid, ad_id: Number(ad), time: now + 1000, click_id: `live-${now}` }]);
  await expectShown('live_click_within_2s', page, fmtInt.format(all.totals.clicks + 1),
    () => page.textContent('#total-clicks'), 2000);
  if (await page.evaluate(() => window.notReloaded === true)) pass('live_without_reload'); else fail('live_without_reload', 'the page reloaded');
  const badge = await page.textContent('#badge');
  if (/^Live · data as of \d+ s ago$/.test(badge)) pass('live_badge'); else fail('live_badge', badge);

  // Compare to previous period: off for all time (no previous period);
  // over the last hour, the totals of both ranges as the API gives them.
  if (await page.isDisabled('#compare')) pass('compare_needs_a_range'); else fail('compare_needs_a_range', 'enabled for all time');
  await page.click('[data-range="1h"]');
  await page.click('#compare');
  await page.waitForSelector('#prev-impressions');
  if (new URL(page.url()).searchParams.get('compare') !== '1') fail('compare_url', page.url()); else pass('compare_url');
  const adTotals = async (q) => (await api(`/v1/ads/${ad}/terms?${q}&limit=1`)).body.totals;
  const compared = (name, length) => expectCompared(name, page, length, adTotals);
  const [, prevHour] = await compared('compare_1h', 3600e3);
  if (prevHour.impressions > 0) pass('compare_1h_has_previous'); else fail('compare_1h_has_previous', 'the test data is wrong');
  // The 24 hours before the last 24 are empty: "new", never NaN or Infinity.
  await page.click('[data-range="24h"]');
  const [, prevDay] = await compared('compare_24h_previous_empty', 86400e3);
  const text = await page.textContent('.totals');
  if (prevDay.impressions === 0 && !/NaN|Infinity/.test(text)) pass('compare_previous_zero'); else fail('compare_previous_zero', text);
  await page.goBack();
  await compared('compare_back_button', 3600e3);

  // A term's chart: its button in the table (by keyboard) selects it and
  // the chart shows that term's series as the API gives it; "Whole ad" and
  // the back button return.
  const term = (await shownRows(page))[0][0];
  const [termReq] = await Promise.all([
    page.waitForRequest((r) => r.url().includes('/series?') && new URL(r.url()).searchParams.has('term')),
    page.focus('#table tbody th button.term').then(() => page.keyboard.press('Enter')),
  ]);
  const tq = new URL(termReq.url()).searchParams;
  if (new URL(page.url()).searchParams.get('term') !== term || tq.get('term') !== term) fail('term_url', page.url());
  else pass('term_url');
  const seriesOf = async (t) => (await api(`/v1/ads/${ad}/series?from=${tq.get('from')}&step=${tq.get('step')}${t ? `&term=${encodeURIComponent(t)}` : ''}`)).body;
  const [termSeries, adSeries] = [await seriesOf(term), await seriesOf(null)];
  await expectShown('term_chart', page, chartOf(termSeries), shownChart);
  if (termSeries.step === '1m' && termSeries.points.length && chartOf(termSeries)[1] !== chartOf(adSeries)[1]) pass('term_chart_is_the_terms');
  else fail('term_chart_is_the_terms', `${JSON.stringify(chartOf(termSeries))} vs the ad's ${JSON.stringify(chartOf(adSeries))}`);
  await expectShown('term_chart_title', page, term, () => page.textContent('#chart-term'));
  // Each panel's line (at most two points a column) still reaches its
  // maximum (y 2.0 in the 0..100 viewBox).
  await expectShown('chart_lines_reach_maxima', page, ['2.0', '2.0', '2.0'], () => page.$$eval('#chart polyline',
    (ls) => ls.map((l) => Math.min(...l.getAttribute('points').split(' ').map((p) => Number(p.split(',')[1]))).toFixed(1))));
  await page.click('#chart-all');
  await expectShown('term_whole_ad', page, [null, ...chartOf(adSeries)],
    async () => [new URL(page.url()).searchParams.get('term'), ...(await shownChart(page))]);
  await page.goBack();
  await expectShown('term_back_button', page, [term, ...chartOf(termSeries)],
    async () => [new URL(page.url()).searchParams.get('term'), ...(await shownChart(page))]);

  // Screenshots: 1280 px and 390 px (no sideways scrolling on a phone).
  await page.screenshot({ path: path.join(outDir, 'dashboard-1280.png') });
  // (the same tab: the token is in this tab's sessionStorage)
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${url}/?ad=${ad}`);
  await page.waitForSelector('#table tbody tr');
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide <= 390) pass('fits_390px'); else fail('fits_390px', `${wide} px wide`);
  await page.screenshot({ path: path.join(outDir, 'dashboard-390.png') });
  await page.setViewportSize({ width: 1280, height: 900 });

  // The advertiser's ads, linking to each ad.
  await page.goto(`${url}/?advertiser=${advertiser}`);
  const { body: ads } = await api(`/v1/advertisers/${advertiser}/ads`);
  const byImps = [...ads.ads].sort((a, b) => b.impressions - a.impressions);
  await expectShown('advertiser_ads', page, byImps.map((r) => asShown({ ...r, term: r.name })), shownRows);
  const href = await page.getAttribute('#table tbody tr a', 'href');
  if (href === `/?ad=${byImps[0].ad_id}`) pass('advertiser_links_ad'); else fail('advertiser_links_ad', href);
  // Its totals compared: the sums of its ads over both ranges.
  await page.goto(`${url}/?advertiser=${advertiser}&range=1h&compare=1`);
  await expectCompared('advertiser_compare_1h', page, 3600e3, async (q) => {
    const t = (await api(`/v1/advertisers/${advertiser}/ads?${q}`)).body.ads.reduce((a, r) => ({
      impressions: a.impressions + r.impressions, clicks: a.clicks + r.clicks,
    }), { impressions: 0, clicks: 0 });
    return { ...t, ctr: t.impressions ? t.clicks / t.impressions : 0 };
  });

  // Another advertiser's ad: hidden, as the API hides it.
  const other = await api(`/v1/ads/${otherAd}/terms`);
  await page.goto(`${url}/?ad=${otherAd}`);
  await expectShown('other_ad_hidden', page, [other.status, true],
    async () => [other.status, /not found/.test(await page.textContent('#error')) && !(await page.$('#table'))]);

  // An ad nobody has: not found, as the API says.
  const unknown = await api('/v1/ads/999999/terms');
  await page.goto(`${url}/?ad=999999`);
  await expectShown('unknown_ad_not_found', page, [404, true, 0], async () => [
    unknown.status, /not found/.test(await page.textContent('#error')), (await page.$$('#table')).length]);

  await checkBusy(page);
  await checkAdvertisers(page);

  console.log(`503 answers: ${seenBusy}, ${fakedBusy} of them made up by the test`);
  if (errors.length) fail('no_console_errors', errors.join(' | ')); else pass('no_console_errors');
  if (outside.length) fail('loopback_only', outside.join(' ')); else pass('loopback_only');
  fs.writeFileSync(path.join(outDir, 'timings.json'), JSON.stringify({ first_render_ms: firstRender }));
  console.log(`first render of /?ad=${ad}: ${firstRender.toFixed(1)} ms`);
  await browser.close();
}

main().then(() => process.exit(failed ? 1 : 0), (e) => {
  fail('browser_test', e.stack || e);
  process.exit(1);
});
