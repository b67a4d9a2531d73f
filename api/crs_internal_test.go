package api

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"

	"gridmap/geo"
)

// convertPositions gives what the decoder gives, position for position, on
// every geometry type; what it does not read goes to the decoder.
func TestConvertPositions(t *testing.T) {
	for _, raw := range []string{
		`{"type":"Point","coordinates":[114.057123456,22.543198765]}`,
		`{"type": "Point", "coordinates": [ 114.05 , 22.54 , 12.5 ]}`,
		`{"type":"MultiPoint","coordinates":[[114.05,22.54],[113.9,22.6]]}`,
		`{"type":"LineString","coordinates":[[114.05,22.54],[113.9,22.6],[-0.5,1e-7]]}`,
		`{"type":"Polygon","coordinates":[[[114,22],[114.1,22],[114.1,22.1],[114,22]],[[114.02,22.02],[114.03,22.02],[114.03,22.03],[114.02,22.02]]]}`,
		`{"type":"MultiPolygon","coordinates":[[[[114,22],[114.1,22],[114.1,22.1],[114,22]]],[[[113,21],[113.1,21],[113.1,21.1],[113,21]]]]}`,
		`{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[114,22]},{"type":"LineString","coordinates":[[114,22],[115,23]]}]}`,
		`{"type":"MultiPolygon","coordinates":[]}`,
	} {
		for _, c := range []geo.CRS{geo.GCJ02, geo.BD09} {
			fast, ok := convertPositions(c, []byte(raw))
			if !ok {
				t.Errorf("%s: not converted", raw)
				continue
			}
			slow, err := decodeFromWGS84(c, json.RawMessage(raw))
			if err != nil {
				t.Fatal(err)
			}
			a, err1 := geojson.UnmarshalGeometry(fast)
			b, err2 := geojson.UnmarshalGeometry(slow)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: %v %v: %s", raw, err1, err2, fast)
			}
			if !reflect.DeepEqual(a.Geometry(), b.Geometry()) {
				t.Errorf("%s in %s:\n fast %s\n slow %s", raw, c, fast, slow)
			}
		}
	}
	for _, raw := range []string{
		`{"type":"Point","coordinates":[114]}`,
		`{"type":"Point","coordinates":[114,"x"]}`,
		`{"type":"Point","coordinates":[114,22`,
		`{"type":"Point","coordinates":"no"}`,
		`{"type":"Point","coordinates`,
	} {
		if out, ok := convertPositions(geo.GCJ02, []byte(raw)); ok {
			t.Errorf("%s: converted to %s", raw, out)
		}
	}
	// A point's position moves by the GCJ-02 shift.
	out, err := geometryFromWGS84(geo.GCJ02, json.RawMessage(`{"type":"Point","coordinates":[114.2401,22.5822]}`))
	x, y := geo.WGS84ToGCJ02(114.2401, 22.5822)
	want, _ := json.Marshal(geojson.NewGeometry(orb.Point{roundCoord(x), roundCoord(y)}))
	if err != nil || string(out) != string(want) {
		t.Errorf("point in gcj02: %s (%v), want %s", out, err, want)
	}
}

// FuzzConvertPositions: whatever convertPositions takes, it converts as
// the decoder does.
func FuzzConvertPositions(f *testing.F) {
	for _, s := range []string{
		`{"type":"Point","coordinates":[114.05,22.54]}`,
		`{"type":"Polygon","coordinates":[[[114,22],[114.1,22],[114.1,22.1],[114,22]]]}`,
		`{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[114,22,3]}]}`,
		`{"type":"LineString","coordinates":[[1e2,-2.5E1],[3,4]]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		fast, ok := convertPositions(geo.GCJ02, []byte(raw))
		if !ok {
			return
		}
		slow, err := decodeFromWGS84(geo.GCJ02, json.RawMessage(raw))
		if err != nil {
			return // not a geometry the decoder takes either
		}
		a, err := geojson.UnmarshalGeometry(fast)
		if err != nil {
			t.Fatalf("%s converted to %s: %v", raw, fast, err)
		}
		b, _ := geojson.UnmarshalGeometry(slow)
		if b == nil || b.Coordinates == nil && b.Geometries == nil {
			return // the decoder read no geometry (a member name in other case, say)
		}
		if a == nil || !reflect.DeepEqual(a.Geometry(), b.Geometry()) {
			t.Fatalf("%s:\n fast %s\n slow %s", raw, fast, slow)
		}
	})
}
