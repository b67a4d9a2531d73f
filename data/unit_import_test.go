package data_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/geo"
	"gridmap/grid"
)

// A test district 440399 is the square 114.0–114.1 × 22.5–22.6, cut into
// two streets at 114.05.
func sq(x0, y0, x1, y1 float64) string {
	return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`,
		x0, y0, x1, y0, x1, y1, x0, y1, x0, y0)
}

func feat(code, level, geometry string, extra ...string) string {
	props := fmt.Sprintf(`"code":%q,"name":"unit %s","level":%q`, code, code, level)
	for _, e := range extra {
		props += "," + e
	}
	return fmt.Sprintf(`{"type":"Feature","properties":{%s},"geometry":%s}`, props, geometry)
}

func collection(features ...string) string {
	return `{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`
}

var (
	district = feat("440399", "district", sq(114.0, 22.5, 114.1, 22.6))
	streetW  = feat("440399001", "street", sq(114.0, 22.5, 114.05, 22.6))
	streetE  = feat("440399002", "street", sq(114.05, 22.5, 114.1, 22.6))
)

func importJSON(t *testing.T, s *data.Store, doc string, opts data.UnitImportOptions) *data.UnitImportReport {
	t.Helper()
	fs, err := geo.DecodeFeatureCollection(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	drafts, bad := grid.DraftsFromFeatures(fs, "")
	r, err := s.ImportUnits(context.Background(), drafts, bad, opts)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return r
}

func countUnits(t *testing.T, s *data.Store) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM units`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func rules(vs []grid.Violation) map[string]int {
	m := map[string]int{}
	for _, v := range vs {
		m[v.Rule]++
	}
	return m
}

func TestImportViolationsWriteNothing(t *testing.T) {
	t.Parallel()
	bowtie := `{"type":"Polygon","coordinates":[[[114.0,22.5],[114.05,22.6],[114.05,22.5],[114.0,22.6],[114.0,22.5]]]}`
	cases := []struct {
		name      string
		doc       string
		opts      data.UnitImportOptions
		want      map[string]int // rule → count of violations
		inMessage string
	}{
		{"self-intersecting ring", collection(district, feat("440399001", "street", bowtie), streetE),
			data.UnitImportOptions{}, map[string]int{grid.RuleInvalidGeometry: 1}, "Self-intersection at 114.025000 22.550000"},
		{"letters in a code", collection(district, feat("44039900A", "street", sq(114.0, 22.5, 114.05, 22.6)), streetE),
			data.UnitImportOptions{}, map[string]int{grid.RuleBadCode: 1}, "digits 9"},
		{"street code out of range", collection(district, feat("440399600", "street", sq(114.0, 22.5, 114.05, 22.6)), streetE),
			data.UnitImportOptions{}, map[string]int{grid.RuleBadCode: 1}, "digits 7-9"},
		{"prefix is not the parent", collection(district, feat("440399001", "street", sq(114.0, 22.5, 114.05, 22.6), `"parent_code":"440398"`), streetE),
			data.UnitImportOptions{}, map[string]int{grid.RuleBadCode: 1}, "code_prefix"},
		{"unknown parent", collection(feat("440398001", "street", sq(114.0, 22.5, 114.05, 22.6))),
			data.UnitImportOptions{}, map[string]int{grid.RuleUnknownParent: 1}, "440398"},
		{"duplicate code", collection(district, streetW, streetW),
			data.UnitImportOptions{}, map[string]int{grid.RuleDuplicateCode: 1}, "first at features[1]"},
		{"unknown level", collection(district, feat("440399001", "town", sq(114.0, 22.5, 114.05, 22.6))),
			data.UnitImportOptions{}, map[string]int{grid.RuleBadLevel: 1}, "unknown level"},
		{"line instead of polygon", collection(district, feat("440399001", "street", `{"type":"LineString","coordinates":[[114.0,22.5],[114.1,22.6]]}`)),
			data.UnitImportOptions{}, map[string]int{grid.RuleInvalidGeoJSON: 1}, "Polygon or MultiPolygon"},
		{"longitude out of range", collection(district, feat("440399001", "street", sq(114.0, 22.5, 214.05, 22.6))),
			data.UnitImportOptions{}, map[string]int{grid.RuleInvalidGeoJSON: 1}, "longitude out of range"},
		{"child outside its parent", collection(district, feat("440399001", "street", sq(113.99, 22.5, 114.05, 22.6)), streetE),
			data.UnitImportOptions{}, map[string]int{grid.RuleOutsideParent: 1}, "outside its parent 440399"},
		{"siblings overlap", collection(district, feat("440399001", "street", sq(114.0, 22.5, 114.06, 22.6)), streetE),
			data.UnitImportOptions{}, map[string]int{grid.RuleOverlap: 1}, "440399001 and 440399002 overlap"},
		{"gap under a complete parent", collection(district, feat("440399001", "street", sq(114.0, 22.5, 114.04, 22.6)), streetE),
			data.UnitImportOptions{Complete: true}, map[string]int{grid.RuleGap: 1}, "declared complete"},
		{"every violation at once", collection(district,
			feat("440399001", "street", sq(113.99, 22.5, 114.06, 22.6)), streetE,
			feat("440399003", "street", bowtie), feat("44039900X", "street", sq(114, 22.5, 114.01, 22.51))),
			data.UnitImportOptions{}, map[string]int{grid.RuleOutsideParent: 1, grid.RuleOverlap: 1, grid.RuleInvalidGeometry: 1, grid.RuleBadCode: 1}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := pgtest.New(t)
			r := importJSON(t, s, c.doc, c.opts)
			if r.OK() {
				t.Fatalf("import passed; want violations %v", c.want)
			}
			if got := rules(r.Violations); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("violations %v, want %v: %+v", got, c.want, r.Violations)
			}
			if c.inMessage != "" {
				found := false
				for _, v := range r.Violations {
					found = found || strings.Contains(v.Message, c.inMessage)
				}
				if !found {
					t.Errorf("no violation message contains %q: %+v", c.inMessage, r.Violations)
				}
			}
			for _, v := range r.Violations {
				if len(v.Codes) == 0 || v.Message == "" || v.Severity != grid.SeverityError {
					t.Errorf("violation lacks codes, message or severity: %+v", v)
				}
				switch v.Rule {
				case grid.RuleOutsideParent, grid.RuleOverlap, grid.RuleGap:
					if len(v.Geometry) == 0 || v.AreaM2 == nil || *v.AreaM2 <= 1 {
						t.Errorf("%s without geometry or area: %+v", v.Rule, v)
					}
				case grid.RuleInvalidGeometry:
					if len(v.Location) != 2 || len(v.Geometry) == 0 {
						t.Errorf("invalid_geometry without location or geometry: %+v", v)
					}
				}
			}
			if n := countUnits(t, s); n != 0 {
				t.Errorf("%d units written by a failed import", n)
			}
		})
	}
}

