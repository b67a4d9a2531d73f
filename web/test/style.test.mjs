// The wall map's pure style functions, under Node alone: fitting the
// server's wall style to a screen and reading the event states from it.
//
//   cd web && node --test test/style.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FONT_STACK, STATUSES_KEY, adaptStyle, eventPalette, eventStatuses, scaleValue, sourceOf, wallScale } from '../style.js';

/** A small wall style as tiles.WallStyle writes it. */
function wallStyle() {
  return {
    version: 8,
    glyphs: 'http://wall.example/fonts/{fontstack}/{range}.pbf',
    state: { now: { default: 0 } },
    metadata: {
      [STATUSES_KEY]: [
        { status: 'reported', name: '上报', color: '#ff6a3d', open: true },
        { status: 'handled', name: '已处置', color: '#22d3ee', open: false },
        { status: 'returned', name: '退回', color: '#e040fb', open: true },
      ],
    },
    sources: {
      units: { type: 'vector', url: 'http://wall.example/tiles/units.json' },
      objects: { type: 'vector', url: 'http://wall.example/tiles/objects.json' },
      events: { type: 'vector', url: 'http://wall.example/tiles/events.json' },
    },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': '#0b1420' } },
      { id: 'district-line', type: 'line', source: 'units', 'source-layer': 'district', paint: { 'line-width': 3.5 } },
      { id: 'objects', type: 'circle', source: 'objects', 'source-layer': 'objects', paint: { 'circle-radius': ['interpolate', ['linear'], ['zoom'], 14, 2.5, 18, 7] } },
      { id: 'events-overdue-halo', type: 'circle', source: 'events', 'source-layer': 'events', paint: { 'circle-color': '#ff0000', 'circle-radius': 18 } },
      { id: 'events', type: 'circle', source: 'events', 'source-layer': 'events', minzoom: 13,
        paint: { 'circle-color': ['match', ['get', 'status'], 'reported', '#123456', 'handled', '#22d3ee', '#e6edf3'], 'circle-stroke-width': ['case', ['get', 'overdue'], 4, 2] } },
      { id: 'district-label', type: 'symbol', source: 'units', 'source-layer': 'district', layout: { 'text-size': 28, 'text-font': ['Noto Sans CJK SC Regular'] }, paint: { 'text-halo-width': 2 } },
    ],
  };
}

test('wallScale: 1 on a 4K wall, bounded to [0.6, 2]', () => {
  for (const [w, h, want] of [[3840, 2160, 1], [1920, 1080, 0.6], [1920, 2160, 0.6], [2880, 2160, 0.75], [7680, 4320, 2], [20000, 20000, 2], [3840, 1620, 0.75]]) {
    assert.equal(wallScale(w, h), want, `${w}×${h}`);
  }
});

test('scaleValue scales numbers and the outputs of expressions only', () => {
  for (const [name, v, s, want] of [
    ['number', 3.5, 2, 7],
    ['rounded to hundredths', 1, 1 / 3, 0.33],
    ['string', '#fff', 2, '#fff'],
    ['interpolate', ['interpolate', ['linear'], ['zoom'], 14, 2.5, 18, 7], 2, ['interpolate', ['linear'], ['zoom'], 14, 5, 18, 14]],
    ['step', ['step', ['zoom'], 1, 13, 2], 3, ['step', ['zoom'], 3, 13, 6]],
    ['case', ['case', ['get', 'a'], 4, ['get', 'b'], 6, 2], 0.5, ['case', ['get', 'a'], 2, ['get', 'b'], 3, 1]],
    ['nested', ['interpolate', ['linear'], ['zoom'], 13, ['case', ['get', 'done'], 5, 9]], 2, ['interpolate', ['linear'], ['zoom'], 13, ['case', ['get', 'done'], 10, 18]]],
    ['other expression', ['get', 'size'], 2, ['get', 'size']],
  ]) assert.deepEqual(scaleValue(v, s), want, name);
});

test('adaptStyle: local fonts, no glyphs, sizes scaled, global state declared', () => {
  const style = adaptStyle(wallStyle(), 2, 1700000000);
  assert.equal(style.glyphs, undefined);
  assert.deepEqual(style.state, { now: { default: 1700000000 }, sel: { default: '' } });
  const byId = Object.fromEntries(style.layers.map((l) => [l.id, l]));
  const label = byId['district-label'];
  assert.deepEqual(label.layout['text-font'], FONT_STACK);
  assert.equal(label.layout['text-size'], 64.4); // 28 × 2 × 1.15
  assert.equal(label.paint['text-halo-width'], 5.2); // 2 × 2 × 1.3
  assert.equal(label.layout['text-padding'], 8);
  assert.equal(byId['district-line'].paint['line-width'], 7);
  // Objects' dots half as large again.
  assert.deepEqual(byId.objects.paint['circle-radius'], ['interpolate', ['linear'], ['zoom'], 14, 7.5, 18, 21]);
  assert.equal(byId['events-overdue-halo'].paint['circle-radius'], 36);
  assert.deepEqual(byId.events.paint['circle-stroke-width'], ['case', ['get', 'overdue'], 8, 4]);
  assert.deepEqual(byId.background.paint, { 'background-color': '#0b1420' });
});

test('eventStatuses reads the states from the metadata, in order', () => {
  for (const [name, style, want] of [
    ['wall style', wallStyle(), {
      all: ['reported', 'handled', 'returned'],
      zh: { reported: '上报', handled: '已处置', returned: '退回' },
      open: ['reported', 'returned'],
      color: { reported: '#ff6a3d', handled: '#22d3ee', returned: '#e040fb' },
    }],
    ['no metadata', { layers: [] }, { all: [], zh: {}, open: [], color: {} }],
  ]) assert.deepEqual(eventStatuses(style), want, name);
});

test('eventPalette: the events layer, its colours over the metadata, the halo colour', () => {
  const style = wallStyle();
  assert.deepEqual(eventPalette(style, eventStatuses(style)), {
    pal: { reported: '#123456', handled: '#22d3ee', returned: '#e040fb' }, overdue: '#ff0000', layer: 'events',
  });
  const bare = { layers: [] };
  assert.deepEqual(eventPalette(bare, { color: { closed: '#8b98a9' } }), { pal: { closed: '#8b98a9' }, overdue: '#ff2d47', layer: undefined });
});

test('sourceOf finds a tileset by its TileJSON URL', () => {
  const style = wallStyle();
  for (const [tileset, want] of [['units', 'units'], ['objects', 'objects'], ['events', 'events'], ['nothing', undefined]]) {
    assert.equal(sourceOf(style, tileset), want, tileset);
  }
});
