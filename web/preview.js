// The boundary editor's requests and what it shows of their answers: the
// edit API's routes (docs/api.md, "Editing units"), a dry run's answer as
// a preview, a 422's violations as map features with readable labels, a
// unit's history as a list and the time slider's stops. Pure functions,
// tested under Node (test/preview.test.mjs).

export const OPERATION_ZH = { reshape: '调整边界', split: '切分', merge: '合并', create: '新建', retire: '撤销', revert: '恢复版本', import: '导入' };

/** The topology rules in the page's language. */
export const RULE_ZH = {
  overlap: '重叠', gap: '缝隙', outside_parent: '超出上级范围', invalid_geometry: '几何无效', invalid_geojson: 'GeoJSON 无效',
  repaired: '已修复', split_gap: '切分遗漏', split_outside: '切分超出单元', crosses_cut: '下级单元跨越切线',
  bad_code: '编码不合规', bad_level: '层级错误', missing_name: '缺少名称', duplicate_code: '编码重复', unknown_parent: '上级不存在',
};

/** The request of an edit: {method, path, body, ifMatch: [codes whose
 * ETags it needs]}. kind: reshape {code, geometry}, split {code, line},
 * merge {codes, keep}, revert {code, version}, retire {code, into},
 * create {parent, geometry, name}. */
export function editRequest(kind, p) {
  const u = (code) => `/v1/units/${encodeURIComponent(code)}`;
  switch (kind) {
    case 'reshape': return { method: 'PUT', path: u(p.code), body: { type: 'Feature', properties: p.name ? { name: p.name } : {}, geometry: p.geometry }, ifMatch: [p.code] };
    case 'split': return { method: 'POST', path: `${u(p.code)}:split`, body: { line: p.line }, ifMatch: [p.code] };
    case 'merge': return { method: 'POST', path: '/v1/units:merge', body: { codes: p.codes, keep: p.keep }, ifMatch: p.codes };
    case 'revert': return { method: 'POST', path: `${u(p.code)}:revert`, body: { version: p.version }, ifMatch: [p.code] };
    case 'retire': return { method: 'POST', path: `${u(p.code)}:retire`, body: { into: p.into }, ifMatch: [p.code] };
    case 'create': return { method: 'POST', path: '/v1/units', body: { type: 'Feature', properties: { name: p.name, parent_code: p.parent }, geometry: p.geometry }, ifMatch: [] };
    default: throw new Error(`unknown edit ${kind}`);
  }
}

/** The edit's URL: a dry run or not, neighbours adjusting or not, and the
 * reason (required by the API, for a dry run too). */
export function editURL(path, { dryRun, adjust, reason }) {
  const q = new URLSearchParams();
  if (dryRun) q.set('dry_run', 'true');
  if (adjust) q.set('neighbours', 'adjust');
  q.set('reason', reason);
  return `${path}?${q}`;
}

/** A successful answer (a dry run or the save) as the panel shows it. */
export function previewOf(a) {
  const codeMap = Object.entries(a.code_map || {});
  return {
    ok: true,
    operation: a.operation,
    title: `${OPERATION_ZH[a.operation] || a.operation}${a.dry_run ? ' · 预览' : ' · 已保存'}`,
    written: (a.units_written || []).map((w) => `${w.code} v${w.version}`),
    retired: a.units_retired || [],
    newCodes: a.new_codes || [],
    codeMap,
    objectsMoved: a.objects_moved || 0,
    eventsMoved: a.open_events_moved || 0,
    warnings: (a.warnings || []).map((w) => `${RULE_ZH[w.rule] || w.rule}: ${w.message}`),
    changedArea: a.changed_area ? { type: 'Feature', properties: {}, geometry: a.changed_area } : null,
    // The new outline of every unit written (the unit and the neighbours
    // adjusted), each labelled with its code and version.
    outlines: {
      type: 'FeatureCollection',
      features: ((a.units_written_geojson && a.units_written_geojson.features) || [])
        .map((f) => ({ ...f, properties: { ...f.properties, label: `${f.properties.code} v${f.properties.version}` } })),
    },
  };
}

