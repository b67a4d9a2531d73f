package data

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestSQLQueryBuilder(t *testing.T) {
	t.Parallel()
	byCode := keyset{cols: []string{"code"}}
	byGrid := keyset{cols: []string{"grid_code", "code"}}
	newest := keyset{cols: []string{"e.reported_at", "e.code"}, desc: true}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	box := [4]float64{1, 2, 3, 4}
	for _, tc := range []struct {
		name     string
		build    func(q *sqlQuery) string
		wantSQL  string
		wantArgs []any
	}{
		{"nothing", func(q *sqlQuery) string { return q.whereSQL() + byCode.orderLimit(q, 0) },
			" ORDER BY code", nil},
		{"one condition and a limit", func(q *sqlQuery) string {
			q.where("layer = " + q.arg("base"))
			return q.whereSQL() + byCode.orderLimit(q, 10)
		}, " WHERE layer = $1 ORDER BY code LIMIT $2", []any{"base", 10}},
		{"one-column keyset", func(q *sqlQuery) string {
			q.where("grid_code IS NULL")
			q.where(byCode.after(q, "A1"))
			return q.whereSQL() + byCode.orderLimit(q, 101)
		}, " WHERE grid_code IS NULL AND code > $1 ORDER BY code LIMIT $2", []any{"A1", 101}},
		{"two-column keyset", func(q *sqlQuery) string {
			q.where(byGrid.after(q, "110101", "A1"))
			return q.whereSQL() + byGrid.orderLimit(q, 5)
		}, " WHERE (grid_code, code) > ($1, $2) ORDER BY grid_code, code LIMIT $3", []any{"110101", "A1", 5}},
		{"descending keyset", func(q *sqlQuery) string {
			q.where(newest.after(q, at, "E1"))
			return q.whereSQL() + newest.orderLimit(q, 3)
		}, " WHERE (e.reported_at, e.code) < ($1, $2) ORDER BY e.reported_at DESC, e.code DESC LIMIT $3", []any{at, "E1", 3}},
		{"box", func(q *sqlQuery) string {
			q.where(q.intersects("geom", box))
			return q.whereSQL()
		}, " WHERE geom && ST_MakeEnvelope($1, $2, $3, $4, 4326) AND ST_Intersects(geom, ST_MakeEnvelope($1, $2, $3, $4, 4326))",
			[]any{1.0, 2.0, 3.0, 4.0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &sqlQuery{}
			if got := tc.build(q); got != tc.wantSQL {
				t.Errorf("SQL\n got %q\nwant %q", got, tc.wantSQL)
			}
			if !reflect.DeepEqual(q.args, tc.wantArgs) {
				t.Errorf("args %v, want %v", q.args, tc.wantArgs)
			}
		})
	}
}

func TestNextPage(t *testing.T) {
	t.Parallel()
	next := func(s string) cursor { return cursor{Order: orderCode, Code: s} }
	for _, tc := range []struct {
		rows     []string
		limit    int
		want     []string
		wantNext string
	}{
		{[]string{}, 2, []string{}, ""},
		{[]string{"a", "b"}, 2, []string{"a", "b"}, ""},
		{[]string{"a", "b", "c"}, 2, []string{"a", "b"}, "b"},
	} {
		got, n := nextPage(tc.rows, tc.limit, next)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("nextPage(%v, %d) rows %v, want %v", tc.rows, tc.limit, got, tc.want)
		}
		var wantNext string
		if tc.wantNext != "" {
			wantNext = next(tc.wantNext).encode()
		}
		if n != wantNext {
			t.Errorf("nextPage(%v, %d) next %q, want %q", tc.rows, tc.limit, n, wantNext)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	for _, tc := range []struct {
		name  string
		c     cursor
		order string
		ok    bool
	}{
		{"code", cursor{Order: orderCode, Code: "A1"}, orderCode, true},
		{"grid", cursor{Order: orderGrid, Grid: "110101", Code: "A1"}, orderGrid, true},
		{"distance", cursor{Order: orderDistance, Code: "A1", Dist: 12.5}, orderDistance, true},
		{"reported", cursor{Order: orderReported, Code: "E1", At: &at}, orderReported, true},
		{"another list's", cursor{Order: orderCode, Code: "A1"}, orderGrid, false},
		{"no code", cursor{Order: orderCode}, orderCode, false},
		{"negative distance", cursor{Order: orderDistance, Code: "A1", Dist: -1}, orderDistance, false},
		{"reported without time", cursor{Order: orderReported, Code: "E1"}, orderReported, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeCursor(tc.c.encode(), tc.order)
			var fe *FilterError
			switch {
			case tc.ok && err != nil:
				t.Fatalf("decode: %v", err)
			case tc.ok && !reflect.DeepEqual(*got, tc.c):
				t.Errorf("decoded %+v, want %+v", *got, tc.c)
			case !tc.ok && !(errors.As(err, &fe) && fe.Param == "cursor"):
				t.Errorf("decode = %v, %v; want a cursor FilterError", got, err)
			}
		})
	}
	if c, err := decodeCursor("", orderCode); c != nil || err != nil {
		t.Errorf(`decodeCursor("") = %v, %v; want the first page`, c, err)
	}
	if _, err := decodeCursor("not base64!", orderCode); err == nil {
		t.Error("a cursor that is not base64 was accepted")
	}
}

func TestIsPgCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		code string
		want bool
	}{
		{&pgconn.PgError{Code: "23505"}, "23505", true},
		{errors.Join(errors.New("insert"), &pgconn.PgError{Code: "40P01"}), "40P01", true},
		{&pgconn.PgError{Code: "23503"}, "23505", false},
		{errors.New("23505"), "23505", false},
		{nil, "23505", false},
	} {
		if got := isPgCode(tc.err, tc.code); got != tc.want {
			t.Errorf("isPgCode(%v, %s) = %v, want %v", tc.err, tc.code, got, tc.want)
		}
	}
}
