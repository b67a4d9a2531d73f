// Field work on the wall (issue 16): workers' live positions from the
// event stream (`positions` messages of /v1/events/stream?positions=true,
// at most one per server interval), today's patrol coverage per grid as a
// fill over the grids of the units tiles (/v1/patrols/coverage, fetched
// again every minute; the tiles' grid features carry their code, so the
// share is a paint expression, no geometry is sent), and a worker's card
// on a click: their grids, open tasks (/v1/people/{id}/tasks) and today's
// patrol (/v1/patrols?worker=).

import { el, getJSON, num, toast } from './dom.js';
import { EMPTY } from './map.js';

const COVERAGE_MS = 60_000;
const STALE_S = 15 * 60; // a position older than this fades out

/** The coverage fill (under the selection's mask) and the workers' dots. */
export function addFieldLayers(app) {
  const { map, scale, unitSource, state } = app;
  state.workers = new Map(); // worker id → {worker, t, lon, lat, grid}
  state.coverage = { date: '', walked: 0, shares: {} };
  map.addLayer({
    id: 'gm-coverage', type: 'fill', source: unitSource, 'source-layer': 'grid',
    paint: { 'fill-color': '#2ee6a8', 'fill-opacity': 0 },
  }, 'gm-mask');
  map.addSource('gm-workers', { type: 'geojson', data: EMPTY });
  map.addLayer({
    id: 'gm-workers', type: 'circle', source: 'gm-workers',
    paint: {
      'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 4 * scale, 14, 8 * scale, 18, 12 * scale],
      'circle-color': '#2ee6a8',
      'circle-stroke-color': '#04101c',
      'circle-stroke-width': 2 * scale,
      'circle-opacity': ['case', ['get', 'stale'], 0.35, 1],
    },
  });
  map.on('click', 'gm-workers', (e) => {
    const f = e.features && e.features[0];
    if (f) showWorker(app, f.properties.worker, e.lngLat);
  });
  map.on('mouseenter', 'gm-workers', () => { map.getCanvas().style.cursor = 'pointer'; });
  map.on('mouseleave', 'gm-workers', () => { map.getCanvas().style.cursor = ''; });
  loadCoverage(app);
  setInterval(() => { if (!document.hidden) loadCoverage(app); }, COVERAGE_MS);
  setInterval(() => drawWorkers(app), 30_000); // positions fade when no fix comes
}

/** Today's coverage of every grid as the fill's opacity: 0.12 for a grid
 * walked at all (a few per cent would not show), up to 0.62 covered whole. */
export async function loadCoverage(app) {
  try {
    const c = await getJSON('/v1/patrols/coverage');
    const shares = {};
    for (const g of c.grids) if (g.share > 0) shares[g.code] = g.share;
    app.state.coverage = { date: c.date, walked: c.walked, shares };
    const stops = Object.entries(shares).flatMap(([code, share]) => [code, Math.round((0.12 + 0.5 * share) * 1000) / 1000]);
    app.map.setPaintProperty('gm-coverage', 'fill-opacity',
      stops.length ? ['match', ['to-string', ['get', 'code']], ...stops, 0] : 0);
  } catch (err) {
    // A server without patrols (or a reader without the right) shows no fill.
    app.state.coverage.error = String(err.message || err);
  }
}

/** A `positions` message of the stream. */
export function onPositions(app, ev) {
  let m;
  try { m = JSON.parse(ev.data); } catch { return; }
  for (const p of m.positions || []) app.state.workers.set(p.worker, p);
  drawWorkers(app);
}

function drawWorkers(app) {
  const now = Date.now() / 1000;
  app.map.getSource('gm-workers').setData({
    type: 'FeatureCollection',
    features: [...app.state.workers.values()].map((p) => ({
      type: 'Feature',
      properties: { worker: p.worker, grid: p.grid || '', stale: now - Date.parse(p.t) / 1000 > STALE_S },
      geometry: { type: 'Point', coordinates: [p.lon, p.lat] },
    })),
  });
}

const pct = (v) => (v === null || v === undefined ? '—' : `${Math.round(v * 100)}%`);

/** The card of a worker: who, their grids, open tasks, today's patrol. */
export async function showWorker(app, id, lngLat) {
  try {
    const [person, tasks, day] = await Promise.all([
      getJSON(`/v1/people/${id}`),
      getJSON(`/v1/people/${id}/tasks`).catch(() => ({ tasks: [] })),
      getJSON(`/v1/patrols?worker=${id}`),
    ]);
    const open = tasks.tasks || [];
    const overdue = open.filter((t) => t.overdue).length;
    const names = (code) => (app.state.names.get(code) || {}).name || code;
    app.popup.setLngLat(lngLat).setDOMContent(el('div', { class: 'ev-card worker-card', 'data-worker': String(id) },
      el('div', { class: 'hd' }, el('b', {}, person.name), el('span', { class: 'st', style: '--c:#2ee6a8' }, '网格员')),
      el('dl', {},
        el('dt', {}, '网格'), el('dd', { class: 'grids' }, day.assigned.length ? day.assigned.map(names).join('、') : '未分配'),
        el('dt', {}, '待办'), el('dd', { class: overdue ? 'late tasks' : 'tasks' }, `${open.length} 件${overdue ? ` · 超期 ${overdue}` : ''}`),
        el('dt', {}, '巡查'), el('dd', { class: 'patrol' }, `今日 ${num.format(Math.round(day.length_m))} 米 · ${Math.round(day.seconds / 60)} 分钟`),
        el('dt', {}, '覆盖'), el('dd', { class: 'share' }, `责任网格 ${pct(day.assigned_share)}`)),
      open.length ? el('ol', { class: 'log' }, ...open.slice(0, 4).map((t) => el('li', {},
        `${t.overdue ? '⚠ ' : ''}${t.class_name || t.class} · ${t.event_code}`))) : null,
    )).addTo(app.map);
  } catch (err) {
    toast(`无法加载网格员 ${id}: ${err.message}`);
  }
}

/** What the page holds, for tests and operators. */
export function fieldState(app) {
  return {
    workers: [...app.state.workers.values()].map((p) => ({ worker: p.worker, lon: p.lon, lat: p.lat, grid: p.grid })),
    coverage: app.state.coverage,
  };
}
