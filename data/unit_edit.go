package data

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	// Split is how a split cuts the unit (unit_edit_split.go).
	Split *UnitSplit
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

// UnitWritten names a version of a unit an edit wrote.
type UnitWritten struct {
	Code    string `json:"code"`
	Version int    `json:"version"`
}

// UnitEditResult is what an edit wrote (or, dry, would write).
type UnitEditResult struct {
	Operation       string            `json:"operation"`
	DryRun          bool              `json:"dry_run"`
	UnitsWritten    []UnitWritten     `json:"units_written"`
	UnitsRetired    []string          `json:"units_retired"`
	NewCodes        []string          `json:"new_codes"`
	CodeMap         map[string]string `json:"code_map"`
	ObjectsMoved    int               `json:"objects_moved"`
	OpenEventsMoved int               `json:"open_events_moved"`
	// ChangedArea is the area whose unit changed (GeoJSON), null when none.
	ChangedArea json.RawMessage `json:"changed_area"`
	// UnitsWrittenGeoJSON is a FeatureCollection of the versions written
	// (code, name, level, version), so a preview can draw every new outline.
	UnitsWrittenGeoJSON json.RawMessage  `json:"units_written_geojson"`
	Warnings            []grid.Violation `json:"warnings"`
	Seconds             float64          `json:"seconds"`
	// Report holds the findings; when it is not OK nothing was written
	// and the rest of the result is empty.
	Report *UnitImportReport `json:"-"`
	// straddlers are the children an edit would cut (moveChildren).
	straddlers []grid.Violation
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
	if err := stampUnits(ctx, tx); err != nil {
		return nil, err
	}
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
	if err := e.moveChildren(ctx, tx, tol, res); err != nil {
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
	if res.Report != nil {
		r = res.Report // the fill's own findings (a split's pieces); the rules run on a sound stage only
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM stage`).Scan(&r.Units); err != nil {
		return nil, err
	}
	if r.OK() {
		if err := checkStage(ctx, tx, tol, opts, r); err != nil {
			return nil, err
		}
	}
	res.reportStraddlers(r)
	r.sortFindings()
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
		WHERE u.valid_to IS NULL AND u.valid_from = `+unitStamp+` ORDER BY u.code`)
	if err != nil {
		return nil, err
	}
	if res.UnitsWritten, err = pgx.CollectRows(rows, pgx.RowToStructByPos[UnitWritten]); err != nil {
		return nil, err
	}
	if err := tx.QueryRow(ctx, unitsWrittenGeoJSON).Scan(&res.UnitsWrittenGeoJSON); err != nil {
		return nil, fmt.Errorf("units written: %w", err)
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
	if e.Layer == grid.BaseLayer {
		if err := followGridWorkers(ctx, tx, e.Operation, opts.Actor, res.CodeMap, res.UnitsRetired); err != nil {
			return nil, fmt.Errorf("grid workers: %w", err)
		}
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

// unitsWrittenGeoJSON is the versions this write stamped, as a
// FeatureCollection (geometry at 7 decimals).
const unitsWrittenGeoJSON = `
SELECT json_build_object('type', 'FeatureCollection', 'features', COALESCE(json_agg(json_build_object(
    'type', 'Feature',
    'properties', json_build_object('code', u.code, 'name', u.name, 'level', u.level, 'version', u.version),
    'geometry', ST_AsGeoJSON(u.geom, 7)::json) ORDER BY u.code), '[]'::json))
FROM units u JOIN stage s ON s.layer = u.layer AND s.code = u.code
WHERE u.valid_to IS NULL AND u.valid_from = ` + unitStamp

// named are the codes an edit names, which must be current units.
func (e *UnitEdit) named() ([]string, error) {
	switch e.Operation {
	case OpReshape, OpRevert, OpSplit:
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
	case OpRevert:
		var g []byte
		var name string
		err := tx.QueryRow(ctx, `SELECT ST_AsEWKB(geom), name FROM units WHERE layer = $1 AND code = $2 AND version = $3`,
			e.Layer, e.Code, e.Version).Scan(&g, &name)
		if errors.Is(err, pgx.ErrNoRows) {
			return invalid("version", "%s has no version %d (its current version is %d)", e.Code, e.Version, cur[e.Code].version)
		}
		if err != nil {
			return err
		}
		e.Geometry, e.Name = g, &name
		return e.fillReshape(ctx, tx, tol)
	case OpRetire:
		return e.fillMerge(ctx, tx, cur, e.Into, []string{e.Code}, res)
	case OpMerge:
		others := slices.DeleteFunc(slices.Clone(e.Codes), func(c string) bool { return c == e.Keep })
		return e.fillMerge(ctx, tx, cur, e.Keep, others, res)
	case OpCreate:
		return e.fillCreate(ctx, tx, cur, tol, res)
	case OpSplit:
		return e.fillSplit(ctx, tx, cur, tol, res)
	}
	return fmt.Errorf("unknown unit edit %q", e.Operation)
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
	return e.adjustNeighbours(ctx, tx, tol)
}

// adjustNeighbours makes the siblings of the one staged unit give what it
// gains and take what it loses (neighbours=adjust).
func (e *UnitEdit) adjustNeighbours(ctx context.Context, tx pgx.Tx, tol float64) error {
	// An invalid outline cannot be cut: the check names it as it is.
	var valid bool
	if err := tx.QueryRow(ctx, `SELECT ST_IsValid(geom) FROM stage`).Scan(&valid); err != nil || !valid {
		return err
	}
	_, err := tx.Exec(ctx, `
		WITH t AS (
		    SELECT s.layer, s.code, s.level, s.parent_code, ST_Multi(s.geom) AS new, u.geom AS old
		    FROM stage s LEFT JOIN units u ON u.valid_to IS NULL AND u.layer = s.layer AND u.code = s.code
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
		           ST_Length(ST_Intersection(ST_Boundary(l.g), ST_Buffer(b.geom, `+sharedEdgeDegrees+`))) AS len
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
	if _, err = tx.Exec(ctx, `UPDATE stage SET related = ARRAY(SELECT code FROM stage WHERE feature IS NULL ORDER BY code) WHERE feature = 0`); err != nil {
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

// sharedEdgeDegrees is how far apart two boundaries may run and still be
// one shared edge (about 1 cm): edges drawn separately are seldom noded
// exactly, so an exact ST_Relate would find only points where they cross.
// Two units share an edge when more than ten times this of one's boundary
// lies that close to the other.
const sharedEdgeDegrees = "1e-7"

// fillMerge stages keep with the union of itself and others, retires the
// others, and moves their children under keep with the next free codes
// (their own children keep their sequence under the new prefix). Every
// unit merged must be a sibling of keep, and they must form one connected
// piece (each shares a boundary line with another).
func (e *UnitEdit) fillMerge(ctx context.Context, tx pgx.Tx, cur map[string]editUnit, keep string, others []string, res *UnitEditResult) error {
	field := "codes"
	if e.Operation == OpRetire {
		field = "into"
	}
	k := cur[keep]
	for _, c := range others {
		u := cur[c]
		if u.level != k.level || (u.parent == nil) != (k.parent == nil) || (u.parent != nil && *u.parent != *k.parent) {
			return invalid(field, "%s (%s) and %s (%s) are not siblings: only units of one level under one parent merge", c, u.level, keep, k.level)
		}
	}
	all := append([]string{keep}, others...)
	rows, err := tx.Query(ctx, `
		SELECT a.code, b.code FROM units a JOIN units b
		  ON b.valid_to IS NULL AND b.layer = a.layer AND b.code = ANY($2) AND b.code > a.code
		 AND ST_DWithin(a.geom, b.geom, `+sharedEdgeDegrees+`)
		 AND ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Buffer(b.geom, `+sharedEdgeDegrees+`))) > `+sharedEdgeDegrees+` * 10
		WHERE a.valid_to IS NULL AND a.layer = $1 AND a.code = ANY($2)`, e.Layer, all)
	if err != nil {
		return err
	}
	adj := map[string][]string{}
	if err := forEach(rows, func() error {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			return err
		}
		adj[a], adj[b] = append(adj[a], b), append(adj[b], a)
		return nil
	}); err != nil {
		return err
	}
	reached := map[string]bool{keep: true}
	for queue := []string{keep}; len(queue) > 0; queue = queue[1:] {
		for _, n := range adj[queue[0]] {
			if !reached[n] {
				reached[n] = true
				queue = append(queue, n)
			}
		}
	}
	for _, c := range others {
		if !reached[c] {
			return invalid(field, "%s shares no boundary with %s: only adjacent siblings merge", c, strings.Join(slices.DeleteFunc(slices.Clone(all), func(x string) bool { return x == c }), ", "))
		}
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO stage (feature, layer, code, level, name, parent_code, complete, geom, related)
		SELECT 0, k.layer, k.code, k.level, k.name, k.parent_code, k.complete,
		       (SELECT ST_Multi(ST_CollectionExtract(ST_Union(geom), 3)) FROM units WHERE valid_to IS NULL AND layer = $1 AND code = ANY($3)),
		       $4
		FROM units k WHERE k.valid_to IS NULL AND k.layer = $1 AND k.code = $2`, e.Layer, keep, all, others); err != nil {
		return fmt.Errorf("stage merge: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO retire (layer, code, related) SELECT $1, c, ARRAY[$2] FROM unnest($3::text[]) c`, e.Layer, keep, others); err != nil {
		return fmt.Errorf("stage merge: %w", err)
	}
	return e.recodeChildren(ctx, tx, k, others, res)
}

// recodeChildren moves the current children of from under to, each with
// the next free code of its kind (grid.SeqBlock) under to: codes are
// identities, so none that was ever given under to is given again. Their
// descendants keep their sequences under the new prefixes. Old codes are
// retired; the pairs go to res.CodeMap.
func (e *UnitEdit) recodeChildren(ctx context.Context, tx pgx.Tx, to editUnit, from []string, res *UnitEditResult) error {
	rows, err := tx.Query(ctx, `SELECT code FROM units WHERE valid_to IS NULL AND layer = $1 AND parent_code = ANY($2) ORDER BY code`, e.Layer, from)
	if err != nil {
		return err
	}
	children, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(children) == 0 {
		return err
	}
	return e.recodeUnder(ctx, tx, to, children, res)
}

// recodeUnder moves the current units children (of one level) under to,
// as recodeChildren tells.
func (e *UnitEdit) recodeUnder(ctx context.Context, tx pgx.Tx, to editUnit, children []string, res *UnitEditResult) error {
	level := grid.Level(to.level).Child()
	rows, err := tx.Query(ctx, `SELECT DISTINCT right(code, 3)::int FROM units WHERE layer = $1 AND length(code) = $3 AND left(code, length($2)) = $2`,
		e.Layer, to.code, len(to.code)+3)
	if err != nil {
		return err
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return err
	}
	used := map[int]bool{}
	for _, n := range seqs {
		used[n] = true
	}
	var olds, news []string
	for _, c := range children {
		seq, _ := strconv.Atoi(c[len(c)-3:])
		lo, hi := grid.SeqBlock(level, seq)
		if lo == 0 {
			lo, hi = 1, 999
		}
		next := nextFreeSeq(used, lo, hi)
		if next == 0 {
			return invalid("codes", "no free code %03d–%03d is left under %s for %s", lo, hi, to.code, c)
		}
		used[next] = true
		nc := fmt.Sprintf("%s%03d", to.code, next)
		olds, news = append(olds, c), append(news, nc)
		rows, err := tx.Query(ctx, `SELECT code FROM units WHERE valid_to IS NULL AND layer = $1 AND left(code, length($2)) = $2 AND code <> $2 ORDER BY code`, e.Layer, c)
		if err != nil {
			return err
		}
		desc, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, d := range desc {
			olds, news = append(olds, d), append(news, nc+d[len(c):])
		}
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO stage (feature, layer, code, level, name, parent_code, complete, geom, related)
		SELECT NULL, u.layer, m.new, u.level, u.name, CASE WHEN u.code = ANY($4) THEN $5 ELSE coalesce(p.new, u.parent_code) END,
		       u.complete, u.geom, ARRAY[u.code]
		FROM units u
		JOIN unnest($2::text[], $3::text[]) AS m(old, new) ON m.old = u.code
		LEFT JOIN unnest($2::text[], $3::text[]) AS p(old, new) ON p.old = u.parent_code
		WHERE u.valid_to IS NULL AND u.layer = $1`,
		e.Layer, olds, news, children, to.code); err != nil {
		return fmt.Errorf("re-code children: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO retire (layer, code, related) SELECT $1, old, ARRAY[new] FROM unnest($2::text[], $3::text[]) AS m(old, new)`,
		e.Layer, olds, news); err != nil {
		return fmt.Errorf("re-code children: %w", err)
	}
	for i := range olds {
		res.CodeMap[olds[i]] = news[i]
	}
	res.NewCodes = append(res.NewCodes, news...)
	slices.Sort(res.NewCodes)
	return nil
}

// fillCreate stages a new unit under its parent: with the code given
// (never one given before) or the next free one. With Adjust its siblings
// give it the area it overlaps.
func (e *UnitEdit) fillCreate(ctx context.Context, tx pgx.Tx, cur map[string]editUnit, tol float64, res *UnitEditResult) error {
	p := cur[e.Parent]
	level := grid.Level(p.level).Child()
	if level == "" {
		return invalid("parent_code", "%s is a %s: it has no child level", p.code, p.level)
	}
	if e.Level != "" && e.Level != level {
		return invalid("level", "a child of the %s %s is a %s, not a %s", p.level, p.code, level, e.Level)
	}
	if e.Geometry == nil {
		return invalid("geometry", "a created unit needs its outline")
	}
	if e.Name == nil || strings.TrimSpace(*e.Name) == "" {
		return invalid("name", "a created unit needs properties.name")
	}
	code := e.Code
	if code != "" {
		if e.Layer == grid.BaseLayer {
			if err := grid.ValidateCode(level, code, p.code); err != nil {
				return invalid("code", "%v", err)
			}
		}
		var last *time.Time
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*), max(valid_to) FROM units WHERE layer = $1 AND code = $2`, e.Layer, code).Scan(&n, &last); err != nil {
			return err
		}
		if n > 0 && last != nil {
			return fmt.Errorf("code %s was given before (retired at %s) and is never given again: %w", code, last.UTC().Format(time.RFC3339), ErrExists)
		}
		if n > 0 {
			return fmt.Errorf("unit %s exists: %w", code, ErrExists)
		}
	} else {
		var max int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(right(code, 3)::int), 0) FROM units WHERE layer = $1 AND length(code) = $3 AND left(code, length($2)) = $2`,
			e.Layer, p.code, len(p.code)+3).Scan(&max); err != nil {
			return err
		}
		_, hi := grid.SeqBlock(level, 1)
		if max >= hi {
			return invalid("code", "no free code is left after %s%03d: name the code", p.code, max)
		}
		code = fmt.Sprintf("%s%03d", p.code, max+1)
	}
	e.Code = code
	res.NewCodes = append(res.NewCodes, code)
	if _, err := tx.Exec(ctx, `
		INSERT INTO stage (feature, layer, code, level, name, parent_code, complete, geom)
		VALUES (0, $1, $2, $3, $4, $5, false, ST_GeomFromEWKB($6))`, e.Layer, code, string(level), *e.Name, p.code, e.Geometry); err != nil {
		return err
	}
	if !e.Adjust {
		return nil
	}
	return e.adjustNeighbours(ctx, tx, tol)
}

// nextFreeSeq is the sequence a new code of the block [lo, hi] takes: the
// one after the highest used, else the lowest free (codes are identities:
// a used one, retired or not, is never given again); 0 when none is free.
func nextFreeSeq(used map[int]bool, lo, hi int) int {
	next := 0
	for n := hi; n >= lo; n-- {
		if used[n] {
			break
		}
		next = n
	}
	if next == 0 {
		for n := lo; n <= hi; n++ {
			if !used[n] {
				return n
			}
		}
	}
	return next
}
