// gridmap wall map: MapLibre GL JS on this server's vector tiles and wall
// style (/styles/wall.json), drill-down district → street → community →
// grid by click, and an info panel with the selected unit's chain and its
// object statistics (/v1/stats/{code}). Everything comes from this server:
// no CDN, no glyph server (MapLibre 6 draws every label with the browser's
// fonts when the style has no glyphs URL).
//
// Events live (一张图): the style draws events from the events tiles (counts
// per unit below z13, points by status from there); the page follows the
// server's event stream and draws what it brings at once (live.js). The
// event states, their names and colours come from the style's metadata.
//
// This module starts the page and owns the selection (select, home, up);
// map.js draws the map, panel.js the panel and legend, live.js the events;
// geometry.js, units.js and style.js are pure functions. What the page
// keeps while it runs is one object, app.state (state.js).
//
// On a server without public reads the page signs in first (auth.js): a
// stored token is checked, a 401 brings the sign-in panel, and the map
// starts once a token is accepted; every request then carries it.
//
// For tests and operators: window.gridmap = {map, ready, select(code),
// home(), up(), settled(), state(), events(), who()}; ready resolves once
// the first view has rendered with its tiles loaded; events() says what
// the stream brought: {connected, received, lastSeq, transport, live:
// [codes], status: {code: status}}; field() the workers' positions and
// today's coverage (field.js); who() says who is signed in.

import { afterSignIn, blocked, check, start as startSession, whenSignedIn, who, wireSignIn } from './auth.js';
import { $, getJSON, nowSec, toast } from './dom.js';
import { addFieldLayers, fieldState, loadCoverage, showWorker } from './field.js';
import { addLiveLayers, connect, drawConnection, eventPanel, LIVE_RECENT_S, showEvent } from './live.js';
import { addOverlays, clearSelection, createMap, drawSelection, labelsOf } from './map.js';
import { clock, hud, legend, render } from './panel.js';
import { newState } from './state.js';
import { adaptStyle, eventPalette, eventStatuses, sourceOf, wallScale } from './style.js';
import { LEVELS, chainCodes, childLevel, levelOf } from './units.js';

const LEVEL_COLOR = { district: '#4cc3ff', street: '#7ee0c3', community: '#f5c26b', grid: '#8a9bb0' };

/** Remembers a unit's name and level by its code. */
function remember(app, u) {
  if (u && u.code) app.state.names.set(u.code, { code: u.code, name: u.name, level: u.level || levelOf(u.code) });
}

async function unitInfo(app, code) {
  const { names } = app.state;
  if (!names.has(code)) {
    const f = await getJSON(`/v1/units/${encodeURIComponent(code)}?geometry=none`);
    remember(app, f.properties);
  }
  return names.get(code);
}

/** Selects a unit: the map draws it, the panel shows it, the live panel follows. */
async function select(app, code, { animate = true, fly = true } = {}) {
  if (!code) return home(app, { animate, fly });
  const { state } = app;
  const my = ++state.token;
  if (fly) $('panel').dataset.state = 'loading';
  const level = levelOf(code);
  try {
    const [unit, stats] = await Promise.all([
      getJSON(`/v1/units/${encodeURIComponent(code)}?geometry=simplified`),
      getJSON(`/v1/stats/${encodeURIComponent(code)}?by=class`),
    ]);
    remember(app, unit.properties);
    for (const c of stats.children) remember(app, { ...c, level: childLevel(level) });
    const chain = await Promise.all(chainCodes(code).map((c) => unitInfo(app, c)));
    let objects = null;
    let labelled = [unit];
    if (level === 'grid') objects = await getJSON(`/v1/objects?within=${encodeURIComponent(code)}&limit=12`);
    else labelled = (await getJSON(`/v1/units/${encodeURIComponent(code)}/children?geometry=simplified&limit=10000`)).features;
    const totals = Object.fromEntries([[code, stats.unit.total], ...stats.children.map((c) => [c.code, c.total])]);
    const labels = level === 'grid' ? labelsOf(labelled, totals, '', true) : labelsOf(labelled, totals, unit.properties.name);
    if (my !== state.token) return;
    state.sel = { code, level, name: unit.properties.name, geometry: unit.geometry };
    drawSelection(app, { code, level, geometry: unit.geometry, labels, fly, animate });
    render(app, { level, code, name: unit.properties.name, chain, stats, objects });
    eventPanel(app, code, unit.properties.name);
    state.shown = my;
    if (location.hash !== `#${code}`) history.replaceState(null, '', `#${code}`);
  } catch (err) {
    if (my === state.token) { toast(`无法加载单元 ${code}: ${err.message}`); $('panel').dataset.state = 'error'; }
  }
}

