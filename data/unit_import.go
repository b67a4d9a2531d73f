package data

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/geo"
	"gridmap/grid"
)

// UnitImportOptions tune an import of units.
type UnitImportOptions struct {
	// Repair makes invalid geometry valid (ST_MakeValid, polygonal parts
	// only) and reports each repair as a warning instead of a violation.
	Repair bool
	// ToleranceM2 is the area below which overlaps, gaps and parts outside a
	// parent are ignored as noise. Zero means DefaultToleranceM2.
	ToleranceM2 float64
	// Complete declares every imported unit that has children (in the
	// import or the store) complete: gaps under it are violations, not
	// warnings, now and in later imports.
	Complete bool
	// DryRun checks everything and writes nothing.
	DryRun bool
	// Actor and Reason are recorded with the new versions.
	Actor, Reason string
	// Operation names what writes (an edit's name; "import" when empty).
	Operation string
	// MaxFindings caps the violations and the warnings listed in the
	// report (each; DefaultMaxFindings when ≤ 0); the rest are counted by
	// rule.
	MaxFindings int
}

// DefaultToleranceM2 is the default noise threshold of the topology checks.
const DefaultToleranceM2 = 1.0

// UnitsChannel is the NOTIFY channel told of every committed unit change.
const UnitsChannel = "gridmap_units"

// ImportUnits validates drafts against the coding and topology rules and,
// when nothing is violated, writes them in one transaction: new codes are
// inserted, changed ones get a new version (the old one keeps its validity
// interval), identical ones are left alone. pre carries the violations found
// before the database was reached (parsing, codes); they are reported with
// the rest and also stop the import. On any violation nothing is written.
func (s *Store) ImportUnits(ctx context.Context, drafts []grid.Draft, pre []grid.Violation, opts UnitImportOptions) (*UnitImportReport, error) {
	start := time.Now()
	tol := opts.ToleranceM2
	if tol <= 0 {
		tol = DefaultToleranceM2
	}
	r := &UnitImportReport{Units: len(drafts), DryRun: opts.DryRun, maxFindings: opts.MaxFindings}
	for _, v := range pre {
		r.add(v)
	}
	tx, err := beginCheck(ctx, s, opts.DryRun)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, createStage); err != nil {
		return nil, err
	}
	if err := copyDrafts(ctx, tx, drafts); err != nil {
		return nil, err
	}
	if err := checkStage(ctx, tx, tol, opts, r); err != nil {
		return nil, err
	}
	if !r.OK() || opts.DryRun {
		r.Seconds = time.Since(start).Seconds()
		return r, nil
	}
	if err := writeStage(ctx, tx, opts, r); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	// A bulk load leaves the planner blind until autovacuum comes round;
	// spatial joins planned without statistics can be 100× slower.
	if r.Inserted+r.Updated >= 1000 {
		if _, err := s.Pool.Exec(ctx, `ANALYZE units`); err != nil {
			return nil, fmt.Errorf("analyze units: %w", err)
		}
	}
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// checkStage runs the rules on the stage filled by an import or an edit
// (the one check path of DESIGN §9): validity (repaired with opts.Repair),
// parents, containment, overlaps and gaps, adding the findings to r.
func checkStage(ctx context.Context, tx pgx.Tx, tol float64, opts UnitImportOptions, r *UnitImportReport) error {
	if err := checkValidity(ctx, tx, opts.Repair, r); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE stage SET geom = ST_ForcePolygonCCW(ST_Multi(geom)) WHERE ok`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, indexStage); err != nil {
		return err
	}
	if err := checkParents(ctx, tx, r); err != nil {
		return err
	}
	if err := checkTopology(ctx, tx, tol, opts.Complete, r); err != nil {
		return err
	}
	r.sortFindings()
	return nil
}

// beginCheck begins the transaction of a unit import or check. An import
// takes the units lock exclusively: one import at a time, since the checks
// read neighbours that a concurrent import could be changing, and no object
// is assigned to grids it is replacing. A dry run writes only its
// temporary tables: it takes no lock, and reads one snapshot (REPEATABLE
// READ) so that an import committing meanwhile cannot show it half a city.
// It cannot be READ ONLY, which refuses CREATE TEMP TABLE.
func beginCheck(ctx context.Context, s *Store, dryRun bool) (pgx.Tx, error) {
	if dryRun {
		return s.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	}
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if err := lockUnits(ctx, tx, false); err != nil {
		tx.Rollback(context.Background())
		return nil, err
	}
	if err := stampUnits(ctx, tx); err != nil {
		tx.Rollback(context.Background())
		return nil, err
	}
	return tx, nil
}

// unitStamp is the time a unit write stamps its versions with (valid_from
// of the new, valid_to of the closed), and by which it finds them again.
// It is not now(), the transaction's start: a write that waited on a lock
// for another to commit would stamp its versions before that one's, and
// close a version before it began.
const unitStamp = `current_setting('gridmap.unit_stamp')::timestamptz`

// stampUnits sets unitStamp, once the write holds its locks.
func stampUnits(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT set_config('gridmap.unit_stamp', clock_timestamp()::text, true)`)
	return err
}

