package geo

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// Fuzz targets for the parsers of outside input in this package. `go test`
// runs each on its seeds below; `go test -fuzz=FuzzDecodeGeometry ./geo/`
// explores further and keeps what fails under testdata/fuzz.

var geometrySeeds = []string{
	`{"type":"Point","coordinates":[114.05,22.55]}`,
	`{"type":"Point","coordinates":[114.05,22.55,12.5]}`,
	`{"type":"Point","coordinates":[114]}`,
	`{"type":"Point","coordinates":[]}`,
	`{"type":"Point","coordinates":[null,22]}`,
	`{"type":"Point","coordinates":["114",22]}`,
	`{"type":"Point","coordinates":[114,22,5,6]}`,
	`{"type":"Point","coordinates":[1e999,0]}`,
	`{"type":"Point","coordinates":null}`,
	`{"type":"MultiPoint","coordinates":[[1,2],[3,4,5]]}`,
	`{"type":"LineString","coordinates":[[0,0],[1,1]]}`,
	`{"type":"MultiLineString","coordinates":[[[0,0],[1,1]],[]]}`,
	`{"type":"Polygon","coordinates":[[[114,22],[114.1,22],[114.1,22.1],[114,22]]]}`,
	`{"type":"Polygon","coordinates":[[[114,22],[114.1],[114.1,22.1],[114,22]]]}`,
	`{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[2,2],[3,2],[3,3],[2,2]]]]}`,
	`{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0,1,{"a":["]"]}]]]]}`,
	`{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[0,0]}]}`,
	`{"type":"Circle","coordinates":[0,0]}`,
}

// FuzzDecodeGeometry: no panic; what DecodeGeometry accepts encoding/json
// (through orb) reads the same, with finite numbers only.
func FuzzDecodeGeometry(f *testing.F) {
	for _, s := range geometrySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		g, err := DecodeGeometry(raw, "geometry")
		if err != nil {
			if g != nil {
				t.Fatalf("a geometry %v with the error %v", g, err)
			}
			var pe *PositionError
			if errors.As(err, &pe) && !strings.HasPrefix(pe.Path(), "geometry.coordinates") {
				t.Fatalf("path %q of %v", pe.Path(), err)
			}
			return
		}
		walkPoints(g, func(path string, p orb.Point) bool {
			if math.IsNaN(p[0]) || math.IsInf(p[0], 0) || math.IsNaN(p[1]) || math.IsInf(p[1], 0) {
				t.Fatalf("%s %v is not finite", path, p)
			}
			return true
		})
		og, err := geojson.UnmarshalGeometry(raw)
		if err != nil {
			t.Fatalf("accepted %s, which orb refuses: %v", raw, err)
		}
		if !sameGeometry(g, og.Coordinates) {
			t.Fatalf("read %s as %#v, orb as %#v", raw, g, og.Coordinates)
		}
	})
}

// sameGeometry compares by positions, so an empty slice equals a nil one.
func sameGeometry(a, b orb.Geometry) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return false
	}
	var pa, pb []orb.Point
	walkPoints(a, func(_ string, p orb.Point) bool { pa = append(pa, p); return true })
	walkPoints(b, func(_ string, p orb.Point) bool { pb = append(pb, p); return true })
	return reflect.DeepEqual(pa, pb)
}

// FuzzParsePosition: no panic; an accepted position is what encoding/json
// reads as 2 or 3 float64s.
func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{`[114.05,22.55]`, `[114,22,3]`, `[114]`, `[]`, `[null,22]`, `["114",22]`,
		`[114,22,5,6]`, `[1e999,0]`, `[-0,0E-2]`, `null`, `[1,2,3,[4,{"5":"]"}]]`, `[01,2]`} {
		f.Add([]byte(s), 2)
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, raw []byte, most int) {
		if most < 2 || most > 4 {
			return
		}
		p, err := ParsePosition(raw, most)
		if err != nil {
			return
		}
		var xs []float64
		if err := json.Unmarshal(raw, &xs); err != nil {
			t.Fatalf("accepted %s, which encoding/json refuses: %v", raw, err)
		}
		if len(xs) < 2 || len(xs) > most || xs[0] != p[0] || xs[1] != p[1] {
			t.Fatalf("read %s as %v, encoding/json as %v", raw, p, xs)
		}
	})
}

