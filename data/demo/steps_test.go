package demo

import (
	"reflect"
	"testing"
	"time"

	"gridmap/data"
	"gridmap/grid"
)

func TestOptionsWithDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   Options
		want Options
		err  bool
	}{
		{name: "zero is the full city", want: Defaults},
		{name: "small keeps its district", in: Options{Scale: "small", District: "440306", GridsPerCommunity: 8, Seed: 3},
			want: Options{Scale: "small", District: "440306", GridsPerCommunity: 8, Seed: 3}},
		{name: "negatives take the defaults", in: Options{Scale: "small", GridsPerCommunity: -1, Seed: -5},
			want: Options{Scale: "small", District: Defaults.District, GridsPerCommunity: Defaults.GridsPerCommunity, Seed: Defaults.Seed}},
		{name: "999 grids fit", in: Options{GridsPerCommunity: 999}, want: Options{Scale: "full", District: "440308", GridsPerCommunity: 999, Seed: 1}},
		{name: "1000 grids do not", in: Options{GridsPerCommunity: 1000}, err: true},
		{name: "density multiplies the grids", in: Options{GridsPerCommunity: 25, Density: 10},
			want: Options{Scale: "full", District: "440308", GridsPerCommunity: 25, Density: 10, Seed: 1}},
		{name: "nor do 40 × density 25", in: Options{GridsPerCommunity: 40, Density: 25}, err: true},
		{name: "negative density", in: Options{Density: -1}, err: true},
		{name: "unknown scale", in: Options{Scale: "medium"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.withDefaults()
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if !tc.err && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// pastLog is a log of the statuses given, one entry an hour from at.
func pastLog(at time.Time, to ...grid.EventStatus) []data.LogEntry {
	log := []data.LogEntry{{N: 1, To: grid.StatusReported, At: at}}
	for i, st := range to {
		log = append(log, data.LogEntry{N: i + 2, From: log[i].To, To: st, At: at.Add(time.Duration(i+1) * time.Hour)})
	}
	return log
}

func TestEventsResultCount(t *testing.T) {
	t.Parallel()
	reported := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	now := reported.Add(48 * time.Hour)
	const (
		reg = grid.StatusRegistered
		dis = grid.StatusDispatched
		han = grid.StatusHandling
		hd  = grid.StatusHandled
		ver = grid.StatusVerified
		ret = grid.StatusReturned
		clo = grid.StatusClosed
	)
	for _, tc := range []struct {
		name     string
		deadline time.Duration // after the report
		log      []grid.EventStatus
		want     EventsResult // Events and LogEntries are checked apart
	}{
		{name: "reported, in time", deadline: 72 * time.Hour,
			want: EventsResult{ByStatus: map[grid.EventStatus]int{grid.StatusReported: 1}}},
		{name: "open past the deadline", deadline: time.Hour, log: []grid.EventStatus{reg, dis},
			want: EventsResult{ByStatus: map[grid.EventStatus]int{dis: 1}, Overdue: 1}},
		{name: "closed late is not overdue", deadline: 2 * time.Hour, log: []grid.EventStatus{reg, dis, han, hd, ver, clo},
			want: EventsResult{ByStatus: map[grid.EventStatus]int{clo: 1}, HandledLate: 1}},
		{name: "first handled in time, again after a return", deadline: 4*time.Hour + 30*time.Minute, log: []grid.EventStatus{reg, dis, han, hd, ret, dis, han, hd},
			want: EventsResult{ByStatus: map[grid.EventStatus]int{hd: 1}, Returned: 1}},
		{name: "sent on while handling", deadline: 72 * time.Hour, log: []grid.EventStatus{reg, dis, han, dis},
			want: EventsResult{ByStatus: map[grid.EventStatus]int{dis: 1}, Redispatched: 1}},
		{name: "sent on before handling", deadline: 72 * time.Hour, log: []grid.EventStatus{reg, dis, dis},
			want: EventsResult{ByStatus: map[grid.EventStatus]int{dis: 1}, Redispatched: 1}},
		{name: "dispatched again after a return is no re-dispatch", deadline: 72 * time.Hour, log: []grid.EventStatus{reg, dis, han, hd, ret, dis},
			want: EventsResult{ByStatus: map[grid.EventStatus]int{dis: 1}, Returned: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := data.PastEvent{ReportedAt: reported, Deadline: reported.Add(tc.deadline), Log: pastLog(reported, tc.log...)}
			got := EventsResult{ByStatus: map[grid.EventStatus]int{}}
			got.count(&e, now)
			tc.want.Events, tc.want.LogEntries = 1, 1+len(tc.log)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestWalkAdd(t *testing.T) {
	t.Parallel()
	reported := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	now := reported.Add(time.Hour)
	type step struct {
		to    grid.EventStatus
		after time.Duration // from the report
		dept  string
	}
	for _, tc := range []struct {
		name  string
		steps []step
		at    []time.Duration // of the entries after the report
		dept  string
	}{
		{name: "in order", steps: []step{{grid.StatusRegistered, 10 * time.Minute, ""}, {grid.StatusDispatched, 20 * time.Minute, "cgj"}},
			at: []time.Duration{10 * time.Minute, 20 * time.Minute}, dept: "cgj"},
		{name: "30 s after the last entry at the earliest", steps: []step{{grid.StatusRegistered, 0, ""}, {grid.StatusDispatched, -time.Minute, "cgj"}},
			at: []time.Duration{30 * time.Second, time.Minute}, dept: "cgj"},
		{name: "seconds truncated", steps: []step{{grid.StatusRegistered, 10*time.Minute + 700*time.Millisecond, ""}},
			at: []time.Duration{10 * time.Minute}, dept: "jdb"},
		{name: "nothing after now, nor after a step after now", steps: []step{{grid.StatusRegistered, 10 * time.Minute, ""},
			{grid.StatusDispatched, 2 * time.Hour, "cgj"}, {grid.StatusHandling, 50 * time.Minute, ""}},
			at: []time.Duration{10 * time.Minute}, dept: "jdb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &data.PastEvent{ReportedAt: reported, Department: "jdb", Log: pastLog(reported)}
			w := &walk{e: e, now: now, t: reported}
			for _, s := range tc.steps {
				w.add(s.to, reported.Add(s.after), "actor", "note", s.dept)
			}
			if len(e.Log) != 1+len(tc.at) || e.Department != tc.dept {
				t.Fatalf("log %+v, department %s; want %d entries, department %s", e.Log, e.Department, 1+len(tc.at), tc.dept)
			}
			for i, d := range tc.at {
				l := e.Log[i+1]
				if l.N != i+2 || l.From != e.Log[i].To || l.To != tc.steps[i].to || !l.At.Equal(reported.Add(d)) {
					t.Errorf("entry %d: %+v, want n %d from %s to %s at %s", i+2, l, i+2, e.Log[i].To, tc.steps[i].to, reported.Add(d))
				}
			}
		})
	}
}
