package export_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"gridmap/export"
	"gridmap/geo"
)

// TestFlatGeobufWithGDAL: GDAL opens the FlatGeobuf (verifying every
// FlatBuffer, its default) without a warning and reads back every
// attribute and position.
func TestFlatGeobufWithGDAL(t *testing.T) {
	path := writeFile(t, "objects.fgb", write(t, "fgb", pointSchema, pointRows(), export.Options{}))
	info := gdal(t, "ogrinfo", "-ro", "-so", "-al", path)
	for _, want := range []string{"Layer name: objects", "Geometry: Point", "Feature Count: 3", `ID["EPSG",4326]`,
		"id: String", "class: String", "floors: Integer64", "height_m: Real", "lit: Integer(Boolean)", "updated_at: DateTime", "attrs: String"} {
		if !strings.Contains(info, want) {
			t.Errorf("ogrinfo does not say %q:\n%s", want, info)
		}
	}
	var fc struct {
		Features []feature `json:"features"`
	}
	js := gdal(t, "ogr2ogr", "-f", "GeoJSON", "/vsistdout/", path)
	if err := json.Unmarshal([]byte(js), &fc); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if len(fc.Features) != 3 {
		t.Fatalf("%d features back", len(fc.Features))
	}
	for i, r := range pointRows() {
		want := wantProps(r)
		want["id"] = r.ID
		// FlatGeobuf has no null: a null value is an absent one, which
		// GDAL leaves out.
		for k, v := range want {
			if v == nil {
				delete(want, k)
			}
		}
		if s, ok := want["updated_at"].(string); ok {
			want["updated_at"] = strings.Replace(s, ".25Z", ".250Z", 1)
		}
		gotJ, _ := json.Marshal(fc.Features[i].Properties)
		wantJ, _ := json.Marshal(want)
		if string(gotJ) != string(wantJ) {
			t.Errorf("feature %d\n got %s\nwant %s", i, gotJ, wantJ)
		}
	}
	if g := string(fc.Features[0].Geometry); !strings.Contains(g, "113.8840123, 22.5551235") {
		t.Errorf("geometry %s", g)
	}
	if g := string(fc.Features[2].Geometry); g != "null" {
		t.Errorf("missing geometry came back as %s", g)
	}

	// Multipolygons with holes' worth of parts, in GCJ-02.
	path = writeFile(t, "grids.fgb", write(t, "fgb", polygonSchema, polygonRows(), export.Options{CRS: geo.GCJ02}))
	info = gdal(t, "ogrinfo", "-ro", "-so", "-al", path)
	if !strings.Contains(info, "Geometry: Multi Polygon") || !strings.Contains(info, "Feature Count: 2") || !strings.Contains(info, `GEOGCRS["GCJ-02"`) {
		t.Errorf("grids:\n%s", info)
	}
	var polys struct {
		Features []struct {
			Geometry struct {
				Coordinates [][][][]float64 `json:"coordinates"`
			} `json:"geometry"`
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal([]byte(gdal(t, "ogr2ogr", "-f", "GeoJSON", "/vsistdout/", path)), &polys); err != nil {
		t.Fatal(err)
	}
	g := polys.Features[1].Geometry.Coordinates
	lon, lat := geo.FromWGS84(geo.GCJ02, 114.11, 22.61)
	if len(g) != 2 || len(g[1][0]) != 5 || math.Abs(g[1][0][2][0]-lon) > 1e-7 || math.Abs(g[1][0][2][1]-lat) > 1e-7 || polys.Features[1].Properties["name"] != "第二网格" {
		t.Errorf("second grid %v %v, want two squares, the second's third corner at (%.7f, %.7f)", g, polys.Features[1].Properties, lon, lat)
	}
}
