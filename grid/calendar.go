package grid

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gridmap/geo"

	// The calendar defaults to Asia/Shanghai; embedding the zone database
	// keeps that working on machines and containers without tzdata.
	_ "time/tzdata"
)

// DayKind overrides the weekday rule for one date: a public holiday on a
// weekday, or a makeup working day (调休) on a weekend.
type DayKind string

const (
	Holiday DayKind = "holiday"
	Workday DayKind = "workday"
)

// Period is a stretch of working time on a working day, in minutes after
// midnight (local time of the calendar), Start < End, End at most 24*60.
type Period struct{ Start, End int }

// DefaultPeriods are the office hours of a Chinese government department:
// 09:00–12:00 and 14:00–18:00, 7 hours with a lunch break.
var DefaultPeriods = []Period{{9 * 60, 12 * 60}, {14 * 60, 18 * 60}}

const dayMinutes = 24 * 60

// ParsePeriods reads periods written as "09:00-12:00,14:00-18:00". The
// periods may come in any order; they are returned sorted and must not
// overlap (touching is fine). Errors name the offending part.
func ParsePeriods(s string) ([]Period, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("working periods: none given; write e.g. 09:00-12:00,14:00-18:00")
	}
	var ps []Period
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		a, b, ok := strings.Cut(part, "-")
		if !ok {
			return nil, fmt.Errorf("working period %q: write HH:MM-HH:MM", geo.Excerpt(part, geo.MaxExcerpt))
		}
		start, err := parseClock(strings.TrimSpace(a))
		if err != nil {
			return nil, fmt.Errorf("working period %q: start: %v", geo.Excerpt(part, geo.MaxExcerpt), err)
		}
		end, err := parseClock(strings.TrimSpace(b))
		if err != nil {
			return nil, fmt.Errorf("working period %q: end: %v", geo.Excerpt(part, geo.MaxExcerpt), err)
		}
		ps = append(ps, Period{start, end})
	}
	slices.SortFunc(ps, func(x, y Period) int { return x.Start - y.Start })
	if err := checkPeriods(ps); err != nil {
		return nil, err
	}
	return ps, nil
}

// parseClock reads H:MM or HH:MM, 00:00–24:00.
func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || !digitsOnly.MatchString(h) || !digitsOnly.MatchString(m) {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", geo.Excerpt(s, geo.MaxExcerpt))
	}
	hh, _ := strconv.Atoi(h)
	mm, _ := strconv.Atoi(m)
	if hh > 24 || mm > 59 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is outside 00:00–24:00", s)
	}
	return hh*60 + mm, nil
}

// checkPeriods checks sorted periods.
func checkPeriods(ps []Period) error {
	if len(ps) == 0 {
		return errors.New("working periods: at least one is needed")
	}
	for i, p := range ps {
		if p.Start < 0 || p.End > dayMinutes {
			return fmt.Errorf("working period %s: outside 00:00–24:00", formatPeriod(p))
		}
		if p.Start >= p.End {
			return fmt.Errorf("working period %s: the start must come before the end", formatPeriod(p))
		}
		if i > 0 && p.Start < ps[i-1].End {
			return fmt.Errorf("working period %s overlaps %s", formatPeriod(p), formatPeriod(ps[i-1]))
		}
	}
	return nil
}

// FormatPeriods writes periods the way ParsePeriods reads them.
func FormatPeriods(p []Period) string {
	parts := make([]string, len(p))
	for i, x := range p {
		parts[i] = formatPeriod(x)
	}
	return strings.Join(parts, ",")
}

func formatPeriod(p Period) string { return formatClock(p.Start) + "-" + formatClock(p.End) }

func formatClock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// date is a calendar date, free of any time zone.
type date struct {
	y int
	m time.Month
	d int
}

func dateOf(t time.Time) date {
	y, m, d := t.Date()
	return date{y, m, d}
}

func (d date) addDays(n int) date { return dateOf(time.Date(d.y, d.m, d.d+n, 0, 0, 0, 0, time.UTC)) }

func (d date) weekday() time.Weekday { return time.Date(d.y, d.m, d.d, 0, 0, 0, 0, time.UTC).Weekday() }

// Calendar is a city's working calendar: which days are working days and
// which hours of them count, so deadlines in working time (DESIGN §6) can
// be turned into instants. Monday to Friday are working days unless a date
// override says otherwise; the State Council's holiday schedule, with its
// makeup weekend days, is data loaded into the overrides each year.
type Calendar struct {
	loc       *time.Location
	periods   []Period
	overrides map[date]DayKind
}

// defaultLocation is the calendar's location when none is given.
const defaultLocation = "Asia/Shanghai"

// maxIdleDays bounds the search for the next working day, so a calendar
// that declares every day a holiday fails instead of looping forever.
const maxIdleDays = 3660

