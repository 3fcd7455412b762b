// The ctrd dashboard: an advertiser's view of one ad (/?ad=ID: totals and the
// per-term table) or of an advertiser's ads (/?advertiser=ID), live over
// Server-Sent Events. At / the token decides (GET /v1/whoami): an admin's
// list of every advertiser, an advertiser's own view, for an ingest token a
// note that it cannot read. Everything shown comes from the public JSON API;
// the view's state (range, compare, sort, filter, page, charted term) lives
// in the URL, so a link reproduces it and the back button works; links
// between views keep the range. With --auth the token is kept in
// sessionStorage and sent as a bearer header, never in the URL.
'use strict';

const TOKEN_KEY = 'ctrd-token';
const PAGE_SIZE = 50;
const TERMS_MAX = 10000; // the API's largest page
const MINUTE = 60000;
const FIRST_ROWS = 'ctrd-first-rows'; // a performance mark
const RANGES = [
  ['1h', 'Last hour', 3600e3],
  ['24h', '24 hours', 86400e3],
  ['7d', '7 days', 7 * 86400e3],
  ['30d', '30 days', 30 * 86400e3],
  ['all', 'All time', 0],
];
const COLUMNS = [ // [sort key, heading, cell content (row, state)]
  ['term', 'Term', (r, s) => el('button', {
    type: 'button', class: 'term', 'data-term': r.term, 'aria-pressed': String(s.term === r.term),
    title: 'Chart this term', onclick: () => go({ term: r.term }),
  }, r.term)],
  ['impressions', 'Impressions', (r) => fmtInt.format(r.impressions)],
  ['clicks', 'Clicks', (r) => fmtInt.format(r.clicks)],
  ['ctr', 'CTR', (r) => fmtPct.format(r.ctr)],
];
const fmtInt = new Intl.NumberFormat();
const fmtPct = new Intl.NumberFormat(undefined, {
  style: 'percent', minimumFractionDigits: 2, maximumFractionDigits: 2,
});
// Changes from the previous period: signed.
const fmtIntChange = new Intl.NumberFormat(undefined, { signDisplay: 'exceptZero' });
const fmtPointsChange = new Intl.NumberFormat(undefined, {
  signDisplay: 'exceptZero', minimumFractionDigits: 2, maximumFractionDigits: 2,
});
const fmtPctChange = new Intl.NumberFormat(undefined, {
  style: 'percent', signDisplay: 'exceptZero', maximumFractionDigits: 1,
});

const main = document.getElementById('main');
const badge = document.getElementById('badge');
const signout = document.getElementById('signout');

// ---- small DOM helpers ----

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children.filter((c) => c != null));
  return e;
}

