package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"gridmap/api"
	"gridmap/data/pgtest"
	"gridmap/geo"
)

const (
	ctXLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	ctGPKG = "application/geopackage+sqlite3"
)

// exportFC is a FeatureCollection as the export writes it.
type exportFC struct {
	Type     string `json:"type"`
	Name     string `json:"name"`
	Features []struct {
		ID         string          `json:"id"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties map[string]any  `json:"properties"`
	} `json:"features"`
}

// expectAttachment checks the Content-Disposition of an export: an
// attachment whose UTF-8 name (filename*) is want.
func expectAttachment(t *testing.T, r reply, want string) {
	t.Helper()
	cd := r.Header.Get("Content-Disposition")
	disp, params, err := mime.ParseMediaType(cd)
	if err != nil || disp != "attachment" || params["filename"] != want {
		t.Errorf("Content-Disposition %q (%v), want an attachment named %q", cd, err, want)
	}
	if !strings.Contains(cd, `filename="`) || !strings.Contains(cd, "filename*=UTF-8''") {
		t.Errorf("Content-Disposition %q lacks the ASCII filename or filename*", cd)
	}
}

// today is the file-name date: the demo calendar's zone is Shanghai.
func today() string {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	return time.Now().In(loc).Format(time.DateOnly)
}

