package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/project"

	"gridmap/geo"
	"gridmap/grid"
)

// Coordinate systems of a request (docs/api.md, Coordinate systems): ?crs=
// names the system of every coordinate a client sends (query and body) and
// of every coordinate it is answered (GeoJSON geometry, echoed positions):
// an Amap app sends and reads GCJ-02. Inputs are converted to WGS-84 before
// they are checked against the store or written; answers are converted from
// WGS-84 last, so every stored and derived number (area_m2, distance_m)
// stays WGS-84's.

// crsParam reads ?crs= (wgs84 when absent).
func crsParam(r *http.Request) (geo.CRS, error) {
	c, err := geo.ParseCRS(r.URL.Query().Get("crs"))
	if err != nil {
		return "", &paramError{"crs", "crs: " + err.Error() + ", or their URIs " + geo.CRS84URI + ", " + geo.GCJ02URI + ", " + geo.BD09URI}
	}
	return c, nil
}

// setContentCRS names the coordinate system of an answer's coordinates the
// way OGC API – Features Part 2 does (a URI in angle brackets). It is sent
// with every answer that carries coordinates, WGS-84 ones too: a client
// that asked for nothing learns what it got, and one that asked can check.
func setContentCRS(w http.ResponseWriter, c geo.CRS) {
	w.Header().Set("Content-Crs", "<"+c.URI()+">")
}

// inCRS is what a message about a bad input coordinate adds to say which
// system the value was read in ("" for WGS-84, the default).
func inCRS(c geo.CRS) string {
	if c == geo.WGS84 {
		return ""
	}
	return " (in " + string(c) + ")"
}

// crsError adds the coordinate system to a bad coordinate parameter's
// message.
func crsError(err error, c geo.CRS) error {
	if pe, ok := err.(*paramError); ok && c != geo.WGS84 {
		return &paramError{pe.param, pe.detail + inCRS(c)}
	}
	return err
}

// outDecimals rounds converted coordinates: 1e-9° is a tenth of a
// millimetre, what ST_AsGeoJSON(geom, 9) writes for stored ones.
const outDecimals = 1e9

func roundCoord(v float64) float64 { return math.Round(v*outDecimals) / outDecimals }

// pointFromWGS84 converts one WGS-84 position to c, rounded as geometry is.
func pointFromWGS84(c geo.CRS, lon, lat float64) (float64, float64) {
	if c == geo.WGS84 {
		return lon, lat
	}
	x, y := geo.FromWGS84(c, lon, lat)
	return roundCoord(x), roundCoord(y)
}

// geometryFromWGS84 converts a GeoJSON geometry read from the store (null
// and empty stay as they are). One that does not decode is an error (a
// 500), never answered unconverted under a Content-Crs it is not in.
func geometryFromWGS84(c geo.CRS, raw json.RawMessage) (json.RawMessage, error) {
	if c == geo.WGS84 || len(raw) == 0 || string(raw) == "null" {
		return raw, nil
	}
	if out, ok := convertPositions(c, raw); ok {
		return out, nil
	}
	return decodeFromWGS84(c, raw)
}

// decodeFromWGS84 is geometryFromWGS84 through orb's GeoJSON decoder: for
// what convertPositions does not take.
func decodeFromWGS84(c geo.CRS, raw json.RawMessage) (json.RawMessage, error) {
	g, err := geojson.UnmarshalGeometry(raw)
	if err != nil {
		return nil, fmt.Errorf("convert geometry to %s: %w", c, err)
	}
	out, err := json.Marshal(geojson.NewGeometry(orbFromWGS84(c, g.Geometry())))
	if err != nil {
		return nil, fmt.Errorf("convert geometry to %s: %w", c, err)
	}
	return out, nil
}