// A time in the viewer's zone, UTC on hover.
function timeEl(ms) {
  const d = new Date(ms);
  return el('time', { datetime: d.toISOString(), title: d.toISOString() },
    d.toLocaleString());
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

// ---- state in the URL ----

function readState() {
  const q = new URLSearchParams(location.search);
  const custom = q.has('from') || q.has('to');
  return {
    ad: q.get('ad'),
    advertiser: q.get('advertiser'),
    range: custom ? 'custom' : (q.get('range') || 'all'),
    from: q.get('from'),
    to: q.get('to'),
    sort: q.get('sort') || 'impressions',
    order: q.get('order') || (q.get('sort') === 'term' ? 'asc' : 'desc'),
    filter: q.get('filter') || '',
    page: Math.max(1, parseInt(q.get('page'), 10) || 1),
    compare: q.get('compare') === '1',
    term: q.get('ad') ? q.get('term') : null,
  };
}

// Changes the state: a new history entry (push) or the current one.
function go(changes, push = true) {
  const url = urlOf(Object.assign(readState(), changes));
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
  render();
}

// A link to the view target ({ ad } or { advertiser }) over s's range,
// compared as s is; the rest as the view's defaults.
function viewLink(target, s) {
  return urlOf(Object.assign({
    ad: null, advertiser: null, range: s.range, from: s.from, to: s.to, compare: s.compare,
    sort: 'impressions', order: 'desc', filter: '', page: 1, term: null,
  }, target));
}

// The URL of state s.
function urlOf(s) {
  const q = new URLSearchParams();
  if (s.ad) q.set('ad', s.ad);
  else if (s.advertiser) q.set('advertiser', s.advertiser);
  if (s.range === 'custom') {
    if (s.from) q.set('from', s.from);
    if (s.to) q.set('to', s.to);
  } else if (s.range !== 'all') {
    q.set('range', s.range);
  }
  if (s.compare) q.set('compare', '1');
  const defOrder = s.sort === 'term' ? 'asc' : 'desc';
  if (s.sort !== 'impressions') q.set('sort', s.sort);
  if (s.order !== defOrder) q.set('order', s.order);
  if (s.filter) q.set('filter', s.filter);
  if (s.page > 1) q.set('page', s.page);
  if (s.ad && s.term) q.set('term', s.term);
  return `${location.pathname}?${q}`;
}

// [from, to) in ms for the API (null: open).
function rangeMs(s) {
  if (s.range === 'custom') {
    const ms = (v) => (v && !Number.isNaN(Date.parse(v)) ? Date.parse(v) : null);
    return [ms(s.from), ms(s.to)];
  }
  const preset = RANGES.find((r) => r[0] === s.range);
  if (!preset || !preset[2]) return [null, null];
  return [Math.floor(Date.now() / MINUTE) * MINUTE - preset[2], null];
}

// The range of the same length just before s's, or null when s's range has
// no start (all time). A preset's length is the preset's, up to its start.
function previousRange(s) {
  const [from, to] = rangeMs(s);
  if (from === null) return null;
  const preset = RANGES.find((r) => r[0] === s.range);
  const length = to !== null ? to - from : preset ? preset[2] : Date.now() - from;
  return [from - length, from];
}

function rangeQuery(s) {
  return rangeParams(rangeMs(s));
}

function rangeParams([from, to]) {
  const q = new URLSearchParams();
  if (from !== null) q.set('from', from);
  if (to !== null) q.set('to', to);
  return q;
}

// ---- the API ----

function authHeaders() {
  const t = sessionStorage.getItem(TOKEN_KEY);
  return t ? { Authorization: `Bearer ${t}` } : {};
}

class ApiError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

async function api(path, signal) {
  const r = await fetch(path, { headers: authHeaders(), cache: 'no-store', signal });
  if (!r.ok) {
    let message = r.statusText;
    try { message = (await r.json()).error || message; } catch (e) { /* not JSON */ }
    throw new ApiError(r.status, message, Number(r.headers.get('Retry-After')) || 0);
  }
  return r.json();
}

// ---- views: an ad's terms, an advertiser's ads ----

const adView = {
  title: (s) => `Ad ${s.ad}`,
  path: (s, q) => {
    q.set('sort', s.sort);
    q.set('order', s.order);
    q.set('limit', TERMS_MAX);
    return `/v1/ads/${encodeURIComponent(s.ad)}/terms?${q}`;
  },
  totalsPath: (s, q) => {
    q.set('limit', 1);
    return `/v1/ads/${encodeURIComponent(s.ad)}/terms?${q}`;
  },
  series: (s, q) => {
    q.set('step', stepFor(s));
    if (s.term) q.set('term', s.term);
    return `/v1/ads/${encodeURIComponent(s.ad)}/series?${q}`;
  },
  stream: (s) => `ad_id=${encodeURIComponent(s.ad)}`,
  rows: (data) => data.terms,
  totals: (data) => data.totals,
  columns: COLUMNS,
  filterLabel: 'Filter terms',
  csvName: (s) => `ad-${s.ad}-terms.csv`,
  csvRow: (r) => [csvText(r.term), r.impressions, r.clicks, r.ctr],
  csvHead: 'term,impressions,clicks,ctr',
  empty: () => 'No impressions in this range.',
  missing: (s) => `Ad ${s.ad} was not found, or this token may not see it.`,
  note: (data) => (data.total_terms > data.terms.length
    ? `Showing the top ${fmtInt.format(data.terms.length)} of ${fmtInt.format(data.total_terms)} terms.` : null),
};

const advertiserView = {
  title: (s) => `Advertiser ${s.advertiser}`,
  path: (s, q) => `/v1/advertisers/${encodeURIComponent(s.advertiser)}/ads?${q}`,
  totalsPath: (s, q) => advertiserView.path(s, q),
  series: null,
  stream: (s) => `advertiser_id=${encodeURIComponent(s.advertiser)}`,
  // Sorted and totalled here: the API answers the ads in catalog order.
  rows: (data, s) => sortRows(data.ads, s, (r) => r.name || r.ad_id),
  totals: (data) => sumTotals(data.ads),
  columns: [
    ['term', 'Ad', (r, s) => el('a', { href: viewLink({ ad: r.ad_id }, s) }, r.name || `Ad ${r.ad_id}`)],
    ...COLUMNS.slice(1),
  ],
  filterLabel: 'Filter ads',
  csvName: (s) => `advertiser-${s.advertiser}-ads.csv`,
  csvRow: (r) => [r.ad_id, csvText(r.name), r.impressions, r.clicks, r.ctr],
  csvHead: 'ad_id,name,impressions,clicks,ctr',
  empty: () => 'This advertiser has no ads in the catalog.',
  missing: (s) => `Advertiser ${s.advertiser} was not found, or this token may not see it.`,
  note: () => null,
};

// Every advertiser of the catalog with its totals (GET /v1/advertisers:
// admins only).
const advertisersView = {
  title: () => 'Advertisers',
  path: (s, q) => `/v1/advertisers?${q}`,
  totalsPath: (s, q) => advertisersView.path(s, q),
  series: null,
  stream: null,
  rows: (data, s) => sortRows(data.advertisers, s, (r) => `Advertiser ${r.advertiser_id}`),
  totals: (data) => sumTotals(data.advertisers),
  columns: [
    ['term', 'Advertiser', (r, s) => el('a', { href: viewLink({ advertiser: r.advertiser_id }, s) }, r.term)],
    ['total_ads', 'Ads', (r) => fmtInt.format(r.total_ads)],
    ...COLUMNS.slice(1),
  ],
  filterLabel: 'Filter advertisers',
  csvName: () => 'advertisers.csv',
  csvRow: (r) => [r.advertiser_id, r.total_ads, r.impressions, r.clicks, r.ctr],
  csvHead: 'advertiser_id,ads,impressions,clicks,ctr',
  empty: (data) => (data.catalog ? 'The ads catalog lists no advertisers.'
    : 'The service has no ads catalog (serve --ads), so it knows no advertisers.'),
  missing: () => 'Not found.',
  note: () => null,
};

// The totals of rows (ads or advertisers): sums, and their CTR.
function sumTotals(rows) {
  const t = rows.reduce((a, r) => ({
    impressions: a.impressions + r.impressions, clicks: a.clicks + r.clicks,
  }), { impressions: 0, clicks: 0 });
  t.ctr = t.impressions ? t.clicks / t.impressions : 0;
  return t;
}

// rows sorted as s says, each with its label(row) as its term (the first
// column, sorted and filtered by).
function sortRows(rows, s, label) {
  const key = s.sort === 'term' ? (r) => r.term : (r) => r[s.sort];
  const dir = s.order === 'asc' ? 1 : -1;
  return rows.map((r) => Object.assign({ term: label(r) }, r)).sort((a, b) => {
    const x = key(a);
    const y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  });
}

function csvText(v) {
  return `"${String(v ?? '').replace(/"/g, '""')}"`;
}

// ---- what is on screen ----

let shown = null; // { view, id, key, data, skeleton }
let loadSeq = 0;

function filtered(s) {
  const rows = shown.view.rows(shown.data, s);
  const f = s.filter.trim().toLowerCase();
  return f ? rows.filter((r) => String(r.term).toLowerCase().includes(f)) : rows;
}

function pageRows(s) {
  const rows = filtered(s);
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  const page = Math.min(s.page, pages);
  return { rows, pages, page, visible: rows.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE) };
}

