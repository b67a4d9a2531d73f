package geo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

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
	return ParseFeatureCollection(data)
}

// ParseFeatureCollection is DecodeFeatureCollection of a document in
// memory. The features' Raw geometries are slices of data, not copies:
// the document is held once, however large (a 64 MiB import used to be
// held three times over, as bytes, per-feature copies and geometry copies).
func ParseFeatureCollection(data []byte) ([]Feature, error) {
	out, typ, err := scanCollection(data)
	if err != nil {
		// Only a broken document pays for a second, whole parse: it says
		// exactly what and where (line and column) as before.
		var doc struct {
			Type     string            `json:"type"`
			Features []json.RawMessage `json:"features"`
		}
		if uerr := json.Unmarshal(data, &doc); uerr != nil {
			return nil, jsonError(data, uerr)
		}
		// Well-formed after all, in a shape the scan does not take (null):
		// read as encoding/json reads it.
		out = make([]Feature, len(doc.Features))
		for i, raw := range doc.Features {
			out[i] = decodeFeature(i, fmt.Sprintf("features[%d]", i), raw)
		}
		typ = doc.Type
	}
	if typ != "FeatureCollection" {
		return nil, fmt.Errorf("GeoJSON: top-level type is %q, want \"FeatureCollection\"", Excerpt(typ, MaxExcerpt))
	}
	return out, nil
}

// scanCollection reads the collection one feature at a time, with the
// members' matching of encoding/json (the last of a repeated member wins,
// names match case-insensitively).
func scanCollection(data []byte) ([]Feature, string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, "", errors.New("GeoJSON: the document must be an object")
	}
	out := []Feature{}
	typ := ""
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, "", err
		}
		key, _ := t.(string)
		switch {
		case strings.EqualFold(key, "type"):
			if err := dec.Decode(&typ); err != nil {
				return nil, "", err
			}
		case strings.EqualFold(key, "features"):
			if out, err = scanFeatures(dec, data); err != nil {
				return nil, "", err
			}
		default:
			if err := dec.Decode(new(skipValue)); err != nil {
				return nil, "", err
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "", errors.New("GeoJSON: data after the document")
	}
	return out, typ, nil
}

func scanFeatures(dec *json.Decoder, data []byte) ([]Feature, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if t == nil {
		return []Feature{}, nil
	}
	if t != json.Delim('[') {
		return nil, errors.New(`GeoJSON: "features" must be an array`)
	}
	out := []Feature{}
	for i := 0; dec.More(); i++ {
		start := dec.InputOffset()
		if err := dec.Decode(new(skipValue)); err != nil {
			return nil, err
		}
		raw := bytes.TrimLeft(data[start:dec.InputOffset()], " \t\r\n,")
		out = append(out, decodeFeature(i, fmt.Sprintf("features[%d]", i), raw))
	}
	_, err = dec.Token()
	return out, err
}

// skipValue checks a value's syntax and keeps nothing of it.
type skipValue struct{}

func (*skipValue) UnmarshalJSON([]byte) error { return nil }

// rawView is a JSON value as a slice of the document it was read from
// (json.RawMessage copies it).
type rawView []byte

func (v *rawView) UnmarshalJSON(b []byte) error {
	*v = b
	return nil
}

// decodeFeature reads one Feature. where is its path in errors
// ("features[3]"), empty when the feature is the whole record of a stream.
func decodeFeature(i int, where string, raw json.RawMessage) Feature {
	f := Feature{Index: i}
	if te := CheckJSONText(raw); te != nil {
		f.Err = errorAt(joinPath(where, te.Path), te.Msg)
		return f
	}
	var m struct {
		Type       string         `json:"type"`
		ID         any            `json:"id"`
		Properties map[string]any `json:"properties"`
		Geometry   rawView        `json:"geometry"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		f.Err = errorAt(where, err.Error())
		return f
	}
	f.ID, f.Properties, f.Raw = m.ID, m.Properties, json.RawMessage(m.Geometry)
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