// copyDrafts encodes each row as COPY sends it: encoded all at once, the
// rows held the import's geometry a second time.
func copyDrafts(ctx context.Context, tx pgx.Tx, drafts []grid.Draft) error {
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"stage"},
		[]string{"feature", "layer", "code", "level", "name", "parent_code", "complete", "geom"},
		pgx.CopyFromSlice(len(drafts), func(i int) ([]any, error) {
			d := drafts[i]
			b, err := geo.EWKB(d.Geometry)
			if err != nil {
				return nil, fmt.Errorf("features[%d]: encode geometry: %w", d.Feature, err)
			}
			var parent *string
			if d.ParentCode != "" {
				parent = &d.ParentCode
			}
			return []any{int32(d.Feature), d.Layer, d.Code, string(d.Level), d.Name, parent, d.Complete, b}, nil
		}))
	if err != nil {
		return fmt.Errorf("stage units: %w", err)
	}
	return nil
}

// checkValidity applies rule 1 with PostGIS's own reasons and locations.
func checkValidity(ctx context.Context, tx pgx.Tx, repair bool, r *UnitImportReport) error {
	rows, err := tx.Query(ctx, `
		SELECT feature, code, (d).reason, ST_X((d).location), ST_Y((d).location), ST_AsGeoJSON(geom, 9),
		       gridmap_area_m2(ST_MakeValid(geom))
		FROM (SELECT feature, code, geom, ST_IsValidDetail(geom) AS d FROM stage) x
		WHERE NOT (d).valid ORDER BY feature`)
	if err != nil {
		return err
	}
	type bad struct {
		feature      int
		code, reason string
		area         float64 // of the geometry made valid
		x, y         *float64
		geometry     string
	}
	var found []bad
	if err := forEach(rows, func() error {
		var b bad
		if err := rows.Scan(&b.feature, &b.code, &b.reason, &b.x, &b.y, &b.geometry, &b.area); err != nil {
			return err
		}
		found = append(found, b)
		return nil
	}); err != nil {
		return err
	}
	for _, b := range found {
		where, loc := "", []float64(nil)
		if b.x != nil && b.y != nil {
			where = fmt.Sprintf(" at %.6f %.6f", *b.x, *b.y)
			loc = []float64{*b.x, *b.y}
		}
		f := b.feature
		v := grid.Violation{Rule: grid.RuleInvalidGeometry, Severity: grid.SeverityError, Codes: []string{b.code}, Feature: &f,
			Message: fmt.Sprintf("features[%d] %s: %s%s", b.feature, b.code, b.reason, where), Geometry: json.RawMessage(b.geometry), Location: loc,
			AreaM2: &b.area}
		if !repair {
			r.add(v)
			continue
		}
		var area float64
		var empty bool
		err := tx.QueryRow(ctx, `
			UPDATE stage SET geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3))
			WHERE feature = $1
			RETURNING ST_Area(geom::geography), ST_IsEmpty(geom)`, b.feature).Scan(&area, &empty)
		if err != nil {
			return fmt.Errorf("repair features[%d]: %w", b.feature, err)
		}
		if empty {
			v.Message += "; repair left no polygon"
			r.add(v)
			continue
		}
		v.Rule, v.Severity, v.AreaM2 = grid.RuleRepaired, grid.SeverityWarning, &area
		v.Message = fmt.Sprintf("features[%d] %s: %s%s; repaired with ST_MakeValid, %.1f m² remain", b.feature, b.code, b.reason, where, area)
		r.add(v)
	}
	if !repair && len(found) > 0 {
		_, err := tx.Exec(ctx, `UPDATE stage SET ok = false WHERE NOT ST_IsValid(geom)`)
		return err
	}
	return nil
}

