// gridmap boundary editor (/editor): pick a unit (a click on the map, or a
// search by code or name), see its chain, version, last change, children
// and history; reshape it (terra-draw's select mode, its vertices snapping
// to the neighbours' vertices and edges), split it with a drawn line, merge
// adjacent siblings, retire it into a sibling, create a sibling (drawn in a
// gap, or carved out of the neighbours), revert to a version. Every edit goes to the API as a
// dry run first: the panel shows what it would do (units written and
// retired, new codes, objects and open events moved) and the map its
// changed area, or each violation drawn with its rule and message; Save is
// enabled only after a clean dry run, and asks for the reason. A 412 (the
// unit changed since it was loaded) is shown as such, with 重新加载. The
// time slider (or a date input, any instant) sets as_of on the units tiles
// and the unit reads.
//
// Reads follow the server (public, or with a token); writes always need a
// token: the sign-in (auth.js) is asked for before the first dry run.
//
// For tests: window.editor = {ready, map, draw, select(code), state()}.

import { TerraDraw, TerraDrawLineStringMode, TerraDrawPolygonMode, TerraDrawSelectMode } from './terra-draw.js';
import { TerraDrawMapLibreGLAdapter } from './terra-draw-maplibre-gl-adapter.js';
import { authHeaders, check, refused, start as startSession, token, whenSignedIn, who, wireSignIn } from './auth.js';
import { $, el, getJSON, num, toast } from './dom.js';
import { bboxOf } from './geometry.js';
import { asOfInput, editRequest, editURL, historyRows, localInput, outcomeOf, shortTime, sliderStops, stopAt, unitTilesURL } from './preview.js';
import { snapRings, snapTarget } from './snap.js';
import { adaptStyle, sourceOf } from './style.js';
import { LEVEL_ZH, chainCodes, levelOf } from './units.js';

const EMPTY = { type: 'FeatureCollection', features: [] };
const SNAP_PX = 14;

const st = {
  unit: null, // the selected unit: GeoJSON Feature (full geometry), with etag
  siblings: [], // the unit's siblings (full geometry), itself included
  parent: null, // the parent unit (full geometry)
  history: null, // the selected unit's history FeatureCollection
  stops: [], // the time slider's stops
  asOf: '', // '' = now
  tool: '', // '', 'reshape', 'split', 'merge'
  drawId: null, // the terra-draw feature being edited
  merge: [], // codes to merge (the unit first)
  into: '', // the sibling a retired unit goes into
  keep: '', // the code that survives a merge
  pending: null, // the last edit previewed: {kind, params, req}
  outcome: null, // its outcome (preview.js outcomeOf)
  unitsTiles: '', // the units tiles' URL template
  names: null, // every unit's {code, name, level} for the search
  token: 0, // the latest selection asked for
};

let map;
let draw;
let unitSource = 'units';

// ---- requests ----

/** fetch with the page's credential; the answer's status, body, ETag. */
async function call(method, url, body, headers = {}) {
  const r = await fetch(url, {
    method,
    headers: { Accept: 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}), ...authHeaders(url), ...headers },
    body: body ? JSON.stringify(body) : undefined,
    cache: 'no-store',
  });
  let data = null;
  try { data = await r.json(); } catch { /* empty */ }
  return { status: r.status, body: data, etag: r.headers.get('ETag') };
}

/** Writes always need a credential: sign in first when there is none. */
async function ensureToken() {
  if (token()) return;
  const waiting = refused({ reason: 'missing' });
  $('signin-why').textContent = '修改边界需要登录：请输入编辑 (editor) 或管理员 (admin) 令牌。';
  await waiting;
}

const asOfQ = () => (st.asOf ? `&as_of=${encodeURIComponent(st.asOf)}` : '');

// ---- selection ----

