package data

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"gridmap/grid"
)

// TestReportBatchRouteAndFollowers checks the steps of reportTx that need
// no database: which reports are refused, which lead their key and are
// written, and how followers of a key are answered.
func TestReportBatchRouteAndFollowers(t *testing.T) {
	t.Parallel()
	periods, err := grid.ParsePeriods("09:00-12:00")
	if err != nil {
		t.Fatal(err)
	}
	cal, err := grid.NewCalendar(time.UTC, periods, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &EventConfig{Classes: map[string]grid.EventClass{"0101": {Code: "0101"}}, Calendar: cal}
	in := grid.Location{Grid: &grid.Ref{Code: "110101001001001"}}
	rep := func(class, key, hash string) NewEvent {
		return NewEvent{Class: class, Location: in, IdempotencyKey: key, BodyHash: []byte(hash)}
	}
	outside := rep("0101", "", "")
	outside.Location = grid.Location{}
	for _, tc := range []struct {
		name    string
		evs     []NewEvent
		writes  []bool
		keys    []string
		refused []string // the field of each report's InvalidError, "" for none
	}{
		{"refused", []NewEvent{outside, rep("9999", "", "")}, []bool{false, false}, nil, []string{"position", "class"}},
		{"no keys", []NewEvent{rep("0101", "", ""), rep("0101", "", "")}, []bool{true, true}, nil, []string{"", ""}},
		{"a key twice: the first leads", []NewEvent{rep("0101", "k2", "a"), rep("0101", "k1", "a"), rep("0101", "k2", "a")},
			[]bool{true, true, false}, []string{"k1", "k2"}, []string{"", "", ""}},
		{"a refused report leads no key", []NewEvent{rep("9999", "k", "a"), rep("0101", "k", "a")},
			[]bool{false, true}, []string{"k"}, []string{"class", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newReportBatch(nil, cfg, tc.evs, time.Now())
			b.route()
			for i := range tc.evs {
				if got := b.writes(i); got != tc.writes[i] {
					t.Errorf("report %d: writes = %v, want %v", i, got, tc.writes[i])
				}
				var inv *InvalidError
				field := ""
				if errors.As(b.res[i].Err, &inv) {
					field = inv.Field
				}
				if field != tc.refused[i] {
					t.Errorf("report %d: refused for %q, want %q", i, field, tc.refused[i])
				}
			}
			if !reflect.DeepEqual(b.keys, tc.keys) {
				t.Errorf("keys %v, want %v", b.keys, tc.keys)
			}
		})
	}

	leaderErr := invalid("position", "no code")
	for _, tc := range []struct {
		name         string
		leader       ReportResult
		followerHash string
		wantReplay   bool
		wantErr      error
	}{
		{"same body: a replay of the leader's event", ReportResult{Event: &Event{Code: "E1"}}, "a", true, nil},
		{"another body: an idempotency error", ReportResult{Event: &Event{Code: "E1"}}, "b", false, &IdempotencyError{Key: "k", Event: "E1"}},
		{"the leader failed: the same error", ReportResult{Err: leaderErr}, "a", false, leaderErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newReportBatch(nil, cfg, []NewEvent{rep("0101", "k", "a"), rep("0101", "k", tc.followerHash)}, time.Now())
			b.route()
			b.res[0] = tc.leader
			b.answerFollowers()
			got := b.res[1]
			if got.Replayed != tc.wantReplay {
				t.Errorf("replayed = %v, want %v", got.Replayed, tc.wantReplay)
			}
			if tc.wantReplay && got.Event.Code != tc.leader.Event.Code {
				t.Errorf("replays %s, want %s", got.Event.Code, tc.leader.Event.Code)
			}
			if fmt.Sprint(got.Err) != fmt.Sprint(tc.wantErr) {
				t.Errorf("error %v, want %v", got.Err, tc.wantErr)
			}
		})
	}
}