// convertPositions rewrites the positions of a GeoJSON geometry in place
// of decoding it: a page of 10,000 grids decoded into orb geometries and
// encoded again spends most of its time in encoding/json's reflection.
// Every array of numbers inside a "coordinates" member is a position; its
// first two numbers are converted, the rest copied. ok is false for
// anything it does not read as such (then the decoder is used).
func convertPositions(c geo.CRS, raw []byte) (out []byte, ok bool) {
	out = make([]byte, 0, len(raw)+len(raw)/8)
	inCoords := 0 // bracket depth inside a coordinates value, 0 outside
	i := 0
	for i < len(raw) {
		ch := raw[i]
		switch {
		case ch == '"':
			end := i + 1
			for end < len(raw) && raw[end] != '"' {
				if raw[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(raw) {
				return nil, false
			}
			str := raw[i : end+1]
			out = append(out, str...)
			i = end + 1
			if inCoords == 0 && strings.EqualFold(string(str), `"coordinates"`) {
				if string(str) != `"coordinates"` {
					return nil, false // encoding/json would take it as the member
				}
				for i < len(raw) && (raw[i] == ' ' || raw[i] == ':') {
					out = append(out, raw[i])
					i++
				}
				if i >= len(raw) || raw[i] != '[' {
					return nil, false
				}
				out = append(out, '[')
				i++
				inCoords = 1
			}
			continue
		case inCoords > 0 && ch == '[':
			inCoords++
		case inCoords > 0 && ch == ']':
			inCoords--
		case inCoords > 0 && (ch == '-' || ch >= '0' && ch <= '9'):
			// A position: numbers up to its closing bracket.
			end := i
			for end < len(raw) && raw[end] != ']' {
				end++
			}
			if end >= len(raw) {
				return nil, false
			}
			parts := strings.Split(string(raw[i:end]), ",")
			if len(parts) < 2 {
				return nil, false
			}
			x, err1 := strconv.ParseFloat(strings.TrimSpace(parts[0]), 64)
			y, err2 := strconv.ParseFloat(strings.TrimSpace(parts[1]), 64)
			if err1 != nil || err2 != nil {
				return nil, false
			}
			x, y = pointFromWGS84(c, x, y)
			out = strconv.AppendFloat(out, x, 'f', -1, 64)
			out = append(out, ',')
			out = strconv.AppendFloat(out, y, 'f', -1, 64)
			for _, p := range parts[2:] {
				out = append(out, ',')
				out = append(out, strings.TrimSpace(p)...)
			}
			i = end
			continue
		}
		out = append(out, ch)
		i++
	}
	return out, inCoords == 0
}

// orbFromWGS84 converts every position of g in place, rounded.
func orbFromWGS84(c geo.CRS, g orb.Geometry) orb.Geometry {
	if c == geo.WGS84 || g == nil {
		return g
	}
	return project.Geometry(g, func(p orb.Point) orb.Point {
		p[0], p[1] = pointFromWGS84(c, p[0], p[1])
		return p
	})
}

// collectionFromWGS84 converts the geometry of every feature of a GeoJSON
// FeatureCollection read from the store, keeping the rest of each feature
// as it is.
func collectionFromWGS84(c geo.CRS, raw json.RawMessage) (json.RawMessage, error) {
	if c == geo.WGS84 || len(raw) == 0 || string(raw) == "null" {
		return raw, nil
	}
	var fc struct {
		Type     string                       `json:"type"`
		Features []map[string]json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(raw, &fc); err != nil {
		return nil, fmt.Errorf("convert feature collection to %s: %w", c, err)
	}
	for _, f := range fc.Features {
		g, err := geometryFromWGS84(c, f["geometry"])
		if err != nil {
			return nil, err
		}
		f["geometry"] = g
	}
	return json.Marshal(fc)
}

// violationsFromWGS84 converts the geometry and location of findings; the
// findings are copied, not changed.
func violationsFromWGS84(c geo.CRS, vs []grid.Violation) ([]grid.Violation, error) {
	if c == geo.WGS84 || len(vs) == 0 {
		return vs, nil
	}
	out := make([]grid.Violation, len(vs))
	for i, v := range vs {
		g, err := geometryFromWGS84(c, v.Geometry)
		if err != nil {
			return nil, err
		}
		v.Geometry = g
		if len(v.Location) == 2 {
			x, y := pointFromWGS84(c, v.Location[0], v.Location[1])
			v.Location = []float64{x, y}
		}
		out[i] = v
	}
	return out, nil
}

// bboxToWGS84 converts a bbox given in c: the WGS-84 box is the envelope of
// the converted corners. Both shifts move a few hundred metres at most and
// vary by centimetres across a box's edge, so the envelope of the corners
// is the converted box to well under a metre.
func bboxToWGS84(c geo.CRS, b *[4]float64) *[4]float64 {
	if c == geo.WGS84 || b == nil {
		return b
	}
	out := [4]float64{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	for _, p := range [4][2]float64{{b[0], b[1]}, {b[2], b[1]}, {b[2], b[3]}, {b[0], b[3]}} {
		x, y := geo.ToWGS84(c, p[0], p[1])
		out = [4]float64{min(out[0], x), min(out[1], y), max(out[2], x), max(out[3], y)}
	}
	return &out
}

// pointToWGS84 converts a lon,lat parameter given in c in place.
func pointToWGS84(c geo.CRS, p *[2]float64) *[2]float64 {
	if c == geo.WGS84 || p == nil {
		return p
	}
	p[0], p[1] = geo.ToWGS84(c, p[0], p[1])
	return p
}

// featuresToWGS84 converts the features of an import read in c, geometry
// and raw member alike (a finding about a feature shows its raw geometry,
// and findings are converted back to c on the way out). A feature whose
// geometry failed to decode says which system its positions were read in.
func featuresToWGS84(c geo.CRS, fs []geo.Feature) error {
	if c == geo.WGS84 {
		return nil
	}
	for i := range fs {
		f := &fs[i]
		if f.Err != nil {
			if strings.Contains(f.Err.Error(), "position") {
				f.Err = fmt.Errorf("%w%s", f.Err, inCRS(c))
			}
			continue
		}
		if f.Geometry == nil {
			continue
		}
		f.Geometry = geo.GeometryToWGS84(c, f.Geometry)
		raw, err := json.Marshal(geojson.NewGeometry(f.Geometry))
		if err != nil {
			return err
		}
		f.Raw = raw
	}
	return nil
}

// crsStream converts every record of an import stream to WGS-84 as it is
// read, so the store sees WGS-84 only; a record with a bad position says
// which system it was read in.
type crsStream struct {
	geo.Stream
	crs geo.CRS
}

func (s crsStream) Next() (geo.Record, error) {
	rec, err := s.Stream.Next()
	switch {
	case err != nil:
	case rec.Err != nil:
		if strings.Contains(rec.Err.Error(), "position") {
			rec.Err = fmt.Errorf("%w%s", rec.Err, inCRS(s.crs))
		}
	case rec.Geometry != nil:
		rec.Geometry = geo.GeometryToWGS84(s.crs, rec.Geometry)
	}
	return rec, err
}