async function select(code) {
  if (!code) return;
  const my = ++st.token;
  $('panel').dataset.state = 'loading';
  try {
    const u = await call('GET', `/v1/units/${encodeURIComponent(code)}?geometry=full${asOfQ()}`);
    if (u.status === 401) { check(); throw new Error('未登录'); }
    if (u.status !== 200) throw new Error(`${u.status} ${(u.body && u.body.detail) || ''}`);
    const unit = u.body;
    const p = unit.properties;
    const [chain, siblings, parent, children, hist] = await Promise.all([
      Promise.all(chainCodes(code).map((c) => (c === code ? p : getJSON(`/v1/units/${c}?geometry=none${asOfQ()}`).then((f) => f.properties)))),
      p.parent_code ? getJSON(`/v1/units?parent=${p.parent_code}&geometry=full&limit=10000${asOfQ()}`).then((fc) => fc.features) : Promise.resolve([unit]),
      p.parent_code ? getJSON(`/v1/units/${p.parent_code}?geometry=full${asOfQ()}`) : Promise.resolve(null),
      levelOf(code) === 'grid' ? Promise.resolve(null) : getJSON(`/v1/units/${code}/children?geometry=none&limit=10000${asOfQ()}`),
      getJSON(`/v1/units/${code}/history?geometry=none`),
    ]);
    if (my !== st.token) return;
    st.unit = { ...unit, etag: u.etag };
    st.siblings = siblings;
    st.parent = parent;
    st.history = hist;
    cancelTool();
    drawUnit();
    renderUnit(chain, children);
    renderHistory();
    fly(unit.geometry);
    if (location.hash !== `#${code}`) window.history.replaceState(null, '', `#${code}`);
    $('panel').dataset.state = 'ready';
    $('panel').dataset.code = code;
  } catch (err) {
    if (my === st.token) { toast(`无法加载单元 ${code}: ${err.message}`); $('panel').dataset.state = 'error'; }
  }
}

function fly(geometry) {
  const b = bboxOf(geometry);
  const cam = map.cameraForBounds(b, { padding: { top: 90, bottom: 60, left: 60, right: innerWidth - $('panel').getBoundingClientRect().left + 60 } });
  if (cam) map.jumpTo({ center: cam.center, zoom: Math.min(cam.zoom, 18) });
}

function drawUnit() {
  const u = st.unit;
  map.getSource('ed-siblings').setData({ type: 'FeatureCollection', features: st.siblings.filter((f) => f.properties.code !== u.properties.code) });
  map.getSource('ed-unit').setData(u ? { type: 'Feature', properties: {}, geometry: u.geometry } : EMPTY);
  drawMerge();
}

function drawMerge() {
  const feats = st.siblings.filter((f) => st.merge.includes(f.properties.code)).map((f) => ({ ...f, properties: { code: f.properties.code, keep: f.properties.code === st.keep } }));
  map.getSource('ed-merge').setData({ type: 'FeatureCollection', features: feats });
}

function renderUnit(chain, children) {
  const p = st.unit.properties;
  const lv = levelOf(p.code);
  $('unit-level').textContent = LEVEL_ZH[lv];
  $('unit-level').className = `badge ${lv}`;
  $('unit-name').textContent = p.name;
  $('unit-code').textContent = p.code;
  $('unit-version').textContent = `版本 v${p.version} · ${num.format(Math.round(p.area_m2 || 0))} m² · 自 ${shortTime(p.valid_from)}`;
  $('chain').replaceChildren(...chain.map((c) => el('li', { class: `${levelOf(c.code)}${c.code === p.code ? ' current' : ''}`, 'data-code': c.code, onclick: () => select(c.code) },
    el('span', { class: 'lv' }, LEVEL_ZH[levelOf(c.code)]), el('span', { class: 'nm' }, c.name), el('span', { class: 'cd' }, c.code))));
  const last = historyRows(st.history)[0];
  $('last').replaceChildren(...(last ? [
    el('dt', {}, '修改人'), el('dd', { 'data-field': 'by' }, last.by || '—'),
    el('dt', {}, '时间'), el('dd', { 'data-field': 'at' }, shortTime(last.from)),
    el('dt', {}, '原因'), el('dd', { 'data-field': 'reason' }, last.reason || '—'),
  ] : []));
  const tbody = $('children').tBodies[0];
  if (children) {
    $('children-title').replaceChildren(`下级单元 `, el('small', {}, `${children.features.length} 个`));
    tbody.replaceChildren(...children.features.map((f) => el('tr', { 'data-code': f.properties.code, onclick: () => select(f.properties.code) },
      el('td', {}, el('div', { class: 'nm' }, f.properties.name), el('div', { class: 'cd' }, f.properties.code)))));
  } else {
    $('children-title').replaceChildren('下级单元 ', el('small', {}, '网格没有下级单元'));
    tbody.replaceChildren();
  }
  document.title = `${p.name} · 边界编辑`;
}

