// Events live (一张图): the server's event stream (/v1/events/stream,
// Server-Sent Events; EventSource resumes with Last-Event-ID by itself;
// with a credential, which EventSource cannot send, FetchEventSource reads
// it with fetch() and resumes the same way, sse.js)
// drawn at once from the page's own GeoJSON source gm-live (a new event
// pulses for 10 s), the events tiles refreshed at most every 5 s while
// changes arrive (so the counts follow), the ticker of the latest events,
// today's figures of the selected unit, and an event's card on a click.
// Events turn overdue at their deadline by the global state `now` (Unix
// seconds, every 30 s).

import { authHeaders, refused, token } from './auth.js';
import { $, el, getJSON, nowSec, num, toast, unixOf } from './dom.js';
import { EMPTY } from './map.js';
import { onPositions } from './field.js';
import { FetchEventSource } from './sse.js';

export const LIVE_RECENT_S = 30 * 60; // below the events' zoom, live points show this long after their last change
const LIVE_MAX = 5000; // live events kept (the oldest changes go first; the tiles have them)
const TILE_REFRESH_MS = 5000; // events tiles are fetched again at most this often while changes arrive
const NOW = ['to-number', ['global-state', 'now'], 0];

/** Open (a status in open) and past its deadline (Unix seconds) at the global state `now`. */
function overdueExpr(open) {
  return ['all', ['match', ['get', 'status'], open, true, false],
    ['>', ['to-number', ['get', 'deadline'], 0], 0], ['<', ['to-number', ['get', 'deadline'], 0], NOW]];
}

