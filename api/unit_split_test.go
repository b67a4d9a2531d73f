package api_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data/pgtest"
)

// cutAcross is a north–south line across unit code at frac of its width,
// reaching past its bounding box, and a point on each side of it (west,
// east), each inside the unit.
func cutAcross(t *testing.T, e *apiEnv, code string, frac float64) (line string, west, east [2]float64) {
	t.Helper()
	row := sqlStrings(t, e.store, `
		WITH u AS (SELECT geom, ST_XMin(geom) + $2 * (ST_XMax(geom) - ST_XMin(geom)) AS x FROM units WHERE valid_to IS NULL AND code = $1),
		s AS (
		    SELECT ST_AsGeoJSON(ST_MakeLine(ST_MakePoint(x, ST_YMin(geom) - 0.001), ST_MakePoint(x, ST_YMax(geom) + 0.001)), 9) AS line,
		           ST_PointOnSurface(ST_Intersection(geom, ST_MakeEnvelope(ST_XMin(geom) - 1, -90, x - 0.0002, 90, 4326))) AS w,
		           ST_PointOnSurface(ST_Intersection(geom, ST_MakeEnvelope(x + 0.0002, -90, ST_XMax(geom) + 1, 90, 4326))) AS e
		    FROM u)
		SELECT line || '|' || ST_X(w) || '|' || ST_Y(w) || '|' || ST_X(e) || '|' || ST_Y(e) FROM s`, code, frac)
	p := strings.Split(row[0], "|")
	f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	return p[0], [2]float64{f(p[1]), f(p[2])}, [2]float64{f(p[3]), f(p[4])}
}

// strips are unit code cut into n north–south strips of equal width, as
// GeoJSON geometries.
func strips(t *testing.T, e *apiEnv, code string, n int) []string {
	t.Helper()
	return sqlStrings(t, e.store, `
		WITH u AS (SELECT geom, ST_XMin(geom) AS x0, (ST_XMax(geom) - ST_XMin(geom)) / $2 AS w FROM units WHERE valid_to IS NULL AND code = $1)
		SELECT ST_AsGeoJSON(ST_Intersection(geom, ST_MakeEnvelope(CASE WHEN k = 0 THEN x0 - 1 ELSE x0 + k * w END, -90,
		                                                          CASE WHEN k = $2 - 1 THEN x0 + 1 ELSE x0 + (k + 1) * w END, 90, 4326)), 9)
		FROM u, generate_series(0, $2::int - 1) k ORDER BY k`, code, n)
}

func piecesJSON(geoms []string, props ...string) string {
	var fs []string
	for i, g := range geoms {
		p := "{}"
		if i < len(props) && props[i] != "" {
			p = props[i]
		}
		fs = append(fs, `{"type":"Feature","geometry":`+g+`,"properties":`+p+`}`)
	}
	return `{"type":"FeatureCollection","features":[` + strings.Join(fs, ",") + `]}`
}

