package data

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// Unit edits (DESIGN §9): each is a small import with an operation name.
// It fills the same stage an import fills (and a retire table), runs the
// same checks (checkStage) and writes through the same writeStage, which
// closes and inserts versions, re-assigns objects, moves open events and
// notifies. Only how the stage is filled differs per operation.

// Edit operations.
const (
	OpReshape = "reshape"
	OpRetire  = "retire"
	OpMerge   = "merge"
	OpCreate  = "create"
	OpRevert  = "revert"
)

// UnitEdit is one edit of units.
type UnitEdit struct {
	Operation string
	Layer     string // "" is the base layer
	// Code is the unit edited (reshape, retire, revert); for create the
	// new unit's code, "" for the next free one under Parent.
	Code string
	// Codes are the units a merge joins; Keep the one that survives.
	Codes []string
	Keep  string
	// Into is the sibling that takes a retired unit's area.
	Into string
	// Geometry is the new outline as EWKB (reshape, create); nil keeps it.
	Geometry []byte
	// Name is the new name (reshape, create); nil keeps it.
	Name *string
	// Parent and Level of a created unit (Level defaults to the parent's
	// child level).
	Parent string
	Level  grid.Level
	// Adjust (neighbours=adjust): the siblings give what the unit gains and
	// take what it loses.
	Adjust bool
	// Version is the version a revert goes back to.
	Version int
	// IfMatch holds the revisions (UnitRow.Revision) the caller read; every
	// unit the edit names must have its current revision among them. Nil
	// checks nothing (the command line; the API always sends them).
	IfMatch []string
	Reason  string
	DryRun  bool
	Repair  bool
	// ToleranceM2 as on import; zero is DefaultToleranceM2.
	ToleranceM2 float64
}

// UnitVersion names a version of a unit.
type UnitVersion struct {
	Code    string `json:"code"`
	Version int    `json:"version"`
}

// UnitEditResult is what an edit wrote (or, dry, would write).
type UnitEditResult struct {
	Operation       string            `json:"operation"`
	DryRun          bool              `json:"dry_run"`
	UnitsWritten    []UnitVersion     `json:"units_written"`
	UnitsRetired    []string          `json:"units_retired"`
	NewCodes        []string          `json:"new_codes"`
	CodeMap         map[string]string `json:"code_map"`
	ObjectsMoved    int               `json:"objects_moved"`
	OpenEventsMoved int               `json:"open_events_moved"`
	// ChangedArea is the area whose unit changed (GeoJSON), null when none.
	ChangedArea json.RawMessage  `json:"changed_area"`
	Warnings    []grid.Violation `json:"warnings"`
	Seconds     float64          `json:"seconds"`
	// Report holds the findings; when it is not OK nothing was written
	// and the rest of the result is empty.
	Report *UnitImportReport `json:"-"`
}

// UnitETag is the ETag of a unit's revision as the API sends it for a
// full-geometry read.
func UnitETag(revision string) string { return `"` + revision + `-full"` }

// editUnit is the current version of a unit an edit names.
type editUnit struct {
	code, level, name, revision string
	parent                      *string
	version                     int
	complete                    bool
}

// EditUnits runs one edit in one transaction. A unit that does not exist
// is ErrNotFound, a retired one ErrGone, a stale precondition a
// *StaleError, bad arguments an *InvalidError, a taken code ErrExists;
// findings of the rules come back in the result's Report with nothing
// written. A deadlock with a concurrent edit is retried.
func (s *Store) EditUnits(ctx context.Context, e UnitEdit) (*UnitEditResult, error) {
	var res *UnitEditResult
	err := retryTx(ctx, func() error {
		var err error
		res, err = s.editUnits(ctx, e)
		return err
	})
	return res, err
}