/** The city's districts with their statistics and labels, kept 30 s. */
async function cityOverview(app) {
  const { state } = app;
  if (state.cityCache && Date.now() - state.cityCache.at < 30_000) return state.cityCache;
  const fc = await getJSON('/v1/units?level=district&geometry=simplified&limit=10000');
  const districts = fc.features.map((f) => f.properties);
  districts.forEach((d) => remember(app, d));
  const stats = await Promise.all(districts.map((d) => getJSON(`/v1/stats/${d.code}?by=class`)));
  const byClass = {};
  let total = 0;
  const children = stats.map((s) => {
    total += s.unit.total;
    for (const [k, v] of Object.entries(s.unit.by_class)) {
      byClass[k] ||= { name: v.name, count: 0 };
      byClass[k].count += v.count;
    }
    return { code: s.unit.code, name: s.unit.name, total: s.unit.total, by_class: s.unit.by_class };
  });
  state.cityCache = { at: Date.now(), unit: { total, by_class: byClass }, children, labels: labelsOf(fc.features, Object.fromEntries(children.map((c) => [c.code, c.total]))) };
  return state.cityCache;
}

/** The whole city: no selection, the districts in the panel. */
async function home(app, { animate = true, fly = true } = {}) {
  const { state, map } = app;
  const my = ++state.token;
  state.sel = null;
  if (fly) $('panel').dataset.state = 'loading';
  clearSelection(app, { fly, animate });
  if (location.hash) history.replaceState(null, '', location.pathname);
  try {
    const stats = await cityOverview(app);
    if (my !== state.token) return;
    map.getSource('gm-labels').setData(stats.labels);
    render(app, { level: null, code: '', name: '全市', chain: [], stats, objects: null });
    eventPanel(app, '', '全市');
    state.shown = my;
  } catch (err) {
    if (my === state.token) toast(`无法加载全市统计: ${err.message}`);
  }
}

/** One level up from the selection (the city from a district). */
function up(app) {
  const { sel } = app.state;
  if (!sel) return Promise.resolve();
  const codes = chainCodes(sel.code);
  return codes.length > 1 ? select(app, codes[codes.length - 2]) : home(app);
}

/** A click on an event point opens its card; elsewhere it drills down one
 * level (or to the sibling clicked). */
async function onClick(app, e) {
  const { map, state, scale, palette, evMinZoom } = app;
  if (e.originalEvent && e.originalEvent.target !== map.getCanvas()) return;
  const r = 8 * scale + 4;
  // A worker's dot opens their card (field.js), nothing else.
  if (map.getLayer('gm-workers') && map.queryRenderedFeatures(e.point, { layers: ['gm-workers'] }).length) return;
  const layers = ['gm-live', palette.layer].filter((id) => id && map.getLayer(id));
  const hit = map.queryRenderedFeatures([[e.point.x - r, e.point.y - r], [e.point.x + r, e.point.y + r]], { layers })
    .find((f) => map.getZoom() >= evMinZoom || (f.source === 'gm-live' && f.properties.at > nowSec() - LIVE_RECENT_S));
  if (hit) {
    showEvent(app, String(hit.properties.code), hit.geometry.coordinates);
    return;
  }
  try {
    const here = await getJSON(`/v1/locate?lon=${e.lngLat.lng.toFixed(7)}&lat=${e.lngLat.lat.toFixed(7)}`);
    const at = LEVELS.map((lv) => here[lv]);
    at.forEach((u, i) => remember(app, u && { ...u, level: LEVELS[i] }));
    const { sel } = state;
    const depth = sel ? LEVELS.indexOf(sel.level) : -1;
    let target;
    if (depth >= 0 && at[depth] && at[depth].code === sel.code) target = at[Math.min(depth + 1, 3)] || at[depth]; // one level down
    else target = at[Math.max(depth, 0)] || at.find(Boolean); // a sibling (or a district from the city view)
    if (target && (!sel || target.code !== sel.code)) await select(app, target.code);
  } catch (err) {
    toast(`定位失败: ${err.message}`);
  }
}

/** Mouse, buttons, keys and the URL's hash. */
function wire(app) {
  const { map, state } = app;
  map.on('click', (e) => onClick(app, e));
  map.on('mousemove', (e) => {
    const hit = map.queryRenderedFeatures(e.point).some((f) => f.source === app.unitSource);
    map.getCanvas().style.cursor = hit ? 'pointer' : '';
  });
  map.on('move', () => hud(app));
  map.on('error', (e) => {
    // A tile or TileJSON refused for the credential: /v1/me says why, and the sign-in shows.
    if (e.error && e.error.status === 401) { check(); return; }
    toast(`地图错误: ${e.error && e.error.message ? e.error.message : e}`);
  });

  $('back').onclick = () => app.up();
  $('home').onclick = () => app.home();
  const fsButton = $('fullscreen');
  fsButton.onclick = () => (document.fullscreenElement ? document.exitFullscreen() : document.documentElement.requestFullscreen()).catch((err) => toast(`全屏不可用: ${err.message}`));
  document.addEventListener('fullscreenchange', () => { fsButton.querySelector('span').textContent = document.fullscreenElement ? '退出全屏' : '全屏'; });
  if (!document.fullscreenEnabled) fsButton.disabled = true;
  addEventListener('keydown', (e) => {
    if (e.target.closest && e.target.closest('input, textarea')) return;
    if (e.key === 'Backspace' || e.key === 'Escape') app.up();
    else if (e.key === 'Home') app.home();
    else if (e.key === 'f' || e.key === 'F') fsButton.click();
  });
  addEventListener('hashchange', () => {
    const code = decodeURIComponent(location.hash.slice(1));
    if (code !== (state.sel ? state.sel.code : '')) app.select(code);
  });
}

