// gridmap wall map: MapLibre GL JS on this server's vector tiles and wall
// style (/styles/wall.json), drill-down district → street → community →
// grid by click, and an info panel with the selected unit's chain and its
// object statistics (/v1/stats/{code}). Everything comes from this server:
// no CDN, no glyph server (MapLibre 6 draws every label with the browser's
// fonts when the style has no glyphs URL).
//
// Events live (一张图): the style draws events from the events tiles (counts
// per unit below z13, points by status from there); the page follows the
// server's event stream (/v1/events/stream, Server-Sent Events; EventSource
// resumes with Last-Event-ID by itself) and draws every event created or
// moved on since it loaded from its own GeoJSON source at once (a new one
// pulses for 10 s), refreshes the events tiles at most every 5 s while
// changes arrive (so the counts follow), turns events overdue at their
// deadline by the global state `now` (Unix seconds, every 30 s), and shows
// a ticker of the latest events with today's figures of the selected unit.
//
// For tests and operators: window.gridmap = {map, ready, select(code),
// home(), up(), settled(), state(), events()}; ready resolves once the
// first view has rendered with its tiles loaded; events() says what the
// stream brought: {connected, received, lastSeq, live: [codes], status:
// {code: status}}.

const LEVELS = ['district', 'street', 'community', 'grid'];
const LEVEL_ZH = { district: '区', street: '街道', community: '社区', grid: '网格' };
const LEVEL_COLOR = { district: '#4cc3ff', street: '#7ee0c3', community: '#f5c26b', grid: '#8a9bb0' };
const MAJOR_ZH = { '01': '公用设施', '02': '道路交通', '03': '市容环境', '04': '园林绿化', '05': '房屋土地', '06': '其他设施' };
// Map labels are drawn with these local fonts (bold: the first name says so).
const FONT_STACK = ['Noto Sans CJK SC Bold', 'Noto Sans CJK SC', 'Source Han Sans SC', 'Microsoft YaHei', 'PingFang SC', 'WenQuanYi Micro Hei'];
const SEL = ['to-string', ['global-state', 'sel']];
const CODE = ['to-string', ['get', 'code']];

// Events: the workflow's states, their names and the wall's colours (the
// style's own, read from its events layer, win).
const STATUSES = ['reported', 'registered', 'dispatched', 'handling', 'handled', 'verified', 'closed', 'rejected', 'returned'];
const STATUS_ZH = { reported: '上报', registered: '立案', dispatched: '派遣', handling: '处置中', handled: '已处置', verified: '已核查', closed: '结案', rejected: '不予立案', returned: '退回' };
const OPEN = ['reported', 'registered', 'dispatched', 'handling', 'returned']; // the deadline clock runs
const STATUS_COLOR = { reported: '#ff6a3d', registered: '#ffad1f', dispatched: '#ffe04a', handling: '#3d8bff', handled: '#22d3ee', verified: '#4ade80', closed: '#8b98a9', rejected: '#56606d', returned: '#e040fb' };
const OVERDUE_COLOR = '#ff2d47';
const NOW = ['to-number', ['global-state', 'now'], 0];
/** Open and past its deadline (Unix seconds) at the global state `now`. */
const OVERDUE = ['all', ['match', ['get', 'status'], OPEN, true, false],
  ['>', ['to-number', ['get', 'deadline'], 0], 0], ['<', ['to-number', ['get', 'deadline'], 0], NOW]];
const LIVE_RECENT_S = 30 * 60; // below the events' zoom, live points show this long after their last change
const LIVE_MAX = 5000; // live events kept (the oldest changes go first; the tiles have them)
const TILE_REFRESH_MS = 5000; // events tiles are fetched again at most this often while changes arrive
const nowSec = () => Math.floor(Date.now() / 1000);
const unixOf = (t) => (t ? Math.floor(Date.parse(t) / 1000) || 0 : 0);

const $ = (id) => document.getElementById(id);
const num = new Intl.NumberFormat('zh-CN');
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'style') e.style.cssText = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
};

/** The level a code names, by its length (6, 9, 12, then 14–15 digits). */
export function levelOf(code) {
  const n = code.length;
  return n <= 6 ? 'district' : n <= 9 ? 'street' : n <= 12 ? 'community' : 'grid';
}

/** The codes of a unit and its ancestors, district first. */
export function chainCodes(code) {
  const out = [];
  for (const n of [6, 9, 12]) if (code.length > n) out.push(code.slice(0, n));
  out.push(code);
  return out;
}

function childLevel(level) {
  return level ? LEVELS[Math.min(LEVELS.indexOf(level) + 1, LEVELS.length - 1)] : 'district';
}

async function getJSON(url, signal) {
  const r = await fetch(url, { signal, headers: { Accept: 'application/json' } });
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail || detail; } catch { /* not problem+json */ }
    throw new Error(`${url}: ${r.status} ${detail}`);
  }
  return r.json();
}

function toast(msg) {
  const t = $('toast');
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 8000);
  console.error(msg);
}

/** How much bigger than the style's 4K sizes to draw: 1 on a 3840×2160 wall. */
function wallScale() {
  return Math.min(2, Math.max(0.6, Math.min(innerWidth / 3840, innerHeight / 2160)));
}

/** Scales a number, or the outputs of a zoom/data interpolate or step. */
function scaleValue(v, s) {
  if (typeof v === 'number') return Math.round(v * s * 100) / 100;
  if (!Array.isArray(v)) return v;
  const outs = (rest) => rest.map((x, i) => (i % 2 ? scaleValue(x, s) : x));
  if (String(v[0]).startsWith('interpolate')) return [...v.slice(0, 3), ...outs(v.slice(3))];
  if (v[0] === 'step') return [v[0], v[1], scaleValue(v[2], s), ...outs(v.slice(3))];
  // case: conditions at odd places, outputs at even ones and last.
  if (v[0] === 'case') return v.map((x, i) => (i > 0 && (i % 2 === 0 || i === v.length - 1) ? scaleValue(x, s) : x));
  return v;
}

/** Fits the server's wall style to this screen: sizes scaled to the
 * viewport, labels in local CJK fonts, a global `sel` for the selection. */
