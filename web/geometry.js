// Plane geometry of GeoJSON (Multi)Polygons in longitude/latitude, for the
// wall map's veil, camera and labels. Pure functions: no map, no DOM, so
// that test/geometry.test.mjs runs them under Node.

/** The bounding box of a geometry's coordinates as [[west, south], [east, north]]. */
export function bboxOf(geometry) {
  let b = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === 'number') b = [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])];
    else c.forEach(walk);
  };
  walk(geometry.coordinates);
  return [[b[0], b[1]], [b[2], b[3]]];
}

/** A ring's signed area (shoelace): > 0 when it winds counter-clockwise. */
export function ringArea(ring) {
  let a = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) a += (ring[j][0] - ring[i][0]) * (ring[j][1] + ring[i][1]);
  return a / 2;
}

/** A dark veil over everything but the given (Multi)Polygon. */
export function maskOf(geometry) {
  const world = [[-180, -85], [180, -85], [180, 85], [-180, 85], [-180, -85]];
  const signedArea = (ring) => ring.reduce((a, p, i) => { const q = ring[(i + 1) % ring.length]; return a + p[0] * q[1] - q[0] * p[1]; }, 0);
  const polys = geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.coordinates;
  // Holes wind the other way round from the (counter-clockwise) world ring.
  const holes = polys.map((p) => (signedArea(p[0]) > 0 ? [...p[0]].reverse() : p[0]));
  return { type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [world, ...holes] } };
}

/** Signed distance from (x, y) to a polygon's boundary: > 0 inside. kx
 * shrinks longitudes to the latitude's scale (cos φ), so that distances
 * are in degrees of latitude either way. */
export function polygonDistance(x, y, rings, kx) {
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
