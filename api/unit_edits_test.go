package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data/pgtest"
)

// editAnswer is the answer of a unit edit.
type editAnswer struct {
	Operation    string `json:"operation"`
	DryRun       bool   `json:"dry_run"`
	UnitsWritten []struct {
		Code    string
		Version int
	} `json:"units_written"`
	UnitsRetired    []string          `json:"units_retired"`
	NewCodes        []string          `json:"new_codes"`
	CodeMap         map[string]string `json:"code_map"`
	ObjectsMoved    int               `json:"objects_moved"`
	OpenEventsMoved int               `json:"open_events_moved"`
	ChangedArea     json.RawMessage   `json:"changed_area"`
	UnitsGeoJSON    struct {
		Type     string `json:"type"`
		Features []struct {
			Properties struct {
				Code, Name, Level string
				Version           int
			} `json:"properties"`
			Geometry json.RawMessage `json:"geometry"`
		} `json:"features"`
	} `json:"units_written_geojson"`
	Seconds float64 `json:"seconds"`
}

func (a editAnswer) versions() map[string]int {
	m := map[string]int{}
	for _, u := range a.UnitsWritten {
		m[u.Code] = u.Version
	}
	return m
}

// editViolationsBody is a 422 of an edit.
type editViolationsBody struct {
	Type       string `json:"type"`
	Violations []struct {
		Rule  string   `json:"rule"`
		Codes []string `json:"codes"`
	} `json:"violations"`
	ViolationsGeoJSON struct {
		Type     string `json:"type"`
		Features []struct {
			Type       string          `json:"type"`
			Geometry   json.RawMessage `json:"geometry"`
			Properties struct {
				Rule    string   `json:"rule"`
				Message string   `json:"message"`
				Codes   []string `json:"codes"`
			} `json:"properties"`
		} `json:"features"`
	} `json:"violations_geojson"`
}

// unitETag is the ETag GET /v1/units/{code} sends.
func unitETag(t *testing.T, e *apiEnv, code string) string {
	t.Helper()
	r := e.get("/v1/units/" + code + "?geometry=none")
	if r.Status != http.StatusOK || r.Header.Get("ETag") == "" {
		t.Fatalf("GET unit %s: %s", code, r)
	}
	return r.Header.Get("ETag")
}

// neighbourGrids are two grids of one community that share an edge, the
// lowest such pair.
func neighbourGrids(t *testing.T, e *apiEnv) (a, b string) {
	t.Helper()
	row := sqlStrings(t, e.store, `
		SELECT a.code || ' ' || b.code FROM units a JOIN units b
		  ON b.valid_to IS NULL AND b.layer = 'base' AND b.parent_code = a.parent_code AND b.code > a.code
		 AND ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Buffer(b.geom, 1e-7))) > 1e-6
		WHERE a.valid_to IS NULL AND a.layer = 'base' AND a.level = 'grid'
		ORDER BY a.code, b.code LIMIT 1`)
	a, b, _ = strings.Cut(row[0], " ")
	return a, b
}

// grabFrom is grid a's outline grown into b by a band along their shared
// edge (width in degrees), and a point of b inside the band.
func grabFrom(t *testing.T, e *apiEnv, a, b string, width float64) (geom string, lon, lat float64) {
	t.Helper()
	row := sqlStrings(t, e.store, `
		WITH x AS (
		    SELECT ST_Intersection(bb.geom, ST_Buffer(ST_Intersection(aa.geom, bb.geom), $3)) AS band, aa.geom AS ag
		    FROM units aa, units bb
		    WHERE aa.valid_to IS NULL AND bb.valid_to IS NULL AND aa.layer = 'base' AND bb.layer = 'base' AND aa.code = $1 AND bb.code = $2
		)
		SELECT ST_AsGeoJSON(ST_Multi(ST_Union(ag, band)), 9) || '|' || ST_X(ST_PointOnSurface(band)) || '|' || ST_Y(ST_PointOnSurface(band)) FROM x`,
		a, b, width)
	parts := strings.Split(row[0], "|")
	lon, _ = strconv.ParseFloat(parts[1], 64)
	lat, _ = strconv.ParseFloat(parts[2], 64)
	return parts[0], lon, lat
}

func unitFeatureJSON(geom, name string) string {
	props := "{}"
	if name != "" {
		props = fmt.Sprintf(`{"name":%q}`, name)
	}
	return fmt.Sprintf(`{"type":"Feature","geometry":%s,"properties":%s}`, geom, props)
}