// FuzzDecodeFeatureCollection: no panic; a feature without an error has a
// geometry in range, and one with an error has none.
func FuzzDecodeFeatureCollection(f *testing.F) {
	f.Add([]byte(`{"type":"FeatureCollection","features":[]}`))
	for _, s := range geometrySeeds {
		f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","id":"a","properties":{"code":"1"},"geometry":` + s + `}]}`))
	}
	f.Add([]byte(`{"type":"FeatureCollection","features":[42,{"type":"Fature"},{"type":"Feature","geometry":null}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fs, err := DecodeFeatureCollection(bytes.NewReader(raw))
		if err != nil {
			return
		}
		for i, ft := range fs {
			checkDecoded(t, ft.Geometry, ft.Err)
			if ft.Index != i {
				t.Fatalf("features[%d].Index = %d", i, ft.Index)
			}
		}
	})
}

func checkDecoded(t *testing.T, g orb.Geometry, err error) {
	t.Helper()
	switch {
	case err != nil && g != nil:
		t.Fatalf("a geometry %v with the error %v", g, err)
	case err == nil && g == nil:
		t.Fatalf("neither a geometry nor an error")
	case err == nil:
		if rerr := CheckRange(g); rerr != nil {
			t.Fatalf("accepted %v: %v", g, rerr)
		}
	}
}

// FuzzStream reads an object file in each format to its end: no panic, no
// endless loop, every record either an error or a geometry in range.
func FuzzStream(f *testing.F) {
	for _, s := range geometrySeeds {
		feat := `{"type":"Feature","properties":{"code":"x","class":"0101"},"geometry":` + s + `}`
		f.Add([]byte(`{"type":"FeatureCollection","features":[`+feat+`]}`), uint8(0))
		f.Add([]byte(feat+"\n\x1e"+feat+"\n"), uint8(1))
	}
	for _, s := range []string{
		"code,class,lon,lat,attrs\nx,0101,114.05,22.55,\"{\"\"a\"\":1}\"\n",
		"code,class,lon,lat\nx,0101,114,\ny,0101,,\nz,0101,null,22\nw,0101,114,22,5,6\n",
		"lon,lat\n1e999,0\nNaN,0\n\"114,22\n",
		"\ufeffLongitude,Latitude\n114,22\n",
	} {
		f.Add([]byte(s), uint8(2))
	}
	formats := []Format{FormatGeoJSON, FormatNDJSON, FormatCSV}
	f.Fuzz(func(t *testing.T, raw []byte, which uint8) {
		s, err := NewStream(bytes.NewReader(raw), formats[int(which)%len(formats)])
		if err != nil {
			return
		}
		for n := 0; ; n++ {
			if n > len(raw)+1 {
				t.Fatalf("%d records from %d bytes", n, len(raw))
			}
			rec, err := s.Next()
			if err != nil { // io.EOF or the end of a broken document
				return
			}
			checkDecoded(t, rec.Geometry, rec.Err)
		}
	})
}

// FuzzFromEWKB: bytes claiming to be EWKB decode or fail, never panic;
// what decodes encodes back to bytes that decode to the same.
func FuzzFromEWKB(f *testing.F) {
	for _, g := range []orb.Geometry{
		orb.Point{114.05, 22.55},
		orb.LineString{{0, 0}, {1, 1}},
		orb.Polygon{{{0, 0}, {1, 0}, {1, 1}, {0, 0}}},
		orb.MultiPolygon{{{{0, 0}, {1, 0}, {1, 1}, {0, 0}}}, {{{2, 2}, {3, 2}, {3, 3}, {2, 2}}}},
	} {
		b, err := EWKB(g)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0x01, 0x06, 0x00, 0x00, 0x20, 0xe6, 0x10, 0x00, 0x00, 0xff, 0xff, 0xff, 0x7f}) // a MultiPolygon claiming 2^31 parts
	f.Fuzz(func(t *testing.T, raw []byte) {
		if mp, err := MultiPolygonFromEWKB(raw); err == nil && mp == nil {
			t.Fatalf("no MultiPolygon and no error")
		}
		g, err := FromEWKB(raw)
		if err != nil {
			return
		}
		b, err := EWKB(g)
		if err != nil {
			return // a geometry type EWKB does not write (such as a nested collection)
		}
		g2, err := FromEWKB(b)
		if err != nil {
			t.Fatalf("re-encoded %v does not decode: %v", g, err)
		}
		if !orb.Equal(g, g2) && !hasNaN(g) {
			t.Fatalf("round trip %v → %v", g, g2)
		}
	})
}

func hasNaN(g orb.Geometry) bool {
	nan := false
	walkPoints(g, func(_ string, p orb.Point) bool {
		nan = math.IsNaN(p[0]) || math.IsNaN(p[1])
		return !nan
	})
	return nan
}
