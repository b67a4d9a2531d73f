package geo

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/paulmach/orb"
)

func TestDecodeGeometry(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want orb.Geometry
		// On error: the full path of the member at fault ("" for an error
		// that is not a *PositionError) and parts of the message.
		path string
		msg  string
	}{
		{name: "point", doc: `{"type":"Point","coordinates":[114.05,22.55]}`, want: orb.Point{114.05, 22.55}},
		{name: "point with altitude", doc: `{"type":"Point","coordinates":[114.05,22.55,31.5]}`, want: orb.Point{114.05, 22.55}},
		{name: "spaces everywhere", doc: "{\"type\":\"Point\",\"coordinates\": [ 114 ,\n 22 ] }", want: orb.Point{114, 22}},
		{name: "exponents", doc: `{"type":"Point","coordinates":[1.14e2,-2.2E+1]}`, want: orb.Point{114, -22}},
		{name: "multipoint", doc: `{"type":"MultiPoint","coordinates":[[1,2],[3,4,5]]}`, want: orb.MultiPoint{{1, 2}, {3, 4}}},
		{name: "empty linestring", doc: `{"type":"LineString","coordinates":[]}`, want: orb.LineString(nil)},
		{name: "linestring", doc: `{"type":"LineString","coordinates":[[0,0],[1,1]]}`, want: orb.LineString{{0, 0}, {1, 1}}},
		{name: "multilinestring", doc: `{"type":"MultiLineString","coordinates":[[[0,0],[1,1]],[]]}`, want: orb.MultiLineString{{{0, 0}, {1, 1}}, nil}},
		{name: "polygon", doc: `{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}`, want: orb.Polygon{{{0, 0}, {1, 0}, {1, 1}, {0, 0}}}},
		{name: "multipolygon", doc: `{"type":"MultiPolygon","bbox":[0,0,1,1],"coordinates":[[[[0,0],[1,0],[1,1],[0,0]]]]}`, want: orb.MultiPolygon{{{{0, 0}, {1, 0}, {1, 1}, {0, 0}}}}},
		{name: "another number after the altitude skipped as a whole", doc: `{"type":"Point","coordinates":[114,22,5,{"a":["]",[1]]}]}`, path: "geometry.coordinates", msg: "needs 2 or 3 numbers|got 4"},

		{name: "one number", doc: `{"type":"Point","coordinates":[114]}`, path: "geometry.coordinates", msg: "needs 2 or 3 numbers|got 1"},
		{name: "no number", doc: `{"type":"Point","coordinates":[]}`, path: "geometry.coordinates", msg: "got 0"},
		{name: "null longitude", doc: `{"type":"Point","coordinates":[null,22]}`, path: "geometry.coordinates[0]", msg: "null, want a number (longitude)"},
		{name: "string longitude", doc: `{"type":"Point","coordinates":["114",22]}`, path: "geometry.coordinates[0]", msg: "a string, want a number (longitude)"},
		{name: "boolean latitude", doc: `{"type":"Point","coordinates":[114,true]}`, path: "geometry.coordinates[1]", msg: "a boolean, want a number (latitude)"},
		{name: "null altitude", doc: `{"type":"Point","coordinates":[114,22,null]}`, path: "geometry.coordinates[2]", msg: "null, want a number (altitude)"},
		{name: "four numbers", doc: `{"type":"Point","coordinates":[114,22,5,6]}`, path: "geometry.coordinates", msg: "got 4"},
		{name: "overflowing number", doc: `{"type":"Point","coordinates":[114,1e999]}`, path: "geometry.coordinates[1]", msg: "latitude 1e999 is not a finite number"},
		{name: "null coordinates", doc: `{"type":"Point","coordinates":null}`, path: "geometry.coordinates", msg: "null, want a position"},
		{name: "no coordinates", doc: `{"type":"LineString"}`, path: "geometry.coordinates", msg: "missing"},
		{name: "a null position in a line", doc: `{"type":"LineString","coordinates":[[0,0],null]}`, path: "geometry.coordinates[1]", msg: "null, want a position"},
		{name: "a one-number position in a ring", doc: `{"type":"Polygon","coordinates":[[[114,22],[114.1],[114.1,22.1],[114,22]]]}`, path: "geometry.coordinates[0][1]", msg: "got 1"},
		{name: "a ring one level too shallow", doc: `{"type":"Polygon","coordinates":[[114,22],[114.1,22],[114.1,22.1],[114,22]]}`, path: "geometry.coordinates[0][0]", msg: "a number, want a position"},
		{name: "a multipolygon one level too shallow", doc: `{"type":"MultiPolygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}`, path: "geometry.coordinates[0][0][0]", msg: "a number, want a position"},
		{name: "an object for a polygon", doc: `{"type":"MultiPolygon","coordinates":[{}]}`, path: "geometry.coordinates[0]", msg: "an object, want a polygon"},
		{name: "a string for coordinates", doc: `{"type":"Polygon","coordinates":"nope"}`, path: "geometry.coordinates", msg: "a string, want an array of linear rings"},
		{name: "the last position of a hole", doc: `{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[0,0],[1,0],[1,1],[0,0]],[[0,0],[1,0],[1,1],[0]]]]}`, path: "geometry.coordinates[1][1][3]", msg: "got 1"},

		{name: "unknown type", doc: `{"type":"Circle","coordinates":[0,0]}`, msg: `geometry: type "Circle" is not a GeoJSON geometry type`},
		{name: "collection", doc: `{"type":"GeometryCollection","geometries":[]}`, msg: `geometry: type "GeometryCollection" is not supported|use Point`},
		{name: "type a number", doc: `{"type":5}`, msg: "geometry: |type"},
		{name: "not an object", doc: `[1,2]`, msg: "geometry: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := DecodeGeometry([]byte(c.doc), "geometry")
			if c.msg == "" {
				if err != nil {
					t.Fatalf("DecodeGeometry: %v", err)
				}
				if !reflect.DeepEqual(g, c.want) {
					t.Errorf("got %#v, want %#v", g, c.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %v, want an error", g)
			}
			if g != nil {
				t.Errorf("got %v with the error, want nil", g)
			}
			for _, part := range strings.Split(c.msg, "|") {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q, want it to contain %q", err, part)
				}
			}
			var pe *PositionError
			switch {
			case c.path == "" && errors.As(err, &pe):
				t.Errorf("error %q is a *PositionError, want another kind", err)
			case c.path != "" && !errors.As(err, &pe):
				t.Errorf("error %q (%T), want a *PositionError", err, err)
			case c.path != "":
				if pe.Path() != c.path {
					t.Errorf("Path() = %q, want %q", pe.Path(), c.path)
				}
				if want := "geometry: " + strings.TrimPrefix(c.path, "geometry.") + ": "; !strings.HasPrefix(err.Error(), want) {
					t.Errorf("error %q, want it to start with %q", err, want)
				}
			}
		})
	}
}

