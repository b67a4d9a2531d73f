import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asOfInput, editRequest, editURL, historyRows, lastChange, localInput, outcomeOf, sliderStops, stopAt, unitTilesURL, violationsOf } from '../preview.js';

test('editRequest: routes, bodies and the units whose ETags are needed', () => {
  const g = { type: 'Polygon', coordinates: [] };
  assert.deepEqual(editRequest('reshape', { code: '440308001001001', geometry: g }),
    { method: 'PUT', path: '/v1/units/440308001001001', body: { type: 'Feature', properties: {}, geometry: g }, ifMatch: ['440308001001001'] });
  assert.equal(editRequest('split', { code: 'x', line: g }).path, '/v1/units/x:split');
  assert.deepEqual(editRequest('merge', { codes: ['a', 'b'], keep: 'a' }).ifMatch, ['a', 'b']);
  assert.deepEqual(editRequest('revert', { code: 'a', version: 2 }).body, { version: 2 });
  assert.deepEqual(editRequest('retire', { code: 'a', into: 'b' }).body, { into: 'b' });
  assert.deepEqual(editRequest('create', { parent: 'p', name: 'n', geometry: g }).ifMatch, []);
  assert.throws(() => editRequest('nope', {}));
});

test('editURL: dry run, neighbours and reason', () => {
  assert.equal(editURL('/v1/units/a', { dryRun: true, adjust: true, reason: '调整 边界' }), '/v1/units/a?dry_run=true&neighbours=adjust&reason=%E8%B0%83%E6%95%B4+%E8%BE%B9%E7%95%8C');
  assert.equal(editURL('/v1/units:merge', { reason: 'r' }), '/v1/units:merge?reason=r');
});

test('outcomeOf: a dry run becomes a preview', () => {
  const o = outcomeOf(200, { operation: 'merge', dry_run: true, units_written: [{ code: 'a', version: 2 }], units_retired: ['b'], new_codes: ['a009'],
    code_map: { b001: 'a009' }, objects_moved: 3, open_events_moved: 1, changed_area: { type: 'MultiPolygon', coordinates: [] }, warnings: [],
    units_written_geojson: { type: 'FeatureCollection', features: [{ type: 'Feature', properties: { code: 'a', name: 'A', level: 'grid', version: 2 }, geometry: { type: 'Polygon', coordinates: [] } }] } });
  assert.equal(o.kind, 'preview');
  assert.equal(o.outlines.features.length, 1);
  assert.equal(o.outlines.features[0].properties.label, 'a v2');
  assert.equal(outcomeOf(200, { operation: 'merge' }).outlines.features.length, 0);
  assert.equal(o.title, '合并 · 预览');
  assert.deepEqual(o.written, ['a v2']);
  assert.deepEqual(o.codeMap, [['b001', 'a009']]);
  assert.equal(o.objectsMoved, 3);
  assert.equal(o.eventsMoved, 1);
  assert.equal(o.changedArea.geometry.type, 'MultiPolygon');
});

test('outcomeOf: 422 violations, drawn with their rule and message', () => {
  const problem = { status: 422, violations: [{ rule: 'overlap', message: 'a overlaps b', codes: ['a', 'b'] }],
    violations_geojson: { type: 'FeatureCollection', features: [{ type: 'Feature', properties: { rule: 'overlap', message: 'a overlaps b', codes: ['a', 'b'], severity: 'error' }, geometry: { type: 'Polygon', coordinates: [] } }] } };
  const o = outcomeOf(422, problem);
  assert.equal(o.kind, 'violations');
  assert.deepEqual(o.items, [{ rule: 'overlap', ruleZh: '重叠', message: 'a overlaps b', codes: ['a', 'b'] }]);
  assert.equal(o.geojson.features[0].properties.label, '重叠\na overlaps b');
  assert.equal(o.geojson.features[0].properties.codes, 'a b');
});

test('violationsOf: a 422 without findings (a missing parameter) still says why', () => {
  const v = violationsOf({ status: 422, param: 'line', detail: 'the line does not cut the unit' });
  assert.equal(v.items.length, 1);
  assert.equal(v.items[0].message, 'the line does not cut the unit');
});

test('outcomeOf: stale and other errors', () => {
  assert.equal(outcomeOf(412, {}).kind, 'stale');
  assert.equal(outcomeOf(428, {}).kind, 'error');
  assert.match(outcomeOf(409, { title: 'Conflict', detail: 'code exists' }).message, /409 Conflict: code exists/);
});

const hist = { type: 'FeatureCollection', features: [
  { properties: { version: 1, valid_from: '2026-01-01T00:00:00Z', valid_to: '2026-02-01T00:00:00Z', changed_by: 'import', change_reason: '' } },
  { properties: { version: 2, valid_from: '2026-02-01T00:00:00Z', valid_to: null, changed_by: 'token:ed', change_reason: '道路改线' } },
] };

test('historyRows and lastChange: newest first', () => {
  assert.deepEqual(historyRows(hist).map((r) => r.version), [2, 1]);
  assert.deepEqual(lastChange(hist), { version: 2, from: '2026-02-01T00:00:00Z', to: null, by: 'token:ed', reason: '道路改线', name: undefined, current: true, area: undefined });
  assert.equal(lastChange({ features: [] }), null);
});

test('sliderStops: each change once, oldest first, then now', () => {
  const s = sliderStops([hist, hist]);
  assert.deepEqual(s.map((x) => x.asOf), ['2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z', '']);
});

test('unitTilesURL: as_of added or removed', () => {
  const t = 'http://h/tiles/units/{z}/{x}/{y}.mvt';
  assert.equal(unitTilesURL(t, '2026-01-01T00:00:00Z'), 'http://h/tiles/units/{z}/{x}/{y}.mvt?as_of=2026-01-01T00%3A00%3A00Z');
  assert.equal(unitTilesURL(`${t}?as_of=x`, ''), t);
});

test('any past date: the slider stop before it, the date input round trip', () => {
  const stops = [{ asOf: '2026-01-01T00:00:00Z' }, { asOf: '2026-03-01T00:00:00Z' }, { asOf: '' }];
  assert.equal(stopAt(stops, ''), 2);
  assert.equal(stopAt(stops, '2026-02-01T00:00:00Z'), 0);
  assert.equal(stopAt(stops, '2026-03-01T00:00:00Z'), 1);
  assert.equal(stopAt(stops, '2025-01-01T00:00:00Z'), 0);
  assert.equal(localInput(''), '');
  assert.equal(asOfInput(''), '');
  assert.equal(asOfInput('nonsense'), '');
  assert.match(localInput('2026-02-01T12:34:56.789Z'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:56$/);
  assert.equal(asOfInput(localInput('2026-02-01T12:34:56.789Z')), '2026-02-01T12:34:56.000Z');
});