func (s *Store) editUnits(ctx context.Context, e UnitEdit) (*UnitEditResult, error) {
	start := time.Now()
	if e.Layer == "" {
		e.Layer = grid.BaseLayer
	}
	tol := e.ToleranceM2
	if tol <= 0 {
		tol = DefaultToleranceM2
	}
	named, err := e.named()
	if err != nil {
		return nil, err
	}
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	// An import excludes edits (it holds this lock exclusively); edits
	// share it, and order themselves by row locks on the units they touch:
	// the units named, their children, their siblings and their parents,
	// taken in code order so that two edits never wait on each other.
	if err := lockUnits(ctx, tx, true); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `
		SELECT 1 FROM units
		WHERE valid_to IS NULL AND layer = $1 AND (
		    code = ANY($2) OR parent_code = ANY($2)
		    OR parent_code IN (SELECT parent_code FROM units WHERE valid_to IS NULL AND layer = $1 AND code = ANY($2))
		    OR code IN (SELECT parent_code FROM units WHERE valid_to IS NULL AND layer = $1 AND code = ANY($2)))
		ORDER BY code
		FOR UPDATE`, e.Layer, named); err != nil {
		return nil, fmt.Errorf("lock units: %w", err)
	}
	// Read after the locks: a statement that waited saw the rows as they
	// were when it began; this one sees what the edit before committed.
	cur, err := currentUnits(ctx, tx, e.Layer, named)
	if err != nil {
		return nil, err
	}
	if err := e.precondition(cur); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, createStage); err != nil {
		return nil, err
	}
	res := &UnitEditResult{Operation: e.Operation, DryRun: e.DryRun, CodeMap: map[string]string{}}
	if err := e.fill(ctx, tx, cur, tol, res); err != nil {
		return nil, err
	}
	// Every unit written or retired passes the guard before anything else
	// is learnt of it; professional layers' codes are their own (their
	// writers are admins, checked by the API).
	if e.Layer == grid.BaseLayer && guarded(ctx) {
		rows, err := tx.Query(ctx, `SELECT code FROM stage UNION SELECT code FROM retire`)
		if err != nil {
			return nil, err
		}
		codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		if err := checkUnits(ctx, codes...); err != nil {
			return nil, err
		}
	}
	opts := UnitImportOptions{Repair: e.Repair, DryRun: e.DryRun, Actor: actorOf(ctx), Reason: e.Reason, Operation: e.Operation}
	r := &UnitImportReport{}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM stage`).Scan(&r.Units); err != nil {
		return nil, err
	}
	if err := checkStage(ctx, tx, tol, opts, r); err != nil {
		return nil, err
	}
	res.Report, res.Warnings = r, r.Warnings
	if !r.OK() {
		res.Seconds = time.Since(start).Seconds()
		return res, nil
	}
	if err := tx.QueryRow(ctx, changedArea, e.Layer).Scan(&res.ChangedArea); err != nil {
		return nil, fmt.Errorf("changed area: %w", err)
	}
	if res.ChangedArea == nil {
		res.ChangedArea = json.RawMessage("null")
	}
	// A dry run writes too, and rolls back: its answer is the write's.
	if err := writeStage(ctx, tx, opts, r); err != nil {
		return nil, err
	}
	res.ObjectsMoved, res.OpenEventsMoved = r.ObjectsMoved, r.EventsMoved
	rows, err := tx.Query(ctx, `
		SELECT u.code, u.version FROM units u JOIN stage s ON s.layer = u.layer AND s.code = u.code
		WHERE u.valid_to IS NULL AND u.valid_from = now() ORDER BY u.code`)
	if err != nil {
		return nil, err
	}
	if res.UnitsWritten, err = pgx.CollectRows(rows, pgx.RowToStructByPos[UnitVersion]); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT code FROM retire ORDER BY code`)
	if err != nil {
		return nil, err
	}
	if res.UnitsRetired, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, err
	}
	if res.NewCodes == nil {
		res.NewCodes = []string{}
	}
	if !e.DryRun {
		if err := tx.Commit(ctx); err != nil {
			return nil, err
		}
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// changedArea is where the unit changed: the symmetric difference of each
// staged unit's old and new outline (all of it when new, or re-coded),
// and every retired unit.
const changedArea = `
SELECT ST_AsGeoJSON(ST_Multi(ST_CollectionExtract(ST_Union(g), 3)), 9)
FROM (
    SELECT CASE WHEN u.geom IS NULL OR u.code <> s.code THEN s.geom ELSE ST_SymDifference(u.geom, s.geom) END AS g
    FROM stage s
    LEFT JOIN units u ON u.valid_to IS NULL AND u.layer = s.layer AND u.code = s.code
    WHERE s.ok
    UNION ALL
    SELECT u.geom FROM retire r JOIN units u ON u.valid_to IS NULL AND u.layer = r.layer AND u.code = r.code
) x
WHERE NOT ST_IsEmpty(g) AND $1 <> ''`

// named are the codes an edit names, which must be current units.
func (e *UnitEdit) named() ([]string, error) {
	switch e.Operation {
	case OpReshape, OpRevert:
		return []string{e.Code}, nil
	case OpRetire:
		if e.Into == "" {
			return nil, invalid("into", "name the sibling that takes the retired unit's area")
		}
		if e.Into == e.Code {
			return nil, invalid("into", "a unit cannot be retired into itself")
		}
		return []string{e.Code, e.Into}, nil
	case OpMerge:
		if len(e.Codes) < 2 {
			return nil, invalid("codes", "a merge joins at least two units")
		}
		c := slices.Clone(e.Codes)
		slices.Sort(c)
		if len(slices.Compact(c)) != len(e.Codes) {
			return nil, invalid("codes", "a code is named twice")
		}
		if e.Keep == "" {
			return nil, invalid("keep", "name the code that survives the merge (one of codes)")
		}
		if !slices.Contains(e.Codes, e.Keep) {
			return nil, invalid("keep", "keep %s is not one of codes", e.Keep)
		}
		return e.Codes, nil
	case OpCreate:
		if e.Parent == "" {
			return nil, invalid("parent_code", "a created unit names its parent (properties.parent_code, or a code whose prefix is its parent's)")
		}
		return []string{e.Parent}, nil
	}
	return nil, fmt.Errorf("unknown unit edit %q", e.Operation)
}

// currentUnits reads the current versions of codes; a code with none is
// ErrGone when it has had versions, ErrNotFound otherwise.
func currentUnits(ctx context.Context, tx pgx.Tx, layer string, codes []string) (map[string]editUnit, error) {
	rows, err := tx.Query(ctx, `
		SELECT code, level, name, parent_code, complete, version, md5(ROW(layer, code, version, extract(epoch FROM valid_from))::text)
		FROM units WHERE valid_to IS NULL AND layer = $1 AND code = ANY($2)`, layer, codes)
	if err != nil {
		return nil, err
	}
	out := map[string]editUnit{}
	if err := forEach(rows, func() error {
		var u editUnit
		if err := rows.Scan(&u.code, &u.level, &u.name, &u.parent, &u.complete, &u.version, &u.revision); err != nil {
			return err
		}
		out[u.code] = u
		return nil
	}); err != nil {
		return nil, err
	}
	for _, c := range codes {
		if _, ok := out[c]; ok {
			continue
		}
		var last *time.Time
		if err := tx.QueryRow(ctx, `SELECT max(valid_to) FROM units WHERE layer = $1 AND code = $2`, layer, c).Scan(&last); err != nil {
			return nil, err
		}
		if last != nil {
			return nil, fmt.Errorf("unit %s of layer %s was retired at %s; its history remains, but it cannot be edited: %w",
				c, layer, last.UTC().Format(time.RFC3339), ErrGone)
		}
		return nil, fmt.Errorf("no unit with code %q in layer %q: %w", c, layer, ErrNotFound)
	}
	return out, nil
}

// precondition checks If-Match: every unit the edit names (not a created
// unit's parent) must be at a revision the caller read.
func (e *UnitEdit) precondition(cur map[string]editUnit) error {
	if e.IfMatch == nil || e.Operation == OpCreate {
		return nil
	}
	codes := []string{e.Code}
	if e.Operation == OpMerge {
		codes = e.Codes
	}
	for _, c := range codes {
		if u := cur[c]; !slices.Contains(e.IfMatch, u.revision) {
			return &StaleError{Resource: "unit", Code: c, Current: UnitETag(u.revision)}
		}
	}
	return nil
}

// fill stages what the edit writes.
func (e *UnitEdit) fill(ctx context.Context, tx pgx.Tx, cur map[string]editUnit, tol float64, res *UnitEditResult) error {
	switch e.Operation {
	case OpReshape:
		return e.fillReshape(ctx, tx, tol)
	}
	return errors.ErrUnsupported
}

// fillReshape stages the unit with its new outline and name; with Adjust,
// the siblings it now overlaps lose the overlap, and each piece it gives up
// goes to the sibling sharing the longest boundary with it.
func (e *UnitEdit) fillReshape(ctx context.Context, tx pgx.Tx, tol float64) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO stage (feature, layer, code, level, name, parent_code, complete, geom)
		SELECT 0, layer, code, level, coalesce($3, name), parent_code, complete, coalesce(ST_GeomFromEWKB($4), geom)
		FROM units WHERE valid_to IS NULL AND layer = $1 AND code = $2`, e.Layer, e.Code, e.Name, e.Geometry); err != nil {
		return err
	}
	if !e.Adjust || e.Geometry == nil {
		return nil
	}
	// An invalid outline cannot be cut: the check names it as it is.
	var valid bool
	if err := tx.QueryRow(ctx, `SELECT ST_IsValid(geom) FROM stage`).Scan(&valid); err != nil || !valid {
		return err
	}
	_, err := tx.Exec(ctx, `
		WITH t AS (
		    SELECT s.layer, s.code, s.level, s.parent_code, ST_Multi(s.geom) AS new, u.geom AS old
		    FROM stage s JOIN units u ON u.valid_to IS NULL AND u.layer = s.layer AND u.code = s.code
		), sib AS (
		    SELECT u.layer, u.code, u.level, u.name, u.parent_code, u.complete, u.geom
		    FROM units u, t
		    WHERE u.valid_to IS NULL AND u.layer = t.layer AND u.level = t.level AND u.code <> t.code
		      AND u.parent_code IS NOT DISTINCT FROM t.parent_code
		), lost AS (
		    SELECT row_number() OVER () AS i, d.geom AS g
		    FROM t, ST_Dump(ST_CollectionExtract(ST_Difference(t.old, t.new), 3)) d
		    WHERE gridmap_area_m2(d.geom) > $1
		), given AS (
		    SELECT DISTINCT ON (l.i) l.i, l.g, b.code,
		           ST_Length(ST_CollectionExtract(ST_Intersection(ST_Boundary(l.g), ST_Boundary(b.geom)), 2)) AS len
		    FROM lost l JOIN sib b ON b.geom && l.g
		    ORDER BY l.i, len DESC, b.code
		), adjusted AS (
		    SELECT b.layer, b.code, b.level, b.name, b.parent_code, b.complete,
		           ST_Difference(b.geom, t.new) AS kept,
		           (SELECT ST_Union(g.g) FROM given g WHERE g.code = b.code AND g.len > 0) AS gained
		    FROM sib b, t
		    WHERE (b.geom && t.new AND ST_Relate(b.geom, t.new, '2********')
		           AND gridmap_area_m2(ST_CollectionExtract(ST_Intersection(b.geom, t.new), 3)) > $1)
		       OR EXISTS (SELECT 1 FROM given g WHERE g.code = b.code AND g.len > 0)
		)
		INSERT INTO stage (feature, layer, code, level, name, parent_code, complete, geom, related)
		SELECT NULL, a.layer, a.code, a.level, a.name, a.parent_code, a.complete,
		       ST_Multi(ST_CollectionExtract(CASE WHEN a.gained IS NULL THEN a.kept ELSE ST_Union(a.kept, a.gained) END, 3)),
		       ARRAY[t.code]
		FROM adjusted a, t`, tol)
	if err != nil {
		return fmt.Errorf("adjust neighbours: %w", err)
	}
	if _, err = tx.Exec(ctx, `UPDATE stage SET related = ARRAY(SELECT code FROM stage WHERE code <> $1 ORDER BY code) WHERE code = $1`, e.Code); err != nil {
		return err
	}
	return noneSwallowed(ctx, tx, tol)
}

// noneSwallowed refuses an edit that leaves a staged unit without area: a
// unit ends by being retired, never by an empty outline.
func noneSwallowed(ctx context.Context, tx pgx.Tx, tol float64) error {
	rows, err := tx.Query(ctx, `SELECT code FROM stage WHERE ST_IsEmpty(geom) OR gridmap_area_m2(geom) <= $1 ORDER BY code`, tol)
	if err != nil {
		return err
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(codes) > 0 {
		return invalid("geometry", "the edit would leave %v without area; retire a unit (POST /v1/units/{code}:retire) or merge it instead", codes)
	}
	return nil
}