// Whatever encoding/json lets through as a JSON document and DecodeGeometry
// does not understand is an error, never a panic; the bytes are malformed
// here on purpose, as DecodeGeometry may be given a document json.Valid
// has not seen.
func TestParsePositionMalformed(t *testing.T) {
	for _, doc := range []string{
		``, `[`, `[1`, `[1,`, `[1,2`, `[1 2]`, `[1,,2]`, `[-,2]`, `[01,2]`, `[1.,2]`, `[.5,2]`, `[1e,2]`,
		`[+1,2]`, `[NaN,2]`, `[Infinity,2]`, `[0x10,2]`, `[1,2]x`, `[1,2,3,"unterminated]`, `[1,2,3,[}]`,
		`[1,2,3,]`, `[1,2,3,,]`, `[1,2,3,"a\"]`, `{"a":1}`, `1`,
	} {
		if p, err := ParsePosition([]byte(doc), MaxPositionNumbers); err == nil {
			t.Errorf("ParsePosition(%q) = %v, want an error", doc, p)
		}
	}
}

func TestParsePosition(t *testing.T) {
	cases := []struct {
		doc    string
		most   int
		want   orb.Point
		member string // the member at fault; "-" for no error
		msg    string
	}{
		{`[114.05, 22.55]`, 2, orb.Point{114.05, 22.55}, "-", ""},
		{`[-0, 0.0]`, 2, orb.Point{0, 0}, "-", ""},
		{`[114,22,3]`, 3, orb.Point{114, 22}, "-", ""},
		{`[114,22,3]`, 2, orb.Point{}, "", "a position needs 2 numbers (longitude, latitude), got 3"},
		{`[114]`, 2, orb.Point{}, "", "got 1"},
		{`[null,22]`, 2, orb.Point{}, "[0]", "null, want a number (longitude)"},
		{`[114,"22"]`, 2, orb.Point{}, "[1]", "a string, want a number (latitude)"},
		{`null`, 2, orb.Point{}, "", "null, want a position"},
		{`"here"`, 2, orb.Point{}, "", "a string, want a position"},
		{`{"lon":1,"lat":2}`, 2, orb.Point{}, "", "an object, want a position"},
		{`[-1e400,0]`, 2, orb.Point{}, "[0]", "longitude -1e400 is not a finite number"},
	}
	for _, c := range cases {
		p, err := ParsePosition([]byte(c.doc), c.most)
		if c.member == "-" {
			if err != nil || p != c.want {
				t.Errorf("ParsePosition(%s, %d) = %v, %v; want %v", c.doc, c.most, p, err, c.want)
			}
			continue
		}
		var pe *PositionError
		if !errors.As(err, &pe) {
			t.Errorf("ParsePosition(%s, %d) = %v, %v; want a *PositionError", c.doc, c.most, p, err)
			continue
		}
		if pe.Member != c.member || pe.Geometry != "" || !strings.Contains(pe.Msg, c.msg) {
			t.Errorf("ParsePosition(%s, %d): %#v, want member %q and a message with %q", c.doc, c.most, pe, c.member, c.msg)
		}
	}
}