// TestSplitByLine: a grid cut in two by a line; the piece holding the
// label point keeps the code, the other gets the next free code under the
// community; areas add up, siblings neither overlap nor leave a gap;
// objects and an open event on the new side follow; the change feed says
// "split". Then the refusals, each writing nothing.
func TestSplitByLine(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	a, _ := neighbourGrids(t, e)
	parent := a[:12]
	line, west, east := cutAcross(t, e, a, 0.3)
	labelWest := sqlStrings(t, e.store, `SELECT (ST_X(ST_PointOnSurface(geom)) < ST_XMin(geom) + 0.3 * (ST_XMax(geom) - ST_XMin(geom)))::text FROM units WHERE valid_to IS NULL AND code = $1`, a)[0] == "true"
	kept, moved := east, west
	if labelWest {
		kept, moved = west, east
	}
	objKept := fmt.Sprintf("%s0101%06d", demoDistrict, 990201)
	objNew := fmt.Sprintf("%s0101%06d", demoDistrict, 990202)
	expect(t, e.post("/v1/objects", objFeatureJSON(objKept, "0101", pointJSON(kept[0], kept[1]), "")), http.StatusCreated, ctGeoJSON, nil)
	expect(t, e.post("/v1/objects", objFeatureJSON(objNew, "0101", pointJSON(moved[0], moved[1]), "")), http.StatusCreated, ctGeoJSON, nil)
	open := e.reportEvent(evReport("0102", moved[0], moved[1])).ID
	openKept := e.reportEvent(evReport("0102", kept[0], kept[1])).ID
	if g := sqlStrings(t, e.store, `SELECT grid_code FROM events WHERE code = $1`, open)[0]; g != a {
		t.Fatalf("event in grid %s, want %s", g, a)
	}
	next := sqlStrings(t, e.store, `SELECT $1 || lpad((max(right(code, 3)::int) + 1)::text, 3, '0') FROM units WHERE parent_code = $1`, parent)[0]
	tag := unitETag(t, e, a)
	path := "/v1/units/" + a + ":split"
	body := `{"line":` + line + `,"reason":"new road"}`

	// Refusals: nothing written by any.
	before := tableState(t, e)
	expectProblem(t, e.with(http.MethodPost, path, body), http.StatusPreconditionRequired, "https://gridmap.dev/problems/precondition-required", "")
	expectProblem(t, e.with(http.MethodPost, path, body, "If-Match", `"0123456789abcdef0123456789abcdef-full"`), http.StatusPreconditionFailed, "https://gridmap.dev/problems/stale", "")
	expectProblem(t, e.with(http.MethodPost, path, `{"line":`+line+`}`, "If-Match", tag), http.StatusUnprocessableEntity, "https://gridmap.dev/problems/invalid", "reason")
	far := `{"type":"LineString","coordinates":[[` + num(west[0]+1) + `,` + num(west[1]) + `],[` + num(west[0]+1) + `,` + num(west[1]+0.1) + `]]}`
	expectProblem(t, e.with(http.MethodPost, path, `{"line":`+far+`,"reason":"x"}`, "If-Match", tag), http.StatusUnprocessableEntity, "https://gridmap.dev/problems/invalid", "line", "does not cut")
	// A line that ends inside the unit cuts nothing either.
	dangling := `{"type":"LineString","coordinates":[[` + num(west[0]) + `,` + num(west[1]) + `],[` + num(east[0]) + `,` + num(east[1]) + `]]}`
	expectProblem(t, e.with(http.MethodPost, path, `{"line":`+dangling+`,"reason":"x"}`, "If-Match", tag), http.StatusUnprocessableEntity, "https://gridmap.dev/problems/invalid", "line", "does not cut")
	expectProblem(t, e.with(http.MethodPost, path, `{"line":{"type":"Point","coordinates":[114,22]},"reason":"x"}`, "If-Match", tag), http.StatusUnprocessableEntity, "https://gridmap.dev/problems/invalid", "line")
	expectProblem(t, e.with(http.MethodPost, path, `{"reason":"x"}`, "If-Match", tag), http.StatusUnprocessableEntity, "https://gridmap.dev/problems/invalid", "line")
	expectProblem(t, e.with(http.MethodPost, path, `{"line":`+line+`,"keep":1,"reason":"x"}`, "If-Match", tag), http.StatusUnprocessableEntity, "https://gridmap.dev/problems/invalid", "keep")
	other := e.as(t, mintToken(t, e.store, "split-other", auth.Editor, demoDistrict+"999"))
	expectProblem(t, other.with(http.MethodPost, path, body, "If-Match", tag), http.StatusForbidden, "https://gridmap.dev/problems/forbidden", "")
	var dry editAnswer
	expect(t, e.with(http.MethodPost, path+"?dry_run=true", body, "If-Match", tag), http.StatusOK, ctJSON, &dry)
	expectUnchanged(t, e, before, "refused and dry splits")
	if !dry.DryRun || dry.Operation != "split" || len(dry.NewCodes) != 1 || dry.NewCodes[0] != next || dry.versions()[a] != 2 || dry.versions()[next] != 1 || dry.OpenEventsMoved != 1 {
		t.Errorf("dry split: %+v (next code %s)", dry, next)
	}

	// The split.
	since := e.unitChanges(t, "").Next
	areaBefore := sqlStrings(t, e.store, `SELECT round(gridmap_area_m2(geom))::text FROM units WHERE valid_to IS NULL AND code = $1`, a)[0]
	var got editAnswer
	r := e.with(http.MethodPost, path, body, "If-Match", tag)
	expect(t, r, http.StatusOK, ctJSON, &got)
	if got.Operation != "split" || got.DryRun || len(got.NewCodes) != 1 || got.NewCodes[0] != next || len(got.UnitsWritten) != 2 ||
		got.versions()[a] != 2 || got.versions()[next] != 1 || len(got.UnitsRetired) != 0 || got.ObjectsMoved != 1 || got.OpenEventsMoved != 1 ||
		string(got.ChangedArea) == "null" {
		t.Errorf("split answer %s", r)
	}
	areaAfter := sqlStrings(t, e.store, `SELECT round(sum(gridmap_area_m2(geom)))::text FROM units WHERE valid_to IS NULL AND code IN ($1, $2)`, a, next)[0]
	if areaBefore != areaAfter {
		t.Errorf("area of %s %s m² before, of the pieces %s m² after", a, areaBefore, areaAfter)
	}
	noOverlapNoGap(t, e, parent)
	if g := sqlStrings(t, e.store, `SELECT string_agg(grid_code, ' ' ORDER BY code) FROM objects WHERE code IN ($1, $2)`, objKept, objNew)[0]; g != a+" "+next {
		t.Errorf("objects in %s, want %s %s", g, a, next)
	}
	if n := sqlStrings(t, e.store, `SELECT count(*)::text FROM objects WHERE grid_code = $1`, next)[0]; n != "1" {
		t.Errorf("%s objects in %s", n, next)
	}
	if g := sqlStrings(t, e.store, `SELECT (SELECT grid_code FROM events WHERE code = $1) || ' ' || (SELECT grid_code FROM events WHERE code = $2)`, open, openKept)[0]; g != next+" "+a {
		t.Errorf("open events in %s, want %s %s", g, next, a)
	}
	logLine := sqlStrings(t, e.store, `SELECT actor || ' ' || note FROM event_log WHERE event_code = $1 ORDER BY n DESC LIMIT 1`, open)[0]
	if !strings.HasPrefix(logLine, adminActor+" grid "+a+" → "+next) || !strings.Contains(logLine, "split") || !strings.Contains(logLine, "new road") {
		t.Errorf("log line %q", logLine)
	}
	rec := sqlStrings(t, e.store, `SELECT code || ' ' || operation || ' ' || array_to_string(related_codes, ',') || ' ' || change_reason FROM units WHERE valid_to IS NULL AND code IN ($1, $2) ORDER BY code`, a, next)
	if rec[0] != a+" split "+next+" new road" || rec[1] != next+" split "+a+" new road" {
		t.Errorf("versions written: %q", rec)
	}
	if ch := e.unitChanges(t, fmt.Sprintf("?since=%d", since)).Changes; len(ch) != 1 || ch[0].Operation != "split" ||
		ch[0].Versions[a] != 2 || ch[0].Versions[next] != 1 || ch[0].Reason != "new road" || ch[0].Actor != adminActor {
		t.Errorf("unit changes after the split: %+v", ch)
	}
	// The old ETag is stale now.
	expectProblem(t, e.with(http.MethodPost, path, body, "If-Match", tag), http.StatusPreconditionFailed, "https://gridmap.dev/problems/stale", "")
	t.Logf("split by a line in %.3f s; tests in %v", got.Seconds, time.Since(start).Round(time.Millisecond))
}

