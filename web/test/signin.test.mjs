// The wall map on a server WITHOUT public reads, in headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core): GRIDMAP_URL
// names the server, GRIDMAP_TOKEN an admin token (the test's own reads and
// writes), GRIDMAP_VIEWER_TOKEN a viewer token of the whole city and
// GRIDMAP_VIEWER_NAME its name (api/signin_browser_test.go starts the
// server on the demo city and mints both). It starts nothing itself and
// never skips.
//
// The page shows its sign-in and gets no map data without a credential
// (asking only a couple of times), refuses a wrong token with the server's
// reason, loads with the viewer token, follows the event stream read with
// fetch() (an event reported through the API shows live), never sends the
// token to another origin nor puts it in a URL, and shows the sign-in again
// with the reason once the token is revoked.
//
//   GRIDMAP_URL=… GRIDMAP_TOKEN=gm_… GRIDMAP_VIEWER_TOKEN=gm_… GRIDMAP_VIEWER_NAME=… node --test test/signin.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.GRIDMAP_URL || '').replace(/\/$/, '');
const ADMIN = process.env.GRIDMAP_TOKEN || '';
const VIEWER = process.env.GRIDMAP_VIEWER_TOKEN || '';
const VIEWER_NAME = process.env.GRIDMAP_VIEWER_NAME || '';
const CHROMIUM = process.env.GRIDMAP_CHROMIUM || '/usr/bin/chromium';
const SHOTS = resolve(process.env.GRIDMAP_SCREENSHOTS || join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'out', 'screenshots'));
const VIEW = { width: 1600, height: 900 };
const WAIT = 90_000; // software WebGL on two cores is slow
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

async function call(method, path, body, status) {
  const headers = { Authorization: `Bearer ${ADMIN}`, Accept: 'application/json' };
  if (body) headers['Content-Type'] = 'application/json';
  const r = await fetch(BASE + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  if (r.status !== status) assert.fail(`${method} ${path}: ${r.status}, want ${status}: ${text}`);
  return text ? JSON.parse(text) : null;
}
const api = (path) => call('GET', path, null, 200);

/** The middle of a (Multi)Polygon's outer ring (mean of its vertices). */
function middle(f) {
  const ring = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0] : f.geometry.coordinates[0][0];
  return ring.slice(1).reduce((a, p) => [a[0] + p[0] / (ring.length - 1), a[1] + p[1] / (ring.length - 1)], [0, 0]);
}

async function settled(page) {
  await page.waitForFunction(async () => {
    await window.gridmap.settled();
    const m = window.gridmap.map;
    return m.loaded() && m.areTilesLoaded() && !m.isMoving();
  }, null, { timeout: WAIT, polling: 250 });
}

/** Another origin (127.0.0.1 on another port), recording what reaches it:
 * a TileJSON, empty tiles, a JSON document; CORS open to every header, so
 * that a request carrying Authorization would be made and seen. */
