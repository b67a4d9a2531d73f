// The wall map in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) against a running gridmap server: GRIDMAP_URL names it
// (api/browser_test.go starts one on the demo city and runs this file).
// It starts nothing itself and never skips: no server, no Chromium, no pass.
// The server needs events (the Go test seeds a month of them) and its live
// feed running; the test reports an event and moves it on, through the
// API, while the page is open.
//
//   GRIDMAP_URL=http://127.0.0.1:8080 node --test test/wall.test.mjs
//
// Screenshots go to out/screenshots/ (or GRIDMAP_SCREENSHOTS).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.GRIDMAP_URL || '').replace(/\/$/, '');
const CHROMIUM = process.env.GRIDMAP_CHROMIUM || '/usr/bin/chromium';
const SHOTS = resolve(process.env.GRIDMAP_SCREENSHOTS || join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'out', 'screenshots'));
const WALL = { width: 3840, height: 2160 };
const WAIT = 90_000; // software WebGL at 4K on two cores is slow; a settled map is usually seconds away
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

async function api(path) {
  const r = await fetch(BASE + path);
  if (r.status !== 200) assert.fail(`GET ${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

async function post(path, body, status) {
  const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${process.env.GRIDMAP_TOKEN}` };
  const r = await fetch(BASE + path, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await r.text();
  if (r.status !== status) assert.fail(`POST ${path} ${JSON.stringify(body)}: ${r.status}, want ${status}: ${text}`);
  return JSON.parse(text);
}

const STATUS_ZH = { reported: '上报', registered: '立案', dispatched: '派遣', handling: '处置中', handled: '已处置', verified: '已核查', closed: '结案', rejected: '不予立案', returned: '退回', suspended: '挂起' };
const OPEN = ['reported', 'registered', 'dispatched', 'handling', 'returned'];

/** The middle of a (Multi)Polygon's outer ring (mean of its vertices). */
function middle(f) {
  const ring = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0] : f.geometry.coordinates[0][0];
  return ring.slice(1).reduce((a, p) => [a[0] + p[0] / (ring.length - 1), a[1] + p[1] / (ring.length - 1)], [0, 0]);
}

/** Waits until the map is idle with every tile of the view loaded. */
async function settled(page) {
  await page.waitForFunction(async () => {
    await window.gridmap.settled();
    const m = window.gridmap.map;
    return m.loaded() && m.areTilesLoaded() && !m.isMoving();
  }, null, { timeout: WAIT, polling: 250 });
}

/** Rendered features of a source layer in the view, as plain objects. */
function rendered(page, sourceLayer) {
  return page.evaluate((sl) => window.gridmap.map.queryRenderedFeatures()
    .filter((f) => f.sourceLayer === sl || (!f.sourceLayer && f.source === sl))
    .map((f) => ({ ...f.properties, _geom: f.geometry.type === 'Point' ? f.geometry.coordinates : null })), sourceLayer);
}

async function panelAt(page, code) {
  await page.waitForFunction((c) => {
    const p = document.getElementById('panel');
    return p.dataset.state === 'ready' && p.dataset.code === c;
  }, code, { timeout: WAIT });
}

async function chain(page) {
  return page.$$eval('#chain li[data-code]', (lis) => lis.map((li) => ({ code: li.dataset.code, text: li.textContent })));
}