function rangeBar(s) {
  const bar = el('div', { class: 'ranges', role: 'group', 'aria-label': 'Date range' });
  for (const [key, label] of RANGES) {
    bar.append(el('button', {
      type: 'button', 'aria-pressed': String(s.range === key), 'data-range': key,
      onclick: () => go({ range: key, from: null, to: null, page: 1 }),
    }, label));
  }
  const none = !previousRange(s);
  bar.append(el('button', {
    type: 'button', id: 'compare', 'aria-pressed': String(s.compare && !none), disabled: none,
    title: none ? 'Pick a range to compare it with the one before' : 'Show the previous period of the same length',
    onclick: () => go({ compare: !s.compare }),
  }, 'Compare to previous period'));
  const local = (v) => {
    if (!v || Number.isNaN(Date.parse(v))) return '';
    const d = new Date(Date.parse(v) - new Date().getTimezoneOffset() * MINUTE);
    return d.toISOString().slice(0, 16);
  };
  const from = el('input', { type: 'datetime-local', name: 'from', value: local(s.from), 'aria-label': 'From' });
  const to = el('input', { type: 'datetime-local', name: 'to', value: local(s.to), 'aria-label': 'To' });
  const utc = (input) => (input.value ? `${new Date(input.value).toISOString().slice(0, 16)}Z` : null);
  bar.append(el('form', {
    'aria-label': 'Custom range',
    onsubmit: (ev) => {
      ev.preventDefault();
      go({ range: 'custom', from: utc(from), to: utc(to), page: 1 });
    },
  }, from, el('span', { 'aria-hidden': 'true' }, '–'), to,
  el('button', { type: 'submit', 'aria-pressed': String(s.range === 'custom'), 'data-range': 'custom' }, 'Custom')));
  return bar;
}

