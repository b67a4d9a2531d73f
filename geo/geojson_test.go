package geo

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/paulmach/orb"
)

func TestDecodeFeatureCollectionSyntaxErrors(t *testing.T) {
	cases := []struct {
		name      string
		doc       string
		line, col int    // 1-based position of the offending character
		msg       string // part of SyntaxError.Msg
	}{
		{
			name: "missing colon", doc: `{"a" 1}`,
			line: 1, col: 6, msg: "after object key",
		},
		{
			name: "bare word on line 3",
			doc:  "{\n  \"type\": \"FeatureCollection\",\n  x\n}",
			line: 3, col: 3, msg: "invalid character 'x'",
		},
		{
			name: "double comma inside features",
			doc:  "{\"type\":\"FeatureCollection\",\"features\":[\n{\"type\":\"Feature\",,\"properties\":{}}]}",
			line: 2, col: 19, msg: "invalid character ','",
		},
		{
			name: "trailing comma in array",
			doc:  "{\"type\":\"FeatureCollection\",\n\"features\":[\n  {\"type\":\"Feature\"},\n]}",
			line: 4, col: 1, msg: "invalid character ']'",
		},
		{
			name: "raw newline inside a string",
			doc:  "{\"a\":\"b\nc\"}",
			line: 1, col: 8, msg: `invalid character '\n' in string literal`,
		},
		{
			name: "CRLF line endings",
			doc:  "{\r\n\"type\": \"FeatureCollection\",\r\n\"features\": [}\r\n",
			line: 3, col: 14, msg: "invalid character '}'",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, err := DecodeFeatureCollection(strings.NewReader(c.doc))
			if fs != nil {
				t.Errorf("features = %v, want nil on a syntax error", fs)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want *SyntaxError", err, err)
			}
			if !strings.Contains(se.Msg, c.msg) {
				t.Errorf("Msg = %q, want it to contain %q", se.Msg, c.msg)
			}
			if se.Line != c.line || se.Column != c.col {
				t.Errorf("position line %d, column %d; the offending character is at line %d, column %d",
					se.Line, se.Column, c.line, c.col)
			}
			if !strings.HasPrefix(se.Error(), "malformed JSON at line ") {
				t.Errorf("Error() = %q", se.Error())
			}
		})
	}
}

// At the end of input there is no offending character: the position is
// the end of the text (or its last character).
func TestDecodeFeatureCollectionTruncated(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		line int
	}{
		{"empty", "", 1},
		{"only spaces", "   \n  ", 2},
		{"open string", `{"type":"Feature`, 1},
		{"open object on line 3", "{\n\"type\":\"FeatureCollection\",\n\"features\":[", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeFeatureCollection(strings.NewReader(c.doc))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want *SyntaxError", err, err)
			}
			if !strings.Contains(se.Msg, "unexpected end of JSON input") {
				t.Errorf("Msg = %q", se.Msg)
			}
			lines := strings.Split(c.doc, "\n")
			last := len(lines[len(lines)-1])
			if se.Line != c.line || se.Column < last || se.Column > last+1 {
				t.Errorf("position line %d, column %d; want line %d, column %d or %d", se.Line, se.Column, c.line, last, last+1)
			}
		})
	}
}

// A member of the wrong JSON type is reported as a SyntaxError too, at the
// line of the value, naming the member.
func TestDecodeFeatureCollectionTypeErrors(t *testing.T) {
	cases := []struct {
		name   string
		doc    string
		line   int
		colMin int
		colMax int
		msg    []string
	}{
		{"type is a number", `{"type": 5}`, 1, 10, 11, []string{"type", "number", "string"}},
		{"features is a number", "{\"type\":\"FeatureCollection\",\n\"features\": 5}", 2, 13, 14, []string{"features", "number"}},
		{"features is an object", "{\"type\":\"FeatureCollection\",\n\n  \"features\": {}\n}", 3, 15, 17, []string{"features", "object"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeFeatureCollection(strings.NewReader(c.doc))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want *SyntaxError", err, err)
			}
			for _, m := range c.msg {
				if !strings.Contains(se.Msg, m) {
					t.Errorf("Msg = %q, want it to contain %q", se.Msg, m)
				}
			}
			if se.Line != c.line || se.Column < c.colMin || se.Column > c.colMax {
				t.Errorf("position line %d, column %d; want line %d, column %d–%d", se.Line, se.Column, c.line, c.colMin, c.colMax)
			}
		})
	}
}

