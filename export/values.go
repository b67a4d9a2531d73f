package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/paulmach/orb"

	"gridmap/geo"
)

// timeLayout is how times are written in text: RFC 3339 in UTC with as
// many fractional digits as they have.
const timeLayout = time.RFC3339Nano

// appendCoord appends v rounded to prec decimals, in the shortest form that
// reads back as that rounded value (no trailing zeros, no exponent).
func appendCoord(b []byte, v float64, scale float64) []byte {
	r := math.Round(v*scale) / scale
	if r == 0 {
		r = 0 // no "-0"
	}
	return strconv.AppendFloat(b, r, 'f', -1, 64)
}

// appendJSONString appends s as a JSON string: only what JSON requires is
// escaped (Chinese stays as UTF-8, "<" stays "<"); invalid UTF-8 becomes
// U+FFFD rather than an invalid document.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendJSONValue appends one attribute value as JSON.
func appendJSONValue(b []byte, t geo.FieldType, v any) ([]byte, error) {
	if v == nil {
		return append(b, "null"...), nil
	}
	switch x := v.(type) {
	case string:
		return appendJSONString(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(b, "null"...), nil // JSON has no NaN
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case time.Time:
		return appendJSONString(b, x.UTC().Format(timeLayout)), nil
	case json.RawMessage:
		raw := bytes.TrimSpace(x)
		if len(raw) == 0 {
			return append(b, "null"...), nil
		}
		// jsonb's text has no line breaks; anything else is compacted so
		// that a sequence (one feature a line) stays one feature a line.
		if bytes.ContainsAny(raw, "\r\n") {
			var c bytes.Buffer
			if err := json.Compact(&c, raw); err != nil {
				return b, fmt.Errorf("export: invalid JSON value: %w", err)
			}
			raw = c.Bytes()
		}
		return append(b, raw...), nil
	}
	return b, fmt.Errorf("export: a %s field holds a %T", typeName(t), v)
}

// textValue is one attribute value as text (CSV, and JSON and times in
// the other tabular formats); "" for null.
func textValue(t geo.FieldType, v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", nil
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case time.Time:
		return x.UTC().Format(timeLayout), nil
	case json.RawMessage:
		return string(bytes.TrimSpace(x)), nil
	}
	return "", fmt.Errorf("export: a %s field holds a %T", typeName(t), v)
}

func typeName(t geo.FieldType) string {
	switch t {
	case geo.String:
		return "string"
	case geo.Integer:
		return "integer"
	case geo.Real:
		return "real"
	case geo.Boolean:
		return "boolean"
	case geo.Time:
		return "time"
	case geo.JSON:
		return "JSON"
	}
	return fmt.Sprintf("type-%d", int(t))
}

// coordWriter appends positions at one precision.
type coordWriter struct{ scale float64 }

func newCoordWriter(prec int) coordWriter { return coordWriter{scale: math.Pow10(prec)} }

// appendGeoJSON appends g as a GeoJSON geometry object.
func (cw coordWriter) appendGeoJSON(b []byte, g orb.Geometry) ([]byte, error) {
	if g == nil {
		return append(b, "null"...), nil
	}
	switch x := g.(type) {
	case orb.Point:
		b = append(b, `{"type":"Point","coordinates":`...)
		b = cw.point(b, x)
	case orb.MultiPoint:
		b = append(b, `{"type":"MultiPoint","coordinates":`...)
		b = cw.points(b, x)
	case orb.LineString:
		b = append(b, `{"type":"LineString","coordinates":`...)
		b = cw.points(b, x)
	case orb.MultiLineString:
		b = append(b, `{"type":"MultiLineString","coordinates":[`...)
		for i, l := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = cw.points(b, l)
		}
		b = append(b, ']')
	case orb.Ring:
		return cw.appendGeoJSON(b, orb.Polygon{x})
	case orb.Bound:
		return cw.appendGeoJSON(b, x.ToPolygon())
	case orb.Polygon:
		b = append(b, `{"type":"Polygon","coordinates":`...)
		b = cw.polygon(b, x)
	case orb.MultiPolygon:
		b = append(b, `{"type":"MultiPolygon","coordinates":[`...)
		for i, p := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = cw.polygon(b, p)
		}
		b = append(b, ']')
	case orb.Collection:
		b = append(b, `{"type":"GeometryCollection","geometries":[`...)
		for i, m := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = cw.appendGeoJSON(b, m); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	default:
		return b, fmt.Errorf("export: geometry of type %T", g)
	}
	return append(b, '}'), nil
}

