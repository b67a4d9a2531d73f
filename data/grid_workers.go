package data

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// PersonRef names a person in answers about grids and events.
type PersonRef struct {
	ID   int64           `json:"id"`
	Name string          `json:"name"`
	Role grid.PersonRole `json:"role"`
}

// GridAssignment is a base grid's people (一格一员): its responsible
// worker (nil: none) and the backups in order. Version is the number of
// changes so far (0: never assigned), the ETag of PUT.
type GridAssignment struct {
	GridCode  string      `json:"grid_code"`
	GridName  string      `json:"grid_name"`
	Worker    *PersonRef  `json:"worker"`
	Backups   []PersonRef `json:"backups"`
	Version   int         `json:"version"`
	UpdatedAt *time.Time  `json:"updated_at"`
	UpdatedBy string      `json:"updated_by"`
}

// MaxBackups bounds a grid's backups.
const MaxBackups = 9

// GridAssignmentChange is a PUT of a grid's people.
type GridAssignmentChange struct {
	Worker    int64 // 0: the grid has no worker from now on
	Backups   []int64
	IfVersion int // > 0 or IfNone: the precondition
	IfNone    bool
	Actor     string
	Reason    string
}

// lockGridWorkers orders the writers of one grid's people.
func lockGridWorkers(ctx context.Context, tx pgx.Tx, code string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('gridmap.grid_workers'), hashtext($1))`, code)
	return err
}

// PutGridWorkers replaces a grid's people and logs the change. The grid
// must be a current base-layer grid; the worker and backups active people
// with the role worker, none twice. A stale precondition is a
// *StaleError; nothing is written on any error.
func (s *Store) PutGridWorkers(ctx context.Context, code string, c GridAssignmentChange) (*GridAssignment, error) {
	if c.Worker == 0 && len(c.Backups) > 0 {
		return nil, invalid("backups", "a grid without a worker has no backups: name the worker")
	}
	if len(c.Backups) > MaxBackups {
		return nil, invalid("backups", "at most %d backups", MaxBackups)
	}
	ids := append([]int64{c.Worker}, c.Backups...)
	for i, id := range ids {
		if slices.Contains(ids[:i], id) && id != 0 {
			return nil, invalid("backups", "person %d is named twice: the worker and each backup are different people", id)
		}
	}
	var out *GridAssignment
	err := retryTx(ctx, func() error {
		return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
			if err := lockUnits(ctx, tx, true); err != nil {
				return err
			}
			var level string
			err := tx.QueryRow(ctx, `SELECT level FROM units WHERE layer = 'base' AND code = $1 AND valid_to IS NULL`, code).Scan(&level)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("grid %s: %w", code, ErrNotFound)
			}
			if err != nil {
				return err
			}
			if level != string(grid.Grid) {
				return invalid("code", "%s is a %s: people are assigned to base grids only", code, level)
			}
			if err := checkUnits(ctx, code); err != nil {
				return err
			}
			if err := lockGridWorkers(ctx, tx, code); err != nil {
				return err
			}
			prev, err := gridAssignment(ctx, tx, code)
			if err != nil {
				return err
			}
			if (c.IfVersion > 0 || c.IfNone) && c.IfVersion != prev.Version {
				return &StaleError{Resource: "grid assignment", Code: code, Current: versionETag(prev.Version)}
			}
			// The people stay as read until this commits (a PUT of a
			// person takes their row FOR UPDATE).
			if _, err := tx.Exec(ctx, `SELECT 1 FROM people WHERE id = ANY($1) ORDER BY id FOR SHARE`, ids); err != nil {
				return err
			}
			for i, id := range ids {
				if id == 0 {
					continue
				}
				field := "worker"
				if i > 0 {
					field = "backups"
				}
				p, err := getPerson(ctx, tx, id)
				if errors.Is(err, ErrNotFound) {
					return invalid(field, "no person %d", id)
				}
				if err != nil {
					return err
				}
				if p.Role != grid.RoleWorker || p.Status != grid.PersonActive {
					return invalid(field, "person %d (%s) is an %s %s: grids are given to active workers", id, p.Name, p.Status, p.Role)
				}
			}
			kind := "assign"
			if c.Worker == 0 {
				kind = "unassign"
			}
			if err := writeGridWorkers(ctx, tx, code, c.Worker, c.Backups, prev, kind, c.Actor, c.Reason); err != nil {
				return err
			}
			out, err = gridAssignment(ctx, tx, code)
			return err
		})
	})
	return out, err
}

// writeGridWorkers replaces the rows of a grid and logs the change.
func writeGridWorkers(ctx context.Context, tx pgx.Tx, code string, worker int64, backups []int64, prev *GridAssignment, kind, actor, reason string) error {
	if backups == nil {
		backups = []int64{}
	}
	var prevWorker *int64
	prevBackups := []int64{}
	if prev.Worker != nil {
		prevWorker = &prev.Worker.ID
	}
	for _, b := range prev.Backups {
		prevBackups = append(prevBackups, b.ID)
	}
	var w *int64
	if worker != 0 {
		w = &worker
	}
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM grid_workers WHERE grid_code = $1`, code)
	if worker != 0 {
		b.Queue(`INSERT INTO grid_workers (grid_code, rank, person_id)
			SELECT $1, r - 1, p FROM unnest($2::bigint[]) WITH ORDINALITY AS t(p, r)`, code, append([]int64{worker}, backups...))
	}
	b.Queue(`INSERT INTO grid_worker_log (grid_code, version, kind, worker_id, backup_ids, prev_worker, prev_backup, actor, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, code, prev.Version+1, kind, w, backups, prevWorker, prevBackups, actor, reason)
	return tx.SendBatch(ctx, b).Close()
}

// GridWorkers returns a grid's people; a code that names no current base
// grid is ErrNotFound.
func (s *Store) GridWorkers(ctx context.Context, code string) (*GridAssignment, error) {
	var out *GridAssignment
	err := s.readSnapshot(ctx, func(tx pgx.Tx) error {
		var level string
		err := tx.QueryRow(ctx, `SELECT level FROM units WHERE layer = 'base' AND code = $1 AND valid_to IS NULL`, code).Scan(&level)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && level != string(grid.Grid)) {
			return fmt.Errorf("grid %s: %w", code, ErrNotFound)
		}
		if err != nil {
			return err
		}
		out, err = gridAssignment(ctx, tx, code)
		return err
	})
	return out, err
}

func gridAssignment(ctx context.Context, q querier, code string) (*GridAssignment, error) {
	a := &GridAssignment{GridCode: code, Backups: []PersonRef{}}
	if err := q.QueryRow(ctx, `SELECT coalesce((SELECT name FROM units WHERE layer = 'base' AND code = $1 AND valid_to IS NULL), '')`, code).Scan(&a.GridName); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT g.rank, p.id, p.name, p.role FROM grid_workers g JOIN people p ON p.id = g.person_id
		WHERE g.grid_code = $1 ORDER BY g.rank`, code)
	if err != nil {
		return nil, err
	}
	if err := forEach(rows, func() error {
		var rank int
		var p PersonRef
		var role string
		if err := rows.Scan(&rank, &p.ID, &p.Name, &role); err != nil {
			return err
		}
		p.Role = grid.PersonRole(role)
		if rank == 0 {
			a.Worker = &p
		} else {
			a.Backups = append(a.Backups, p)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	err = q.QueryRow(ctx, `SELECT version, at, actor FROM grid_worker_log WHERE grid_code = $1 ORDER BY version DESC LIMIT 1`, code).
		Scan(&a.Version, &a.UpdatedAt, &a.UpdatedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	return a, err
}

// GridWorkerChange is one entry of the reassignment log.
type GridWorkerChange struct {
	GridCode   string    `json:"grid_code"`
	Version    int       `json:"version"`
	Kind       string    `json:"kind"`
	Worker     *int64    `json:"worker"`
	Backups    []int64   `json:"backups"`
	PrevWorker *int64    `json:"previous_worker"`
	PrevBackup []int64   `json:"previous_backups"`
	Actor      string    `json:"actor"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

// GridWorkerHistoryFilter selects log entries: of grids under Unit, and
// (Person > 0) those where the person became or stopped being a grid's
// worker or backup.
type GridWorkerHistoryFilter struct {
	Unit     string
	Person   int64
	From, To *time.Time
	Limit    int
}

// GridWorkerHistory lists reassignments, newest first.
func (s *Store) GridWorkerHistory(ctx context.Context, f GridWorkerHistoryFilter) ([]GridWorkerChange, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := s.Pool.Query(ctx, `SELECT grid_code, version, kind, worker_id, backup_ids, prev_worker, prev_backup, actor, reason, at
		FROM grid_worker_log
		WHERE ($1 = '' OR grid_code LIKE $1 || '%')
		  AND ($2 = 0 OR worker_id = $2 OR prev_worker = $2 OR $2 = ANY(backup_ids) OR $2 = ANY(prev_backup))
		  AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
		ORDER BY at DESC, id DESC LIMIT $5`, f.Unit, f.Person, f.From, f.To, f.Limit)
	if err != nil {
		return nil, err
	}
	out := []GridWorkerChange{}
	err = forEach(rows, func() error {
		var c GridWorkerChange
		if err := rows.Scan(&c.GridCode, &c.Version, &c.Kind, &c.Worker, &c.Backups, &c.PrevWorker, &c.PrevBackup, &c.Actor, &c.Reason, &c.At); err != nil {
			return err
		}
		c.At = c.At.In(s.cityTime())
		out = append(out, c)
		return nil
	})
	return out, err
}

// Coverage is the coverage report of a unit's grids: those without a
// worker, and workers responsible for more grids than the load allows.
type Coverage struct {
	Unit       string           `json:"unit"`
	MaxLoad    int              `json:"max_load"`
	Grids      int              `json:"grids"`
	Assigned   int              `json:"assigned"`
	Unassigned []UnitRef        `json:"unassigned"`
	Overloaded []WorkerLoadInfo `json:"overloaded"`
}

// UnitRef names a unit.
type UnitRef struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// WorkerLoadInfo is a worker and the grids they are responsible for.
type WorkerLoadInfo struct {
	PersonRef
	Grids []string `json:"grids"`
}

// GridCoverage reports the current base grids under unit ("" the whole
// city) that have no worker (an inactive worker counts as none), and the
// workers responsible for more than maxLoad grids in all.
func (s *Store) GridCoverage(ctx context.Context, unit string, maxLoad int) (*Coverage, error) {
	c := &Coverage{Unit: unit, MaxLoad: maxLoad, Unassigned: []UnitRef{}, Overloaded: []WorkerLoadInfo{}}
	err := s.readSnapshot(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT u.code, u.name, (p.id IS NOT NULL) FROM units u
			LEFT JOIN grid_workers g ON g.grid_code = u.code AND g.rank = 0
			LEFT JOIN people p ON p.id = g.person_id AND p.status = 'active'
			WHERE u.layer = 'base' AND u.level = 'grid' AND u.valid_to IS NULL AND u.code LIKE $1 || '%'
			ORDER BY u.code`, unit)
		if err != nil {
			return err
		}
		if err := forEach(rows, func() error {
			var r UnitRef
			var ok bool
			if err := rows.Scan(&r.Code, &r.Name, &ok); err != nil {
				return err
			}
			c.Grids++
			if ok {
				c.Assigned++
			} else {
				c.Unassigned = append(c.Unassigned, r)
			}
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `
			SELECT p.id, p.name, p.role, array_agg(g.grid_code ORDER BY g.grid_code) FROM grid_workers g JOIN people p ON p.id = g.person_id
			WHERE g.rank = 0 AND p.id IN (SELECT person_id FROM grid_workers WHERE rank = 0 AND grid_code LIKE $1 || '%')
			GROUP BY p.id HAVING count(*) > $2 ORDER BY count(*) DESC, p.id`, unit, maxLoad)
		if err != nil {
			return err
		}
		return forEach(rows, func() error {
			var w WorkerLoadInfo
			var role string
			if err := rows.Scan(&w.ID, &w.Name, &role, &w.Grids); err != nil {
				return err
			}
			w.Role = grid.PersonRole(role)
			c.Overloaded = append(c.Overloaded, w)
			return nil
		})
	})
	return c, err
}

// followGridWorkers keeps grids' people with their codes after a unit
// edit: a grid re-coded (its community merged into another) takes its
// people to the new code; a retired grid (merged into the one kept) loses
// them. A split's piece that keeps the code keeps its people by keeping
// the code, and the new pieces have none until assigned (the coverage
// report lists them).
func followGridWorkers(ctx context.Context, tx pgx.Tx, op, actor string, codeMap map[string]string, retired []string) error {
	if actor == "" {
		actor = "unit edit"
	}
	olds := make([]string, 0, len(codeMap))
	for old := range codeMap {
		if len(old) == 15 {
			olds = append(olds, old)
		}
	}
	slices.Sort(olds)
	for _, old := range olds {
		if err := moveGridWorkers(ctx, tx, old, codeMap[old], op, actor); err != nil {
			return err
		}
	}
	for _, code := range retired {
		if _, moved := codeMap[code]; moved || len(code) != 15 {
			continue
		}
		prev, err := gridAssignment(ctx, tx, code)
		if err != nil {
			return err
		}
		if prev.Worker == nil && len(prev.Backups) == 0 {
			continue
		}
		kind := "retire"
		if op == OpMerge {
			kind = "merge"
		}
		if err := writeGridWorkers(ctx, tx, code, 0, nil, prev, kind, actor, op+": the grid's code ended"); err != nil {
			return err
		}
	}
	return nil
}

func moveGridWorkers(ctx context.Context, tx pgx.Tx, old, code, op, actor string) error {
	prev, err := gridAssignment(ctx, tx, old)
	if err != nil || (prev.Worker == nil && len(prev.Backups) == 0) {
		return err
	}
	var backups []int64
	for _, b := range prev.Backups {
		backups = append(backups, b.ID)
	}
	if err := writeGridWorkers(ctx, tx, old, 0, nil, prev, "recode", actor, op+": the grid is now "+code); err != nil {
		return err
	}
	next, err := gridAssignment(ctx, tx, code)
	if err != nil {
		return err
	}
	return writeGridWorkers(ctx, tx, code, prev.Worker.ID, backups, next, "recode", actor, op+": the grid was "+old)
}
