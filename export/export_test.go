package export_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"gridmap/export"
	"gridmap/geo"
)

// pointSchema has a field of every type; its rows are points with
// Chinese text and nulls.
var pointSchema = geo.Schema{Name: "objects", GeometryType: "Point", Fields: []geo.Field{
	{Name: "class", Type: geo.String},
	{Name: "name", Type: geo.String},
	{Name: "floors", Type: geo.Integer},
	{Name: "height_m", Type: geo.Real},
	{Name: "lit", Type: geo.Boolean},
	{Name: "updated_at", Type: geo.Time},
	{Name: "attrs", Type: geo.JSON},
}}

var when = time.Date(2026, 11, 24, 8, 30, 15, 250_000_000, time.FixedZone("CST", 8*3600))

func pointRows() []geo.Row {
	return []geo.Row{
		{ID: "4403060170010118000001", Geometry: orb.Point{113.884012345678, 22.555123456789},
			Values: []any{"0118", "梅沙街道 \"东\", 路灯", int64(3), 12.5, true, when, json.RawMessage(`{"材质": "钢", "n": 2}`)}},
		{ID: "4403060170010118000002", Geometry: orb.Point{113.9, 22.6},
			Values: []any{"0118", "line\nbreak", nil, nil, false, nil, nil}},
		{ID: "4403060170010118000003", Geometry: nil,
			Values: []any{"0102", "", int64(-7), -0.25, nil, when, json.RawMessage(`[1, 2]`)}},
	}
}

var polygonSchema = geo.Schema{Name: "grids", GeometryType: "MultiPolygon", Fields: []geo.Field{
	{Name: "code", Type: geo.String}, {Name: "name", Type: geo.String},
}}

func polygonRows() []geo.Row {
	sq := func(x, y, d float64) orb.Polygon {
		return orb.Polygon{{{x, y}, {x + d, y}, {x + d, y + d}, {x, y + d}, {x, y}}}
	}
	return []geo.Row{
		{ID: "44030601700101", Geometry: orb.MultiPolygon{sq(114.0, 22.5, 0.01)}, Values: []any{"44030601700101", "第一网格"}},
		{ID: "44030601700102", Geometry: orb.MultiPolygon{sq(114.02, 22.5, 0.02), sq(114.1, 22.6, 0.01)}, Values: []any{"44030601700102", "第二网格"}},
	}
}

