package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"gridmap/data/pgtest"
)

func TestSimulate(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	var out bytes.Buffer
	start := time.Now()
	if err := simulate(ctx, s, &out, simOptions{Rate: 20, Advance: 20, Duration: 2 * time.Second, Seed: 3, Every: time.Second}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", out.String())
	if el := time.Since(start); el > 6*time.Second {
		t.Errorf("a 2 s simulation took %s", el)
	}
	var events, advanced, entries, feed, bad int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE version > 1),
			(SELECT count(*) FROM event_log), (SELECT count(*) FROM event_feed WHERE kind <> 'unit'),
			(SELECT count(*) FROM events e WHERE version <> (SELECT count(*) FROM event_log l WHERE l.event_code = e.code)
				OR status <> (SELECT to_status FROM event_log l WHERE l.event_code = e.code ORDER BY n DESC LIMIT 1))
		FROM events`).Scan(&events, &advanced, &entries, &feed, &bad); err != nil {
		t.Fatal(err)
	}
	// 20/s for 2 s: about 40 reports.
	if events < 20 || events > 50 {
		t.Errorf("%d events reported in 2 s at 20/s", events)
	}
	if advanced == 0 || entries <= events {
		t.Errorf("%d of %d events advanced, %d log entries", advanced, events, entries)
	}
	if feed != entries {
		t.Errorf("%d feed rows for %d log entries: every report and move goes to live subscribers", feed, entries)
	}
	if bad != 0 {
		t.Errorf("%d events whose log does not end at their status and version", bad)
	}
	var actors int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM event_log WHERE n > 1 AND (actor LIKE '受理员-%' OR actor LIKE '%-处置员-%' OR actor LIKE '网格员-%' OR actor LIKE '核查员-%')`).Scan(&actors); err != nil || actors != entries-events {
		t.Errorf("%d of %d moves by a named actor (%v)", actors, entries-events, err)
	}
	txt := out.String()
	if !strings.Contains(txt, "simulate: done") || !strings.Contains(txt, "errors 0") || strings.Count(txt, "reported ") < 2 {
		t.Errorf("output:\n%s", txt)
	}
}

func TestSimulateAndDemoEventsCommands(t *testing.T) {
	t.Parallel()
	bin := gridmapBin(t)
	s := pgtest.NewDemo(t)
	out, code := runBin(t, bin, s.URL(), "demo", "--if-empty", "--events", "300")
	if code != 0 || !strings.Contains(out, "already holds") || !strings.Contains(out, "demo: 300 events") || !strings.Contains(out, "overdue") {
		t.Fatalf("demo --if-empty --events 300: exit %d, output:\n%s", code, out)
	}
	out, code = runBin(t, bin, s.URL(), "demo", "--if-empty", "--events", "300")
	if code != 0 || !strings.Contains(out, "already holds 300 events; none added") {
		t.Fatalf("demo --if-empty --events again: exit %d, output:\n%s", code, out)
	}
	out, code = runBin(t, bin, s.URL(), "simulate", "--rate", "10", "--duration", "1500ms", "--district", "440308", "--seed", "9")
	if code != 0 || !strings.Contains(out, "simulate: done") || !strings.Contains(out, "district 440308") {
		t.Fatalf("simulate: exit %d, output:\n%s", code, out)
	}
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil || n < 305 {
		t.Errorf("%d events after the demo and the simulation (%v)", n, err)
	}
	if out, code = runBin(t, bin, s.URL(), "simulate", "--district", "440399", "--duration", "1s"); code == 0 || !strings.Contains(out, "no grids in district") {
		t.Errorf("simulate in a district without grids: exit %d, output:\n%s", code, out)
	}
}
