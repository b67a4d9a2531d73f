package data

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// The topology checks run in SQL over two temporary tables of the current
// transaction:
//
//	stage   the units under scrutiny (an import, or a slice of the store)
//	retire  the units an edit retires (empty for an import)
//	merged  stage's usable rows plus the stored units they must agree with:
//	        neighbours, parents, children and siblings, minus the stored
//	        versions that stage replaces and the units retire ends
//
// Each check looks only at pairs with at least one staged side, so a small
// import into a large store stays small.

const createStage = `
CREATE TEMP TABLE stage (
    feature     integer,
    layer       text NOT NULL,
    code        text NOT NULL,
    level       text NOT NULL,
    name        text NOT NULL,
    parent_code text,
    complete    boolean NOT NULL DEFAULT false,
    geom        geometry NOT NULL,
    ok          boolean NOT NULL DEFAULT true,
    related     text[] NOT NULL DEFAULT '{}'
) ON COMMIT DROP;
CREATE TEMP TABLE retire (
    layer   text NOT NULL,
    code    text NOT NULL,
    related text[] NOT NULL DEFAULT '{}'
) ON COMMIT DROP`

const indexStage = `
CREATE INDEX ON stage USING gist (geom);
CREATE INDEX ON stage (layer, code);
ANALYZE stage`

// buildMerged collects the stored units the staged ones interact with.
const buildMerged = `
CREATE TEMP TABLE merged ON COMMIT DROP AS
SELECT feature, layer, code, level, parent_code, complete, geom, true AS staged
FROM stage WHERE ok;

INSERT INTO merged
SELECT NULL, u.layer, u.code, u.level, u.parent_code, u.complete, u.geom, false
FROM units u
WHERE u.id IN (
    SELECT n.id FROM stage s JOIN units n ON n.valid_to IS NULL AND n.layer = s.layer AND n.geom && s.geom WHERE s.ok
    UNION
    SELECT n.id FROM stage s JOIN units n ON n.valid_to IS NULL AND n.layer = s.layer
        AND (n.parent_code = s.parent_code OR n.code = s.parent_code OR n.parent_code = s.code)
)
AND NOT EXISTS (SELECT 1 FROM stage s WHERE s.layer = u.layer AND s.code = u.code)
AND NOT EXISTS (SELECT 1 FROM retire r WHERE r.layer = u.layer AND r.code = u.code);

CREATE INDEX ON merged USING gist (geom);
CREATE INDEX ON merged (layer, code);
CREATE INDEX ON merged (layer, parent_code);
ANALYZE merged`

const unknownParents = `
SELECT s.feature, s.code, s.parent_code, s.level, ST_AsGeoJSON(s.geom, 9), gridmap_area_m2(s.geom)
FROM stage s
WHERE s.parent_code IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM stage p WHERE p.layer = s.layer AND p.code = s.parent_code)
  AND NOT EXISTS (SELECT 1 FROM units p WHERE p.valid_to IS NULL AND p.layer = s.layer AND p.code = s.parent_code)
ORDER BY s.code`

// Rule 2: a child lies inside its parent. ST_CoveredBy filters the pairs
// cheaply; the difference is computed only for the rest.
const outsideParent = `
WITH d AS (
    SELECT c.feature, c.code AS child, p.code AS parent, ST_CollectionExtract(ST_Difference(c.geom, p.geom), 3) AS g
    FROM merged c
    JOIN merged p ON p.layer = c.layer AND p.code = c.parent_code
    WHERE (c.staged OR p.staged) AND NOT ST_CoveredBy(c.geom, p.geom)
), a AS (
    SELECT *, gridmap_area_m2(g) AS area FROM d
)
SELECT feature, child, parent, ST_AsGeoJSON(g, 9), area,
       ST_X(ST_PointOnSurface(g)), ST_Y(ST_PointOnSurface(g))
FROM a WHERE area > $1
ORDER BY child`

// Rule 3: units of one level never overlap. Interiors that meet in an area
// ('2********') are the candidates; shared edges are not.
const overlaps = `
WITH i AS (
    SELECT a.feature AS fa, b.feature AS fb, a.code AS ca, b.code AS cb,
           ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS g
    FROM merged a
    JOIN merged b ON b.layer = a.layer AND b.level = a.level AND b.code > a.code
                 AND a.geom && b.geom AND ST_Relate(a.geom, b.geom, '2********')
    WHERE a.staged OR b.staged
), a AS (
    SELECT *, gridmap_area_m2(g) AS area FROM i
)
SELECT fa, fb, ca, cb, ST_AsGeoJSON(g, 9), area, ST_X(ST_PointOnSurface(g)), ST_Y(ST_PointOnSurface(g))
FROM a WHERE area > $1
ORDER BY ca, cb`

