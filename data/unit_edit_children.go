package data

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// Children of a reshaped unit (issue 12): for a unit with children, area
// moves between parents only in whole children. After a reshape, revert or
// create has staged its units (the unit, and with neighbours=adjust the
// siblings that gave or took area), every current child of a staged unit
// that its parent's new outline no longer covers either lies (within the
// tolerance) inside another staged unit of its parent's level, and moves
// there with the next free code under it (re-coded as a merge re-codes:
// its descendants keep their sequences under the new prefix, the old codes
// are retired with their successors), or it straddles the new boundary and
// the edit is refused, naming it and the parents it would lie in.

// childMove is a child that leaves its parent for another staged unit.
type childMove struct {
	code, from, to string
}

// moveChildren stages the children that change parent in a reshape,
// revert or create, and keeps the straddlers in res for the report.
func (e *UnitEdit) moveChildren(ctx context.Context, tx pgx.Tx, tol float64, res *UnitEditResult) error {
	switch e.Operation {
	case OpReshape, OpRevert, OpCreate:
	default:
		return nil // merge and retire re-code all the children they move
	}
	// An invalid outline cannot be compared: the check names it as it is.
	var invalid bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM stage WHERE NOT ST_IsValid(geom))`).Scan(&invalid); err != nil || invalid {
		return err
	}
	rows, err := tx.Query(ctx, `
		WITH out AS (
		    SELECT u.layer, u.code, u.parent_code, p.level AS parent_level, u.geom
		    FROM units u JOIN stage p ON p.layer = u.layer AND p.code = u.parent_code
		    WHERE u.valid_to IS NULL AND u.layer = $1
		      AND NOT ST_CoveredBy(u.geom, p.geom)
		      AND gridmap_area_m2(ST_CollectionExtract(ST_Difference(u.geom, p.geom), 3)) > $2
		      AND NOT EXISTS (SELECT 1 FROM stage s WHERE s.layer = u.layer AND s.code = u.code)
		      AND NOT EXISTS (SELECT 1 FROM retire r WHERE r.layer = u.layer AND r.code = u.code)
		)
		SELECT o.code, o.parent_code,
		       (SELECT p.code FROM stage p
		        WHERE p.layer = o.layer AND p.level = o.parent_level AND p.code <> o.parent_code AND p.geom && o.geom
		          AND coalesce(gridmap_area_m2(ST_CollectionExtract(ST_Difference(o.geom, p.geom), 3)), 0) <= $2
		        ORDER BY p.code LIMIT 1)
		FROM out o ORDER BY o.code`, e.Layer, tol)
	if err != nil {
		return fmt.Errorf("children of the units written: %w", err)
	}
	var moves []childMove
	var straddlers []childMove
	if err := forEach(rows, func() error {
		var m childMove
		var to *string
		if err := rows.Scan(&m.code, &m.from, &to); err != nil {
			return err
		}
		if to == nil {
			straddlers = append(straddlers, m)
		} else {
			m.to = *to
			moves = append(moves, m)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("children of the units written: %w", err)
	}
	for _, m := range straddlers {
		v, err := straddleViolation(ctx, tx, e.Layer, m, tol)
		if err != nil {
			return err
		}
		res.straddlers = append(res.straddlers, v)
	}
	if len(straddlers) > 0 || len(moves) == 0 {
		return nil // refused (nothing is re-coded), or nothing moves
	}
	// The children that move and their descendants are written: lock
	// them, in code order, as the edit locked the rest. An edit of a unit
	// below them locks its parent, one of these, so it waits for this
	// one (or this one for it); what is read below is read after it.
	codes := make([]string, len(moves))
	for i, m := range moves {
		codes[i] = m.code
	}
	if _, err := tx.Exec(ctx, `
		SELECT 1 FROM units u
		WHERE u.valid_to IS NULL AND u.layer = $1 AND EXISTS (SELECT 1 FROM unnest($2::text[]) c WHERE left(u.code, length(c)) = c)
		ORDER BY u.code
		FOR UPDATE`, e.Layer, codes); err != nil {
		return fmt.Errorf("lock the children that move: %w", err)
	}
	// One re-coding per new parent, so the codes it gives are all seen.
	byParent := map[string][]string{}
	for _, m := range moves {
		byParent[m.to] = append(byParent[m.to], m.code)
	}
	for _, to := range slices.Sorted(maps.Keys(byParent)) {
		var p editUnit
		if err := tx.QueryRow(ctx, `SELECT code, level FROM stage WHERE layer = $1 AND code = $2`, e.Layer, to).Scan(&p.code, &p.level); err != nil {
			return err
		}
		if err := e.recodeUnder(ctx, tx, p, byParent[to], res); err != nil {
			return err
		}
	}
	return nil
}

// (gridmap_area_m2 of an empty geometry is NULL: coalesce where it is
// compared with a bound that must hold.)

// straddleViolation describes a child that no staged unit covers: the part
// of it outside its parent's new outline, and how much of it each unit of
// its parent's level that this edit writes would hold.
func straddleViolation(ctx context.Context, tx pgx.Tx, layer string, m childMove, tol float64) (grid.Violation, error) {
	var gj string
	var area, x, y float64
	err := tx.QueryRow(ctx, `
		WITH d AS (
		    SELECT ST_CollectionExtract(ST_Difference(u.geom, p.geom), 3) AS g
		    FROM units u JOIN stage p ON p.layer = u.layer AND p.code = u.parent_code
		    WHERE u.valid_to IS NULL AND u.layer = $1 AND u.code = $2
		)
		SELECT ST_AsGeoJSON(g, 9), gridmap_area_m2(g), ST_X(ST_PointOnSurface(g)), ST_Y(ST_PointOnSurface(g)) FROM d`,
		layer, m.code).Scan(&gj, &area, &x, &y)
	if err != nil {
		return grid.Violation{}, fmt.Errorf("straddling child %s: %w", m.code, err)
	}
	rows, err := tx.Query(ctx, `
		SELECT p.code, coalesce(gridmap_area_m2(ST_CollectionExtract(ST_Intersection(u.geom, p.geom), 3)), 0) AS a
		FROM units u JOIN stage s ON s.layer = u.layer AND s.code = u.parent_code
		JOIN stage p ON p.layer = u.layer AND p.level = s.level AND p.geom && u.geom
		WHERE u.valid_to IS NULL AND u.layer = $1 AND u.code = $2
		ORDER BY p.code = u.parent_code DESC, p.code`, layer, m.code)
	if err != nil {
		return grid.Violation{}, fmt.Errorf("straddling child %s: %w", m.code, err)
	}
	codes := []string{m.code}
	var parts []string
	if err := forEach(rows, func() error {
		var p string
		var a float64
		if err := rows.Scan(&p, &a); err != nil {
			return err
		}
		if a > tol {
			codes = append(codes, p)
			parts = append(parts, fmt.Sprintf("%.1f m² in %s", a, p))
		}
		return nil
	}); err != nil {
		return grid.Violation{}, fmt.Errorf("straddling child %s: %w", m.code, err)
	}
	if !slices.Contains(codes, m.from) {
		codes = append(codes, m.from)
	}
	msg := fmt.Sprintf("%s would straddle the new boundary of its parent %s (%.1f m² of it outside, near %.6f %.6f)", m.code, m.from, area, x, y)
	if len(parts) > 0 {
		msg += ": " + strings.Join(parts, ", ")
	}
	msg += "; area moves between parents only in whole children: draw the boundary along the child's edges, or reshape the child first"
	return grid.Violation{Rule: grid.RuleStraddles, Severity: grid.SeverityError, Codes: codes,
		Message: msg, Geometry: json.RawMessage(gj), AreaM2: &area, Location: []float64{x, y}}, nil
}

// reportStraddlers adds the straddlers moveChildren found to r, in place
// of the outside_parent findings that say the same of them less well.
func (res *UnitEditResult) reportStraddlers(r *UnitImportReport) {
	if len(res.straddlers) == 0 {
		return
	}
	r.Violations = slices.DeleteFunc(r.Violations, func(v grid.Violation) bool {
		return v.Rule == grid.RuleOutsideParent && slices.ContainsFunc(res.straddlers, func(s grid.Violation) bool {
			return len(v.Codes) == 2 && s.Codes[0] == v.Codes[0]
		})
	})
	for _, v := range res.straddlers {
		r.add(v)
	}
	r.sortFindings()
}