// NewCalendar builds a calendar. A nil loc means Asia/Shanghai, nil
// periods mean DefaultPeriods; overrides are keyed by "YYYY-MM-DD". The
// calendar keeps its own copies.
func NewCalendar(loc *time.Location, periods []Period, overrides map[string]DayKind) (*Calendar, error) {
	if loc == nil {
		var err error
		if loc, err = time.LoadLocation(defaultLocation); err != nil {
			return nil, fmt.Errorf("calendar: %w", err)
		}
	}
	if periods == nil {
		periods = DefaultPeriods
	}
	periods = slices.Clone(periods)
	slices.SortFunc(periods, func(x, y Period) int { return x.Start - y.Start })
	if err := checkPeriods(periods); err != nil {
		return nil, fmt.Errorf("calendar: %w", err)
	}
	c := &Calendar{loc: loc, periods: periods, overrides: make(map[date]DayKind, len(overrides))}
	for k, v := range overrides {
		t, err := time.Parse(time.DateOnly, k)
		if err != nil {
			return nil, fmt.Errorf("calendar: override date %q: write YYYY-MM-DD", geo.Excerpt(k, geo.MaxExcerpt))
		}
		if v != Holiday && v != Workday {
			return nil, fmt.Errorf("calendar: override %s: kind %q: use %s or %s", k, geo.Excerpt(string(v), geo.MaxExcerpt), Holiday, Workday)
		}
		c.overrides[dateOf(t)] = v
	}
	return c, nil
}

// Location is the time zone whose dates and clock the calendar follows.
func (c *Calendar) Location() *time.Location { return c.loc }

// Periods are the working periods of a working day (a copy).
func (c *Calendar) Periods() []Period { return slices.Clone(c.periods) }

// IsWorkday reports whether t's date, in the calendar's location, is a
// working day.
func (c *Calendar) IsWorkday(t time.Time) bool { return c.workday(dateOf(t.In(c.loc))) }

func (c *Calendar) workday(d date) bool {
	if k, ok := c.overrides[d]; ok {
		return k == Workday
	}
	wd := d.weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// at is the instant of minute m of date d in the calendar's location.
// Minute 24*60 is the next midnight; time.Date resolves clock changes.
func (c *Calendar) at(d date, m int) time.Time {
	return time.Date(d.y, d.m, d.d, 0, m, 0, 0, c.loc)
}

// Deadline is when a limit that starts at start runs out.
//
// Working hours: the instant at which Amount hours of working time have
// passed since start. A start outside working time counts from the next
// working period; a deadline that falls exactly on a period's end stays
// there rather than jumping to the next period's start.
//
// Working days: the end of the last working period of the Amount-th working
// day after start's date. The start day never counts, however early the
// event arrived: "within N working days" counts from the next working day.
//
// The result is in the calendar's location. A calendar with no working day
// in ten years is an error.
func (c *Calendar) Deadline(start time.Time, l Limit) (time.Time, error) {
	if err := l.Validate(); err != nil {
		return time.Time{}, err
	}
	start = start.In(c.loc)
	d := dateOf(start)
	idle := 0
	noWorkday := func() error {
		return fmt.Errorf("calendar: no working day within %d days of %s", maxIdleDays, start.Format(time.DateOnly))
	}
	switch l.Unit {
	case WorkingHours:
		remaining := time.Duration(l.Amount) * time.Hour
		for ; ; d = d.addDays(1) {
			if !c.workday(d) {
				if idle++; idle > maxIdleDays {
					return time.Time{}, noWorkday()
				}
				continue
			}
			idle = 0
			for _, p := range c.periods {
				from, end := c.at(d, p.Start), c.at(d, p.End)
				if !end.After(start) {
					continue
				}
				if from.Before(start) {
					from = start
				}
				avail := end.Sub(from)
				if remaining <= avail {
					return from.Add(remaining), nil
				}
				remaining -= avail
			}
		}
	default: // WorkingDays
		last := c.periods[len(c.periods)-1].End
		for n := 0; ; {
			d = d.addDays(1)
			if !c.workday(d) {
				if idle++; idle > maxIdleDays {
					return time.Time{}, noWorkday()
				}
				continue
			}
			idle = 0
			if n++; n == l.Amount {
				return c.at(d, last), nil
			}
		}
	}
}

// WorkingTime is the working time between from and to (0 when to is not
// after from): what the deadline clock has consumed, e.g. for statistics
// of how fast departments handle events.
func (c *Calendar) WorkingTime(from, to time.Time) time.Duration {
	if !to.After(from) {
		return 0
	}
	from, to = from.In(c.loc), to.In(c.loc)
	var sum time.Duration
	for d, last := dateOf(from), dateOf(to); ; d = d.addDays(1) {
		if c.workday(d) {
			for _, p := range c.periods {
				a, b := c.at(d, p.Start), c.at(d, p.End)
				if a.Before(from) {
					a = from
				}
				if b.After(to) {
					b = to
				}
				if b.After(a) {
					sum += b.Sub(a)
				}
			}
		}
		if d == last {
			return sum
		}
	}
}

// AddWorkingTime is the instant at which d of working time has passed
// since start (start itself when d is not positive): where a deadline
// moves when its clock stood still for d of working time (a suspension).
func (c *Calendar) AddWorkingTime(start time.Time, d time.Duration) (time.Time, error) {
	start = start.In(c.loc)
	if d <= 0 {
		return start, nil
	}
	idle := 0
	for day := dateOf(start); ; day = day.addDays(1) {
		if !c.workday(day) {
			if idle++; idle > maxIdleDays {
				return time.Time{}, fmt.Errorf("calendar: no working day within %d days of %s", maxIdleDays, start.Format(time.DateOnly))
			}
			continue
		}
		idle = 0
		for _, p := range c.periods {
			from, end := c.at(day, p.Start), c.at(day, p.End)
			if !end.After(start) {
				continue
			}
			if from.Before(start) {
				from = start
			}
			if avail := end.Sub(from); d <= avail {
				return from.Add(d), nil
			} else {
				d -= avail
			}
		}
	}
}