function renderHistory() {
  const rows = historyRows(st.history);
  const code = st.unit.properties.code;
  $('history').replaceChildren(...rows.map((r) => el('li', { class: r.current ? 'current' : '', 'data-version': r.version },
    el('span', { class: 'v' }, `v${r.version}`), el('time', {}, shortTime(r.from)), ' ', el('span', { class: 'by' }, r.by), el('div', { class: 'why' }, r.reason || '—'),
    r.current || st.asOf ? null : el('button', { type: 'button', class: 'revert', onclick: () => preview('revert', { code, version: r.version }) }, '恢复到此版本'))));
  // The slider's stops: the instants this unit changed, then now.
  st.stops = sliderStops([st.history]);
  const s = $('asof');
  s.max = String(st.stops.length - 1);
  s.value = String(stopAt(st.stops, st.asOf));
  $('asof-label').textContent = st.asOf ? shortTime(st.asOf) : '现在';
}

// ---- as_of ----

async function setAsOf(asOf) {
  st.asOf = asOf;
  map.getSource(unitSource).setTiles([unitTilesURL(st.unitsTiles, asOf)]);
  const badge = $('asof-badge');
  badge.hidden = !asOf;
  badge.textContent = asOf ? `历史视图 · ${shortTime(asOf)}` : '';
  document.body.dataset.asOf = asOf;
  $('asof-label').textContent = asOf ? shortTime(asOf) : '现在';
  if (asOfInput($('asof-date').value) !== asOf) $('asof-date').value = localInput(asOf);
  updateTools();
  if (st.unit) await select(st.unit.properties.code);
}

// ---- tools ----

function updateTools() {
  const can = Boolean(st.unit) && !st.asOf;
  for (const t of TOOLS) {
    $(`tool-${t}`).disabled = !can;
    $(`tool-${t}`).classList.toggle('active', st.tool === t);
  }
  $('tool-cancel').disabled = !st.tool;
  $('merge-box').hidden = st.tool !== 'merge';
  $('retire-box').hidden = st.tool !== 'retire';
  $('create-box').hidden = st.tool !== 'create';
  $('preview-btn').disabled = !st.tool || (st.tool === 'merge' && st.merge.length < 2) || (st.tool === 'split' && !lineDrawn())
    || (st.tool === 'retire' && !st.into) || (st.tool === 'create' && !(polygonDrawn() && $('create-name').value.trim()));
  document.body.dataset.tool = st.tool;
}

const TOOLS = ['reshape', 'split', 'merge', 'retire', 'create'];

function polygonDrawn() {
  return draw.getSnapshot().some((f) => f.properties.mode === 'polygon' && !f.properties.currentlyDrawing);
}

function lineDrawn() {
  return draw.getSnapshot().some((f) => f.properties.mode === 'linestring' && f.geometry.coordinates.length >= 2 && !f.properties.currentlyDrawing);
}

const HINT = {
  reshape: '拖动顶点调整边界（靠近相邻单元的顶点或边时自动吸附）；拖动边中点可插入顶点。然后点“预览”。',
  split: '在地图上依次点击，画一条从单元一侧穿到另一侧的切线，回车结束。',
  merge: '在地图上点击要合并的相邻同级单元，并选择保留的编码。',
  retire: '在地图上点击一个相邻的同级单元：本单元撤销，范围并入该单元。',
  create: '在上级单元内依次点击画出新单元的边界（吸附到相邻单元），点击起点闭合；勾选“邻接网格自动调整”时新单元从相邻单元中划出。',
};

