// The server's wall style (/styles/wall.json) fitted to this screen, and
// what the page reads from it: the event states (its metadata), their
// colours and its layers' names. Pure functions, tested under Node.

// Map labels are drawn with these local fonts (bold: the first name says so).
export const FONT_STACK = ['Noto Sans CJK SC Bold', 'Noto Sans CJK SC', 'Source Han Sans SC', 'Microsoft YaHei', 'PingFang SC', 'WenQuanYi Micro Hei'];
/** The style's metadata entry that lists the event states (tiles.EventStatusesKey). */
export const STATUSES_KEY = 'gridmap:event-statuses';
const OVERDUE_COLOR = '#ff2d47';

/** How much bigger than the style's 4K sizes to draw: 1 on a 3840×2160 wall. */
export function wallScale(width, height) {
  return Math.min(2, Math.max(0.6, Math.min(width / 3840, height / 2160)));
}

/** Scales a number, or the outputs of a zoom/data interpolate or step. */
export function scaleValue(v, s) {
  if (typeof v === 'number') return Math.round(v * s * 100) / 100;
  if (!Array.isArray(v)) return v;
  const outs = (rest) => rest.map((x, i) => (i % 2 ? scaleValue(x, s) : x));
  if (String(v[0]).startsWith('interpolate')) return [...v.slice(0, 3), ...outs(v.slice(3))];
  if (v[0] === 'step') return [v[0], v[1], scaleValue(v[2], s), ...outs(v.slice(3))];
  // case: conditions at odd places, outputs at even ones and last.
  if (v[0] === 'case') return v.map((x, i) => (i > 0 && (i % 2 === 0 || i === v.length - 1) ? scaleValue(x, s) : x));
  return v;
}

/** Fits the server's wall style to this screen: sizes scaled by s, labels
 * in local CJK fonts, a global `sel` for the selection and `now` (Unix
 * seconds) for the deadlines. Changes style in place and returns it. */
export function adaptStyle(style, s, now) {
  delete style.glyphs;
  style.state = { ...(style.state || {}), sel: { default: '' }, now: { default: now } };
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

/** The event states as the style's metadata lists them (in workflow
 * order): all: their names; zh: name → Chinese; open: the names whose
 * deadline clock runs; color: name → colour. */
export function eventStatuses(style) {
  const list = (style.metadata && style.metadata[STATUSES_KEY]) || [];
  return {
    all: list.map((s) => s.status),
    zh: Object.fromEntries(list.map((s) => [s.status, s.name])),
    open: list.filter((s) => s.open).map((s) => s.status),
    color: Object.fromEntries(list.map((s) => [s.status, s.color])),
  };
}

/** The status colours, the overdue colour and the id of the style's events
 * layer (the circles coloured by a match on status); the colours a layer
 * draws win over the metadata's. */
export function eventPalette(style, statuses) {
  const pal = { ...statuses.color };
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

/** The style's source whose TileJSON URL names the tileset (/tiles/{name}). */
export function sourceOf(style, tileset) {
  return Object.keys(style.sources).find((k) => String(style.sources[k].url || '').includes(`/tiles/${tileset}`));
}
