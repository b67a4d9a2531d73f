package data

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// FigureRow is one ranked line of the figures (考核) of workers,
// communities or streets over a period.
type FigureRow struct {
	Rank int    `json:"rank"`
	Code string `json:"code"` // the unit's code, or the worker's id
	Name string `json:"name"`
	// Grids: the worker's grids (as the responsible worker), or the
	// unit's grids; Covered: those with an active worker.
	Grids   int `json:"grids"`
	Covered int `json:"covered"`
	// Events reported: by the worker, or in the unit (ReportedByWorkers:
	// of those, by grid workers).
	Reported          int64 `json:"reported"`
	ReportedByWorkers int64 `json:"reported_by_workers"`
	// Verified: verifications made (worker) or events verified (unit);
	// VerifiedOnTime: by the verification's due time.
	Verified       int64    `json:"verified"`
	VerifiedOnTime int64    `json:"verified_on_time"`
	VerifyRate     *float64 `json:"verified_on_time_rate"`
	// Handled on time counts an approved extension's deadline as agreed.
	Handled    int64    `json:"handled"`
	OnTime     int64    `json:"handled_on_time"`
	OnTimeRate *float64 `json:"handled_on_time_rate"`
	Extended   int64    `json:"extended"`
	Suspended  int64    `json:"suspended"`
	// PatrolCoverage (share of the grids' area patrolled) and PatrolHours
	// come from the patrols (issue 16 item 6); null while none are kept.
	PatrolCoverage *float64 `json:"patrol_coverage"`
	PatrolHours    *float64 `json:"patrol_hours"`
}

// Figures are the ranked figures of one level over [From, To).
type Figures struct {
	Level string      `json:"level"` // worker, community, street
	Unit  string      `json:"unit"`  // "" the whole city
	From  *time.Time  `json:"from"`
	To    *time.Time  `json:"to"`
	Rows  []FigureRow `json:"rows"`
	Total FigureRow   `json:"total"`
}

func rate(n, of int64) *float64 {
	if of == 0 {
		return nil
	}
	r := float64(n) / float64(of)
	return &r
}

// FiguresOf ranks the workers (level "worker"), communities or streets
// under unit ("" the whole city) by their figures over [from, to) (nil:
// unbounded): workers by the events they reported and verified in the
// period, units by the events reported in them in the period. Ranks: the
// on-time rates first (verification for workers, handling for units),
// then the events reported.
func (s *Store) FiguresOf(ctx context.Context, level, unit string, from, to *time.Time) (*Figures, error) {
	f := &Figures{Level: level, Unit: unit, From: from, To: to, Rows: []FigureRow{}}
	var n int
	switch level {
	case "worker":
	case "community":
		n = grid.Community.CodeLen()
	case "street":
		n = grid.Street.CodeLen()
	default:
		return nil, filterErr("level", "level=%q: figures are of a worker, community or street", level)
	}
	if unit != "" && n > 0 && len(unit) > n {
		return nil, filterErr("unit", "unit %s lies inside one %s: name a unit above the level", unit, level)
	}
	err := s.readSnapshot(ctx, func(tx pgx.Tx) error {
		if level == "worker" {
			return workerFigures(ctx, tx, f, unit, from, to)
		}
		return unitFigures(ctx, tx, f, n, unit, from, to)
	})
	if err != nil {
		return nil, err
	}
	rank(f, level == "worker")
	if err := s.patrolFigures(ctx, f, n, from, to); err != nil {
		return nil, err
	}
	return f, nil
}

func workerFigures(ctx context.Context, tx pgx.Tx, f *Figures, unit string, from, to *time.Time) error {
	rows, err := tx.Query(ctx, `
		WITH w AS (
			SELECT p.id, p.name FROM people p
			WHERE p.role = 'worker' AND ($1 = '' OR EXISTS (SELECT 1 FROM grid_workers g WHERE g.person_id = p.id AND g.grid_code LIKE $1 || '%'))),
		grids AS (SELECT person_id, count(*) AS n FROM grid_workers WHERE rank = 0 GROUP BY 1),
		rep AS (
			SELECT reporter_id AS id, count(*) AS n, count(*) FILTER (WHERE extensions > 0) AS ext,
				count(*) FILTER (WHERE status = 'suspended') AS susp
			FROM events WHERE reporter_id IN (SELECT id FROM w)
			  AND ($2::timestamptz IS NULL OR reported_at >= $2) AND ($3::timestamptz IS NULL OR reported_at < $3)
			GROUP BY 1),
		ver AS (
			SELECT verified_by AS id, count(*) AS n, count(*) FILTER (WHERE verified_at <= verify_due) AS on_time
			FROM events WHERE verified_by IN (SELECT id FROM w)
			  AND ($2::timestamptz IS NULL OR verified_at >= $2) AND ($3::timestamptz IS NULL OR verified_at < $3)
			GROUP BY 1),
		han AS (
			SELECT g.person_id AS id, count(e.handled_at) AS n, count(*) FILTER (WHERE e.handled_at <= e.deadline) AS on_time
			FROM grid_workers g JOIN events e ON e.grid_code = g.grid_code
			WHERE g.rank = 0 AND g.person_id IN (SELECT id FROM w)
			  AND ($2::timestamptz IS NULL OR e.reported_at >= $2) AND ($3::timestamptz IS NULL OR e.reported_at < $3)
			GROUP BY 1)
		SELECT w.id, w.name, coalesce(grids.n, 0), coalesce(rep.n, 0), coalesce(ver.n, 0), coalesce(ver.on_time, 0),
			coalesce(han.n, 0), coalesce(han.on_time, 0), coalesce(rep.ext, 0), coalesce(rep.susp, 0)
		FROM w LEFT JOIN grids ON grids.person_id = w.id LEFT JOIN rep ON rep.id = w.id
		LEFT JOIN ver ON ver.id = w.id LEFT JOIN han ON han.id = w.id`, unit, from, to)
	if err != nil {
		return err
	}
	return forEach(rows, func() error {
		var r FigureRow
		var id int64
		if err := rows.Scan(&id, &r.Name, &r.Grids, &r.Reported, &r.Verified, &r.VerifiedOnTime, &r.Handled, &r.OnTime, &r.Extended, &r.Suspended); err != nil {
			return err
		}
		r.Code = itoa(id)
		r.Covered = r.Grids
		r.ReportedByWorkers = r.Reported
		f.Rows = append(f.Rows, r)
		return nil
	})
}