function startTool(tool) {
  cancelTool();
  st.tool = tool;
  $('tool-hint').textContent = HINT[tool];
  if (tool === 'reshape') {
    draw.setMode('select');
    const geom = st.unit.geometry.type === 'MultiPolygon' && st.unit.geometry.coordinates.length === 1
      ? { type: 'Polygon', coordinates: st.unit.geometry.coordinates[0] } : st.unit.geometry;
    if (geom.type !== 'Polygon') { toast('多部分单元暂不支持拖动顶点调整'); cancelTool(); return; }
    const [res] = draw.addFeatures([{ type: 'Feature', properties: { mode: 'polygon' }, geometry: geom }]);
    if (!res.valid) { toast(`无法编辑此边界: ${res.reason}`); cancelTool(); return; }
    st.drawId = res.id;
    draw.selectFeature(res.id);
  } else if (tool === 'split') {
    draw.setMode('linestring');
  } else if (tool === 'create') {
    draw.setMode('polygon');
  } else if (tool === 'retire') {
    st.into = '';
    $('retire-into').textContent = '（在地图上点击一个相邻的同级单元）';
  } else if (tool === 'merge') {
    st.merge = [st.unit.properties.code];
    st.keep = st.unit.properties.code;
    renderMerge();
  }
  updateTools();
}

function cancelTool() {
  if (draw) { draw.clear(); draw.setMode('static'); }
  st.tool = '';
  st.drawId = null;
  st.merge = [];
  st.keep = '';
  st.into = '';
  st.pending = null;
  st.outcome = null;
  $('tool-hint').textContent = '';
  $('preview').hidden = true;
  if (map) {
    map.getSource('ed-merge').setData(EMPTY);
    clearPreview();
  }
  if (draw) updateTools();
}

function renderMerge() {
  $('merge-list').replaceChildren(...st.merge.map((c) => {
    const f = st.siblings.find((s) => s.properties.code === c);
    return el('li', { 'data-code': c },
      el('input', { type: 'radio', name: 'keep', value: c, checked: c === st.keep, onchange: () => { st.keep = c; drawMerge(); } }),
      el('span', {}, f ? f.properties.name : c), el('span', { class: 'cd' }, c));
  }));
  drawMerge();
  updateTools();
}

/** The edit the tool has drawn or chosen, as {kind, params}. */
function currentEdit() {
  const code = st.unit.properties.code;
  if (st.tool === 'reshape') {
    const f = draw.getSnapshotFeature(st.drawId);
    return { kind: 'reshape', params: { code, geometry: f.geometry } };
  }
  if (st.tool === 'split') {
    const f = draw.getSnapshot().find((g) => g.properties.mode === 'linestring');
    return { kind: 'split', params: { code, line: f.geometry } };
  }
  if (st.tool === 'merge') return { kind: 'merge', params: { codes: [...st.merge], keep: st.keep } };
  if (st.tool === 'retire') return { kind: 'retire', params: { code, into: st.into } };
  if (st.tool === 'create') {
    const f = draw.getSnapshot().find((g) => g.properties.mode === 'polygon');
    return { kind: 'create', params: { parent: st.unit.properties.parent_code, name: $('create-name').value.trim(), geometry: f.geometry } };
  }
  return null;
}

// ---- preview and save ----

async function etagsOf(codes) {
  const out = [];
  for (const c of codes) {
    if (st.unit && c === st.unit.properties.code && st.unit.etag) { out.push(st.unit.etag); continue; }
    const r = await call('GET', `/v1/units/${encodeURIComponent(c)}?geometry=none`);
    if (r.etag) out.push(r.etag);
  }
  return out.join(', ');
}

/** Sends the edit as a dry run (save: for real, with the reason). */
async function send(kind, params, save) {
  await ensureToken();
  const req = editRequest(kind, params);
  const reason = $('reason').value.trim();
  const headers = req.ifMatch.length ? { 'If-Match': await etagsOf(req.ifMatch) } : {};
  const adjust = $('adjust').checked && ['reshape', 'revert', 'create'].includes(kind);
  const url = editURL(req.path, { dryRun: !save, adjust, reason: reason || '预览 (dry run)' });
  const r = await call(req.method, url, req.body, headers);
  return outcomeOf(r.status, r.body);
}

