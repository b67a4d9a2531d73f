package data

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/geo"
	"gridmap/grid"
)

// Department is a body events are routed to.
type Department struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// CalendarDay is a date whose kind differs from its weekday's: a holiday,
// or a weekend day worked in exchange (调休).
type CalendarDay struct {
	Day  string       `json:"day"` // YYYY-MM-DD
	Kind grid.DayKind `json:"kind"`
	Name string       `json:"name,omitempty"`
}

// EventConfig is what reporting needs besides the location: the classes
// with their departments and deadlines, and the working calendar. Servers
// keep it in memory and reload it when event_config.version moves.
type EventConfig struct {
	Version     int64
	Classes     map[string]grid.EventClass
	ClassNames  map[string]string
	Departments map[string]Department
	Calendar    *grid.Calendar
	Timezone    string
	Days        []CalendarDay
}

// eventConfig returns the current configuration, reading the version in q
// (a transaction of the caller, so that the rules it applies are those of
// its own snapshot) and reloading when it moved.
func (s *Store) eventConfig(ctx context.Context, q querier) (*EventConfig, error) {
	var v int64
	if err := q.QueryRow(ctx, `SELECT version FROM event_config`).Scan(&v); err != nil {
		return nil, fmt.Errorf("event config version: %w", err)
	}
	if c := s.eventCfg.Load(); c != nil && c.Version == v {
		return c, nil
	}
	c, err := loadEventConfig(ctx, q, v)
	if err != nil {
		return nil, err
	}
	s.eventCfg.Store(c)
	return c, nil
}

// EventConfig returns the current configuration.
func (s *Store) EventConfig(ctx context.Context) (*EventConfig, error) {
	var c *EventConfig
	err := s.readSnapshot(ctx, func(tx pgx.Tx) error {
		var err error
		c, err = s.eventConfig(ctx, tx)
		return err
	})
	return c, err
}