func checkParents(ctx context.Context, tx pgx.Tx, r *UnitImportReport) error {
	rows, err := tx.Query(ctx, unknownParents)
	if err != nil {
		return err
	}
	return forEach(rows, func() error {
		var f int
		var code, parent, level, gj string
		var area float64
		if err := rows.Scan(&f, &code, &parent, &level, &gj, &area); err != nil {
			return err
		}
		r.add(grid.Violation{Rule: grid.RuleUnknownParent, Severity: grid.SeverityError, Codes: []string{code, parent}, Feature: &f,
			Message:  fmt.Sprintf("features[%d] %s: parent %s %s is neither in this import nor in the store", f, code, grid.Level(level).Parent(), parent),
			Geometry: json.RawMessage(gj), AreaM2: &area})
		return nil
	})
}

// writeStage turns stage into current versions and ends the units in
// retire; objects and open events follow the grids that changed. An import
// and every edit write through it.
func writeStage(ctx context.Context, tx pgx.Tx, opts UnitImportOptions, r *UnitImportReport) error {
	op := opts.Operation
	if op == "" {
		op = "import"
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO layers (name) SELECT DISTINCT layer FROM stage ON CONFLICT DO NOTHING;
		CREATE TEMP TABLE outcome ON COMMIT DROP AS
		SELECT s.layer, s.code, u.version AS old_version,
		       CASE WHEN u.code IS NULL THEN 'insert'
		            WHEN u.name = s.name AND u.parent_code IS NOT DISTINCT FROM s.parent_code
		                 AND u.complete = s.complete AND u.geom = s.geom THEN 'same'
		            ELSE 'update' END AS what
		FROM stage s
		LEFT JOIN units u ON u.valid_to IS NULL AND u.layer = s.layer AND u.code = s.code`); err != nil {
		return fmt.Errorf("close old versions: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE units u SET valid_to = `+unitStamp+`, closed_by = $1, close_reason = $2, close_operation = $3
		FROM outcome o
		WHERE o.what = 'update' AND u.valid_to IS NULL AND u.layer = o.layer AND u.code = o.code`, opts.Actor, opts.Reason, op); err != nil {
		return fmt.Errorf("close old versions: %w", err)
	}
	retired, err := tx.Exec(ctx, `
		UPDATE units u SET valid_to = `+unitStamp+`, closed_by = $1, close_reason = $2, close_operation = $3, close_related = r.related
		FROM retire r
		WHERE u.valid_to IS NULL AND u.layer = r.layer AND u.code = r.code`, opts.Actor, opts.Reason, op)
	if err != nil {
		return fmt.Errorf("retire units: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO units (layer, code, level, name, parent_code, complete, geom, area_m2, version, valid_from, changed_by, change_reason,
		                   operation, related_codes)
		SELECT s.layer, s.code, s.level, s.name, s.parent_code, s.complete, s.geom, ST_Area(s.geom::geography),
		       coalesce(o.old_version, 0) + 1, `+unitStamp+`, $1, $2, $3, s.related
		FROM stage s JOIN outcome o ON o.layer = s.layer AND o.code = s.code
		WHERE o.what <> 'same'
		ORDER BY s.layer, s.code`, opts.Actor, opts.Reason, op); err != nil {
		return fmt.Errorf("write units: %w", err)
	}
	if err := tx.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE what = 'insert'), count(*) FILTER (WHERE what = 'update'), count(*) FILTER (WHERE what = 'same')
		FROM outcome`).Scan(&r.Inserted, &r.Updated, &r.Unchanged); err != nil {
		return err
	}
	// Objects follow their grids: those touching a grid this write
	// changed are assigned again, in the same transaction.
	moved, err := reassignRegion(ctx, tx, changedGridsRegion)
	if err != nil {
		return fmt.Errorf("re-assign objects: %w", err)
	}
	r.ObjectsMoved = len(moved)
	// So do open events; closed ones keep the grid they were handled in.
	if r.EventsMoved, err = moveOpenEvents(ctx, tx, opts.Actor, op, opts.Reason); err != nil {
		return fmt.Errorf("move open events: %w", err)
	}
	if n := r.Inserted + r.Updated + int(retired.RowsAffected()); n > 0 {
		payload, _ := json.Marshal(map[string]any{"operation": op, "inserted": r.Inserted, "updated": r.Updated, "retired": retired.RowsAffected()})
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, UnitsChannel, string(payload)); err != nil {
			return err
		}
		// Last: the feed lock is held to commit.
		if err := queueImportChanges(ctx, tx, opts); err != nil {
			return err
		}
	}
	return nil
}