function adaptStyle(style, s) {
  delete style.glyphs;
  style.state = { ...(style.state || {}), sel: { default: '' }, now: { default: nowSec() } };
  for (const l of style.layers) {
    const lay = (l.layout ||= {});
    const p = (l.paint ||= {});
    if (l.type === 'symbol') {
      lay['text-font'] = FONT_STACK;
      if (lay['text-size'] !== undefined) lay['text-size'] = scaleValue(lay['text-size'], s * 1.15);
      if (p['text-halo-width'] !== undefined) p['text-halo-width'] = scaleValue(p['text-halo-width'], s * 1.3);
      lay['text-padding'] = 4 * s;
    }
    for (const k of ['line-width', 'circle-radius', 'circle-stroke-width']) {
      // Single objects a little larger than the style has them: dots read from afar.
      if (p[k] !== undefined) p[k] = scaleValue(p[k], k === 'circle-radius' && l['source-layer'] === 'objects' ? s * 1.5 : s);
    }
  }
  return style;
}

/** A dark veil over everything but the given (Multi)Polygon. */
function maskOf(geometry) {
  const world = [[-180, -85], [180, -85], [180, 85], [-180, 85], [-180, -85]];
  const signedArea = (ring) => ring.reduce((a, p, i) => { const q = ring[(i + 1) % ring.length]; return a + p[0] * q[1] - q[0] * p[1]; }, 0);
  const polys = geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.coordinates;
  // Holes wind the other way round from the (counter-clockwise) world ring.
  const holes = polys.map((p) => (signedArea(p[0]) > 0 ? [...p[0]].reverse() : p[0]));
  return { type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [world, ...holes] } };
}

/** The status colours and the overdue colour of the style's events layers. */
function eventPalette(style) {
  const pal = { ...STATUS_COLOR };
  let overdue = OVERDUE_COLOR;
  const layer = style.layers.find((l) => l['source-layer'] === 'events' && l.type === 'circle' && Array.isArray(l.paint && l.paint['circle-color']) && l.paint['circle-color'][0] === 'match');
  if (layer) {
    const m = layer.paint['circle-color'];
    for (let i = 2; i + 1 < m.length; i += 2) if (typeof m[i] === 'string' && typeof m[i + 1] === 'string') pal[m[i]] = m[i + 1];
  }
  const halo = style.layers.find((l) => l['source-layer'] === 'events' && l.id !== (layer && layer.id) && l.paint && typeof l.paint['circle-color'] === 'string');
  if (halo) overdue = halo.paint['circle-color'];
  return { pal, overdue, layer: layer && layer.id };
}

function bboxOf(geometry) {
  let b = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === 'number') b = [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])];
    else c.forEach(walk);
  };
  walk(geometry.coordinates);
  return [[b[0], b[1]], [b[2], b[3]]];
}

const EMPTY = { type: 'FeatureCollection', features: [] };

function ringArea(ring) {
  let a = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) a += (ring[j][0] - ring[i][0]) * (ring[j][1] + ring[i][1]);
  return a / 2;
}

/** Signed distance from (x, y) to a polygon's boundary: > 0 inside. */
function polygonDistance(x, y, rings, kx) {
  let inside = false;
  let min = Infinity;
  for (const ring of rings) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const a = ring[i];
      const b = ring[j];
      if ((a[1] > y) !== (b[1] > y) && x < ((b[0] - a[0]) * (y - a[1])) / (b[1] - a[1]) + a[0]) inside = !inside;
      const dx = (b[0] - a[0]) * kx;
      const dy = b[1] - a[1];
      const len2 = dx * dx + dy * dy;
      const t = len2 ? Math.max(0, Math.min(1, (((x - a[0]) * kx) * dx + (y - a[1]) * dy) / len2)) : 0;
      const ex = (x - a[0]) * kx - t * dx;
      const ey = y - a[1] - t * dy;
      min = Math.min(min, ex * ex + ey * ey);
    }
  }
  return (inside ? 1 : -1) * Math.sqrt(min);
}

/** Where to put a unit's one label: the point of its largest part farthest
 * from the edges (a coarse pole of inaccessibility). */
export function labelPoint(geometry) {
  const polys = geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.coordinates;
  let best = polys[0];
  for (const p of polys) if (Math.abs(ringArea(p[0])) > Math.abs(ringArea(best[0]))) best = p;
  const [[minX, minY], [maxX, maxY]] = bboxOf({ coordinates: best });
  const kx = Math.cos(((minY + maxY) / 2) * Math.PI / 180);
  let w = maxX - minX;
  let h = maxY - minY;
  let cx = (minX + maxX) / 2;
  let cy = (minY + maxY) / 2;
  let cd = polygonDistance(cx, cy, best, kx);
  for (let iter = 0, x0 = minX, y0 = minY; iter < 5; iter++) {
    const n = 12;
    for (let i = 0; i <= n; i++) {
      for (let j = 0; j <= n; j++) {
        const x = x0 + (w * i) / n;
        const y = y0 + (h * j) / n;
        const d = polygonDistance(x, y, best, kx);
        if (d > cd) { cd = d; cx = x; cy = y; }
      }
    }
    w /= 3; h /= 3; x0 = cx - w / 2; y0 = cy - h / 2;
  }
  return [cx, cy];
}

/** One label point per unit, carrying its name (less the parent's name it
 * starts with: 第001网格 inside 东海社区) and its object total. */
function labelsOf(features, totals, parentName = '', self = false) {
  const short = (n) => (parentName && n.startsWith(parentName) && n.length > parentName.length ? n.slice(parentName.length) : n);
  return {
    type: 'FeatureCollection',
    features: features.filter((f) => f.geometry).map((f) => ({
      type: 'Feature',
      properties: { code: f.properties.code, name: short(f.properties.name), level: f.properties.level, self, total: num.format(totals[f.properties.code] || 0) },
      geometry: { type: 'Point', coordinates: labelPoint(f.geometry) },
    })),
  };
}

