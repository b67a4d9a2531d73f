package data_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/geo"
	"gridmap/grid"
)

// The small demo lies in district 440308; component codes there are
// 440308 + class + sequence.
const objDistrict = "440308"

func objCode(class string, seq int) string { return fmt.Sprintf("%s%s%06d", objDistrict, class, seq) }

func objStrings(t *testing.T, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if out == nil {
		out = []string{}
	}
	return out
}

func objGeometry(t *testing.T, s *data.Store, q string, args ...any) orb.Geometry {
	t.Helper()
	var b []byte
	if err := s.Pool.QueryRow(context.Background(), q, args...).Scan(&b); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	g, err := geo.FromEWKB(b)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func wantInvalid(t *testing.T, err error, field string, inMsg ...string) {
	t.Helper()
	var inv *data.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("error %v (%T), want an InvalidError on %s", err, err, field)
	}
	if inv.Field != field {
		t.Errorf("InvalidError on %q (%s), want %q", inv.Field, inv.Msg, field)
	}
	for _, s := range inMsg {
		if !strings.Contains(inv.Msg, s) {
			t.Errorf("InvalidError %q does not mention %q", inv.Msg, s)
		}
	}
}

func TestObjectClassSeed(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	ctx := context.Background()
	seed, err := data.SeedClasses()
	if err != nil {
		t.Fatal(err)
	}
	if len(seed) < 40 {
		t.Fatalf("seed has %d classes", len(seed))
	}
	classes, err := s.Classes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(classes) != len(seed) {
		t.Errorf("store has %d classes, seed %d", len(classes), len(seed))
	}
	for _, c := range seed {
		if got := classes[c.Code]; !reflect.DeepEqual(got, c) {
			t.Errorf("class %s: stored %+v, seed %+v", c.Code, got, c)
		}
	}
	for code, want := range map[string]grid.Class{
		"0101":       {Code: "0101", Kind: grid.KindComponent, Major: "01", MajorName: "公用设施", Minor: "01", Name: "上水井盖", GeometryTypes: []string{"Point"}},
		"0405":       {Code: "0405", Kind: grid.KindComponent, Major: "04", MajorName: "园林绿化", Minor: "05", Name: "绿地", GeometryTypes: []string{"Polygon", "MultiPolygon"}},
		"house":      {Code: "house", Kind: grid.KindBuilding, Major: "05", MajorName: "房屋土地", Name: "房屋（楼栋）", GeometryTypes: []string{"Point", "Polygon", "MultiPolygon"}},
		"enterprise": {Code: "enterprise", Kind: grid.KindEnterprise, Name: "法人（企业、机构）", GeometryTypes: []string{"Point"}},
	} {
		if got := classes[code]; !reflect.DeepEqual(got, want) {
			t.Errorf("class %s: %+v, want %+v", code, got, want)
		}
	}
	// Seeding again at the next start leaves edited classes alone.
	if _, err := s.Pool.Exec(ctx, `UPDATE object_classes SET name = '上水井盖（自来水）' WHERE code = '0101'`); err != nil {
		t.Fatal(err)
	}
	s2, err := data.Open(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	classes, err = s2.Classes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if classes["0101"].Name != "上水井盖（自来水）" || len(classes) != len(seed) {
		t.Errorf("a second start changed the catalogue: 0101 is %q, %d classes", classes["0101"].Name, len(classes))
	}
}

func TestAddClass(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	ctx := context.Background()
	shop := grid.Class{Code: "shop", Kind: grid.KindBuilding, Name: "商铺", GeometryTypes: []string{"Point", "Polygon"}}
	if err := s.AddClass(ctx, shop); err != nil {
		t.Fatal(err)
	}
	classes, _ := s.Classes(ctx)
	if !reflect.DeepEqual(classes["shop"], shop) {
		t.Errorf("stored %+v, want %+v", classes["shop"], shop)
	}
	if err := s.AddClass(ctx, shop); !errors.Is(err, data.ErrExists) {
		t.Errorf("adding shop twice: %v, want ErrExists", err)
	}
	if err := s.AddClass(ctx, grid.Class{Code: "0101", Kind: grid.KindComponent, Major: "01", Minor: "01", Name: "x", GeometryTypes: []string{"Point"}}); !errors.Is(err, data.ErrExists) {
		t.Errorf("adding seeded 0101: %v, want ErrExists", err)
	}
	for _, c := range []grid.Class{
		{Code: "0199", Kind: grid.KindComponent, Major: "01", Minor: "98", Name: "x", GeometryTypes: []string{"Point"}},
		{Code: "01x9", Kind: grid.KindComponent, Major: "01", Minor: "x9", Name: "x", GeometryTypes: []string{"Point"}},
		{Code: "bad code", Kind: grid.KindBuilding, Name: "x", GeometryTypes: []string{"Point"}},
		{Code: "noname", Kind: grid.KindBuilding, Name: " ", GeometryTypes: []string{"Point"}},
		{Code: "nokind", Kind: "shop", Name: "x", GeometryTypes: []string{"Point"}},
		{Code: "nogeom", Kind: grid.KindBuilding, Name: "x"},
		{Code: "circle", Kind: grid.KindBuilding, Name: "x", GeometryTypes: []string{"Circle"}},
	} {
		wantInvalid(t, s.AddClass(ctx, c), "class", c.Code)
	}
	classes, _ = s.Classes(ctx)
	for _, code := range []string{"0199", "01x9", "nokind", "nogeom", "circle"} {
		if _, ok := classes[code]; ok {
			t.Errorf("invalid class %s was stored", code)
		}
	}
}

func TestValidateUSCC(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"91350100M000100Y43", "91110000802100433B", "91440300708461136T"} {
		if err := grid.ValidateUSCC(code); err != nil {
			t.Errorf("%s: %v", code, err)
		}
		if c := grid.USCCCheck(code[:17]); c != code[17] {
			t.Errorf("USCCCheck(%s) = %c, want %c", code[:17], c, code[17])
		}
		// Every other check character is wrong.
		for _, c := range "0123456789ABCDEFGHJKLMNPQRTUWXY" {
			if byte(c) == code[17] {
				continue
			}
			if err := grid.ValidateUSCC(code[:17] + string(c)); err == nil || !strings.Contains(err.Error(), "check character") {
				t.Errorf("%s%c: %v, want a check character error", code[:17], c, err)
			}
		}
	}
	for code, msg := range map[string]string{
		"91440300708461136":   "18 characters",
		"91440300708461136TT": "18 characters",
		"9144030070846113IT":  "alphabet",
		"91440300708461136t":  "alphabet",
		"91AB0300708461136T":  "administrative division",
	} {
		if err := grid.ValidateUSCC(code); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want an error about %s", code, err, msg)
		}
	}
}