async function elsewhere() {
  const seen = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    const port = server.address().port;
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', '*, Authorization');
    if (req.method === 'OPTIONS') { res.writeHead(204); res.end(); return; }
    if (req.url.startsWith('/tiles.json')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ tilejson: '3.0.0', tiles: [`http://127.0.0.1:${port}/t/{z}/{x}/{y}.pbf`], minzoom: 0, maxzoom: 14, vector_layers: [{ id: 'x', fields: {} }] }));
      return;
    }
    if (req.url.startsWith('/t/')) { res.writeHead(204); res.end(); return; }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${server.address().port}`, seen, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

test('the wall map signs in on a server without public reads', { timeout: 600_000 }, async (t) => {
  assert.ok(BASE, 'GRIDMAP_URL is not set: it names the gridmap server to test (api/signin_browser_test.go sets it)');
  assert.ok(ADMIN && VIEWER && VIEWER_NAME, 'GRIDMAP_TOKEN, GRIDMAP_VIEWER_TOKEN and GRIDMAP_VIEWER_NAME must be set');
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: run \`make browser-deps\` (Debian's chromium) or set GRIDMAP_CHROMIUM`);
  // The server really wants a credential.
  assert.equal((await fetch(`${BASE}/styles/wall.json`)).status, 401);

  const other = await elsewhere();
  const profile = mkdtempSync(join(tmpdir(), 'gridmap-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: VIEW, deviceScaleFactor: 1, locale: 'zh-CN', timezoneId: 'Asia/Shanghai',
  });
  t.after(async () => { await ctx.close(); rmSync(profile, { recursive: true, force: true }); await other.close(); });
  const page = ctx.pages()[0] || (await ctx.newPage());
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // Chromium logs every refused request ("Failed to load resource: … 401"): those are counted below.
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console error: ${m.text()}`); });
  // Every request of the browser (the page's, MapLibre's workers' too), with every header.
  const requests = [];
  ctx.on('request', async (r) => {
    const entry = { at: Date.now(), url: r.url(), method: r.method(), type: r.resourceType(), headers: {} };
    requests.push(entry);
    try { entry.headers = await r.allHeaders(); } catch { /* gone */ }
  });
  const responses = [];
  ctx.on('response', (r) => responses.push({ at: Date.now(), url: r.url(), status: r.status() }));
  const isData = (url) => url.startsWith(BASE) && /^\/(v1|tiles|styles)\//.test(new URL(url).pathname);
  mkdirSync(SHOTS, { recursive: true });
  const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`) });
  const visible = (sel) => page.waitForSelector(sel, { state: 'visible', timeout: WAIT });

  await t.test('without a credential: the sign-in, no map data, and only a couple of refusals', async () => {
    await page.goto(`${BASE}/`, { waitUntil: 'load' });
    await visible('#signin');
    assert.equal(await page.getAttribute('#signin-token', 'type'), 'password');
    assert.equal(await page.getAttribute('#signin-token', 'name'), null, 'the token field must have no name (never a form field in a URL)');
    assert.ok((await page.textContent('#signin-why')).includes('需要登录'));
    assert.equal(await page.isVisible('#account'), false);
    // Nothing more is asked while nobody signs in.
    await new Promise((r) => setTimeout(r, 3000));
    const data = responses.filter((r) => isData(r.url));
    assert.ok(data.length >= 1 && data.every((r) => r.status === 401), `map data without a credential: ${JSON.stringify(data)}`);
    assert.ok(data.length <= 3, `the page asked ${data.length} times without a credential: ${data.map((r) => r.url).join(' ')}`);
    assert.equal(await page.evaluate(() => Boolean(window.gridmap.map)), false, 'the map started without a credential');
    assert.deepEqual(await page.evaluate(() => window.gridmap.who()), { needed: true, signedIn: false, actor: '', signingIn: true });
  });

  await t.test('a wrong token is refused with the server\'s reason', async () => {
    const wrong = `gm_${'A'.repeat(43)}`; // well-formed, never issued
    await page.fill('#signin-token', wrong);
    await page.click('#signin-submit');
    await visible('#signin-error');
    await page.waitForFunction(() => document.getElementById('signin-error').dataset.reason === 'unknown', null, { timeout: WAIT });
    const text = await page.textContent('#signin-error');
    assert.ok(text.includes('令牌无效') && text.includes('unknown'), text);
    assert.ok(!text.includes(wrong), 'the refusal echoes the token');
    assert.ok(await page.isVisible('#signin'));
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token was kept');
    await shot('signin-1-refused');
    // A malformed one too.
    await page.fill('#signin-token', 'not-a-token');
    await page.click('#signin-submit');
    await page.waitForFunction(() => document.getElementById('signin-error').dataset.reason === 'malformed', null, { timeout: WAIT });
  });

  let signedInAt = 0;
  await t.test('the right token: the map loads, who is signed in shows', async () => {
    const started = Date.now();
    await page.fill('#signin-token', VIEWER);
    await page.click('#signin-submit');
    signedInAt = Date.now();
    await page.waitForSelector('#signin', { state: 'hidden', timeout: WAIT });
    await page.waitForFunction(() => window.gridmap.map && window.gridmap.ready.then(() => true), null, { timeout: WAIT });
    await settled(page);
    t.diagnostic(`signed in and settled in ${Date.now() - started} ms`);
    const districts = await page.evaluate(() => window.gridmap.map.queryRenderedFeatures().filter((f) => f.sourceLayer === 'district').length);
    assert.ok(districts > 0, 'no districts rendered after signing in');
    await page.waitForFunction(() => document.getElementById('panel').dataset.state === 'ready', null, { timeout: WAIT });
    assert.ok(Number((await page.textContent('#total')).replace(/\D/g, '')) >= 0);
    await visible('#account');
    assert.equal(await page.textContent('#account-actor'), `token:${VIEWER_NAME}`);
    assert.ok(await page.isVisible('#signout'));
    const stored = await page.evaluate(() => ({ session: Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k)), local: localStorage.length }));
    assert.deepEqual(stored, { session: [VIEWER], local: 0 }, 'the token is kept in sessionStorage only');
    await shot('signin-2-signed-in');
  });

  await t.test('the event stream is read with fetch() and the token: a reported event shows live', async () => {
    await page.waitForFunction(() => window.gridmap.events().connected, null, { timeout: WAIT });
    assert.equal(await page.evaluate(() => window.gridmap.events().transport), 'fetch');
    let at = null;
    for (const g of (await api('/v1/units?level=grid&geometry=simplified&limit=40')).features) {
      const p = middle(g);
      if ((await api(`/v1/locate?lon=${p[0]}&lat=${p[1]}`)).grid) { at = p; break; }
    }
    assert.ok(at, 'no grid middle lies in a grid');
    const created = await call('POST', '/v1/events', { class: '0102', lon: at[0], lat: at[1], source: 'grid_worker', description: '浏览器测试：登录后实时事件', reporter: 'signin test' }, 201);
    const code = created.properties.code;
    const started = Date.now();
    await page.waitForFunction((c) => window.gridmap.events().live.includes(c), code, { timeout: 30_000, polling: 100 });
    t.diagnostic(`event ${code} reached the page in ${Date.now() - started} ms`);
    const streams = requests.filter((r) => r.url.startsWith(`${BASE}/v1/events/stream`));
    assert.ok(streams.length >= 1 && streams.every((r) => r.type === 'fetch'), `stream requests ${JSON.stringify(streams.map((r) => [r.type, r.url]))}`);
    assert.ok(streams.every((r) => r.headers.authorization === `Bearer ${VIEWER}`), 'the stream was asked for without the token');
    await page.waitForSelector(`#ticker li[data-code="${code}"]`, { timeout: 30_000 });
  });

  await t.test('the token goes with every request to the server, to no other origin, and into no URL', async () => {
    // The page's JSON helper and MapLibre (a TileJSON and its tiles), asked for another origin.
    const got = await page.evaluate(async (o) => {
      const { getJSON } = await import('/static/dom.js');
      const doc = await getJSON(`${o}/doc.json`);
      const map = window.gridmap.map;
      map.addSource('elsewhere', { type: 'vector', url: `${o}/tiles.json` });
      map.addLayer({ id: 'elsewhere', type: 'line', source: 'elsewhere', 'source-layer': 'x' });
      return doc;
    }, other.origin);
    assert.deepEqual(got, { ok: true });
    const deadline = Date.now() + WAIT;
    while (!other.seen.some((r) => r.url.startsWith('/t/')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.ok(other.seen.some((r) => r.url.startsWith('/tiles.json')) && other.seen.some((r) => r.url.startsWith('/t/')), `the other origin saw ${JSON.stringify(other.seen.map((r) => r.url))}`);
    for (const r of other.seen) {
      assert.equal(r.headers.authorization, undefined, `${r.method} ${r.url} to another origin carried Authorization`);
      assert.ok(!(r.headers['access-control-request-headers'] || '').toLowerCase().includes('authorization'), `${r.method} ${r.url}: a preflight for Authorization`);
    }
    const elsewhereSeen = requests.filter((r) => r.url.startsWith(other.origin));
    assert.ok(elsewhereSeen.length > 0);
    assert.ok(elsewhereSeen.every((r) => !r.headers.authorization), 'the browser sent Authorization to another origin');
    await page.evaluate(() => { window.gridmap.map.removeLayer('elsewhere'); window.gridmap.map.removeSource('elsewhere'); });

    // Every map data request since the sign-in carried it (tiles from MapLibre's workers too).
    const after = requests.filter((r) => r.at >= signedInAt && isData(r.url));
    const tiles = after.filter((r) => /\/tiles\/[^/]+\/\d+\/\d+\/\d+/.test(r.url));
    assert.ok(tiles.length > 0, 'no tiles fetched after signing in');
    const bare = after.filter((r) => r.headers.authorization !== `Bearer ${VIEWER}`);
    assert.deepEqual(bare.map((r) => r.url), [], 'requests to the server without the token');
    // Nowhere in a URL.
    assert.ok(!page.url().includes(VIEWER), page.url());
    const inUrl = requests.filter((r) => r.url.includes(VIEWER) || decodeURIComponent(r.url).includes(VIEWER));
    assert.deepEqual(inUrl.map((r) => r.url), [], 'the token in a URL');
  });

  await t.test('a revoked token brings the sign-in back with the reason', async () => {
    await call('DELETE', `/v1/tokens/${encodeURIComponent(VIEWER_NAME)}`, null, 200);
    const started = Date.now();
    // The page's next request: drill down to a district (its unit, statistics and tiles).
    const district = (await api('/v1/units?level=district&geometry=none')).features[0].properties.code;
    await page.evaluate((c) => { window.gridmap.select(c); }, district);
    await visible('#signin');
    await page.waitForFunction(() => document.getElementById('signin-error').dataset.reason === 'revoked', null, { timeout: WAIT });
    t.diagnostic(`sign-in back ${Date.now() - started} ms after the revocation`);
    assert.ok((await page.textContent('#signin-error')).includes('令牌已被撤销'));
    await shot('signin-3-revoked');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'the revoked token is still kept');
    assert.equal(await page.isVisible('#account'), false);
    // No storm of refusals afterwards.
    const before = responses.filter((r) => r.status === 401).length;
    await new Promise((r) => setTimeout(r, 3000));
    const more = responses.filter((r) => r.status === 401).slice(before);
    assert.ok(more.length <= 4, `the page went on asking after the sign-in showed: ${more.map((r) => r.url).join(' ')}`);
  });

  await t.test('no page errors', () => {
    assert.deepEqual(problems, []);
  });
});
