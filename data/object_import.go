package data

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"

	"gridmap/geo"
	"gridmap/grid"
)

// OnError chooses what a bad row does to an object import.
type OnError string

const (
	OnErrorAbort OnError = "abort" // report every bad row, write nothing
	OnErrorSkip  OnError = "skip"  // report and leave out the bad rows, write the rest
)

// ObjectImportOptions tune a bulk object import.
type ObjectImportOptions struct {
	OnError OnError
	// MaxReported caps the bad rows listed in the report (all are counted).
	MaxReported int
	// Progress, when set, is called every ProgressEvery rows and at the end.
	Progress      func(rows int64, elapsed time.Duration)
	ProgressEvery int64
}

// RowError is one rejected row.
type RowError struct {
	Pos    int64       `json:"pos"`
	Kind   geo.PosKind `json:"kind"` // line or feature
	Code   string      `json:"code,omitempty"`
	Reason string      `json:"reason"`
}

// ObjectImportReport says what an import read and wrote.
type ObjectImportReport struct {
	Rows       int64      `json:"rows"`
	Inserted   int64      `json:"inserted"`
	Updated    int64      `json:"updated"`
	Unchanged  int64      `json:"unchanged"`
	Unassigned int64      `json:"unassigned"`
	Rejected   int64      `json:"rejected"`
	Aborted    bool       `json:"aborted"`
	Errors     []RowError `json:"errors"`
	Seconds    float64    `json:"seconds"`
}

// ImportObjects loads a stream of objects in one transaction without
// holding it in memory: each record is checked and, for points, assigned
// to its grid by the in-memory locator while it is COPYed into a staging
// table; lines and polygons are assigned in one set-based step
// (gridmap_assign); then one INSERT … ON CONFLICT merges the stage into
// objects. Re-importing a code updates it. Objects outside every grid are
// stored unassigned and counted.
//
// Points are located in Go, not by a join in PostGIS, because that is what
// makes 1.6 M rows fit the time budget (docs/benchmarks.md); the locator
// applies the same rule as gridmap_assign (lowest code among the grids
// covering the point), which TestImportAssignmentMatchesBruteForce checks.
func (s *Store) ImportObjects(ctx context.Context, in geo.Stream, o ObjectImportOptions) (*ObjectImportReport, error) {
	imp := &objectImport{in: in, opts: o, start: time.Now(), rep: &ObjectImportReport{Errors: []RowError{}}}
	if err := imp.opts.setDefaults(); err != nil {
		return nil, err
	}
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	// No import of units runs meanwhile (it holds this lock exclusively);
	// edits may, and lockStageGrids orders the import against them.
	if err := lockUnits(ctx, tx, true); err != nil {
		return nil, err
	}
	if err := s.stageObjects(ctx, tx, imp); err != nil {
		return nil, err
	}
	trace("copy", imp.start)
	if err := imp.checkStage(ctx, tx); err != nil {
		return nil, err
	}
	rep := imp.rep
	if rep.Rejected > 0 && imp.opts.OnError == OnErrorAbort {
		rep.Aborted = true
		rep.Seconds = time.Since(imp.start).Seconds()
		return rep, nil
	}
	if err := guardStage(ctx, tx); err != nil {
		return nil, err
	}
	if err := imp.writeObjects(ctx, tx); err != nil {
		return nil, err
	}
	trace("merge", imp.start)
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	if rep.Inserted+rep.Updated >= 10000 {
		if _, err := s.Pool.Exec(ctx, `ANALYZE objects`); err != nil {
			return nil, err
		}
	}
	trace("commit+analyze", imp.start)
	rep.Seconds = time.Since(imp.start).Seconds()
	return rep, nil
}

// setDefaults fills in the options left zero and checks OnError.
func (o *ObjectImportOptions) setDefaults() error {
	if o.OnError == "" {
		o.OnError = OnErrorAbort
	}
	if o.OnError != OnErrorAbort && o.OnError != OnErrorSkip {
		return fmt.Errorf("on-error %q: use abort or skip", o.OnError)
	}
	if o.MaxReported <= 0 {
		o.MaxReported = 1000
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 100000
	}
	return nil
}

// objectImport is one run of ImportObjects: its stream, its options (with
// defaults) and what it has found so far.
type objectImport struct {
	in    geo.Stream
	opts  ObjectImportOptions
	start time.Time
	rep   *ObjectImportReport
}

// reject counts a bad row and lists it while the report has room.
func (imp *objectImport) reject(pos int64, code, reason string) {
	imp.rep.Rejected++
	if len(imp.rep.Errors) < imp.opts.MaxReported {
		imp.rep.Errors = append(imp.rep.Errors, RowError{Pos: pos, Kind: imp.in.PosKind(), Code: code, Reason: reason})
	}
}

