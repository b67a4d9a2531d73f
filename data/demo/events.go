package demo

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gridmap/data"
	"gridmap/grid"
)

// EventsResult says what Events wrote.
type EventsResult struct {
	Events       int
	LogEntries   int
	ByStatus     map[grid.EventStatus]int
	Overdue      int // open and past the deadline at now
	HandledLate  int // first handled after the deadline
	Returned     int // returned at least once
	Redispatched int // sent on to another department at least once
	Seconds      float64
}

// Events writes n events reported over the 30 days before now, each
// walked through the workflow with realistic delays up to now, with its
// log: old events mostly closed, some rejected, returned or re-dispatched,
// recent ones anywhere on the way, a share of the open ones overdue. The
// same seed and now give the same events on the same city. They are
// written as history (Store.WritePastEvents): codes continue each
// district's daily numbering, no feed rows.
func Events(ctx context.Context, s *data.Store, n int, seed uint64, now time.Time) (EventsResult, error) {
	start := time.Now()
	res := EventsResult{ByStatus: map[grid.EventStatus]int{}}
	if n <= 0 {
		return res, nil
	}
	g, err := NewReports(ctx, s, seed, "")
	if err != nil {
		return res, err
	}
	now = now.Truncate(time.Second)
	evs, err := g.history(n, now)
	if err != nil {
		return res, err
	}
	codes, err := s.WritePastEvents(ctx, evs)
	if err != nil {
		return res, err
	}
	// The events still suspended at now: when and from where (lifting
	// returns there).
	var suspended []string
	for i := range evs {
		if evs[i].Log[len(evs[i].Log)-1].To == grid.StatusSuspended {
			suspended = append(suspended, codes[i])
		}
	}
	if len(suspended) > 0 {
		if _, err := s.Pool.Exec(ctx, `UPDATE events e SET suspended_at = l.at, suspended_from = l.from_status
			FROM event_log l WHERE e.code = ANY($1) AND l.event_code = e.code AND l.to_status = 'suspended'
			  AND l.n = (SELECT max(n) FROM event_log x WHERE x.event_code = e.code)`, suspended); err != nil {
			return res, fmt.Errorf("suspended events: %w", err)
		}
	}
	for i := range evs {
		res.count(&evs[i], now)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// history draws n events reported in the historyDays before now, each
// walked through the workflow up to now.
func (g *Reports) history(n int, now time.Time) ([]data.PastEvent, error) {
	evs := make([]data.PastEvent, n)
	for i := range evs {
		t0 := g.reportTime(now)
		ne := g.report(t0)
		class := g.cfg.Classes[ne.Class]
		deadline, err := g.cfg.Calendar.Deadline(t0, class.Limit)
		if err != nil {
			return nil, fmt.Errorf("deadline of class %s: %w", class.Code, err)
		}
		evs[i] = data.PastEvent{NewEvent: ne, ReportedAt: t0, Deadline: deadline, Department: class.Department}
		g.life(&evs[i], class, now)
	}
	return evs, nil
}

// count adds e, as it stands at now, to the result.
func (r *EventsResult) count(e *data.PastEvent, now time.Time) {
	last := e.Log[len(e.Log)-1]
	r.Events++
	r.LogEntries += len(e.Log)
	r.ByStatus[last.To]++
	if grid.Overdue(last.To, e.Deadline, now) {
		r.Overdue++
	}
	var handled, returned, redispatched bool
	for _, l := range e.Log {
		if l.To == grid.StatusHandled && !handled {
			handled = true
			if l.At.After(e.Deadline) {
				r.HandledLate++
			}
		}
		returned = returned || l.To == grid.StatusReturned
		redispatched = redispatched || l.To == grid.StatusDispatched && (l.From == grid.StatusDispatched || l.From == grid.StatusHandling)
	}
	if returned {
		r.Returned++
	}
	if redispatched {
		r.Redispatched++
	}
}

// historyDays is how far back the history goes.
const historyDays = 30

// reportTime draws a report time in the historyDays before now: more the
// more recent (an exponential with a 20-day scale), mostly by day, fewer
// on rest days.
func (g *Reports) reportTime(now time.Time) time.Time {
	loc := g.cfg.Calendar.Location()
	const scale = 20.0
	from := now.Add(-historyDays * 24 * time.Hour)
	for {
		age := -scale * math.Log(1-g.rng.Float64()*(1-math.Exp(-historyDays/scale)))
		day := now.Add(-time.Duration(age * float64(24*time.Hour))).In(loc)
		if !g.cfg.Calendar.IsWorkday(day) && g.rng.Float64() < 0.3 {
			continue
		}
		h := pickWeighted(g.rng, hourWeights[:])
		t := time.Date(day.Year(), day.Month(), day.Day(), h, g.rng.IntN(60), g.rng.IntN(60), 0, loc)
		if t.After(from) && !t.After(now) {
			return t
		}
	}
}

// addWorking is the instant when d of working time has passed after t
// (Calendar.Deadline with a duration: an instant on a period's end stays
// there).
func (g *Reports) addWorking(t time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return t
	}
	cal := g.cfg.Calendar
	loc := cal.Location()
	t = t.In(loc)
	y, m, dd := t.Date()
	for i, idle := 0, 0; idle < 3660; i++ {
		day := time.Date(y, m, dd+i, 12, 0, 0, 0, loc)
		if !cal.IsWorkday(day) {
			idle++
			continue
		}
		idle = 0
		for _, p := range g.periods {
			from := time.Date(y, m, dd+i, 0, p.Start, 0, 0, loc)
			end := time.Date(y, m, dd+i, 0, p.End, 0, 0, loc)
			if !end.After(t) {
				continue
			}
			if from.Before(t) {
				from = t
			}
			if avail := end.Sub(from); d <= avail {
				return from.Add(d)
			} else {
				d -= avail
			}
		}
	}
	return t
}

// uniformDur is a duration uniformly in [a, b).
func (g *Reports) uniformDur(a, b time.Duration) time.Duration {
	return a + time.Duration(g.rng.Float64()*float64(b-a))
}

// centreDelay is when the command centre (staffed day and night, thinly
// at night) gets to an item that arrived at t: after a log-normal wait of
// the given median by day, first thing in the morning at night; urgent
// items within minutes at any hour.
func (g *Reports) centreDelay(t time.Time, median time.Duration, urgent bool) time.Time {
	if urgent {
		return t.Add(time.Duration(math.Min(30, 4*math.Exp(0.6*g.rng.NormFloat64())) * float64(time.Minute)))
	}
	lt := t.In(g.cfg.Calendar.Location())
	if h := lt.Hour(); h >= 22 || h < 8 {
		day := lt
		if h >= 22 {
			day = lt.AddDate(0, 0, 1)
		}
		morning := time.Date(day.Year(), day.Month(), day.Day(), 8, 0, 0, 0, lt.Location())
		return morning.Add(g.uniformDur(0, 90*time.Minute))
	}
	return t.Add(time.Duration(math.Min(float64(6*time.Hour), float64(median)*math.Exp(g.rng.NormFloat64()))))
}

// limit is a class's limit as working time.
func (g *Reports) limit(c grid.EventClass) time.Duration {
	if c.Limit.Unit == grid.WorkingDays {
		return time.Duration(c.Limit.Amount) * g.workday
	}
	return time.Duration(c.Limit.Amount) * time.Hour
}

// walk is an event's log being written, up to now.
type walk struct {
	e    *data.PastEvent
	now  time.Time
	t    time.Time // when the last entry was made
	done bool      // a step fell after now: it and the rest have not happened yet
}

// add appends a move at at (30 s after the last entry at the earliest),
// unless at is after now.
func (w *walk) add(to grid.EventStatus, at time.Time, actor, note, dept string) {
	if w.done {
		return
	}
	at = at.Truncate(time.Second)
	if floor := w.t.Add(30 * time.Second); at.Before(floor) {
		at = floor
	}
	if at.After(w.now) {
		w.done = true
		return
	}
	log := w.e.Log
	log = append(log, data.LogEntry{N: len(log) + 1, From: log[len(log)-1].To, To: to, Actor: actor, Note: note, Department: dept, At: at})
	w.e.Log = log
	if dept != "" {
		w.e.Department = dept
	}
	w.t = at
}

// life walks e, of class, through the workflow from its report, keeping
// the steps up to now.
func (g *Reports) life(e *data.PastEvent, class grid.EventClass, now time.Time) {
	e.Log = []data.LogEntry{{N: 1, To: grid.StatusReported, Actor: e.ReportActor(), At: e.ReportedAt}}
	w := &walk{e: e, now: now, t: e.ReportedAt}
	urgent := class.Major == "04" || class.Limit.Unit == grid.WorkingHours && class.Limit.Amount <= 1
	limit := g.limit(class)
	dept := class.Department
	if !g.register(w, dept, limit, urgent) {
		return
	}
	target := g.handlingTarget(e.ReportedAt, limit)
	dept, target = g.misroute(w, dept, limit, target)
	g.handle(w, class.Code, dept, target)
	g.verify(w, class.Code, dept)
	w.add(grid.StatusClosed, g.addWorking(w.t, g.uniformDur(5*time.Minute, 2*time.Hour)), g.clerk(), "核查通过，结案", "")
}

// register is the command centre's part: it rejects the report (false)
// or registers it and dispatches it to dept. It takes short limits first:
// its median waits are a share of the limit, within bounds.
func (g *Reports) register(w *walk, dept string, limit time.Duration, urgent bool) bool {
	registerWait := min(max(limit*15/100, 8*time.Minute), 30*time.Minute)
	dispatchWait := min(max(limit/10, 5*time.Minute), 20*time.Minute)
	if g.rng.Float64() < 0.05 {
		w.add(grid.StatusRejected, g.centreDelay(w.t, registerWait, urgent), g.clerk(), oneOf(g.rng, rejectNotes), "")
		return false
	}
	w.add(grid.StatusRegistered, g.centreDelay(w.t, registerWait, urgent), g.clerk(), "符合立案条件，予以立案", "")
	w.add(grid.StatusDispatched, g.centreDelay(w.t, dispatchWait, urgent), g.clerk(), "派遣至"+g.deptName(dept), dept)
	return true
}

// handlingTarget is when the department reports it handled, as a share
// of the limit from the report: mostly in time, some late, a few long
// stuck.
func (g *Reports) handlingTarget(reported time.Time, limit time.Duration) time.Time {
	var f float64
	switch r := g.rng.Float64(); {
	case r < 0.025:
		f = 1.05 + g.rng.Float64()*0.55
	case r < 0.03:
		f = 2 + g.rng.Float64()*2
	default:
		f = 0.15 + 0.82*math.Pow(g.rng.Float64(), 0.7)
	}
	return g.addWorking(reported, time.Duration(f*float64(limit)))
}

// misroute sends a few events on from dept (sometimes after it started
// handling them) to another department, which then needs longer: it
// returns the department that handles the event and the new target.
func (g *Reports) misroute(w *walk, dept string, limit time.Duration, target time.Time) (string, time.Time) {
	if g.rng.Float64() >= 0.045 {
		return dept, target
	}
	if g.rng.Float64() < 0.3 {
		w.add(grid.StatusHandling, g.addWorking(w.t, g.uniformDur(5*time.Minute, limit/5+10*time.Minute)), g.staff(dept), oneOf(g.rng, handlingNotes), "")
	}
	other := g.otherDepartment(dept)
	if other == "" {
		return dept, target
	}
	w.add(grid.StatusDispatched, g.addWorking(w.t, g.uniformDur(10*time.Minute, limit/4+20*time.Minute)), g.clerk(),
		"原部门反馈非本部门职责，改派"+g.deptName(other), other)
	if later := g.addWorking(w.t, g.uniformDur(limit/5, limit/2)+30*time.Minute); later.After(target) {
		target = later
	}
	return other, target
}

// handle is dept's part: it starts on the event some way to the target
// and reports it handled at the target.
func (g *Reports) handle(w *walk, class, dept string, target time.Time) {
	wt := g.cfg.Calendar.WorkingTime(w.t, target)
	w.add(grid.StatusHandling, g.addWorking(w.t, time.Duration((0.1+0.35*g.rng.Float64())*float64(wt))), g.staff(dept), oneOf(g.rng, handlingNotes), "")
	target = g.suspend(w, target)
	if floor := g.addWorking(w.t, g.uniformDur(5*time.Minute, 20*time.Minute)); target.Before(floor) {
		target = floor
	}
	w.add(grid.StatusHandled, target, g.staff(dept), g.handledNote(class), "")
}

// suspend stops a few events' clocks (挂起) for a while: the deadline and
// the target move on by the working time they stood still. An event still
// suspended at now stays so. Its draws come from a generator of the
// event's own (seeded by its report time), so that the city's other
// draws, and so the rest of the demo, stay as they were without it.
func (g *Reports) suspend(w *walk, target time.Time) time.Time {
	r := rand.New(rand.NewPCG(uint64(w.e.ReportedAt.UnixNano()), 0x5e5))
	between := func(a, b time.Duration) time.Duration { return a + time.Duration(r.Float64()*float64(b-a)) }
	if r.Float64() >= 0.02 || w.done {
		return target
	}
	w.add(grid.StatusSuspended, g.addWorking(w.t, between(30*time.Minute, 4*time.Hour)), g.clerk(), oneOf(r, suspendNotes), "")
	if w.done {
		return target
	}
	from := w.t
	w.add(grid.StatusHandling, g.addWorking(w.t, between(4*time.Hour, 24*time.Hour)), g.clerk(), "挂起解除，恢复处置", "")
	if w.done {
		return target
	}
	stood := g.cfg.Calendar.WorkingTime(from, w.t)
	if d, err := g.cfg.Calendar.AddWorkingTime(w.e.Deadline, stood); err == nil {
		w.e.Deadline = d
	}
	return g.addWorking(target, stood)
}

// verify checks the handling on the spot: a few events are returned to
// dept and handled again, fewer each round, until one is verified.
func (g *Reports) verify(w *walk, class, dept string) {
	gridCode := w.e.Location.Grid.Code
	for round := 0; ; round++ {
		verifyAt := g.addWorking(w.t, g.uniformDur(20*time.Minute, 5*time.Hour))
		if p := []float64{0.05, 0.02, 0}[min(round, 2)]; g.rng.Float64() >= p {
			w.add(grid.StatusVerified, verifyAt, g.verifier(gridCode), oneOf(g.rng, verifyNotes), "")
			return
		}
		w.add(grid.StatusReturned, verifyAt, g.verifier(gridCode), oneOf(g.rng, returnNotes), "")
		w.add(grid.StatusDispatched, g.addWorking(w.t, g.uniformDur(time.Hour, 6*time.Hour)), g.clerk(), "重新派遣至"+g.deptName(dept), dept)
		w.add(grid.StatusHandling, g.addWorking(w.t, g.uniformDur(10*time.Minute, 2*time.Hour)), g.staff(dept), oneOf(g.rng, handlingNotes), "")
		w.add(grid.StatusHandled, g.addWorking(w.t, g.uniformDur(30*time.Minute, 4*time.Hour)), g.staff(dept), g.handledNote(class), "")
	}
}