// write runs rows through a format's writer into a buffer.
func write(t *testing.T, format string, s geo.Schema, rows []geo.Row, o export.Options) []byte {
	t.Helper()
	f, ok := export.Lookup(format)
	if !ok {
		t.Fatalf("no format %q", format)
	}
	var b bytes.Buffer
	w, err := f.New(&b, s, o)
	if err != nil {
		t.Fatalf("%s: %v", format, err)
	}
	for i := range rows {
		r := rows[i]
		r.Geometry = orb.Clone(r.Geometry)
		if err := w.Write(&r); err != nil {
			t.Fatalf("%s row %d: %v", format, i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("%s close: %v", format, err)
	}
	return b.Bytes()
}

type feature struct {
	Type       string          `json:"type"`
	ID         any             `json:"id"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties map[string]any  `json:"properties"`
}

// wantProps are the rows' values as a JSON decoder gives them back.
func wantProps(r geo.Row) map[string]any {
	m := map[string]any{}
	for i, f := range pointSchema.Fields {
		v := r.Values[i]
		switch x := v.(type) {
		case int64:
			v = float64(x)
		case time.Time:
			v = x.UTC().Format(time.RFC3339Nano)
		case json.RawMessage:
			var d any
			_ = json.Unmarshal(x, &d)
			v = d
		}
		m[f.Name] = v
	}
	return m
}

func TestGeoJSON(t *testing.T) {
	out := write(t, "geojson", pointSchema, pointRows(), export.Options{})
	var fc struct {
		Type     string    `json:"type"`
		Name     string    `json:"name"`
		Features []feature `json:"features"`
	}
	if err := json.Unmarshal(out, &fc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if fc.Type != "FeatureCollection" || fc.Name != "objects" || len(fc.Features) != 3 {
		t.Fatalf("type %q name %q, %d features", fc.Type, fc.Name, len(fc.Features))
	}
	for i, r := range pointRows() {
		f := fc.Features[i]
		if f.Type != "Feature" || f.ID != r.ID {
			t.Errorf("feature %d: type %q id %v, want Feature %s", i, f.Type, f.ID, r.ID)
		}
		got, _ := json.Marshal(f.Properties)
		want, _ := json.Marshal(wantProps(r))
		if !bytes.Equal(got, want) {
			t.Errorf("feature %d properties\n got %s\nwant %s", i, got, want)
		}
	}
	// 7 decimals, shortest form; a missing geometry is null.
	if g := string(fc.Features[0].Geometry); g != `{"type":"Point","coordinates":[113.8840123,22.5551235]}` {
		t.Errorf("geometry %s", g)
	}
	if g := string(fc.Features[2].Geometry); g != "null" {
		t.Errorf("missing geometry %s, want null", g)
	}
	// Chinese as UTF-8, not \u escapes; HTML characters as they are.
	if !bytes.Contains(out, []byte(`"梅沙街道 \"东\", 路灯"`)) {
		t.Errorf("name not written as UTF-8 JSON: %s", out)
	}
}

func TestGeoJSONPolygonsAndCRS(t *testing.T) {
	out := write(t, "geojson", polygonSchema, polygonRows(), export.Options{CRS: geo.GCJ02, Precision: 6})
	var fc struct {
		Features []struct {
			Geometry struct {
				Type        string          `json:"type"`
				Coordinates [][][][]float64 `json:"coordinates"`
			} `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(out, &fc); err != nil {
		t.Fatal(err)
	}
	g := fc.Features[1].Geometry
	if g.Type != "MultiPolygon" || len(g.Coordinates) != 2 || len(g.Coordinates[0][0]) != 5 {
		t.Fatalf("geometry %+v", g)
	}
	lon, lat := geo.FromWGS84(geo.GCJ02, 114.02, 22.5)
	if p := g.Coordinates[0][0][0]; math.Abs(p[0]-lon) > 6e-7 || math.Abs(p[1]-lat) > 6e-7 || p[0] == 114.02 {
		t.Errorf("first position %v, want GCJ-02 (%.6f, %.6f) at 6 decimals", p, lon, lat)
	}
	if !bytes.Contains(out, []byte(fmt.Sprintf("[%s,%s]", trim6(lon), trim6(lat)))) {
		t.Errorf("positions not at 6 decimals: %s", out)
	}
}

func trim6(v float64) string {
	s := fmt.Sprintf("%.6f", v)
	return strings.TrimRight(strings.TrimRight(s, "0"), ".")
}

func TestGeoJSONSequences(t *testing.T) {
	for _, c := range []struct {
		format string
		prefix string
	}{{"geojsonseq", "\x1e"}, {"ndjson", ""}} {
		out := write(t, c.format, pointSchema, pointRows(), export.Options{})
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("%s: %d lines, want 3 (one per feature; a newline in a value is escaped):\n%q", c.format, len(lines), out)
		}
		for i, l := range lines {
			if !strings.HasPrefix(l, c.prefix) {
				t.Errorf("%s line %d does not start with %q", c.format, i, c.prefix)
			}
			var f feature
			if err := json.Unmarshal([]byte(strings.TrimPrefix(l, c.prefix)), &f); err != nil || f.ID != pointRows()[i].ID {
				t.Errorf("%s line %d: %v, id %v", c.format, i, err, f.ID)
			}
		}
	}
}

func TestCSV(t *testing.T) {
	out := write(t, "csv", pointSchema, pointRows(), export.Options{})
	if bytes.HasPrefix(out, []byte("\ufeff")) {
		t.Error("BOM written without Options.BOM")
	}
	if !bytes.Contains(out, []byte("\r\n")) {
		t.Error("lines do not end in CRLF (RFC 4180)")
	}
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"id", "class", "name", "floors", "height_m", "lit", "updated_at", "attrs", "wkt"},
		{"4403060170010118000001", "0118", "梅沙街道 \"东\", 路灯", "3", "12.5", "true", "2026-11-24T00:30:15.25Z", `{"材质": "钢", "n": 2}`, "POINT(113.8840123 22.5551235)"},
		{"4403060170010118000002", "0118", "line\nbreak", "", "", "false", "", "", "POINT(113.9 22.6)"},
		{"4403060170010118000003", "0102", "", "-7", "-0.25", "", "2026-11-24T00:30:15.25Z", "[1, 2]", ""},
	}
	if fmt.Sprint(recs) != fmt.Sprint(want) {
		t.Errorf("records\n got %q\nwant %q", recs, want)
	}

	out = write(t, "csv", polygonSchema, polygonRows(), export.Options{CSVGeometry: export.CSVLonLat, BOM: true})
	if !bytes.HasPrefix(out, []byte("\ufeff")) {
		t.Error("no BOM with Options.BOM")
	}
	recs, err = csv.NewReader(bytes.NewReader(bytes.TrimPrefix(out, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// The centroid of two squares weighted by area: (4 × (114.03, 22.51) + (114.105, 22.605)) / 5.
	want = [][]string{
		{"id", "code", "name", "lon", "lat"},
		{"44030601700101", "44030601700101", "第一网格", "114.005", "22.505"},
		{"44030601700102", "44030601700102", "第二网格", "114.045", "22.529"},
	}
	if fmt.Sprint(recs) != fmt.Sprint(want) {
		t.Errorf("lon/lat records\n got %q\nwant %q", recs, want)
	}

	out = write(t, "csv", polygonSchema, polygonRows()[:1], export.Options{})
	if !bytes.Contains(out, []byte(`"MULTIPOLYGON(((114 22.5,114.01 22.5,114.01 22.51,114 22.51,114 22.5)))"`)) {
		t.Errorf("WKT of a multipolygon: %s", out)
	}
}

func TestColumnNamesClash(t *testing.T) {
	s := geo.Schema{Name: "t", GeometryType: "Point", Fields: []geo.Field{{Name: "WKT", Type: geo.String}}}
	if _, err := export.NewCSV(io.Discard, s, export.Options{}); err == nil || !strings.Contains(err.Error(), "wkt") {
		t.Errorf("a field named like the geometry column: %v", err)
	}
	s.Fields[0].Name = "ID"
	if _, err := export.NewGPKG(io.Discard, s, export.Options{TempDir: t.TempDir()}); err == nil {
		t.Error("a field named like the id column was taken")
	}
}

// TestStreams: the text writers hand bytes on while rows arrive, so an
// export never holds its whole output; what they hold is a fixed buffer.
func TestStreams(t *testing.T) {
	for _, format := range []string{"geojson", "geojsonseq", "csv"} {
		f, _ := export.Lookup(format)
		var out countingWriter
		w, err := f.New(&out, pointSchema, export.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rows := pointRows()
		for i := range 20000 {
			r := rows[i%2]
			r.Geometry = orb.Point{113.8, 22.5}
			if err := w.Write(&r); err != nil {
				t.Fatal(err)
			}
		}
		before := out.n
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if before < out.n*9/10 || out.n-before > 64<<10 {
			t.Errorf("%s: %d of %d bytes written before Close; want all but the last buffer (64 KiB)", format, before, out.n)
		}
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestAbortLeavesNoFile: a failed GeoPackage export removes its temporary
// file and writes nothing; a finished one removes it too.
func TestAbortLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	w, err := export.NewGPKG(&out, polygonSchema, export.Options{TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	r := polygonRows()[0]
	if err := w.Write(&r); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Fatalf("%d files in the temporary directory during the export, want 1", len(left))
	}
	w.Abort()
	if left, _ := os.ReadDir(dir); len(left) != 0 || out.Len() != 0 {
		t.Errorf("after Abort: %d files left, %d bytes written", len(left), out.Len())
	}
	write(t, "gpkg", polygonSchema, polygonRows(), export.Options{TempDir: dir})
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("after Close: %d files left", len(left))
	}

	// A text writer aborted before its buffer filled wrote nothing: the
	// caller can still answer with an error instead of a cut file.
	out.Reset()
	g, _ := export.NewGeoJSON(&out, polygonSchema, export.Options{})
	_ = g.Write(&r)
	g.Abort()
	if out.Len() != 0 {
		t.Errorf("aborted GeoJSON wrote %d bytes", out.Len())
	}
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
