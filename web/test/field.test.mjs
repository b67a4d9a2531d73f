// The loop of one case and a worker's day on the wall, in headless
// Chromium (api/browser_test.go, TestFieldOnWallInBrowser, starts the
// server on the small demo city with its people and runs this file): the
// grid's worker reports a case (they are its verifier), it is dispatched
// to a handler, more time is asked and approved by the supervisor, it is
// handled, verified by the worker and closed, each move seen on the wall's
// stream; the worker's fixes put their dot on the map, today's coverage
// colours their grid, their card lists the case while it waits for them
// and nothing once verified, and the figures count it with the patrol.
// GRIDMAP_* come from the Go test (people's ids and tokens, the grid).

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

async function post(path, body, status, token = process.env.GRIDMAP_TOKEN) {
  const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` };
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

  const W = process.env.GRIDMAP_WORKER_TOKEN;
  const H = process.env.GRIDMAP_HANDLER_TOKEN;
  const S = process.env.GRIDMAP_SUPERVISOR_TOKEN;
  const statusOnWall = (code, st) => page.waitForFunction(([c, s]) => window.gridmap.events && window.gridmap.events().status[c] === s,
    [code, st], { timeout: WAIT, polling: 250 });

  // The case: reported by the worker in their grid, so they verify it.
  const ev = await post('/v1/events', { class: process.env.GRIDMAP_CLASS, lon: LON, lat: LAT, source: 'grid_worker', description: '巡查发现井盖缺失' }, 201, W);
  assert.equal(ev.properties.verifier && ev.properties.verifier.id, WORKER, `verifier ${JSON.stringify(ev.properties.verifier)}`);
  await page.waitForFunction(() => window.gridmap.events, null, { timeout: WAIT, polling: 250 });
  await statusOnWall(ev.id, 'reported');
  await post(`/v1/events/${ev.id}/transitions`, { to: 'registered' }, 200);
  const dispatched = await post(`/v1/events/${ev.id}/transitions`, { to: 'dispatched', handler: Number(process.env.GRIDMAP_HANDLER) }, 200);
  assert.equal(dispatched.properties.handler.id, Number(process.env.GRIDMAP_HANDLER));
  await statusOnWall(ev.id, 'dispatched');
  await post(`/v1/events/${ev.id}/work`, { to: 'handling', note: '到场' }, 200, H);
  const asked = await post(`/v1/events/${ev.id}/extensions`, { amount: 2, unit: 'working_days', reason: '等配件' }, 201, H);
  const approved = await post(`/v1/events/${ev.id}/extensions/${asked.extension.n}`, { decision: 'approve', note: '同意' }, 200, S);
  assert.equal(approved.extension.status, 'approved');
  assert.ok(Date.parse(approved.event.properties.deadline) > Date.parse(dispatched.properties.deadline), 'the deadline moved');
  await post(`/v1/events/${ev.id}/work`, { to: 'handled' }, 200, H);
  await statusOnWall(ev.id, 'handled');

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
    assert.ok(cov.walked >= 1 && cov.walked <= 3 && cov.shares[GRID] > 0 && cov.shares[GRID] < 0.5, JSON.stringify(cov));
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
    assert.match(text, /今日 \d+ 米/);
    assert.match(text, /待办\s*1 件/, text);
    assert.ok(text.includes(ev.id), `the card lists the verification of ${ev.id}: ${text}`);
    assert.match(text, /责任网格 [1-9]\d*%/, text);
    await page.screenshot({ path: join(SHOTS, 'field-worker-card.png') });
  });

  await t.test('verified by the worker, closed: the wall follows, the card empties, the figures count it', async () => {
    const verified = await post(`/v1/events/${ev.id}/work`, { to: 'verified', note: '已修复' }, 200, W);
    assert.equal(verified.properties.verified_by.id, WORKER);
    await statusOnWall(ev.id, 'verified');
    await post(`/v1/events/${ev.id}/transitions`, { to: 'closed' }, 200);
    await statusOnWall(ev.id, 'closed');
    // The card again (as a second click would open it; the open card covers the dot).
    await page.evaluate(([w, lon, lat]) => window.gridmap.showWorker(w, { lng: lon, lat }), [WORKER, points[19].lon, points[19].lat]);
    await page.waitForFunction((w) => {
      const c = document.querySelector(`.worker-card[data-worker="${w}"] .tasks`);
      return c && /^0 件/.test(c.textContent);
    }, WORKER, { timeout: WAIT, polling: 250 });
    const r = await fetch(`${BASE}/v1/figures?level=worker&unit=${GRID.slice(0, 12)}`);
    const fig = await r.json();
    const row = fig.rows.find((x) => x.code === String(WORKER));
    assert.ok(row, JSON.stringify(fig));
    assert.equal(row.reported, 1);
    assert.equal(row.verified, 1);
    assert.equal(row.verified_on_time, 1);
    assert.ok(row.patrol_hours > 0 && row.patrol_coverage > 0, `patrol figures ${JSON.stringify(row)}`);
    await page.screenshot({ path: join(SHOTS, 'field-closed.png') });
  });

  assert.deepEqual(problems, []);
});