// noOverlapNoGap checks in SQL that the current children of parent
// neither overlap nor leave a gap in it (above 1 m²).
func noOverlapNoGap(t *testing.T, e *apiEnv, parent string) {
	t.Helper()
	got := sqlStrings(t, e.store, `
		WITH c AS (SELECT code, geom FROM units WHERE valid_to IS NULL AND layer = 'base' AND parent_code = $1),
		p AS (SELECT geom FROM units WHERE valid_to IS NULL AND layer = 'base' AND code = $1)
		SELECT coalesce((SELECT sum(gridmap_area_m2(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3)))
		                 FROM c a JOIN c b ON a.code < b.code AND a.geom && b.geom), 0)::int::text || ' ' ||
		       coalesce((SELECT gridmap_area_m2(ST_CollectionExtract(ST_Difference(p.geom, (SELECT ST_Union(geom) FROM c)), 3)) FROM p), 0)::int::text`, parent)
	if got[0] != "0 0" {
		t.Errorf("children of %s: overlap and gap m² %s, want 0 0", parent, got[0])
	}
}

func TestEditReshape(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	a, b := neighbourGrids(t, e)
	parent := a[:12]
	geom, lon, lat := grabFrom(t, e, a, b, 0.0005)
	obj := fmt.Sprintf("%s0101%06d", demoDistrict, 990001)
	expect(t, e.post("/v1/objects", objFeatureJSON(obj, "0101", pointJSON(lon, lat), "")), http.StatusCreated, ctGeoJSON, nil)
	open := e.reportEvent(evReport("0102", lon, lat)).ID
	closed := e.reportEvent(evReport("0102", lon, lat)).ID
	expect(t, e.post("/v1/events/"+closed+"/transitions", `{"to":"rejected","note":"test"}`), http.StatusOK, ctGeoJSON, nil)
	if g := sqlStrings(t, e.store, `SELECT grid_code FROM events WHERE code = $1`, open)[0]; g != b {
		t.Fatalf("event in grid %s, want %s", g, b)
	}
	tag := unitETag(t, e, a)
	path := "/v1/units/" + a
	body := unitFeatureJSON(geom, "")

	// Preconditions and reason.
	expectProblem(t, e.with(http.MethodPut, path+"?reason=x&neighbours=adjust", body), http.StatusPreconditionRequired, "https://gridmap.dev/problems/precondition-required", "")
	r := e.with(http.MethodPut, path+"?neighbours=adjust", body, "If-Match", tag)
	expectProblem(t, r, http.StatusUnprocessableEntity, "https://gridmap.dev/problems/invalid", "reason")
	r = e.with(http.MethodPut, path+"?reason=x&neighbours=adjust", body, "If-Match", `"0123456789abcdef0123456789abcdef-full"`)
	expectProblem(t, r, http.StatusPreconditionFailed, "https://gridmap.dev/problems/stale", "")
	if !strings.Contains(string(r.Body), strings.TrimSuffix(strings.Trim(tag, `"`), "-none")) {
		t.Errorf("412 does not name the current revision of %s: %s", tag, r)
	}
	expectProblem(t, e.with(http.MethodPut, path+"?reason=x&bogus=1", body, "If-Match", tag), http.StatusBadRequest, "https://gridmap.dev/problems/bad-parameter", "bogus")

	// Without neighbours=adjust the outline overlaps b: a 422 naming it,
	// also as a FeatureCollection.
	before := tableState(t, e)
	r = e.with(http.MethodPut, path+"?reason=x", body, "If-Match", tag)
	var vb editViolationsBody
	expect(t, r, http.StatusUnprocessableEntity, ctProblem, &vb)
	if len(vb.Violations) == 0 || vb.Violations[0].Rule != "overlap" || !strings.Contains(strings.Join(vb.Violations[0].Codes, " "), b) {
		t.Errorf("overlap violation naming %s: %s", b, r)
	}
	if vb.ViolationsGeoJSON.Type != "FeatureCollection" || len(vb.ViolationsGeoJSON.Features) != len(vb.Violations) ||
		vb.ViolationsGeoJSON.Features[0].Properties.Rule != "overlap" || len(vb.ViolationsGeoJSON.Features[0].Geometry) < 10 {
		t.Errorf("violations_geojson: %+v", vb.ViolationsGeoJSON)
	}
	expectUnchanged(t, e, before, "a refused reshape")

	// An editor of another street: 403, nothing written.
	other := e.as(t, mintToken(t, e.store, "edit-other", auth.Editor, demoDistrict+"999"))
	expectProblem(t, other.with(http.MethodPut, path+"?reason=x&neighbours=adjust", body, "If-Match", tag), http.StatusForbidden, "https://gridmap.dev/problems/forbidden", "")
	expectUnchanged(t, e, before, "an out-of-scope reshape")

	// Dry run: the full answer, nothing written.
	var dry editAnswer
	expect(t, e.with(http.MethodPut, path+"?reason=x&neighbours=adjust&dry_run=true", body, "If-Match", tag), http.StatusOK, ctJSON, &dry)
	expectUnchanged(t, e, before, "a dry run")
	if !dry.DryRun || dry.versions()[a] != 2 || dry.versions()[b] != 2 || dry.ObjectsMoved < 1 || dry.OpenEventsMoved != 1 {
		t.Errorf("dry run answer %+v", dry)
	}
	// units_written_geojson: the new outlines of a and of b, b's smaller.
	if fc := dry.UnitsGeoJSON; fc.Type != "FeatureCollection" || len(fc.Features) != 2 ||
		fc.Features[0].Properties.Code != a || fc.Features[1].Properties.Code != b ||
		fc.Features[1].Properties.Version != 2 || fc.Features[1].Properties.Level != "grid" || fc.Features[1].Properties.Name == "" {
		t.Errorf("units_written_geojson %+v", fc)
	} else if smaller := sqlStrings(t, e.store, `SELECT (gridmap_area_m2(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326)) < gridmap_area_m2(geom))::text
		FROM units WHERE valid_to IS NULL AND code = $2`, string(fc.Features[1].Geometry), b)[0]; smaller != "true" {
		t.Errorf("b's new outline is not smaller than its current one: %s", fc.Features[1].Geometry)
	}

	// The edit.
	areaBefore := sqlStrings(t, e.store, `SELECT round(sum(gridmap_area_m2(geom)) / 10)::text FROM units WHERE valid_to IS NULL AND code IN ($1, $2)`, a, b)[0]
	var got editAnswer
	r = e.with(http.MethodPut, path+"?neighbours=adjust", `{"type":"Feature","geometry":`+geom+`,"properties":{"name":"新名"},"reason":"road moved"}`, "If-Match", tag)
	expect(t, r, http.StatusOK, ctJSON, &got)
	if got.Operation != "reshape" || got.DryRun || got.versions()[a] != 2 || got.versions()[b] != 2 || len(got.UnitsWritten) != 2 || string(got.ChangedArea) == "null" {
		t.Errorf("answer %+v", got)
	}
	if got.ObjectsMoved != dry.ObjectsMoved || got.OpenEventsMoved != 1 {
		t.Errorf("moved %d objects (dry %d), %d open events", got.ObjectsMoved, dry.ObjectsMoved, got.OpenEventsMoved)
	}
	if g := sqlStrings(t, e.store, `SELECT grid_code FROM objects WHERE code = $1`, obj)[0]; g != a {
		t.Errorf("object in %s, want %s", g, a)
	}
	if g := sqlStrings(t, e.store, `SELECT grid_code || ' ' || version FROM events WHERE code = $1`, open)[0]; g != a+" 2" {
		t.Errorf("open event: grid and version %s, want %s 2", g, a)
	}
	if g := sqlStrings(t, e.store, `SELECT grid_code FROM events WHERE code = $1`, closed)[0]; g != b {
		t.Errorf("closed event moved to %s", g)
	}
	logLine := sqlStrings(t, e.store, `SELECT actor || ' ' || note FROM event_log WHERE event_code = $1 ORDER BY n DESC LIMIT 1`, open)[0]
	if !strings.HasPrefix(logLine, adminActor+" grid "+b+" → "+a) || !strings.Contains(logLine, "reshape") || !strings.Contains(logLine, "road moved") {
		t.Errorf("log line %q", logLine)
	}
	if n := sqlStrings(t, e.store, `SELECT count(*)::text FROM event_feed WHERE event_code = $1 AND grid_code = $2`, open, a)[0]; n != "1" {
		t.Errorf("%s feed entries of the move", n)
	}
	rec := sqlStrings(t, e.store, `SELECT name || ' ' || operation || ' ' || changed_by || ' ' || change_reason || ' ' || array_to_string(related_codes, ',')
		FROM units WHERE valid_to IS NULL AND code = $1`, a)[0]
	if rec != "新名 reshape "+adminActor+" road moved "+b {
		t.Errorf("new version of %s: %q", a, rec)
	}
	if n := sqlStrings(t, e.store, `SELECT count(*)::text FROM units WHERE code = $1 AND close_operation = 'reshape' AND closed_by = $2`, b, adminActor)[0]; n != "1" {
		t.Errorf("closed version of %s: %s", b, n)
	}
	areaAfter := sqlStrings(t, e.store, `SELECT round(sum(gridmap_area_m2(geom)) / 10)::text FROM units WHERE valid_to IS NULL AND code IN ($1, $2)`, a, b)[0]
	if areaAfter != areaBefore {
		t.Errorf("area of %s and %s: %s0 m² before, %s0 after", a, b, areaBefore, areaAfter)
	}
	noOverlapNoGap(t, e, parent)
	if u := e.get("/v1/locate?lon=" + num(lon) + "&lat=" + num(lat)); !strings.Contains(string(u.Body), a) {
		t.Errorf("locate after the edit: %s", u)
	}

	// The old ETag is stale now.
	r = e.with(http.MethodPut, path+"?reason=x", unitFeatureJSON("null", "又名"), "If-Match", tag)
	expectProblem(t, r, http.StatusPreconditionFailed, "https://gridmap.dev/problems/stale", "")
	// Giving back: a shrinks to its old outline, b takes the band back.
	old := sqlStrings(t, e.store, `SELECT ST_AsGeoJSON(geom, 9) FROM units WHERE code = $1 AND version = 1`, a)[0]
	expect(t, e.with(http.MethodPut, path+"?reason=back&neighbours=adjust", unitFeatureJSON(old, ""), "If-Match", unitETag(t, e, a)), http.StatusOK, ctJSON, &got)
	if got.versions()[b] != 3 {
		t.Errorf("giving back: %+v", got)
	}
	noOverlapNoGap(t, e, parent)
	t.Logf("reshape tests in %v", time.Since(start).Round(time.Millisecond))
}