// The change from prev to cur relative to prev: "new" when prev is 0 and
// cur is not, "—" when both are.
function pctChange(cur, prev) {
  if (prev === 0) return cur === 0 ? '—' : 'new';
  return fmtPctChange.format((cur - prev) / prev);
}

// The totals t and, when comparing, those of the previous period p: its
// value, the change and the % change (CTR's change in percentage points).
function totalsEl(t, p) {
  const item = (key, label, fmt, change) => el('div', {}, el('dt', {}, label),
    el('dd', { id: `total-${key}` }, fmt(t[key])),
    p ? el('dd', { class: 'compare' }, 'Previous ', el('span', { id: `prev-${key}` }, fmt(p[key])), ' · ',
      el('span', { id: `change-${key}` }, change(t[key] - p[key])), ' (',
      el('span', { id: `pct-${key}` }, pctChange(t[key], p[key])), ')') : null);
  return el('dl', { class: 'totals' },
    item('impressions', 'Impressions', (n) => fmtInt.format(n), (d) => fmtIntChange.format(d)),
    item('clicks', 'Clicks', (n) => fmtInt.format(n), (d) => fmtIntChange.format(d)),
    item('ctr', 'CTR', (n) => fmtPct.format(n), (d) => `${fmtPointsChange.format(d * 100)} pp`));
}

function tableEl(s, visible) {
  const v = shown.view;
  const head = el('tr', {}, ...v.columns.map(([key, label]) => {
    const sorted = s.sort === key;
    const next = sorted ? (s.order === 'desc' ? 'asc' : 'desc') : (key === 'term' ? 'asc' : 'desc');
    return el('th', {
      scope: 'col', 'aria-sort': sorted ? (s.order === 'desc' ? 'descending' : 'ascending') : 'none',
    }, el('button', {
      type: 'button', 'data-sort': key, onclick: () => go({ sort: key, order: next, page: 1 }),
    }, label));
  }));
  const body = el('tbody', {}, ...visible.map((r) => el('tr', {},
    ...v.columns.map(([, , cell], i) => el(i ? 'td' : 'th', i ? {} : { scope: 'row' }, cell(r, s))))));
  return el('div', { class: 'scroll' }, el('table', { id: 'table' }, el('thead', {}, head), body));
}