// TestExportObjects: every object, in each format, is what SQL holds;
// filters, lon/lat columns, an output CRS and the headers.
func TestExportObjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDemoObjects(t, pgtest.NewDemo(t), 400), api.Options{})
	codes := sqlStrings(t, e.store, `SELECT code FROM objects ORDER BY code`)
	if len(codes) != 400 {
		t.Fatalf("%d objects", len(codes))
	}
	before := tableState(t, e)

	r := e.get("/v1/exports/objects")
	var fc exportFC
	expect(t, r, http.StatusOK, "application/geo+json", &fc)
	expectAttachment(t, r, "objects-"+today()+".geojson")
	if got := r.Header.Get("Content-Crs"); got != "<"+geo.CRS84URI+">" {
		t.Errorf("Content-Crs %q", got)
	}
	if fc.Type != "FeatureCollection" || fc.Name != "objects" || len(fc.Features) != len(codes) {
		t.Fatalf("%s %q with %d features, want %d", fc.Type, fc.Name, len(fc.Features), len(codes))
	}
	for i, f := range fc.Features {
		if f.ID != codes[i] || f.Properties["code"] != codes[i] {
			t.Fatalf("feature %d: id %s code %v, want %s", i, f.ID, f.Properties["code"], codes[i])
		}
	}
	// One object's every property against SQL.
	want := sqlStrings(t, e.store, `SELECT json_build_object('class', o.class_code, 'class_name', c.name, 'grid_code', o.grid_code,
		'street_code', o.street_code, 'attrs', o.attrs)::text FROM objects o JOIN object_classes c ON c.code = o.class_code WHERE o.code = $1`, codes[7])[0]
	var w map[string]any
	_ = json.Unmarshal([]byte(want), &w)
	for k, v := range w {
		if fmt.Sprint(fc.Features[7].Properties[k]) != fmt.Sprint(v) {
			t.Errorf("%s of %s: %v, want %v", k, codes[7], fc.Features[7].Properties[k], v)
		}
	}

	// CSV: a filter on a queryable, WKT by default, the header.
	class := sqlStrings(t, e.store, `SELECT class_code FROM objects GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`)[0]
	inClass := sqlStrings(t, e.store, `SELECT code || ' ' || ST_AsText(geom) FROM objects WHERE class_code = $1 ORDER BY code`, class)
	r = e.get("/v1/exports/objects?f=csv&class=" + class)
	expect(t, r, http.StatusOK, "text/csv", nil)
	expectAttachment(t, r, "objects-"+today()+".csv")
	recs, err := csv.NewReader(bytes.NewReader(r.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(inClass)+1 {
		t.Fatalf("%d CSV records for class %s, want %d + a header", len(recs), class, len(inClass))
	}
	head := strings.Join(recs[0], ",")
	if !strings.HasPrefix(head, "id,code,class,") || !strings.HasSuffix(head, ",wkt") {
		t.Errorf("header %s", head)
	}
	for i, rec := range recs[1:] {
		code, _, _ := strings.Cut(inClass[i], " ")
		if rec[0] != code || !strings.HasPrefix(rec[len(rec)-1], "POINT(") && !strings.Contains(rec[len(rec)-1], "(") {
			t.Errorf("record %d: %s … %s, want %s", i, rec[0], rec[len(rec)-1], inClass[i])
		}
	}

	// lon/lat columns in GCJ-02: each point is SQL's, converted.
	r = e.get("/v1/exports/objects?f=csv&geometry=lonlat&crs=gcj02&bom=true")
	expect(t, r, http.StatusOK, "text/csv", nil)
	if got := r.Header.Get("Content-Crs"); got != "<"+geo.GCJ02URI+">" {
		t.Errorf("Content-Crs %q", got)
	}
	if !bytes.HasPrefix(r.Body, []byte("\ufeff")) {
		t.Error("bom=true: no BOM")
	}
	recs, err = csv.NewReader(bytes.NewReader(bytes.TrimPrefix(r.Body, []byte("\ufeff")))).ReadAll()
	if err != nil || len(recs) != len(codes)+1 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	n := len(recs[0])
	if recs[0][n-2] != "lon" || recs[0][n-1] != "lat" {
		t.Errorf("header ends %v", recs[0][n-2:])
	}
	points := sqlStrings(t, e.store, `SELECT code || ' ' || ST_X(geom) || ' ' || ST_Y(geom) FROM objects WHERE GeometryType(geom) = 'POINT' ORDER BY code LIMIT 20`)
	byCode := map[string][]string{}
	for _, rec := range recs[1:] {
		byCode[rec[0]] = rec[n-2:]
	}
	for _, p := range points {
		f := strings.Fields(p)
		x, _ := strconv.ParseFloat(f[1], 64)
		y, _ := strconv.ParseFloat(f[2], 64)
		lon, lat := geo.FromWGS84(geo.GCJ02, x, y)
		gx, _ := strconv.ParseFloat(byCode[f[0]][0], 64)
		gy, _ := strconv.ParseFloat(byCode[f[0]][1], 64)
		if math.Abs(gx-lon) > 6e-8 || math.Abs(gy-lat) > 6e-8 {
			t.Errorf("%s at (%s, %s), want GCJ-02 (%.7f, %.7f)", f[0], byCode[f[0]][0], byCode[f[0]][1], lon, lat)
		}
	}

	// A bbox and a datetime interval select as SQL does.
	box := "114.22,22.55,114.26,22.60"
	inBox := sqlStrings(t, e.store, `SELECT code FROM objects WHERE ST_Intersects(geom, ST_MakeEnvelope(114.22,22.55,114.26,22.60,4326)) ORDER BY code`)
	if len(inBox) == 0 || len(inBox) == len(codes) {
		t.Fatalf("the box holds %d of %d objects: pick another", len(inBox), len(codes))
	}
	r = e.get("/v1/exports/objects?f=ndjson&bbox=" + box + "&datetime=2000-01-01T00:00:00Z/..")
	expect(t, r, http.StatusOK, "application/x-ndjson", nil)
	lines := strings.Split(strings.TrimSpace(string(r.Body)), "\n")
	var got []string
	for _, l := range lines {
		var f struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, f.ID)
	}
	if !slices.Equal(got, inBox) {
		t.Errorf("bbox export: %d objects, SQL %d", len(got), len(inBox))
	}
	// A CQL2 filter, as OGC items take it.
	two := sqlStrings(t, e.store, `SELECT code FROM objects WHERE class_code IN (SELECT class_code FROM objects GROUP BY 1 ORDER BY count(*) DESC LIMIT 2)
		AND ST_Intersects(geom, ST_MakeEnvelope(114.22,22.55,114.26,22.60,4326)) ORDER BY code`)
	classes := sqlStrings(t, e.store, `SELECT class_code FROM objects GROUP BY 1 ORDER BY count(*) DESC LIMIT 2`)
	filter := fmt.Sprintf("class IN ('%s','%s') AND S_INTERSECTS(geometry, BBOX(114.22,22.55,114.26,22.60))", classes[0], classes[1])
	r = e.get("/v1/exports/objects?f=csv&filter=" + url.QueryEscape(filter))
	expect(t, r, http.StatusOK, "text/csv", nil)
	recs, err = csv.NewReader(bytes.NewReader(r.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, rec := range recs[1:] {
		got = append(got, rec[0])
	}
	if len(two) == 0 || !slices.Equal(got, two) {
		t.Errorf("filter %s: %d objects, SQL %d", filter, len(got), len(two))
	}

	r = e.get("/v1/exports/objects?f=geojsonseq&datetime=2000-01-01T00:00:00Z/2000-12-31T00:00:00Z")
	expect(t, r, http.StatusOK, "application/geo+json-seq", nil)
	if len(r.Body) != 0 {
		t.Errorf("an interval before every object exported %d bytes", len(r.Body))
	}

	// GeoPackage: GDAL opens it, without a warning, with every object.
	r = e.get("/v1/exports/objects?f=gpkg")
	expect(t, r, http.StatusOK, ctGPKG, nil)
	expectAttachment(t, r, "objects-"+today()+".gpkg")
	path := filepath.Join(t.TempDir(), "objects.gpkg")
	if err := os.WriteFile(path, r.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	info := ogr(t, "ogrinfo", "-ro", "-so", "-al", path)
	for _, s := range []string{"Layer name: objects", "Geometry: Unknown (any)", fmt.Sprintf("Feature Count: %d", len(codes)), "class_name: String", "updated_at: DateTime"} {
		if !strings.Contains(info, s) {
			t.Errorf("ogrinfo does not say %q:\n%s", s, info)
		}
	}

	// FlatGeobuf: GDAL reads every object (verifying each FlatBuffer), with
	// as many points, lines and polygons as SQL holds.
	r = e.get("/v1/exports/objects?f=fgb")
	expect(t, r, http.StatusOK, "application/flatgeobuf", nil)
	expectAttachment(t, r, "objects-"+today()+".fgb")
	path = filepath.Join(t.TempDir(), "objects.fgb")
	if err := os.WriteFile(path, r.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	info = ogr(t, "ogrinfo", "-ro", "-so", "-al", path)
	if !strings.Contains(info, fmt.Sprintf("Feature Count: %d", len(codes))) {
		t.Errorf("ogrinfo of the FlatGeobuf:\n%s", info)
	}
	recs, err = csv.NewReader(strings.NewReader(ogr(t, "ogr2ogr", "-f", "CSV", "/vsistdout/", path, "-lco", "GEOMETRY=AS_WKT", "-select", "id"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, rec := range recs[1:] {
		kind, _, _ := strings.Cut(rec[0], " ")
		kinds[kind]++
	}
	wantKinds := map[string]int{}
	for _, k := range sqlStrings(t, e.store, `SELECT GeometryType(geom) FROM objects`) {
		wantKinds[k]++
	}
	if fmt.Sprint(kinds) != fmt.Sprint(wantKinds) || len(wantKinds) < 2 {
		t.Errorf("geometry types read back %v, SQL %v", kinds, wantKinds)
	}
	expectUnchanged(t, e, before, "exports")
}

// ogr runs a GDAL program; a warning or an error fails the test.
func ogr(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, errb.String())
	}
	if errb.Len() > 0 || strings.Contains(out.String(), "Warning") {
		t.Errorf("%s %s warns:\n%s%s", name, strings.Join(args, " "), errb.String(), out.String())
	}
	return out.String()
}

// TestExportGridsGPKG: the grids as a GeoPackage with their Chinese names
// and codes, equal to SQL's, and a scoped reader's export holds only its
// street's.
func TestExportGridsGPKG(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	r := e.get("/v1/exports/grids?f=gpkg")
	expect(t, r, http.StatusOK, ctGPKG, nil)
	path := filepath.Join(t.TempDir(), "grids.gpkg")
	if err := os.WriteFile(path, r.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	info := ogr(t, "ogrinfo", "-ro", "-so", "-al", path)
	for _, s := range []string{"Layer name: grids", "Geometry: Multi Polygon", fmt.Sprintf("Feature Count: %d", demoCommunities*demoGridsPer)} {
		if !strings.Contains(info, s) {
			t.Errorf("ogrinfo does not say %q:\n%s", s, info)
		}
	}
	// Codes and names as GDAL reads them, against SQL.
	csvOut := ogr(t, "ogr2ogr", "-f", "CSV", "/vsistdout/", path, "-select", "code,name")
	recs, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range recs[1:] {
		got = append(got, rec[0]+" "+rec[1])
	}
	want := sqlStrings(t, e.store, `SELECT code || ' ' || name FROM units WHERE level = 'grid' AND layer = 'base' AND valid_to IS NULL ORDER BY code`)
	if !slices.Equal(got, want) {
		t.Errorf("grids read back by GDAL (%d) differ from SQL (%d): %v … vs %v …", len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
	}

	// A street-scoped reader exports its street's grids alone.
	tok := mintToken(t, e.store, "street-reader", "viewer", streetA)
	r = e.as(t, tok).get("/v1/exports/grids?f=csv")
	expect(t, r, http.StatusOK, "text/csv", nil)
	recs, err = csv.NewReader(bytes.NewReader(r.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	inStreet := sqlStrings(t, e.store, `SELECT code FROM units WHERE level = 'grid' AND layer = 'base' AND valid_to IS NULL AND code LIKE $1 || '%' ORDER BY code`, streetA)
	got = nil
	for _, rec := range recs[1:] {
		got = append(got, rec[0])
	}
	if len(inStreet) == 0 || !slices.Equal(got, inStreet) {
		t.Errorf("scoped export: %d grids, want the %d of %s", len(got), len(inStreet), streetA)
	}
}

// TestExportRefusals: bad input is a problem naming the parameter, with no
// attachment and nothing written.
func TestExportRefusals(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := tableState(t, e)
	for _, c := range []struct {
		path, param string
		status      int
		detail      string
	}{
		{"/v1/exports/nothing", "", http.StatusNotFound, "nothing"},
		{"/v1/exports/grids?f=xlsx", "f", http.StatusBadRequest, "gpkg"},
		{"/v1/exports/grids?f=shp", "f", http.StatusBadRequest, "geojson"},
		{"/v1/exports/grids?f=csv&f=gpkg", "f", http.StatusBadRequest, "2 times"},
		{"/v1/exports/grids?geometry=lonlat", "geometry", http.StatusBadRequest, "f=csv"},
		{"/v1/exports/grids?f=csv&geometry=centroid", "geometry", http.StatusBadRequest, "lonlat"},
		{"/v1/exports/grids?f=gpkg&bom=true", "bom", http.StatusBadRequest, "f=csv"},
		{"/v1/exports/grids?f=csv&bom=yes", "bom", http.StatusBadRequest, "true or false"},
		{"/v1/exports/grids?crs=epsg:3857", "crs", http.StatusBadRequest, "gcj02"},
		{"/v1/exports/grids?bbox=114,22,113,23", "bbox", http.StatusBadRequest, "minimum"},
		{"/v1/exports/grids?bbox-crs=gcj02", "bbox-crs", http.StatusBadRequest, "bbox"},
		{"/v1/exports/grids?datetime=yesterday", "datetime", http.StatusBadRequest, "yesterday"},
		{"/v1/exports/grids?datetime=2026-02-01T00:00:00Z/2026-01-01T00:00:00Z", "datetime", http.StatusBadRequest, "start is after the end"},
		{"/v1/exports/grids?filter=" + url.QueryEscape("colour = 'red'"), "filter", http.StatusBadRequest, "colour"},
		{"/v1/exports/grids?filter-lang=cql2-json", "filter-lang", http.StatusBadRequest, "filter"},
		{"/v1/exports/grids?version=two", "version", http.StatusBadRequest, "integer"},
		{"/v1/exports/grids?class=0118", "class", http.StatusBadRequest, "unknown query parameter"},
		{"/v1/exports/objects?geometry=wkt&f=gpkg", "geometry", http.StatusBadRequest, "f=csv"},
	} {
		r := e.get(c.path)
		if c.status == http.StatusNotFound {
			expectProblem(t, r, c.status, typeNotFound, "", c.detail)
		} else {
			expectProblem(t, r, c.status, typeBadParam, c.param, c.detail)
		}
		if cd := r.Header.Get("Content-Disposition"); cd != "" {
			t.Errorf("%s: a refusal with Content-Disposition %q", c.path, cd)
		}
	}
	expectUnchanged(t, e, before, "refused exports")
}

// TestExportCutMidStream: a row the server cannot encode, met after the
// first bytes went out, cuts the connection (the client sees an error,
// never a well-formed short file); met before them (a GeoPackage is sent
// only once built) it is a 500 problem.
func TestExportCutMidStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDemoObjects(t, pgtest.NewDemo(t), 600), api.Options{})
	// A curve: PostGIS holds it, the export's decoder takes only the
	// GeoJSON types. Its code sorts after every demo object's.
	if _, err := e.store.Pool.Exec(context.Background(), `INSERT INTO objects (code, class_code, geom) VALUES ('99999999999999999999', '0118',
		ST_GeomFromText('CIRCULARSTRING(114.2 22.55, 114.21 22.56, 114.22 22.55)', 4326))`); err != nil {
		t.Fatal(err)
	}
	// A client of its own: a cut body is nothing a contract can check.
	client := &http.Client{Transport: &http.Transport{}}
	req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/exports/objects", nil)
	resp, err := client.Do(e.authorize(req))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err == nil {
		t.Fatalf("status %d, read error %v after %d bytes: want 200 and a cut body", resp.StatusCode, err, len(body))
	}
	if json.Valid(body) || len(body) < 64<<10 {
		t.Errorf("the cut body (%d bytes) is valid JSON or shorter than one buffer", len(body))
	}
	expectProblem(t, e.get("/v1/exports/objects?f=gpkg"), http.StatusInternalServerError, "https://gridmap.dev/problems/internal", "", "request id")
}

// TestExportTakesHeavySlot: an export is a heavy request: with the one
// slot taken it is refused with 429, and runs once the slot is free.
func TestExportTakesHeavySlot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{HeavyRequests: 1})
	stop := make(chan struct{})
	c := trickle(t, e.url, "/v1/units:validate", stop)
	var r reply
	for deadline := time.Now().Add(20 * time.Second); ; {
		time.Sleep(300 * time.Millisecond)
		r = e.get("/v1/exports/districts?f=csv")
		if r.Status == http.StatusTooManyRequests || time.Now().After(deadline) {
			break
		}
	}
	expectProblem(t, r, http.StatusTooManyRequests, typeBusy, "", "exports")
	close(stop)
	c.Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r = e.get("/v1/exports/districts?f=csv")
		if r.Status == http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	expect(t, r, http.StatusOK, "text/csv", nil)
	if !bytes.Contains(r.Body, []byte(demoDistrictZH)) {
		t.Errorf("districts CSV without %s: %s", demoDistrictZH, r.Body)
	}
}

// TestStatsSpreadsheets: the statistics of a unit as CSV and XLSX hold
// what the JSON answer holds, a row per child and the unit's total last.
func TestStatsSpreadsheets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDemoObjects(t, pgtest.NewDemo(t), 300), api.Options{})
	before := tableState(t, e)
	var st statsBody
	expect(t, e.get("/v1/stats/"+demoDistrict), http.StatusOK, ctJSON, &st)
	var classes []string
	for code := range st.Unit.ByClass {
		classes = append(classes, code)
	}
	slices.Sort(classes)
	if len(st.Children) != demoStreets || len(classes) < 2 {
		t.Fatalf("%d children, %d classes", len(st.Children), len(classes))
	}
	header := []string{"code", "name", "level", "total"}
	for _, c := range classes {
		header = append(header, c+" "+st.Unit.ByClass[c].Name)
	}
	var want [][]string
	for i, u := range append(slices.Clone(st.Children), st.Unit) {
		level := "street"
		if i == len(st.Children) {
			level = "district"
		}
		row := []string{u.Code, u.Name, level, strconv.Itoa(u.Total)}
		for _, c := range classes {
			row = append(row, strconv.Itoa(u.ByClass[c].Count))
		}
		want = append(want, row)
	}
	want = append([][]string{header}, want...)

	r := e.get("/v1/stats/" + demoDistrict + "?f=xlsx")
	expect(t, r, http.StatusOK, ctXLSX, nil)
	expectAttachment(t, r, "stats-"+demoDistrict+"-"+demoDistrictZH+"-objects-"+today()+".xlsx")
	f, err := excelize.OpenReader(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sheet := f.GetSheetName(0)
	got, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("xlsx rows\n got %q\nwant %q", got, want)
	}
	if panes, err := f.GetPanes(sheet); err != nil || !panes.Freeze || panes.YSplit != 1 {
		t.Errorf("panes %+v %v: the header row is not frozen", panes, err)
	}

	// CSV by Accept: a BOM for Excel, the same cells.
	req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/stats/"+demoDistrict, nil)
	req.Header.Set("Accept", "text/csv, application/json;q=0.5")
	resp, err := http.DefaultClient.Do(e.authorize(req))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); resp.StatusCode != http.StatusOK || mt != "text/csv" {
		t.Fatalf("Accept text/csv: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.HasPrefix(body, []byte("\ufeff")) {
		t.Error("statistics CSV without a BOM")
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\ufeff")))).ReadAll()
	if err != nil || fmt.Sprint(recs) != fmt.Sprint(want) {
		t.Errorf("csv records (%v)\n got %q\nwant %q", err, recs, want)
	}
	r = e.get("/v1/stats/" + demoDistrict + "?f=csv&bom=false")
	if bytes.HasPrefix(r.Body, []byte("\ufeff")) {
		t.Error("bom=false: a BOM")
	}

	// Events, by status: the figures of each status as columns.
	var ev struct {
		Unit struct {
			Code string `json:"code"`
			All  struct {
				Total int64 `json:"total"`
			} `json:"all"`
		} `json:"unit"`
		Children []any `json:"children"`
	}
	expect(t, e.get("/v1/stats/"+demoDistrict+"?of=events&by=status"), http.StatusOK, ctJSON, &ev)
	r = e.get("/v1/stats/" + demoDistrict + "?of=events&by=status&f=csv")
	expect(t, r, http.StatusOK, "text/csv", nil)
	recs, err = csv.NewReader(bytes.NewReader(bytes.TrimPrefix(r.Body, []byte("\ufeff")))).ReadAll()
	if err != nil || len(recs) != len(ev.Children)+2 {
		t.Fatalf("%d event rows (%v), want %d children + header + total", len(recs), err, len(ev.Children))
	}
	last := recs[len(recs)-1]
	if h := strings.Join(recs[0][:10], ","); h != "code,name,level,total,overdue,handled,handled_on_time,closed,avg_handling_hours,avg_closing_hours" ||
		last[0] != ev.Unit.Code || last[3] != strconv.FormatInt(ev.Unit.All.Total, 10) {
		t.Errorf("events header %s, total row %v (want %s with %d)", h, last[:4], ev.Unit.Code, ev.Unit.All.Total)
	}

	expectProblem(t, e.get("/v1/stats/"+demoDistrict+"?f=pdf"), http.StatusBadRequest, typeBadParam, "f", "xlsx")
	expectProblem(t, e.get("/v1/stats/"+demoDistrict+"?f=xlsx&bom=true"), http.StatusBadRequest, typeBadParam, "bom", "f=csv")
	expectUnchanged(t, e, before, "statistics spreadsheets")
}
