package grid

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var shanghai = mustLoad("Asia/Shanghai")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// sh is an instant on Shanghai's clock.
func sh(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, shanghai)
}

// The State Council's schedules for Labour Day and National Day 2025:
// 5月1日至5日放假, 4月27日(周日)上班; 10月1日至8日放假, 9月28日(周日)、
// 10月11日(周六)上班.
var holidays2025 = map[string]DayKind{
	"2025-04-27": Workday,
	"2025-05-01": Holiday, "2025-05-02": Holiday, "2025-05-05": Holiday,
	"2025-09-28": Workday,
	"2025-10-01": Holiday, "2025-10-02": Holiday, "2025-10-03": Holiday,
	"2025-10-06": Holiday, "2025-10-07": Holiday, "2025-10-08": Holiday,
	"2025-10-11": Workday,
}

func testCalendar(t *testing.T) *Calendar {
	t.Helper()
	c, err := NewCalendar(nil, nil, holidays2025)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDeadline(t *testing.T) {
	c := testCalendar(t)
	hours := func(n int) Limit { return Limit{n, WorkingHours} }
	days := func(n int) Limit { return Limit{n, WorkingDays} }
	// 2026-03-02 is a Monday, 2026-03-06 a Friday.
	cases := []struct {
		name  string
		start time.Time
		limit Limit
		want  time.Time
	}{
		{"inside the morning period", sh(2026, 3, 2, 10, 0), hours(4), sh(2026, 3, 2, 16, 0)},
		{"inside the afternoon period", sh(2026, 3, 2, 15, 0), hours(4), sh(2026, 3, 3, 10, 0)},
		{"before opening", sh(2026, 3, 2, 7, 30), hours(4), sh(2026, 3, 2, 15, 0)},
		{"at midnight", sh(2026, 3, 2, 0, 0), hours(1), sh(2026, 3, 2, 10, 0)},
		{"lunch break", sh(2026, 3, 2, 12, 30), hours(4), sh(2026, 3, 2, 18, 0)},
		{"lunch break, overflowing to the next day", sh(2026, 3, 2, 13, 0), hours(5), sh(2026, 3, 3, 10, 0)},
		{"evening", sh(2026, 3, 2, 19, 0), hours(4), sh(2026, 3, 3, 15, 0)},
		{"late night", sh(2026, 3, 2, 23, 59), hours(1), sh(2026, 3, 3, 10, 0)},
		{"Friday afternoon over the weekend", sh(2026, 3, 6, 16, 0), hours(4), sh(2026, 3, 9, 11, 0)},
		{"Saturday", sh(2026, 3, 7, 10, 0), hours(4), sh(2026, 3, 9, 15, 0)},
		{"seconds are kept", sh(2026, 3, 2, 11, 59).Add(30 * time.Second), hours(1), sh(2026, 3, 2, 14, 59).Add(30 * time.Second)},
		{"a start in another zone is read on the calendar's clock", sh(2026, 3, 2, 10, 0).UTC(), hours(4), sh(2026, 3, 2, 16, 0)},

		// Exactly at a period's end: the deadline stays there.
		{"ends exactly at the morning close", sh(2026, 3, 2, 9, 0), hours(3), sh(2026, 3, 2, 12, 0)},
		{"ends exactly at the evening close", sh(2026, 3, 2, 14, 0), hours(4), sh(2026, 3, 2, 18, 0)},
		{"a full day from opening", sh(2026, 3, 2, 9, 0), hours(7), sh(2026, 3, 2, 18, 0)},
		{"a full day from the previous close", sh(2026, 3, 2, 18, 0), hours(7), sh(2026, 3, 3, 18, 0)},
		{"start at the morning close", sh(2026, 3, 2, 12, 0), hours(1), sh(2026, 3, 2, 15, 0)},
		{"Friday close, exactly a day", sh(2026, 3, 6, 18, 0), hours(7), sh(2026, 3, 9, 18, 0)},

		// 暴露垃圾: 4 working hours.
		{"4 working hours, reported mid-morning", sh(2026, 3, 4, 11, 0), hours(4), sh(2026, 3, 4, 17, 0)},

		// Holidays and makeup working days (调休).
		{"over the Labour Day holiday", sh(2025, 4, 30, 17, 0), hours(4), sh(2025, 5, 6, 12, 0)},
		{"from inside the holiday", sh(2025, 5, 2, 10, 0), hours(1), sh(2025, 5, 6, 10, 0)},
		{"onto a makeup Sunday", sh(2025, 4, 26, 10, 0), hours(2), sh(2025, 4, 27, 11, 0)},
		{"from a makeup Sunday", sh(2025, 4, 27, 17, 0), hours(2), sh(2025, 4, 28, 10, 0)},
		{"onto a makeup Saturday", sh(2025, 10, 10, 16, 0), hours(4), sh(2025, 10, 11, 11, 0)},
		{"over National Day", sh(2025, 9, 30, 16, 0), hours(10), sh(2025, 10, 10, 10, 0)},

		// Working days: the start day never counts.
		{"1 working day", sh(2026, 3, 2, 8, 0), days(1), sh(2026, 3, 3, 18, 0)},
		{"1 working day, reported in the evening", sh(2026, 3, 2, 23, 0), days(1), sh(2026, 3, 3, 18, 0)},
		{"1 working day from Friday", sh(2026, 3, 6, 10, 0), days(1), sh(2026, 3, 9, 18, 0)},
		{"1 working day from Saturday", sh(2026, 3, 7, 10, 0), days(1), sh(2026, 3, 9, 18, 0)},
		{"1 working day from Sunday", sh(2026, 3, 8, 10, 0), days(1), sh(2026, 3, 9, 18, 0)},
		{"5 working days is a week", sh(2026, 3, 4, 10, 0), days(5), sh(2026, 3, 11, 18, 0)},
		// 私搭乱建: 20 working days. 3–6, 9–13, 16–20, 23–27 March are 19
		// working days; the 20th is Monday 30 March.
		{"20 working days", sh(2026, 3, 2, 10, 0), days(20), sh(2026, 3, 30, 18, 0)},
		{"working days over National Day onto a makeup Saturday", sh(2025, 9, 30, 10, 0), days(3), sh(2025, 10, 11, 18, 0)},
		{"onto a makeup Sunday", sh(2025, 9, 27, 10, 0), days(1), sh(2025, 9, 28, 18, 0)},
		{"over Labour Day", sh(2025, 4, 30, 10, 0), days(1), sh(2025, 5, 6, 18, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Deadline(tc.start, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) {
				t.Errorf("Deadline(%v, %v) = %v, want %v", tc.start, tc.limit, got, tc.want)
			}
			if got.Location().String() != "Asia/Shanghai" {
				t.Errorf("deadline in %v, want the calendar's location", got.Location())
			}
		})
	}
}

func TestDeadlineOtherCalendars(t *testing.T) {
	// Round the clock, every weekday, in UTC: a day-end period ends at the
	// next midnight.
	c, err := NewCalendar(time.UTC, []Period{{0, dayMinutes}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fri := time.Date(2026, 3, 6, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		l    Limit
		want time.Time
	}{
		// Friday's period ends at midnight, and a deadline on a period's
		// end stays there.
		{Limit{4, WorkingHours}, time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC)},
		{Limit{5, WorkingHours}, time.Date(2026, 3, 9, 1, 0, 0, 0, time.UTC)},
		{Limit{1, WorkingDays}, time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)},
	} {
		got, err := c.Deadline(fri, tc.l)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%v: %v, %v; want %v", tc.l, got, err, tc.want)
		}
	}
	// A spring-forward Sunday made a working day in New York has 23 hours.
	ny := mustLoad("America/New_York")
	c, err = NewCalendar(ny, []Period{{0, dayMinutes}}, map[string]DayKind{"2026-03-08": Workday})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 8, 0, 0, 0, 0, ny)
	got, err := c.Deadline(start, Limit{24, WorkingHours})
	if want := time.Date(2026, 3, 9, 1, 0, 0, 0, ny); err != nil || !got.Equal(want) {
		t.Errorf("over the clock change: %v, %v; want %v", got, err, want)
	}
}

