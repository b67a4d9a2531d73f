// The map: MapLibre on the server's wall style, the page's own layers over
// it (the veil outside the selection, its outline, the next level's units,
// one label per unit), the camera and the selection's drawing.

import { authHeaders } from './auth.js';
import { $, num } from './dom.js';
import { bboxOf, labelPoint, maskOf } from './geometry.js';
import { FONT_STACK, sourceOf } from './style.js';
import { LEVELS, childLevel } from './units.js';

export const EMPTY = { type: 'FeatureCollection', features: [] };
const SEL = ['to-string', ['global-state', 'sel']];
const CODE = ['to-string', ['get', 'code']];

/** The room the panels leave the map, as camera padding. */
export function padding() {
  const bar = document.querySelector('.bar').getBoundingClientRect();
  const panel = $('panel').getBoundingClientRect();
  const live = $('live').getBoundingClientRect();
  const rem = parseFloat(getComputedStyle(document.documentElement).fontSize);
  return { top: bar.bottom + 2 * rem, bottom: 3 * rem, left: (live.right || rem) + 2 * rem, right: innerWidth - panel.left + 2 * rem };
}

/** The map on the wall style, over the whole city. */
export function createMap(app) {
  const { maplibregl, style, cityBounds, zooms, scale } = app;
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
    // sees it (an unchanged tile is a 304). Every request to this origin
    // (TileJSON, tiles, glyphs) carries the page's credential, if it has
    // one; a request to another origin never does (authHeaders).
    transformRequest: (url, type) => {
      const headers = authHeaders(url);
      const events = type === 'Tile' && url.includes('/tiles/events/');
      if (!events && !headers.Authorization) return undefined;
      return { url, ...(events ? { cache: 'no-cache' } : {}), ...(headers.Authorization ? { headers } : {}) };
    },
  });
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
  map.addControl(new maplibregl.ScaleControl({ maxWidth: 200 * scale + 80 }), 'bottom-right');
  return map;
}

/** One label point per unit, carrying its name (less the parent's name it
 * starts with: 第001网格 inside 东海社区) and its object total. */
export function labelsOf(features, totals, parentName = '', self = false) {
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

/** Moves the camera onto bounds, at a zoom where the level below shows. */
function flyTo(app, bounds, level, animate) {
  const next = childLevel(level);
  const [zmin, zmax] = app.zooms[next] || [0, 22];
  const cam = app.map.cameraForBounds(bounds, { padding: padding() });
  if (!cam) return;
  const zoom = Math.min(Math.max(cam.zoom, zmin + 0.2), zmax + 0.9);
  app.map.flyTo({ center: cam.center, zoom, duration: animate ? 1600 : 0, essential: true });
}

/** Marks the unit code (of level) selected: the global state `sel` and its
 * feature's state `selected`. */
function markSelected(app, code, level) {
  const { map, state } = app;
  map.setGlobalStateProperty('sel', code || '');
  if (state.featureState) map.removeFeatureState(state.featureState, 'selected');
  state.featureState = null;
  if (code && /^\d+$/.test(code)) {
    state.featureState = { source: app.unitSource, sourceLayer: level, id: Number(code) };
    map.setFeatureState(state.featureState, { selected: true });
  }
}

/** Draws a unit as the selection: outline, veil around it, its labels,
 * and (fly) the camera onto it. */
export function drawSelection(app, { code, level, geometry, labels, fly, animate }) {
  const { map } = app;
  markSelected(app, code, level);
  map.getSource('gm-selection').setData(geometry ? { type: 'Feature', properties: { level }, geometry } : EMPTY);
  map.getSource('gm-mask').setData(geometry ? maskOf(geometry) : EMPTY);
  map.getSource('gm-labels').setData(labels);
  if (geometry && fly) flyTo(app, bboxOf(geometry), level, animate);
}

/** Clears the selection for the city view; (fly) the camera onto the city,
 * its labels cleared until the overview arrives. */
export function clearSelection(app, { fly, animate }) {
  const { map } = app;
  markSelected(app, '', null);
  map.getSource('gm-selection').setData(EMPTY);
  map.getSource('gm-mask').setData(EMPTY);
  if (fly) {
    map.getSource('gm-labels').setData(EMPTY);
    flyTo(app, app.cityBounds, null, animate);
  }
}

/** The page's layers over the style's, once the map has loaded. */
export function addOverlays(app) {
  const { map, style, scale, colors, unitSource } = app;
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
  const objectSource = sourceOf(style, 'objects');
  if (objectSource) {
    map.addLayer({
      id: 'gm-object-labels', type: 'symbol', source: objectSource, 'source-layer': 'objects', minzoom: 16,
      filter: ['all', ['!=', SEL, ''], ['==', ['slice', ['to-string', ['get', 'grid_code']], 0, ['length', SEL]], SEL]],
      layout: { 'text-field': ['get', 'class_name'], 'text-font': FONT_STACK, 'text-size': 22 * scale, 'text-anchor': 'left', 'text-offset': [0.8, 0], 'text-optional': true },
      paint: { 'text-color': '#dfe9f3', 'text-halo-color': '#04101c', 'text-halo-width': 2.5 * scale },
    }, 'gm-labels');
  }
}
