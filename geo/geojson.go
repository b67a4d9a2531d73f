package geo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/paulmach/orb"
)

// Feature is one GeoJSON feature with its position in the collection, so
// every error can say which feature it is about.
type Feature struct {
	Index      int
	ID         any
	Properties map[string]any
	// Raw is the geometry member as sent; Geometry is nil when it failed to
	// decode, and Err says why.
	Raw      json.RawMessage
	Geometry orb.Geometry
	Err      error
}

// SyntaxError is malformed JSON, with the line and column where it breaks.
type SyntaxError struct {
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("malformed JSON at line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// DecodeFeatureCollection reads a whole GeoJSON FeatureCollection. Errors in
// the document's structure are returned; errors in one feature's geometry
// are kept on that Feature so the caller can report all of them at once.
func DecodeFeatureCollection(r io.Reader) ([]Feature, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, jsonError(data, err)
	}
	if doc.Type != "FeatureCollection" {
		return nil, fmt.Errorf("GeoJSON: top-level type is %q, want \"FeatureCollection\"", Excerpt(doc.Type, MaxExcerpt))
	}
	out := make([]Feature, len(doc.Features))
	for i, raw := range doc.Features {
		out[i] = decodeFeature(i, fmt.Sprintf("features[%d]", i), raw)
	}
	return out, nil
}

// decodeFeature reads one Feature. where is its path in errors
// ("features[3]"), empty when the feature is the whole record of a stream.
func decodeFeature(i int, where string, raw json.RawMessage) Feature {
	f := Feature{Index: i}
	var m struct {
		Type       string          `json:"type"`
		ID         any             `json:"id"`
		Properties map[string]any  `json:"properties"`
		Geometry   json.RawMessage `json:"geometry"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		f.Err = errorAt(where, err.Error())
		return f
	}
	f.ID, f.Properties, f.Raw = m.ID, m.Properties, m.Geometry
	if f.Properties == nil {
		f.Properties = map[string]any{}
	}
	if m.Type != "Feature" {
		f.Err = errorAt(where, fmt.Sprintf("type is %q, want \"Feature\"", Excerpt(m.Type, MaxExcerpt)))
		return f
	}
	if len(m.Geometry) == 0 || bytes.Equal(bytes.TrimSpace(m.Geometry), []byte("null")) {
		f.Err = errorAt(where, "geometry is missing")
		return f
	}
	geomAt := "geometry"
	if where != "" {
		geomAt = where + ".geometry"
	}
	g, err := DecodeGeometry(m.Geometry, geomAt)
	if err != nil {
		f.Err = err
		return f
	}
	if err := CheckRange(g); err != nil {
		f.Err = fmt.Errorf("%s: %v", geomAt, err)
		return f
	}
	f.Geometry = g
	return f
}

func errorAt(where, msg string) error {
	if where == "" {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", where, msg)
}

func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(data, se.Offset)
		return &SyntaxError{Line: line, Column: col, Msg: se.Error()}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		line, col := lineCol(data, te.Offset)
		return &SyntaxError{Line: line, Column: col, Msg: fmt.Sprintf("%s: %s where %s was expected", te.Field, te.Value, te.Type)}
	}
	return err
}

// lineCol turns an encoding/json offset ("after reading off bytes", so the
// byte at fault is off-1) into a 1-based line and column.
func lineCol(data []byte, off int64) (int, int) {
	off--
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col := 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// CheckRange reports the first position that is not a finite longitude in
// [-180, 180] and latitude in [-90, 90].
func CheckRange(g orb.Geometry) error {
	var bad error
	walkPoints(g, func(path string, p orb.Point) bool {
		switch {
		case math.IsNaN(p[0]) || math.IsInf(p[0], 0) || math.IsNaN(p[1]) || math.IsInf(p[1], 0):
			bad = fmt.Errorf("position %s %v is not a finite number", path, p)
		case p[0] < -180 || p[0] > 180:
			bad = fmt.Errorf("position %s [%g, %g]: longitude out of range [-180, 180]", path, p[0], p[1])
		case p[1] < -90 || p[1] > 90:
			bad = fmt.Errorf("position %s [%g, %g]: latitude out of range [-90, 90]", path, p[0], p[1])
		}
		return bad == nil
	})
	return bad
}

// walkPoints calls fn with each position and its JSON path inside
// "coordinates" until fn returns false; it reports whether it got to the end.
func walkPoints(g orb.Geometry, fn func(string, orb.Point) bool) bool {
	ring := func(prefix string, r []orb.Point) bool {
		for i, p := range r {
			if !fn(fmt.Sprintf("%s[%d]", prefix, i), p) {
				return false
			}
		}
		return true
	}
	switch g := g.(type) {
	case orb.Point:
		return fn("coordinates", g)
	case orb.MultiPoint:
		return ring("coordinates", g)
	case orb.LineString:
		return ring("coordinates", g)
	case orb.MultiLineString:
		for i, l := range g {
			if !ring(fmt.Sprintf("coordinates[%d]", i), l) {
				return false
			}
		}
	case orb.Polygon:
		for i, r := range g {
			if !ring(fmt.Sprintf("coordinates[%d]", i), r) {
				return false
			}
		}
	case orb.MultiPolygon:
		for j, p := range g {
			for i, r := range p {
				if !ring(fmt.Sprintf("coordinates[%d][%d]", j, i), r) {
					return false
				}
			}
		}
	case orb.Collection:
		for _, c := range g {
			if !walkPoints(c, fn) {
				return false
			}
		}
	}
	return true
}