func TestImportOverlapAreaAndGeometry(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	// West street reaches 0.01° into the east one: 0.01° × 0.1° ≈ 1,031 m × 11,120 m.
	r := importJSON(t, s, collection(district, feat("440399001", "street", sq(114.0, 22.5, 114.06, 22.6)), streetE), data.UnitImportOptions{})
	if len(r.Violations) != 1 {
		t.Fatalf("violations: %+v", r.Violations)
	}
	v := r.Violations[0]
	if *v.AreaM2 < 11.3e6 || *v.AreaM2 > 11.6e6 {
		t.Errorf("overlap area %.0f m², want about 11.46 km²", *v.AreaM2)
	}
	if !strings.Contains(string(v.Geometry), `"Polygon"`) || v.Codes[0] != "440399001" || v.Codes[1] != "440399002" {
		t.Errorf("overlap geometry or codes wrong: %+v %s", v.Codes, v.Geometry)
	}
}

func TestImportRepair(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	bowtie := `{"type":"Polygon","coordinates":[[[114.0,22.5],[114.05,22.6],[114.05,22.5],[114.0,22.6],[114.0,22.5]]]}`
	r := importJSON(t, s, collection(district, feat("440399001", "street", bowtie)), data.UnitImportOptions{Repair: true})
	if !r.OK() {
		t.Fatalf("repair import failed: %+v", r.Violations)
	}
	if got := rules(r.Warnings); got[grid.RuleRepaired] != 1 {
		t.Fatalf("warnings %v, want one repaired", got)
	}
	var valid bool
	var typ string
	if err := s.Pool.QueryRow(context.Background(), `SELECT ST_IsValid(geom), GeometryType(geom) FROM units WHERE code = '440399001'`).Scan(&valid, &typ); err != nil {
		t.Fatal(err)
	}
	if !valid || typ != "MULTIPOLYGON" {
		t.Errorf("repaired unit valid=%v type=%s", valid, typ)
	}
}

func TestImportGapIsWarningUnlessComplete(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	narrow := feat("440399001", "street", sq(114.0, 22.5, 114.04, 22.6))
	r := importJSON(t, s, collection(district, narrow, streetE), data.UnitImportOptions{})
	if !r.OK() || rules(r.Warnings)[grid.RuleGap] != 1 {
		t.Fatalf("want a passing import with one gap warning: violations %+v warnings %+v", r.Violations, r.Warnings)
	}
	if a := *r.Warnings[0].AreaM2; a < 11.3e6 || a > 11.6e6 {
		t.Errorf("gap area %.0f, want about 11.46 km²", a)
	}
	if n := countUnits(t, s); n != 3 {
		t.Errorf("%d units, want 3", n)
	}
}