async function preview(kind, params) {
  if (!kind) ({ kind, params } = currentEdit() || {});
  if (!kind) return;
  const box = $('preview');
  box.hidden = false;
  box.dataset.state = 'running';
  $('preview-title').textContent = '试运行中…';
  $('preview-body').replaceChildren();
  $('save').disabled = true;
  $('reload').hidden = true;
  let o;
  try {
    o = await send(kind, params, false);
  } catch (err) {
    o = { kind: 'error', ok: false, message: err.message };
  }
  st.pending = { kind, params };
  st.outcome = o;
  showOutcome(o, kind, params);
}

function showOutcome(o, kind, params) {
  const box = $('preview');
  box.hidden = false;
  box.dataset.state = o.kind === 'preview' ? (o.title.endsWith('已保存') ? 'saved' : 'preview') : o.kind;
  box.dataset.operation = kind;
  const body = $('preview-body');
  clearPreview();
  if (o.kind === 'preview') {
    $('preview-title').textContent = o.title;
    const kv = (k, v, field) => [el('dt', {}, k), el('dd', { 'data-field': field }, v)];
    body.replaceChildren(...[el('dl', { class: 'kv' },
      ...kv('写入版本', o.written.join('，') || '—', 'written'),
      ...kv('撤销单元', o.retired.join('，') || '—', 'retired'),
      ...kv('新编码', o.newCodes.join('，') || '—', 'new-codes'),
      ...kv('编码对照', o.codeMap.map(([a, b]) => `${a} → ${b}`).join('，') || '—', 'code-map'),
      ...kv('迁移部件', num.format(o.objectsMoved), 'objects-moved'),
      ...kv('迁移在办事件', num.format(o.eventsMoved), 'events-moved')),
    o.warnings.length ? el('ul', {}, ...o.warnings.map((w) => el('li', {}, w))) : null].filter(Boolean));
    if (o.changedArea) map.getSource('ed-changed').setData(o.changedArea);
    map.getSource('ed-written').setData(o.outlines);
    drawProposal(kind, params);
  } else if (o.kind === 'violations') {
    $('preview-title').textContent = `不符合规则 · ${o.items.length} 处`;
    body.replaceChildren(el('ul', {}, ...o.items.map((v) => el('li', { class: 'violation', 'data-rule': v.rule },
      el('b', {}, v.ruleZh), v.message, v.codes.length ? el('span', { class: 'cd' }, ` (${v.codes.join(', ')})`) : null))));
    map.getSource('ed-violations').setData(o.geojson);
    drawProposal(kind, params);
  } else if (o.kind === 'stale') {
    $('preview-title').textContent = '版本冲突 (412)';
    body.replaceChildren(el('p', { class: 'msg' }, o.message));
    $('reload').hidden = false;
  } else {
    $('preview-title').textContent = '出错';
    body.replaceChildren(el('p', { class: 'msg' }, o.message));
  }
  updateSave();
  box.scrollIntoView({ block: 'nearest' });
}

function drawProposal(kind, params) {
  let g = null;
  if (kind === 'reshape' || kind === 'create') g = params.geometry;
  else if (kind === 'split') g = params.line;
  map.getSource('ed-proposal').setData(g ? { type: 'Feature', properties: {}, geometry: g } : EMPTY);
}

function clearPreview() {
  for (const s of ['ed-changed', 'ed-written', 'ed-violations', 'ed-proposal']) map.getSource(s).setData(EMPTY);
}

/** Save is possible only after a clean dry run, with a reason. */
function updateSave() {
  const o = st.outcome;
  const clean = o && o.kind === 'preview' && !o.title.endsWith('已保存');
  $('save').disabled = !(clean && $('reason').value.trim());
  $('save').title = !clean ? '先试运行，且没有违规' : $('reason').value.trim() ? '' : '请填写修改原因';
}

