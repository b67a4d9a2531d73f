package data_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gridmap/data"
	"gridmap/grid"
)

func TestWritePastEvents(t *testing.T) {
	t.Parallel()
	c := newEvCity(t)
	s := c.s
	ctx := context.Background()
	cfg, err := s.EventConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const class = "0102"
	dept := cfg.Classes[class].Department
	other := ""
	for d := range cfg.Departments {
		if d != dept {
			other = d
			break
		}
	}
	day := time.Date(2026, 3, 10, 9, 0, 0, 0, cst)
	// A live report of the day first: the history goes on from its number.
	live := c.created(t, day, c.report(t, c.grids[0], class))[0]
	if _, _, seq, _ := grid.ParseEventCode(live.Code); seq != 1 {
		t.Fatalf("live report %s, want the day's first", live.Code)
	}

	type move struct {
		to   grid.EventStatus
		dept string
	}
	cases := []struct {
		name    string
		at      time.Duration // reported this long after day
		moves   []move
		dept    string // where it stands
		handled int    // the log entry (n) of handled_at, 0: none
		closed  int
	}{
		{name: "just reported", at: 3 * time.Hour, dept: dept},
		{name: "rejected", at: time.Hour, moves: []move{{to: grid.StatusRejected}}, dept: dept, closed: 2},
		{name: "returned, handled again and closed", at: 2 * time.Hour, moves: []move{
			{to: grid.StatusRegistered}, {to: grid.StatusDispatched, dept: dept}, {to: grid.StatusHandling}, {to: grid.StatusHandled},
			{to: grid.StatusReturned}, {to: grid.StatusDispatched, dept: dept}, {to: grid.StatusHandling}, {to: grid.StatusHandled},
			{to: grid.StatusVerified}, {to: grid.StatusClosed}}, dept: dept, handled: 5, closed: 11},
		{name: "re-dispatched, open", at: 30 * time.Minute, moves: []move{
			{to: grid.StatusRegistered}, {to: grid.StatusDispatched, dept: dept}, {to: grid.StatusDispatched, dept: other}}, dept: other},
	}
	evs := make([]data.PastEvent, len(cases))
	for i, tc := range cases {
		ne := c.report(t, c.grids[1+i], class)
		reported := day.Add(tc.at)
		log := []data.LogEntry{{N: 1, To: grid.StatusReported, Actor: ne.ReportActor(), At: reported}}
		for k, m := range tc.moves {
			log = append(log, data.LogEntry{N: k + 2, From: log[k].To, To: m.to, Actor: "受理员-01", Note: fmt.Sprintf("step %d", k+2),
				Department: m.dept, At: reported.Add(time.Duration(k+1) * 10 * time.Minute)})
		}
		evs[i] = data.PastEvent{NewEvent: ne, ReportedAt: reported, Deadline: reported.Add(24 * time.Hour), Department: tc.dept, Log: log}
	}
	feedBefore := feedRows(t, s)
	codes, err := s.WritePastEvents(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	// Numbers 2… by report time: 30 min, 1 h, 2 h, 3 h after day.
	wantSeq := []int{5, 3, 4, 2}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, seq, err := grid.ParseEventCode(codes[i]); err != nil || seq != wantSeq[i] {
				t.Errorf("code %s (%v), want sequence %d", codes[i], err, wantSeq[i])
			}
			ev, err := s.GetEvent(ctx, codes[i], true)
			if err != nil {
				t.Fatal(err)
			}
			e := evs[i]
			last := e.Log[len(e.Log)-1]
			if ev.Status != last.To || ev.Version != len(e.Log) || !ev.UpdatedAt.Equal(last.At) || ev.Department != tc.dept ||
				!ev.ReportedAt.Equal(e.ReportedAt) || !ev.Deadline.Equal(e.Deadline) || ev.GridCode != e.Location.Grid.Code {
				t.Errorf("stored %+v; want status %s, version %d, updated %s, department %s", ev, last.To, len(e.Log), last.At, tc.dept)
			}
			if got, want := entryAt(ev.HandledAt, e.Log), tc.handled; got != want {
				t.Errorf("handled_at is entry %d's time, want %d's", got, want)
			}
			if got, want := entryAt(ev.ClosedAt, e.Log), tc.closed; got != want {
				t.Errorf("closed_at is entry %d's time, want %d's", got, want)
			}
			if len(ev.Log) != len(e.Log) {
				t.Fatalf("%d log entries stored, want %d", len(ev.Log), len(e.Log))
			}
			for k, l := range ev.Log {
				w := e.Log[k]
				if l.N != w.N || l.From != w.From || l.To != w.To || l.Actor != w.Actor || l.Note != w.Note || l.Department != w.Department || !l.At.Equal(w.At) {
					t.Errorf("log entry %d: %+v, want %+v", k+1, l, w)
				}
			}
		})
	}
	if n := feedRows(t, s); n != feedBefore {
		t.Errorf("%d feed rows after writing history, %d before: history is not live news", n, feedBefore)
	}
	if n, err := s.CountEvents(ctx); err != nil || n != int64(1+len(cases)) {
		t.Errorf("CountEvents: %d, %v; want %d", n, err, 1+len(cases))
	}
	next := c.created(t, day.Add(4*time.Hour), c.report(t, c.grids[0], class))[0]
	if _, _, seq, _ := grid.ParseEventCode(next.Code); seq != 2+len(cases) {
		t.Errorf("live report after the history: %s, want sequence %d", next.Code, 2+len(cases))
	}
	if codes, err := s.WritePastEvents(ctx, nil); codes != nil || err != nil {
		t.Errorf("no events: %v, %v", codes, err)
	}
}

// entryAt is the n of the log entry made at *at, 0 when at is nil or no
// entry was made then.
func entryAt(at *time.Time, log []data.LogEntry) int {
	if at == nil {
		return 0
	}
	for _, l := range log {
		if l.At.Equal(*at) {
			return l.N
		}
	}
	return 0
}

func feedRows(t *testing.T, s *data.Store) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM event_feed`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
