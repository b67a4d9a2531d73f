package data_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"gridmap/cql2"
	"gridmap/data"
	"gridmap/data/pgtest"
)

// unitCols are the units queryables as an OGC collection of units maps
// them.
var unitCols = map[string]string{
	"code": "u.code", "name": "u.name", "level": "u.level", "parent_code": "u.parent_code",
	"area_m2": "u.area_m2", "version": "u.version", "complete": "u.complete",
	"valid_from": "u.valid_from", "geometry": "u.geom",
}

var unitQueryables = cql2.Queryables{
	"code": cql2.String, "name": cql2.String, "level": cql2.String, "parent_code": cql2.String,
	"area_m2": cql2.Number, "version": cql2.Integer, "complete": cql2.Boolean,
	"valid_from": cql2.Timestamp, "geometry": cql2.Geometry,
}

// codes runs a query and returns the first column of its rows.
func codes(t *testing.T, s *data.Store, sql string, args ...any) []string {
	t.Helper()
	rows, err := s.Pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", sql, args, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func parseFilter(t *testing.T, f string, q cql2.Queryables) cql2.Expr {
	t.Helper()
	var e cql2.Expr
	var err error
	if strings.HasPrefix(f, "{") {
		e, err = cql2.ParseJSON([]byte(f))
	} else {
		e, err = cql2.ParseText(f)
	}
	if err != nil {
		t.Fatalf("parse %s: %v", f, err)
	}
	if err := cql2.Check(e, q); err != nil {
		t.Fatalf("check %s: %v", f, err)
	}
	return e
}