async function save() {
  const p = st.pending;
  if (!p || !$('reason').value.trim()) return;
  $('save').disabled = true;
  let o;
  try {
    o = await send(p.kind, p.params, true);
  } catch (err) {
    o = { kind: 'error', ok: false, message: err.message };
  }
  st.outcome = o;
  if (o.kind !== 'preview') { showOutcome(o, p.kind, p.params); return; }
  const keep = p.kind === 'merge' ? p.params.keep : p.kind === 'retire' ? p.params.into : p.kind === 'create' ? o.newCodes[0] : st.unit.properties.code;
  const kind = p.kind;
  const params = p.params;
  $('reason').value = '';
  refreshTiles();
  await select(keep);
  st.outcome = o;
  showOutcome(o, kind, params);
  $('panel').dataset.saved = String(Number($('panel').dataset.saved || 0) + 1);
}

function refreshTiles() {
  map.getSource(unitSource).setTiles([unitTilesURL(st.unitsTiles, st.asOf)]);
}

// ---- map clicks and search ----

async function onClick(e) {
  if (st.tool === 'reshape' || st.tool === 'split' || st.tool === 'create') return;
  if (e.originalEvent && e.originalEvent.target !== map.getCanvas()) return;
  const level = $('pick-level').value;
  try {
    const here = await getJSON(`/v1/locate?lon=${e.lngLat.lng.toFixed(7)}&lat=${e.lngLat.lat.toFixed(7)}${asOfQ()}`);
    const u = here[level];
    if (!u) return;
    if (st.tool === 'retire') {
      const sib = st.siblings.find((f) => f.properties.code === u.code);
      if (!sib || u.code === st.unit.properties.code) { toast(`${u.name} 不是 ${st.unit.properties.name} 的相邻同级单元`); return; }
      st.into = u.code;
      $('retire-into').textContent = `${sib.properties.name} ${u.code}`;
      $('retire-into').dataset.code = u.code;
      st.merge = [st.unit.properties.code, u.code];
      st.keep = u.code;
      drawMerge();
      updateTools();
      return;
    }
    if (st.tool === 'merge') {
      const sib = st.siblings.find((f) => f.properties.code === u.code);
      if (!sib) { toast(`${u.name} 不是 ${st.unit.properties.name} 的同级单元，不能合并`); return; }
      if (u.code === st.unit.properties.code) return;
      st.merge = st.merge.includes(u.code) ? st.merge.filter((c) => c !== u.code) : [...st.merge, u.code];
      if (!st.merge.includes(st.keep)) st.keep = st.merge[0];
      renderMerge();
      return;
    }
    await select(u.code);
  } catch (err) {
    toast(`定位失败: ${err.message}`);
  }
}

async function search(q) {
  const list = $('search-results');
  q = q.trim();
  if (!q) { list.hidden = true; return; }
  if (/^\d{6,15}$/.test(q)) { list.hidden = true; await select(q); return; }
  if (!st.names) {
    const fc = await getJSON('/v1/units?geometry=none&limit=10000');
    st.names = fc.features.map((f) => f.properties);
  }
  const hits = st.names.filter((u) => u.name.includes(q) || u.code.startsWith(q)).slice(0, 30);
  list.replaceChildren(...hits.map((u) => el('li', { 'data-code': u.code, onclick: () => { list.hidden = true; select(u.code); } },
    el('span', {}, `${LEVEL_ZH[u.level] || ''} ${u.name}`), el('span', { class: 'cd' }, u.code))));
  if (!hits.length) list.replaceChildren(el('li', {}, '没有找到'));
  list.hidden = false;
}

// ---- the map ----