func TestEditRetireMergeCreateRevert(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	a, b := neighbourGrids(t, e)
	parent := a[:12]
	pt := sqlStrings(t, e.store, `SELECT ST_X(p) || ' ' || ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM units WHERE valid_to IS NULL AND code = $1) x`, a)[0]
	xs, ys, _ := strings.Cut(pt, " ")
	lon, _ := strconv.ParseFloat(xs, 64)
	lat, _ := strconv.ParseFloat(ys, 64)
	expect(t, e.post("/v1/objects", objFeatureJSON(fmt.Sprintf("%s0101%06d", demoDistrict, 990101), "0101", pointJSON(lon, lat), "")), http.StatusCreated, ctGeoJSON, nil)
	open := e.reportEvent(evReport("0102", lon, lat)).ID
	closed := e.reportEvent(evReport("0102", lon, lat)).ID
	expect(t, e.post("/v1/events/"+closed+"/transitions", `{"to":"rejected","note":"test"}`), http.StatusOK, ctGeoJSON, nil)
	inA := sqlStrings(t, e.store, `SELECT count(*)::text FROM objects WHERE grid_code = $1`, a)[0]

	// Retire a into b.
	since := e.unitChanges(t, "").Next
	tag := unitETag(t, e, a)
	notSibling := sqlStrings(t, e.store, `SELECT code FROM units WHERE valid_to IS NULL AND level = 'grid' AND parent_code <> $1 ORDER BY code LIMIT 1`, parent)[0]
	expectProblem(t, e.with(http.MethodPost, "/v1/units/"+a+":retire", `{"into":"`+notSibling+`","reason":"x"}`, "If-Match", tag), http.StatusUnprocessableEntity, "https://gridmap.dev/problems/invalid", "into")
	expectProblem(t, e.with(http.MethodPost, "/v1/units/"+a+":retire", `{"into":"`+b+`"}`, "If-Match", tag), http.StatusUnprocessableEntity, "https://gridmap.dev/problems/invalid", "reason")
	expectProblem(t, e.with(http.MethodPost, "/v1/units/"+a+":retire", `{"into":"`+b+`","reason":"x"}`), http.StatusPreconditionRequired, "https://gridmap.dev/problems/precondition-required", "")
	before := tableState(t, e)
	var got editAnswer
	expect(t, e.with(http.MethodPost, "/v1/units/"+a+":retire?dry_run=true", `{"into":"`+b+`","reason":"x"}`, "If-Match", tag), http.StatusOK, ctJSON, &got)
	expectUnchanged(t, e, before, "a dry retire")
	expect(t, e.with(http.MethodPost, "/v1/units/"+a+":retire", `{"into":"`+b+`","reason":"villages joined"}`, "If-Match", tag), http.StatusOK, ctJSON, &got)
	if got.Operation != "retire" || len(got.UnitsRetired) != 1 || got.UnitsRetired[0] != a || got.versions()[b] != 2 || strconv.Itoa(got.ObjectsMoved) != inA || got.OpenEventsMoved != 1 {
		t.Errorf("retire answer %+v (objects in %s: %s)", got, a, inA)
	}
	if g := sqlStrings(t, e.store, `SELECT (SELECT grid_code FROM events WHERE code = $1) || ' ' || (SELECT grid_code FROM events WHERE code = $2)`, open, closed)[0]; g != b+" "+a {
		t.Errorf("open and closed events in %s, want %s %s", g, b, a)
	}
	if n := sqlStrings(t, e.store, `SELECT count(*)::text FROM objects WHERE grid_code = $1`, a)[0]; n != "0" {
		t.Errorf("%s objects left in retired %s", n, a)
	}
	noOverlapNoGap(t, e, parent)
	// The change feed tells services that store codes: a retired, b written,
	// a now b.
	if ch := e.unitChanges(t, fmt.Sprintf("?since=%d", since)).Changes; len(ch) != 1 || ch[0].Operation != "retire" ||
		!reflect.DeepEqual(ch[0].Retired, []string{a}) || ch[0].CodeMap[a] != b || ch[0].Versions[b] != 2 || ch[0].Reason != "villages joined" ||
		ch[0].Actor != adminActor || !inBBox(ch[0].BBox, lon, lat) {
		t.Errorf("unit changes after the retire: %+v", ch)
	}
	expectProblem(t, e.with(http.MethodPut, "/v1/units/"+a+"?reason=x", unitFeatureJSON("null", "复活"), "If-Match", tag), http.StatusGone, "https://gridmap.dev/problems/retired", "")
	expectProblem(t, e.with(http.MethodPost, "/v1/units/"+a+":revert", `{"version":1,"reason":"x"}`, "If-Match", tag), http.StatusGone, "https://gridmap.dev/problems/retired", "")
	expect(t, e.get("/v1/units/"+a), http.StatusNotFound, ctProblem, nil)
	t.Logf("retire in %.3f s", got.Seconds)

	// Merge two adjacent communities: the other's grids move under the
	// survivor with new codes.
	pair := sqlStrings(t, e.store, `
		SELECT x.code || ' ' || y.code FROM units x JOIN units y
		  ON y.valid_to IS NULL AND y.parent_code = x.parent_code AND y.code > x.code AND ST_Length(ST_Intersection(ST_Boundary(x.geom), ST_Buffer(y.geom, 1e-7))) > 1e-6
		WHERE x.valid_to IS NULL AND x.level = 'community' AND x.code <> $1 ORDER BY x.code DESC, y.code LIMIT 1`, parent)[0]
	c1, c2, _ := strings.Cut(pair, " ")
	street := c1[:9]
	far := sqlStrings(t, e.store, `
		SELECT y.code FROM units x JOIN units y ON y.valid_to IS NULL AND y.parent_code = x.parent_code AND y.code <> x.code AND NOT ST_Intersects(x.geom, y.geom)
		WHERE x.valid_to IS NULL AND x.code = $1 ORDER BY y.code LIMIT 1`, c1)
	if len(far) == 1 {
		r := e.with(http.MethodPost, "/v1/units:merge", fmt.Sprintf(`{"codes":[%q,%q],"keep":%q,"reason":"x"}`, c1, far[0], c1), "If-Match", unitETag(t, e, c1)+", "+unitETag(t, e, far[0]))
		expectProblem(t, r, http.StatusUnprocessableEntity, "https://gridmap.dev/problems/invalid", "codes", far[0])
	}
	objsC2 := sqlStrings(t, e.store, `SELECT count(*)::text FROM objects WHERE left(grid_code, 12) = $1`, c2)[0]
	body := fmt.Sprintf(`{"codes":[%q,%q],"keep":%q,"reason":"merged by decree"}`, c1, c2, c1)
	expectProblem(t, e.with(http.MethodPost, "/v1/units:merge", body, "If-Match", unitETag(t, e, c1)), http.StatusPreconditionFailed, "https://gridmap.dev/problems/stale", "")
	r := e.with(http.MethodPost, "/v1/units:merge", body, "If-Match", unitETag(t, e, c1)+", "+unitETag(t, e, c2))
	expect(t, r, http.StatusOK, ctJSON, &got)
	if got.Operation != "merge" || len(got.CodeMap) != demoGridsPer || len(got.NewCodes) != demoGridsPer || len(got.UnitsRetired) != demoGridsPer+1 || got.versions()[c1] != 2 {
		t.Errorf("merge answer %s", r)
	}
	for old, nc := range got.CodeMap {
		if !strings.HasPrefix(nc, c1) || !strings.HasPrefix(old, c2) || nc <= c1+"008" {
			t.Errorf("code map %s → %s", old, nc)
		}
	}
	if n := sqlStrings(t, e.store, `SELECT count(*)::text FROM objects WHERE left(grid_code, 12) = $1`, c2)[0]; n != "0" || strconv.Itoa(got.ObjectsMoved) != objsC2 {
		t.Errorf("objects: %s left under %s, %d moved, %s were there", n, c2, got.ObjectsMoved, objsC2)
	}
	noOverlapNoGap(t, e, c1)
	noOverlapNoGap(t, e, street)
	t.Logf("merge of two communities in %.3f s", got.Seconds)

	// Create: a square inside b, taken from it with neighbours=adjust.
	sq := sqlStrings(t, e.store, `SELECT ST_AsGeoJSON(ST_Expand(ST_PointOnSurface(geom), 0.0003), 9) FROM units WHERE valid_to IS NULL AND code = $1`, b)[0]
	feature := `{"type":"Feature","geometry":` + sq + `,"properties":{"name":"新网格","parent_code":"` + parent + `"},"reason":"new estate"}`
	r = e.with(http.MethodPost, "/v1/units", feature)
	var vb editViolationsBody
	expect(t, r, http.StatusUnprocessableEntity, ctProblem, &vb)
	if len(vb.ViolationsGeoJSON.Features) == 0 || vb.ViolationsGeoJSON.Features[0].Properties.Rule != "overlap" {
		t.Errorf("create over b: %s", r)
	}
	r = e.with(http.MethodPost, "/v1/units?neighbours=adjust", feature)
	expect(t, r, http.StatusCreated, ctJSON, &got)
	if len(got.NewCodes) != 1 || got.NewCodes[0] != parent+"009" || got.versions()[parent+"009"] != 1 || got.versions()[b] != 3 {
		t.Errorf("create: %s", r)
	}
	noOverlapNoGap(t, e, parent)
	r = e.with(http.MethodPost, "/v1/units", `{"type":"Feature","geometry":`+sq+`,"properties":{"name":"x","code":"`+a+`"},"reason":"x"}`)
	expectProblem(t, r, http.StatusConflict, "https://gridmap.dev/problems/conflict", "", "never given again")

	// Revert b to version 1 (before the new grid): it overlaps the new
	// grid, checked as any edit.
	before = tableState(t, e)
	rb := e.with(http.MethodPost, "/v1/units/"+b+":revert", `{"version":1,"reason":"undo"}`, "If-Match", unitETag(t, e, b))
	expect(t, rb, http.StatusUnprocessableEntity, ctProblem, &vb)
	if len(vb.Violations) == 0 || vb.Violations[0].Rule != "overlap" || !strings.Contains(string(rb.Body), parent+"009") {
		t.Errorf("revert over the new grid: %s", rb)
	}
	expectProblem(t, e.with(http.MethodPost, "/v1/units/"+b+":revert", `{"version":9,"reason":"undo"}`, "If-Match", unitETag(t, e, b)), http.StatusUnprocessableEntity, "https://gridmap.dev/problems/invalid", "version")
	expectUnchanged(t, e, before, "refused reverts")
	// A rename reverted.
	expect(t, e.with(http.MethodPut, "/v1/units/"+c1+"?reason=typo", unitFeatureJSON("null", "错名"), "If-Match", unitETag(t, e, c1)), http.StatusOK, ctJSON, nil)
	expect(t, e.with(http.MethodPost, "/v1/units/"+c1+":revert", `{"version":2,"reason":"undo typo"}`, "If-Match", unitETag(t, e, c1)), http.StatusOK, ctJSON, &got)
	if got.Operation != "revert" || got.versions()[c1] != 4 {
		t.Errorf("revert: %+v", got)
	}
	if rec := sqlStrings(t, e.store, `SELECT (name <> '错名')::text || ' ' || operation FROM units WHERE valid_to IS NULL AND code = $1`, c1)[0]; rec != "true revert" {
		t.Errorf("after the revert: %s", rec)
	}
	t.Logf("retire, merge, create, revert tests in %v", time.Since(start).Round(time.Millisecond))
}