// TestFilterSQLUnits: on the demo city, the rows a filter selects are the
// rows a hand-written WHERE clause selects, and none of the filters is
// trivial (each keeps some units and drops others, unless said).
func TestFilterSQLUnits(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	var lon, lat float64
	var street string
	if err := s.Pool.QueryRow(ctx, `SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) p FROM units
		WHERE valid_to IS NULL AND name = '梅沙街道') x`).Scan(&street, &lon, &lat); err != nil {
		t.Fatal(err)
	}
	var env [4]float64
	if err := s.Pool.QueryRow(ctx, `SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT ST_Envelope(geom)::box2d b
		FROM units WHERE valid_to IS NULL AND code = $1) x`, street).Scan(&env[0], &env[1], &env[2], &env[3]); err != nil {
		t.Fatal(err)
	}
	// The street's boundary as WKT: both sides read the same decimals.
	var streetWKT string
	if err := s.Pool.QueryRow(ctx, `SELECT ST_AsText(geom) FROM units WHERE valid_to IS NULL AND code = $1`, street).Scan(&streetWKT); err != nil {
		t.Fatal(err)
	}
	// A square around the street's inner point, about 2 km across.
	sq := fmt.Sprintf("POLYGON((%[1]g %[2]g, %[3]g %[2]g, %[3]g %[4]g, %[1]g %[4]g, %[1]g %[2]g))", lon-0.01, lat-0.01, lon+0.01, lat+0.01)
	sqSQL := fmt.Sprintf("ST_MakeEnvelope(%g, %g, %g, %g, 4326)", lon-0.01, lat-0.01, lon+0.01, lat+0.01)
	all := codes(t, s, `SELECT code FROM units u WHERE u.valid_to IS NULL ORDER BY code`)
	for _, tc := range []struct {
		filter, where string
		everyOrNone   bool // the filter keeps every unit or none
	}{
		{`name = '梅沙街道'`, `u.name = '梅沙街道'`, false},
		{`{"op":"=","args":[{"property":"name"},"梅沙街道"]}`, `u.name = '梅沙街道'`, false},
		{`name <> '梅沙街道' AND level = 'street'`, `u.name <> '梅沙街道' AND u.level = 'street'`, false},
		{`name LIKE '%梅沙%' AND level <> 'grid'`, `u.name LIKE '%梅沙%' AND u.level <> 'grid'`, false},
		{`name NOT LIKE '%梅沙%'`, `u.name NOT LIKE '%梅沙%'`, false},
		{`code LIKE '440308001___'`, `u.code LIKE '440308001___'`, false},
		{`CASEI(level) = casei('STREET')`, `u.level = 'street'`, false},
		{`level IN ('street', 'district')`, `u.level IN ('street', 'district')`, false},
		{`{"op":"not","args":[{"op":"in","args":[{"property":"level"},["grid"]]}]}`, `u.level <> 'grid'`, false},
		{`parent_code IS NULL`, `u.parent_code IS NULL`, false},
		{`parent_code IS NOT NULL AND parent_code < '440308003'`, `u.parent_code < '440308003'`, false},
		{`area_m2 BETWEEN 100000 AND 400000.5`, `u.area_m2 >= 100000 AND u.area_m2 <= 400000.5`, false},
		{`area_m2 NOT BETWEEN 100000 AND 400000.5`, `NOT (u.area_m2 >= 100000 AND u.area_m2 <= 400000.5)`, false},
		{`area_m2 > 1e6 OR (level = 'grid' AND area_m2 < 2.5e5)`, `u.area_m2 > 1e6 OR (u.level = 'grid' AND u.area_m2 < 2.5e5)`, false},
		{`version >= 1 AND version <= 1.5 AND NOT complete`, `u.version = 1 AND NOT u.complete`, false},
		{`complete = TRUE`, `u.complete`, false},
		{`complete`, `u.complete`, false},
		{`code = parent_code`, `false`, true},
		{`version = 1 AND TRUE`, `true`, true},
		{`name = ''' OR TRUE; --'`, `false`, true},
		{`T_AFTER(valid_from, TIMESTAMP('2020-01-01T00:00:00Z'))`, `u.valid_from > '2020-01-01Z'`, true},
		{`T_BEFORE(valid_from, DATE('2020-01-01'))`, `u.valid_from < '2020-01-01Z'`, true},
		{`T_DURING(valid_from, INTERVAL('2020-01-01', '..'))`, `u.valid_from > '2020-01-01Z'`, true},
		{fmt.Sprintf(`S_INTERSECTS(geometry, POINT(%g %g))`, lon, lat), fmt.Sprintf(`ST_Intersects(u.geom, ST_SetSRID(ST_MakePoint(%g, %g), 4326))`, lon, lat), false},
		{fmt.Sprintf(`{"op":"s_intersects","args":[{"property":"geometry"},{"type":"Point","coordinates":[%g,%g]}]}`, lon, lat),
			fmt.Sprintf(`ST_Intersects(u.geom, ST_SetSRID(ST_MakePoint(%g, %g), 4326))`, lon, lat), false},
		{fmt.Sprintf(`S_INTERSECTS(geometry, BBOX(%g, %g, %g, %g))`, env[0], env[1], env[2], env[3]),
			fmt.Sprintf(`ST_Intersects(u.geom, ST_MakeEnvelope(%g, %g, %g, %g, 4326))`, env[0], env[1], env[2], env[3]), false},
		{fmt.Sprintf(`{"op":"s_intersects","args":[{"property":"geometry"},{"bbox":[%g,%g,%g,%g]}]}`, env[0], env[1], env[2], env[3]),
			fmt.Sprintf(`ST_Intersects(u.geom, ST_MakeEnvelope(%g, %g, %g, %g, 4326))`, env[0], env[1], env[2], env[3]), false},
		{`S_WITHIN(geometry, ` + sq + `)`, `ST_Within(u.geom, ` + sqSQL + `)`, false},
		{`S_DISJOINT(geometry, ` + sq + `) AND level = 'grid'`, `NOT ST_Intersects(u.geom, ` + sqSQL + `) AND u.level = 'grid'`, false},
		{`S_OVERLAPS(geometry, ` + sq + `)`, `ST_Overlaps(u.geom, ` + sqSQL + `)`, false},
		{`S_CONTAINS(geometry, ` + sq + `)`, `ST_Contains(u.geom, ` + sqSQL + `)`, false},
		{fmt.Sprintf(`S_CONTAINS(geometry, POINT(%g %g))`, lon, lat), fmt.Sprintf(`ST_Contains(u.geom, ST_SetSRID(ST_MakePoint(%g, %g), 4326))`, lon, lat), false},
		{fmt.Sprintf(`S_CROSSES(geometry, LINESTRING(%g %g, %g %g))`, lon-0.01, lat, lon+0.01, lat),
			fmt.Sprintf(`ST_Crosses(u.geom, ST_SetSRID(ST_MakeLine(ST_MakePoint(%g, %g), ST_MakePoint(%g, %g)), 4326))`, lon-0.01, lat, lon+0.01, lat), false},
		{`S_TOUCHES(geometry, ` + streetWKT + `)`, `ST_Touches(u.geom, ST_GeomFromText('` + streetWKT + `', 4326))`, false},
		{`S_EQUALS(geometry, ` + streetWKT + `)`, `ST_Equals(u.geom, ST_GeomFromText('` + streetWKT + `', 4326))`, false},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			e := parseFilter(t, tc.filter, unitQueryables)
			args := []any{"x"} // the caller's own parameter: the filter's are numbered after it
			where, err := data.FilterSQL(e, unitCols, &args)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(where, "梅沙") || strings.Contains(where, "OR TRUE") {
				t.Fatalf("a value was written into the SQL: %s", where)
			}
			got := codes(t, s, `SELECT code FROM units u WHERE u.valid_to IS NULL AND $1 = 'x' AND (`+where+`) ORDER BY code`, args...)
			want := codes(t, s, `SELECT code FROM units u WHERE u.valid_to IS NULL AND (`+tc.where+`) ORDER BY code`)
			if !slices.Equal(got, want) {
				t.Fatalf("%s\n  SQL %s %v\n  got %d rows %.5v, want %d %.5v", tc.filter, where, args, len(got), got, len(want), want)
			}
			if trivial := len(got) == 0 || len(got) == len(all); trivial != tc.everyOrNone {
				t.Errorf("%s keeps %d of %d units", tc.filter, len(got), len(all))
			}
		})
	}
}