func loadEventConfig(ctx context.Context, q querier, version int64) (*EventConfig, error) {
	c := &EventConfig{Version: version, Classes: map[string]grid.EventClass{}, ClassNames: map[string]string{}, Departments: map[string]Department{}}
	rows, err := q.Query(ctx, `SELECT code, name FROM departments`)
	if err != nil {
		return nil, err
	}
	if err := forEach(rows, func() error {
		var d Department
		if err := rows.Scan(&d.Code, &d.Name); err != nil {
			return err
		}
		c.Departments[d.Code] = d
		return nil
	}); err != nil {
		return nil, fmt.Errorf("departments: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT code, major, major_name, minor, name, department_code, limit_amount, limit_unit FROM event_classes`)
	if err != nil {
		return nil, err
	}
	if err := forEach(rows, func() error {
		var k grid.EventClass
		var unit string
		if err := rows.Scan(&k.Code, &k.Major, &k.MajorName, &k.Minor, &k.Name, &k.Department, &k.Limit.Amount, &unit); err != nil {
			return err
		}
		k.Limit.Unit = grid.LimitUnit(unit)
		c.Classes[k.Code] = k
		c.ClassNames[k.Code] = k.Name
		return nil
	}); err != nil {
		return nil, fmt.Errorf("event classes: %w", err)
	}
	var periods string
	if err := q.QueryRow(ctx, `SELECT timezone, periods FROM work_hours`).Scan(&c.Timezone, &periods); err != nil {
		return nil, fmt.Errorf("work hours: %w", err)
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return nil, fmt.Errorf("work hours: time zone %q: %w", c.Timezone, err)
	}
	ps, err := grid.ParsePeriods(periods)
	if err != nil {
		return nil, fmt.Errorf("work hours: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT day::text, kind, name FROM work_calendar ORDER BY day`)
	if err != nil {
		return nil, err
	}
	overrides := map[string]grid.DayKind{}
	if err := forEach(rows, func() error {
		var d CalendarDay
		var kind string
		if err := rows.Scan(&d.Day, &kind, &d.Name); err != nil {
			return err
		}
		d.Kind = grid.DayKind(kind)
		overrides[d.Day] = d.Kind
		c.Days = append(c.Days, d)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("work calendar: %w", err)
	}
	if c.Calendar, err = grid.NewCalendar(loc, ps, overrides); err != nil {
		return nil, fmt.Errorf("work calendar: %w", err)
	}
	return c, nil
}

// seedEvents loads the departments, event classes and calendar seeds,
// leaving rows that exist (edited through the API) as they are.
func (s *Store) seedEvents(ctx context.Context) error {
	deps, err := readSeedCSV("seed/departments.csv", 2)
	if err != nil {
		return err
	}
	classes, err := SeedEventClasses()
	if err != nil {
		return err
	}
	days, err := readSeedCSV("seed/work_calendar.csv", 3)
	if err != nil {
		return err
	}
	batch := &pgx.Batch{}
	for _, d := range deps {
		batch.Queue(`INSERT INTO departments (code, name) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING`, d[0], d[1])
	}
	for _, c := range classes {
		batch.Queue(`INSERT INTO event_classes (code, major, major_name, minor, name, department_code, limit_amount, limit_unit)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (code) DO NOTHING`,
			c.Code, c.Major, c.MajorName, c.Minor, c.Name, c.Department, c.Limit.Amount, string(c.Limit.Unit))
	}
	for _, d := range days {
		batch.Queue(`INSERT INTO work_calendar (day, kind, name) VALUES ($1::date, $2, $3) ON CONFLICT (day) DO NOTHING`, d[0], d[1], d[2])
	}
	// Only when the seed adds something: the config triggers bump the
	// version, and every server would reload for nothing.
	var missing bool
	err = s.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM departments) < $1 OR (SELECT count(*) FROM event_classes) < $2
		OR NOT EXISTS (SELECT 1 FROM work_calendar)`, len(deps), len(classes)).Scan(&missing)
	if err != nil || !missing {
		return err
	}
	return s.Pool.SendBatch(ctx, batch).Close()
}

func readSeedCSV(name string, fields int) ([][]string, error) {
	return readSeed(name, func(in io.Reader) ([][]string, error) {
		r := csv.NewReader(in)
		r.FieldsPerRecord = fields
		recs, err := r.ReadAll()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return recs[1:], nil
	})
}

// SeedEventClasses reads data/seed/event_classes.csv.
func SeedEventClasses() ([]grid.EventClass, error) {
	return readSeed("seed/event_classes.csv", ReadEventClasses)
}

// ReadEventClasses reads classes in the seed's CSV form (header
// code,major,major_name,minor,name,department,limit_amount,limit_unit).
func ReadEventClasses(in io.Reader) ([]grid.EventClass, error) {
	return readCatalogue(in, "event class", 8, func(rec []string) (grid.EventClass, error) {
		n, err := strconv.Atoi(rec[6])
		if err != nil {
			return grid.EventClass{}, fmt.Errorf("limit_amount %q is not a number", geo.Excerpt(rec[6], geo.MaxExcerpt))
		}
		c := grid.EventClass{Code: rec[0], Major: rec[1], MajorName: rec[2], Minor: rec[3], Name: rec[4], Department: rec[5],
			Limit: grid.Limit{Amount: n, Unit: grid.LimitUnit(rec[7])}}
		return c, c.Validate()
	})
}

// EventClassRow is a class with its version (the ETag of PUT).
type EventClassRow struct {
	grid.EventClass
	DepartmentName string    `json:"department_name"`
	Version        int       `json:"version"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// EventClasses lists the classes by code.
func (s *Store) EventClasses(ctx context.Context) ([]EventClassRow, error) {
	rows, err := s.Reader(ctx).Query(ctx, `SELECT c.code, c.major, c.major_name, c.minor, c.name, c.department_code, d.name,
			c.limit_amount, c.limit_unit, c.version, c.updated_at
		FROM event_classes c JOIN departments d ON d.code = c.department_code ORDER BY c.code`)
	if err != nil {
		return nil, err
	}
	var out []EventClassRow
	err = forEach(rows, func() error {
		var r EventClassRow
		var unit string
		if err := rows.Scan(&r.Code, &r.Major, &r.MajorName, &r.Minor, &r.Name, &r.Department, &r.DepartmentName,
			&r.Limit.Amount, &unit, &r.Version, &r.UpdatedAt); err != nil {
			return err
		}
		r.Limit.Unit = grid.LimitUnit(unit)
		out = append(out, r)
		return nil
	})
	return out, err
}

// EventClass returns one class.
func (s *Store) EventClass(ctx context.Context, code string) (*EventClassRow, error) {
	all, err := s.EventClasses(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Code == code {
			return &all[i], nil
		}
	}
	return nil, ErrNotFound
}

// PutEventClass creates or replaces a class. ifVersion > 0 is a
// precondition (the version the editor read): a class that has moved on
// is a *StaleError and nothing is written. It reports whether the class
// was created. Events already reported keep their department and deadline.
func (s *Store) PutEventClass(ctx context.Context, c grid.EventClass, ifVersion int) (*EventClassRow, bool, error) {
	if err := c.Validate(); err != nil {
		return nil, false, invalid("class", "%v", err)
	}
	var created bool
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var cur int
		err := tx.QueryRow(ctx, `SELECT version FROM event_classes WHERE code = $1 FOR UPDATE`, c.Code).Scan(&cur)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if ifVersion > 0 {
				return ErrNotFound
			}
			created = true
			_, err = tx.Exec(ctx, `INSERT INTO event_classes (code, major, major_name, minor, name, department_code, limit_amount, limit_unit)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				c.Code, c.Major, c.MajorName, c.Minor, c.Name, c.Department, c.Limit.Amount, string(c.Limit.Unit))
		case err != nil:
			return err
		case ifVersion > 0 && ifVersion != cur:
			return &StaleError{Resource: "event class", Code: c.Code, Current: versionETag(cur)}
		default:
			_, err = tx.Exec(ctx, `UPDATE event_classes SET major = $2, major_name = $3, minor = $4, name = $5, department_code = $6,
				limit_amount = $7, limit_unit = $8, version = version + 1, updated_at = now() WHERE code = $1`,
				c.Code, c.Major, c.MajorName, c.Minor, c.Name, c.Department, c.Limit.Amount, string(c.Limit.Unit))
		}
		if isPgCode(err, "23503") {
			return invalid("department", "unknown department %q (GET /v1/departments lists them)", c.Department)
		}
		return err
	})
	if err != nil {
		return nil, false, err
	}
	row, err := s.EventClass(ctx, c.Code)
	return row, created, err
}

// versionETag is the strong ETag of a row version.
func versionETag(v int) string { return `"` + strconv.Itoa(v) + `"` }

// Departments lists the departments by code.
func (s *Store) Departments(ctx context.Context) ([]Department, error) {
	rows, err := s.Reader(ctx).Query(ctx, `SELECT code, name FROM departments ORDER BY code`)
	if err != nil {
		return nil, err
	}
	out := []Department{}
	err = forEach(rows, func() error {
		var d Department
		if err := rows.Scan(&d.Code, &d.Name); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// PutDepartment creates or renames a department; it reports whether it was created.
func (s *Store) PutDepartment(ctx context.Context, d Department) (bool, error) {
	if !grid.ValidDepartmentCode(d.Code) {
		return false, invalid("code", "department code %q: want 1–32 letters, digits, _ or -", d.Code)
	}
	if d.Name == "" {
		return false, invalid("name", "a department needs a name")
	}
	var created bool
	err := s.Pool.QueryRow(ctx, `INSERT INTO departments (code, name) VALUES ($1, $2)
		ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
		RETURNING xmax = 0`, d.Code, d.Name).Scan(&created)
	return created, err
}

// WorkHours are the working periods and the time zone of the calendar.
type WorkHours struct {
	Timezone string `json:"timezone"`
	Periods  string `json:"periods"` // "09:00-12:00,14:00-18:00"
}

// Calendar is the working calendar as stored.
type Calendar struct {
	WorkHours
	Days []CalendarDay `json:"days"`
}

// Calendar returns the working calendar.
func (s *Store) Calendar(ctx context.Context) (*Calendar, error) {
	c, err := s.EventConfig(ctx)
	if err != nil {
		return nil, err
	}
	out := &Calendar{WorkHours: WorkHours{Timezone: c.Timezone, Periods: grid.FormatPeriods(c.Calendar.Periods())}, Days: c.Days}
	if out.Days == nil {
		out.Days = []CalendarDay{}
	}
	return out, nil
}

// PutWorkHours sets the working periods and the time zone. Deadlines
// already given stay: they were promised under the old hours.
func (s *Store) PutWorkHours(ctx context.Context, h WorkHours) error {
	if _, err := time.LoadLocation(h.Timezone); err != nil || h.Timezone == "" {
		return invalid("timezone", "unknown time zone %q (an IANA name such as Asia/Shanghai)", h.Timezone)
	}
	ps, err := grid.ParsePeriods(h.Periods)
	if err != nil {
		return invalid("periods", "%v", err)
	}
	_, err = s.Pool.Exec(ctx, `UPDATE work_hours SET timezone = $1, periods = $2`, h.Timezone, grid.FormatPeriods(ps))
	return err
}

// PutCalendarDay marks a date as a holiday or a working day; kind ""
// removes the mark (the date follows its weekday again).
func (s *Store) PutCalendarDay(ctx context.Context, d CalendarDay) error {
	if _, err := time.Parse(time.DateOnly, d.Day); err != nil {
		return invalid("day", "%q is not a date (YYYY-MM-DD)", d.Day)
	}
	switch d.Kind {
	case "":
		_, err := s.Pool.Exec(ctx, `DELETE FROM work_calendar WHERE day = $1::date`, d.Day)
		return err
	case grid.Holiday, grid.Workday:
		_, err := s.Pool.Exec(ctx, `INSERT INTO work_calendar (day, kind, name) VALUES ($1::date, $2, $3)
			ON CONFLICT (day) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name`, d.Day, string(d.Kind), d.Name)
		return err
	default:
		return invalid("kind", "kind %q: want holiday or workday", d.Kind)
	}
}