test('wall map in headless Chromium at 3840×2160', { timeout: 600_000 }, async (t) => {
  assert.ok(BASE, 'GRIDMAP_URL is not set: it names the gridmap server to test (api/browser_test.go sets it)');
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: run \`make browser-deps\` (Debian's chromium) or set GRIDMAP_CHROMIUM`);
  mkdirSync(SHOTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'gridmap-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: WALL, deviceScaleFactor: 1, locale: 'zh-CN', timezoneId: 'Asia/Shanghai',
  });
  t.after(async () => { await ctx.close(); rmSync(profile, { recursive: true, force: true }); });
  const page = ctx.pages()[0] || (await ctx.newPage());
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`); });
  const eventTiles = []; // the events tiles the page fetched: when, which, how answered
  page.on('response', (r) => { if (r.url().includes('/tiles/events/')) eventTiles.push(`${new Date().toISOString().slice(11, 23)} ${r.status()} ${r.url().replace(BASE, '')} ${r.headers()['x-cache'] || ''} ${r.headers().etag || ''}`); });
  const shot = async (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), timeout: 120000 });

  const districts = (await api('/v1/units?level=district&geometry=none')).features.map((f) => f.properties);
  assert.ok(districts.length > 0, 'the demo city has no districts');
  const district = districts[0];
  let districtGrids = []; // the district's grids (simplified), from the z14 test
  const districtBox = await (async () => {
    const f = await api(`/v1/units/${district.code}?geometry=simplified`);
    const b = [Infinity, Infinity, -Infinity, -Infinity];
    const walk = (c) => { if (typeof c[0] === 'number') { b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]); b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]); } else c.forEach(walk); };
    walk(f.geometry.coordinates);
    return b;
  })();

  await t.test('opens on the city, districts rendered and labelled', async () => {
    const started = Date.now();
    await page.goto(`${BASE}/`, { waitUntil: 'load' });
    await page.waitForFunction(() => window.gridmap && window.gridmap.ready && window.gridmap.ready.then(() => true),
      null, { timeout: WAIT });
    await settled(page);
    t.diagnostic(`first view settled in ${Date.now() - started} ms`);
    const z = await page.evaluate(() => window.gridmap.map.getZoom());
    assert.ok(z <= 11, `the city view is at z${z.toFixed(2)}, past the district layer`);
    const feats = await rendered(page, 'district');
    assert.ok(feats.length > 0, `no district features rendered at z${z.toFixed(2)}`);
    assert.ok(feats.some((f) => f.code === district.code && f.name === district.name && f.level === 'district'), `district ${district.code} not rendered: ${JSON.stringify(feats.slice(0, 3))}`);
    const labels = await rendered(page, 'gm-labels');
    assert.ok(labels.some((f) => f.name === district.name), `no label ${district.name} among ${labels.map((f) => f.name)}`);
    assert.equal(await page.textContent('#unit-name'), '全市');
    // The wall's type is large: the panel's body text is about 30 px at 4K.
    const px = await page.evaluate(() => parseFloat(getComputedStyle(document.documentElement).fontSize));
    assert.ok(px >= 28, `root font size ${px}px at 3840×2160`);
    await shot('wall-1-city');
  });

  await t.test('a click drills down into the district: chain, statistics, streets', async () => {
    // Click the district where its label sits (inside it by construction).
    const [x, y] = await page.evaluate((code) => {
      const f = window.gridmap.map.queryRenderedFeatures({ layers: ['gm-labels'] }).find((g) => g.properties.code === code);
      const p = window.gridmap.map.project(f.geometry.coordinates);
      return [p.x, p.y];
    }, district.code);
    await page.mouse.click(x, y);
    await panelAt(page, district.code);
    await settled(page);
    const c = await chain(page);
    assert.equal(c.length, 1, `chain ${JSON.stringify(c)}`);
    assert.equal(c[0].code, district.code);
    assert.ok(c[0].text.includes(district.name), c[0].text);
    assert.ok((await page.textContent('#crumbs')).includes(district.name));
    const stats = await api(`/v1/stats/${district.code}?by=class`);
    assert.equal(await page.textContent('#total'), new Intl.NumberFormat('zh-CN').format(stats.unit.total));
    assert.ok(stats.unit.total > 0, 'the demo objects were not imported');
    const rows = await page.$$eval('#children tr[data-code]', (trs) => trs.map((tr) => tr.dataset.code));
    assert.equal(rows.length, Math.min(stats.children.length, 14));
    const streets = (await rendered(page, 'street')).filter((f) => f.parent_code === district.code);
    assert.ok(streets.length > 0, 'no streets of the district rendered after the drill-down');
    assert.ok(await page.isEnabled('#back'));
    await shot('wall-2-district');
  });

  await t.test('grids and objects rendered at z14 around a grid', async () => {
    // The grid nearest the middle of the first district's grids.
    const grids0 = (await api(`/v1/units?level=grid&geometry=simplified&limit=10000&bbox=${districtBox.join(',')}`)).features
      .filter((f) => f.properties.code.startsWith(district.code));
    assert.ok(grids0.length > 0, `district ${district.code} has no grids`);
    districtGrids = grids0;
    const mids = grids0.map(middle);
    const all = mids.reduce((a, p) => [a[0] + p[0] / mids.length, a[1] + p[1] / mids.length], [0, 0]);
    const d2 = (p) => (p[0] - all[0]) ** 2 + (p[1] - all[1]) ** 2;
    const at = mids.reduce((best, p, i) => (d2(p) < d2(mids[best]) ? i : best), 0);
    const grid = grids0[at];
    const center = mids[at];
    await page.evaluate((c) => window.gridmap.map.jumpTo({ center: c, zoom: 14 }), center);
    await settled(page);
    assert.equal(await page.evaluate(() => Math.round(window.gridmap.map.getZoom())), 14);
    const grids = await rendered(page, 'grid');
    assert.ok(grids.length > 0, 'no grid features rendered at z14');
    assert.ok(grids.some((f) => f.code === grid.properties.code), `grid ${grid.properties.code} not among the ${grids.length} rendered`);
    assert.ok(grids.every((f) => f.level === 'grid' && f.name && f.parent_code), JSON.stringify(grids[0]));
    const objects = await rendered(page, 'objects');
    assert.ok(objects.length > 0, 'no objects rendered at z14');
    await shot('wall-3-z14');

    // Down to the grid: its whole chain in the panel; back goes up one level.
    await page.evaluate((code) => window.gridmap.select(code), grid.properties.code);
    await panelAt(page, grid.properties.code);
    await settled(page);
    const c = await chain(page);
    assert.deepEqual(c.map((u) => u.code), [grid.properties.code.slice(0, 6), grid.properties.code.slice(0, 9), grid.properties.code.slice(0, 12), grid.properties.code]);
    await shot('wall-4-grid');
    await page.click('#back');
    await panelAt(page, grid.properties.code.slice(0, 12));
  });

  await t.test('the wall style is valid by MapLibre\'s style spec and draws the events', async () => {
    const { validateStyleMin } = await import('@maplibre/maplibre-gl-style-spec');
    const style = await api('/styles/wall.json');
    assert.deepEqual(validateStyleMin(style).map((e) => e.message), []);
    assert.equal(style.sources.events && style.sources.events.url, `${BASE}/tiles/events.json`);
    const layers = style.layers.filter((l) => l.source === 'events').map((l) => `${l.id}:${l['source-layer']}`);
    assert.ok(layers.some((l) => l.endsWith(':event_counts')) && layers.some((l) => l.endsWith(':events')), `events layers ${layers}`);
  });

  await t.test('events: counts per unit, the live panel, the ticker and the legend', async () => {
    await page.evaluate(() => window.gridmap.home());
    await panelAt(page, '');
    await settled(page);
    await page.waitForFunction(() => window.gridmap.events().connected, null, { timeout: WAIT });
    assert.equal(await page.getAttribute('#live', 'data-state'), 'live');

    // Count bubbles of the units at this zoom, as the statistics have them.
    const counts = await rendered(page, 'event_counts');
    assert.ok(counts.length > 0, 'no event counts rendered in the city view');
    for (const c of counts.slice(0, 4)) {
      const st = await api(`/v1/stats/${c.code}?by=status`);
      const open = OPEN.reduce((n, s) => n + (st.unit.by[s] ? st.unit.by[s].total : 0), 0);
      assert.deepEqual({ code: c.code, total: c.total, open: c.open, overdue: c.overdue }, { code: c.code, total: st.unit.all.total, open, overdue: st.unit.all.overdue });
      assert.equal(Object.keys(STATUS_ZH).reduce((n, s) => n + c[s], 0), c.total, `per-status counts of ${c.code} do not add up`);
    }

    // Today's figures of the city, as the statistics have them.
    await page.waitForFunction(() => document.getElementById('live').dataset.day, null, { timeout: WAIT });
    const day = await page.getAttribute('#live', 'data-day');
    const today = await api(`/v1/stats/${district.code}?by=status&from=${day}`);
    const all = await api(`/v1/stats/${district.code}?by=status`);
    assert.equal(await page.getAttribute('#live', 'data-today'), String(today.unit.all.total));
    assert.equal(await page.getAttribute('#live', 'data-overdue'), String(all.unit.all.overdue));
    assert.equal(await page.$$eval('#ev-status li[data-status]', (lis) => lis.length), Object.keys(STATUS_ZH).length);

    // The ticker: the newest events, each with its status in Chinese.
    const newest = (await api('/v1/events?limit=12')).features.map((f) => f.properties);
    assert.ok(newest.length > 0, 'the demo events were not written');
    await page.waitForSelector(`#ticker li[data-code="${newest[0].code}"]`, { timeout: WAIT });
    const row = await page.textContent(`#ticker li[data-code="${newest[0].code}"]`);
    assert.ok(row.includes(newest[0].class_name) && row.includes(STATUS_ZH[newest[0].status]), row);

    // The legend names every status.
    const legend = await page.$$eval('#legend [data-status]', (rows) => rows.map((r) => [r.dataset.status, r.textContent]));
    assert.deepEqual(legend.map(([s]) => s), Object.keys(STATUS_ZH));
    for (const [s, text] of legend) assert.ok(text.includes(STATUS_ZH[s]), `legend ${s}: ${text}`);
    await shot('wall-5-events-city');
  });

  await t.test('a reported event shows at once, and its move recolours it (no reload)', async () => {
    // A point inside a grid of the district.
    let at = null;
    for (const g of districtGrids) {
      const p = middle(g);
      const here = await api(`/v1/locate?lon=${p[0]}&lat=${p[1]}`);
      if (here.grid && here.grid.code.startsWith(district.code)) { at = { p, grid: here.grid.code }; break; }
    }
    assert.ok(at, `no grid middle of district ${district.code} lies in a grid`);
    await page.evaluate((c) => window.gridmap.map.jumpTo({ center: c, zoom: 15 }), at.p);
    await settled(page);
    const mark = await page.evaluate(() => (window.__sameDocument = Math.random()));
    const before = await page.evaluate(() => window.gridmap.events());

    const created = await post('/v1/events', { class: '0102', lon: at.p[0], lat: at.p[1], source: 'grid_worker', description: '浏览器测试：路口垃圾堆放未清运', reporter: 'wall test' }, 201);
    const code = created.properties.code;
    assert.equal(created.properties.status, 'reported');
    assert.equal(created.properties.grid_code, at.grid);
    const started = Date.now();
    await page.waitForFunction((c) => window.gridmap.events().live.includes(c), code, { timeout: 30_000, polling: 100 });
    t.diagnostic(`event ${code} reached the page in ${Date.now() - started} ms`);
    const drawn = (status) => page.waitForFunction(([c, s]) => window.gridmap.map.queryRenderedFeatures({ layers: ['gm-live'] })
      .some((f) => f.properties.code === c && f.properties.status === s), [code, status], { timeout: 30_000, polling: 200 });
    // The ring is put on as the event arrives and lasts 10 s: looked for
    // before waiting for the map to draw it (on a loaded machine that wait
    // outlasted the ring).
    assert.ok(await page.$(`.pulse.fresh[data-code="${code}"]`), 'no ring on the new event');
    await drawn('reported');
    await page.waitForSelector(`#ticker li[data-code="${code}"][data-status="reported"]`, { timeout: 30_000 });
    assert.ok((await page.textContent(`#ticker li[data-code="${code}"]`)).includes(created.properties.class_name));
    await shot('wall-6-event-new');

    const moved = await post(`/v1/events/${code}/transitions`, { to: 'registered', note: '浏览器测试：立案' }, 200);
    assert.equal(moved.properties.status, 'registered');
    await page.waitForFunction((c) => window.gridmap.events().status[c] === 'registered', code, { timeout: 30_000, polling: 100 });
    await drawn('registered');
    await page.waitForSelector(`#ticker li[data-code="${code}"][data-status="registered"]`, { timeout: 30_000 });
    // The events tiles follow within a refresh: the tile's own point of the event is registered too.
    const tilesFrom = eventTiles.length;
    try {
      await page.waitForFunction((c) => window.gridmap.map.queryRenderedFeatures()
        .some((f) => f.sourceLayer === 'events' && f.properties.code === c && f.properties.status === 'registered'), code, { timeout: 30_000, polling: 500 });
    } catch (err) {
      const seen = await page.evaluate((c) => window.gridmap.map.queryRenderedFeatures().filter((f) => f.sourceLayer === 'events' && f.properties.code === c)
        .map((f) => `${f.layer.id} ${f.properties.status}`), code);
      assert.fail(`the events tiles did not follow the move of ${code} (${err.message}); rendered from the tiles: ${JSON.stringify(seen)}; events tiles fetched since the move:\n${eventTiles.slice(tilesFrom).join('\n')}`);
    }
    const ev = await page.evaluate(() => window.gridmap.events());
    assert.ok(ev.received >= before.received + 2 && ev.lastSeq > before.lastSeq, JSON.stringify({ before, after: { ...ev, live: ev.live.length } }));
    assert.equal(await page.evaluate(() => window.__sameDocument), mark, 'the page was reloaded');

    // A click on the point opens the event's card.
    await settled(page);
    const [x, y] = await page.evaluate((p) => { const q = window.gridmap.map.project(p); return [q.x, q.y]; }, [created.geometry.coordinates[0], created.geometry.coordinates[1]]);
    await page.mouse.click(x, y);
    await page.waitForSelector(`.ev-card[data-code="${code}"]`, { timeout: 30_000 });
    const card = await page.textContent(`.ev-card[data-code="${code}"]`);
    assert.ok(card.includes('立案') && card.includes('浏览器测试'), card);
    await shot('wall-7-event-moved');
  });

  await t.test('a unit edit shows on the wall without a reload (event: unit)', async () => {
    await page.evaluate(() => window.gridmap.home());
    await settled(page);
    const code = (await api('/v1/units?level=district&geometry=none')).features[0].properties.code;
    const got = await fetch(`${BASE}/v1/units/${code}?geometry=none`);
    assert.equal(got.status, 200);
    const renamed = `${(await got.json()).properties.name}（改）`;
    const mark = await page.evaluate(() => (window.__sameDocument = Math.random()));
    const before = await page.evaluate(() => window.gridmap.events());
    const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${process.env.GRIDMAP_TOKEN}`, 'If-Match': got.headers.get('ETag') };
    const put = await fetch(`${BASE}/v1/units/${code}?reason=${encodeURIComponent('浏览器测试：改名')}`,
      { method: 'PUT', headers, body: JSON.stringify({ type: 'Feature', geometry: null, properties: { name: renamed } }) });
    assert.equal(put.status, 200, await put.text());
    // The tiles, and the page's own labels and panel.
    await page.waitForFunction((n) => window.gridmap.map.querySourceFeatures('units', { sourceLayer: 'district' }).some((f) => f.properties.name === n),
      renamed, { timeout: 60_000, polling: 250 });
    await page.waitForFunction((n) => window.gridmap.map.querySourceFeatures('gm-labels').some((f) => f.properties.name === n),
      renamed, { timeout: 30_000, polling: 250 });
    await page.waitForFunction((n) => document.getElementById('panel').textContent.includes(n), renamed, { timeout: 30_000, polling: 250 });
    const ev = await page.evaluate(() => window.gridmap.events());
    assert.ok(ev.unitChanges > (before.unitChanges || 0) && ev.lastSeq > before.lastSeq, JSON.stringify({ before, after: { ...ev, live: ev.live.length } }));
    assert.equal(await page.evaluate(() => window.__sameDocument), mark, 'the page was reloaded');
    await settled(page);
    await shot('wall-8-unit-renamed');
  });

  await t.test('no page errors and no failed requests', () => {
    assert.deepEqual(problems, []);
  });
});