function addLayers() {
  for (const s of ['ed-siblings', 'ed-unit', 'ed-merge', 'ed-changed', 'ed-written', 'ed-proposal', 'ed-violations']) map.addSource(s, { type: 'geojson', data: EMPTY });
  map.addLayer({ id: 'ed-siblings', type: 'line', source: 'ed-siblings', paint: { 'line-color': '#7ee0c3', 'line-width': 1.5, 'line-opacity': 0.8 } });
  map.addLayer({ id: 'ed-unit-fill', type: 'fill', source: 'ed-unit', paint: { 'fill-color': '#4cc3ff', 'fill-opacity': 0.12 } });
  map.addLayer({ id: 'ed-unit', type: 'line', source: 'ed-unit', paint: { 'line-color': '#ffffff', 'line-width': 3 } });
  map.addLayer({ id: 'ed-merge', type: 'fill', source: 'ed-merge', paint: { 'fill-color': ['case', ['get', 'keep'], '#4cc3ff', '#f5c26b'], 'fill-opacity': 0.35 } });
  map.addLayer({ id: 'ed-changed', type: 'fill', source: 'ed-changed', paint: { 'fill-color': '#7ee0c3', 'fill-opacity': 0.4 } });
  // The new outlines of every unit the edit writes (neighbours adjusted too).
  map.addLayer({ id: 'ed-written', type: 'line', source: 'ed-written', paint: { 'line-color': '#ffd166', 'line-width': 2.5, 'line-dasharray': [1, 1] } });
  map.addLayer({ id: 'ed-written-label', type: 'symbol', source: 'ed-written',
    layout: { 'text-field': ['get', 'label'], 'text-font': ['Noto Sans CJK SC'], 'text-size': 12 }, paint: { 'text-color': '#ffd166', 'text-halo-color': '#000', 'text-halo-width': 1.5 } });
  map.addLayer({ id: 'ed-proposal', type: 'line', source: 'ed-proposal', paint: { 'line-color': '#7ee0c3', 'line-width': 3, 'line-dasharray': [2, 1] } });
  map.addLayer({ id: 'ed-violations-fill', type: 'fill', source: 'ed-violations', filter: ['!=', ['geometry-type'], 'Point'], paint: { 'fill-color': '#ff2d47', 'fill-opacity': 0.45 } });
  map.addLayer({ id: 'ed-violations-line', type: 'line', source: 'ed-violations', paint: { 'line-color': '#ff2d47', 'line-width': 2.5 } });
  map.addLayer({ id: 'ed-violations-point', type: 'circle', source: 'ed-violations', filter: ['==', ['geometry-type'], 'Point'], paint: { 'circle-color': '#ff2d47', 'circle-radius': 7, 'circle-stroke-color': '#fff', 'circle-stroke-width': 1.5 } });
  map.addLayer({ id: 'ed-violations-label', type: 'symbol', source: 'ed-violations',
    layout: { 'text-field': ['get', 'label'], 'text-font': ['Noto Sans CJK SC'], 'text-size': 14, 'text-max-width': 16, 'text-allow-overlap': true },
    paint: { 'text-color': '#ffd7dc', 'text-halo-color': '#2a0006', 'text-halo-width': 2 } });
}

function startDraw() {
  const snapping = {
    toCustom: (event) => {
      const s = snapTarget([event.lng, event.lat], snapRings(st.siblings, st.unit && st.unit.properties.code, st.parent), (c) => map.project(c), SNAP_PX);
      return s ? s.coordinate : undefined;
    },
  };
  draw = new TerraDraw({
    adapter: new TerraDrawMapLibreGLAdapter({ map, coordinatePrecision: 9 }),
    modes: [
      new TerraDrawPolygonMode({ snapping, styles: { fillColor: '#7ee0c3', fillOpacity: 0.25, outlineColor: '#ffc27a', outlineWidth: 3, closingPointColor: '#ffc27a' } }),
      new TerraDrawLineStringMode({ snapping, styles: { lineStringColor: '#ffc27a', lineStringWidth: 3, closingPointColor: '#ffc27a' } }),
      new TerraDrawSelectMode({
        flags: {
          polygon: { feature: { draggable: false, coordinates: { draggable: true, deletable: true, midpoints: { draggable: true }, snappable: snapping } } },
        },
        styles: { selectedPolygonColor: '#4cc3ff', selectedPolygonFillOpacity: 0.15, selectedPolygonOutlineColor: '#ffc27a', selectedPolygonOutlineWidth: 3, selectionPointWidth: 6, selectionPointColor: '#ffc27a', midPointColor: '#7ee0c3', midPointWidth: 4 },
        allowManualDeselection: false,
      }),
    ],
  });
  draw.start();
  draw.setMode('static');
  draw.on('finish', (id, ctx) => {
    if (ctx && (ctx.mode === 'linestring' || (ctx.mode === 'polygon' && st.tool === 'create'))) { draw.setMode('static'); updateTools(); }
  });
}

