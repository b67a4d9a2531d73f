package data

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"gridmap/grid"
)

func TestEventFilterWhere(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	yes, no := true, false
	at := now.Add(-time.Hour)
	next := cursor{Order: orderReported, Code: "E1", At: &at}.encode()
	day := func(t time.Time, add int) time.Time {
		return time.Date(t.Year(), t.Month(), t.Day()+add, 0, 0, 0, 0, time.UTC)
	}
	for _, tc := range []struct {
		name     string
		f        EventFilter
		wantSQL  string
		wantArgs []any
	}{
		{"all", EventFilter{}, "", nil},
		{"statuses and classes", EventFilter{Statuses: []grid.EventStatus{grid.StatusReported}, Classes: []string{"0101"}},
			" WHERE e.status = ANY($1) AND e.class_code = ANY($2)", []any{[]string{"reported"}, []string{"0101"}}},
		{"unit", EventFilter{Unit: "110101"},
			" WHERE e.grid_code >= $1 AND e.grid_code < gridmap_code_upper($1)", []any{"110101"}},
		{"box", EventFilter{BBox: &[4]float64{1, 2, 3, 4}},
			" WHERE e.geom && ST_MakeEnvelope($1, $2, $3, $4, 4326)", []any{1.0, 2.0, 3.0, 4.0}},
		{"overdue", EventFilter{Overdue: &yes},
			" WHERE " + openStatusSQL + " AND e.deadline < $1", []any{now}},
		{"not overdue", EventFilter{Overdue: &no},
			" WHERE NOT (" + openStatusSQL + " AND e.deadline < $1)", []any{now}},
		{"time range and cursor", EventFilter{From: &at, To: &now, Cursor: next},
			// Each bound comes with one on reported_on (the partition key),
			// a day wider on each side (the local date of any time zone).
			" WHERE e.reported_at >= $1 AND e.reported_on >= $2 AND e.reported_at < $3 AND e.reported_on <= $4" +
				" AND (e.reported_at, e.code) < ($5, $6) AND e.reported_on <= $7",
			[]any{at, day(at, -1), now, day(now, 1), &at, "E1", day(at, 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &sqlQuery{}
			if err := tc.f.where(q, now); err != nil {
				t.Fatal(err)
			}
			if got := q.whereSQL(); got != tc.wantSQL {
				t.Errorf("SQL\n got %q\nwant %q", got, tc.wantSQL)
			}
			if !reflect.DeepEqual(q.args, tc.wantArgs) {
				t.Errorf("args %v, want %v", q.args, tc.wantArgs)
			}
		})
	}
	if err := (&EventFilter{Cursor: "nonsense"}).where(&sqlQuery{}, now); err == nil {
		t.Error("a cursor this list did not issue was accepted")
	}
}

// The open-state predicate, built from grid, reads exactly as the partial
// index events_open_deadline's, which the planner uses only for a query
// with the same predicate.
func TestOpenStatusesMatchTheIndex(t *testing.T) {
	t.Parallel()
	sql, err := os.ReadFile("migrations/005_events.sql")
	if err != nil {
		t.Fatal(err)
	}
	_, index, ok := strings.Cut(string(sql), "CREATE INDEX events_open_deadline")
	if !ok {
		t.Fatal("migration 005 has no index events_open_deadline")
	}
	index, _, _ = strings.Cut(index, ";")
	if want := "WHERE status IN " + openStatusList(); !strings.Contains(index, want) {
		t.Errorf("events_open_deadline is%s\nwant its predicate to read %s", index, want)
	}
}