// progress tells the caller, when it asked, how far the stream has been
// read.
func (imp *objectImport) progress() {
	if imp.opts.Progress != nil {
		imp.opts.Progress(imp.rep.Rows, time.Since(imp.start))
	}
}

// stageObjects COPYs the stream into the temporary table obj_stage,
// checking each record against the class catalogue and locating points
// among the current grids on the way.
func (s *Store) stageObjects(ctx context.Context, tx pgx.Tx, imp *objectImport) error {
	classes, err := s.Classes(ctx)
	if err != nil {
		return err
	}
	// The grids the points are located among, as lockStageGrids compares
	// them with the grids it locks.
	if _, err := tx.Exec(ctx, `
		CREATE TEMP TABLE obj_grids ON COMMIT DROP AS
		SELECT id FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid'`); err != nil {
		return err
	}
	grids, err := loadUnits(ctx, tx, `WHERE id IN (SELECT id FROM obj_grids)`)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		CREATE TEMP TABLE obj_stage (
			pos        bigint NOT NULL,
			code       text NOT NULL,
			class_code text NOT NULL,
			geom       geometry NOT NULL,
			attrs      jsonb NOT NULL,
			grid_code  text,
			located    boolean NOT NULL
		) ON COMMIT DROP`); err != nil {
		return err
	}
	src := &objectSource{imp: imp, classes: classes, loc: grid.NewLocator(grids)}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"obj_stage"},
		[]string{"pos", "code", "class_code", "geom", "attrs", "grid_code", "located"}, src); err != nil {
		if src.fatal != nil {
			return &FatalImportError{src.fatal}
		}
		return fmt.Errorf("stage objects: %w", err)
	}
	if imp.rep.Rows%imp.opts.ProgressEvery != 0 {
		imp.progress() // the last, partial stretch
	}
	return nil
}

// checkStage applies the rules that need PostGIS or the whole set, and
// assigns lines, polygons and multipoints to grids. Bad rows are
// rejected; those with invalid geometry also leave the stage.
func (imp *objectImport) checkStage(ctx context.Context, tx pgx.Tx) error {
	// Invalid lines and polygons cannot be intersected with grids (GEOS
	// throws): they are rejected with PostGIS's reason and leave the stage.
	if err := imp.stageRejects(ctx, tx, `
		SELECT pos, code, 'geometry: invalid geometry: ' || ST_IsValidReason(geom)
		FROM obj_stage WHERE NOT located AND NOT ST_IsValid(geom) ORDER BY 1`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM obj_stage WHERE NOT located AND NOT ST_IsValid(geom)`); err != nil {
		return err
	}
	// Lines, polygons and multipoints: the grid holding the largest share.
	if _, err := tx.Exec(ctx, `UPDATE obj_stage SET grid_code = gridmap_assign(geom) WHERE NOT located`); err != nil {
		return fmt.Errorf("assign lines and polygons: %w", err)
	}
	trace("assign", imp.start)
	// Edits may change grids meanwhile: lock those the rows are in, and
	// assign again what an edit committed before the locks moved.
	if err := lockStageGrids(ctx, tx); err != nil {
		return err
	}
	trace("lock grids", imp.start)
	// Rules that need the whole set: a component or house code names the
	// district the object lies in; a code appears once per file.
	return imp.stageRejects(ctx, tx, `
		SELECT s.pos, s.code, 'code names district ' || left(s.code, 6) || ', but the object lies in district '
		       || left(s.grid_code, 6) || ' (grid ' || s.grid_code || ')'
		FROM obj_stage s JOIN object_classes c ON c.code = s.class_code
		WHERE NOT s.located AND s.grid_code IS NOT NULL AND c.kind IN ('component', 'building')
		  AND left(s.code, 6) <> left(s.grid_code, 6)
		UNION ALL
		SELECT s.pos, s.code, 'duplicate code (first at ' || d.first || ')'
		FROM (SELECT code, min(pos) AS first FROM obj_stage GROUP BY code HAVING count(*) > 1) d
		JOIN obj_stage s ON s.code = d.code AND s.pos <> d.first
		ORDER BY 1`)
}

// stageRejects rejects the rows q finds (pos, code, reason).
func (imp *objectImport) stageRejects(ctx context.Context, tx pgx.Tx, q string) error {
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return err
	}
	return forEach(rows, func() error {
		var pos int64
		var code, reason string
		if err := rows.Scan(&pos, &code, &reason); err != nil {
			return err
		}
		imp.reject(pos, code, reason)
		return nil
	})
}