const hms = (tz) => new Intl.DateTimeFormat('zh-CN', { timeZone: tz, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const dayOf = (tz, d) => new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
const today = (tz) => dayOf(tz, new Date());
const shortTime = (tz) => new Intl.DateTimeFormat('zh-CN', { timeZone: tz, month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false });

/** The live layers (under the veil outside the selection, like the tiles'
 * events), the city's time zone, the clock of overdue and the event card. */
export function addLiveLayers(app) {
  const { map, maplibregl, state, scale, evMinZoom, palette, statuses } = app;
  getJSON('/v1/calendar').then((c) => { if (c && c.timezone) state.cityTZ = c.timezone; }).catch(() => { /* the browser's zone */ });

  const overdue = overdueExpr(statuses.open);
  const RECENT = ['>', ['to-number', ['get', 'at'], 0], ['-', NOW, LIVE_RECENT_S]];
  // Below the events' zoom (where the tiles draw counts) only the recent changes show.
  const byZoom = (v) => ['step', ['zoom'], ['case', RECENT, v, 0], evMinZoom, v];
  map.addSource('gm-live', { type: 'geojson', data: EMPTY });
  map.addLayer({
    id: 'gm-live-halo', type: 'circle', source: 'gm-live',
    paint: {
      'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 15 * scale, evMinZoom, 19 * scale, 16, 27 * scale, 19, 37 * scale],
      'circle-color': palette.overdue, 'circle-blur': 0.7,
      'circle-opacity': byZoom(['case', overdue, 0.65, 0]),
    },
  }, 'gm-mask');
  map.addLayer({
    id: 'gm-live', type: 'circle', source: 'gm-live',
    paint: {
      'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 7 * scale, evMinZoom, 10 * scale, 16, 15 * scale, 19, 21 * scale],
      'circle-color': ['match', ['get', 'status'], ...statuses.all.flatMap((st) => [st, palette.pal[st]]), '#e6edf3'],
      // A white rim tells a change seen live; red when overdue.
      'circle-stroke-color': ['case', overdue, palette.overdue, '#ffffff'],
      'circle-stroke-width': ['case', overdue, 4 * scale, 2 * scale],
      'circle-opacity': byZoom(1),
      'circle-stroke-opacity': byZoom(1),
    },
  }, 'gm-mask');
  // The clock of overdue: every 30 s (the tiles' overdue flags are as of
  // their rendering; they expire within a minute anyway).
  setInterval(() => map.setGlobalStateProperty('now', nowSec()), 30_000);
  app.popup = new maplibregl.Popup({ closeButton: true, maxWidth: 'none', className: 'ev-popup', offset: 14 * scale });
}

function drawLive(app) {
  const { state } = app;
  if (state.liveTimer) return;
  state.liveTimer = setTimeout(() => {
    state.liveTimer = 0;
    app.map.getSource('gm-live').setData({
      type: 'FeatureCollection',
      features: [...state.live.values()].filter((f) => Number.isFinite(f.lon) && Number.isFinite(f.lat))
        .map((f) => ({ type: 'Feature', properties: { ...f }, geometry: { type: 'Point', coordinates: [f.lon, f.lat] } })),
    });
  }, 30);
}

// A ring on a new event for 10 s, a short flash on a move.
function pulse(app, f, fresh) {
  const { pulses } = app.state;
  const old = pulses.get(f.code);
  if (old) { clearTimeout(old.timer); old.marker.remove(); pulses.delete(f.code); }
  if (pulses.size >= 40) {
    const [k, p] = pulses.entries().next().value;
    clearTimeout(p.timer); p.marker.remove(); pulses.delete(k);
  }
  const node = el('div', { class: `pulse ${fresh ? 'fresh' : 'moved'}`, style: `--c:${app.palette.pal[f.status] || '#fff'}`, 'data-code': f.code }, el('i'), el('i'), el('i'));
  const marker = new app.maplibregl.Marker({ element: node }).setLngLat([f.lon, f.lat]).addTo(app.map);
  const timer = setTimeout(() => { marker.remove(); pulses.delete(f.code); }, fresh ? 10_000 : 4_000);
  pulses.set(f.code, { marker, timer });
}

// Events tiles again, at most every TILE_REFRESH_MS while changes arrive,
// and not before the server has dropped the tiles the change touched.
// Not while some of them are loading either: MapLibre answers a refresh
// of a loading tile by parsing what that load fetched, which may be from
// before the change (so wait for the loads to end, for up to 10 s).
function refreshEventTiles(app) {
  refreshSourceTiles(app, app.eventSource, 'events');
}

// refreshSourceTiles refreshes a source's tiles at most every
// TILE_REFRESH_MS (timers and last refresh kept per key), as above. A
// change that arrives while a refresh is on its way gets one more after
// it: the stream can tell of a change an instant before the server has
// dropped the tiles it touches, and the refresh on its way may be that
// instant.
function refreshSourceTiles(app, source, key) {
  const { map, state } = app;
  state.refresh = state.refresh || {};
  const r = (state.refresh[key] = state.refresh[key] || { timer: 0, last: 0, again: false });
  if (!source) return;
  if (r.timer) {
    r.again = true;
    return;
  }
  let tries = 0;
  const run = () => {
    if (!map.isSourceLoaded(source) && ++tries < 20) {
      r.timer = setTimeout(run, 500);
      return;
    }
    r.timer = 0;
    r.last = Date.now();
    map.refreshTiles(source);
    if (r.again) {
      r.again = false;
      refreshSourceTiles(app, source, key);
    }
  };
  r.timer = setTimeout(run, Math.max(1200, r.last + TILE_REFRESH_MS - Date.now()));
}

// A unit was reshaped, split, merged, created or retired somewhere: the
// server has dropped the units tiles of the area; draw them again (no
// reload), as the event tiles after a move, and the panel and its labels
// (names, codes and counts may have changed), once a burst is over.
function onUnitChange(app, ev) {
  const { state } = app;
  const { stream } = state;
  stream.received++;
  stream.lastSeq = Math.max(stream.lastSeq, Number(ev.lastEventId) || 0);
  stream.unitChanges = (stream.unitChanges || 0) + 1;
  refreshSourceTiles(app, app.unitSource, 'units');
  clearTimeout(state.unitRedraw);
  state.unitRedraw = setTimeout(() => {
    state.cityCache = null;
    if (state.sel) app.select(state.sel.code, { fly: false, animate: false });
    else app.home({ fly: false, animate: false });
  }, 1000);
}

function onStreamMessage(app, ev) {
  const { state } = app;
  const { stream, live, feed } = state;
  let m;
  try { m = JSON.parse(ev.data); } catch { return; }
  if (!m || !m.code) return;
  stream.received++;
  stream.lastSeq = Math.max(stream.lastSeq, Number(ev.lastEventId) || Number(m.seq) || 0);
  const prev = live.get(m.code);
  if (prev && prev.version > (m.version || 0)) return; // an older state than the one drawn
  const f = {
    code: m.code, class: m.class, class_name: m.class_name || m.class, status: m.status, from: m.from || '',
    grid_code: m.grid_code || '', lon: Number(m.lon), lat: Number(m.lat), version: m.version || 0,
    reported_at: unixOf(m.reported_at), deadline: unixOf(m.deadline), at: unixOf(m.at) || nowSec(),
  };
  live.delete(f.code);
  live.set(f.code, f);
  if (live.size > LIVE_MAX) live.delete(live.keys().next().value);
  drawLive(app);
  // Rings on new events; moves flash only close in (the points are drawn there).
  const fresh = m.type === 'created' || ev.type === 'created';
  if (Number.isFinite(f.lon) && Number.isFinite(f.lat) && (fresh || app.map.getZoom() >= app.evMinZoom - 1)) pulse(app, f, fresh);
  feed.unshift({ ...f, type: ev.type, actor: m.actor || '' });
  if (feed.length > 200) feed.length = 200;
  drawTicker(app);
  refreshEventTiles(app);
  refreshEventStats(app);
}

/** Follows the event stream, from the start or after resumeFrom (a seq):
 * with EventSource on a server with public reads, with fetch() and the
 * page's credential when it has one. */
export function connect(app, resumeFrom) {
  const { state } = app;
  const { stream } = state;
  let es;
  if (token()) {
    const url = '/v1/events/stream?positions=true';
    es = new FetchEventSource(url, { headers: () => authHeaders(url), lastEventId: resumeFrom || '', refusedDelay: 10_000 });
    stream.transport = 'fetch';
    // A 401 (the token revoked or expired) brings the sign-in; a 403 stops
    // the stream (the page reloads after a sign-in, with a new one).
    es.addEventListener('refused', (ev) => {
      if (ev.status === 401) refused(ev.problem || { status: 401 });
      else toast(`事件流被拒绝: ${(ev.problem && ev.problem.detail) || ev.status}`);
    });
    es.addEventListener('error', () => { stream.connected = false; drawConnection(app); });
  } else {
    const url = resumeFrom ? `/v1/events/stream?positions=true&last_event_id=${resumeFrom}` : '/v1/events/stream?positions=true';
    es = new EventSource(url);
    stream.transport = 'eventsource';
    es.addEventListener('error', () => {
      stream.connected = false;
      drawConnection(app);
      // EventSource retries by itself (with Last-Event-ID) unless the
      // server refused the stream; then start again in a while.
      if (es.readyState === EventSource.CLOSED && stream.source === es) setTimeout(() => { if (stream.source === es) connect(app, stream.lastSeq); }, 10_000);
    });
  }
  stream.source = es;
  es.addEventListener('open', () => { stream.connected = true; drawConnection(app); });
  es.addEventListener('created', (ev) => onStreamMessage(app, ev));
  es.addEventListener('transition', (ev) => onStreamMessage(app, ev));
  es.addEventListener('unit', (ev) => onUnitChange(app, ev));
  es.addEventListener('positions', (ev) => onPositions(app, ev));
  // The server could not replay what was missed: start over from the
  // tiles and the lists, and follow from here.
  es.addEventListener('reset', () => {
    state.live.clear();
    drawLive(app);
    if (app.eventSource) app.map.refreshTiles(app.eventSource);
    if (app.unitSource) app.map.refreshTiles(app.unitSource);
    loadTicker(app);
    refreshEventStats(app, true);
  });
}

export function drawConnection(app) {
  const { stream } = app.state;
  const c = $('live-conn');
  $('live').dataset.state = stream.connected ? 'live' : 'connecting';
  c.textContent = stream.connected ? '实时' : '重连中…';
  c.title = stream.connected ? `已连接事件流 · 收到 ${stream.received} 条` : '事件流断开，正在重连';
}

// ---- ticker ----

/** A grid's name when known; else '' and, once, a look-up that redraws the ticker. */
function gridName(app, code) {
  const { names, gridNames } = app.state;
  const known = names.get(code);
  if (known) return known.name;
  if (!gridNames.has(code) && /^\d{14,15}$/.test(code)) {
    gridNames.set(code, null);
    app.unitInfo(code).then(() => drawTicker(app)).catch(() => { /* the code will do */ });
  }
  return '';
}

async function loadTicker(app) {
  const { state } = app;
  const my = ++state.tickerToken;
  const unit = state.scope.code ? `&unit=${encodeURIComponent(state.scope.code)}` : '';
  try {
    const fc = await getJSON(`/v1/events?limit=12${unit}`);
    if (my !== state.tickerToken) return;
    state.recentList = fc.features.map((f) => ({
      code: f.properties.code, class_name: f.properties.class_name, status: f.properties.status, grid_code: f.properties.grid_code,
      at: unixOf(f.properties.reported_at), deadline: unixOf(f.properties.deadline), type: 'list',
    }));
    drawTicker(app);
  } catch (err) {
    if (my === state.tickerToken) toast(`无法加载事件列表: ${err.message}`);
  }
}

function drawTicker(app) {
  const { state, statuses, palette } = app;
  const seen = new Set();
  const rows = [...state.feed.filter((f) => f.grid_code.startsWith(state.scope.code)), ...state.recentList]
    .sort((a, b) => b.at - a.at)
    .filter((f) => (seen.has(f.code) ? false : seen.add(f.code)))
    .slice(0, 12);
  const tz = state.cityTZ;
  const fmt = hms(tz);
  const earlier = shortTime(tz);
  const day = today(tz);
  const when = (d) => (dayOf(tz, d) === day ? fmt.format(d) : earlier.format(d));
  const now = nowSec();
  $('ticker').replaceChildren(...rows.map((f) => {
    const overdue = statuses.open.includes(f.status) && f.deadline > 0 && f.deadline < now;
    const st = el('span', { class: 'st', style: `--c:${palette.pal[f.status] || '#e6edf3'}` }, statuses.zh[f.status] || f.status);
    return el('li', { 'data-code': f.code, 'data-status': f.status, class: `${f.type === 'created' ? 'new' : f.type === 'transition' ? 'moved' : ''}${overdue ? ' overdue' : ''}`,
      title: `${f.code} ${f.grid_code}`, onclick: () => f.grid_code && app.select(f.grid_code) },
    el('time', {}, when(new Date(f.at * 1000))),
    el('span', { class: 'cls' }, f.class_name || ''),
    el('span', { class: 'sts' }, f.type === 'transition' && f.from ? el('span', { class: 'from' }, `${statuses.zh[f.from] || f.from}→`) : null, st,
      overdue ? el('span', { class: 'od' }, '超期') : null),
    el('span', { class: 'gd' }, gridName(app, f.grid_code) || f.grid_code));
  }));
  if (!rows.length) $('ticker').replaceChildren(el('li', { class: 'empty' }, '暂无事件'));
}

// ---- today's figures of the selection ----

/** Loads today's figures again: now, or at most every TILE_REFRESH_MS. */
function refreshEventStats(app, now = false) {
  const { state } = app;
  if (state.statsTimer) { if (!now) return; clearTimeout(state.statsTimer); }
  state.statsTimer = setTimeout(() => { state.statsTimer = 0; state.lastStats = Date.now(); loadEventStats(app); },
    now ? 0 : Math.max(1000, state.lastStats + TILE_REFRESH_MS - Date.now()));
}

async function loadEventStats(app) {
  const { state, statuses, palette } = app;
  const my = ++state.statsToken;
  const { code, name } = state.scope;
  const day = today(state.cityTZ);
  try {
    const codes = code ? [code] : (await app.cityOverview()).children.map((c) => c.code);
    const get = (from) => Promise.all(codes.map((c) => getJSON(`/v1/stats/${encodeURIComponent(c)}?by=status${from ? `&from=${from}` : ''}`)));
    const [todays, all] = await Promise.all([get(day), get('')]);
    if (my !== state.statsToken) return;
    const by = Object.fromEntries(statuses.all.map((st) => [st, 0]));
    let total = 0;
    let overdueToday = 0;
    for (const s of todays) {
      total += s.unit.all.total;
      overdueToday += s.unit.all.overdue;
      for (const [st, c] of Object.entries(s.unit.by || {})) by[st] = (by[st] || 0) + c.total;
    }
    let open = 0;
    let overdue = 0;
    for (const s of all) {
      overdue += s.unit.all.overdue;
      for (const st of statuses.open) open += (s.unit.by && s.unit.by[st] ? s.unit.by[st].total : 0);
    }
    $('ev-scope').textContent = name;
    $('ev-day').textContent = day;
    $('ev-today').textContent = num.format(total);
    $('ev-today-overdue').textContent = overdueToday ? `其中超期 ${num.format(overdueToday)}` : '';
    $('ev-open').textContent = num.format(open);
    $('ev-overdue').textContent = num.format(overdue);
    const max = Math.max(1, ...Object.values(by));
    $('ev-status').replaceChildren(...statuses.all.map((st) => el('li', { 'data-status': st, style: `--c:${palette.pal[st]}` },
      el('span', { class: 'dot' }), el('span', { class: 'nm' }, statuses.zh[st]),
      el('span', { class: 'bar-track' }, el('span', { class: 'bar-fill', style: `width:${(100 * by[st] / max).toFixed(1)}%` })),
      el('span', { class: 'n' }, num.format(by[st])))));
    Object.assign($('live').dataset, { code, day, today: String(total), open: String(open), overdue: String(overdue) });
  } catch (err) {
    if (my === state.statsToken) toast(`无法加载事件统计: ${err.message}`);
  }
}

/** The live panel follows the selection: its ticker and figures. */
export function eventPanel(app, code, name) {
  const { state } = app;
  const changed = state.scope.code !== code;
  state.scope = { code, name };
  if (changed) { state.recentList = []; drawTicker(app); }
  loadTicker(app);
  refreshEventStats(app, true);
}

/** An event's card, on a click on its point. */
export async function showEvent(app, code, lngLat) {
  const { statuses, palette } = app;
  try {
    const f = await getJSON(`/v1/events/${encodeURIComponent(code)}`);
    const p = f.properties;
    const when = shortTime(app.state.cityTZ);
    const zh = (st) => statuses.zh[st] || st;
    const log = (p.log || []).slice(-4).reverse();
    app.popup.setLngLat(f.geometry.coordinates || lngLat).setDOMContent(el('div', { class: 'ev-card', 'data-code': p.code },
      el('div', { class: 'hd' }, el('b', {}, p.class_name), el('span', { class: 'st', style: `--c:${palette.pal[p.status]}` }, zh(p.status)),
        p.overdue ? el('span', { class: 'od' }, '超期') : null),
      el('div', { class: 'cd' }, p.code),
      p.description ? el('p', {}, p.description) : null,
      el('dl', {},
        el('dt', {}, '网格'), el('dd', {}, (app.state.names.get(p.grid_code) || {}).name || p.grid_code),
        el('dt', {}, '部门'), el('dd', {}, p.department_name || p.department || '—'),
        el('dt', {}, '上报'), el('dd', {}, `${when.format(new Date(p.reported_at))} · ${p.reporter || p.source || ''}`),
        el('dt', {}, '时限'), el('dd', { class: p.overdue ? 'late' : '' }, when.format(new Date(p.deadline)))),
      log.length ? el('ol', { class: 'log' }, ...log.map((l) => el('li', {},
        el('time', {}, when.format(new Date(l.at))), ` ${l.from ? `${zh(l.from)}→` : ''}${zh(l.to)} · ${l.actor}`))) : null,
    )).addTo(app.map);
  } catch (err) {
    toast(`无法加载事件 ${code}: ${err.message}`);
  }
}