// moveOpenEvents moves every open event whose grid this transaction closed
// or whose point lies in a grid it wrote (and is now in another grid) to
// the grid that holds it now, with a line in its log and a feed entry (a
// transition that keeps the status), and returns how many moved. It takes
// the feed's lock, so it is the last work of a unit write.
func moveOpenEvents(ctx context.Context, tx pgx.Tx, actor, op, reason string) (int, error) {
	rows, err := tx.Query(ctx, `
		WITH changed AS (`+changedGridsRegion+`),
		cand AS (
			SELECT e.code, e.reported_on, e.grid_code AS old_grid, gridmap_assign(e.geom) AS new_grid
			FROM events e
			WHERE gridmap_open_status(e.status)
			  AND (e.grid_code IN (SELECT code FROM units WHERE layer = 'base' AND level = 'grid' AND valid_to = `+unitStamp+`)
			       OR EXISTS (SELECT 1 FROM changed c WHERE e.geom && c.g AND ST_Intersects(e.geom, c.g)))
		), moved AS (
			UPDATE events e SET grid_code = c.new_grid, version = e.version + 1, updated_at = now()
			FROM cand c
			WHERE e.code = c.code AND e.reported_on = c.reported_on AND c.new_grid IS NOT NULL AND c.new_grid <> c.old_grid
			RETURNING e.code, c.old_grid, e.grid_code, e.status, e.class_code, ST_X(e.geom) AS lon, ST_Y(e.geom) AS lat,
			          e.department_code, e.reported_at, e.deadline, e.version
		)
		SELECT m.code, m.old_grid, m.grid_code, m.status, m.class_code, c.name, m.lon, m.lat, m.department_code,
		       m.reported_at, m.deadline, m.version, now()
		FROM moved m JOIN event_classes c ON c.code = m.class_code
		ORDER BY m.code`)
	if err != nil {
		return 0, err
	}
	var feed []FeedBody
	err = forEach(rows, func() error {
		var f FeedBody
		var old, status string
		if err := rows.Scan(&f.Code, &old, &f.GridCode, &status, &f.Class, &f.ClassName, &f.Lon, &f.Lat, &f.Department,
			&f.ReportedAt, &f.Deadline, &f.Version, &f.At); err != nil {
			return err
		}
		f.Type, f.Status, f.From, f.Actor = "transition", grid.EventStatus(status), grid.EventStatus(status), actor
		f.Note = fmt.Sprintf("grid %s → %s: units %s", old, f.GridCode, op)
		if reason != "" {
			f.Note += " (" + reason + ")"
		}
		feed = append(feed, f)
		return nil
	})
	if err != nil || len(feed) == 0 {
		return 0, err
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO event_log (event_code, reported_on, n, from_status, to_status, actor, note, at)
		SELECT c, gridmap_event_day(c),
			(SELECT coalesce(max(n), 0) + 1 FROM event_log WHERE event_code = c AND reported_on = gridmap_event_day(c)), st, st, $4, no, now()
		FROM unnest($1::text[], $2::text[], $3::text[]) AS t(c, st, no)`,
		column(feed, func(f FeedBody) string { return f.Code }),
		column(feed, func(f FeedBody) string { return string(f.Status) }),
		column(feed, func(f FeedBody) string { return f.Note }), actor)
	// The feed's from_status is one per statement: one group per status.
	byStatus := map[grid.EventStatus][]FeedBody{}
	var order []grid.EventStatus
	for _, f := range feed {
		if byStatus[f.Status] == nil {
			order = append(order, f.Status)
		}
		byStatus[f.Status] = append(byStatus[f.Status], f)
	}
	for _, st := range order {
		if err := queueFeed(b, "transition", st, byStatus[st]); err != nil {
			return 0, err
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, err
	}
	return len(feed), nil
}
