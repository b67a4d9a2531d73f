package geo

import (
	"fmt"

	"github.com/paulmach/orb"
)

// MultiPolygonOf turns a Polygon or MultiPolygon into a clean MultiPolygon:
// repeated consecutive vertices are dropped and every ring is checked to be
// closed with at least three distinct corners. Ring winding is left as is;
// PostGIS accepts either and the store normalises on write.
func MultiPolygonOf(g orb.Geometry) (orb.MultiPolygon, error) {
	var mp orb.MultiPolygon
	switch g := g.(type) {
	case orb.Polygon:
		mp = orb.MultiPolygon{g}
	case orb.MultiPolygon:
		mp = g
	case nil:
		return nil, fmt.Errorf("geometry is missing")
	default:
		return nil, fmt.Errorf("geometry type %s: a unit must be a Polygon or MultiPolygon", g.GeoJSONType())
	}
	if len(mp) == 0 {
		return nil, fmt.Errorf("geometry is empty")
	}
	out := make(orb.MultiPolygon, 0, len(mp))
	for j, poly := range mp {
		if len(poly) == 0 {
			return nil, fmt.Errorf("coordinates[%d]: polygon has no rings", j)
		}
		np := make(orb.Polygon, 0, len(poly))
		for i, ring := range poly {
			if len(ring) == 0 || ring[0] != ring[len(ring)-1] {
				return nil, fmt.Errorf("coordinates[%d][%d]: ring is not closed (RFC 7946: first and last positions must be equal)", j, i)
			}
			r := DropRepeats(ring)
			if len(r) < 4 {
				return nil, fmt.Errorf("coordinates[%d][%d]: ring has %d distinct positions, at least 3 are needed", j, i, len(r)-1)
			}
			np = append(np, r)
		}
		out = append(out, np)
	}
	return out, nil
}

// DropRepeats returns r without consecutive duplicate positions.
func DropRepeats(r orb.Ring) orb.Ring {
	out := make(orb.Ring, 0, len(r))
	for i, p := range r {
		if i > 0 && p == r[i-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}
