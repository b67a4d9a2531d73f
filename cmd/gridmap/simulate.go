package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/grid"
)

// simOptions drive `gridmap simulate`.
type simOptions struct {
	Rate     float64       // reports per second
	Advance  float64       // workflow moves per second
	Duration time.Duration // 0: until ctx ends
	Seed     uint64
	District string // only this district's grids and events
	Every    time.Duration
	Workers  int // grid workers walking their grids (0: none)
}

func cmdSimulate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: gridmap simulate [flags]

A live wall: reports new events at random points of the grids through the
reporting path of the API, and moves open events along the workflow, as a
separate process on the same database; servers deliver both to their live
subscribers through the event feed.

`)
		fs.PrintDefaults()
	}
	o := simOptions{Every: 5 * time.Second}
	fs.Float64Var(&o.Rate, "rate", 5, "new events reported per second")
	fs.Float64Var(&o.Advance, "advance", -1, "workflow moves per second (-1: as many as --rate)")
	fs.DurationVar(&o.Duration, "duration", 0, "how long to run, e.g. 10m (0: until Ctrl-C)")
	fs.Uint64Var(&o.Seed, "seed", 0, "random seed (0: from the clock)")
	fs.StringVar(&o.District, "district", "", "report and move events of this district only (6-digit code)")
	fs.IntVar(&o.Workers, "workers", 0, "grid workers who walk their grids, a GPS fix every 5 s each through the patrol ingest (the wall's live positions and coverage); 0: none")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see gridmap simulate -h)", fs.Arg(0))
	}
	if o.Advance < 0 {
		o.Advance = o.Rate
	}
	if o.Workers < 0 || o.Workers > 100000 {
		return fmt.Errorf("--workers: 0 to 100000")
	}
	if o.Rate < 0 || o.Rate > 10000 || o.Advance > 10000 {
		return fmt.Errorf("--rate and --advance: 0 to 10000 per second")
	}
	if o.District != "" {
		if err := grid.ValidateCode(grid.District, o.District, ""); err != nil {
			return fmt.Errorf("--district: %w", err)
		}
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	s, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	return simulate(ctx, s, os.Stdout, o)
}

// simStats are the running totals of a simulation.
type simStats struct {
	reported, advanced, errors, conflicts, fixes atomic.Int64
	mu                                           sync.Mutex
	lastErr                                      error
}

func (st *simStats) fail(err error) {
	st.errors.Add(1)
	st.mu.Lock()
	st.lastErr = err
	st.mu.Unlock()
}

// simulate runs until ctx ends or o.Duration has passed, printing a line
// every o.Every and a last one at the end.
func simulate(ctx context.Context, s *data.Store, w io.Writer, o simOptions) error {
	gen, err := demo.NewReports(ctx, s, o.Seed, o.District)
	if err != nil {
		return err
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	if o.Every <= 0 {
		o.Every = 5 * time.Second
	}
	where := "every district"
	if o.District != "" {
		where = "district " + o.District
	}
	fmt.Fprintf(w, "simulate: reporting %.4g events/s and making %.4g moves/s in %s (seed %d); Ctrl-C stops\n", o.Rate, o.Advance, where, o.Seed)
	start := time.Now()
	var st simStats
	var wg sync.WaitGroup
	if o.Rate > 0 {
		wg.Go(func() { simReport(ctx, s, gen, o.Rate, &st) })
	}
	if o.Advance > 0 {
		wg.Go(func() { simAdvance(ctx, s, gen, o, &st) })
	}
	if o.Workers > 0 {
		n, err := simWalk(ctx, s, o.Workers, o.Seed, &st)
		switch {
		case err != nil:
			return err
		case n == 0:
			fmt.Fprintln(w, "simulate: no active worker is responsible for a grid (gridmap demo makes them; PUT /v1/grids/{code}/workers assigns one): nobody walks")
		case n < o.Workers:
			fmt.Fprintf(w, "simulate: only %d workers are responsible for a grid; they walk\n", n)
		default:
			fmt.Fprintf(w, "simulate: %d workers walk their grids\n", n)
		}
	}
	line := func(head string) {
		el := time.Since(start).Seconds()
		fmt.Fprintf(w, "simulate: %s%6.1fs  reported %d (%.1f/s)  advanced %d (%.1f/s)  fixes %d  errors %d  conflicts %d\n", head, el,
			st.reported.Load(), float64(st.reported.Load())/el, st.advanced.Load(), float64(st.advanced.Load())/el,
			st.fixes.Load(), st.errors.Load(), st.conflicts.Load())
	}
	tick := time.NewTicker(o.Every)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			line("")
		}
	}
	wg.Wait()
	line("done ")
	if st.lastErr != nil {
		fmt.Fprintf(w, "simulate: last error: %v\n", st.lastErr)
	}
	return nil
}

// simOp is the context of one database call: it outlives ctx by a grace
// period, so a report under way when the simulation stops is finished and
// counted, not torn off.
func simOp(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
}

// pace calls fn(n) ten times a second with the number of actions due at
// rate since the start; it returns when ctx ends. A backlog (the database
// was slow) is forgiven beyond two seconds' worth.
func pace(ctx context.Context, rate float64, fn func(n int) int) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	done := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int(rate*time.Since(start).Seconds()) - done
		if lag := due - int(2*rate) - 1; lag > 0 {
			done += lag
			due -= lag
		}
		if due > 0 {
			done += fn(due)
		}
	}
}

// simReport reports the due events in one transaction per tick, through
// the store's reporting path (location, code, department, deadline, log,
// feed).
func simReport(ctx context.Context, s *data.Store, gen *demo.Reports, rate float64, st *simStats) {
	pace(ctx, rate, func(n int) int {
		now := time.Now()
		batch := make([]data.NewEvent, n)
		for i := range batch {
			batch[i] = gen.Next(now)
		}
		op, cancel := simOp(ctx)
		defer cancel()
		res, err := s.ReportEvents(op, batch)
		if err != nil {
			st.fail(fmt.Errorf("report: %w", err))
			return n
		}
		for _, r := range res {
			if r.Err != nil {
				st.fail(fmt.Errorf("report: %w", r.Err))
			} else {
				st.reported.Add(1)
			}
		}
		return n
	})
}

// simMinAge is how long an event shows a status before the simulation
// moves it on.
const simMinAge = time.Second

// simAdvance moves events one legal step at a time: it keeps a pool of
// the newest unfinished events (refreshed from the database every two
// seconds, or sooner when none is ready) and moves random ones of those
// that have shown their status for simMinAge, with the version it read as
// the precondition, as a user of the API would.
func simAdvance(ctx context.Context, s *data.Store, gen *demo.Reports, o simOptions, st *simStats) {
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0xadd))
	var pool []*data.Event
	var refreshed time.Time
	unfinished := []grid.EventStatus{grid.StatusReported, grid.StatusRegistered, grid.StatusDispatched, grid.StatusHandling,
		grid.StatusHandled, grid.StatusVerified, grid.StatusReturned}
	refresh := func() {
		refreshed = time.Now()
		op, cancel := simOp(ctx)
		defer cancel()
		page, err := s.ListEvents(op, data.EventFilter{Statuses: unfinished, Unit: o.District, Limit: 1000})
		if err != nil {
			st.fail(fmt.Errorf("list events: %w", err))
			return
		}
		pool = page.Events
	}
	pace(ctx, o.Advance, func(n int) int {
		if since := time.Since(refreshed); since > 2*time.Second || len(pool) == 0 && since > 300*time.Millisecond {
			refresh()
		}
		moved := 0
		for tries := 0; moved < n && len(pool) > 0 && tries < 4*n+8 && ctx.Err() == nil; tries++ {
			k := rng.IntN(len(pool))
			ev := pool[k]
			if time.Since(ev.UpdatedAt) < simMinAge {
				continue
			}
			drop := func() {
				pool[k] = pool[len(pool)-1]
				pool = pool[:len(pool)-1]
			}
			t, ok := gen.Move(ev)
			if !ok {
				drop()
				continue
			}
			t.IfVersion = ev.Version
			op, cancel := simOp(ctx)
			next, err := s.TransitionEvent(op, ev.Code, t)
			cancel()
			moved++
			var te *grid.TransitionError
			var se *data.StaleError
			switch {
			case err == nil:
				st.advanced.Add(1)
				if next.Status.Final() {
					drop()
				} else {
					pool[k] = next
				}
			case errors.As(err, &te), errors.As(err, &se), errors.Is(err, data.ErrNotFound):
				// Someone else moved it first: another simulation, a user.
				st.conflicts.Add(1)
				drop()
			default:
				st.fail(fmt.Errorf("move %s to %s: %w", ev.Code, t.To, err))
				drop()
			}
		}
		if moved < n && time.Since(refreshed) > 300*time.Millisecond {
			refreshed = time.Time{} // nothing ready: look again next tick
		}
		return n // moves that found nothing ready are skipped, not saved up
	})
}
