package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/paulmach/orb"

	"gridmap/data"
	"gridmap/geo"
)

// editKeep is an edit's keep: a code (merge, split), or a split piece's
// index (a JSON number).
type editKeep struct {
	code  string
	index *int
}

func (k *editKeep) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &k.code)
	}
	if string(b) == "null" {
		return nil
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return fmt.Errorf("keep is a code (a string) or a piece's index (a whole number), not %s", geo.Excerpt(string(b), geo.MaxExcerpt))
	}
	k.index = &n
	return nil
}

// splitArgs reads a split's body: {"line": LineString} or {"pieces":
// FeatureCollection of polygons}, with keep.
func splitArgs(b *editBody, e *data.UnitEdit, crs geo.CRS) error {
	sp := &data.UnitSplit{Keep: b.Keep.code, KeepIndex: b.Keep.index}
	e.Split = sp
	line := len(b.Line) > 0 && string(b.Line) != "null"
	pieces := len(b.Pieces) > 0 && string(b.Pieces) != "null"
	if line == pieces {
		return &data.InvalidError{Field: "line", Msg: `a split sends a cutting line ({"line": LineString}) or the pieces that tile the unit ({"pieces": FeatureCollection}), one of the two`}
	}
	if line {
		g, err := geo.DecodeGeometry(b.Line, "line")
		if err != nil {
			return &data.InvalidError{Field: "line", Msg: err.Error()}
		}
		switch g.(type) {
		case orb.LineString, orb.MultiLineString:
		default:
			return &data.InvalidError{Field: "line", Msg: fmt.Sprintf("the cutting line is a LineString or MultiLineString, not a %s", g.GeoJSONType())}
		}
		if err := geo.CheckRange(g); err != nil {
			return &data.InvalidError{Field: "line", Msg: err.Error() + inCRS(crs)}
		}
		sp.Line, err = geo.EWKB(geo.GeometryToWGS84(crs, g))
		return err
	}
	fs, err := geo.ParseFeatureCollection(b.Pieces)
	if err != nil {
		return &data.InvalidError{Field: "pieces", Msg: err.Error()}
	}
	for _, f := range fs {
		if f.Err != nil {
			return &data.InvalidError{Field: "pieces", Msg: "pieces." + f.Err.Error() + inCRS(crs)}
		}
		mp, err := geo.MultiPolygonOf(geo.GeometryToWGS84(crs, f.Geometry))
		if err != nil {
			return &data.InvalidError{Field: "pieces", Msg: fmt.Sprintf("pieces.features[%d].geometry: %v", f.Index, err)}
		}
		p := data.SplitPiece{}
		if p.Geometry, err = geo.EWKB(mp); err != nil {
			return err
		}
		for _, m := range []struct {
			key string
			to  *string
		}{{"name", nil}, {"code", &p.Code}} {
			v, ok := f.Properties[m.key]
			if !ok || v == nil {
				continue
			}
			s, ok := v.(string)
			if !ok {
				return &data.InvalidError{Field: "pieces", Msg: fmt.Sprintf("pieces.features[%d].properties.%s is a string", f.Index, m.key)}
			}
			if m.to != nil {
				*m.to = s
			} else if s != "" {
				p.Name = &s
			}
		}
		sp.Pieces = append(sp.Pieces, p)
	}
	return nil
}
