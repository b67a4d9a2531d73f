// Snapping for the boundary editor: a vertex dragged (or a cutting line
// drawn) near a neighbour's vertex lands on that vertex, near its edge on
// the edge, so that shared boundaries stay shared. Distances are measured
// on the screen (project: [lon, lat] → {x, y}), as a person aims. Pure
// functions, tested under Node (test/snap.test.mjs).

/** The rings of a (Multi)Polygon or the lines of a (Multi)LineString. */
export function ringsOf(geometry) {
  if (!geometry) return [];
  switch (geometry.type) {
    case 'Polygon': case 'MultiLineString': return geometry.coordinates;
    case 'MultiPolygon': return geometry.coordinates.flat();
    case 'LineString': return [geometry.coordinates];
    default: return [];
  }
}

/** The point of segment a–b nearest to p, in the plane: t along it (0…1)
 * and the squared distance. */
export function nearestOnSegment(p, a, b) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len2 = dx * dx + dy * dy;
  const t = len2 ? Math.max(0, Math.min(1, ((p.x - a.x) * dx + (p.y - a.y) * dy) / len2)) : 0;
  const ex = p.x - (a.x + t * dx);
  const ey = p.y - (a.y + t * dy);
  return { t, d2: ex * ex + ey * ey };
}

/** Where the point lnglat snaps to among rings (arrays of [lon, lat]), or
 * null when nothing is within tolPx pixels: the nearest vertex within the
 * tolerance wins over any edge (a corner is where boundaries meet), else
 * the nearest point of an edge. {coordinate, kind: 'vertex'|'edge', px}. */
export function snapTarget(lnglat, rings, project, tolPx = 12) {
  const p = project(lnglat);
  const tol2 = tolPx * tolPx;
  let vertex = null;
  let edge = null;
  for (const ring of rings) {
    let prev = null;
    for (const c of ring) {
      const q = project(c);
      const d2 = (q.x - p.x) ** 2 + (q.y - p.y) ** 2;
      if (d2 <= tol2 && (!vertex || d2 < vertex.d2)) vertex = { c, d2 };
      if (prev) {
        const s = nearestOnSegment(p, prev.q, q);
        if (s.d2 <= tol2 && (!edge || s.d2 < edge.d2)) {
          const a = prev.c;
          edge = { c: [a[0] + s.t * (c[0] - a[0]), a[1] + s.t * (c[1] - a[1])], d2: s.d2 };
        }
      }
      prev = { c, q };
    }
  }
  if (vertex) return { coordinate: [vertex.c[0], vertex.c[1]], kind: 'vertex', px: Math.sqrt(vertex.d2) };
  if (edge) return { coordinate: edge.c, kind: 'edge', px: Math.sqrt(edge.d2) };
  return null;
}

/** The rings to snap to: every neighbour's outline (not the unit's own,
 * whose vertices are the ones being moved) and the parent's. */
export function snapRings(neighbours, selfCode, parent) {
  const out = [];
  for (const f of neighbours) if (f.properties.code !== selfCode) out.push(...ringsOf(f.geometry));
  if (parent) out.push(...ringsOf(parent.geometry));
  return out;
}

/** The vertices of a polygon's rings (each ring closed, first = last) a
 * drag moved, by index: the pairs that differ. */
export function movedVertices(before, after) {
  const out = [];
  const a = ringsOf(before);
  const b = ringsOf(after);
  for (let r = 0; r < Math.min(a.length, b.length); r++) {
    if (a[r].length !== b[r].length) { out.push({ ring: r, changed: 'count' }); continue; }
    a[r].forEach((c, i) => { if (c[0] !== b[r][i][0] || c[1] !== b[r][i][1]) out.push({ ring: r, index: i, from: c, to: b[r][i] }); });
  }
  return out;
}