func (cw coordWriter) point(b []byte, p orb.Point) []byte {
	b = append(b, '[')
	b = appendCoord(b, p[0], cw.scale)
	b = append(b, ',')
	b = appendCoord(b, p[1], cw.scale)
	return append(b, ']')
}

func (cw coordWriter) points(b []byte, ps []orb.Point) []byte {
	b = append(b, '[')
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = cw.point(b, p)
	}
	return append(b, ']')
}

func (cw coordWriter) polygon(b []byte, p orb.Polygon) []byte {
	b = append(b, '[')
	for i, r := range p {
		if i > 0 {
			b = append(b, ',')
		}
		b = cw.points(b, r)
	}
	return append(b, ']')
}

// appendWKT appends g as OGC well-known text (what GDAL's CSV driver and
// QGIS read from a column named "wkt").
func (cw coordWriter) appendWKT(b []byte, g orb.Geometry) ([]byte, error) {
	switch x := g.(type) {
	case nil:
		return b, nil
	case orb.Point:
		b = append(b, "POINT("...)
		b = cw.wktPos(b, x)
		return append(b, ')'), nil
	case orb.MultiPoint:
		if len(x) == 0 {
			return append(b, "MULTIPOINT EMPTY"...), nil
		}
		b = append(b, "MULTIPOINT"...)
		return cw.wktPoints(b, x), nil
	case orb.LineString:
		if len(x) == 0 {
			return append(b, "LINESTRING EMPTY"...), nil
		}
		b = append(b, "LINESTRING"...)
		return cw.wktPoints(b, x), nil
	case orb.MultiLineString:
		if len(x) == 0 {
			return append(b, "MULTILINESTRING EMPTY"...), nil
		}
		b = append(b, "MULTILINESTRING("...)
		for i, l := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = cw.wktPoints(b, l)
		}
		return append(b, ')'), nil
	case orb.Ring:
		return cw.appendWKT(b, orb.Polygon{x})
	case orb.Bound:
		return cw.appendWKT(b, x.ToPolygon())
	case orb.Polygon:
		if len(x) == 0 {
			return append(b, "POLYGON EMPTY"...), nil
		}
		b = append(b, "POLYGON"...)
		return cw.wktPolygon(b, x), nil
	case orb.MultiPolygon:
		if len(x) == 0 {
			return append(b, "MULTIPOLYGON EMPTY"...), nil
		}
		b = append(b, "MULTIPOLYGON("...)
		for i, p := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = cw.wktPolygon(b, p)
		}
		return append(b, ')'), nil
	case orb.Collection:
		if len(x) == 0 {
			return append(b, "GEOMETRYCOLLECTION EMPTY"...), nil
		}
		b = append(b, "GEOMETRYCOLLECTION("...)
		for i, m := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = cw.appendWKT(b, m); err != nil {
				return b, err
			}
		}
		return append(b, ')'), nil
	}
	return b, fmt.Errorf("export: geometry of type %T", g)
}

func (cw coordWriter) wktPos(b []byte, p orb.Point) []byte {
	b = appendCoord(b, p[0], cw.scale)
	b = append(b, ' ')
	return appendCoord(b, p[1], cw.scale)
}

func (cw coordWriter) wktPoints(b []byte, ps []orb.Point) []byte {
	b = append(b, '(')
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = cw.wktPos(b, p)
	}
	return append(b, ')')
}

func (cw coordWriter) wktPolygon(b []byte, p orb.Polygon) []byte {
	b = append(b, '(')
	for i, r := range p {
		if i > 0 {
			b = append(b, ',')
		}
		b = cw.wktPoints(b, r)
	}
	return append(b, ')')
}
