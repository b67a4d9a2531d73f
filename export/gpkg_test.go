package export_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/paulmach/orb"

	"gridmap/export"
	"gridmap/geo"
)

// gdal runs a GDAL program and returns its standard output; anything on
// standard error (GDAL's warnings and errors go there) fails the test.
func gdal(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	if errb.Len() > 0 {
		t.Errorf("%s %s printed on stderr:\n%s", name, strings.Join(args, " "), errb.String())
	}
	if s := out.String(); strings.Contains(s, "Warning") || strings.Contains(s, "ERROR") {
		t.Errorf("%s %s printed a warning:\n%s", name, strings.Join(args, " "), s)
	}
	return out.String()
}

// TestGPKGWithGDAL: GDAL opens the GeoPackage without a warning, lists the
// layer with its geometry type, SRS, extent and feature count, reads back
// every attribute, and finds features through the spatial index.
func TestGPKGWithGDAL(t *testing.T) {
	path := writeFile(t, "objects.gpkg", write(t, "gpkg", pointSchema, pointRows(), export.Options{}))
	info := gdal(t, "ogrinfo", "-ro", "-so", "-al", path)
	for _, want := range []string{"Layer name: objects", "Geometry: Point", "Feature Count: 3", "FID Column = fid", "Geometry Column = geom",
		"Extent: (113.884012, 22.555124) - (113.900000, 22.600000)", `ID["EPSG",4326]`,
		"id: String", "class: String", "floors: Integer64", "height_m: Real", "lit: Integer(Boolean)", "updated_at: DateTime", "attrs: String"} {
		if !strings.Contains(info, want) {
			t.Errorf("ogrinfo does not say %q:\n%s", want, info)
		}
	}
	// Every value as GDAL reads it, through its GeoJSON writer.
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
		got := fc.Features[i].Properties
		want := wantProps(r)
		want["id"] = r.ID
		// GDAL gives times back at millisecond precision (what
		// GeoPackage's DATETIME holds), and its GeoJSON writer turns text
		// that is a JSON object or array back into JSON.
		if s, ok := want["updated_at"].(string); ok {
			want["updated_at"] = strings.Replace(s, ".25Z", ".250Z", 1)
		}
		gotJ, _ := json.Marshal(got)
		wantJ, _ := json.Marshal(want)
		if !bytes.Equal(gotJ, wantJ) {
			t.Errorf("feature %d\n got %s\nwant %s", i, gotJ, wantJ)
		}
	}
	if g := string(fc.Features[0].Geometry); !strings.Contains(g, "113.8840123, 22.5551235") {
		t.Errorf("geometry %s, want the position at 7 decimals", g)
	}

	// The spatial index: a spatial filter around the second point finds
	// it alone (GDAL uses the R-tree when the file has one).
	out := gdal(t, "ogrinfo", "-ro", "-al", "-q", "-spat", "113.89", "22.59", "113.91", "22.61", path)
	if n := strings.Count(out, "OGRFeature("); n != 1 || !strings.Contains(out, "4403060170010118000002") {
		t.Errorf("spatial filter found %d features:\n%s", n, out)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var appID, version, indexed int
	var ext string
	if err := db.QueryRow(`SELECT (SELECT application_id FROM pragma_application_id), (SELECT user_version FROM pragma_user_version),
		(SELECT count(*) FROM rtree_objects_geom), (SELECT extension_name FROM gpkg_extensions)`).Scan(&appID, &version, &indexed, &ext); err != nil {
		t.Fatal(err)
	}
	if appID != 0x47504B47 || version != 10300 || indexed != 2 || ext != "gpkg_rtree_index" {
		t.Errorf("application_id %#x, user_version %d, %d index entries, extension %q", appID, version, indexed, ext)
	}
}