// Rule 4: children cover their parent. Every parent that is staged or has a
// staged child is checked; gaps are the pieces of the parent outside the
// union of its children, each above the tolerance.
const gaps = `
WITH parents AS (
    SELECT p.feature, p.layer, p.code, p.complete, p.geom
    FROM merged p
    WHERE p.level <> 'grid'
      AND (p.staged OR EXISTS (SELECT 1 FROM merged c WHERE c.staged AND c.layer = p.layer AND c.parent_code = p.code))
), cover AS (
    SELECT c.layer, c.parent_code AS code, ST_Union(c.geom) AS u
    FROM merged c
    WHERE (c.layer, c.parent_code) IN (SELECT layer, code FROM parents)
    GROUP BY c.layer, c.parent_code
), pieces AS (
    SELECT p.feature, p.code, p.complete,
           (ST_Dump(CASE WHEN cv.u IS NULL THEN p.geom ELSE ST_Difference(p.geom, cv.u) END)).geom AS g
    FROM parents p
    LEFT JOIN cover cv ON cv.layer = p.layer AND cv.code = p.code
    WHERE cv.u IS NOT NULL OR p.complete
), big AS (
    SELECT *, gridmap_area_m2(g) AS area FROM pieces WHERE ST_Dimension(g) = 2
)
SELECT feature, code, complete, ST_AsGeoJSON(ST_Collect(g), 9), sum(area), count(*),
       ST_X(ST_PointOnSurface(ST_Collect(g))), ST_Y(ST_PointOnSurface(ST_Collect(g)))
FROM big WHERE area > $1
GROUP BY feature, code, complete
ORDER BY code`

// declareComplete marks the staged units that have children complete, in
// merged (for the gap check) and in stage (so it is stored).
const declareComplete = `
UPDATE merged p SET complete = true
WHERE p.staged AND p.level <> 'grid'
  AND EXISTS (SELECT 1 FROM merged c WHERE c.layer = p.layer AND c.parent_code = p.code);
UPDATE stage s SET complete = true
FROM merged m WHERE m.staged AND m.complete AND m.layer = s.layer AND m.code = s.code`

// checkTopology runs rules 2–4 on stage (already indexed) and adds what it
// finds to r. With complete, every staged unit that has children is
// declared complete first. It leaves the merged table behind.
func checkTopology(ctx context.Context, tx pgx.Tx, tol float64, complete bool, r *UnitImportReport) error {
	if _, err := tx.Exec(ctx, buildMerged); err != nil {
		return fmt.Errorf("collect neighbours: %w", err)
	}
	if complete {
		if _, err := tx.Exec(ctx, declareComplete); err != nil {
			return fmt.Errorf("declare complete: %w", err)
		}
	}
	rows, err := tx.Query(ctx, outsideParent, tol)
	if err != nil {
		return fmt.Errorf("check containment: %w", err)
	}
	if err := forEach(rows, func() error {
		var f *int
		var child, parent, gj string
		var area, x, y float64
		if err := rows.Scan(&f, &child, &parent, &gj, &area, &x, &y); err != nil {
			return err
		}
		r.add(grid.Violation{Rule: grid.RuleOutsideParent, Severity: grid.SeverityError, Codes: []string{child, parent}, Feature: f,
			Message:  fmt.Sprintf("%s extends %.1f m² outside its parent %s (near %.6f %.6f)", child, area, parent, x, y),
			Geometry: json.RawMessage(gj), AreaM2: &area, Location: []float64{x, y}})
		return nil
	}); err != nil {
		return fmt.Errorf("check containment: %w", err)
	}

	rows, err = tx.Query(ctx, overlaps, tol)
	if err != nil {
		return fmt.Errorf("check overlaps: %w", err)
	}
	if err := forEach(rows, func() error {
		var fa, fb *int
		var a, b, gj string
		var area, x, y float64
		if err := rows.Scan(&fa, &fb, &a, &b, &gj, &area, &x, &y); err != nil {
			return err
		}
		f := fa
		if f == nil {
			f = fb
		}
		r.add(grid.Violation{Rule: grid.RuleOverlap, Severity: grid.SeverityError, Codes: []string{a, b}, Feature: f,
			Message:  fmt.Sprintf("%s and %s overlap by %.1f m² (near %.6f %.6f)", a, b, area, x, y),
			Geometry: json.RawMessage(gj), AreaM2: &area, Location: []float64{x, y}})
		return nil
	}); err != nil {
		return fmt.Errorf("check overlaps: %w", err)
	}

	rows, err = tx.Query(ctx, gaps, tol)
	if err != nil {
		return fmt.Errorf("check gaps: %w", err)
	}
	return forEach(rows, func() error {
		var f *int
		var code, gj string
		var complete bool
		var area, x, y float64
		var n int
		if err := rows.Scan(&f, &code, &complete, &gj, &area, &n, &x, &y); err != nil {
			return err
		}
		v := grid.Violation{Rule: grid.RuleGap, Severity: grid.SeverityWarning, Codes: []string{code}, Feature: f,
			Message:  fmt.Sprintf("%.1f m² of %s in %d piece(s) is covered by none of its children (near %.6f %.6f)", area, code, n, x, y),
			Geometry: json.RawMessage(gj), AreaM2: &area, Location: []float64{x, y}}
		if complete {
			v.Severity = grid.SeverityError
			v.Message += "; the unit is declared complete"
		}
		r.add(v)
		return nil
	})
}