// TestSplitByPieces: a grid split into three strips, keep choosing the
// third; names from the pieces. Pieces that leave a gap, overlap or reach
// out of the unit are 422s naming the piece, with its geometry; a code
// taken is a 409.
func TestSplitByPieces(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	a, b := neighbourGrids(t, e)
	parent := a[:12]
	s := strips(t, e, a, 3)
	tag := unitETag(t, e, a)
	path := "/v1/units/" + a + ":split"
	before := tableState(t, e)

	// A gap: the middle strip is missing.
	var vb editViolationsBody
	r := e.with(http.MethodPost, path, `{"pieces":`+piecesJSON([]string{s[0], s[2]})+`,"reason":"x"}`, "If-Match", tag)
	expect(t, r, http.StatusUnprocessableEntity, ctProblem, &vb)
	if len(vb.Violations) != 1 || vb.Violations[0].Rule != "split_gap" || len(vb.ViolationsGeoJSON.Features) != 1 || len(vb.ViolationsGeoJSON.Features[0].Geometry) < 10 {
		t.Errorf("pieces with a gap: %s", r)
	}
	// An overlap: the first strip grown into the second.
	grown := sqlStrings(t, e.store, `SELECT ST_AsGeoJSON(ST_Intersection(ST_Buffer(ST_GeomFromGeoJSON($1), 0.0005), geom), 9) FROM units WHERE valid_to IS NULL AND code = $2`, s[0], a)[0]
	r = e.with(http.MethodPost, path, `{"pieces":`+piecesJSON([]string{grown, s[1], s[2]})+`,"reason":"x"}`, "If-Match", tag)
	expect(t, r, http.StatusUnprocessableEntity, ctProblem, &vb)
	if len(vb.Violations) != 1 || vb.Violations[0].Rule != "overlap" || !strings.Contains(vb.ViolationsGeoJSON.Features[0].Properties.Message, "pieces[0] and pieces[1]") ||
		len(vb.ViolationsGeoJSON.Features[0].Geometry) < 10 {
		t.Errorf("overlapping pieces: %s", r)
	}
	// Reaching out: the last strip grown out of the unit (into b).
	out := sqlStrings(t, e.store, `SELECT ST_AsGeoJSON(ST_Buffer(ST_GeomFromGeoJSON($1), 0.0005), 9)`, s[2])[0]
	r = e.with(http.MethodPost, path, `{"pieces":`+piecesJSON([]string{s[0], s[1], out})+`,"reason":"x"}`, "If-Match", tag)
	expect(t, r, http.StatusUnprocessableEntity, ctProblem, &vb)
	if len(vb.Violations) == 0 || !strings.Contains(string(r.Body), "split_outside") || !strings.Contains(string(r.Body), "pieces[2]") {
		t.Errorf("a piece outside the unit: %s", r)
	}
	// A code taken, a keep out of range.
	expectProblem(t, e.with(http.MethodPost, path, `{"pieces":`+piecesJSON(s, "", `{"code":"`+b+`"}`)+`,"reason":"x"}`, "If-Match", tag), http.StatusConflict, "https://gridmap.dev/problems/conflict", "")
	expectProblem(t, e.with(http.MethodPost, path, `{"pieces":`+piecesJSON(s)+`,"keep":3,"reason":"x"}`, "If-Match", tag), http.StatusUnprocessableEntity, "https://gridmap.dev/problems/invalid", "keep")
	expectUnchanged(t, e, before, "refused splits")

	// The split: the third strip keeps the code.
	var got editAnswer
	r = e.with(http.MethodPost, path, `{"pieces":`+piecesJSON(s, `{"name":"西片"}`, "", `{"name":"东片"}`)+`,"keep":2,"reason":"three estates"}`, "If-Match", tag)
	expect(t, r, http.StatusOK, ctJSON, &got)
	if len(got.NewCodes) != 2 || got.versions()[a] != 2 || len(got.UnitsWritten) != 3 {
		t.Fatalf("split answer %s", r)
	}
	names := sqlStrings(t, e.store, `
		SELECT u.code || ' ' || u.name || ' ' || (ST_Area(ST_Intersection(u.geom, ST_GeomFromGeoJSON(p)))/ST_Area(u.geom) > 0.99)::text
		FROM units u, unnest($1::text[], $2::text[]) AS x(code, p) WHERE u.valid_to IS NULL AND u.code = x.code ORDER BY u.code`,
		[]string{got.NewCodes[0], got.NewCodes[1], a}, []string{s[0], s[1], s[2]})
	oldName := sqlStrings(t, e.store, `SELECT name FROM units WHERE code = $1 AND version = 1`, a)[0]
	want := []string{a + " 东片 true", got.NewCodes[0] + " 西片 true", got.NewCodes[1] + " " + oldName + "（2） true"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Errorf("pieces written:\n %q\nwant\n %q", names, want)
	}
	noOverlapNoGap(t, e, parent)
	t.Logf("split into three pieces in %.3f s; tests in %v", got.Seconds, time.Since(start).Round(time.Millisecond))
}