/** A 422 problem's violations: the list (rule in Chinese, message, codes)
 * and the map's features (each violation_geojson feature with a `label`). */
export function violationsOf(problem) {
  const fc = problem.violations_geojson || { type: 'FeatureCollection', features: [] };
  const features = fc.features.map((f, i) => ({
    type: 'Feature', id: i,
    properties: { ...f.properties, codes: (f.properties.codes || []).join(' '), label: `${RULE_ZH[f.properties.rule] || f.properties.rule}\n${f.properties.message || ''}` },
    geometry: f.geometry,
  })).filter((f) => f.geometry);
  const items = (problem.violations || fc.features.map((f) => f.properties)).map((v) => ({
    rule: v.rule, ruleZh: RULE_ZH[v.rule] || v.rule, message: v.message || '', codes: v.codes || [],
  }));
  if (!items.length) items.push({ rule: problem.param || 'invalid', ruleZh: problem.param ? `参数 ${problem.param}` : '不合规', message: problem.detail || problem.title || '', codes: [] });
  return { ok: false, items, geojson: { type: 'FeatureCollection', features } };
}

/** What an edit's answer means for the page: preview (2xx), violations
 * (422), stale (412: someone saved first), or error. */
export function outcomeOf(status, body) {
  if (status >= 200 && status < 300) return { kind: 'preview', ...previewOf(body || {}) };
  if (status === 422) return { kind: 'violations', ...violationsOf(body || {}) };
  if (status === 412) return { kind: 'stale', ok: false, message: '该单元已被他人修改并保存（版本已变化）。请重新加载后再修改。' };
  if (status === 428) return { kind: 'error', ok: false, message: '缺少版本标识 (If-Match)，请重新加载单元。' };
  const p = body || {};
  return { kind: 'error', ok: false, status, message: `${status} ${p.title || ''}${p.detail ? `: ${p.detail}` : ''}` };
}

/** A unit's history (GET /v1/units/{code}/history) newest first, for the list. */
export function historyRows(fc) {
  return [...fc.features].reverse().map((f) => {
    const p = f.properties;
    return { version: p.version, from: p.valid_from, to: p.valid_to, by: p.changed_by || '', reason: p.change_reason || '', name: p.name, current: p.valid_to == null, area: p.area_m2 };
  });
}

/** The last change of a unit: its current version's author, time and reason. */
export function lastChange(fc) {
  const rows = historyRows(fc);
  return rows.length ? rows[0] : null;
}

/** The time slider's stops: the instants the history of the shown units
 * changed (each version's valid_from, oldest first, once each), then now
 * (as_of left out). */
export function sliderStops(fcs) {
  const at = new Set();
  for (const fc of fcs) for (const f of fc.features) if (f.properties.valid_from) at.add(f.properties.valid_from);
  const stops = [...at].sort((a, b) => Date.parse(a) - Date.parse(b)).map((t) => ({ asOf: t, label: t }));
  stops.push({ asOf: '', label: '现在' });
  return stops;
}

/** The slider stop that shows asOf: the last change at or before it
 * (now, the last stop, for ''). */
export function stopAt(stops, asOf) {
  if (!asOf) return stops.length - 1;
  const t = Date.parse(asOf);
  let at = 0;
  stops.forEach((s, i) => { if (s.asOf && Date.parse(s.asOf) <= t) at = i; });
  return at;
}

const pad = (n) => String(n).padStart(2, '0');
/** An instant as a datetime-local input's value (local time, seconds). */
export function localInput(asOf) {
  if (!asOf) return '';
  const d = new Date(asOf);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A datetime-local input's value (local time) as an as_of instant;
 * '' (cleared) is now. */
export function asOfInput(value) {
  if (!value) return '';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** The units tiles' URL template with as_of (or without: now). */
export function unitTilesURL(template, asOf) {
  const base = template.split('?')[0];
  return asOf ? `${base}?as_of=${encodeURIComponent(asOf)}` : base;
}

/** A local time for the panel (Asia/Shanghai by default). */
export function shortTime(t, tz = 'Asia/Shanghai') {
  if (!t) return '';
  return new Date(t).toLocaleString('zh-CN', { hour12: false, timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
