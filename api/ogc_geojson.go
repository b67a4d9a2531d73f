package api

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/paulmach/orb"

	"gridmap/geo"
)

// A GeoJSON encoder for feature rows that appends to one buffer: items
// pages of 10,000 features are written row by row as the database sends
// them, without a struct or a reflection pass per feature (see
// docs/benchmarks.md, "OGC items", for what it saves).

// coordDecimals is the precision of coordinates, as ST_AsGeoJSON(geom, 9)
// gives them on /v1: 0.1 mm.
const coordDecimals = 9

// appendFeature appends row as a GeoJSON Feature whose properties are the
// schema's fields.
func appendFeature(b []byte, schema *geo.Schema, row *geo.Row) []byte {
	b = append(b, `{"type":"Feature","id":`...)
	b = appendJSONString(b, row.ID)
	b = append(b, `,"geometry":`...)
	b = appendGeometry(b, row.Geometry)
	return appendProperties(b, schema, row)
}

// appendFeatureWith appends row as a Feature whose geometry is the
// GeoJSON text given.
func appendFeatureWith(b []byte, schema *geo.Schema, row *geo.Row, geometry []byte) []byte {
	b = append(b, `{"type":"Feature","id":`...)
	b = appendJSONString(b, row.ID)
	b = append(b, `,"geometry":`...)
	b = append(b, geometry...)
	return appendProperties(b, schema, row)
}

// appendProperties appends the properties member and closes the Feature.
func appendProperties(b []byte, schema *geo.Schema, row *geo.Row) []byte {
	b = append(b, `,"properties":{`...)
	for i, f := range schema.Fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f.Name)
		b = append(b, ':')
		b = appendValue(b, row.Values[i])
	}
	return append(b, "}}"...)
}

// appendValue appends one property value of the types geo.Row holds.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendJSONString(b, v)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return append(b, "null"...)
		}
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	case bool:
		return strconv.AppendBool(b, v)
	case time.Time:
		b = append(b, '"')
		b = v.UTC().AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	case json.RawMessage:
		return append(b, v...)
	}
	// geo.Row promises the types above; anything else is a bug upstream,
	// and JSON null is the honest rendering of "no value we can show".
	return append(b, "null"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: UTF-8 kept as is, control
// characters, quotes and backslashes escaped, invalid UTF-8 replaced.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendGeometry appends g as a GeoJSON geometry (null for nil).
func appendGeometry(b []byte, g orb.Geometry) []byte {
	switch g := g.(type) {
	case nil:
		return append(b, "null"...)
	case orb.Point:
		b = append(b, `{"type":"Point","coordinates":`...)
		b = appendPoint(b, g)
	case orb.MultiPoint:
		b = append(b, `{"type":"MultiPoint","coordinates":`...)
		b = appendPoints(b, g)
	case orb.LineString:
		b = append(b, `{"type":"LineString","coordinates":`...)
		b = appendPoints(b, g)
	case orb.MultiLineString:
		b = append(b, `{"type":"MultiLineString","coordinates":[`...)
		for i, l := range g {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendPoints(b, l)
		}
		b = append(b, ']')
	case orb.Polygon:
		b = append(b, `{"type":"Polygon","coordinates":`...)
		b = appendRings(b, g)
	case orb.MultiPolygon:
		b = append(b, `{"type":"MultiPolygon","coordinates":[`...)
		for i, p := range g {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendRings(b, p)
		}
		b = append(b, ']')
	case orb.Collection:
		b = append(b, `{"type":"GeometryCollection","geometries":[`...)
		for i, c := range g {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendGeometry(b, c)
		}
		b = append(b, ']')
	case orb.Ring:
		return appendGeometry(b, orb.Polygon{g})
	case orb.Bound:
		return appendGeometry(b, g.ToPolygon())
	default:
		return append(b, "null"...)
	}
	return append(b, '}')
}

func appendRings(b []byte, p orb.Polygon) []byte {
	b = append(b, '[')
	for i, r := range p {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendPoints(b, r)
	}
	return append(b, ']')
}

func appendPoints[P ~[]orb.Point](b []byte, ps P) []byte {
	b = append(b, '[')
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendPoint(b, p)
	}
	return append(b, ']')
}

func appendPoint(b []byte, p orb.Point) []byte {
	b = append(b, '[')
	b = appendCoord(b, p[0])
	b = append(b, ',')
	b = appendCoord(b, p[1])
	return append(b, ']')
}

// appendCoord appends a coordinate to coordDecimals places, trailing
// zeros cut.
func appendCoord(b []byte, v float64) []byte {
	n := len(b)
	b = strconv.AppendFloat(b, v, 'f', coordDecimals, 64)
	i := len(b)
	for i > n && b[i-1] == '0' {
		i--
	}
	if i > n && b[i-1] == '.' {
		i--
	}
	if i-n == 2 && b[n] == '-' && b[n+1] == '0' {
		// -0.0000000001 rounds to -0: write 0.
		b[n] = '0'
		i = n + 1
	}
	return b[:i]
}
