import { test } from 'node:test';
import assert from 'node:assert/strict';
import { movedVertices, nearestOnSegment, ringsOf, snapRings, snapTarget } from '../snap.js';

// A screen where one degree is 1000 px (y grows downwards, as on a map).
const project = ([x, y]) => ({ x: x * 1000, y: -y * 1000 });
const square = { type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]] };

test('ringsOf: polygons, multipolygons and lines', () => {
  assert.equal(ringsOf(square).length, 1);
  assert.equal(ringsOf({ type: 'MultiPolygon', coordinates: [square.coordinates, square.coordinates] }).length, 2);
  assert.deepEqual(ringsOf({ type: 'LineString', coordinates: [[0, 0], [1, 1]] }), [[[0, 0], [1, 1]]]);
  assert.deepEqual(ringsOf(null), []);
});

test('nearestOnSegment: projection clamped to the segment', () => {
  assert.deepEqual(nearestOnSegment({ x: 5, y: 3 }, { x: 0, y: 0 }, { x: 10, y: 0 }), { t: 0.5, d2: 9 });
  assert.equal(nearestOnSegment({ x: -4, y: 0 }, { x: 0, y: 0 }, { x: 10, y: 0 }).t, 0);
  assert.equal(nearestOnSegment({ x: 1, y: 1 }, { x: 2, y: 2 }, { x: 2, y: 2 }).d2, 2);
});

test('snapTarget: a vertex within the tolerance wins over an edge', () => {
  const s = snapTarget([1.005, 0.003], ringsOf(square), project, 12);
  assert.deepEqual(s.coordinate, [1, 0]);
  assert.equal(s.kind, 'vertex');
});

test('snapTarget: near an edge only, onto the edge', () => {
  const s = snapTarget([0.5, 1.004], ringsOf(square), project, 12);
  assert.equal(s.kind, 'edge');
  assert.ok(Math.abs(s.coordinate[0] - 0.5) < 1e-12 && s.coordinate[1] === 1, JSON.stringify(s));
  assert.ok(Math.abs(s.px - 4) < 1e-9);
});

test('snapTarget: nothing within the tolerance', () => {
  assert.equal(snapTarget([0.5, 0.5], ringsOf(square), project, 12), null);
});

test('snapRings: neighbours and parent, never the unit itself', () => {
  const f = (code, g) => ({ properties: { code }, geometry: g });
  const rings = snapRings([f('a', square), f('b', square)], 'a', f('p', square));
  assert.equal(rings.length, 2);
});

test('movedVertices: the vertex a drag moved', () => {
  const after = { type: 'Polygon', coordinates: [[[0, 0], [1.1, 0], [1, 1], [0, 1], [0, 0]]] };
  assert.deepEqual(movedVertices(square, after), [{ ring: 0, index: 1, from: [1, 0], to: [1.1, 0] }]);
  assert.deepEqual(movedVertices(square, square), []);
});