func TestDeadlineLarge(t *testing.T) {
	c := testCalendar(t)
	start := sh(2026, 3, 2, 10, 0)
	got, err := c.Deadline(start, Limit{10000, WorkingHours})
	if err != nil {
		t.Fatal(err)
	}
	if wt := c.WorkingTime(start, got); wt != 10000*time.Hour {
		t.Errorf("WorkingTime to the 10000-hour deadline %v = %v", got, wt)
	}
	// 10000 h / 7 h a day ≈ 1429 working days ≈ 5.5 years.
	if got.Year() != 2031 {
		t.Errorf("10000 working hours from %v end %v", start, got)
	}
	got, err = c.Deadline(start, Limit{10000, WorkingDays})
	if err != nil {
		t.Fatal(err)
	}
	if got.Year() < 2064 || got.Year() > 2066 || got.Hour() != 18 || !c.IsWorkday(got) {
		t.Errorf("10000 working days from %v end %v", start, got)
	}
}

// TestWorkingTimeInvertsDeadline checks, for starts every 37 minutes over
// four weeks around National Day 2025, that the working time between a
// start and its deadline is exactly the limit, and that the deadline lies
// inside working time or at a period's end.
func TestWorkingTimeInvertsDeadline(t *testing.T) {
	c := testCalendar(t)
	first := sh(2025, 9, 24, 0, 0)
	n := 0
	for start := first; start.Before(first.AddDate(0, 0, 28)); start = start.Add(37 * time.Minute) {
		for _, h := range []int{1, 2, 3, 4, 7, 8, 25, 100} {
			l := Limit{h, WorkingHours}
			d, err := c.Deadline(start, l)
			if err != nil {
				t.Fatal(err)
			}
			n++
			if wt := c.WorkingTime(start, d); wt != time.Duration(h)*time.Hour {
				t.Fatalf("start %v, %v: deadline %v, WorkingTime %v", start, l, d, wt)
			}
			// No working time is skipped: a moment earlier, a little is missing.
			if wt := c.WorkingTime(start, d.Add(-time.Second)); wt != time.Duration(h)*time.Hour-time.Second {
				t.Fatalf("start %v, %v: deadline %v is not the first such instant", start, l, d)
			}
			if !c.IsWorkday(d) || !inOrAtEndOfPeriod(c, d) {
				t.Fatalf("start %v, %v: deadline %v is outside working time", start, l, d)
			}
		}
	}
	if n < 8000 {
		t.Errorf("only %d cases", n)
	}

	// The same with round-the-clock working days over New York's clock changes.
	ny := mustLoad("America/New_York")
	c, err := NewCalendar(ny, []Period{{0, dayMinutes}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, first := range []time.Time{time.Date(2026, 3, 5, 0, 0, 0, 0, ny), time.Date(2026, 10, 29, 0, 0, 0, 0, ny)} {
		for start := first; start.Before(first.AddDate(0, 0, 7)); start = start.Add(97 * time.Minute) {
			for _, h := range []int{1, 30, 100} {
				d, err := c.Deadline(start, Limit{h, WorkingHours})
				if err != nil {
					t.Fatal(err)
				}
				if wt := c.WorkingTime(start, d); wt != time.Duration(h)*time.Hour {
					t.Fatalf("New York, start %v, %d h: deadline %v, WorkingTime %v", start, h, d, wt)
				}
			}
		}
	}
}

func inOrAtEndOfPeriod(c *Calendar, t time.Time) bool {
	t = t.In(c.Location())
	s := t.Hour()*3600 + t.Minute()*60 + t.Second()
	for _, p := range c.Periods() {
		if s > p.Start*60 && s <= p.End*60 {
			return true
		}
	}
	return false
}

func TestWorkingTime(t *testing.T) {
	c := testCalendar(t)
	cases := []struct {
		name     string
		from, to time.Time
		want     time.Duration
	}{
		{"inside a period", sh(2026, 3, 2, 9, 30), sh(2026, 3, 2, 11, 0), 90 * time.Minute},
		{"over lunch", sh(2026, 3, 2, 10, 0), sh(2026, 3, 2, 16, 0), 4 * time.Hour},
		{"lunch only", sh(2026, 3, 2, 12, 10), sh(2026, 3, 2, 13, 50), 0},
		{"a whole day", sh(2026, 3, 2, 0, 0), sh(2026, 3, 3, 0, 0), 7 * time.Hour},
		{"a whole week", sh(2026, 3, 2, 0, 0), sh(2026, 3, 9, 0, 0), 35 * time.Hour},
		{"over the weekend", sh(2026, 3, 6, 17, 0), sh(2026, 3, 9, 10, 0), 2 * time.Hour},
		{"a weekend", sh(2026, 3, 7, 0, 0), sh(2026, 3, 9, 0, 0), 0},
		{"a makeup Saturday", sh(2025, 10, 11, 0, 0), sh(2025, 10, 12, 0, 0), 7 * time.Hour},
		{"the National Day week", sh(2025, 10, 1, 0, 0), sh(2025, 10, 9, 0, 0), 0},
		{"from another zone", sh(2026, 3, 2, 10, 0).UTC(), sh(2026, 3, 2, 16, 0).In(time.FixedZone("X", -5*3600)), 4 * time.Hour},
		{"equal", sh(2026, 3, 2, 10, 0), sh(2026, 3, 2, 10, 0), 0},
		{"backwards", sh(2026, 3, 2, 16, 0), sh(2026, 3, 2, 10, 0), 0},
	}
	for _, tc := range cases {
		if got := c.WorkingTime(tc.from, tc.to); got != tc.want {
			t.Errorf("%s: WorkingTime = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestDeadlineNoWorkday(t *testing.T) {
	start := sh(2026, 3, 2, 10, 0)
	all := map[string]DayKind{}
	for d := start.AddDate(0, 0, -1); d.Before(start.AddDate(11, 0, 0)); d = d.AddDate(0, 0, 1) {
		all[d.Format(time.DateOnly)] = Holiday
	}
	c, err := NewCalendar(nil, nil, all)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []Limit{{1, WorkingHours}, {1, WorkingDays}} {
		if d, err := c.Deadline(start, l); err == nil || !strings.Contains(err.Error(), "no working day") {
			t.Errorf("%v on an all-holiday calendar: %v, %v", l, d, err)
		}
	}
	// Nine years of holidays end in a working day: far, but found.
	delete(all, start.AddDate(9, 0, 0).Format(time.DateOnly))
	c, err = NewCalendar(nil, nil, all)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2035, 3, 2, 10, 0, 0, 0, shanghai)
	if d, err := c.Deadline(start, Limit{1, WorkingHours}); err != nil || !d.Equal(want) {
		t.Errorf("after nine years: %v, %v; want %v", d, err, want)
	}
	if _, err := c.Deadline(start, Limit{0, WorkingHours}); err == nil {
		t.Error("an invalid limit is accepted")
	}
}

func TestIsWorkday(t *testing.T) {
	c := testCalendar(t)
	cases := []struct {
		t    time.Time
		want bool
	}{
		{sh(2026, 3, 2, 10, 0), true},   // Monday
		{sh(2026, 3, 6, 23, 59), true},  // Friday
		{sh(2026, 3, 7, 10, 0), false},  // Saturday
		{sh(2026, 3, 8, 0, 0), false},   // Sunday
		{sh(2025, 5, 1, 10, 0), false},  // Labour Day, a Thursday
		{sh(2025, 5, 5, 10, 0), false},  // holiday Monday
		{sh(2025, 4, 27, 10, 0), true},  // makeup Sunday
		{sh(2025, 10, 11, 10, 0), true}, // makeup Saturday
		{sh(2025, 10, 12, 10, 0), false},
		// Friday 20:00 UTC is already Saturday in Shanghai.
		{time.Date(2026, 3, 6, 20, 0, 0, 0, time.UTC), false},
		// Sunday 17:00 UTC is Monday in Shanghai.
		{time.Date(2026, 3, 8, 17, 0, 0, 0, time.UTC), true},
	}
	for _, tc := range cases {
		if got := c.IsWorkday(tc.t); got != tc.want {
			t.Errorf("IsWorkday(%v) = %v", tc.t, got)
		}
	}
}

func TestNewCalendar(t *testing.T) {
	c, err := NewCalendar(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Location().String() != "Asia/Shanghai" {
		t.Errorf("default location %v", c.Location())
	}
	if !slices.Equal(c.Periods(), DefaultPeriods) || FormatPeriods(c.Periods()) != "09:00-12:00,14:00-18:00" {
		t.Errorf("default periods %v", c.Periods())
	}
	c.Periods()[0].Start = 0
	if c.Periods()[0].Start != 9*60 {
		t.Error("Periods shares its slice")
	}
	// The calendar keeps copies of what it is given.
	ps := []Period{{8 * 60, 12 * 60}}
	ov := map[string]DayKind{"2026-03-02": Holiday}
	c, err = NewCalendar(time.UTC, ps, ov)
	if err != nil {
		t.Fatal(err)
	}
	ps[0].End = 23 * 60
	ov["2026-03-02"] = Workday
	if c.Periods()[0].End != 12*60 || c.IsWorkday(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)) {
		t.Error("the calendar shares its inputs")
	}

	bad := []struct {
		name      string
		periods   []Period
		overrides map[string]DayKind
		msg       string
	}{
		{"no periods", []Period{}, nil, "at least one"},
		{"empty period", []Period{{600, 600}}, nil, "10:00-10:00"},
		{"overlap", []Period{{540, 720}, {700, 800}}, nil, "overlaps"},
		{"past midnight", []Period{{1380, 1500}}, nil, "outside"},
		{"negative", []Period{{-60, 60}}, nil, "outside"},
		{"bad date", nil, map[string]DayKind{"2026/03/02": Holiday}, "2026/03/02"},
		{"impossible date", nil, map[string]DayKind{"2026-02-30": Holiday}, "2026-02-30"},
		{"bad kind", nil, map[string]DayKind{"2026-03-02": "half"}, `"half"`},
	}
	for _, tc := range bad {
		if _, err := NewCalendar(nil, tc.periods, tc.overrides); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.msg)
		}
	}
	// Unsorted periods are sorted.
	c, err = NewCalendar(nil, []Period{{840, 1080}, {540, 720}}, nil)
	if err != nil || !slices.Equal(c.Periods(), DefaultPeriods) {
		t.Errorf("unsorted periods: %v, %v", c, err)
	}
}

func TestParsePeriods(t *testing.T) {
	good := []struct {
		in   string
		want []Period
		out  string
	}{
		{"09:00-12:00,14:00-18:00", DefaultPeriods, "09:00-12:00,14:00-18:00"},
		{" 14:00-18:00 , 9:00 - 12:00 ", DefaultPeriods, "09:00-12:00,14:00-18:00"},
		{"00:00-24:00", []Period{{0, 1440}}, "00:00-24:00"},
		{"08:30-12:00,12:00-17:30", []Period{{510, 720}, {720, 1050}}, "08:30-12:00,12:00-17:30"},
		{"08:00-11:30,13:30-17:00,19:00-21:00", []Period{{480, 690}, {810, 1020}, {1140, 1260}}, "08:00-11:30,13:30-17:00,19:00-21:00"},
	}
	for _, tc := range good {
		got, err := ParsePeriods(tc.in)
		if err != nil || !slices.Equal(got, tc.want) || FormatPeriods(got) != tc.out {
			t.Errorf("ParsePeriods(%q) = %v, %v", tc.in, got, err)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "none given"},
		{"  ", "none given"},
		{"09:00", `"09:00"`},
		{"09:00-12:00,", `""`},
		{"09:00-12:00,,14:00-18:00", `""`},
		{"9-12", `"9"`},
		{"09:00-12:0", `"12:0"`},
		{"090:00-12:00", `"090:00"`},
		{"ab:cd-12:00", `"ab:cd"`},
		{"-1:00-12:00", `"-1:00-12:00": start: ""`},
		{"09:60-10:00", `"09:60"`},
		{"25:00-26:00", `"25:00"`},
		{"22:00-24:30", `"24:30"`},
		{"12:00-09:00", "12:00-09:00"},
		{"09:00-09:00", "09:00-09:00"},
		{"09:00-12:00,11:00-13:00", "11:00-13:00 overlaps 09:00-12:00"},
		{"14:00-18:00,09:00-14:30", "14:00-18:00 overlaps 09:00-14:30"},
		{"09:00-12:00;14:00-18:00", `"12:00;14:00-18:00"`},
	}
	for _, tc := range bad {
		_, err := ParsePeriods(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParsePeriods(%q): %v, want an error naming %q", tc.in, err, tc.msg)
		}
	}
}

func BenchmarkDeadline10000Hours(b *testing.B) {
	c, err := NewCalendar(nil, nil, holidays2025)
	if err != nil {
		b.Fatal(err)
	}
	start := sh(2026, 3, 2, 10, 0)
	for b.Loop() {
		if _, err := c.Deadline(start, Limit{10000, WorkingHours}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAddWorkingTime: moving a deadline by working time agrees with
// Deadline for whole hours and with WorkingTime for any duration, across
// holidays and weekends.
func TestAddWorkingTime(t *testing.T) {
	c := testCalendar(t)
	first := sh(2025, 9, 24, 0, 0)
	for start := first; start.Before(first.AddDate(0, 0, 21)); start = start.Add(53 * time.Minute) {
		for _, d := range []time.Duration{time.Minute, 90 * time.Minute, 3 * time.Hour, 8 * time.Hour, 41*time.Hour + 7*time.Minute} {
			got, err := c.AddWorkingTime(start, d)
			if err != nil {
				t.Fatal(err)
			}
			if wt := c.WorkingTime(start, got); wt != d {
				t.Fatalf("start %v + %v = %v, but WorkingTime says %v", start, d, got, wt)
			}
			if d%time.Hour == 0 {
				want, _ := c.Deadline(start, Limit{int(d / time.Hour), WorkingHours})
				if !got.Equal(want) {
					t.Fatalf("start %v + %v = %v, Deadline says %v", start, d, got, want)
				}
			}
		}
	}
	if got, _ := c.AddWorkingTime(first, 0); !got.Equal(first) {
		t.Errorf("+0 = %v", got)
	}
}