func TestCheckObject(t *testing.T) {
	t.Parallel()
	seed, err := data.SeedClasses()
	if err != nil {
		t.Fatal(err)
	}
	classes := map[string]grid.Class{}
	for _, c := range seed {
		classes[c.Code] = c
	}
	pt := orb.Point{114.25, 22.58}
	square := orb.Polygon{{{114.25, 22.58}, {114.26, 22.58}, {114.26, 22.59}, {114.25, 22.59}, {114.25, 22.58}}}
	ok := []grid.Object{
		{Code: objCode("0101", 1), Class: "0101", Geometry: pt},
		{Code: objCode("0405", 1), Class: "0405", Geometry: square, Attrs: json.RawMessage(`{"name":"公园"}`)},
		{Code: objCode("0405", 2), Class: "0405", Geometry: orb.MultiPolygon{square}},
		{Code: objCode("0216", 1), Class: "0216", Geometry: orb.LineString{{114.25, 22.58}, {114.26, 22.58}}},
		{Code: "4403080000000000001", Class: "house", Geometry: square, Attrs: json.RawMessage(` {} `)},
		{Code: "91350100M000100Y43", Class: "enterprise", Geometry: pt},
		{Code: "91110000802100433B", Class: "enterprise", Geometry: pt},
		{Code: "91440300708461136T", Class: "enterprise", Geometry: pt},
	}
	for _, o := range ok {
		c, err := data.CheckObject(classes, &o)
		if err != nil {
			t.Errorf("%s (%s): %v", o.Code, o.Class, err)
			continue
		}
		if c.Code != o.Class {
			t.Errorf("%s: class %s, want %s", o.Code, c.Code, o.Class)
		}
		if len(o.Attrs) == 0 || !json.Valid(o.Attrs) {
			t.Errorf("%s: attrs %q after the check, want a JSON object", o.Code, o.Attrs)
		}
	}
	bad := []struct {
		name  string
		o     grid.Object
		field string
		msg   string
	}{
		{"unknown class", grid.Object{Code: objCode("0101", 1), Class: "9999", Geometry: pt}, "class", `"9999"`},
		{"no class", grid.Object{Code: objCode("0101", 1), Geometry: pt}, "class", "unknown class"},
		{"short code", grid.Object{Code: "440308010100001", Class: "0101", Geometry: pt}, "code", "16 digits"},
		{"letters in code", grid.Object{Code: "44030801010000A1", Class: "0101", Geometry: pt}, "code", "16 digits"},
		{"digits 7-10 not the class", grid.Object{Code: objCode("0102", 1), Class: "0101", Geometry: pt}, "code", "digits 7-10 (0102)"},
		{"sequence zero", grid.Object{Code: objCode("0101", 0), Class: "0101", Geometry: pt}, "code", "000001"},
		{"not a district", grid.Object{Code: "0003080101000001", Class: "0101", Geometry: pt}, "code", "digits 1-6"},
		{"house code length", grid.Object{Code: "440308000000000001", Class: "house", Geometry: pt}, "code", "19 digits"},
		{"USCC check character", grid.Object{Code: "91440300708461136U", Class: "enterprise", Geometry: pt}, "code", "check character"},
		{"USCC length", grid.Object{Code: "9144030070846113", Class: "enterprise", Geometry: pt}, "code", "18 characters"},
		{"no geometry", grid.Object{Code: objCode("0101", 1), Class: "0101"}, "geometry", "missing"},
		{"type not allowed", grid.Object{Code: objCode("0101", 1), Class: "0101", Geometry: square}, "geometry", "allows Point, not Polygon"},
		{"line for a polygon class", grid.Object{Code: objCode("0405", 1), Class: "0405", Geometry: orb.LineString{{114, 22}, {114.1, 22}}}, "geometry", "not LineString"},
		{"longitude out of range", grid.Object{Code: objCode("0101", 1), Class: "0101", Geometry: orb.Point{181, 22}}, "geometry", "longitude"},
		{"latitude out of range", grid.Object{Code: objCode("0101", 1), Class: "0101", Geometry: orb.Point{114, -90.5}}, "geometry", "latitude"},
		{"not finite", grid.Object{Code: objCode("0101", 1), Class: "0101", Geometry: orb.Point{math.NaN(), 22}}, "geometry", "finite"},
		{"one-position line", grid.Object{Code: objCode("0216", 1), Class: "0216", Geometry: orb.LineString{{114, 22}}}, "geometry", "at least 2 positions"},
		{"open ring", grid.Object{Code: objCode("0405", 1), Class: "0405", Geometry: orb.Polygon{{{114, 22}, {114.1, 22}, {114.1, 22.1}, {114, 22.1}}}}, "geometry", "not closed"},
		{"two-corner ring", grid.Object{Code: objCode("0405", 1), Class: "0405", Geometry: orb.Polygon{{{114, 22}, {114.1, 22}, {114, 22}}}}, "geometry", "distinct positions"},
		{"empty polygon", grid.Object{Code: objCode("0405", 1), Class: "0405", Geometry: orb.Polygon{}}, "geometry", "empty"},
		{"empty multipolygon", grid.Object{Code: objCode("0405", 1), Class: "0405", Geometry: orb.MultiPolygon{}}, "geometry", "empty"},
		{"attrs array", grid.Object{Code: objCode("0101", 1), Class: "0101", Geometry: pt, Attrs: json.RawMessage(`[1]`)}, "attrs", "JSON object"},
		{"attrs string", grid.Object{Code: objCode("0101", 1), Class: "0101", Geometry: pt, Attrs: json.RawMessage(`"x"`)}, "attrs", "JSON object"},
		{"attrs broken", grid.Object{Code: objCode("0101", 1), Class: "0101", Geometry: pt, Attrs: json.RawMessage(`{"a":}`)}, "attrs", "JSON object"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := data.CheckObject(classes, &c.o)
			wantInvalid(t, err, c.field, c.msg)
		})
	}
}

// twoGrids finds the two demo grids with the longest shared edge, and a
// point m in the middle of that (straight) edge.
func twoGrids(t *testing.T, s *data.Store) (a, b string, m orb.Point) {
	t.Helper()
	err := s.Pool.QueryRow(context.Background(), `
		SELECT a.code, b.code, ST_X(p), ST_Y(p)
		FROM units a JOIN units b ON a.level = 'grid' AND b.level = 'grid' AND a.code < b.code
		     AND a.geom && b.geom AND ST_Relate(a.geom, b.geom, 'F***1****'),
		     LATERAL (SELECT ST_LineMerge(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))) AS e) e,
		     LATERAL (SELECT ST_LineInterpolatePoint(e.e, 0.5) AS p) p
		WHERE a.valid_to IS NULL AND b.valid_to IS NULL AND ST_GeometryType(e.e) = 'ST_LineString'
		ORDER BY ST_Length(e.e) DESC, a.code LIMIT 1`).Scan(&a, &b, &m[0], &m[1])
	if err != nil {
		t.Fatal(err)
	}
	return a, b, m
}

// straddle builds a polygon around m: the part of a in a square of half
// side h around m, and the part of b in the square scaled by √(3/7). The
// edge through m is straight and the square centred on it, so a holds 70 %
// of the area and b 30 %.
func straddle(t *testing.T, s *data.Store, a, b string, m orb.Point) orb.Geometry {
	t.Helper()
	return objGeometry(t, s, `
		WITH sq AS (SELECT ST_Expand(ST_SetSRID(ST_MakePoint($3, $4), 4326), 0.0005) AS big,
		                   ST_Expand(ST_SetSRID(ST_MakePoint($3, $4), 4326), 0.0005 * sqrt(3.0 / 7)) AS small)
		SELECT ST_AsEWKB(ST_Union(ST_Intersection(ua.geom, sq.big), ST_Intersection(ub.geom, sq.small)))
		FROM sq, units ua, units ub WHERE ua.code = $1 AND ub.code = $2 AND ua.valid_to IS NULL AND ub.valid_to IS NULL`,
		a, b, m[0], m[1])
}

