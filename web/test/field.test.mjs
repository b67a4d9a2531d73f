// Field work on the wall in headless Chromium (api/browser_test.go,
// TestFieldOnWallInBrowser, starts the server on the small demo city with
// its people and runs this file): a grid worker's phone posts fixes, the
// worker's dot appears from the stream, today's coverage colours their
// grid, a case of their grid reaches them as a verification task, and a
// click on the dot opens their card with the grid, the task and today's
// patrol. GRIDMAP_URL, GRIDMAP_TOKEN, GRIDMAP_WORKER, GRIDMAP_GRID,
// GRIDMAP_LON, GRIDMAP_LAT come from the Go test.

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
const WAIT = 120_000;
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const WORKER = Number(process.env.GRIDMAP_WORKER);
const GRID = process.env.GRIDMAP_GRID;
const LON = Number(process.env.GRIDMAP_LON);
const LAT = Number(process.env.GRIDMAP_LAT);

async function post(path, body, status) {
  const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${process.env.GRIDMAP_TOKEN}` };
  const r = await fetch(BASE + path, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await r.text();
  if (r.status !== status) assert.fail(`POST ${path} ${JSON.stringify(body)}: ${r.status}, want ${status}: ${text}`);
  return JSON.parse(text);
}

test('field work on the wall', { timeout: 600_000 }, async (t) => {
  assert.ok(BASE && WORKER && GRID, 'GRIDMAP_URL, GRIDMAP_WORKER and GRIDMAP_GRID are set by api/browser_test.go');
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`);
  mkdirSync(SHOTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'gridmap-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 800 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai',
  });
  t.after(async () => { await ctx.close(); rmSync(profile, { recursive: true, force: true }); });
  const page = ctx.pages()[0] || (await ctx.newPage());
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`); });

  await page.goto(`${BASE}/`);
  await page.waitForFunction(() => window.gridmap && window.gridmap.field, null, { timeout: WAIT, polling: 250 });

  // A case in the worker's grid, handled: it waits for the worker's verification.
  const ev = await post('/v1/events', { class: '0102', lon: LON, lat: LAT, source: 'grid_worker', description: '巡查发现暴露垃圾' }, 201);
  for (const to of ['registered', 'dispatched', 'handling', 'handled']) await post(`/v1/events/${ev.id}/transitions`, { to }, 200);

  // Ten minutes of the worker's walk, ending now: 20 m every 30 s eastwards.
  const now = Date.now();
  const dLon = 20 / (111320 * Math.cos((LAT * Math.PI) / 180));
  const points = Array.from({ length: 20 }, (_, i) => ({
    worker: WORKER, t: new Date(now - (20 - i) * 30_000).toISOString(), lon: LON + (i - 10) * dLon, lat: LAT, accuracy: 6,
  }));
  const res = await post('/v1/patrols/points', { points }, 200);
  assert.equal(res.stored, 20, JSON.stringify(res));

  await t.test('the worker\'s position arrives on the stream', async () => {
    await page.waitForFunction((w) => window.gridmap.field().workers.some((p) => p.worker === w), WORKER, { timeout: WAIT, polling: 250 });
    const p = (await page.evaluate(() => window.gridmap.field().workers)).find((x) => x.worker === WORKER);
    assert.equal(p.grid, GRID);
    assert.ok(Math.abs(p.lon - points[19].lon) < 1e-6, `position ${JSON.stringify(p)}`);
  });

  await t.test('today\'s coverage colours the grid', async () => {
    await page.evaluate(() => window.gridmap.loadCoverage());
    const cov = await page.evaluate(() => window.gridmap.field().coverage);
    assert.ok(cov.walked >= 1 && cov.shares[GRID] > 0, JSON.stringify(cov));
    const paint = await page.evaluate(() => JSON.stringify(window.gridmap.map.getPaintProperty('gm-coverage', 'fill-opacity')));
    assert.ok(paint.includes(GRID), paint);
  });

  await t.test('a click on the worker opens their card', async () => {
    await page.evaluate(([lon, lat]) => window.gridmap.map.jumpTo({ center: [lon, lat], zoom: 16 }), [points[19].lon, points[19].lat]);
    await page.waitForFunction(() => window.gridmap.map.queryRenderedFeatures({ layers: ['gm-workers'] }).length > 0, null, { timeout: WAIT, polling: 250 });
    const xy = await page.evaluate(([lon, lat]) => { const p = window.gridmap.map.project([lon, lat]); return [p.x, p.y]; }, [points[19].lon, points[19].lat]);
    await page.mouse.click(xy[0], xy[1]);
    const card = await page.waitForSelector(`.worker-card[data-worker="${WORKER}"]`, { timeout: WAIT });
    const text = await card.textContent();
    assert.match(text, /今日巡查/);
    assert.match(text, /待办1 件|待办 ?1 件/, text);
    assert.ok(text.includes(ev.id), `the card lists the verification of ${ev.id}: ${text}`);
    assert.match(text, /责任网格 [1-9]\d*%/, text);
    await page.screenshot({ path: join(SHOTS, 'field-worker-card.png') });
  });

  assert.deepEqual(problems, []);
});