async function main() {
  let maplibregl;
  try {
    maplibregl = await import('/static/maplibre-gl.mjs');
  } catch (err) {
    toast(`MapLibre GL JS 未加载 (could not load /static/maplibre-gl.mjs: the binary was built without \`make web\`?) ${err}`);
    throw err;
  }

  // Sign in when the server wants a credential: a stored one is checked;
  // without one, the first read says whether one is needed (a 401 shows
  // the sign-in, and the reads are made again once someone has signed in).
  wireSignIn();
  await startSession();
  const [style, unitsTJ] = await whenSignedIn(() => Promise.all([getJSON('/styles/wall.json'), getJSON('/tiles/units.json')]));
  // From here on a sign-in (after a revocation, say) starts the page again.
  afterSignIn(() => location.reload());

  const scale = wallScale(innerWidth, innerHeight);
  adaptStyle(style, scale, nowSec());
  const statuses = eventStatuses(style);
  const palette = eventPalette(style, statuses);
  const eventsLayer = style.layers.find((l) => l.id === palette.layer);
  const root = document.documentElement.style;
  for (const st of statuses.all) root.setProperty(`--st-${st}`, palette.pal[st]);
  root.setProperty('--overdue', palette.overdue);
  const zooms = {};
  for (const vl of unitsTJ.vector_layers) zooms[vl.id] = [vl.minzoom, vl.maxzoom];
  const colors = {};
  for (const lv of LEVELS) {
    const line = style.layers.find((l) => l['source-layer'] === lv && l.type === 'line');
    colors[lv] = (line && typeof line.paint['line-color'] === 'string') ? line.paint['line-color'] : LEVEL_COLOR[lv];
    root.setProperty(`--${lv}`, colors[lv]);
  }

  // What stays fixed once the map is up, the state, and the selection's verbs.
  const app = {
    maplibregl, style, scale, statuses, palette, zooms, colors,
    eventSource: sourceOf(style, 'events'),
    unitSource: sourceOf(style, 'units') || 'units',
    evMinZoom: eventsLayer && eventsLayer.minzoom !== undefined ? eventsLayer.minzoom : 13,
    cityBounds: [[unitsTJ.bounds[0], unitsTJ.bounds[1]], [unitsTJ.bounds[2], unitsTJ.bounds[3]]],
    state: newState(),
    map: null,
    popup: null,
    select: (code, opts) => select(app, code, opts),
    home: (opts) => home(app, opts),
    up: () => up(app),
    unitInfo: (code) => unitInfo(app, code),
    cityOverview: () => cityOverview(app),
  };
  const map = (app.map = createMap(app));
  const settled = () => new Promise((resolve) => { map.once('idle', resolve); map.triggerRepaint(); });

  await new Promise((resolve) => map.once('load', resolve));
  addOverlays(app);
  addLiveLayers(app);
  addFieldLayers(app);
  wire(app);

  legend(app);
  hud(app);
  clock();
  drawConnection(app);
  connect(app, 0);
  setInterval(clock, 1000);
  // The panel and labels follow the data: every minute the shown unit's
  // statistics are fetched again (the camera stays), unless a selection
  // is on its way or nobody can see the page.
  const { state } = app;
  setInterval(() => {
    if (state.shown !== state.token || document.hidden || blocked()) return;
    if (state.sel) app.select(state.sel.code, { fly: false });
    else app.home({ fly: false });
  }, 60_000);
  const initial = decodeURIComponent(location.hash.slice(1));
  await (initial ? app.select(initial, { animate: false }) : app.home({ animate: false }));
  await settled();
  return {
    map, select: app.select, home: app.home, up: app.up, settled,
    state: () => ({ sel: state.sel && { code: state.sel.code, level: state.sel.level, name: state.sel.name }, zooms }),
    events: () => ({
      connected: state.stream.connected, received: state.stream.received, lastSeq: state.stream.lastSeq, transport: state.stream.transport,
      unitChanges: state.stream.unitChanges,
      live: [...state.live.keys()], status: Object.fromEntries([...state.live].map(([k, f]) => [k, f.status])),
    }),
    field: () => fieldState(app),
    loadCoverage: () => loadCoverage(app),
    showWorker: (id, lngLat) => showWorker(app, id, lngLat),
  };
}

const ready = main();
window.gridmap = { ready, who };
ready.then((api) => Object.assign(window.gridmap, api)).catch((err) => { window.gridmap.error = String(err); toast(`地图未能启动: ${err.message || err}`); });