// TestFilterSQLTemporal: each temporal function against a reference
// interval R = [Jan 10, Jan 20] selects the one span in Allen's relation
// it names (spans are made for each), in PostGIS.
func TestFilterSQLTemporal(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	ctx := context.Background()
	if _, err := s.Pool.Exec(ctx, `CREATE TABLE spans (id text, s timestamptz, e timestamptz, d date);
		INSERT INTO spans VALUES
		('before', '2024-01-01Z', '2024-01-05Z', '2024-01-01'), ('meets', '2024-01-01Z', '2024-01-10Z', '2024-01-10'),
		('overlaps', '2024-01-05Z', '2024-01-15Z', '2024-01-15'), ('starts', '2024-01-10Z', '2024-01-15Z', '2024-01-20'),
		('during', '2024-01-12Z', '2024-01-18Z', '2024-01-21'), ('finishes', '2024-01-15Z', '2024-01-20Z', NULL),
		('equals', '2024-01-10Z', '2024-01-20Z', NULL), ('finishedby', '2024-01-05Z', '2024-01-20Z', NULL),
		('contains', '2024-01-05Z', '2024-01-25Z', NULL), ('startedby', '2024-01-10Z', '2024-01-25Z', NULL),
		('overlappedby', '2024-01-15Z', '2024-01-25Z', NULL), ('metby', '2024-01-20Z', '2024-01-25Z', NULL),
		('after', '2024-01-22Z', '2024-01-25Z', NULL)`); err != nil {
		t.Fatal(err)
	}
	cols := map[string]string{"start": "x.s", "end": "x.e", "day": "x.d"}
	q := cql2.Queryables{"start": cql2.Timestamp, "end": cql2.Timestamp, "day": cql2.Date}
	const r = `INTERVAL('2024-01-10T00:00:00Z', '2024-01-20T00:00:00Z')`
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{`T_BEFORE(INTERVAL(start, end), ` + r + `)`, []string{"before"}},
		{`T_MEETS(INTERVAL(start, end), ` + r + `)`, []string{"meets"}},
		{`T_OVERLAPS(INTERVAL(start, end), ` + r + `)`, []string{"overlaps"}},
		{`T_STARTS(INTERVAL(start, end), ` + r + `)`, []string{"starts"}},
		{`T_DURING(INTERVAL(start, end), ` + r + `)`, []string{"during"}},
		{`T_FINISHES(INTERVAL(start, end), ` + r + `)`, []string{"finishes"}},
		{`T_EQUALS(INTERVAL(start, end), ` + r + `)`, []string{"equals"}},
		{`T_FINISHEDBY(INTERVAL(start, end), ` + r + `)`, []string{"finishedby"}},
		{`T_CONTAINS(INTERVAL(start, end), ` + r + `)`, []string{"contains"}},
		{`T_STARTEDBY(INTERVAL(start, end), ` + r + `)`, []string{"startedby"}},
		{`T_OVERLAPPEDBY(INTERVAL(start, end), ` + r + `)`, []string{"overlappedby"}},
		{`T_METBY(INTERVAL(start, end), ` + r + `)`, []string{"metby"}},
		{`T_AFTER(INTERVAL(start, end), ` + r + `)`, []string{"after"}},
		{`T_DISJOINT(INTERVAL(start, end), ` + r + `)`, []string{"after", "before"}},
		{`T_INTERSECTS(INTERVAL(start, end), ` + r + `)`, []string{"contains", "during", "equals", "finishedby", "finishes", "meets",
			"metby", "overlappedby", "overlaps", "startedby", "starts"}},
		{`{"op":"t_intersects","args":[{"interval":[{"property":"start"},{"property":"end"}]},{"interval":["2024-01-21T00:00:00Z",".."]}]}`,
			[]string{"after", "contains", "overlappedby", "metby", "startedby"}},
		{`T_AFTER(INTERVAL(start, end), INTERVAL('..', '2024-01-09'))`, []string{"after", "during", "equals", "finishes", "metby", "overlappedby", "startedby", "starts"}},
		{`T_DURING(day, ` + r + `)`, []string{"overlaps"}},
		{`T_INTERSECTS(day, INTERVAL('2024-01-10', '2024-01-20'))`, []string{"meets", "overlaps", "starts"}},
		{`T_EQUALS(day, DATE('2024-01-21')) OR T_AFTER(start, TIMESTAMP('2024-01-21T00:00:00Z'))`, []string{"after", "during"}},
		{`T_BEFORE(start, end) AND day IS NULL AND end > TIMESTAMP('2024-01-24T12:00:00+08:00')`, []string{"after", "contains", "metby", "overlappedby", "startedby"}},
		{`day BETWEEN DATE('2024-01-10') AND DATE('2024-01-15')`, []string{"meets", "overlaps"}},
	} {
		e := parseFilter(t, tc.filter, q)
		var args []any
		where, err := data.FilterSQL(e, cols, &args)
		if err != nil {
			t.Fatal(err)
		}
		got := codes(t, s, `SELECT id FROM spans x WHERE `+where+` ORDER BY id`, args...)
		slices.Sort(tc.want)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s\n  SQL %s %v\n  got %v, want %v", tc.filter, where, args, got, tc.want)
		}
	}
}

func TestFilterSQLUnknownProperty(t *testing.T) {
	t.Parallel()
	e, err := cql2.ParseText(`nope = 1`)
	if err != nil {
		t.Fatal(err)
	}
	var args []any
	if _, err := data.FilterSQL(e, unitCols, &args); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("FilterSQL with an unmapped property: %v", err)
	}
}
