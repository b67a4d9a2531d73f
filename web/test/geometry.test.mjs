// The wall map's pure geometry and unit-code functions, under Node alone:
//
//   cd web && node --test test/geometry.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bboxOf, labelPoint, maskOf, polygonDistance, ringArea } from '../geometry.js';
import { chainCodes, childLevel, levelOf } from '../units.js';

const square = (x, y, s) => [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]; // counter-clockwise
const cw = (ring) => [...ring].reverse();
const near = (a, b, eps, msg) => assert.ok(Math.abs(a - b) <= eps, `${msg}: ${a}, want ${b} ± ${eps}`);

test('bboxOf', () => {
  for (const [name, geometry, want] of [
    ['point', { type: 'Point', coordinates: [121.5, 31.2] }, [[121.5, 31.2], [121.5, 31.2]]],
    ['polygon', { type: 'Polygon', coordinates: [square(1, 2, 3)] }, [[1, 2], [4, 5]]],
    ['multipolygon', { type: 'MultiPolygon', coordinates: [[square(0, 0, 1)], [square(5, -3, 2)]] }, [[0, -3], [7, 1]]],
    ['negative', { type: 'LineString', coordinates: [[-10, -20], [-5, -30]] }, [[-10, -30], [-5, -20]]],
  ]) assert.deepEqual(bboxOf(geometry), want, name);
});

test('ringArea is signed by winding', () => {
  for (const [name, ring, want] of [
    ['counter-clockwise', square(0, 0, 2), 4],
    ['clockwise', cw(square(0, 0, 2)), -4],
    ['triangle', [[0, 0], [4, 0], [0, 3], [0, 0]], 6],
    ['degenerate', [[1, 1], [2, 2], [1, 1]], 0],
  ]) assert.equal(ringArea(ring), want, name);
});

test('maskOf: the world with the unit as holes, wound against the world', () => {
  for (const [name, geometry, holes] of [
    ['ccw polygon', { type: 'Polygon', coordinates: [square(0, 0, 1)] }, 1],
    ['cw polygon', { type: 'Polygon', coordinates: [cw(square(0, 0, 1))] }, 1],
    ['multipolygon', { type: 'MultiPolygon', coordinates: [[square(0, 0, 1)], [cw(square(3, 3, 1))]] }, 2],
  ]) {
    const m = maskOf(geometry);
    assert.equal(m.type, 'Feature', name);
    assert.equal(m.geometry.type, 'Polygon', name);
    const [world, ...rest] = m.geometry.coordinates;
    assert.equal(rest.length, holes, name);
    assert.ok(ringArea(world) > 0, `${name}: the world ring winds counter-clockwise`);
    for (const h of rest) assert.ok(ringArea(h) < 0, `${name}: a hole winds clockwise`);
  }
  const ring = square(0, 0, 1);
  maskOf({ type: 'Polygon', coordinates: [ring] });
  assert.deepEqual(ring, square(0, 0, 1), 'the unit geometry is left as it was');
});

test('polygonDistance: > 0 inside, < 0 outside, by the distance to the edge', () => {
  const sq = [square(0, 0, 10)];
  const withHole = [square(0, 0, 10), cw(square(4, 4, 2))];
  for (const [name, rings, x, y, want] of [
    ['centre', sq, 5, 5, 5],
    ['near the left edge', sq, 1, 5, 1],
    ['outside, right', sq, 13, 5, -3],
    ['outside, diagonal', sq, 13, 14, -5],
    ['on the edge', sq, 0, 5, 0],
    ['in the hole', withHole, 5, 5, -1],
    ['beside the hole', withHole, 2, 5, 2],
  ]) near(polygonDistance(x, y, rings, 1), want, 1e-9, name);
  // kx shrinks east-west distances (longitudes at a latitude).
  near(polygonDistance(1, 5, sq, 0.5), 0.5, 1e-9, 'kx 0.5');
});

test('labelPoint: inside the largest part, away from its edges', () => {
  const l = [[0, 0], [10, 0], [10, 2], [2, 2], [2, 10], [0, 10], [0, 0]]; // an L: its middle is outside
  for (const [name, geometry, check] of [
    ['square', { type: 'Polygon', coordinates: [square(0, 0, 1)] }, ([x, y]) => { near(x, 0.5, 0.02, 'x'); near(y, 0.5, 0.02, 'y'); }],
    ['L shape', { type: 'Polygon', coordinates: [l] }, ([x, y]) => assert.ok(polygonDistance(x, y, [l], 1) > 0.8, `(${x}, ${y}) is not well inside the L`)],
    ['largest part', { type: 'MultiPolygon', coordinates: [[square(0, 0, 1)], [square(10, 10, 4)]] }, ([x, y]) => { near(x, 12, 0.1, 'x'); near(y, 12, 0.1, 'y'); }],
    ['hole in the middle', { type: 'Polygon', coordinates: [square(0, 0, 10), cw(square(3, 3, 4))] },
      ([x, y]) => assert.ok(polygonDistance(x, y, [square(0, 0, 10), cw(square(3, 3, 4))], 1) > 1, `(${x}, ${y}) is in or by the hole`)],
  ]) check(labelPoint(geometry), name);
});

test('levelOf, chainCodes and childLevel follow the code lengths', () => {
  for (const [code, level, chain] of [
    ['310101', 'district', ['310101']],
    ['310101001', 'street', ['310101', '310101001']],
    ['310101001001', 'community', ['310101', '310101001', '310101001001']],
    ['31010100100101', 'grid', ['310101', '310101001', '310101001001', '31010100100101']],
    ['310101001001001', 'grid', ['310101', '310101001', '310101001001', '310101001001001']],
  ]) {
    assert.equal(levelOf(code), level, code);
    assert.deepEqual(chainCodes(code), chain, code);
  }
  for (const [level, child] of [[null, 'district'], ['district', 'street'], ['street', 'community'], ['community', 'grid'], ['grid', 'grid']]) {
    assert.equal(childLevel(level), child, String(level));
  }
});
