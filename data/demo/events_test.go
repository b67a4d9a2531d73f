package demo_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/data/pgtest"
	"gridmap/grid"
)

// demoNow is a Wednesday afternoon in Shenzhen, ten days after the
// Spring Festival holidays of the seeded calendar.
var demoNow = time.Date(2026, 3, 11, 15, 20, 0, 0, time.FixedZone("CST", 8*3600))

type demoRow struct {
	code, class, status, grid, dept string
	reported, deadline, updated     time.Time
	handled, closed                 *time.Time
	version                         int
}

func readDemoEvents(t *testing.T, s *data.Store) []demoRow {
	t.Helper()
	rows, err := s.Pool.Query(context.Background(), `SELECT code, class_code, status, grid_code, department_code,
		reported_at, deadline, updated_at, handled_at, closed_at, version FROM events ORDER BY code`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []demoRow
	for rows.Next() {
		var r demoRow
		if err := rows.Scan(&r.code, &r.class, &r.status, &r.grid, &r.dept, &r.reported, &r.deadline, &r.updated, &r.handled, &r.closed, &r.version); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEvents(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	const n = 2000
	res, err := demo.Events(ctx, s, n, 3, demoNow)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events, %d log entries in %.2fs: %v; overdue %d, handled late %d, returned %d, re-dispatched %d",
		res.Events, res.LogEntries, res.Seconds, res.ByStatus, res.Overdue, res.HandledLate, res.Returned, res.Redispatched)
	cfg, err := s.EventConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	loc := cfg.Calendar.Location()
	evs := readDemoEvents(t, s)
	if len(evs) != n || res.Events != n {
		t.Fatalf("%d events stored, %d reported, want %d", len(evs), res.Events, n)
	}
	stood := map[string]time.Duration{}
	rows, err := s.Pool.Query(ctx, `SELECT l.event_code, l.at, x.at FROM event_log l
		JOIN event_log x ON x.event_code = l.event_code AND x.n = l.n + 1 WHERE l.to_status = 'suspended'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var code string
		var from, to time.Time
		if err := rows.Scan(&code, &from, &to); err != nil {
			t.Fatal(err)
		}
		stood[code] += cfg.Calendar.WorkingTime(from, to)
	}
	rows.Close()
	if len(evs) != n || res.Events != n {
		t.Fatalf("%d events stored, %d reported, want %d", len(evs), res.Events, n)
	}

	// Every status, as the result says.
	byStatus := map[grid.EventStatus]int{}
	open, overdue := 0, 0
	for _, e := range evs {
		st := grid.EventStatus(e.status)
		byStatus[st]++
		if st.Open() {
			open++
			if grid.Overdue(st, e.deadline, demoNow) {
				overdue++
			}
		}
	}
	for _, st := range grid.EventStatuses {
		if byStatus[st] == 0 {
			t.Errorf("no event is %s: %v", st, byStatus)
		}
		if byStatus[st] != res.ByStatus[st] {
			t.Errorf("%d events are %s, the result says %d", byStatus[st], st, res.ByStatus[st])
		}
	}
	if overdue != res.Overdue {
		t.Errorf("%d overdue, the result says %d", overdue, res.Overdue)
	}
	// Realistic shares: most closed, about 5% rejected, a minority of the
	// open ones overdue.
	if c := byStatus[grid.StatusClosed]; c < n/2 {
		t.Errorf("only %d of %d closed", c, n)
	}
	if r := byStatus[grid.StatusRejected]; r < n*3/100 || r > n*8/100 {
		t.Errorf("%d of %d rejected, want about 5%%", r, n)
	}
	if share := float64(overdue) / float64(open); share < 0.03 || share > 0.15 {
		t.Errorf("%d of %d open events overdue (%.1f%%), want about 5–10%%", overdue, open, 100*share)
	}
	if res.Returned == 0 || res.Redispatched == 0 || res.HandledLate == 0 {
		t.Errorf("no returned, re-dispatched or late events: %+v", res)
	}

	// Codes: valid, unique, numbered per district and local date in time
	// order from 1, and event_code_seq holds the last number given.
	type dayKey struct{ district, day string }
	seqs := map[dayKey][]demoRow{}
	seen := map[string]bool{}
	for _, e := range evs {
		district, day, _, err := grid.ParseEventCode(e.code)
		if err != nil {
			t.Fatalf("code %s: %v", e.code, err)
		}
		if seen[e.code] {
			t.Fatalf("code %s twice", e.code)
		}
		seen[e.code] = true
		if district != e.grid[:6] || day.Format(time.DateOnly) != e.reported.In(loc).Format(time.DateOnly) {
			t.Errorf("code %s: district %s, date %s; the event is in grid %s, reported %s", e.code, district, day.Format(time.DateOnly), e.grid, e.reported.In(loc))
		}
		k := dayKey{district, day.Format(time.DateOnly)}
		seqs[k] = append(seqs[k], e)
		if e.reported.After(demoNow) || e.reported.Before(demoNow.AddDate(0, 0, -30)) {
			t.Errorf("%s reported at %s, outside the 30 days before %s", e.code, e.reported, demoNow)
		}
		want, err := cfg.Calendar.Deadline(e.reported, cfg.Classes[e.class].Limit)
		if err == nil && stood[e.code] > 0 {
			// A lifted suspension moved the deadline by the working time it stood.
			want, err = cfg.Calendar.AddWorkingTime(want, stood[e.code])
		}
		if err != nil || !want.Equal(e.deadline) {
			t.Errorf("%s: deadline %s, want %s (%v)", e.code, e.deadline, want, err)
		}
	}
	for k, es := range seqs {
		sort.Slice(es, func(i, j int) bool { return es[i].code < es[j].code })
		for i, e := range es {
			if _, _, seq, _ := grid.ParseEventCode(e.code); seq != i+1 {
				t.Fatalf("%v: event %d has code %s", k, i+1, e.code)
			}
			if i > 0 && e.reported.Before(es[i-1].reported) {
				t.Errorf("%s reported at %s, before %s at %s", e.code, e.reported, es[i-1].code, es[i-1].reported)
			}
		}
		var last int
		if err := s.Pool.QueryRow(ctx, `SELECT last FROM event_code_seq WHERE district = $1 AND day = $2::date`, k.district, k.day).Scan(&last); err != nil || last != len(es) {
			t.Errorf("event_code_seq %v: last %d, want %d (%v)", k, last, len(es), err)
		}
	}

	// Logs: the report first, then legal moves only, in time order, ending
	// where the event stands; handled_at, closed_at, updated_at, version
	// and the department follow from them.
	type logRow struct {
		n              int
		from, to, dept *string
		actor, note    string
		at             time.Time
	}
	logs := map[string][]logRow{}
	rows, err = s.Pool.Query(ctx, `SELECT event_code, n, from_status, to_status, actor, note, department_code, at FROM event_log ORDER BY event_code, n`)
	if err != nil {
		t.Fatal(err)
	}
	entries := 0
	for rows.Next() {
		var code string
		var l logRow
		l.to = new(string)
		if err := rows.Scan(&code, &l.n, &l.from, l.to, &l.actor, &l.note, &l.dept, &l.at); err != nil {
			t.Fatal(err)
		}
		logs[code] = append(logs[code], l)
		entries++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if entries != res.LogEntries {
		t.Errorf("%d log entries, the result says %d", entries, res.LogEntries)
	}
	for _, e := range evs {
		ls := logs[e.code]
		if len(ls) == 0 || ls[0].n != 1 || ls[0].from != nil || *ls[0].to != string(grid.StatusReported) || !ls[0].at.Equal(e.reported) || ls[0].actor == "" {
			t.Fatalf("%s: the log does not start with the report: %+v", e.code, ls)
		}
		cur, dept := grid.StatusReported, cfg.Classes[e.class].Department
		var handled, closed *time.Time
		for i, l := range ls[1:] {
			to := grid.EventStatus(*l.to)
			d := ""
			if l.dept != nil {
				d = *l.dept
			}
			if l.n != i+2 || l.from == nil || *l.from != string(cur) {
				t.Fatalf("%s entry %d: n %d from %v, want n %d from %s", e.code, i+2, l.n, l.from, i+2, cur)
			}
			if err := grid.CheckTransition(cur, to, dept, d); err != nil {
				t.Fatalf("%s entry %d: %v", e.code, l.n, err)
			}
			if !l.at.After(ls[i].at) || l.at.After(demoNow) || l.actor == "" {
				t.Fatalf("%s entry %d at %s by %q: after %s and not after %s by someone, please", e.code, l.n, l.at, l.actor, ls[i].at, demoNow)
			}
			if d != "" {
				dept = d
			}
			if to == grid.StatusHandled && handled == nil {
				handled = &l.at
			}
			if to.Final() {
				closed = &l.at
			}
			cur = to
		}
		last := ls[len(ls)-1]
		if string(cur) != e.status || e.version != len(ls) || !e.updated.Equal(last.at) || dept != e.dept {
			t.Errorf("%s: status %s version %d updated %s department %s; the log ends at %s after %d entries at %s in %s",
				e.code, e.status, e.version, e.updated, e.dept, cur, len(ls), last.at, dept)
		}
		if fmt.Sprint(handled) != fmt.Sprint(e.handled) || fmt.Sprint(closed) != fmt.Sprint(e.closed) {
			t.Errorf("%s: handled_at %v closed_at %v; the log says %v and %v", e.code, e.handled, e.closed, handled, closed)
		}
	}

	// The count triggers kept event_counts exact; no feed rows.
	var diff, feed int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM (
			(SELECT grid_code, status, n FROM event_counts WHERE n > 0 EXCEPT SELECT grid_code, status, count(*) FROM events GROUP BY 1, 2)
			UNION ALL
			(SELECT grid_code, status, count(*) FROM events GROUP BY 1, 2 EXCEPT SELECT grid_code, status, n FROM event_counts)) d`).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Errorf("event_counts differs from the events in %d rows", diff)
	}
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM event_feed WHERE kind <> 'unit'`).Scan(&feed); err != nil || feed != 0 {
		t.Errorf("%d event feed rows (%v), want none", feed, err)
	}
	if c, err := s.CountEvents(ctx); err != nil || c != n {
		t.Errorf("CountEvents: %d, %v", c, err)
	}

	// A live report goes on from the last number of its district and day.
	gen, err := demo.NewReports(ctx, s, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	ne := gen.Next(demoNow)
	rr, err := s.ReportEventsAt(ctx, []data.NewEvent{ne}, demoNow)
	if err != nil || rr[0].Err != nil {
		t.Fatal(err, rr)
	}
	district := ne.Location.Grid.Code[:6]
	k := dayKey{district, demoNow.In(loc).Format(time.DateOnly)}
	if _, _, seq, _ := grid.ParseEventCode(rr[0].Event.Code); seq != len(seqs[k])+1 {
		t.Errorf("live report after the demo: code %s, want sequence %d", rr[0].Event.Code, len(seqs[k])+1)
	}

	// The same seed and clock give the same events on the same city.
	s2 := pgtest.NewDemo(t)
	if _, err := demo.Events(ctx, s2, n, 3, demoNow); err != nil {
		t.Fatal(err)
	}
	evs2 := readDemoEvents(t, s2)
	for i := range evs {
		a, b := evs[i], evs2[i]
		if a.code != b.code || a.status != b.status || a.grid != b.grid || a.class != b.class || !a.updated.Equal(b.updated) || a.version != b.version {
			t.Fatalf("not deterministic: event %d is %+v, then %+v", i, a, b)
		}
	}
}

// BenchmarkEvents times 20,000 events on the full-scale demo city.
func BenchmarkEvents(b *testing.B) {
	s := pgtest.SharedFullDemo(b)
	ctx := context.Background()
	seed := uint64(1)
	for b.Loop() {
		res, err := demo.Events(ctx, s, 20000, seed, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		seed++
		b.ReportMetric(res.Seconds, "s/20k")
		b.Logf("%d events, %d log entries in %.2fs: %v; overdue %d, handled late %d, returned %d, re-dispatched %d",
			res.Events, res.LogEntries, res.Seconds, res.ByStatus, res.Overdue, res.HandledLate, res.Returned, res.Redispatched)
	}
}