function wire() {
  map.on('click', onClick);
  map.on('move', () => { const c = map.getCenter(); $('hud').textContent = `z ${map.getZoom().toFixed(1)} · ${c.lng.toFixed(5)}, ${c.lat.toFixed(5)}`; });
  map.on('error', (e) => {
    if (e.error && e.error.status === 401) { check(); return; }
    toast(`地图错误: ${e.error && e.error.message ? e.error.message : e}`);
  });
  for (const t of TOOLS) $(`tool-${t}`).onclick = () => startTool(t);
  $('create-name').addEventListener('input', updateTools);
  $('tool-cancel').onclick = () => { cancelTool(); drawUnit(); };
  $('preview-btn').onclick = () => preview();
  $('save').onclick = () => save();
  $('reload').onclick = () => { const c = st.unit.properties.code; select(c); };
  $('reason').addEventListener('input', updateSave);
  // Any past date (local time; cleared = now), not only the unit's changes.
  $('asof-date').addEventListener('change', () => setAsOf(asOfInput($('asof-date').value)));
  $('asof').addEventListener('change', () => { const s = st.stops[Number($('asof').value)]; setAsOf(s ? s.asOf : ''); });
  $('search').addEventListener('submit', (e) => { e.preventDefault(); search($('search-input').value).catch((err) => toast(err.message)); });
  addEventListener('keydown', (e) => {
    if (e.target.closest && e.target.closest('input, textarea, select')) return;
    if (e.key === 'Escape' && st.tool) { cancelTool(); drawUnit(); }
  });
}

async function main() {
  const maplibregl = await import('/static/maplibre-gl.mjs');
  wireSignIn();
  await startSession();
  const [style, unitsTJ] = await whenSignedIn(() => Promise.all([getJSON('/styles/wall.json'), getJSON('/tiles/units.json')]));
  adaptStyle(style, 0.6, Math.floor(Date.now() / 1000));
  // No events on the editor's map; the units tiles by URL template, so
  // that the time slider can add as_of.
  const events = sourceOf(style, 'events');
  style.layers = style.layers.filter((l) => l.source !== events);
  if (events) delete style.sources[events];
  unitSource = sourceOf(style, 'units') || 'units';
  st.unitsTiles = unitsTJ.tiles[0];
  style.sources[unitSource] = { type: 'vector', tiles: [st.unitsTiles], minzoom: unitsTJ.minzoom, maxzoom: unitsTJ.maxzoom, bounds: unitsTJ.bounds };
  map = new maplibregl.Map({
    container: 'map', style, bounds: [[unitsTJ.bounds[0], unitsTJ.bounds[1]], [unitsTJ.bounds[2], unitsTJ.bounds[3]]],
    attributionControl: false, dragRotate: false, pitchWithRotate: false, maxPitch: 0, fadeDuration: 0, doubleClickZoom: false,
    transformRequest: (url) => {
      const headers = authHeaders(url);
      return headers.Authorization ? { url, headers } : undefined;
    },
  });
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
  map.addControl(new maplibregl.ScaleControl({ maxWidth: 160 }), 'bottom-right');
  await new Promise((resolve) => map.once('load', resolve));
  addLayers();
  startDraw();
  wire();
  updateTools();
  const initial = decodeURIComponent(location.hash.slice(1));
  if (initial) await select(initial);
  const settled = () => new Promise((resolve) => { map.once('idle', resolve); map.triggerRepaint(); });
  await settled();
  return {
    map, draw, select, settled, setAsOf,
    state: () => ({ code: st.unit && st.unit.properties.code, version: st.unit && st.unit.properties.version, tool: st.tool, asOf: st.asOf, merge: [...st.merge], keep: st.keep, outcome: st.outcome && st.outcome.kind }),
  };
}

const ready = main();
window.editor = { ready, who };
ready.then((api) => Object.assign(window.editor, api)).catch((err) => { window.editor.error = String(err); toast(`编辑器未能启动: ${err.message || err}`); });