// neighbourOf is the lowest sibling sharing an edge with code.
func neighbourOf(t *testing.T, e *apiEnv, code string) string {
	t.Helper()
	return sqlStrings(t, e.store, `
		SELECT b.code FROM units a JOIN units b
		  ON b.valid_to IS NULL AND b.layer = 'base' AND b.parent_code = a.parent_code AND b.code <> a.code AND ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Buffer(b.geom, 1e-7))) > 1e-6
		WHERE a.valid_to IS NULL AND a.layer = 'base' AND a.code = $1 ORDER BY b.code LIMIT 1`, code)[0]
}

// TestEditConcurrentReshapes: 50 reshapes with neighbours=adjust of the
// grids of one community against each other, all at once, each with the
// ETag read before any ran. Row locks serialise them; the losers are 412
// (or 409); nothing overlaps and nothing is left uncovered; every grid's
// history is a chain.
func TestEditConcurrentReshapes(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	a, _ := neighbourGrids(t, e)
	parent := a[:12]
	grids := sqlStrings(t, e.store, `SELECT code FROM units WHERE valid_to IS NULL AND parent_code = $1 ORDER BY code`, parent)
	type job struct{ code, body, tag string }
	var jobs []job
	for i := range 50 {
		g := grids[i%len(grids)]
		n := neighbourOf(t, e, g)
		geom, _, _ := grabFrom(t, e, g, n, 0.0001*float64(1+i/len(grids)))
		jobs = append(jobs, job{g, unitFeatureJSON(geom, ""), unitETag(t, e, g)})
	}
	statuses := make([]int, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			r, err := e.send(http.MethodPut, "/v1/units/"+j.code+"?neighbours=adjust&reason=race", j.body, "If-Match", j.tag)
			if err != nil {
				t.Errorf("PUT %s: %v", j.code, err)
				return
			}
			statuses[i] = r.Status
			if r.Status != http.StatusOK && r.Status != http.StatusPreconditionFailed && r.Status != http.StatusConflict {
				t.Errorf("PUT %s: %s", j.code, r)
			}
		})
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count[http.StatusOK] == 0 || count[http.StatusPreconditionFailed] == 0 {
		t.Errorf("statuses %v: want winners and 412s", count)
	}
	noOverlapNoGap(t, e, parent)
	// History: versions 1..n, one current, each begins where the last ended.
	bad := sqlStrings(t, e.store, `
		SELECT count(*)::text FROM (
		    SELECT code, version, valid_from, valid_to,
		           lag(valid_to) OVER (PARTITION BY code ORDER BY version) AS prev_to,
		           row_number() OVER (PARTITION BY code ORDER BY version) AS k,
		           count(*) FILTER (WHERE valid_to IS NULL) OVER (PARTITION BY code) AS cur
		    FROM units WHERE parent_code = $1) h
		WHERE version <> k OR cur <> 1 OR (k > 1 AND prev_to IS DISTINCT FROM valid_from)`, parent)[0]
	if bad != "0" {
		t.Errorf("%s broken history rows", bad)
	}
	written := sqlStrings(t, e.store, `SELECT count(*)::text FROM units WHERE parent_code = $1 AND operation = 'reshape' AND related_codes <> '{}' AND code IN (
		SELECT code FROM units WHERE parent_code = $1 GROUP BY code HAVING count(*) > 1)`, parent)[0]
	t.Logf("%d concurrent reshapes: %v; %s reshape versions written; in %v", len(jobs), count, written, time.Since(start).Round(time.Millisecond))
}