func TestSaveObjectAssignsGrid(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	a, b, m := twoGrids(t, s)

	// A point goes to the grid that covers it, with its ancestors.
	var inA orb.Point
	if err := s.Pool.QueryRow(ctx, `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM units WHERE code = $1) x`, a).Scan(&inA[0], &inA[1]); err != nil {
		t.Fatal(err)
	}
	pt := &grid.Object{Code: objCode("0101", 1), Class: "0101", Geometry: inA, Attrs: json.RawMessage(`{"material":"iron"}`)}
	created, err := s.SaveObject(ctx, pt, false)
	if err != nil || !created {
		t.Fatalf("SaveObject: created %v, %v", created, err)
	}
	if pt.Grid != a || pt.Community != a[:12] || pt.Street != a[:9] || pt.District != a[:6] {
		t.Errorf("point in %s assigned %+v", a, pt)
	}
	got, err := s.GetObject(ctx, pt.Code)
	if err != nil {
		t.Fatal(err)
	}
	if got.Grid != a || got.Community != a[:12] || got.Street != a[:9] || got.District != a[:6] || got.Class != "0101" {
		t.Errorf("stored %+v", got.Object)
	}
	var attrs map[string]string
	if err := json.Unmarshal(got.Attrs, &attrs); err != nil || attrs["material"] != "iron" {
		t.Errorf("attrs %s", got.Attrs)
	}
	if got.CreatedAt == "" || got.UpdatedAt == "" || !strings.Contains(string(got.GeoJSON), `"Point"`) {
		t.Errorf("stored %+v %s", got, got.GeoJSON)
	}
	// The generated columns agree with the Go side.
	row := objStrings(t, s.Pool, `SELECT grid_code || community_code || street_code || district_code FROM objects WHERE code = $1`, pt.Code)
	if row[0] != a+a[:12]+a[:9]+a[:6] {
		t.Errorf("generated codes %s", row[0])
	}

	// Polygons go to the grid holding the largest share: 70/30 and 30/70.
	var shareA, shareB float64
	p7030 := straddle(t, s, a, b, m)
	if err := s.Pool.QueryRow(ctx, `
		SELECT ST_Area(ST_Intersection(ua.geom, g)) / ST_Area(g), ST_Area(ST_Intersection(ub.geom, g)) / ST_Area(g)
		FROM units ua, units ub, (SELECT ST_GeomFromEWKB($3) g) x WHERE ua.code = $1 AND ub.code = $2`,
		a, b, mustEWKB(t, p7030)).Scan(&shareA, &shareB); err != nil {
		t.Fatal(err)
	}
	if math.Abs(shareA-0.7) > 0.001 || math.Abs(shareB-0.3) > 0.001 {
		t.Fatalf("the straddling polygon has %.4f in %s and %.4f in %s, want 0.7 and 0.3", shareA, a, shareB, b)
	}
	poly := &grid.Object{Code: objCode("0405", 1), Class: "0405", Geometry: p7030}
	if _, err := s.SaveObject(ctx, poly, false); err != nil {
		t.Fatal(err)
	}
	if poly.Grid != a {
		t.Errorf("70 %% in %s, 30 %% in %s: assigned %q", a, b, poly.Grid)
	}
	poly2 := &grid.Object{Code: objCode("0405", 2), Class: "0405", Geometry: straddle(t, s, b, a, m)}
	if _, err := s.SaveObject(ctx, poly2, false); err != nil {
		t.Fatal(err)
	}
	if poly2.Grid != b {
		t.Errorf("30 %% in %s, 70 %% in %s: assigned %q", a, b, poly2.Grid)
	}
	// A line goes to the grid holding most of its length: 0.3 of it on a's
	// side of the edge, 0.7 on b's.
	var x1, y1, x2, y2 float64
	if err := s.Pool.QueryRow(ctx, `
		WITH e AS (SELECT ST_LineMerge(ST_Intersection(ST_Boundary(ua.geom), ST_Boundary(ub.geom))) e, ua.geom ga
		           FROM units ua, units ub WHERE ua.code = $1 AND ub.code = $2),
		n AS (SELECT -(ST_Y(ST_EndPoint(e)) - ST_Y(ST_StartPoint(e))) / ST_Length(e) AS nx,
		             (ST_X(ST_EndPoint(e)) - ST_X(ST_StartPoint(e))) / ST_Length(e) AS ny, ga FROM e),
		s AS (SELECT CASE WHEN ST_Intersects(ga, ST_SetSRID(ST_MakePoint($3 + 0.0001 * nx, $4 + 0.0001 * ny), 4326)) THEN 1 ELSE -1 END AS sa, nx, ny FROM n)
		SELECT $3 + sa * 0.0003 * nx, $4 + sa * 0.0003 * ny, $3 - sa * 0.0007 * nx, $4 - sa * 0.0007 * ny FROM s`,
		a, b, m[0], m[1]).Scan(&x1, &y1, &x2, &y2); err != nil {
		t.Fatal(err)
	}
	ln := &grid.Object{Code: objCode("0216", 1), Class: "0216", Geometry: orb.LineString{{x1, y1}, {x2, y2}}}
	if _, err := s.SaveObject(ctx, ln, false); err != nil {
		t.Fatal(err)
	}
	if ln.Grid != b {
		t.Errorf("a line 30 %% in %s and 70 %% in %s: assigned %q", a, b, ln.Grid)
	}

	// Saved again elsewhere, the point is assigned again.
	var inB orb.Point
	if err := s.Pool.QueryRow(ctx, `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM units WHERE code = $1) x`, b).Scan(&inB[0], &inB[1]); err != nil {
		t.Fatal(err)
	}
	moved := &grid.Object{Code: pt.Code, Class: "0101", Geometry: inB}
	created, err = s.SaveObject(ctx, moved, true)
	if err != nil || created {
		t.Fatalf("re-save: created %v, %v", created, err)
	}
	if moved.Grid != b {
		t.Errorf("moved point assigned %q, want %s", moved.Grid, b)
	}
	if g := objStrings(t, s.Pool, `SELECT grid_code FROM objects WHERE code = $1`, pt.Code); g[0] != b {
		t.Errorf("stored grid %s after the move, want %s", g[0], b)
	}
	// A move through an upsert too.
	moved.Geometry = inA
	if created, err := s.SaveObject(ctx, moved, false); err != nil || created || moved.Grid != a {
		t.Errorf("upsert back: created %v grid %s err %v, want false %s", created, moved.Grid, err, a)
	}

	// Outside every grid: stored, unassigned, listed.
	far := &grid.Object{Code: objCode("0101", 2), Class: "0101", Geometry: orb.Point{113.0, 21.0}}
	if created, err := s.SaveObject(ctx, far, false); err != nil || !created {
		t.Fatalf("object outside: %v %v", created, err)
	}
	ent := &grid.Object{Code: "91110000802100433B", Class: "enterprise", Geometry: orb.Point{116.4, 39.9}}
	if err := s.CreateObject(ctx, ent); err != nil {
		t.Fatal(err)
	}
	if far.Grid != "" || far.District != "" || ent.Grid != "" {
		t.Errorf("outside objects assigned %q %q", far.Grid, ent.Grid)
	}
	if n := objStrings(t, s.Pool, `SELECT code FROM objects WHERE grid_code IS NULL ORDER BY code`); !reflect.DeepEqual(n, []string{far.Code, ent.Code}) {
		t.Errorf("unassigned rows %v", n)
	}
	p, err := s.UnassignedObjects(ctx, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := pageCodes(p); !reflect.DeepEqual(got, []string{far.Code, ent.Code}) || p.Next != "" {
		t.Errorf("UnassignedObjects %v next %q", got, p.Next)
	}
	p, err = s.UnassignedObjects(ctx, 1, "")
	if err != nil || len(p.Objects) != 1 || p.Next == "" {
		t.Fatalf("first unassigned page: %v %+v", err, p)
	}
	p2, err := s.UnassignedObjects(ctx, 1, p.Next)
	if err != nil || pageCodes(p2)[0] != ent.Code || p2.Next != "" {
		t.Errorf("second unassigned page: %v %+v", err, p2)
	}

	// Create refuses a taken code; replace refuses an unknown one; neither writes.
	dup := &grid.Object{Code: pt.Code, Class: "0101", Geometry: inB}
	if err := s.CreateObject(ctx, dup); !errors.Is(err, data.ErrExists) {
		t.Errorf("CreateObject on a taken code: %v", err)
	}
	if g := objStrings(t, s.Pool, `SELECT grid_code FROM objects WHERE code = $1`, pt.Code); g[0] != a {
		t.Errorf("a refused create moved the object to %s", g[0])
	}
	if _, err := s.SaveObject(ctx, &grid.Object{Code: objCode("0101", 99), Class: "0101", Geometry: inA}, true); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("replace of an unknown code: %v", err)
	}
	// A code naming another district than where the object lies.
	wrong := &grid.Object{Code: "4403030101000001", Class: "0101", Geometry: inA}
	_, err = s.SaveObject(ctx, wrong, false)
	wantInvalid(t, err, "code", "440303", "440308")
	// A self-intersecting polygon is refused with PostGIS's reason.
	bow := &grid.Object{Code: objCode("0405", 3), Class: "0405", Geometry: orb.Polygon{{inA, {inA[0] + 0.001, inA[1] + 0.001}, {inA[0] + 0.001, inA[1]}, {inA[0], inA[1] + 0.001}, inA}}}
	_, err = s.SaveObject(ctx, bow, false)
	wantInvalid(t, err, "geometry", "Self-intersection")
	if n := objStrings(t, s.Pool, `SELECT code FROM objects WHERE code IN ($1, $2, $3)`, objCode("0101", 99), wrong.Code, bow.Code); len(n) != 0 {
		t.Errorf("refused objects stored: %v", n)
	}
	checkCounts(t, s.Pool)

	if err := s.DeleteObject(ctx, pt.Code); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetObject(ctx, pt.Code); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("GetObject after delete: %v", err)
	}
	if err := s.DeleteObject(ctx, pt.Code); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	checkCounts(t, s.Pool)
}