// TestGPKGPolygonsInGCJ02: a GCJ-02 export has an srs row of its own that
// GDAL reads without a warning and that says what it is.
func TestGPKGPolygonsInGCJ02(t *testing.T) {
	for _, crs := range []geo.CRS{geo.WGS84, geo.GCJ02, geo.BD09} {
		path := writeFile(t, "grids.gpkg", write(t, "gpkg", polygonSchema, polygonRows(), export.Options{CRS: crs}))
		info := gdal(t, "ogrinfo", "-ro", "-so", "-al", path)
		if !strings.Contains(info, "Geometry: Multi Polygon") || !strings.Contains(info, "Feature Count: 2") {
			t.Errorf("%s:\n%s", crs, info)
		}
		// The extent is that of the converted positions (BD-09 turns the
		// squares a little, so it is not the converted corner).
		minLon, minLat := math.Inf(1), math.Inf(1)
		for _, r := range polygonRows() {
			for _, p := range r.Geometry.(orb.MultiPolygon) {
				for _, q := range p[0] {
					lon, lat := geo.FromWGS84(crs, q[0], q[1])
					minLon, minLat = math.Min(minLon, lon), math.Min(minLat, lat)
				}
			}
		}
		m := regexp.MustCompile(`Extent: \(([0-9.]+), ([0-9.]+)\)`).FindStringSubmatch(info)
		if m == nil || m[1] != fmt.Sprintf("%.6f", minLon) || m[2] != fmt.Sprintf("%.6f", minLat) {
			t.Errorf("%s: extent %v, want from (%.6f, %.6f)", crs, m, minLon, minLat)
		}
		switch crs {
		case geo.WGS84:
			if !strings.Contains(info, `ID["EPSG",4326]`) {
				t.Errorf("no EPSG:4326:\n%s", info)
			}
		default:
			if !strings.Contains(info, `GEOGCRS["`+map[geo.CRS]string{geo.GCJ02: "GCJ-02", geo.BD09: "BD-09"}[crs]) || strings.Contains(info, `ID["EPSG",4326]`) {
				t.Errorf("%s: not described as itself:\n%s", crs, info)
			}
		}
		js := gdal(t, "ogr2ogr", "-f", "GeoJSON", "/vsistdout/", path)
		var fc struct {
			Features []struct {
				Geometry struct {
					Coordinates [][][][]float64 `json:"coordinates"`
				} `json:"geometry"`
				Properties map[string]any `json:"properties"`
			} `json:"features"`
		}
		if err := json.Unmarshal([]byte(js), &fc); err != nil {
			t.Fatal(err)
		}
		p := fc.Features[1].Geometry.Coordinates[1][0][2]
		lon, lat := geo.FromWGS84(crs, 114.11, 22.61)
		if math.Abs(p[0]-lon) > 1e-7 || math.Abs(p[1]-lat) > 1e-7 || fc.Features[1].Properties["name"] != "第二网格" {
			t.Errorf("%s: position %v name %v, want (%.7f, %.7f) 第二网格", crs, p, fc.Features[1].Properties["name"], lon, lat)
		}
	}
}

// TestGPKGAttributesTable: a schema without geometry is an attribute
// table GDAL lists as a layer without geometry.
func TestGPKGAttributesTable(t *testing.T) {
	s := geo.Schema{Name: "统计", Fields: []geo.Field{{Name: "名称", Type: geo.String}, {Name: "total", Type: geo.Integer}}}
	rows := pointRows()[:1]
	rows[0].Values = []any{"福田区", int64(42)}
	rows[0].Geometry = nil
	path := writeFile(t, "stats.gpkg", write(t, "gpkg", s, rows, export.Options{}))
	info := gdal(t, "ogrinfo", "-ro", "-al", path)
	for _, want := range []string{"Layer name: 统计", "Geometry: None", "Feature Count: 1", "名称 (String) = 福田区", "total (Integer64) = 42"} {
		if !strings.Contains(info, want) {
			t.Errorf("ogrinfo does not say %q:\n%s", want, info)
		}
	}
}