// guardStage runs the context's guard on every grid the import touches:
// where each row goes and where the object it replaces is now ("" for
// outside every grid).
func guardStage(ctx context.Context, tx pgx.Tx) error {
	if !guarded(ctx) {
		return nil
	}
	rows, err := tx.Query(ctx, `
		SELECT coalesce(grid_code, '') FROM obj_stage
		UNION SELECT coalesce(o.grid_code, '') FROM obj_stage s JOIN objects o USING (code)`)
	if err != nil {
		return err
	}
	var units []string
	err = forEach(rows, func() error {
		var u string
		err := rows.Scan(&u)
		units = append(units, u)
		return err
	})
	if err != nil {
		return err
	}
	return checkUnits(ctx, units...)
}

// writeObjects leaves the rejected rows out of the stage (on_error=skip)
// and writes the rest into objects: a bulk load into an empty table, else
// a merge.
func (imp *objectImport) writeObjects(ctx context.Context, tx pgx.Tx) error {
	rep := imp.rep
	if rep.Rejected > 0 {
		if _, err := tx.Exec(ctx, `
			DELETE FROM obj_stage s USING object_classes c
			WHERE c.code = s.class_code AND NOT s.located AND s.grid_code IS NOT NULL
			  AND c.kind IN ('component', 'building') AND left(s.code, 6) <> left(s.grid_code, 6);
			DELETE FROM obj_stage s WHERE EXISTS (SELECT 1 FROM obj_stage f WHERE f.code = s.code AND f.pos < s.pos)`); err != nil {
			return err
		}
	}
	var staged int64
	if err := tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE grid_code IS NULL) FROM obj_stage`).Scan(&staged, &rep.Unassigned); err != nil {
		return err
	}
	bulk, err := bulkLoadInto(ctx, tx, staged)
	if err != nil {
		return err
	}
	if bulk {
		rep.Inserted = staged
	} else if err := mergeStage(ctx, tx, rep, actorOf(ctx)); err != nil {
		return err
	}
	rep.Unchanged = staged - rep.Inserted - rep.Updated
	return nil
}

// mergeStage upserts the stage into objects: new codes are inserted, changed
// ones updated, identical ones left alone.
func mergeStage(ctx context.Context, tx pgx.Tx, rep *ObjectImportReport, actor string) error {
	err := tx.QueryRow(ctx, `
		WITH up AS (
			INSERT INTO objects AS o (code, class_code, geom, attrs, grid_code, updated_by)
			SELECT code, class_code, geom, attrs, grid_code, $1 FROM obj_stage
			ON CONFLICT (code) DO UPDATE SET class_code = EXCLUDED.class_code, geom = EXCLUDED.geom,
				attrs = EXCLUDED.attrs, grid_code = EXCLUDED.grid_code, updated_at = now(), updated_by = EXCLUDED.updated_by
			WHERE (o.class_code, o.attrs, o.grid_code) IS DISTINCT FROM (EXCLUDED.class_code, EXCLUDED.attrs, EXCLUDED.grid_code)
			   OR NOT o.geom = EXCLUDED.geom
			RETURNING (xmax = 0) AS inserted
		)
		SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up`, actor).Scan(&rep.Inserted, &rep.Updated)
	if err != nil {
		return fmt.Errorf("merge objects: %w", err)
	}
	return nil
}

// bulkMinRows is the size from which a load into an empty objects table
// drops the table's indexes and builds them afresh: building a B-tree or a
// (sorted) GiST once is several times cheaper than inserting 1.6 M entries
// one by one (docs/benchmarks.md).
const bulkMinRows = 50000

// bulkLoadInto loads the stage into an empty objects table without its
// indexes and rebuilds them from their own definitions. Dropping indexes
// takes an ACCESS EXCLUSIVE lock, held to the commit, which stops every
// reader of objects: so only an empty table, where readers have nothing to
// miss, is loaded this way, and only when the lock is free at once (a lock
// request waiting behind a long read would queue every later reader behind
// it). It reports false, doing nothing, when the table is not empty, the
// lock is taken or the load is small; the caller then merges, which takes
// row locks only.
func bulkLoadInto(ctx context.Context, tx pgx.Tx, staged int64) (bool, error) {
	if staged < bulkMinRows {
		return false, nil
	}
	var empty bool
	if err := tx.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM objects)`).Scan(&empty); err != nil || !empty {
		return false, err
	}
	if locked, err := lockNowait(ctx, tx, `LOCK TABLE objects IN ACCESS EXCLUSIVE MODE NOWAIT`); err != nil || !locked {
		return false, err
	}
	// A writer may have added objects between the look and the lock.
	if err := tx.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM objects)`).Scan(&empty); err != nil || !empty {
		return false, err
	}
	rows, err := tx.Query(ctx, `
		SELECT 'ALTER TABLE objects DROP CONSTRAINT ' || quote_ident(conname),
		       'ALTER TABLE objects ADD CONSTRAINT ' || quote_ident(conname) || ' ' || pg_get_constraintdef(oid)
		FROM pg_constraint WHERE conrelid = 'objects'::regclass AND contype IN ('p', 'u')
		UNION ALL
		SELECT 'DROP INDEX ' || indexrelid::regclass::text, pg_get_indexdef(indexrelid)
		FROM pg_index i
		WHERE indrelid = 'objects'::regclass
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)`)
	if err != nil {
		return false, err
	}
	var drops, creates []string
	if err := forEach(rows, func() error {
		var d, c string
		if err := rows.Scan(&d, &c); err != nil {
			return err
		}
		drops, creates = append(drops, d), append(creates, c)
		return nil
	}); err != nil {
		return false, err
	}
	for _, q := range drops {
		if _, err := tx.Exec(ctx, q); err != nil {
			return false, fmt.Errorf("%s: %w", q, err)
		}
	}
	t := time.Now()
	if _, err := tx.Exec(ctx, `
		INSERT INTO objects (code, class_code, geom, attrs, grid_code, updated_by)
		SELECT code, class_code, geom, attrs, grid_code, $1 FROM obj_stage`, actorOf(ctx)); err != nil {
		return false, fmt.Errorf("load objects: %w", err)
	}
	trace("insert", t)
	if _, err := tx.Exec(ctx, `SET LOCAL maintenance_work_mem = '1GB'`); err != nil {
		return false, err
	}
	for _, q := range creates {
		t := time.Now()
		if _, err := tx.Exec(ctx, q); err != nil {
			return false, fmt.Errorf("%s: %w", q, err)
		}
		trace(strings.Fields(q)[2], t) // the index or constraint's name
	}
	return true, nil
}

// trace prints the time since start of a step when GRIDMAP_TRACE is set
// (gridmap bench objects uses it to show where an import spends its time).
func trace(what string, start time.Time) {
	if os.Getenv("GRIDMAP_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "trace: %-16s %.2fs\n", what, time.Since(start).Seconds())
	}
}

// objectSource feeds COPY from the stream: it checks each record, locates
// points, and hands over rows; bad records are reported, not copied.
type objectSource struct {
	imp     *objectImport
	classes map[string]grid.Class
	loc     *grid.Locator
	row     []any
	fatal   error
}

func (s *objectSource) Next() bool {
	for {
		rec, err := s.imp.in.Next()
		if err == io.EOF {
			return false
		}
		if err != nil {
			s.fatal = err
			return false
		}
		s.imp.rep.Rows++
		if s.imp.rep.Rows%s.imp.opts.ProgressEvery == 0 {
			s.imp.progress()
		}
		row, code, err := s.prepare(rec)
		if err != nil {
			s.imp.reject(rec.Pos, code, err.Error())
			continue
		}
		// After a rejection in abort mode nothing will be written, but the
		// rows still go to the stage: duplicates and the set-based rules
		// are found there, so the report lists every bad row.
		s.row = row
		return true
	}
}

func (s *objectSource) prepare(rec geo.Record) ([]any, string, error) {
	code, _ := rec.Properties["code"].(string)
	if rec.Err != nil {
		return nil, code, rec.Err
	}
	cls, _ := rec.Properties["class"].(string)
	o := grid.Object{Code: code, Class: cls, Geometry: rec.Geometry}
	if raw, ok := rec.Properties["attrs"].(json.RawMessage); ok {
		o.Attrs = raw
	} else if a, ok := rec.Properties["attrs"]; ok {
		b, err := json.Marshal(a)
		if err != nil {
			return nil, code, err
		}
		o.Attrs = b
	} else {
		rest := make(map[string]any, len(rec.Properties))
		for k, v := range rec.Properties {
			if k != "code" && k != "class" {
				rest[k] = v
			}
		}
		b, _ := json.Marshal(rest)
		o.Attrs = b
	}
	c, err := CheckObject(s.classes, &o)
	if err != nil {
		return nil, code, err
	}
	wkb, err := geo.EWKB(o.Geometry)
	if err != nil {
		return nil, code, err
	}
	var gridCode any
	p, isPoint := o.Geometry.(orb.Point)
	if isPoint {
		if g := s.loc.Find(grid.BaseLayer, grid.Grid, p); g != nil {
			if err := checkDistrict(c, o.Code, g.Code); err != nil {
				return nil, code, err
			}
			gridCode = g.Code
		}
	}
	return []any{rec.Pos, o.Code, o.Class, wkb, string(o.Attrs), gridCode, isPoint}, code, nil
}

func (s *objectSource) Values() ([]any, error) { return s.row, nil }
func (s *objectSource) Err() error             { return s.fatal }