// TestSplitCommunity: a community split along its grids' boundaries: each
// grid goes with the piece that covers it, those of the new community get
// new codes under it, with their objects. A line through grids is a 422
// naming a grid that crosses it.
func TestSplitCommunity(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	a, _ := neighbourGrids(t, e)
	c := a[:12]
	street := c[:9]
	tag := unitETag(t, e, c)
	path := "/v1/units/" + c + ":split"

	// A line across the middle crosses grids.
	line, _, _ := cutAcross(t, e, c, 0.5)
	before := tableState(t, e)
	var vb editViolationsBody
	r := e.with(http.MethodPost, path, `{"line":`+line+`,"reason":"x"}`, "If-Match", tag)
	expect(t, r, http.StatusUnprocessableEntity, ctProblem, &vb)
	if len(vb.Violations) == 0 || vb.Violations[0].Rule != "crosses_cut" || !strings.HasPrefix(vb.Violations[0].Codes[0], c) || len(vb.Violations[0].Codes[0]) != 15 ||
		!strings.Contains(vb.ViolationsGeoJSON.Features[0].Properties.Message, vb.Violations[0].Codes[0]) || len(vb.ViolationsGeoJSON.Features[0].Geometry) < 10 {
		t.Errorf("a line through grids: %s", r)
	}
	expectUnchanged(t, e, before, "a split through children")

	// Pieces along the grids: the west ones, and the rest.
	west := sqlStrings(t, e.store, `
		SELECT code FROM units WHERE valid_to IS NULL AND parent_code = $1
		  AND ST_X(ST_Centroid(geom)) < (SELECT ST_X(ST_Centroid(geom)) FROM units WHERE valid_to IS NULL AND code = $1) ORDER BY code`, c)
	pieces := sqlStrings(t, e.store, `
		WITH w AS (SELECT ST_Union(geom) AS g FROM units WHERE valid_to IS NULL AND code = ANY($2))
		SELECT ST_AsGeoJSON(g, 15) FROM w
		UNION ALL
		SELECT ST_AsGeoJSON(ST_Difference(u.geom, w.g), 15) FROM units u, w WHERE u.valid_to IS NULL AND u.code = $1`, c, west)
	labelWest := sqlStrings(t, e.store, `SELECT ST_Intersects(ST_PointOnSurface(geom), ST_GeomFromGeoJSON($2))::text FROM units WHERE valid_to IS NULL AND code = $1`, c, pieces[0])[0] == "true"
	movedGrids := west
	if labelWest {
		movedGrids = sqlStrings(t, e.store, `SELECT code FROM units WHERE valid_to IS NULL AND parent_code = $1 AND NOT code = ANY($2) ORDER BY code`, c, west)
	}
	pt := sqlStrings(t, e.store, `SELECT ST_X(p) || ' ' || ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM units WHERE valid_to IS NULL AND code = $1) x`, movedGrids[0])[0]
	xs, ys, _ := strings.Cut(pt, " ")
	lon, _ := strconv.ParseFloat(xs, 64)
	lat, _ := strconv.ParseFloat(ys, 64)
	obj := fmt.Sprintf("%s0101%06d", demoDistrict, 990301)
	expect(t, e.post("/v1/objects", objFeatureJSON(obj, "0101", pointJSON(lon, lat), "")), http.StatusCreated, ctGeoJSON, nil)
	open := e.reportEvent(evReport("0102", lon, lat)).ID

	var got editAnswer
	r = e.with(http.MethodPost, path, `{"pieces":`+piecesJSON(pieces)+`,"reason":"two villages"}`, "If-Match", tag)
	expect(t, r, http.StatusOK, ctJSON, &got)
	if len(got.UnitsRetired) != len(movedGrids) || len(got.CodeMap) != len(movedGrids) || len(got.NewCodes) != len(movedGrids)+1 || got.versions()[c] != 2 {
		t.Fatalf("split answer %s (grids moving: %v)", r, movedGrids)
	}
	var nc string
	for _, n := range got.NewCodes {
		if len(n) == 12 {
			nc = n
		}
	}
	if nc == "" || nc[:9] != street {
		t.Fatalf("new community code %q in %v", nc, got.NewCodes)
	}
	for i, g := range movedGrids {
		if want := fmt.Sprintf("%s%03d", nc, i+1); got.CodeMap[g] != want {
			t.Errorf("code map %s → %s, want %s", g, got.CodeMap[g], want)
		}
	}
	if g := sqlStrings(t, e.store, `SELECT (SELECT grid_code FROM objects WHERE code = $1) || ' ' || (SELECT grid_code FROM events WHERE code = $2)`, obj, open)[0]; g != got.CodeMap[movedGrids[0]]+" "+got.CodeMap[movedGrids[0]] {
		t.Errorf("object and open event in %s, want %s", g, got.CodeMap[movedGrids[0]])
	}
	if n := sqlStrings(t, e.store, `SELECT count(*)::text FROM units WHERE valid_to IS NULL AND parent_code = $1`, c)[0]; n != strconv.Itoa(demoGridsPer-len(movedGrids)) {
		t.Errorf("%s grids left under %s", n, c)
	}
	noOverlapNoGap(t, e, c)
	noOverlapNoGap(t, e, nc)
	noOverlapNoGap(t, e, street)
	t.Logf("community split in %.3f s; tests in %v", got.Seconds, time.Since(start).Round(time.Millisecond))
}
