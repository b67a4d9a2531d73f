package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/grid"
)

func cmdDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	d := demo.Defaults
	fs.StringVar(&d.Scale, "scale", d.Scale, "full (Shenzhen, 9 districts) or small (one district)")
	fs.StringVar(&d.District, "district", d.District, "the district a small demo keeps")
	fs.IntVar(&d.GridsPerCommunity, "grids-per-community", d.GridsPerCommunity, "grids cut from each community")
	fs.IntVar(&d.Density, "density", 1, "cut each community into density × grids-per-community grids (10: ~200,000 grids, a province's count)")
	fs.IntVar(&d.Seed, "seed", d.Seed, "random seed; the same seed builds the same city")
	ifEmpty := fs.Bool("if-empty", false, "build the city only when the store holds no units, objects only when it holds none, events only when it holds none")
	objects := fs.Int64("objects", 0, "also add this many managed objects with a realistic class mix")
	events := fs.Int("events", 0, "also add this many events over the last 30 days, walked through the workflow (in every state, some overdue)")
	patrolDays := fs.Int("patrol-days", 3, "patrol tracks of the grid workers for this many days up to today (0: none)")
	patrolWorkers := fs.Int("patrol-workers", 600, "at most this many workers get patrol tracks")
	people := fs.Bool("people", true, "give every grid a worker, every community a supervisor, every department two handlers (when the store holds no people), and the events their people")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see gridmap demo -h)", fs.Arg(0))
	}
	s, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	start := time.Now()
	buildCity := true
	if *ifEmpty {
		n, err := s.CountUnits(ctx, grid.BaseLayer)
		if err != nil {
			return err
		}
		if total := n[grid.District] + n[grid.Street] + n[grid.Community] + n[grid.Grid]; total > 0 {
			fmt.Printf("demo: the store already holds %d units; the city stays as it is\n", total)
			buildCity = false
		}
	}
	if buildCity {
		if err := buildDemoCity(ctx, s, d, start); err != nil {
			return err
		}
	}
	if *objects > 0 {
		if err := demoObjects(ctx, s, *objects, uint64(d.Seed), *ifEmpty); err != nil {
			return err
		}
	}
	if *people {
		if err := demoPeople(ctx, s); err != nil {
			return err
		}
	}
	if *people && *patrolDays > 0 {
		res, err := demo.Patrols(ctx, s, *patrolDays, *patrolWorkers)
		if err != nil {
			return fmt.Errorf("demo patrols: %w", err)
		}
		fmt.Printf("demo: patrol tracks of %d workers, %d worker-days, %d points; %.1fs\n", res.Workers, res.Days, res.Points, res.Seconds)
	}
	if *events > 0 {
		if err := demoEvents(ctx, s, *events, uint64(d.Seed), *ifEmpty); err != nil {
			return err
		}
		if *people {
			return demoEventPeople(ctx, s)
		}
	}
	return nil
}

// demoPeople gives the city its people unless it has some, and prints
// one line.
func demoPeople(ctx context.Context, s *data.Store) error {
	var have int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM people`).Scan(&have); err != nil {
		return err
	}
	if have > 0 {
		fmt.Printf("demo: the store already holds %d people; none added\n", have)
		return nil
	}
	res, err := demo.People(ctx, s)
	if err != nil {
		return fmt.Errorf("demo people: %w", err)
	}
	fmt.Printf("demo: %d grid workers (one per grid), %d supervisors (one per community), %d handlers (two per department); %d events given their people; %.1fs\n",
		res.Workers, res.Supervisors, res.Handlers, res.Events, res.Seconds)
	return nil
}

// demoEventPeople gives the events just added their people.
func demoEventPeople(ctx context.Context, s *data.Store) error {
	cfg, err := s.EventConfig(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	n, err := demo.EventPeople(ctx, s, cfg.Calendar)
	if err != nil {
		return fmt.Errorf("demo people of events: %w", err)
	}
	fmt.Printf("demo: %d events given their verifier, handler and reporter; %.1fs\n", n, time.Since(start).Seconds())
	return nil
}

func demoObjects(ctx context.Context, s *data.Store, n int64, seed uint64, ifEmpty bool) error {
	if ifEmpty {
		have, err := s.CountObjects(ctx)
		if err != nil {
			return err
		}
		if have > 0 {
			fmt.Printf("demo: the store already holds %d objects; none added\n", have)
			return nil
		}
	}
	stream, err := demo.Objects(ctx, s, n, seed, false)
	if err != nil {
		return err
	}
	report, done := progress(os.Stderr)
	rep, err := s.ImportObjects(ctx, stream, data.ObjectImportOptions{Progress: report})
	done()
	if err != nil {
		return err
	}
	printObjectReport(os.Stdout, rep)
	if rep.Aborted {
		return fmt.Errorf("demo objects rejected")
	}
	return nil
}

// demoEvents adds n events of the last 30 days, and prints one line: the
// count per status, the overdue ones, the time taken.
func demoEvents(ctx context.Context, s *data.Store, n int, seed uint64, ifEmpty bool) error {
	if ifEmpty {
		have, err := s.CountEvents(ctx)
		if err != nil {
			return err
		}
		if have > 0 {
			fmt.Printf("demo: the store already holds %d events; none added\n", have)
			return nil
		}
	}
	res, err := demo.Events(ctx, s, n, seed, time.Now())
	if err != nil {
		return fmt.Errorf("demo events: %w", err)
	}
	fmt.Println(demoEventsSummary(res))
	return nil
}

func demoEventsSummary(res demo.EventsResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "demo: %d events (%d log entries):", res.Events, res.LogEntries)
	for _, st := range grid.EventStatuses {
		fmt.Fprintf(&b, " %d %s,", res.ByStatus[st], st)
	}
	fmt.Fprintf(&b, " %d overdue now, %d handled late, %d returned at least once, %d re-dispatched; %.1fs",
		res.Overdue, res.HandledLate, res.Returned, res.Redispatched, res.Seconds)
	return b.String()
}

func buildDemoCity(ctx context.Context, s *data.Store, d demo.Options, start time.Time) error {
	d.Progress = func(format string, args ...any) {
		fmt.Printf("demo: %6.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	res, err := demo.Build(ctx, s, d)
	if err != nil {
		return err
	}
	printReport(os.Stdout, res.Import)
	if !res.Import.OK() {
		return fmt.Errorf("the demo city failed validation")
	}
	fmt.Printf("demo: %d districts, %d streets, %d communities, %d grids; generated in %.1fs, validated and loaded in %.1fs, total %.1fs\n",
		res.Counts[grid.District], res.Counts[grid.Street], res.Counts[grid.Community], res.Counts[grid.Grid],
		res.GenerateSeconds, res.Import.Seconds, time.Since(start).Seconds())
	return nil
}