func TestImportTolerance(t *testing.T) {
	t.Parallel()
	// Overlap 0.00001° × 0.1° ≈ 1.03 m × 11,120 m ≈ 11,460 m².
	doc := collection(district, feat("440399001", "street", sq(114.0, 22.5, 114.05001, 22.6)), streetE)
	s := pgtest.New(t)
	if r := importJSON(t, s, doc, data.UnitImportOptions{DryRun: true}); r.OK() {
		t.Errorf("an 11,460 m² overlap passed the default 1 m² tolerance")
	}
	if r := importJSON(t, s, doc, data.UnitImportOptions{ToleranceM2: 20000}); !r.OK() {
		t.Errorf("an 11,460 m² overlap failed a 20,000 m² tolerance: %+v", r.Violations)
	}
}

func TestImportNormalisesAndVersions(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	ctx := context.Background()
	// Clockwise ring with a repeated vertex, as a plain Polygon.
	cw := `{"type":"Polygon","coordinates":[[[114.0,22.5],[114.0,22.6],[114.0,22.6],[114.1,22.6],[114.1,22.5],[114.0,22.5]]]}`
	r := importJSON(t, s, collection(feat("440399", "district", cw)), data.UnitImportOptions{Actor: "tester", Reason: "first"})
	if !r.OK() || r.Inserted != 1 {
		t.Fatalf("first import: %+v", r)
	}
	var typ string
	var npoints int
	var ccw bool
	if err := s.Pool.QueryRow(ctx, `SELECT GeometryType(geom), ST_NPoints(geom), ST_IsPolygonCCW(geom) FROM units WHERE code='440399'`).Scan(&typ, &npoints, &ccw); err != nil {
		t.Fatal(err)
	}
	if typ != "MULTIPOLYGON" || npoints != 5 || !ccw {
		t.Errorf("stored %s with %d points, ccw=%v; want MULTIPOLYGON, 5, true", typ, npoints, ccw)
	}
	r = importJSON(t, s, collection(feat("440399", "district", cw)), data.UnitImportOptions{})
	if r.Unchanged != 1 || r.Inserted+r.Updated != 0 {
		t.Errorf("re-import of the same unit: %+v", r)
	}
	r = importJSON(t, s, collection(feat("440399", "district", sq(114.0, 22.5, 114.2, 22.6))), data.UnitImportOptions{})
	if r.Updated != 1 {
		t.Fatalf("changed unit: %+v", r)
	}
	var versions, current int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL) FROM units WHERE code='440399'`).Scan(&versions, &current); err != nil {
		t.Fatal(err)
	}
	if versions != 2 || current != 1 {
		t.Errorf("%d versions, %d current; want 2 and 1", versions, current)
	}
	u, err := s.GetUnit(ctx, "", "440399", data.GeometryNone)
	if err != nil || u.Version != 2 {
		t.Errorf("current unit %+v, %v; want version 2", u, err)
	}
}

func TestImportIntoExistingHierarchy(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	if r := importJSON(t, s, collection(district, streetW, streetE), data.UnitImportOptions{}); !r.OK() {
		t.Fatalf("base import: %+v", r.Violations)
	}
	// A community that pokes into the east street is outside its parent
	// (the west street, already stored) and overlaps nothing at its level.
	r := importJSON(t, s, collection(feat("440399001001", "community", sq(114.0, 22.5, 114.06, 22.55))), data.UnitImportOptions{})
	if got := rules(r.Violations); got[grid.RuleOutsideParent] != 1 {
		t.Fatalf("violations %v, want outside_parent against the stored street", got)
	}
	// Replacing the west street with a smaller one leaves its stored
	// sibling alone but opens a gap in the stored district.
	r = importJSON(t, s, collection(feat("440399001", "street", sq(114.0, 22.5, 114.04, 22.6))), data.UnitImportOptions{})
	if !r.OK() || rules(r.Warnings)[grid.RuleGap] != 1 || r.Updated != 1 {
		t.Fatalf("replacing a street: %+v", r)
	}
	issues, err := s.TopologyIssues(context.Background(), "", "440399", 0)
	if err != nil {
		t.Fatal(err)
	}
	if rules(issues.Warnings)[grid.RuleGap] != 1 {
		t.Errorf("stored issues: %+v %+v", issues.Violations, issues.Warnings)
	}
}