async function main() {
  let maplibregl;
  try {
    maplibregl = await import('/static/maplibre-gl.mjs');
  } catch (err) {
    toast(`MapLibre GL JS 未加载 (could not load /static/maplibre-gl.mjs: the binary was built without \`make web\`?) ${err}`);
    throw err;
  }

  const scale = wallScale();
  const [style, unitsTJ] = await Promise.all([getJSON('/styles/wall.json'), getJSON('/tiles/units.json')]);
  adaptStyle(style, scale);
  const palette = eventPalette(style);
  const eventSource = Object.keys(style.sources).find((k) => String(style.sources[k].url || '').includes('/tiles/events'));
  const eventsLayer = style.layers.find((l) => l.id === palette.layer);
  const evMinZoom = eventsLayer && eventsLayer.minzoom !== undefined ? eventsLayer.minzoom : 13;
  for (const st of STATUSES) document.documentElement.style.setProperty(`--st-${st}`, palette.pal[st]);
  document.documentElement.style.setProperty('--overdue', palette.overdue);
  const unitSource = Object.keys(style.sources).find((k) => String(style.sources[k].url || '').includes('/tiles/units')) || 'units';
  const zooms = {};
  for (const vl of unitsTJ.vector_layers) zooms[vl.id] = [vl.minzoom, vl.maxzoom];
  const colors = {};
  for (const lv of LEVELS) {
    const line = style.layers.find((l) => l['source-layer'] === lv && l.type === 'line');
    colors[lv] = (line && typeof line.paint['line-color'] === 'string') ? line.paint['line-color'] : LEVEL_COLOR[lv];
    document.documentElement.style.setProperty(`--${lv}`, colors[lv]);
  }

  const padding = () => {
    const bar = document.querySelector('.bar').getBoundingClientRect();
    const panel = $('panel').getBoundingClientRect();
    const live = $('live').getBoundingClientRect();
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize);
    return { top: bar.bottom + 2 * rem, bottom: 3 * rem, left: (live.right || rem) + 2 * rem, right: innerWidth - panel.left + 2 * rem };
  };
  const cityBounds = [[unitsTJ.bounds[0], unitsTJ.bounds[1]], [unitsTJ.bounds[2], unitsTJ.bounds[3]]];

  const map = new maplibregl.Map({
    container: 'map',
    style,
    bounds: cityBounds,
    fitBoundsOptions: { padding: padding(), maxZoom: zooms.district ? zooms.district[1] + 0.9 : 11 },
    attributionControl: false,
    dragRotate: false,
    pitchWithRotate: false,
    maxPitch: 0,
    fadeDuration: 0,
    // Events tiles change under the same URL (and may be kept for up to a
    // minute): revalidate them on every load, so a refresh after a change
    // sees it (an unchanged tile is a 304).
    transformRequest: (url, type) => (type === 'Tile' && url.includes('/tiles/events/') ? { url, cache: 'no-cache' } : undefined),
  });
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
  map.addControl(new maplibregl.ScaleControl({ maxWidth: 200 * scale + 80 }), 'bottom-right');

  const settled = () => new Promise((resolve) => { map.once('idle', resolve); map.triggerRepaint(); });

  // ---- selection state -------------------------------------------------
  const names = new Map(); // code → {code, name, level}
  let sel = null; // {code, name, level, geometry} or null for the whole city
  let token = 0; // the latest selection asked for
  let shown = 0; // the latest selection drawn
  let featureState = null;

  const remember = (u) => { if (u && u.code) names.set(u.code, { code: u.code, name: u.name, level: u.level || levelOf(u.code) }); };

  async function unitInfo(code) {
    if (!names.has(code)) {
      const f = await getJSON(`/v1/units/${encodeURIComponent(code)}?geometry=none`);
      remember(f.properties);
    }
    return names.get(code);
  }

  function flyTo(bounds, level, animate) {
    const next = childLevel(level);
    const [zmin, zmax] = zooms[next] || [0, 22];
    const cam = map.cameraForBounds(bounds, { padding: padding() });
    if (!cam) return;
    const zoom = Math.min(Math.max(cam.zoom, zmin + 0.2), zmax + 0.9);
    map.flyTo({ center: cam.center, zoom, duration: animate ? 1600 : 0, essential: true });
  }

  function setSelection(code, level) {
    map.setGlobalStateProperty('sel', code || '');
    if (featureState) map.removeFeatureState(featureState, 'selected');
    featureState = null;
    if (code && /^\d+$/.test(code)) {
      featureState = { source: unitSource, sourceLayer: level, id: Number(code) };
      map.setFeatureState(featureState, { selected: true });
    }
  }

  async function select(code, { animate = true, fly = true } = {}) {
    if (!code) return home({ animate, fly });
    const my = ++token;
    if (fly) $('panel').dataset.state = 'loading';
    const level = levelOf(code);
    try {
      const [unit, stats] = await Promise.all([
        getJSON(`/v1/units/${encodeURIComponent(code)}?geometry=simplified`),
        getJSON(`/v1/stats/${encodeURIComponent(code)}?by=class`),
      ]);
      remember(unit.properties);
      for (const c of stats.children) remember({ ...c, level: childLevel(level) });
      const chain = await Promise.all(chainCodes(code).map(unitInfo));
      let objects = null;
      let labelled = [unit];
      if (level === 'grid') objects = await getJSON(`/v1/objects?within=${encodeURIComponent(code)}&limit=12`);
      else labelled = (await getJSON(`/v1/units/${encodeURIComponent(code)}/children?geometry=simplified&limit=10000`)).features;
      const totals = Object.fromEntries([[code, stats.unit.total], ...stats.children.map((c) => [c.code, c.total])]);
      const labels = level === 'grid' ? labelsOf(labelled, totals, '', true) : labelsOf(labelled, totals, unit.properties.name);
      if (my !== token) return;
      sel = { code, level, name: unit.properties.name, geometry: unit.geometry };
      setSelection(code, level);
      map.getSource('gm-selection').setData(unit.geometry ? { type: 'Feature', properties: { level }, geometry: unit.geometry } : EMPTY);
      map.getSource('gm-mask').setData(unit.geometry ? maskOf(unit.geometry) : EMPTY);
      map.getSource('gm-labels').setData(labels);
      if (unit.geometry && fly) flyTo(bboxOf(unit.geometry), level, animate);
      render({ level, code, name: unit.properties.name, chain, stats, objects });
      eventPanel(code, unit.properties.name);
      shown = my;
      if (location.hash !== `#${code}`) history.replaceState(null, '', `#${code}`);
    } catch (err) {
      if (my === token) { toast(`无法加载单元 ${code}: ${err.message}`); $('panel').dataset.state = 'error'; }
    }
  }

  let cityCache = null;
  async function cityOverview() {
    if (cityCache && Date.now() - cityCache.at < 30_000) return cityCache;
    const fc = await getJSON('/v1/units?level=district&geometry=simplified&limit=10000');
    const districts = fc.features.map((f) => f.properties);
    districts.forEach(remember);
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
    cityCache = { at: Date.now(), unit: { total, by_class: byClass }, children, labels: labelsOf(fc.features, Object.fromEntries(children.map((c) => [c.code, c.total]))) };
    return cityCache;
  }

  async function home({ animate = true, fly = true } = {}) {
    const my = ++token;
    sel = null;
    setSelection('', null);
    map.getSource('gm-selection').setData(EMPTY);
    map.getSource('gm-mask').setData(EMPTY);
    if (fly) {
      $('panel').dataset.state = 'loading';
      map.getSource('gm-labels').setData(EMPTY);
      flyTo(cityBounds, null, animate);
    }
    if (location.hash) history.replaceState(null, '', location.pathname);
    try {
      const stats = await cityOverview();
      if (my !== token) return;
      map.getSource('gm-labels').setData(stats.labels);
      render({ level: null, code: '', name: '全市', chain: [], stats, objects: null });
      eventPanel('', '全市');
      shown = my;
    } catch (err) {
      if (my === token) toast(`无法加载全市统计: ${err.message}`);
    }
  }

  function up() {
    if (!sel) return Promise.resolve();
    const codes = chainCodes(sel.code);
    return codes.length > 1 ? select(codes[codes.length - 2]) : home();
  }

  // ---- panel -------------------------------------------------------------
  function classBars(byClass, total, n) {
    const rows = Object.entries(byClass || {}).map(([k, v]) => ({ code: k, ...v })).sort((a, b) => b.count - a.count || a.code.localeCompare(b.code));
    const max = rows.length ? rows[0].count : 1;
    const ul = $('classes');
    ul.replaceChildren(...rows.slice(0, n).map((r) => el('li', { title: `${r.code} ${r.name}` },
      el('span', { class: 'nm' }, r.name),
      el('span', { class: 'bar-track' }, el('span', { class: 'bar-fill', style: `display:block;width:${(100 * r.count / max).toFixed(1)}%` })),
      el('span', { class: 'n' }, num.format(r.count)))));
    if (!rows.length) ul.replaceChildren(el('li', { class: 'empty' }, el('span', { class: 'nm' }, total ? '' : '无部件')));
  }

  function topClasses(byClass, n) {
    return Object.values(byClass || {}).sort((a, b) => b.count - a.count).slice(0, n).map((c) => `${c.name} ${num.format(c.count)}`).join(' · ');
  }

  function render({ level, code, name, chain, stats, objects }) {
    const badge = $('unit-level');
    badge.textContent = level ? LEVEL_ZH[level] : '全市';
    badge.className = `badge ${level || ''}`;
    $('unit-name').textContent = name;
    $('unit-code').textContent = code || `${stats.children.length} 个区`;

    const ol = $('chain');
    const items = LEVELS.map((lv, i) => {
      const u = chain[i];
      if (!u) return el('li', { class: `empty ${lv}` }, el('span', { class: 'lv' }, LEVEL_ZH[lv]), el('span', { class: 'nm' }, '—'));
      return el('li', { class: `${lv}${u.code === code ? ' current' : ''}`, 'data-code': u.code, onclick: () => select(u.code) },
        el('span', { class: 'lv' }, LEVEL_ZH[lv]), el('span', { class: 'nm' }, u.name), el('span', { class: 'cd' }, u.code));
    });
    ol.replaceChildren(...items);

    $('total').textContent = num.format(stats.unit.total);
    classBars(stats.unit.by_class, stats.unit.total, 8);

    const kidLevel = childLevel(level);
    const tbody = $('children').tBodies[0];
    if (level === 'grid') {
      $('children-title').replaceChildren('网格内部件 ', el('small', {}, `objects (${objects ? objects.features.length : 0}${objects && objects.links && objects.links.length ? '+' : ''})`));
      tbody.replaceChildren(...(objects ? objects.features : []).map((f) => el('tr', {},
        el('td', {}, el('div', { class: 'nm' }, f.properties.class_name || f.properties.class), el('div', { class: 'cd' }, f.properties.code)),
        el('td', { class: 'n' }, MAJOR_ZH[String(f.properties.class).slice(0, 2)] || ''))));
    } else {
      const kids = [...stats.children].sort((a, b) => b.total - a.total || a.code.localeCompare(b.code));
      $('children-title').replaceChildren(`下级${LEVEL_ZH[kidLevel]} `, el('small', {}, `${kids.length} 个 · 按部件数`));
      const shown = kids.slice(0, 14);
      tbody.replaceChildren(...shown.map((c) => el('tr', { 'data-code': c.code, onclick: () => select(c.code) },
        el('td', {}, el('div', { class: 'nm' }, c.name), el('div', { class: 'cd' }, c.code), el('div', { class: 'top' }, topClasses(c.by_class, 2))),
        el('td', { class: 'n' }, num.format(c.total)))));
      if (kids.length > shown.length) tbody.append(el('tr', { class: 'more' }, el('td', { colSpan: 2 }, `另 ${kids.length - shown.length} 个`)));
    }

    const crumbs = [el('a', { href: '#', class: level ? '' : 'current', onclick: (e) => { e.preventDefault(); home(); } }, '全市')];
    for (const u of chain) {
      crumbs.push(el('span', { class: 'sep' }, '›'));
      crumbs.push(el('a', { href: `#${u.code}`, class: u.code === code ? 'current' : '', onclick: (e) => { e.preventDefault(); select(u.code); } }, u.name));
    }
    $('crumbs').replaceChildren(...crumbs);
    $('back').disabled = !level;
    $('panel').dataset.state = 'ready';
    $('panel').dataset.code = code;
    document.title = `${name} · 网格化管理指挥中心`;
  }

  // ---- legend and read-out ---------------------------------------------------
  function legend() {
    const objLayer = style.layers.find((l) => l['source-layer'] === 'objects' && l.type === 'circle');
    const match = objLayer && objLayer.paint['circle-color'];
    const majors = [];
    if (Array.isArray(match) && match[0] === 'match') {
      for (let i = 2; i + 1 < match.length; i += 2) majors.push([match[i], match[i + 1]]);
    }
    $('legend').replaceChildren(
      el('h3', {}, '单元层级'),
      ...LEVELS.map((lv) => el('div', { class: 'row', 'data-level': lv },
        el('span', { class: 'sw', style: `border:0.2rem solid ${colors[lv]};background:${colors[lv]}22` }),
        el('span', {}, LEVEL_ZH[lv]), el('span', { class: 'z' }, `z${zooms[lv][0]}–${zooms[lv][1]}`))),
      majors.length ? el('h3', { style: 'margin-top:.5rem' }, '部件大类') : null,
      majors.length ? el('div', { class: 'cols' }, ...majors.map(([k, c]) => el('div', { class: 'row' },
        el('span', { class: 'dot', style: `background:${c}` }), el('span', {}, MAJOR_ZH[k] || k)))) : null,
      el('h3', { style: 'margin-top:.5rem' }, '事件状态 ', el('span', { class: 'z' }, `点 z${evMinZoom}+`)),
      el('div', { class: 'cols cols3 events' }, ...STATUSES.map((st) => el('div', { class: 'row', 'data-status': st, title: st },
        el('span', { class: 'dot', style: `background:${palette.pal[st]}` }), el('span', {}, STATUS_ZH[st])))),
      el('div', { class: 'cols events-key' },
        el('div', { class: 'row', 'data-key': 'overdue' }, el('span', { class: 'dot overdue' }), el('span', {}, '超期')),
        el('div', { class: 'row', 'data-key': 'counts' }, el('span', { class: 'bubble' }), el('span', {}, '在办/超期数'))),
    );
  }
  function hud() {
    const z = map.getZoom();
    const shown = LEVELS.filter((lv) => z >= zooms[lv][0] && z < zooms[lv][1] + 1);
    for (const row of document.querySelectorAll('.legend .row[data-level]')) row.classList.toggle('hidden-level', !shown.includes(row.dataset.level));
    const c = map.getCenter();
    $('hud').textContent = `z ${z.toFixed(1)} · ${shown.map((lv) => LEVEL_ZH[lv]).join(' / ')} · ${c.lng.toFixed(4)}, ${c.lat.toFixed(4)}`;
  }
  function clock() {
    $('clock').textContent = new Date().toLocaleString('zh-CN', { hour12: false, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  // ---- wiring ------------------------------------------------------------
  await new Promise((resolve) => map.once('load', resolve));
  const firstSymbol = map.getStyle().layers.find((l) => l.type === 'symbol');
  const before = firstSymbol ? firstSymbol.id : undefined;
  map.addSource('gm-mask', { type: 'geojson', data: EMPTY });
  map.addSource('gm-selection', { type: 'geojson', data: EMPTY });
  map.addLayer({ id: 'gm-mask', type: 'fill', source: 'gm-mask', paint: { 'fill-color': '#02070d', 'fill-opacity': 0.62 } }, before);
  const childWidth = { district: 5, street: 4, community: 3, grid: 2.5 };
  for (const lv of LEVELS) {
    // The next level's units (districts in the city view), drawn brighter.
    map.addLayer({
      id: `gm-children-${lv}`, type: 'line', source: unitSource, 'source-layer': lv,
      filter: ['case', ['==', SEL, ''], ['==', ['get', 'level'], 'district'], ['==', ['to-string', ['get', 'parent_code']], SEL]],
      layout: { 'line-join': 'round' },
      paint: { 'line-color': colors[lv], 'line-width': childWidth[lv] * scale + 0.5, 'line-opacity': 0.95 },
    }, before);
  }
  map.addLayer({ id: 'gm-selection-glow', type: 'line', source: 'gm-selection',
    paint: { 'line-color': ['match', ['get', 'level'], ...LEVELS.flatMap((lv) => [lv, colors[lv]]), '#ffffff'], 'line-width': 22 * scale + 4, 'line-blur': 14 * scale + 2, 'line-opacity': 0.7 } }, before);
  map.addLayer({ id: 'gm-selection-line', type: 'line', source: 'gm-selection',
    paint: { 'line-color': '#ffffff', 'line-width': 4.5 * scale + 1 } }, before);
  // Inside the selection only its children are labelled (once each, by
  // gm-labels); outside it the style's own labels name the units of the
  // selection's level and above, faded; count labels fade outside it.
  const unrelated = ['all', ['!=', SEL, ''],
    ['!=', ['slice', CODE, 0, ['length', SEL]], SEL],
    ['!=', ['slice', SEL, 0, ['length', CODE]], CODE]];
  for (const l of map.getStyle().layers) {
    if (l.type !== 'symbol') continue;
    if (LEVELS.includes(l['source-layer'])) {
      const context = ['all', unrelated, ['<=', ['length', CODE], ['length', SEL]]];
      map.setFilter(l.id, l.filter ? ['all', l.filter, context] : context);
      map.setPaintProperty(l.id, 'text-opacity', 0.45);
    } else if (l['source-layer'] === 'object_counts' || l['source-layer'] === 'event_counts') {
      map.setPaintProperty(l.id, 'text-opacity', ['case', unrelated, 0.3, 1]);
    }
  }
  const labelSize = { district: 44, street: 38, community: 32, grid: 28 };
  map.addSource('gm-labels', { type: 'geojson', data: EMPTY });
  map.addLayer({
    id: 'gm-labels', type: 'symbol', source: 'gm-labels',
    layout: {
      'text-field': ['format', ['get', 'name'], {}, '\n', {}, ['get', 'total'], { 'font-scale': 0.72, 'text-color': '#ffc27a' }],
      'text-font': FONT_STACK,
      'text-size': ['case', ['get', 'self'], 44 * scale, ['match', ['get', 'level'], ...LEVELS.flatMap((lv) => [lv, labelSize[lv] * scale]), 30 * scale]],
      'text-max-width': 7,
      'text-line-height': 1.25,
      'text-padding': 6 * scale,
    },
    paint: { 'text-color': '#ffffff', 'text-halo-color': '#04101c', 'text-halo-width': 3.5 * scale, 'text-halo-blur': 1 },
  });
  // Close in, the objects of the selected grid carry their class names.
  const objectSource = Object.keys(style.sources).find((k) => String(style.sources[k].url || '').includes('/tiles/objects'));
  if (objectSource) {
    map.addLayer({
      id: 'gm-object-labels', type: 'symbol', source: objectSource, 'source-layer': 'objects', minzoom: 16,
      filter: ['all', ['!=', SEL, ''], ['==', ['slice', ['to-string', ['get', 'grid_code']], 0, ['length', SEL]], SEL]],
      layout: { 'text-field': ['get', 'class_name'], 'text-font': FONT_STACK, 'text-size': 22 * scale, 'text-anchor': 'left', 'text-offset': [0.8, 0], 'text-optional': true },
      paint: { 'text-color': '#dfe9f3', 'text-halo-color': '#04101c', 'text-halo-width': 2.5 * scale },
    }, 'gm-labels');
  }

  // ---- events live ---------------------------------------------------------
  // Events created or moved on since the page loaded, by code: drawn from
  // gm-live over the tiles' (which may be up to a refresh behind).
  const live = new Map();
  const feed = []; // the latest stream messages, newest first
  let recentList = []; // the newest events of the selection, from /v1/events
  const stream = { connected: false, received: 0, lastSeq: 0, source: null };
  let scope = { code: '', name: '全市' };
  let cityTZ = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const hms = () => new Intl.DateTimeFormat('zh-CN', { timeZone: cityTZ, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  const dayOf = (d) => new Intl.DateTimeFormat('en-CA', { timeZone: cityTZ, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
  const today = () => dayOf(new Date());
  getJSON('/v1/calendar').then((c) => { if (c && c.timezone) cityTZ = c.timezone; }).catch(() => { /* the browser's zone */ });

  const RECENT = ['>', ['to-number', ['get', 'at'], 0], ['-', NOW, LIVE_RECENT_S]];
  // Below the events' zoom (where the tiles draw counts) only the recent changes show.
  const byZoom = (v) => ['step', ['zoom'], ['case', RECENT, v, 0], evMinZoom, v];
  map.addSource('gm-live', { type: 'geojson', data: EMPTY });
  // Under the veil outside the selection, like the tiles' events.
  map.addLayer({
    id: 'gm-live-halo', type: 'circle', source: 'gm-live',
    paint: {
      'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 15 * scale, evMinZoom, 19 * scale, 16, 27 * scale, 19, 37 * scale],
      'circle-color': palette.overdue, 'circle-blur': 0.7,
      'circle-opacity': byZoom(['case', OVERDUE, 0.65, 0]),
    },
  }, 'gm-mask');
  map.addLayer({
    id: 'gm-live', type: 'circle', source: 'gm-live',
    paint: {
      'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 7 * scale, evMinZoom, 10 * scale, 16, 15 * scale, 19, 21 * scale],
      'circle-color': ['match', ['get', 'status'], ...STATUSES.flatMap((st) => [st, palette.pal[st]]), '#e6edf3'],
      // A white rim tells a change seen live; red when overdue.
      'circle-stroke-color': ['case', OVERDUE, palette.overdue, '#ffffff'],
      'circle-stroke-width': ['case', OVERDUE, 4 * scale, 2 * scale],
      'circle-opacity': byZoom(1),
      'circle-stroke-opacity': byZoom(1),
    },
  }, 'gm-mask');
  // The clock of overdue: every 30 s (the tiles' overdue flags are as of
  // their rendering; they expire within a minute anyway).
  setInterval(() => map.setGlobalStateProperty('now', nowSec()), 30_000);

  let liveTimer = 0;
  function drawLive() {
    if (liveTimer) return;
    liveTimer = setTimeout(() => {
      liveTimer = 0;
      map.getSource('gm-live').setData({
        type: 'FeatureCollection',
        features: [...live.values()].filter((f) => Number.isFinite(f.lon) && Number.isFinite(f.lat))
          .map((f) => ({ type: 'Feature', properties: { ...f }, geometry: { type: 'Point', coordinates: [f.lon, f.lat] } })),
      });
    }, 30);
  }

  // A ring on a new event for 10 s, a short flash on a move.
  const pulses = new Map();
  function pulse(f, fresh) {
    const old = pulses.get(f.code);
    if (old) { clearTimeout(old.timer); old.marker.remove(); pulses.delete(f.code); }
    if (pulses.size >= 40) {
      const [k, p] = pulses.entries().next().value;
      clearTimeout(p.timer); p.marker.remove(); pulses.delete(k);
    }
    const node = el('div', { class: `pulse ${fresh ? 'fresh' : 'moved'}`, style: `--c:${palette.pal[f.status] || '#fff'}`, 'data-code': f.code }, el('i'), el('i'), el('i'));
    const marker = new maplibregl.Marker({ element: node }).setLngLat([f.lon, f.lat]).addTo(map);
    const timer = setTimeout(() => { marker.remove(); pulses.delete(f.code); }, fresh ? 10_000 : 4_000);
    pulses.set(f.code, { marker, timer });
  }

  // Events tiles again, at most every TILE_REFRESH_MS while changes arrive,
  // and not before the server has dropped the tiles the change touched.
  // Not while some of them are loading either: MapLibre answers a refresh
  // of a loading tile by parsing what that load fetched, which may be from
  // before the change (so wait for the loads to end, for up to 10 s).
  let refreshTimer = 0;
  let lastRefresh = 0;
  function refreshEventTiles() {
    if (!eventSource || refreshTimer) return;
    let tries = 0;
    const run = () => {
      if (!map.isSourceLoaded(eventSource) && ++tries < 20) {
        refreshTimer = setTimeout(run, 500);
        return;
      }
      refreshTimer = 0;
      lastRefresh = Date.now();
      map.refreshTiles(eventSource);
    };
    refreshTimer = setTimeout(run, Math.max(1200, lastRefresh + TILE_REFRESH_MS - Date.now()));
  }

  function onStreamMessage(ev) {
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
    drawLive();
    // Rings on new events; moves flash only close in (the points are drawn there).
    const fresh = m.type === 'created' || ev.type === 'created';
    if (Number.isFinite(f.lon) && Number.isFinite(f.lat) && (fresh || map.getZoom() >= evMinZoom - 1)) pulse(f, fresh);
    feed.unshift({ ...f, type: ev.type, actor: m.actor || '' });
    if (feed.length > 200) feed.length = 200;
    drawTicker();
    refreshEventTiles();
    refreshEventStats();
  }

  function connect(resumeFrom) {
    const url = resumeFrom ? `/v1/events/stream?last_event_id=${resumeFrom}` : '/v1/events/stream';
    const es = new EventSource(url);
    stream.source = es;
    es.addEventListener('open', () => { stream.connected = true; drawConnection(); });
    es.addEventListener('error', () => {
      stream.connected = false;
      drawConnection();
      // EventSource retries by itself (with Last-Event-ID) unless the
      // server refused the stream; then start again in a while.
      if (es.readyState === EventSource.CLOSED && stream.source === es) setTimeout(() => { if (stream.source === es) connect(stream.lastSeq); }, 10_000);
    });
    es.addEventListener('created', onStreamMessage);
    es.addEventListener('transition', onStreamMessage);
    // The server could not replay what was missed: start over from the
    // tiles and the lists, and follow from here.
    es.addEventListener('reset', () => {
      live.clear();
      drawLive();
      if (eventSource) map.refreshTiles(eventSource);
      loadTicker();
      refreshEventStats(true);
    });
  }

  function drawConnection() {
    const c = $('live-conn');
    $('live').dataset.state = stream.connected ? 'live' : 'connecting';
    c.textContent = stream.connected ? '实时' : '重连中…';
    c.title = stream.connected ? `已连接事件流 · 收到 ${stream.received} 条` : '事件流断开，正在重连';
  }

  // ---- ticker ----
  const gridNames = new Map();
  function gridName(code) {
    const known = names.get(code);
    if (known) return known.name;
    if (!gridNames.has(code) && /^\d{14,15}$/.test(code)) {
      gridNames.set(code, null);
      unitInfo(code).then(() => drawTicker()).catch(() => { /* the code will do */ });
    }
    return '';
  }

  let tickerToken = 0;
  async function loadTicker() {
    const my = ++tickerToken;
    const unit = scope.code ? `&unit=${encodeURIComponent(scope.code)}` : '';
    try {
      const fc = await getJSON(`/v1/events?limit=12${unit}`);
      if (my !== tickerToken) return;
      recentList = fc.features.map((f) => ({
        code: f.properties.code, class_name: f.properties.class_name, status: f.properties.status, grid_code: f.properties.grid_code,
        at: unixOf(f.properties.reported_at), deadline: unixOf(f.properties.deadline), type: 'list',
      }));
      drawTicker();
    } catch (err) {
      if (my === tickerToken) toast(`无法加载事件列表: ${err.message}`);
    }
  }

  function drawTicker() {
    const seen = new Set();
    const rows = [...feed.filter((f) => f.grid_code.startsWith(scope.code)), ...recentList]
      .sort((a, b) => b.at - a.at)
      .filter((f) => (seen.has(f.code) ? false : seen.add(f.code)))
      .slice(0, 12);
    const fmt = hms();
    const earlier = new Intl.DateTimeFormat('zh-CN', { timeZone: cityTZ, month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false });
    const day = today();
    const when = (d) => (dayOf(d) === day ? fmt.format(d) : earlier.format(d));
    const now = nowSec();
    $('ticker').replaceChildren(...rows.map((f) => {
      const overdue = OPEN.includes(f.status) && f.deadline > 0 && f.deadline < now;
      const st = el('span', { class: 'st', style: `--c:${palette.pal[f.status] || '#e6edf3'}` }, STATUS_ZH[f.status] || f.status);
      return el('li', { 'data-code': f.code, 'data-status': f.status, class: `${f.type === 'created' ? 'new' : f.type === 'transition' ? 'moved' : ''}${overdue ? ' overdue' : ''}`,
        title: `${f.code} ${f.grid_code}`, onclick: () => f.grid_code && select(f.grid_code) },
      el('time', {}, when(new Date(f.at * 1000))),
      el('span', { class: 'cls' }, f.class_name || ''),
      el('span', { class: 'sts' }, f.type === 'transition' && f.from ? el('span', { class: 'from' }, `${STATUS_ZH[f.from] || f.from}→`) : null, st,
        overdue ? el('span', { class: 'od' }, '超期') : null),
      el('span', { class: 'gd' }, gridName(f.grid_code) || f.grid_code));
    }));
    if (!rows.length) $('ticker').replaceChildren(el('li', { class: 'empty' }, '暂无事件'));
  }

  // ---- today's figures of the selection ----
  let statsTimer = 0;
  let lastStats = 0;
  let statsToken = 0;
  function refreshEventStats(now = false) {
    if (statsTimer) { if (!now) return; clearTimeout(statsTimer); }
    statsTimer = setTimeout(() => { statsTimer = 0; lastStats = Date.now(); loadEventStats(); },
      now ? 0 : Math.max(1000, lastStats + TILE_REFRESH_MS - Date.now()));
  }

  async function loadEventStats() {
    const my = ++statsToken;
    const { code, name } = scope;
    const day = today();
    try {
      const codes = code ? [code] : (await cityOverview()).children.map((c) => c.code);
      const get = (from) => Promise.all(codes.map((c) => getJSON(`/v1/stats/${encodeURIComponent(c)}?by=status${from ? `&from=${from}` : ''}`)));
      const [todays, all] = await Promise.all([get(day), get('')]);
      if (my !== statsToken) return;
      const by = Object.fromEntries(STATUSES.map((st) => [st, 0]));
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
        for (const st of OPEN) open += (s.unit.by && s.unit.by[st] ? s.unit.by[st].total : 0);
      }
      $('ev-scope').textContent = name;
      $('ev-day').textContent = day;
      $('ev-today').textContent = num.format(total);
      $('ev-today-overdue').textContent = overdueToday ? `其中超期 ${num.format(overdueToday)}` : '';
      $('ev-open').textContent = num.format(open);
      $('ev-overdue').textContent = num.format(overdue);
      const max = Math.max(1, ...Object.values(by));
      $('ev-status').replaceChildren(...STATUSES.map((st) => el('li', { 'data-status': st, style: `--c:${palette.pal[st]}` },
        el('span', { class: 'dot' }), el('span', { class: 'nm' }, STATUS_ZH[st]),
        el('span', { class: 'bar-track' }, el('span', { class: 'bar-fill', style: `width:${(100 * by[st] / max).toFixed(1)}%` })),
        el('span', { class: 'n' }, num.format(by[st])))));
      Object.assign($('live').dataset, { code, day, today: String(total), open: String(open), overdue: String(overdue) });
    } catch (err) {
      if (my === statsToken) toast(`无法加载事件统计: ${err.message}`);
    }
  }

  /** The live panel follows the selection: its ticker and figures. */
  function eventPanel(code, name) {
    const changed = scope.code !== code;
    scope = { code, name };
    if (changed) { recentList = []; drawTicker(); }
    loadTicker();
    refreshEventStats(true);
  }

  // ---- an event's card, on a click on its point ----
  const popup = new maplibregl.Popup({ closeButton: true, maxWidth: 'none', className: 'ev-popup', offset: 14 * scale });
  async function showEvent(code, lngLat) {
    try {
      const f = await getJSON(`/v1/events/${encodeURIComponent(code)}`);
      const p = f.properties;
      const when = new Intl.DateTimeFormat('zh-CN', { timeZone: cityTZ, month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false });
      const log = (p.log || []).slice(-4).reverse();
      popup.setLngLat(f.geometry.coordinates || lngLat).setDOMContent(el('div', { class: 'ev-card', 'data-code': p.code },
        el('div', { class: 'hd' }, el('b', {}, p.class_name), el('span', { class: 'st', style: `--c:${palette.pal[p.status]}` }, STATUS_ZH[p.status] || p.status),
          p.overdue ? el('span', { class: 'od' }, '超期') : null),
        el('div', { class: 'cd' }, p.code),
        p.description ? el('p', {}, p.description) : null,
        el('dl', {},
          el('dt', {}, '网格'), el('dd', {}, (names.get(p.grid_code) || {}).name || p.grid_code),
          el('dt', {}, '部门'), el('dd', {}, p.department_name || p.department || '—'),
          el('dt', {}, '上报'), el('dd', {}, `${when.format(new Date(p.reported_at))} · ${p.reporter || p.source || ''}`),
          el('dt', {}, '时限'), el('dd', { class: p.overdue ? 'late' : '' }, when.format(new Date(p.deadline)))),
        log.length ? el('ol', { class: 'log' }, ...log.map((l) => el('li', {},
          el('time', {}, when.format(new Date(l.at))), ` ${l.from ? `${STATUS_ZH[l.from] || l.from}→` : ''}${STATUS_ZH[l.to] || l.to} · ${l.actor}`))) : null,
      )).addTo(map);
    } catch (err) {
      toast(`无法加载事件 ${code}: ${err.message}`);
    }
  }

  map.on('click', async (e) => {
    if (e.originalEvent && e.originalEvent.target !== map.getCanvas()) return;
    // A click on an event point opens its card rather than drilling down.
    const r = 8 * scale + 4;
    const layers = ['gm-live', palette.layer].filter((id) => id && map.getLayer(id));
    const hit = map.queryRenderedFeatures([[e.point.x - r, e.point.y - r], [e.point.x + r, e.point.y + r]], { layers })
      .find((f) => map.getZoom() >= evMinZoom || (f.source === 'gm-live' && f.properties.at > nowSec() - LIVE_RECENT_S));
    if (hit) {
      showEvent(String(hit.properties.code), hit.geometry.coordinates);
      return;
    }
    try {
      const here = await getJSON(`/v1/locate?lon=${e.lngLat.lng.toFixed(7)}&lat=${e.lngLat.lat.toFixed(7)}`);
      const at = LEVELS.map((lv) => here[lv]);
      at.forEach((u, i) => remember(u && { ...u, level: LEVELS[i] }));
      const depth = sel ? LEVELS.indexOf(sel.level) : -1;
      let target;
      if (depth >= 0 && at[depth] && at[depth].code === sel.code) target = at[Math.min(depth + 1, 3)] || at[depth]; // one level down
      else target = at[Math.max(depth, 0)] || at.find(Boolean); // a sibling (or a district from the city view)
      if (target && (!sel || target.code !== sel.code)) await select(target.code);
    } catch (err) {
      toast(`定位失败: ${err.message}`);
    }
  });
  map.on('mousemove', (e) => {
    const hit = map.queryRenderedFeatures(e.point).some((f) => f.source === unitSource);
    map.getCanvas().style.cursor = hit ? 'pointer' : '';
  });
  map.on('move', hud);
  map.on('error', (e) => toast(`地图错误: ${e.error && e.error.message ? e.error.message : e}`));

  $('back').onclick = () => up();
  $('home').onclick = () => home();
  const fsButton = $('fullscreen');
  fsButton.onclick = () => (document.fullscreenElement ? document.exitFullscreen() : document.documentElement.requestFullscreen()).catch((err) => toast(`全屏不可用: ${err.message}`));
  document.addEventListener('fullscreenchange', () => { fsButton.querySelector('span').textContent = document.fullscreenElement ? '退出全屏' : '全屏'; });
  if (!document.fullscreenEnabled) fsButton.disabled = true;
  addEventListener('keydown', (e) => {
    if (e.target.closest && e.target.closest('input, textarea')) return;
    if (e.key === 'Backspace' || e.key === 'Escape') up();
    else if (e.key === 'Home') home();
    else if (e.key === 'f' || e.key === 'F') fsButton.click();
  });
  addEventListener('hashchange', () => {
    const code = decodeURIComponent(location.hash.slice(1));
    if (code !== (sel ? sel.code : '')) select(code);
  });

  legend();
  hud();
  clock();
  drawConnection();
  connect(0);
  setInterval(clock, 1000);
  // The panel and labels follow the data: every minute the shown unit's
  // statistics are fetched again (the camera stays), unless a selection
  // is on its way or nobody can see the page.
  setInterval(() => {
    if (shown !== token || document.hidden) return;
    if (sel) select(sel.code, { fly: false });
    else home({ fly: false });
  }, 60_000);
  const initial = decodeURIComponent(location.hash.slice(1));
  await (initial ? select(initial, { animate: false }) : home({ animate: false }));
  await settled();
  return {
    map, select, home, up, settled,
    state: () => ({ sel: sel && { code: sel.code, level: sel.level, name: sel.name }, zooms }),
    events: () => ({
      connected: stream.connected, received: stream.received, lastSeq: stream.lastSeq,
      live: [...live.keys()], status: Object.fromEntries([...live].map(([k, f]) => [k, f.status])),
    }),
  };
}

const ready = main();
window.gridmap = { ready };
ready.then((api) => Object.assign(window.gridmap, api)).catch((err) => { window.gridmap.error = String(err); toast(`地图未能启动: ${err.message || err}`); });
