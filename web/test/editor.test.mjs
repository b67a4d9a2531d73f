// The boundary editor (/editor) in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core) against a running gridmap
// server on the demo city: GRIDMAP_URL names it, GRIDMAP_TOKEN an admin
// token (api/editor_browser_test.go starts the server with public reads and
// runs this file). The page reads without a token and asks for one before
// its first dry run. It starts nothing itself and never skips.
//
// With the mouse on the map canvas (points projected with map.project): a
// grid picked by a click, split by a drawn line; two adjacent grids merged;
// a shared edge reshaped, first without neighbours adjusting (the overlap
// is shown on the map and Save stays disabled), then with them; each
// previewed (a dry run), saved with a reason and checked through the API.
// The time slider moved back shows the old boundary (units tiles with
// as_of), and so does a date typed between two versions. The panel lists
// a community's children; a vertex dragged within the snap tolerance of a
// neighbour's vertex lands on it (the dry run's units_written_geojson).
// Screenshots: out/screenshots/editor-*.png.
//
//   GRIDMAP_URL=… GRIDMAP_TOKEN=gm_… node --test test/editor.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.GRIDMAP_URL || '').replace(/\/$/, '');
const ADMIN = process.env.GRIDMAP_TOKEN || '';
const CHROMIUM = process.env.GRIDMAP_CHROMIUM || '/usr/bin/chromium';
const SHOTS = resolve(process.env.GRIDMAP_SCREENSHOTS || join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'out', 'screenshots'));
const VIEW = { width: 1600, height: 1000 };
const WAIT = 90_000; // software WebGL on two slow cores
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

async function api(path, want = 200) {
  const r = await fetch(BASE + path, { headers: { Authorization: `Bearer ${ADMIN}` } });
  if (r.status !== want) assert.fail(`GET ${path}: ${r.status}, want ${want}: ${await r.text()}`);
  return want === 200 ? r.json() : null;
}

const ring = (g) => (g.type === 'Polygon' ? g.coordinates[0] : g.coordinates[0][0]);
/** The mean of a polygon's outer ring's vertices (inside a convex cell). */
function middle(g) {
  const r = ring(g).slice(1);
  return r.reduce((a, p) => [a[0] + p[0] / r.length, a[1] + p[1] / r.length], [0, 0]);
}
const key = (p) => `${p[0]},${p[1]}`;
/** The vertices two outlines share (exactly: the demo's grids share theirs). */
function shared(a, b) {
  const kb = new Set(ring(b).map(key));
  return [...new Set(ring(a).map(key))].filter((k) => kb.has(k)).map((k) => k.split(',').map(Number));
}
/** Two grids of a community sharing an edge whose two ends are consecutive
 * vertices of the first (so that the edge has a midpoint handle). */
function neighbourPair(grids, skip) {
  for (const a of grids) {
    if (skip.includes(a.properties.code)) continue;
    for (const b of grids) {
      if (a === b || skip.includes(b.properties.code)) continue;
      const s = shared(a.geometry, b.geometry);
      if (s.length !== 2) continue;
      const r = ring(a.geometry).map(key);
      const i = r.indexOf(key(s[0]));
      const j = r.indexOf(key(s[1]));
      if (Math.abs(i - j) === 1) return { a, b, edge: i < j ? [s[0], s[1]] : [s[1], s[0]] };
    }
  }
  return null;
}