func mustEWKB(t *testing.T, g orb.Geometry) []byte {
	t.Helper()
	b, err := geo.EWKB(g)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pageCodes(p *data.ObjectPage) []string {
	out := []string{}
	for _, o := range p.Objects {
		out = append(out, o.Code)
	}
	return out
}

// checkCounts compares object_counts with a count of the objects.
func checkCounts(t *testing.T, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) {
	t.Helper()
	kept := objStrings(t, db, `SELECT grid_code || '/' || class_code || '=' || n FROM object_counts ORDER BY 1`)
	truth := objStrings(t, db, `SELECT coalesce(grid_code, '') || '/' || class_code || '=' || count(*) FROM objects GROUP BY grid_code, class_code ORDER BY 1`)
	if !reflect.DeepEqual(kept, truth) {
		t.Errorf("object_counts drifted:\nkept  %v\ntruth %v", kept, truth)
	}
}

// demoExtent is the bounding box of the small demo.
func demoExtent(t *testing.T, s *data.Store) [4]float64 {
	t.Helper()
	var b [4]float64
	if err := s.Pool.QueryRow(context.Background(), `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM units WHERE valid_to IS NULL) x`).
		Scan(&b[0], &b[1], &b[2], &b[3]); err != nil {
		t.Fatal(err)
	}
	return b
}

type objPoint struct {
	code, class string
	p           orb.Point
}

// insertPoints stores point objects in one statement, assigned by gridmap_assign.
func insertPoints(t *testing.T, s *data.Store, pts []objPoint) {
	t.Helper()
	var codes, classes []string
	var xs, ys []float64
	for _, p := range pts {
		codes, classes, xs, ys = append(codes, p.code), append(classes, p.class), append(xs, p.p[0]), append(ys, p.p[1])
	}
	_, err := s.Pool.Exec(context.Background(), `
		INSERT INTO objects (code, class_code, geom, grid_code)
		SELECT c, k, g, gridmap_assign(g)
		FROM (SELECT c, k, ST_SetSRID(ST_MakePoint(x, y), 4326) AS g
		      FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) AS u(c, k, x, y)) z`, codes, classes, xs, ys)
	if err != nil {
		t.Fatal(err)
	}
}

// randomPoints: n points over box b (widened by w degrees) in classes
// 0101 (3 of 4) and 0118, codes from seq on.
func randomPoints(rng *rand.Rand, b [4]float64, w float64, n, seq int) []objPoint {
	var out []objPoint
	for i := range n {
		class := "0101"
		if i%4 == 3 {
			class = "0118"
		}
		p := orb.Point{b[0] - w + rng.Float64()*(b[2]-b[0]+2*w), b[1] - w + rng.Float64()*(b[3]-b[1]+2*w)}
		out = append(out, objPoint{objCode(class, seq+i), class, p})
	}
	return out
}

func TestObjectCountsExact(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	ext := demoExtent(t, s)
	rng := rand.New(rand.NewPCG(3, 5))
	step := func(name string) {
		t.Helper()
		t.Run(name, func(t *testing.T) { checkCounts(t, s.Pool) })
	}
	// Single saves: inside and outside the city, several classes.
	var saved []*grid.Object
	for i, p := range randomPoints(rng, ext, 0.02, 40, 1) {
		o := &grid.Object{Code: p.code, Class: p.class, Geometry: p.p}
		if i%5 == 0 {
			o.Class, o.Code = "0102", objCode("0102", i+1)
		}
		if _, err := s.SaveObject(ctx, o, false); err != nil {
			t.Fatal(err)
		}
		saved = append(saved, o)
	}
	unassigned := 0
	for _, o := range saved {
		if o.Grid == "" {
			unassigned++
		}
	}
	if unassigned == 0 || unassigned == len(saved) {
		t.Fatalf("%d of %d saved objects unassigned: the test needs both kinds", unassigned, len(saved))
	}
	step("single inserts")
	insertPoints(t, s, randomPoints(rng, ext, 0.02, 600, 1000))
	step("bulk insert")
	// Attributes only: no move.
	saved[1].Attrs = json.RawMessage(`{"x":1}`)
	if _, err := s.SaveObject(ctx, saved[1], true); err != nil {
		t.Fatal(err)
	}
	step("attrs update")
	// Moves: into another grid, out of the city, back in.
	for i, o := range saved[2:12] {
		o.Geometry = randomPoints(rng, ext, 0.02*float64(i%2), 1, 0)[0].p
		if _, err := s.SaveObject(ctx, o, true); err != nil {
			t.Fatal(err)
		}
	}
	step("moves")
	// Class change in place: a house becomes a shop (same code rule).
	if err := s.AddClass(ctx, grid.Class{Code: "shop", Kind: grid.KindBuilding, Name: "商铺", GeometryTypes: []string{"Point"}}); err != nil {
		t.Fatal(err)
	}
	house := &grid.Object{Code: "4403080000000000013", Class: "house", Geometry: saved[13].Geometry}
	if _, err := s.SaveObject(ctx, house, false); err != nil {
		t.Fatal(err)
	}
	house.Class = "shop"
	if _, err := s.SaveObject(ctx, house, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE objects SET class_code = '0119' WHERE code = $1`, saved[14].Code); err != nil {
		t.Fatal(err)
	}
	step("class change")
	// Set-based statements: many rows, many (grid, class) pairs at once.
	if _, err := s.Pool.Exec(ctx, `UPDATE objects SET geom = ST_Translate(geom, 0.01, -0.005), grid_code = gridmap_assign(ST_Translate(geom, 0.01, -0.005))`); err != nil {
		t.Fatal(err)
	}
	step("bulk move")
	if _, err := s.Pool.Exec(ctx, `UPDATE objects SET class_code = CASE class_code WHEN '0101' THEN '0118' WHEN '0118' THEN '0101' ELSE class_code END`); err != nil {
		t.Fatal(err)
	}
	step("bulk class swap")
	if _, err := s.Pool.Exec(ctx, `UPDATE objects SET grid_code = NULL WHERE code < $1`, objCode("0101", 1300)); err != nil {
		t.Fatal(err)
	}
	step("bulk unassign")
	for _, o := range saved[:5] {
		if err := s.DeleteObject(ctx, o.Code); err != nil && !errors.Is(err, data.ErrNotFound) {
			t.Fatal(err)
		}
	}
	step("single deletes")
	if _, err := s.Pool.Exec(ctx, `DELETE FROM objects WHERE right(code, 1) IN ('1', '3', '5')`); err != nil {
		t.Fatal(err)
	}
	step("bulk delete")
	// Inside a transaction that rolls back, nothing changes.
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE objects SET grid_code = NULL`); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if err == nil || err.Error() != "roll back" {
		t.Fatal(err)
	}
	step("rolled back")
	if _, err := s.Pool.Exec(ctx, `DELETE FROM objects`); err != nil {
		t.Fatal(err)
	}
	step("all deleted")
	if n := objStrings(t, s.Pool, `SELECT grid_code FROM object_counts`); len(n) != 0 {
		t.Errorf("object_counts keeps %d rows for no objects", len(n))
	}
}

func TestReassignAfterBoundaryChange(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	a, b, _ := twoGrids(t, s)
	// Points over both grids and around them, small squares across the
	// edge, and objects elsewhere in the city.
	var box [4]float64
	if err := s.Pool.QueryRow(ctx, `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM units WHERE code IN ($1, $2)) x`, a, b).
		Scan(&box[0], &box[1], &box[2], &box[3]); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 8))
	insertPoints(t, s, randomPoints(rng, box, 0.002, 800, 1))
	insertPoints(t, s, randomPoints(rng, demoExtent(t, s), 0, 300, 5000))
	if _, err := s.Pool.Exec(ctx, `
		INSERT INTO objects (code, class_code, geom, grid_code)
		SELECT '4403080405' || lpad(i::text, 6, '0'), '0405', g, gridmap_assign(g)
		FROM (SELECT i, ST_Expand(ST_SetSRID(ST_MakePoint($1::float8 + ((i * 0.6180339887) % 1) * ($3::float8 - $1), $2::float8 + ((i * 0.7548776662) % 1) * ($4::float8 - $2)), 4326), 0.0004) g
		      FROM generate_series(1, 200) i) x`, box[0], box[1], box[2], box[3]); err != nil {
		t.Fatal(err)
	}
	assigned := func(db interface {
		Query(context.Context, string, ...any) (pgx.Rows, error)
	}) map[string]string {
		out := map[string]string{}
		for _, r := range objStrings(t, db, `SELECT code || '=' || coalesce(grid_code, '') FROM objects`) {
			k, v, _ := strings.Cut(r, "=")
			out[k] = v
		}
		return out
	}
	before := assigned(s.Pool)
	if bad := objStrings(t, s.Pool, `SELECT code FROM objects WHERE gridmap_assign(geom) IS DISTINCT FROM grid_code`); len(bad) != 0 {
		t.Fatalf("objects not assigned by gridmap_assign before the change: %v", bad)
	}
	oldA := objGeometry(t, s, `SELECT ST_AsEWKB(geom) FROM units WHERE code = $1 AND valid_to IS NULL`, a)

	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// The strip of a within 0.001° of b goes to b.
	if _, err := tx.Exec(ctx, `
		CREATE TEMP TABLE moved AS
		SELECT ST_Intersection(ua.geom, ST_Buffer(ub.geom, 0.001)) AS g
		FROM units ua, units ub WHERE ua.code = $1 AND ub.code = $2 AND ua.valid_to IS NULL AND ub.valid_to IS NULL;
		`, a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE units u SET geom = ST_Multi(ST_CollectionExtract(CASE WHEN u.code = $1 THEN ST_Difference(u.geom, m.g) ELSE ST_Union(u.geom, m.g) END, 3))
		FROM moved m WHERE u.code IN ($1, $2) AND u.valid_to IS NULL`, a, b); err != nil {
		t.Fatal(err)
	}
	var nb []byte
	if err := tx.QueryRow(ctx, `SELECT ST_AsEWKB(geom) FROM units WHERE code = $1 AND valid_to IS NULL`, a).Scan(&nb); err != nil {
		t.Fatal(err)
	}
	newA, err := geo.FromEWKB(nb)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := data.ReassignAfterBoundaryChange(ctx, tx, oldA, newA)
	if err != nil {
		t.Fatal(err)
	}
	after := assigned(tx)
	// Every object is where gridmap_assign now puts it…
	if bad := objStrings(t, tx, `SELECT code || ' in ' || coalesce(grid_code, '-') || ', belongs to ' || coalesce(gridmap_assign(geom), '-') FROM objects WHERE gridmap_assign(geom) IS DISTINCT FROM grid_code`); len(bad) != 0 {
		t.Errorf("after the change, %d objects are not where gridmap_assign puts them: %v", len(bad), bad)
	}
	// …the reported codes are exactly the ones that changed…
	var changed []string
	for code, g := range before {
		if after[code] != g {
			changed = append(changed, code)
		}
	}
	sort.Strings(changed)
	sort.Strings(codes)
	if !reflect.DeepEqual(codes, changed) {
		t.Errorf("reported %d moved objects %v, %d changed %v", len(codes), codes, len(changed), changed)
	}
	// …and for points: those inside the strip went from a to b, no others moved.
	inStrip := map[string]bool{}
	for _, c := range objStrings(t, tx, `SELECT o.code FROM objects o, moved m WHERE GeometryType(o.geom) = 'POINT' AND ST_Within(o.geom, m.g)`) {
		inStrip[c] = true
	}
	if len(inStrip) < 10 {
		t.Fatalf("only %d points in the moved strip; the test needs more", len(inStrip))
	}
	points := objStrings(t, tx, `SELECT code FROM objects WHERE GeometryType(geom) = 'POINT'`)
	stayed := 0
	for _, c := range points {
		switch {
		case inStrip[c] && (before[c] != a || after[c] != b):
			t.Errorf("point %s in the moved strip: %q → %q, want %s → %s", c, before[c], after[c], a, b)
		case !inStrip[c] && before[c] != after[c]:
			t.Errorf("point %s outside the strip moved %q → %q", c, before[c], after[c])
		case !inStrip[c] && (before[c] == a || before[c] == b):
			stayed++
		}
	}
	if stayed < 10 {
		t.Errorf("only %d points of %s and %s outside the strip; the test needs more", stayed, a, b)
	}
	movedPolys := 0
	for _, c := range changed {
		if strings.HasPrefix(c, objDistrict+"0405") {
			movedPolys++
		}
	}
	if movedPolys == 0 {
		t.Errorf("no polygon changed grid; the test needs some")
	}
	checkCounts(t, tx)
	// Called again, nothing is left to move.
	again, err := data.ReassignAfterBoundaryChange(ctx, tx, oldA, newA)
	if err != nil || len(again) != 0 {
		t.Errorf("second call moved %v (%v)", again, err)
	}
}

// haversine is the great-circle distance on the sphere PostGIS uses.
func haversine(a, b orb.Point) float64 {
	const r = 6371008.7714
	rad := math.Pi / 180
	dLat, dLon := (b[1]-a[1])*rad, (b[0]-a[0])*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a[1]*rad)*math.Cos(b[1]*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(h)))
}

type ranked struct {
	code string
	d    float64
}

func bruteRank(pts []objPoint, q orb.Point, class string) []ranked {
	var out []ranked
	for _, p := range pts {
		if class == "" || p.class == class {
			out = append(out, ranked{p.code, haversine(q, p.p)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].d != out[j].d {
			return out[i].d < out[j].d
		}
		return out[i].code < out[j].code
	})
	return out
}

// listAll follows the cursors of a list to its end.
func listAll(t *testing.T, s *data.Store, f data.ObjectFilter) []data.ObjectRow {
	t.Helper()
	var out []data.ObjectRow
	for i := 0; ; i++ {
		p, err := s.ListObjects(context.Background(), f)
		if err != nil {
			t.Fatalf("ListObjects %+v: %v", f, err)
		}
		if len(p.Objects) > f.Limit && f.Limit > 0 {
			t.Fatalf("page of %d, limit %d", len(p.Objects), f.Limit)
		}
		out = append(out, p.Objects...)
		if p.Next == "" {
			return out
		}
		if len(p.Objects) == 0 || i > 10000 {
			t.Fatalf("page %d: %d objects and a next cursor", i, len(p.Objects))
		}
		f.Cursor = p.Next
	}
}

// compareRanked checks a near/nearest answer against brute force: the same
// codes in the same order, except where two distances are within 1 cm, and
// every distance within 1 cm of the brute-force one.
func compareRanked(t *testing.T, what string, got []data.ObjectRow, want []ranked, brute map[string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d objects, brute force %d", what, len(got), len(want))
	}
	for i, o := range got {
		if o.Distance == nil {
			t.Fatalf("%s: %s has no distance", what, o.Code)
		}
		if d, ok := brute[o.Code]; !ok || math.Abs(d-*o.Distance) > 0.01 {
			t.Errorf("%s: %s at %.4f m, brute force %.4f m", what, o.Code, *o.Distance, d)
		}
		if i > 0 {
			prev := got[i-1]
			if *prev.Distance > *o.Distance || (*prev.Distance == *o.Distance && prev.Code >= o.Code) {
				t.Errorf("%s: %s (%.4f) before %s (%.4f)", what, prev.Code, *prev.Distance, o.Code, *o.Distance)
			}
		}
		if i < len(want) && o.Code != want[i].code && math.Abs(brute[o.Code]-want[i].d) > 0.01 {
			t.Errorf("%s: #%d is %s (%.4f m), brute force %s (%.4f m)", what, i, o.Code, brute[o.Code], want[i].code, want[i].d)
		}
	}
}

func TestNearAndNearestEqualBruteForce(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ext := demoExtent(t, s)
	rng := rand.New(rand.NewPCG(11, 13))
	pts := randomPoints(rng, ext, 0.01, 2000, 1)
	// Twins at the same position: ties broken by code.
	for i := range 40 {
		p := pts[i*37]
		pts = append(pts, objPoint{objCode(p.class, 900000+i), p.class, p.p})
	}
	insertPoints(t, s, pts)
	// A polygon and a line too: their distance is to the nearest part.
	brute := func(q orb.Point, class string) ([]ranked, map[string]float64) {
		r := bruteRank(pts, q, class)
		m := map[string]float64{}
		for _, x := range r {
			m[x.code] = x.d
		}
		return r, m
	}
	queries := []orb.Point{
		{(ext[0] + ext[2]) / 2, (ext[1] + ext[3]) / 2},
		pts[74].p, // on a twin pair
		{ext[0], ext[1]},
		{ext[2] + 0.003, ext[3] - 0.01},
		{113.9, 22.3}, // far outside
	}
	for qi, q := range queries {
		for _, radius := range []float64{50, 400, 2500, 12000, 50000} {
			for _, class := range []string{"", "0118"} {
				what := fmt.Sprintf("q%d near %v r=%g class=%q", qi, q, radius, class)
				all, m := brute(q, class)
				var want []ranked
				for _, x := range all {
					if x.d <= radius {
						want = append(want, x)
					}
				}
				// A point within 1 cm of the circle may fall either way.
				got := listAll(t, s, data.ObjectFilter{Near: ll(q), Radius: radius, Class: class, Limit: 10000})
				if len(got) != len(want) {
					gotSet := map[string]bool{}
					for _, o := range got {
						gotSet[o.Code] = true
					}
					ok := true
					for _, x := range all {
						if (x.d <= radius) != gotSet[x.code] && math.Abs(x.d-radius) > 0.01 {
							ok = false
							t.Errorf("%s: %s at %.4f m: returned %v", what, x.code, x.d, gotSet[x.code])
						}
					}
					if ok {
						continue
					}
				}
				compareRanked(t, what, got, want, m)
				if radius == 2500 {
					paged := listAll(t, s, data.ObjectFilter{Near: ll(q), Radius: radius, Class: class, Limit: 7})
					if !reflect.DeepEqual(rowCodes(paged), rowCodes(got)) {
						t.Errorf("%s: pages of 7 give %d objects, one page %d", what, len(paged), len(got))
					}
				}
			}
		}
		for _, k := range []int{1, 2, 7, 100, 1000} {
			for _, class := range []string{"", "0118"} {
				what := fmt.Sprintf("q%d nearest %v k=%d class=%q", qi, q, k, class)
				all, m := brute(q, class)
				got := listAll(t, s, data.ObjectFilter{Nearest: ll(q), K: k, Class: class, Limit: 10000})
				compareRanked(t, what, got, all[:min(k, len(all))], m)
				if k == 100 {
					paged := listAll(t, s, data.ObjectFilter{Nearest: ll(q), K: k, Class: class, Limit: 9})
					if !reflect.DeepEqual(rowCodes(paged), rowCodes(got)) {
						t.Errorf("%s: pages of 9 give %v, one page %v", what, rowCodes(paged), rowCodes(got))
					}
				}
			}
		}
	}
	// The twins of the query point come first, lower code first.
	q := pts[74].p
	got := listAll(t, s, data.ObjectFilter{Nearest: ll(q), K: 2, Limit: 10})
	if len(got) != 2 || *got[0].Distance != 0 || *got[1].Distance != 0 || got[0].Code > got[1].Code {
		t.Errorf("nearest 2 to a twin pair: %v", rowCodes(got))
	}
}

// ll is a point as ObjectFilter takes it.
func ll(p orb.Point) *[2]float64 { v := [2]float64(p); return &v }

func rowCodes(rows []data.ObjectRow) []string {
	out := []string{}
	for _, o := range rows {
		out = append(out, o.Code)
	}
	return out
}

// TestNearAtTheEdgesOfTheMap: the bounding-box prefilter wraps at the
// antimeridian and opens to all longitudes near a pole.
func TestNearAtTheEdgesOfTheMap(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	rng := rand.New(rand.NewPCG(17, 19))
	var pts []objPoint
	add := func(b [4]float64, n int) {
		for range n {
			p := orb.Point{b[0] + rng.Float64()*(b[2]-b[0]), b[1] + rng.Float64()*(b[3]-b[1])}
			pts = append(pts, objPoint{objCode("0101", len(pts)+1), "0101", p})
		}
	}
	add([4]float64{179.9, 10, 180, 10.1}, 150)
	add([4]float64{-180, 10, -179.9, 10.1}, 150)
	add([4]float64{-180, 89.8, 180, 90}, 200)
	add([4]float64{-180, -90, 180, -89.7}, 200)
	insertPoints(t, s, pts)
	for _, c := range []struct {
		q      orb.Point
		radius float64
	}{
		{orb.Point{179.99, 10.05}, 8000},
		{orb.Point{-179.99, 10.05}, 8000},
		{orb.Point{180, 10.05}, 3000},
		{orb.Point{0, 89.9}, 20000},
		{orb.Point{90, 90}, 15000},
		{orb.Point{-45, -89.8}, 30000},
	} {
		all := bruteRank(pts, c.q, "")
		m := map[string]float64{}
		var want []ranked
		for _, x := range all {
			m[x.code] = x.d
			if x.d <= c.radius {
				want = append(want, x)
			}
		}
		if len(want) < 5 {
			t.Fatalf("near %v r=%g: %d points in range; the test needs more", c.q, c.radius, len(want))
		}
		what := fmt.Sprintf("near %v r=%g", c.q, c.radius)
		compareRanked(t, what, listAll(t, s, data.ObjectFilter{Near: ll(c.q), Radius: c.radius, Limit: 10000}), want, m)
		compareRanked(t, "nearest 50 to "+what, listAll(t, s, data.ObjectFilter{Nearest: ll(c.q), K: 50, Limit: 10000}), all[:50], m)
	}
	// An empty store has no nearest.
	empty := pgtest.New(t)
	q := orb.Point{114, 22}
	if got := listAll(t, empty, data.ObjectFilter{Nearest: ll(q), K: 5}); len(got) != 0 {
		t.Errorf("nearest in an empty store: %v", rowCodes(got))
	}
}

func TestListObjectsBBoxWithin(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	ext := demoExtent(t, s)
	rng := rand.New(rand.NewPCG(23, 29))
	insertPoints(t, s, randomPoints(rng, ext, 0.01, 1500, 1))
	if _, err := s.Pool.Exec(ctx, `
		INSERT INTO objects (code, class_code, geom, grid_code)
		SELECT '4403080405' || lpad(i::text, 6, '0'), '0405', g, gridmap_assign(g)
		FROM (SELECT i, ST_Expand(ST_SetSRID(ST_MakePoint($1::float8 + ((i * 0.6180339887) % 1) * ($3::float8 - $1), $2::float8 + ((i * 0.7548776662) % 1) * ($4::float8 - $2)), 4326), 0.001) g
		      FROM generate_series(1, 100) i) x`, ext[0], ext[1], ext[2], ext[3]); err != nil {
		t.Fatal(err)
	}
	mid := [2]float64{(ext[0] + ext[2]) / 2, (ext[1] + ext[3]) / 2}
	boxes := [][4]float64{
		{mid[0] - 0.02, mid[1] - 0.01, mid[0] + 0.01, mid[1] + 0.02},
		{-180, -90, 180, 90},
		{0, 0, 1, 1},
	}
	for _, b := range boxes {
		for _, class := range []string{"", "0405", "0118"} {
			want := objStrings(t, s.Pool, `SELECT code FROM objects WHERE ST_Intersects(geom, ST_MakeEnvelope($1, $2, $3, $4, 4326)) AND ($5 = '' OR class_code = $5) ORDER BY code`,
				b[0], b[1], b[2], b[3], class)
			for _, limit := range []int{0, 13, 10000} {
				got := rowCodes(listAll(t, s, data.ObjectFilter{BBox: &b, Class: class, Limit: limit}))
				if !reflect.DeepEqual(got, want) {
					t.Errorf("bbox %v class %q limit %d: %d objects, want %d", b, class, limit, len(got), len(want))
				}
			}
		}
	}
	community := objStrings(t, s.Pool, `SELECT code FROM units WHERE level = 'community' ORDER BY code LIMIT 1 OFFSET 5`)[0]
	street := community[:9]
	lastGrid := objStrings(t, s.Pool, `SELECT max(code) FROM units WHERE level = 'grid'`)[0]
	for _, unit := range []string{objDistrict, street, community, community + "003", lastGrid, lastGrid[:12]} {
		for _, class := range []string{"", "0101"} {
			want := objStrings(t, s.Pool, `SELECT code FROM objects WHERE grid_code LIKE $1 || '%' AND ($2 = '' OR class_code = $2) ORDER BY grid_code, code`, unit, class)
			if len(want) == 0 {
				t.Fatalf("no objects in %s", unit)
			}
			for _, limit := range []int{0, 11, 10000} {
				got := listAll(t, s, data.ObjectFilter{Within: unit, Class: class, Limit: limit})
				if !reflect.DeepEqual(rowCodes(got), want) {
					t.Errorf("within %s class %q limit %d: %d objects, want %d", unit, class, limit, len(got), len(want))
				}
				for _, o := range got {
					if !strings.HasPrefix(o.Grid, unit) || o.Distance != nil {
						t.Errorf("within %s: %+v", unit, o)
					}
				}
			}
		}
	}
	// A unit without objects, and one past the district.
	for _, unit := range []string{"440303", "999999"} {
		if got := listAll(t, s, data.ObjectFilter{Within: unit}); len(got) != 0 {
			t.Errorf("within %s: %d objects", unit, len(got))
		}
	}
	// The default page is 100.
	p, err := s.ListObjects(ctx, data.ObjectFilter{Within: objDistrict})
	if err != nil || len(p.Objects) != data.DefaultObjectLimit || p.Next == "" {
		t.Errorf("default page: %v, %d objects, next %q", err, len(p.Objects), p.Next)
	}
}

func TestListObjectsFilterErrors(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	ctx := context.Background()
	pt := [2]float64{114, 22}
	b := [4]float64{114, 22, 115, 23}
	// An empty store answers an empty page.
	if p, err := s.ListObjects(ctx, data.ObjectFilter{BBox: &b, Limit: 1}); err != nil || len(p.Objects) != 0 || p.Next != "" {
		t.Fatalf("empty store: %v %+v", err, p)
	}
	insertPoints(t, s, []objPoint{{objCode("0101", 1), "0101", orb.Point{114.5, 22.5}}, {objCode("0101", 2), "0101", orb.Point{114.6, 22.5}}})
	p1, err := s.ListObjects(ctx, data.ObjectFilter{BBox: &b, Limit: 1})
	if err != nil || p1.Next == "" {
		t.Fatalf("%v %+v", err, p1)
	}
	p3, err := s.ListObjects(ctx, data.ObjectFilter{Nearest: &pt, K: 2, Limit: 1})
	if err != nil || p3.Next == "" {
		t.Fatalf("%v %+v", err, p3)
	}
	bad := []struct {
		f     data.ObjectFilter
		param string
	}{
		{data.ObjectFilter{}, "bbox,within,near,nearest"},
		{data.ObjectFilter{BBox: &b, Within: objDistrict}, "bbox,within"},
		{data.ObjectFilter{Near: &pt, Radius: 10, Nearest: &pt, K: 1}, "near,nearest"},
		{data.ObjectFilter{Near: &pt}, "radius"},
		{data.ObjectFilter{Near: &pt, Radius: -1}, "radius"},
		{data.ObjectFilter{Near: &pt, Radius: 50000.5}, "radius"},
		{data.ObjectFilter{BBox: &b, Radius: 5}, "radius"},
		{data.ObjectFilter{Nearest: &pt}, "k"},
		{data.ObjectFilter{Nearest: &pt, K: 1001}, "k"},
		{data.ObjectFilter{BBox: &b, K: 5}, "k"},
		{data.ObjectFilter{Near: &[2]float64{190, 0}, Radius: 5}, "near"},
		{data.ObjectFilter{Nearest: &[2]float64{0, -91}, K: 5}, "nearest"},
		{data.ObjectFilter{BBox: &[4]float64{115, 22, 114, 23}}, "bbox"},
		{data.ObjectFilter{Within: "4403"}, "within"},
		{data.ObjectFilter{Within: "44030800a"}, "within"},
		{data.ObjectFilter{BBox: &b, Limit: 10001}, "limit"},
		{data.ObjectFilter{BBox: &b, Limit: -1}, "limit"},
		{data.ObjectFilter{BBox: &b, Cursor: "garbage!"}, "cursor"},
		{data.ObjectFilter{BBox: &b, Cursor: p3.Next}, "cursor"}, // a distance cursor on a code list
		{data.ObjectFilter{Within: objDistrict, Cursor: p1.Next}, "cursor"},
		{data.ObjectFilter{Nearest: &pt, K: 2, Cursor: p1.Next}, "cursor"},
	}
	for _, c := range bad {
		_, err := s.ListObjects(ctx, c.f)
		var fe *data.FilterError
		if !errors.As(err, &fe) || fe.Param != c.param {
			t.Errorf("filter %+v: %v, want a FilterError on %s", c.f, err, c.param)
		}
	}
	if _, err := s.UnassignedObjects(ctx, 10, p3.Next); err == nil {
		t.Errorf("UnassignedObjects accepted a distance cursor")
	}
	if _, err := s.UnassignedObjects(ctx, 10001, ""); err == nil {
		t.Errorf("UnassignedObjects accepted limit 10001")
	}
}

func TestObjectStats(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	ext := demoExtent(t, s)
	rng := rand.New(rand.NewPCG(31, 37))
	insertPoints(t, s, randomPoints(rng, ext, 0.01, 1200, 1))
	// A few saved through the store, one moved: stats follow every write.
	o := &grid.Object{Code: objCode("0102", 1), Class: "0102", Geometry: orb.Point{(ext[0] + ext[2]) / 2, (ext[1] + ext[3]) / 2}}
	if _, err := s.SaveObject(ctx, o, false); err != nil {
		t.Fatal(err)
	}
	o.Geometry = orb.Point{ext[0] + 0.3*(ext[2]-ext[0]), ext[1] + 0.6*(ext[3]-ext[1])}
	if _, err := s.SaveObject(ctx, o, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `DELETE FROM objects WHERE right(code, 1) = '7'`); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{"0101": "上水井盖", "0102": "污水井盖", "0118": "路灯"}
	truth := func(unit string) (int64, map[string]data.ClassCount) {
		by := map[string]data.ClassCount{}
		var total int64
		for _, r := range objStrings(t, s.Pool, `SELECT class_code || '=' || count(*) FROM objects WHERE grid_code LIKE $1 || '%' GROUP BY class_code`, unit) {
			c, n, _ := strings.Cut(r, "=")
			var v int64
			fmt.Sscan(n, &v)
			by[c] = data.ClassCount{Name: names[c], Count: v}
			total += v
		}
		return total, by
	}
	community := objStrings(t, s.Pool, `SELECT parent_code FROM units WHERE level = 'grid' AND code = $1`, o.Grid)[0]
	for _, unit := range []string{objDistrict, community[:9], community, o.Grid} {
		st, err := s.Stats(ctx, unit)
		if err != nil {
			t.Fatal(err)
		}
		total, by := truth(unit)
		if st.Unit.Code != unit || st.Unit.Name == "" || st.Unit.Total != total || !reflect.DeepEqual(st.Unit.ByClass, by) {
			t.Errorf("stats of %s: %+v, want total %d by class %v", unit, st.Unit, total, by)
		}
		if total == 0 {
			t.Errorf("no objects in %s: the test needs some", unit)
		}
		wantLevel := map[int]grid.Level{6: grid.District, 9: grid.Street, 12: grid.Community, 15: grid.Grid}[len(unit)]
		if st.Unit.Level != wantLevel {
			t.Errorf("stats of %s: level %s", unit, st.Unit.Level)
		}
		children := objStrings(t, s.Pool, `SELECT code FROM units WHERE parent_code = $1 AND valid_to IS NULL ORDER BY code`, unit)
		var got []string
		var sum int64
		for _, c := range st.Children {
			got = append(got, c.Code)
			total, by := truth(c.Code)
			if c.Total != total || !reflect.DeepEqual(c.ByClass, by) || c.Name == "" || c.Level != "" {
				t.Errorf("stats of %s, child %s: %+v, want total %d by class %v", unit, c.Code, c, total, by)
			}
			sum += c.Total
		}
		if !slices.Equal(got, children) {
			t.Errorf("stats of %s: children %v, want %v", unit, got, children)
		}
		if len(children) > 0 && sum != st.Unit.Total {
			t.Errorf("stats of %s: children add up to %d, the unit has %d", unit, sum, st.Unit.Total)
		}
		if len(unit) == 15 && (st.Children == nil || len(st.Children) != 0) {
			t.Errorf("a grid has children %v", st.Children)
		}
	}
	if _, err := s.Stats(ctx, "440303"); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("stats of an unknown unit: %v", err)
	}
}