// UnitImportReport is what an import or a check found, and what an import wrote.
type UnitImportReport struct {
	Units     int `json:"units"`
	Inserted  int `json:"inserted"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	// ObjectsMoved counts managed objects whose grid the import changed.
	ObjectsMoved int `json:"objects_moved"`
	// EventsMoved counts open events moved to another grid.
	EventsMoved int              `json:"open_events_moved"`
	DryRun      bool             `json:"dry_run,omitempty"`
	Violations  []grid.Violation `json:"violations"`
	Warnings    []grid.Violation `json:"warnings"`
	// ViolationsTruncated and WarningsTruncated count, by rule, the
	// findings left out of a list that holds its most (MaxFindings): a
	// collection of bad features must not make an answer (and the memory
	// behind it) as large again as the collection.
	ViolationsTruncated map[string]int `json:"violations_truncated,omitempty"`
	WarningsTruncated   map[string]int `json:"warnings_truncated,omitempty"`
	Seconds             float64        `json:"seconds"`
	maxFindings         int
}

// DefaultMaxFindings is the most violations (and warnings) a report lists.
const DefaultMaxFindings = 1000

// OK reports whether nothing stops the import.
func (r *UnitImportReport) OK() bool { return len(r.Violations) == 0 }

// ViolationCount and WarningCount count every finding, listed or not.
func (r *UnitImportReport) ViolationCount() int {
	return len(r.Violations) + sumCounts(r.ViolationsTruncated)
}
func (r *UnitImportReport) WarningCount() int {
	return len(r.Warnings) + sumCounts(r.WarningsTruncated)
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

func (r *UnitImportReport) add(v grid.Violation) {
	list, left := &r.Violations, &r.ViolationsTruncated
	if v.Severity == grid.SeverityWarning {
		list, left = &r.Warnings, &r.WarningsTruncated
	}
	most := r.maxFindings
	if most <= 0 {
		most = DefaultMaxFindings
	}
	if len(*list) < most {
		*list = append(*list, v)
		return
	}
	if *left == nil {
		*left = map[string]int{}
	}
	(*left)[v.Rule]++
}

// sortFindings orders findings by feature then rule, so reports read in
// file order.
func (r *UnitImportReport) sortFindings() {
	for _, vs := range [][]grid.Violation{r.Violations, r.Warnings} {
		sort.SliceStable(vs, func(i, j int) bool {
			fi, fj := featureOrder(vs[i]), featureOrder(vs[j])
			if fi != fj {
				return fi < fj
			}
			return vs[i].Rule < vs[j].Rule
		})
	}
	if r.Violations == nil {
		r.Violations = []grid.Violation{}
	}
	if r.Warnings == nil {
		r.Warnings = []grid.Violation{}
	}
}

func featureOrder(v grid.Violation) int {
	if v.Feature == nil {
		return 1 << 30
	}
	return *v.Feature
}

// TopologyIssues checks what the store holds now: the overlaps, parts
// outside parents and gaps among the children of parent (the whole layer
// when parent is empty). Nothing is written.
func (s *Store) TopologyIssues(ctx context.Context, layer, parent string, tol float64) (*UnitImportReport, error) {
	start := time.Now()
	if layer == "" {
		layer = grid.BaseLayer
	}
	if tol <= 0 {
		tol = DefaultToleranceM2
	}
	tx, err := beginCheck(ctx, s, true)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, createStage); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO stage (layer, code, level, name, parent_code, complete, geom)
		SELECT layer, code, level, name, parent_code, complete, geom FROM units
		WHERE valid_to IS NULL AND layer = $1 AND ($2 = '' OR code = $2 OR parent_code = $2)`, layer, parent); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, indexStage); err != nil {
		return nil, err
	}
	r := &UnitImportReport{}
	if err := checkTopology(ctx, tx, tol, false, r); err != nil {
		return nil, err
	}
	r.sortFindings()
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM stage`).Scan(&r.Units); err != nil {
		return nil, err
	}
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}
