package geo

import (
	"fmt"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/ewkb"
)

// SRID of every geometry gridmap stores: WGS 84 longitude/latitude.
const SRID = 4326

// EWKB encodes g with SRID 4326 for PostGIS.
func EWKB(g orb.Geometry) ([]byte, error) { return ewkb.Marshal(g, SRID) }

// FromEWKB decodes PostGIS (E)WKB bytes.
func FromEWKB(b []byte) (orb.Geometry, error) {
	g, _, err := ewkb.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("decode EWKB: %w", err)
	}
	return g, nil
}

// MultiPolygonFromEWKB decodes bytes that must hold a (Multi)Polygon.
func MultiPolygonFromEWKB(b []byte) (orb.MultiPolygon, error) {
	g, err := FromEWKB(b)
	if err != nil {
		return nil, err
	}
	switch g := g.(type) {
	case orb.MultiPolygon:
		return g, nil
	case orb.Polygon:
		return orb.MultiPolygon{g}, nil
	}
	return nil, fmt.Errorf("geometry is %s, want MultiPolygon", g.GeoJSONType())
}
