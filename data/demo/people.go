package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/data"
	"gridmap/grid"
)

// PeopleResult says what People wrote.
type PeopleResult struct {
	Workers, Supervisors, Handlers int
	Events                         int // events given their people
	Seconds                        float64
}

// People gives the city its people (issue 16): a worker for every
// current base grid (its responsible worker, logged as assigned by the
// demo), a supervisor for every community, two handlers for every
// department; then the events already stored their people: the grid's
// worker as verifier (and as reporter of what grid workers reported), a
// handler of the department for every event dispatched, the verification
// due time on the working calendar and who verified. Names and phones are
// made up and follow from the codes, so the same city gets the same
// people. All in a few set-based statements, so that `make run` stays
// fast on the full city.
func People(ctx context.Context, s *data.Store) (PeopleResult, error) {
	start := time.Now()
	var res PeopleResult
	cfg, err := s.EventConfig(ctx)
	if err != nil {
		return res, err
	}
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		// A made-up Chinese name from a number: surname and given name.
		const name = `(('{王,李,张,刘,陈,杨,黄,赵,吴,周,徐,孙,马,朱,胡,郭,何,林,罗,高}'::text[])[1 + n % 20]
			|| ('{伟,芳,娜,敏,静,丽,强,磊,洋,艳,勇,军,杰,娟,涛,明,超,秀英,华,平}'::text[])[1 + (n / 20) % 20]
			|| ('{"","",一,文,晓,建,志,海}'::text[])[1 + (n / 400) % 8])`
		tag, err := tx.Exec(ctx, `
			INSERT INTO people (name, phone, role, unit_code)
			SELECT `+name+`, '139' || lpad(n::text, 8, '0'), 'worker', code
			FROM (SELECT code, row_number() OVER (ORDER BY code) AS n FROM units
			      WHERE layer = 'base' AND level = 'grid' AND valid_to IS NULL) g`)
		if err != nil {
			return fmt.Errorf("workers: %w", err)
		}
		res.Workers = int(tag.RowsAffected())
		if _, err := tx.Exec(ctx, `
			WITH w AS (
				INSERT INTO grid_workers (grid_code, rank, person_id)
				SELECT unit_code, 0, id FROM people WHERE role = 'worker' AND length(unit_code) = 15
				ON CONFLICT DO NOTHING RETURNING grid_code, person_id)
			INSERT INTO grid_worker_log (grid_code, version, kind, worker_id, actor, reason)
			SELECT grid_code, 1, 'assign', person_id, 'demo', '一格一员' FROM w`); err != nil {
			return fmt.Errorf("grid workers: %w", err)
		}
		tag, err = tx.Exec(ctx, `
			INSERT INTO people (name, phone, role, unit_code)
			SELECT `+name+`, '137' || lpad(n::text, 8, '0'), 'supervisor', code
			FROM (SELECT code, 7919 + row_number() OVER (ORDER BY code) AS n FROM units
			      WHERE layer = 'base' AND level = 'community' AND valid_to IS NULL) c`)
		if err != nil {
			return fmt.Errorf("supervisors: %w", err)
		}
		res.Supervisors = int(tag.RowsAffected())
		tag, err = tx.Exec(ctx, `
			INSERT INTO people (name, phone, role, department)
			SELECT `+name+`, '136' || lpad(n::text, 8, '0'), 'handler', code
			FROM (SELECT code, 3331 + row_number() OVER (ORDER BY code, k) AS n FROM departments, generate_series(1, 2) k) d`)
		if err != nil {
			return fmt.Errorf("handlers: %w", err)
		}
		res.Handlers = int(tag.RowsAffected())
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Events, err = EventPeople(ctx, s, cfg.Calendar)
	res.Seconds = time.Since(start).Seconds()
	return res, err
}

// EventPeople gives the stored events without a verifier, in grids with
// a worker, their people (see People).
func EventPeople(ctx context.Context, s *data.Store, cal *grid.Calendar) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT code, handled_at FROM events WHERE verifier_id IS NULL AND handled_at IS NOT NULL`)
		if err != nil {
			return err
		}
		var codes []string
		var dues []time.Time
		for rows.Next() {
			var c string
			var h time.Time
			if err := rows.Scan(&c, &h); err != nil {
				rows.Close()
				return err
			}
			d, err := cal.Deadline(h, data.DefaultVerifyLimit)
			if err != nil {
				rows.Close()
				return err
			}
			codes, dues = append(codes, c), append(dues, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			WITH due AS (SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS t(code, due)),
			ver AS (SELECT event_code, min(at) AS at FROM event_log WHERE to_status = 'verified' GROUP BY 1),
			h AS (SELECT department, array_agg(id ORDER BY id) AS ids FROM people WHERE role = 'handler' GROUP BY 1)
			UPDATE events e SET
				verifier_id = x.worker,
				reporter_id = CASE WHEN e.source = 'grid_worker' THEN x.worker END,
				handler_id = CASE WHEN e.status NOT IN ('reported', 'registered', 'rejected') AND x.ids IS NOT NULL
					THEN x.ids[1 + abs(hashtext(e.code)) % cardinality(x.ids)] END,
				verify_due = x.due,
				verified_at = x.at,
				verified_by = CASE WHEN x.at IS NOT NULL THEN x.worker END
			FROM (
				SELECT e2.code, g.person_id AS worker, due.due, ver.at, h.ids
				FROM events e2
				JOIN grid_workers g ON g.grid_code = e2.grid_code AND g.rank = 0
				LEFT JOIN due ON due.code = e2.code
				LEFT JOIN ver ON ver.event_code = e2.code
				LEFT JOIN h ON h.department = e2.department_code
				WHERE e2.verifier_id IS NULL) x
			WHERE e.code = x.code`, codes, dues)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		return nil
	})
	return n, err
}