func TestDecodeFeatureCollectionDocumentErrors(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want string
	}{
		{"a Feature", `{"type":"Feature","properties":{},"geometry":null}`, `top-level type is "Feature"`},
		{"a geometry", `{"type":"Polygon","coordinates":[]}`, `top-level type is "Polygon"`},
		{"no type", `{"features":[]}`, `top-level type is ""`},
		{"lower case", `{"type":"featurecollection","features":[]}`, `"featurecollection"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, err := DecodeFeatureCollection(strings.NewReader(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			var se *SyntaxError
			if errors.As(err, &se) {
				t.Errorf("a well-formed document of the wrong type is not a SyntaxError: %v", err)
			}
			if fs != nil {
				t.Errorf("features = %v, want nil", fs)
			}
		})
	}
}

func TestDecodeFeatureCollectionReaderError(t *testing.T) {
	boom := errors.New("disk on fire")
	_, err := DecodeFeatureCollection(iotest.ErrReader(boom))
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want the reader's error", err)
	}
}

func TestDecodeFeatureCollectionEmpty(t *testing.T) {
	for _, doc := range []string{
		`{"type":"FeatureCollection","features":[]}`,
		`{"type":"FeatureCollection"}`,
		`{"type":"FeatureCollection","features":null}`,
		" \n{\"type\" : \"FeatureCollection\", \"features\" : [ ] }\n",
	} {
		fs, err := DecodeFeatureCollection(strings.NewReader(doc))
		if err != nil || len(fs) != 0 {
			t.Errorf("%s: got %v, %v; want no features and no error", doc, fs, err)
		}
	}
}

// Every feature is returned, in order; a feature's own problem stays on
// Feature.Err, prefixed with its index, and does not stop the others.
func TestDecodeFeatureCollectionPerFeature(t *testing.T) {
	square := `{"type":"Polygon","coordinates":[[[113.9,22.5],[114,22.5],[114,22.6],[113.9,22.5]]]}`
	doc := `{"type":"FeatureCollection","features":[
 {"type":"Feature","id":"a1","properties":{"code":"440306","name":"宝安区"},"geometry":` + square + `},
 {"type":"Feature","properties":{"code":"x"},"geometry":null},
 {"type":"Feature","properties":{}},
 {"type":"Fature","properties":{},"geometry":` + square + `},
 42,
 {"type":"Feature","properties":{},"geometry":{"type":"Circle","coordinates":[0,0]}},
 {"type":"Feature","properties":{},"geometry":{"type":"GeometryCollection","geometries":[]}},
 {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":"nope"}},
 {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,91],[0,0]]]}},
 {"type":"Feature","properties":{},"geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[200,0],[201,0],[201,1],[200,0]]]]}},
 {"type":"Feature","id":7,"geometry":{"type":"Point","coordinates":[114.05,22.55]}},
 {"type":"Feature","properties":null,"geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]}}
]}`
	cases := []struct {
		err  string // "" for no error; otherwise all of these parts, "|"-separated
		id   any
		geom orb.Geometry
	}{
		0:  {id: "a1", geom: orb.Polygon{{{113.9, 22.5}, {114, 22.5}, {114, 22.6}, {113.9, 22.5}}}},
		1:  {err: "features[1]: geometry is missing"},
		2:  {err: "features[2]: geometry is missing"},
		3:  {err: `features[3]: type is "Fature", want "Feature"`},
		4:  {err: "features[4]: |cannot unmarshal number"},
		5:  {err: "features[5].geometry: "},
		6:  {err: `features[6].geometry: type "GeometryCollection" is not supported`},
		7:  {err: "features[7].geometry: "},
		8:  {err: "features[8].geometry: |coordinates[0][2]|latitude out of range"},
		9:  {err: "features[9].geometry: |coordinates[1][0][0]|longitude out of range"},
		10: {id: float64(7), geom: orb.Point{114.05, 22.55}},
		11: {geom: orb.LineString{{0, 0}, {1, 1}}},
	}
	fs, err := DecodeFeatureCollection(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("DecodeFeatureCollection: %v", err)
	}
	if len(fs) != len(cases) {
		t.Fatalf("%d features, want %d", len(fs), len(cases))
	}
	for i, c := range cases {
		f := fs[i]
		if f.Index != i {
			t.Errorf("features[%d].Index = %d", i, f.Index)
		}
		if f.Properties == nil && i != 4 { // 42 is not an object: nothing to keep
			t.Errorf("features[%d].Properties is nil, want an empty map at least", i)
		}
		if c.err == "" {
			if f.Err != nil {
				t.Errorf("features[%d].Err = %v, want nil", i, f.Err)
				continue
			}
			if !reflect.DeepEqual(f.Geometry, c.geom) {
				t.Errorf("features[%d].Geometry = %#v, want %#v", i, f.Geometry, c.geom)
			}
			if !reflect.DeepEqual(f.ID, c.id) {
				t.Errorf("features[%d].ID = %#v, want %#v", i, f.ID, c.id)
			}
			if len(f.Raw) == 0 {
				t.Errorf("features[%d].Raw is empty", i)
			}
			continue
		}
		if f.Err == nil {
			t.Errorf("features[%d].Err = nil, want %q", i, c.err)
			continue
		}
		for _, part := range strings.Split(c.err, "|") {
			if !strings.Contains(f.Err.Error(), part) {
				t.Errorf("features[%d].Err = %q, want it to contain %q", i, f.Err, part)
			}
		}
		if !strings.HasPrefix(f.Err.Error(), "features["+itoa(i)+"]") {
			t.Errorf("features[%d].Err = %q does not start with the feature's index", i, f.Err)
		}
		if f.Geometry != nil {
			t.Errorf("features[%d].Geometry = %v, want nil with an error", i, f.Geometry)
		}
	}
	if got := fs[0].Properties["name"]; got != "宝安区" {
		t.Errorf("features[0] name = %v", got)
	}
	if got := fs[1].Properties["code"]; got != "x" {
		t.Errorf("properties of a feature with an error are kept: code = %v", got)
	}
	if string(fs[8].Raw) == "" || !strings.Contains(string(fs[8].Raw), `"Polygon"`) {
		t.Errorf("Raw of a feature whose geometry failed is kept, got %q", fs[8].Raw)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestCheckRange(t *testing.T) {
	cases := []struct {
		name string
		g    orb.Geometry
		want string // "" for valid; otherwise all of these parts, "|"-separated
	}{
		{"point ok", orb.Point{114.05, 22.55}, ""},
		{"corners of the world", orb.MultiPoint{{-180, -90}, {180, 90}, {-180, 90}, {180, -90}}, ""},
		{"nil", nil, ""},
		{"empty polygon", orb.Polygon{}, ""},
		{"lon 180.000001", orb.Point{180.000001, 0}, "position coordinates [180.000001, 0]: longitude out of range [-180, 180]"},
		{"lon -181", orb.Point{-181, 0}, "longitude out of range"},
		{"lat 90.5", orb.Point{0, 90.5}, "position coordinates [0, 90.5]: latitude out of range [-90, 90]"},
		{"lat -91", orb.Point{0, -91}, "latitude out of range"},
		{"swapped lat/lon (Shenzhen as lat,lon)", orb.Point{22.55, 114.05}, "latitude out of range"},
		{"NaN", orb.Point{math.NaN(), 0}, "position coordinates|is not a finite number"},
		{"+Inf lat", orb.Point{0, math.Inf(1)}, "is not a finite number"},
		{"-Inf lon", orb.Point{math.Inf(-1), 0}, "is not a finite number"},
		{"multipoint index", orb.MultiPoint{{0, 0}, {0, 0}, {0, 95}}, "position coordinates[2] "},
		{"linestring index", orb.LineString{{0, 0}, {190, 0}}, "position coordinates[1] "},
		{"multilinestring index", orb.MultiLineString{{{0, 0}}, {{0, 0}, {0, 0}, {0, -95}}}, "position coordinates[1][2] "},
		{"polygon hole index", orb.Polygon{{{0, 0}, {1, 0}, {1, 1}, {0, 0}}, {{0, 0}, {0, 0}, {0, 100}}}, "position coordinates[1][2] "},
		{"multipolygon index", orb.MultiPolygon{{{{0, 0}}}, {{{0, 0}}, {{0, 0}, {-200, 0}}}}, "position coordinates[1][1][1] "},
		{"first bad position wins", orb.LineString{{0, 0}, {0, 100}, {200, 0}}, "coordinates[1] [0, 100]: latitude"},
		{"collection ok", orb.Collection{orb.Point{1, 1}, orb.LineString{{2, 2}, {3, 3}}}, ""},
		{"collection bad", orb.Collection{orb.Point{1, 1}, orb.LineString{{2, 2}, {3, 93}}}, "latitude out of range"},
		{"collection: first of two bad members", orb.Collection{orb.Point{200, 0}, orb.Point{0, 100}}, "[200, 0]: longitude out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckRange(c.g)
			if c.want == "" {
				if err != nil {
					t.Errorf("CheckRange = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckRange = nil, want an error containing %q", c.want)
			}
			for _, part := range strings.Split(c.want, "|") {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("CheckRange = %q, want it to contain %q", err, part)
				}
			}
		})
	}
}