// Feature errors keep the *PositionError, with its path from the top of
// the document (a collection) or of the record (a stream).
func TestPositionErrorPaths(t *testing.T) {
	bad := `{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[114,22],[114.1],[114.1,22.1],[114,22]]]}}`
	fs, err := DecodeFeatureCollection(strings.NewReader(`{"type":"FeatureCollection","features":[` + bad + `,` + bad + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	var pe *PositionError
	if !errors.As(fs[1].Err, &pe) || pe.Path() != "features[1].geometry.coordinates[0][1]" {
		t.Errorf("features[1].Err = %v, want a *PositionError at features[1].geometry.coordinates[0][1]", fs[1].Err)
	}
	if want := "features[1].geometry: coordinates[0][1]: a position needs 2 or 3 numbers"; !strings.HasPrefix(fs[1].Err.Error(), want) {
		t.Errorf("features[1].Err = %q, want it to start with %q", fs[1].Err, want)
	}
	for _, f := range []Format{FormatGeoJSON, FormatNDJSON} {
		doc := bad + "\n"
		if f == FormatGeoJSON {
			doc = `{"type":"FeatureCollection","features":[` + bad + `]}`
		}
		s, err := NewStream(strings.NewReader(doc), f)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !errors.As(rec.Err, &pe) || pe.Path() != "geometry.coordinates[0][1]" || rec.Geometry != nil {
			t.Errorf("%s: record %+v, want a *PositionError at geometry.coordinates[0][1] and no geometry", f, rec)
		}
	}
}

// The bad positions of issue 10 in each format of an object file: every
// one is a record error naming where, and no record carries a geometry.
func TestStreamBadPositions(t *testing.T) {
	feature := func(coords string) string {
		return `{"type":"Feature","properties":{"code":"x","class":"0101"},"geometry":{"type":"Point","coordinates":` + coords + `}}`
	}
	jsonCases := []struct{ coords, where string }{
		{`[114]`, "geometry: coordinates: "},
		{`[]`, "geometry: coordinates: "},
		{`[null,22]`, "geometry: coordinates[0]: "},
		{`["114",22]`, "geometry: coordinates[0]: "},
		{`[114,22,5,6]`, "geometry: coordinates: "},
	}
	for _, c := range jsonCases {
		for _, f := range []Format{FormatGeoJSON, FormatNDJSON} {
			doc := feature(c.coords) + "\n"
			if f == FormatGeoJSON {
				doc = `{"type":"FeatureCollection","features":[` + feature(c.coords) + `]}`
			}
			s, err := NewStream(strings.NewReader(doc), f)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := s.Next()
			if err != nil || rec.Err == nil || rec.Geometry != nil || !strings.HasPrefix(rec.Err.Error(), c.where) {
				t.Errorf("%s %s: record %+v, %v; want an error starting %q", f, c.coords, rec, err, c.where)
			}
		}
	}
	csvCases := []struct{ row, msg string }{
		{"x,0101,114,", `lat "" is not a number`},
		{"x,0101,,", `lon "" is not a number`},
		{"x,0101,null,22", `lon "null" is not a number`},
		{"x,0101,114,22,5,6", "6 fields, the header has 4"},
		{"x,0101,NaN,22", `lon "NaN" is not a number`},
		{"x,0101,114,1e999", `lat "1e999" is not a number`},
	}
	for _, c := range csvCases {
		s, err := NewStream(strings.NewReader("code,class,lon,lat\n"+c.row+"\n"), FormatCSV)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := s.Next()
		if err != nil || rec.Err == nil || rec.Geometry != nil || !strings.HasPrefix(rec.Err.Error(), c.msg) {
			t.Errorf("CSV %s: record %+v, %v; want an error starting %q", c.row, rec, err, c.msg)
		}
	}
}