func unitFigures(ctx context.Context, tx pgx.Tx, f *Figures, n int, unit string, from, to *time.Time) error {
	level := grid.Community
	if n == grid.Street.CodeLen() {
		level = grid.Street
	}
	rows, err := tx.Query(ctx, `
		WITH u AS (
			SELECT code, name FROM units WHERE layer = 'base' AND level = $2 AND valid_to IS NULL AND code LIKE $1 || '%'),
		g AS (
			SELECT left(x.code, $3) AS k, count(*) AS grids, count(p.id) AS covered
			FROM units x
			LEFT JOIN grid_workers gw ON gw.grid_code = x.code AND gw.rank = 0
			LEFT JOIN people p ON p.id = gw.person_id AND p.status = 'active'
			WHERE x.layer = 'base' AND x.level = 'grid' AND x.valid_to IS NULL AND x.code LIKE $1 || '%'
			GROUP BY 1),
		e AS (
			SELECT left(grid_code, $3) AS k, count(*) AS reported, count(reporter_id) AS by_workers,
				count(verified_at) AS verified, count(*) FILTER (WHERE verified_at <= verify_due) AS verified_on_time,
				count(handled_at) AS handled, count(*) FILTER (WHERE handled_at <= deadline) AS on_time,
				count(*) FILTER (WHERE extensions > 0) AS ext, count(*) FILTER (WHERE status = 'suspended') AS susp
			FROM events
			WHERE grid_code LIKE $1 || '%'
			  AND ($4::timestamptz IS NULL OR reported_at >= $4) AND ($5::timestamptz IS NULL OR reported_at < $5)
			GROUP BY 1)
		SELECT u.code, u.name, coalesce(g.grids, 0), coalesce(g.covered, 0), coalesce(e.reported, 0), coalesce(e.by_workers, 0),
			coalesce(e.verified, 0), coalesce(e.verified_on_time, 0), coalesce(e.handled, 0), coalesce(e.on_time, 0),
			coalesce(e.ext, 0), coalesce(e.susp, 0)
		FROM u LEFT JOIN g ON g.k = u.code LEFT JOIN e ON e.k = u.code`, unit, string(level), n, from, to)
	if err != nil {
		return err
	}
	return forEach(rows, func() error {
		var r FigureRow
		if err := rows.Scan(&r.Code, &r.Name, &r.Grids, &r.Covered, &r.Reported, &r.ReportedByWorkers, &r.Verified, &r.VerifiedOnTime,
			&r.Handled, &r.OnTime, &r.Extended, &r.Suspended); err != nil {
			return err
		}
		f.Rows = append(f.Rows, r)
		return nil
	})
}

// rank orders the rows (rates first, a unit without any rate last) and
// numbers them, equal figures sharing a rank; Total sums them.
func rank(f *Figures, workers bool) {
	key := func(r *FigureRow) (*float64, *float64) {
		if workers {
			return r.VerifyRate, r.OnTimeRate
		}
		return r.OnTimeRate, r.VerifyRate
	}
	var t FigureRow
	for i := range f.Rows {
		r := &f.Rows[i]
		r.VerifyRate, r.OnTimeRate = rate(r.VerifiedOnTime, r.Verified), rate(r.OnTime, r.Handled)
		t.Grids += r.Grids
		t.Covered += r.Covered
		t.Reported += r.Reported
		t.ReportedByWorkers += r.ReportedByWorkers
		t.Verified += r.Verified
		t.VerifiedOnTime += r.VerifiedOnTime
		t.Handled += r.Handled
		t.OnTime += r.OnTime
		t.Extended += r.Extended
		t.Suspended += r.Suspended
	}
	t.Code, t.Name = "total", "total"
	t.VerifyRate, t.OnTimeRate = rate(t.VerifiedOnTime, t.Verified), rate(t.OnTime, t.Handled)
	f.Total = t
	less := func(a, b *float64) int { // -1 when a ranks first
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return 1
		case b == nil:
			return -1
		case *a > *b:
			return -1
		case *a < *b:
			return 1
		}
		return 0
	}
	cmp := func(a, b *FigureRow) int {
		a1, a2 := key(a)
		b1, b2 := key(b)
		if c := less(a1, b1); c != 0 {
			return c
		}
		if c := less(a2, b2); c != 0 {
			return c
		}
		if a.Reported != b.Reported {
			if a.Reported > b.Reported {
				return -1
			}
			return 1
		}
		return 0
	}
	sort.SliceStable(f.Rows, func(i, j int) bool {
		if c := cmp(&f.Rows[i], &f.Rows[j]); c != 0 {
			return c < 0
		}
		return f.Rows[i].Code < f.Rows[j].Code
	})
	for i := range f.Rows {
		if i > 0 && cmp(&f.Rows[i-1], &f.Rows[i]) == 0 {
			f.Rows[i].Rank = f.Rows[i-1].Rank
		} else {
			f.Rows[i].Rank = i + 1
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