function downloadCsv(s) {
  const v = shown.view;
  const lines = [v.csvHead, ...pageRows(s).visible.map((r) => v.csvRow(r).join(','))];
  const url = URL.createObjectURL(new Blob([`${lines.join('\r\n')}\r\n`], { type: 'text/csv' }));
  const a = el('a', { href: url, download: v.csvName(s) });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---- the chart: impressions, clicks and CTR over time (hand-drawn SVG) ----

const STEPS = { '1m': MINUTE, '1h': 60 * MINUTE, '1d': 1440 * MINUTE };
const SVG = 'http://www.w3.org/2000/svg';
const CHART_W = 1000; // the panels' viewBox width

// The series step for a range: minutes up to a day, hours up to 30 days.
function stepFor(s) {
  const [from, to] = rangeMs(s);
  const span = (to ?? Date.now()) - (from ?? 0);
  return span <= 86400e3 ? '1m' : span <= 30 * 86400e3 || from === null ? '1h' : '1d';
}

// The points with the empty steps between them as zeros (the API leaves
// them out).
function filledPoints(series) {
  const step = STEPS[series.step];
  const pts = series.points;
  if (!pts.length || (pts[pts.length - 1].t - pts[0].t) / step > 50000) return pts;
  const out = [];
  for (let i = 0, t = pts[0].t; t <= pts[pts.length - 1].t; t += step) {
    if (pts[i].t === t) out.push(pts[i++]);
    else out.push({ t, impressions: 0, clicks: 0, ctr: 0 });
  }
  return out;
}

// The points of pts to draw for key at x (0..CHART_W): in each of the
// CHART_W columns only the lowest and the highest, in time order. The line
// is the same as through every point (a column is at least a pixel: the
// panels are narrower than CHART_W), the SVG as small for 43,200 minutes as
// for 1,000 (BENCHMARKS.md: the chart).
function columnPoints(pts, key, x) {
  const cols = [];
  for (const p of pts) {
    const c = Math.round(x(p));
    const last = cols[cols.length - 1];
    if (!last || last.c !== c) cols.push({ c, lo: p, hi: p });
    else if (p[key] < last.lo[key]) last.lo = p;
    else if (p[key] > last.hi[key]) last.hi = p;
  }
  return cols.flatMap(({ lo, hi }) => (lo === hi ? [lo] : lo.t < hi.t ? [lo, hi] : [hi, lo]));
}

// The chart of the whole ad or of the term s charts, with a way back.
function chartBox(series, s) {
  const head = s.term
    ? el('p', { class: 'chart-head' }, 'Term ', el('strong', { id: 'chart-term' }, s.term), ' ',
      el('button', { type: 'button', id: 'chart-all', onclick: () => go({ term: null }) }, 'Whole ad'))
    : el('p', { class: 'chart-head muted' }, 'Whole ad · choose a term in the table to chart it');
  return el('section', { 'aria-label': 'Chart' }, head, chartEl(series));
}

function chartEl(series) {
  const pts = filledPoints(series);
  if (!pts.length) return el('p', { class: 'muted', id: 'chart' }, 'No traffic to chart in this range.');
  const t0 = pts[0].t;
  const span = Math.max(1, pts[pts.length - 1].t - t0);
  const panel = (key, label, fmt) => {
    const max = Math.max(...pts.map((p) => p[key]));
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${CHART_W} 100`);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('aria-hidden', 'true');
    const line = document.createElementNS(SVG, 'polyline');
    const x = (p) => ((p.t - t0) / span) * CHART_W;
    line.setAttribute('points', columnPoints(pts, key, x)
      .map((p) => `${x(p).toFixed(1)},${(98 - (max ? (p[key] / max) * 96 : 0)).toFixed(1)}`).join(' '));
    line.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.append(line);
    return el('figure', { class: `panel ${key}`, 'data-key': key, 'data-max': max, 'data-points': pts.length },
      el('figcaption', {}, `${label} per ${series.step === '1m' ? 'minute' : series.step === '1h' ? 'hour' : 'day'}`,
        el('span', { class: 'muted' }, ` · max ${fmt(max)}`)), svg);
  };
  return el('div', { id: 'chart', class: 'chart', 'data-step': series.step },
    panel('impressions', 'Impressions', (n) => fmtInt.format(n)),
    panel('clicks', 'Clicks', (n) => fmtInt.format(n)),
    panel('ctr', 'CTR', (n) => fmtPct.format(n)),
    el('p', { class: 'muted axis' }, timeEl(t0), ' – ', timeEl(pts[pts.length - 1].t)));
}

// Fills the data part of the view (totals, table, pager) from shown.data.
function fill(s) {
  const v = shown.view;
  const k = shown.skeleton;
  const { rows, pages, page, visible } = pageRows(s);
  const prev = shown.previous;
  k.head.replaceChildren(totalsEl(v.totals(shown.data), prev && v.totals(prev)),
    el('p', { class: 'muted' }, 'Counts complete up to ',
      shown.data.as_of == null ? 'no data yet' : timeEl(shown.data.as_of), '.',
      prev ? el('span', { id: 'previous-range' }, ' Compared with ', timeEl(prev.range[0]), ' – ',
        timeEl(prev.range[1]), '.') : null),
    shown.series ? chartBox(shown.series, s) : '');
  const any = v.rows(shown.data, s).length > 0;
  k.tools.hidden = !any;
  k.count.textContent = `${fmtInt.format(rows.length)} rows`;
  const parts = [];
  if (!any) {
    parts.push(el('p', { class: 'state', id: 'empty' }, v.empty(shown.data)));
  } else {
    parts.push(v.note(shown.data));
    parts.push(visible.length ? tableEl(s, visible) : el('p', { class: 'state' }, 'Nothing matches the filter.'));
    if (pages > 1) {
      parts.push(el('nav', { class: 'pager', 'aria-label': 'Pages' },
        el('button', { type: 'button', id: 'prev', disabled: page <= 1, onclick: () => go({ page: page - 1 }) }, 'Previous'),
        el('span', { id: 'page' }, `Page ${page} of ${pages}`),
        el('button', { type: 'button', id: 'next', disabled: page >= pages, onclick: () => go({ page: page + 1 }) }, 'Next')));
    }
  }
  setBody(...parts.filter((p) => p));
  // For the browser test and real-user timing: navigation start to rows.
  if (visible.length && !performance.getEntriesByName(FIRST_ROWS).length) performance.mark(FIRST_ROWS);
  setBadge();
}

// Replaces what the view shows under its tools (the table, or a state).
function setBody(...children) {
  const k = shown.skeleton;
  k.body.replaceChildren(...children);
  k.body.removeAttribute('aria-busy');
}

// Builds the view's frame: title, ranges, totals, tools (filter, CSV
// download, row count) and a slot for the table.
function skeleton(v, s) {
  const filter = el('input', {
    type: 'search', id: 'filter', 'aria-label': v.filterLabel, placeholder: v.filterLabel, value: s.filter,
    oninput: () => go({ filter: filter.value, page: 1 }, false),
  });
  const count = el('span', { class: 'muted', id: 'count' });
  const tools = el('div', { class: 'tools', hidden: true }, filter,
    el('button', { type: 'button', id: 'csv', onclick: () => downloadCsv(readState()) }, 'Download CSV'), count);
  const k = {
    ranges: rangeBar(s), head: el('div'), tools, filter, count,
    body: el('section', { 'aria-busy': 'true' }, el('p', { class: 'state' }, 'Loading…')),
  };
  main.replaceChildren(el('h1', {}, v.title(s)), k.ranges, k.head, k.tools, k.body);
  return k;
}

// Shows an error instead of the data: 401 asks for a token, 503 offers a
// retry (and retries by itself after Retry-After).
function showError(e, s) {
  stopStream();
  if (e.status === 401) return showLogin();
  const k = shown.skeleton;
  k.head.replaceChildren();
  k.tools.hidden = true;
  shown.key = null;
  shown.data = null;
  const message = (...text) => setBody(el('p', { class: 'state error', id: 'error' }, ...text));
  if (e.status === 404) {
    message(shown.view.missing(s));
  } else if (e.status === 503) {
    const retry = el('button', { type: 'button', id: 'retry', onclick: render }, 'Retry');
    message('The service is busy. ', retry);
    setTimeout(() => { if (retry.isConnected) render(); }, Math.min(30, e.retryAfter || 2) * 1000);
  } else {
    message(e.status ? `Error ${e.status}: ${e.message}` : 'The service cannot be reached.');
  }
  return null;
}

function showLogin() {
  const had = sessionStorage.getItem(TOKEN_KEY);
  const input = el('input', { type: 'password', id: 'token', autocomplete: 'off', required: true });
  main.replaceChildren(el('h1', {}, 'Sign in'), el('form', {
    class: 'login',
    onsubmit: (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      shown = null;
      render();
    },
  }, el('p', { class: had ? 'error' : 'muted' }, had ? 'That token was not accepted.' : 'This service needs an access token.'),
  el('label', { for: 'token' }, 'Token'), input, el('button', { type: 'submit' }, 'Sign in')));
  shown = null;
  setSignout();
  input.focus();
}

// A page of one message instead of a view.
function showMessage(id, text, error) {
  stopStream();
  shown = null;
  main.replaceChildren(el('h1', {}, 'Click-through rates'),
    el('p', { class: error ? 'state error' : 'state', id }, text));
}

// Who the token is (GET /v1/whoami), asked once a token.
let whoami = null; // { token, answer: a promise }
function identity() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!whoami || whoami.token !== token) {
    const me = { token, answer: api('/v1/whoami') };
    me.answer.catch(() => { if (whoami === me) whoami = null; }); // asked again next time
    whoami = me;
  }
  return whoami.answer;
}

// The view at / (no ad or advertiser asked): an admin's list of
// advertisers; an advertiser's own view, in place of / in the history; for
// an ingest token, which cannot read, a note.
async function showStart(s) {
  let me;
  try {
    me = await identity();
  } catch (e) {
    if (e.status === 401) return showLogin();
    return showMessage('error', e.status ? `Error ${e.status}: ${e.message}` : 'The service cannot be reached.', true);
  }
  const now = readState();
  if (now.ad || now.advertiser) return null; // left / meanwhile
  if (me.role === 'admin') return show(advertisersView, s);
  if (me.role === 'advertiser') return go({ advertiser: me.advertiser_id }, false);
  return showMessage('cannot-read', 'This token sends records (ingest) and cannot read the counts: '
    + 'sign out and sign in with an admin or advertiser token.');
}

// The view's data, for an ad its series over the same range and, when
// comparing, the previous period's answer (with its range).
function load(v, s) {
  const prev = s.compare ? previousRange(s) : null;
  return Promise.all([api(v.path(s, rangeQuery(s))), v.series ? api(v.series(s, rangeQuery(s))) : null,
    prev ? api(v.totalsPath(s, rangeParams(prev))).then((d) => Object.assign(d, { range: prev })) : null]);
}

// What decides the data to load (the filter and page only pick rows).
function stateKey(s) {
  return JSON.stringify([s.range, s.from, s.to, s.sort, s.order, s.compare, s.term]);
}

// Loads what s asks for (unless already loaded) and shows it.
async function show(v, s) {
  const id = s.ad || s.advertiser;
  if (!shown || shown.view !== v || shown.id !== id) {
    stopStream();
    shown = { view: v, id, key: null, data: null, skeleton: skeleton(v, s) };
  } else {
    const k = shown.skeleton;
    const ranges = rangeBar(s);
    k.ranges.replaceWith(ranges);
    k.ranges = ranges;
    if (document.activeElement !== k.filter) k.filter.value = s.filter;
  }
  const key = stateKey(s);
  if (shown.key !== key) {
    if (!shown.data) setBody(el('p', { class: 'state' }, 'Loading…'));
    shown.skeleton.body.setAttribute('aria-busy', 'true');
    const seq = ++loadSeq;
    try {
      const [data, series, previous] = await load(v, s);
      if (seq !== loadSeq) return;
      Object.assign(shown, { key, data, series, previous });
    } catch (e) {
      if (seq === loadSeq) showError(e, s);
      return;
    }
  }
  fill(s);
  startStream(v, s);
}

// Reloads the data on screen (a live update): one load at a time, at most
// one a REFRESH_MS (events come up to four times a second).
const REFRESH_MS = 1000;
let refreshing = null;
let refreshAgain = false;
let refreshedAt = 0;
function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  const wait = refreshedAt + REFRESH_MS - Date.now();
  if (wait > 0) {
    refreshing = new Promise((done) => { setTimeout(done, wait); }).then(() => {
      refreshing = null;
      refresh();
    });
    return;
  }
  refreshedAt = Date.now();
  const s = readState();
  const [, to] = rangeMs(s);
  if (!shown || (to !== null && to <= Date.now())) return; // a closed range does not change
  const mine = shown;
  const key = stateKey(s);
  refreshing = load(shown.view, s).then(([data, series, previous]) => {
    if (shown === mine && shown.key === key) { // not a view left meanwhile
      Object.assign(shown, { data, series, previous });
      fill(readState());
    }
  }, () => { /* the next event retries */ }).finally(() => {
    refreshing = null;
    if (refreshAgain) {
      refreshAgain = false;
      refresh();
    }
  });
}

// ---- live updates: /v1/stream read with fetch (EventSource cannot send
// the bearer header) ----

let live = null; // { query, abort, asOf, connected }

function stopStream() {
  if (live) live.abort.abort();
  live = null;
  setBadge();
}

function startStream(v, s) {
  if (!v.stream) {
    stopStream();
    return;
  }
  const query = v.stream(s);
  if (live && live.query === query) return;
  stopStream();
  const me = { query, abort: new AbortController(), asOf: shown.data.as_of, connected: false };
  live = me;
  (async () => {
    while (live === me) {
      try {
        const r = await fetch(`/v1/stream?${query}`, { headers: authHeaders(), signal: me.abort.signal });
        if (!r.ok) throw new ApiError(r.status, r.statusText);
        me.connected = true;
        setBadge();
        await readEvents(r.body, me);
      } catch (e) {
        if (e.name === 'AbortError') return;
      }
      me.connected = false;
      setBadge();
      await new Promise((done) => { setTimeout(done, 2000); });
    }
  })();
}

async function readEvents(body, me) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done || live !== me) return;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('\n');
      if (/^event: ?counts$/m.test(block) && data) {
        const ev = JSON.parse(data);
        if (ev.as_of != null) me.asOf = ev.as_of;
        setBadge();
        refresh();
      }
    }
  }
}

function setBadge() {
  if (!live) {
    badge.hidden = true;
    return;
  }
  badge.hidden = false;
  badge.className = `badge ${live.connected ? 'live' : 'off'}`;
  const asOf = live.asOf ?? shown?.data?.as_of;
  const when = asOf == null ? 'no data yet' : `data as of ${ago(asOf)}`;
  badge.textContent = `${live.connected ? 'Live' : 'Reconnecting'} · ${when}`;
  badge.title = asOf == null ? '' : new Date(asOf).toISOString();
}

function setSignout() {
  signout.hidden = !sessionStorage.getItem(TOKEN_KEY);
}

signout.addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  stopStream();
  shown = null;
  render();
});

function render() {
  setSignout();
  const s = readState();
  if (s.ad) return show(adView, s);
  if (s.advertiser) return show(advertiserView, s);
  return showStart(s);
}

window.addEventListener('popstate', render);
setInterval(setBadge, 1000);
render();