test('boundary editor in headless Chromium', { timeout: 900_000 }, async (t) => {
  assert.ok(BASE, 'GRIDMAP_URL is not set');
  assert.ok(ADMIN, 'GRIDMAP_TOKEN is not set');
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: run \`make browser-deps\``);
  mkdirSync(SHOTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'gridmap-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: VIEW, deviceScaleFactor: 1, locale: 'zh-CN', timezoneId: 'Asia/Shanghai',
  });
  t.after(async () => { await ctx.close(); rmSync(profile, { recursive: true, force: true }); });
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.setDefaultTimeout(WAIT);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // The browser logs every non-2xx answer; the two refusals expected (the
  // overlap's 422 and the stale edit's 412, both dry runs) are counted apart.
  const refused = [];
  page.on('console', (m) => { if (m.type() === 'error' && !/status of (422|412)/.test(m.text())) problems.push(`console error: ${m.text()}`); });
  page.on('response', (r) => { if (r.status() === 422 || r.status() === 412) refused.push(`${r.status()} ${r.url().replace(BASE, '')}`); });
  const unitTiles = [];
  page.on('request', (r) => { if (r.url().includes('/tiles/units/')) unitTiles.push(r.url()); });
  const shot = (name) => page.screenshot({ path: join(SHOTS, `editor-${name}.png`) });
  const settled = () => page.waitForFunction(async () => {
    await window.editor.settled();
    const m = window.editor.map;
    return m.loaded() && m.areTilesLoaded() && !m.isMoving();
  }, null, { timeout: WAIT, polling: 250 });
  const px = (p) => page.evaluate((c) => { const q = window.editor.map.project(c); return [q.x, q.y]; }, p);
  const selected = (code) => page.waitForFunction((c) => {
    const p = document.getElementById('panel');
    return p.dataset.state === 'ready' && p.dataset.code === c;
  }, code, { timeout: WAIT });
  const previewState = (want) => page.waitForFunction((w) => {
    const s = document.getElementById('preview').dataset.state;
    return w.includes(s);
  }, want, { timeout: WAIT });
  const field = (name) => page.textContent(`#preview-body [data-field="${name}"]`);
  async function saveWith(reason) {
    const saved = Number((await page.getAttribute('#panel', 'data-saved')) || 0);
    assert.ok(await page.isDisabled('#save'), 'Save is enabled before a reason is given');
    await page.fill('#reason', reason);
    assert.ok(await page.isEnabled('#save'), 'Save stays disabled after a clean dry run with a reason');
    await page.click('#save');
    await page.waitForFunction((n) => Number(document.getElementById('panel').dataset.saved || 0) > n, saved, { timeout: WAIT });
    await previewState(['saved']);
  }

  // The demo city's grids, by community.
  const grids = (await api('/v1/units?level=grid&geometry=full&limit=10000')).features;
  const byParent = new Map();
  for (const g of grids) byParent.set(g.properties.parent_code, [...(byParent.get(g.properties.parent_code) || []), g]);
  const communities = [...byParent.keys()].sort();
  const objectsIn = async (code) => (await api(`/v1/objects?within=${code}&limit=10000`)).features.length;

  await t.test('opens, and a click on the map picks a grid: chain, version, last change, history', async () => {
    const started = Date.now();
    await page.goto(`${BASE}/editor`, { waitUntil: 'load' });
    await page.waitForFunction(() => window.editor && (window.editor.error || window.editor.map), null, { timeout: WAIT });
    assert.equal(await page.evaluate(() => window.editor.error || ''), '');
    await settled();
    t.diagnostic(`editor settled in ${Date.now() - started} ms`);
    const g = byParent.get(communities[0])[0];
    const [x, y] = await px(middle(g.geometry));
    await page.mouse.click(x, y);
    await selected(g.properties.code);
    const chain = await page.$$eval('#chain li[data-code]', (lis) => lis.map((li) => li.dataset.code));
    const c = g.properties.code;
    assert.deepEqual(chain, [c.slice(0, 6), c.slice(0, 9), c.slice(0, 12), c]);
    assert.match(await page.textContent('#unit-version'), /版本 v1/);
    assert.ok((await page.textContent('#last [data-field="by"]')).length > 0);
    assert.equal(await page.$$eval('#history li', (l) => l.length), 1);
    await settled();
    await shot('1-picked');
  });

  let splitCode = '';
  let splitNew = '';
  await t.test('split: a line drawn across a grid, previewed (sign-in first), saved', async () => {
    const g = byParent.get(communities[0])[0];
    splitCode = g.properties.code;
    const before = await objectsIn(splitCode);
    await page.click('#tool-split');
    await settled();
    // A horizontal line through the middle, from beyond the west edge to beyond the east edge.
    const r = ring(g.geometry);
    const xs = r.map((p) => p[0]);
    const [mx, my] = middle(g.geometry);
    const w = Math.max(...xs) - Math.min(...xs);
    const a = await px([Math.min(...xs) - w * 0.08, my]);
    const b = await px([Math.max(...xs) + w * 0.08, my]);
    await page.mouse.click(a[0], a[1]);
    await page.mouse.click((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.5);
    await page.mouse.click(b[0], b[1]);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => !document.getElementById('preview-btn').disabled, null, { timeout: WAIT });
    assert.ok(mx);
    await page.click('#preview-btn');
    // Writes need a token, even on a public-read server: the sign-in comes first.
    await page.waitForSelector('#signin:not([hidden])', { timeout: WAIT });
    await shot('2-signin');
    await page.fill('#signin-token', ADMIN);
    await page.click('#signin-submit');
    await previewState(['preview']);
    const newCodes = (await field('new-codes')).split('，');
    assert.equal(newCodes.length, 1, `new codes ${newCodes}`);
    splitNew = newCodes[0];
    assert.equal(splitNew.slice(0, 12), splitCode.slice(0, 12));
    const moved = Number((await field('objects-moved')).replace(/,/g, ''));
    await settled();
    await shot('3-split-preview');
    await api(`/v1/units/${splitNew}`, 404); // a dry run writes nothing
    await saveWith('浏览器测试：按道路切分网格');
    const nu = await api(`/v1/units/${splitNew}?geometry=none`);
    assert.equal(nu.properties.parent_code, splitCode.slice(0, 12));
    const old = await api(`/v1/units/${splitCode}?geometry=none`);
    assert.equal(old.properties.version, 2);
    assert.ok(old.properties.area_m2 < g.properties.area_m2);
    assert.equal(await objectsIn(splitNew), moved, 'objects in the new grid ≠ objects the preview said would move');
    assert.equal(await objectsIn(splitCode), before - moved);
    assert.match(await page.textContent('#last [data-field="reason"]'), /按道路切分/);
    await settled();
    await shot('4-split-saved');
  });

  await t.test('merge: a neighbour clicked on the map, the surviving code chosen, previewed, saved', async () => {
    const pair = neighbourPair(byParent.get(communities[1]), []);
    assert.ok(pair, `no neighbouring grids in ${communities[1]}`);
    const { a, b } = pair;
    const objs = (await objectsIn(a.properties.code)) + (await objectsIn(b.properties.code));
    // Picked by a search on its code.
    await page.fill('#search-input', a.properties.code);
    await page.press('#search-input', 'Enter');
    await selected(a.properties.code);
    await settled();
    await page.click('#tool-merge');
    const [x, y] = await px(middle(b.geometry));
    await page.mouse.click(x, y);
    await page.waitForSelector(`#merge-list li[data-code="${b.properties.code}"]`, { timeout: WAIT });
    await page.check(`#merge-list input[value="${a.properties.code}"]`);
    await page.click('#preview-btn');
    await previewState(['preview']);
    assert.equal(await field('retired'), b.properties.code);
    await settled();
    await shot('5-merge-preview');
    await saveWith('浏览器测试：合并网格');
    await api(`/v1/units/${b.properties.code}`, 404);
    const kept = await api(`/v1/units/${a.properties.code}?geometry=none`);
    const sum = a.properties.area_m2 + b.properties.area_m2;
    assert.ok(Math.abs(kept.properties.area_m2 - sum) < sum * 0.001, `merged area ${kept.properties.area_m2}, want ${sum}`);
    assert.equal(await objectsIn(a.properties.code), objs);
    await settled();
    await shot('6-merge-saved');
  });

  await t.test('reshape: a shared edge pulled into the neighbour; an overlap without adjusting, then saved with it', async () => {
    const pair = neighbourPair(byParent.get(communities[2]), []);
    assert.ok(pair, `no neighbouring grids in ${communities[2]}`);
    const { a, b, edge } = pair;
    await page.evaluate((c) => window.editor.select(c), a.properties.code);
    await selected(a.properties.code);
    await settled();
    await page.click('#tool-reshape');
    await settled();
    // The edge's midpoint handle, dragged 35% of the way to the neighbour's middle.
    const mid = [(edge[0][0] + edge[1][0]) / 2, (edge[0][1] + edge[1][1]) / 2];
    const far = middle(b.geometry);
    const to = [mid[0] + (far[0] - mid[0]) * 0.35, mid[1] + (far[1] - mid[1]) * 0.35];
    const [x0, y0] = await px(mid);
    const [x1, y1] = await px(to);
    await page.mouse.move(x0, y0);
    await page.mouse.down();
    for (let i = 1; i <= 10; i++) await page.mouse.move(x0 + ((x1 - x0) * i) / 10, y0 + ((y1 - y0) * i) / 10);
    await page.mouse.up();
    const n = await page.evaluate(() => { const f = window.editor.draw.getSnapshot().find((g) => g.properties.mode === 'polygon'); return f.geometry.coordinates[0].length; });
    assert.equal(n, ring(a.geometry).length + 1, 'the drag did not add a vertex on the edge');

    await page.uncheck('#adjust');
    await page.click('#preview-btn');
    await previewState(['violations']);
    const rules = await page.$$eval('#preview-body li.violation', (lis) => lis.map((li) => li.dataset.rule));
    assert.ok(rules.includes('overlap'), `violations ${rules}`);
    assert.ok((await page.textContent('#preview-body')).includes(b.properties.code));
    await page.fill('#reason', '浏览器测试：不应保存');
    assert.ok(await page.isDisabled('#save'), 'Save is enabled with a violation');
    await page.waitForFunction(() => window.editor.map.queryRenderedFeatures({ layers: ['ed-violations-fill'] }).length > 0, null, { timeout: WAIT });
    await settled();
    await shot('7-reshape-violation');
    await page.fill('#reason', '');

    await page.check('#adjust');
    await page.click('#preview-btn');
    await previewState(['preview']);
    assert.match(await field('written'), new RegExp(b.properties.code));
    // The preview draws the new outline of every unit written: the
    // neighbour's too, smaller than it is now (its shared edge moved).
    const outlines = await page.evaluate(() => window.editor.map.getSource('ed-written').getData());
    const nbOutline = outlines.features.find((f) => f.properties.code === b.properties.code);
    assert.ok(nbOutline && outlines.features.some((f) => f.properties.code === a.properties.code), `outlines drawn: ${outlines.features.map((f) => f.properties.code)}`);
    assert.notDeepEqual(ring(nbOutline.geometry), ring(b.geometry), 'the neighbour\'s outline drawn is its old one');
    await page.waitForFunction((c) => window.editor.map.queryRenderedFeatures({ layers: ['ed-written'] }).some((f) => f.properties.code === c), b.properties.code, { timeout: WAIT });
    await settled();
    await shot('8-reshape-preview');
    await saveWith('浏览器测试：边界随道路调整');
    const na = await api(`/v1/units/${a.properties.code}?geometry=none`);
    const nb = await api(`/v1/units/${b.properties.code}?geometry=none`);
    assert.equal(na.properties.version, 2);
    assert.equal(nb.properties.version, 2);
    assert.ok(na.properties.area_m2 > a.properties.area_m2 && nb.properties.area_m2 < b.properties.area_m2);
    const sum = a.properties.area_m2 + b.properties.area_m2;
    assert.ok(Math.abs(na.properties.area_m2 + nb.properties.area_m2 - sum) < sum * 0.001);
    await settled();
    await shot('9-reshape-saved');
  });

  await t.test('revert: the reshaped grid back to its first version from the history list, previewed, saved', async () => {
    const pair = neighbourPair(byParent.get(communities[2]), []);
    const { a, b } = pair;
    await selected(a.properties.code);
    assert.equal(await page.$$eval('#history li', (l) => l.length), 2);
    await page.click('#history li[data-version="1"] button.revert');
    await previewState(['preview']);
    assert.equal(await page.getAttribute('#preview', 'data-operation'), 'revert');
    assert.match(await field('written'), new RegExp(`${b.properties.code} v3`));
    await saveWith('浏览器测试：恢复原边界');
    const na = await api(`/v1/units/${a.properties.code}?geometry=none`);
    const nb = await api(`/v1/units/${b.properties.code}?geometry=none`);
    assert.equal(na.properties.version, 3);
    assert.ok(Math.abs(na.properties.area_m2 - a.properties.area_m2) < 1, `reverted area ${na.properties.area_m2}, want ${a.properties.area_m2}`);
    assert.ok(Math.abs(nb.properties.area_m2 - b.properties.area_m2) < 1, `neighbour's area ${nb.properties.area_m2}, want ${b.properties.area_m2}`);
    assert.equal(await page.$$eval('#history li', (l) => l.length), 3);
    await settled();
    await shot('10-reverted');
  });

  await t.test('stale: someone else saves first; the dry run shows the 412 and 重新加载 lets the clerk redo it', async () => {
    const pair = neighbourPair(byParent.get(communities[3]), []);
    assert.ok(pair, `no neighbouring grids in ${communities[3]}`);
    const { a, b } = pair;
    // Picked by a search on its name.
    await page.fill('#search-input', a.properties.name);
    await page.press('#search-input', 'Enter');
    await page.click(`#search-results li[data-code="${a.properties.code}"]`);
    await selected(a.properties.code);
    await settled();
    const merge = async () => {
      await page.click('#tool-merge');
      const [x, y] = await px(middle(b.geometry));
      await page.mouse.click(x, y);
      await page.waitForSelector(`#merge-list li[data-code="${b.properties.code}"]`, { timeout: WAIT });
      await page.click('#preview-btn');
    };
    // Another clerk renames the grid meanwhile.
    const got = await fetch(`${BASE}/v1/units/${a.properties.code}?geometry=none`, { headers: { Authorization: `Bearer ${ADMIN}` } });
    const put = await fetch(`${BASE}/v1/units/${a.properties.code}?reason=${encodeURIComponent('另一位编辑改名')}`, {
      method: 'PUT', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json', 'If-Match': got.headers.get('etag') },
      body: JSON.stringify({ type: 'Feature', properties: { name: `${a.properties.name}（改）` } }),
    });
    assert.equal(put.status, 200, await put.text());
    await merge();
    await previewState(['stale']);
    assert.ok(await page.isVisible('#reload'));
    assert.ok(await page.isDisabled('#save'));
    await shot('11-stale');
    await page.click('#reload');
    await selected(a.properties.code);
    await page.waitForFunction(() => /版本 v2/.test(document.getElementById('unit-version').textContent), null, { timeout: WAIT });
    await merge();
    await previewState(['preview']);
    assert.equal(await field('retired'), b.properties.code);
    await page.click('#tool-cancel');
  });

  await t.test('retire: a grid retired into the neighbour clicked on the map, previewed, saved', async () => {
    const pair = neighbourPair(byParent.get(communities[3]), []);
    const { a, b } = pair;
    const objs = (await objectsIn(a.properties.code)) + (await objectsIn(b.properties.code));
    await selected(a.properties.code);
    await page.click('#tool-retire');
    const [x, y] = await px(middle(b.geometry));
    await page.mouse.click(x, y);
    await page.waitForSelector(`#retire-into[data-code="${b.properties.code}"]`, { timeout: WAIT });
    await page.click('#preview-btn');
    await previewState(['preview']);
    assert.equal(await field('retired'), a.properties.code);
    await settled();
    await shot('13-retire-preview');
    await saveWith('浏览器测试：撤销网格并入相邻网格');
    await selected(b.properties.code);
    await api(`/v1/units/${a.properties.code}`, 404);
    const kept = await api(`/v1/units/${b.properties.code}?geometry=none`);
    const sum = a.properties.area_m2 + b.properties.area_m2;
    assert.ok(Math.abs(kept.properties.area_m2 - sum) < sum * 0.001, `area ${kept.properties.area_m2}, want ${sum}`);
    assert.equal(await objectsIn(b.properties.code), objs);
  });

  await t.test('create: a new grid drawn inside a grid, carved out of it (neighbours adjusting), previewed, saved', async () => {
    const c = byParent.get(communities[4])[0];
    await page.evaluate((code) => window.editor.select(code), c.properties.code);
    await selected(c.properties.code);
    await settled();
    await page.click('#tool-create');
    // A small triangle around the grid's middle.
    const [mx, my] = middle(c.geometry);
    const xs = ring(c.geometry).map((p) => p[0]);
    const d = (Math.max(...xs) - Math.min(...xs)) * 0.12;
    const pts = [[mx - d, my - d * 0.6], [mx + d, my - d * 0.6], [mx, my + d]];
    for (const p of [...pts, pts[0]]) {
      const [x, y] = await px(p);
      await page.mouse.click(x, y);
    }
    await page.fill('#create-name', '浏览器测试新网格');
    await page.waitForFunction(() => !document.getElementById('preview-btn').disabled, null, { timeout: WAIT });
    await page.click('#preview-btn');
    await previewState(['preview']);
    const code = await field('new-codes');
    assert.equal(code.slice(0, 12), c.properties.code.slice(0, 12));
    assert.match(await field('written'), new RegExp(`${c.properties.code} v2`));
    await settled();
    await shot('14-create-preview');
    await saveWith('浏览器测试：新建网格');
    await selected(code);
    const nu = await api(`/v1/units/${code}?geometry=none`);
    assert.equal(nu.properties.name, '浏览器测试新网格');
    const old = await api(`/v1/units/${c.properties.code}?geometry=none`);
    assert.ok(Math.abs(old.properties.area_m2 + nu.properties.area_m2 - c.properties.area_m2) < c.properties.area_m2 * 0.001);
    await settled();
    await shot('15-create-saved');
  });

  await t.test('the time slider back to before the split shows the old boundary', async () => {
    await page.evaluate((c) => window.editor.select(c), splitCode);
    await selected(splitCode);
    await settled();
    const gridsNow = () => page.evaluate(() => window.editor.map.queryRenderedFeatures().filter((f) => f.sourceLayer === 'grid').map((f) => String(f.properties.code)));
    assert.ok((await gridsNow()).includes(splitNew), 'the new grid is not rendered now');
    assert.equal(await page.getAttribute('#asof', 'max'), '2');
    const from = unitTiles.length;
    await page.fill('#asof', '0');
    await page.dispatchEvent('#asof', 'change');
    await page.waitForFunction(() => document.body.dataset.asOf, null, { timeout: WAIT });
    await selected(splitCode);
    await settled();
    const asOf = await page.evaluate(() => document.body.dataset.asOf);
    assert.ok(unitTiles.slice(from).some((u) => u.includes(`as_of=${encodeURIComponent(asOf)}`)), `no units tile with as_of=${asOf}: ${unitTiles.slice(from, from + 3)}`);
    const then = await gridsNow();
    assert.ok(then.includes(splitCode) && !then.includes(splitNew), `as of ${asOf} the grids rendered are ${then}`);
    assert.match(await page.textContent('#unit-version'), /版本 v1/);
    assert.ok(await page.isDisabled('#tool-split'), 'editing is possible in the past');
    await shot('12-as-of');
    await page.fill('#asof', '2');
    await page.dispatchEvent('#asof', 'change');
    await page.waitForFunction(() => !document.body.dataset.asOf, null, { timeout: WAIT });
    await selected(splitCode);
    await settled();
    assert.ok((await gridsNow()).includes(splitNew));

    // Any past date, not only a change: a second between v1 and v2 typed
    // into the date input shows v1 and the old boundary.
    const hist = (await api(`/v1/units/${splitCode}/history?geometry=none`)).features.map((f) => f.properties);
    const v1 = hist.find((h) => h.version === 1).valid_from;
    const v2 = hist.find((h) => h.version === 2).valid_from;
    const between = new Date(Math.ceil(Date.parse(v1) / 1000) * 1000 + 1000);
    assert.ok(between < new Date(v2), `no whole second between v1 ${v1} and v2 ${v2}`);
    const local = await page.evaluate((iso) => {
      const d = new Date(iso);
      const p = (n) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    }, between.toISOString());
    await page.fill('#asof-date', local);
    await page.dispatchEvent('#asof-date', 'change');
    await page.waitForFunction((w) => document.body.dataset.asOf === w, between.toISOString(), { timeout: WAIT });
    await selected(splitCode);
    await settled();
    assert.match(await page.textContent('#unit-version'), /版本 v1/);
    const between1 = await gridsNow();
    assert.ok(between1.includes(splitCode) && !between1.includes(splitNew), `as of ${between.toISOString()} the grids rendered are ${between1}`);
    assert.equal(await page.inputValue('#asof'), '0', 'the slider is not at the change before the date');
    await shot('12b-as-of-date');
    await page.fill('#asof-date', '');
    await page.dispatchEvent('#asof-date', 'change');
    await page.waitForFunction(() => !document.body.dataset.asOf, null, { timeout: WAIT });
    await selected(splitCode);
    await settled();
    assert.match(await page.textContent('#unit-version'), /版本 v2/);
  });

  await t.test('the panel lists a community\'s children (code, name); a click on one selects it', async () => {
    const community = communities[communities.length - 1];
    await page.evaluate((c) => window.editor.select(c), community);
    await selected(community);
    const want = (await api(`/v1/units/${community}/children?geometry=none&limit=10000`)).features.map((f) => [f.properties.code, f.properties.name]);
    assert.ok(want.length > 0, `${community} has no children`);
    const rows = await page.$$eval('#children tr', (trs) => trs.map((tr) => [tr.dataset.code, tr.querySelector('.nm').textContent, tr.querySelector('.cd').textContent]));
    assert.deepEqual(rows.map(([c, n]) => [c, n]), want);
    for (const [c, , shown] of rows) assert.equal(shown, c);
    assert.match(await page.textContent('#children-title'), new RegExp(`${want.length} 个`));
    const [child] = want[want.length - 1];
    await page.click(`#children tr[data-code="${child}"]`);
    await selected(child);
    assert.match(await page.textContent('#children-title'), /网格没有下级单元/);
    await settled();
  });

  await t.test('snapping: a shared edge dragged to within the tolerance of a neighbour\'s vertex lands on it exactly (dry run only)', async () => {
    const community = communities[5];
    const fresh = (await api(`/v1/units?parent=${community}&geometry=full&limit=10000`)).features;
    const pair = neighbourPair(fresh, []);
    assert.ok(pair, `no neighbouring grids in ${community}`);
    const { a, b, edge } = pair;
    await page.evaluate((c) => window.editor.select(c), a.properties.code);
    await selected(a.properties.code);
    await settled();
    await page.click('#tool-reshape');
    await settled();
    // A vertex of the neighbour next to the shared edge, not on a.
    const ka = new Set(ring(a.geometry).map(key));
    const rb = ring(b.geometry).slice(1);
    const candidates = [];
    rb.forEach((p, i) => {
      if (ka.has(key(p))) return;
      const prev = rb[(i - 1 + rb.length) % rb.length];
      const next = rb[(i + 1) % rb.length];
      if (edge.some((e) => key(e) === key(prev) || key(e) === key(next))) candidates.push(p);
    });
    assert.ok(candidates.length, `no vertex of ${b.properties.code} beside the shared edge`);
    const v = candidates[0];
    const mid = [(edge[0][0] + edge[1][0]) / 2, (edge[0][1] + edge[1][1]) / 2];
    // Both in view, left of the panel.
    await page.evaluate(([p, q]) => {
      const m = window.editor.map;
      const right = innerWidth - document.getElementById('panel').getBoundingClientRect().left + 200;
      const cam = m.cameraForBounds([[Math.min(p[0], q[0]), Math.min(p[1], q[1])], [Math.max(p[0], q[0]), Math.max(p[1], q[1])]], { padding: { top: 200, bottom: 200, left: 200, right } });
      m.jumpTo({ center: cam.center, zoom: Math.min(cam.zoom, m.getZoom()) });
    }, [mid, v]);
    await settled();
    const [x0, y0] = await px(mid);
    const [vx, vy] = await px(v);
    const panelLeft = await page.evaluate(() => document.getElementById('panel').getBoundingClientRect().left);
    for (const [x, y] of [[x0, y0], [vx, vy]]) assert.ok(x > 0 && x < panelLeft && y > 0 && y < VIEW.height, `(${x}, ${y}) is not on the map`);
    const d = Math.hypot(x0 - vx, y0 - vy);
    assert.ok(d > 30, `the vertex is only ${d} px from the handle`);
    // Released 6 px short of it (the tolerance is 14 px), on the way from the handle.
    const x1 = vx + ((x0 - vx) * 6) / d;
    const y1 = vy + ((y0 - vy) * 6) / d;
    // terra-draw takes the drag's start where the pointer first moves: a
    // couple of pixels first, so that it is still on the handle.
    await page.mouse.move(x0, y0);
    await page.mouse.down();
    for (const f of [0.005, 0.01]) await page.mouse.move(x0 + (x1 - x0) * f, y0 + (y1 - y0) * f);
    for (let i = 1; i <= 20; i++) await page.mouse.move(x0 + ((x1 - x0) * i) / 20, y0 + ((y1 - y0) * i) / 20);
    await page.mouse.up();
    const drawn = await page.evaluate(() => window.editor.draw.getSnapshot().find((g) => g.properties.mode === 'polygon').geometry.coordinates[0]);
    assert.ok(drawn.some((p) => key(p) === key(v)), `the dragged vertex did not snap to ${v}: ${JSON.stringify(drawn)}`);
    await page.check('#adjust');
    await page.click('#preview-btn');
    await previewState(['preview']);
    const outlines = await page.evaluate(() => window.editor.map.getSource('ed-written').getData());
    const na = outlines.features.find((f) => f.properties.code === a.properties.code);
    const nb = outlines.features.find((f) => f.properties.code === b.properties.code);
    assert.ok(na && nb, `outlines: ${outlines.features.map((f) => f.properties.code)}`);
    // The answer's outlines are at 7 decimals: v to that precision, the
    // same coordinates in both outlines (the boundary stays shared).
    const at7 = (p) => Math.abs(p[0] - v[0]) <= 0.5e-7 + 1e-12 && Math.abs(p[1] - v[1]) <= 0.5e-7 + 1e-12;
    const va = ring(na.geometry).find(at7);
    assert.ok(va, `the dry run's outline of ${a.properties.code} lacks ${v}: ${JSON.stringify(ring(na.geometry))}`);
    assert.ok(ring(nb.geometry).some((p) => key(p) === key(va)), `the neighbour's new outline lacks ${va}: ${JSON.stringify(ring(nb.geometry))}`);
    await settled();
    await shot('16-snap-preview');
    await page.click('#tool-cancel');
    assert.equal((await api(`/v1/units/${a.properties.code}?geometry=none`)).properties.version, a.properties.version);
  });

  await t.test('no page errors; one 422 (the overlap) and one 412 (the stale edit), both dry runs', () => {
    assert.deepEqual(problems, []);
    assert.deepEqual(refused.map((r) => r.slice(0, 3)), ['422', '412'], `refusals: ${refused}`);
    for (const r of refused) assert.match(r, /dry_run=true/);
  });
});
