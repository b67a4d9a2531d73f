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

// OpSplit cuts a unit in pieces, by a line or into polygons that tile it.
const OpSplit = "split"

// UnitSplit is how a split cuts its unit: by Line, or into Pieces.
type UnitSplit struct {
	// Line is the cutting line as EWKB (a LineString or MultiLineString,
	// WGS-84).
	Line []byte
	// Pieces tile the unit, in the order they were sent.
	Pieces []SplitPiece
	// Keep names the piece that keeps the unit's code: a code a piece
	// carries (which must then be the unit's own), or KeepIndex a piece's
	// index. Unnamed, the piece holding the unit's label
	// point (ST_PointOnSurface) keeps it, or the piece that carries the
	// unit's code.
	Keep      string
	KeepIndex *int
}

// SplitPiece is one polygon of a split into pieces.
type SplitPiece struct {
	Geometry []byte // EWKB
	Name     *string
	// Code is the code the piece asks for ("" for the next free one): the
	// unit's own marks the piece that keeps it; any other must never have
	// been given under the parent.
	Code string
}

// Split findings, besides the overlap of two pieces (grid.RuleOverlap).
const (
	RuleSplitGap     = "split_gap"     // part of the unit no piece covers
	RuleSplitOutside = "split_outside" // part of a piece outside the unit
	RuleCrossesCut   = "crosses_cut"   // a child lies in more than one piece
)

// splitPiece is a piece as the split stages it.
type splitPiece struct {
	i          int
	code, name string
	children   []string
}

// fillSplit stages the pieces of e.Code: the kept one under the unit's
// code, the others under the next free codes of its kind under the same
// parent (never a code given before), each child re-coded under the new
// piece that covers it. Pieces that do not tile the unit, and children
// that cross the cut, are findings (res.Report) with the unit staged as it
// is, so that the guard still sees it.
func (e *UnitEdit) fillSplit(ctx context.Context, tx pgx.Tx, cur map[string]editUnit, tol float64, res *UnitEditResult) error {
	sp := e.Split
	if sp == nil || (sp.Line == nil) == (len(sp.Pieces) == 0) {
		return invalid("line", "a split sends a cutting line ({\"line\": LineString}) or the pieces that tile the unit ({\"pieces\": FeatureCollection}), one of the two")
	}
	u := cur[e.Code]
	if u.parent == nil {
		return invalid("code", "%s is a %s without a parent: its pieces would have no codes to take; import them instead", u.code, u.level)
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE split_piece (i int, g geometry, name text, code text) ON COMMIT DROP`); err != nil {
		return err
	}
	r := &UnitImportReport{}
	if sp.Line != nil {
		if sp.Keep != "" || sp.KeepIndex != nil {
			return invalid("keep", "a split by a line keeps the code on the piece holding the unit's label point; to choose, send the pieces")
		}
		if err := e.cutByLine(ctx, tx, tol); err != nil {
			return err
		}
	} else if err := e.stagePieces(ctx, tx, tol, r); err != nil {
		return err
	}
	var pieces []splitPiece
	if r.OK() {
		var err error
		if pieces, err = e.assignChildren(ctx, tx, tol, r); err != nil {
			return err
		}
	}
	if !r.OK() {
		res.Report = r
		_, err := tx.Exec(ctx, `
			INSERT INTO stage (feature, layer, code, level, name, parent_code, complete, geom)
			SELECT NULL, layer, code, level, name, parent_code, complete, geom
			FROM units WHERE valid_to IS NULL AND layer = $1 AND code = $2`, e.Layer, e.Code)
		return err
	}
	keep, err := e.keptPiece(ctx, tx, pieces)
	if err != nil {
		return err
	}
	if err := e.splitCodes(ctx, tx, u, pieces, keep); err != nil {
		return err
	}
	var news []string
	for _, p := range pieces {
		if p.i != keep {
			news = append(news, p.code)
		}
	}
	res.NewCodes = append(res.NewCodes, news...)
	for n, p := range pieces {
		related := news
		if p.i != keep {
			related = []string{e.Code}
		}
		name := p.name
		if name == "" {
			name = u.name
			if p.i != keep {
				name = fmt.Sprintf("%s（%d）", u.name, n+1)
			}
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO stage (feature, layer, code, level, name, parent_code, complete, geom, related)
			SELECT i, $1, $2, $3, $4, $5, $6, g, $7 FROM split_piece WHERE i = $8`,
			e.Layer, p.code, u.level, name, *u.parent, u.complete, related, p.i); err != nil {
			return fmt.Errorf("stage split: %w", err)
		}
		if p.i != keep && len(p.children) > 0 {
			if err := e.recodeUnder(ctx, tx, editUnit{code: p.code, level: u.level}, p.children, res); err != nil {
				return err
			}
		}
	}
	slices.Sort(res.NewCodes)
	return nil
}

// cutByLine stages in split_piece the pieces the line cuts the unit in.
// Each polygon of the unit is split on its own; pieces of no more than the
// tolerance (slivers, where the line clips a corner), and polygons the
// line does not cut in two, join the piece they share the longest
// boundary with, else the nearest: a sliver is never a unit, and an island
// stays with the land beside it.
func (e *UnitEdit) cutByLine(ctx context.Context, tx pgx.Tx, tol float64) error {
	var valid bool
	var typ string
	if err := tx.QueryRow(ctx, `SELECT ST_IsValid(g), GeometryType(g) FROM ST_GeomFromEWKB($1) g`, e.Split.Line).Scan(&valid, &typ); err != nil {
		return invalid("line", "the line cannot be read: %v", err)
	}
	if !valid || (typ != "LINESTRING" && typ != "MULTILINESTRING") {
		return invalid("line", "the cutting line must be a valid LineString or MultiLineString, not a %s", strings.ToLower(typ))
	}
	if _, err := tx.Exec(ctx, `
		WITH u AS (
		    SELECT geom FROM units WHERE valid_to IS NULL AND layer = $1 AND code = $2
		), raw AS (
		    SELECT d.path[1] AS part, s.geom AS g, gridmap_area_m2(s.geom) AS area
		    FROM u, ST_Dump(u.geom) d, ST_Dump(ST_CollectionExtract(ST_Split(d.geom, ST_GeomFromEWKB($3)), 3)) s
		), cut AS (
		    SELECT part FROM raw WHERE area > $4 GROUP BY part HAVING count(*) > 1
		), big AS (
		    SELECT row_number() OVER (ORDER BY ST_XMin(g), ST_YMin(g)) - 1 AS i, g
		    FROM raw WHERE area > $4 AND part IN (SELECT part FROM cut)
		), frag AS (
		    SELECT row_number() OVER () AS f, g FROM raw WHERE NOT (area > $4 AND part IN (SELECT part FROM cut))
		), joined AS (
		    SELECT DISTINCT ON (f.f) f.f, f.g, b.i
		    FROM frag f CROSS JOIN big b
		    ORDER BY f.f, ST_Length(ST_Intersection(ST_Boundary(f.g), ST_Buffer(b.g, `+sharedEdgeDegrees+`))) DESC, ST_Distance(f.g, b.g), b.i
		)
		INSERT INTO split_piece (i, g)
		SELECT b.i, (SELECT ST_Multi(ST_CollectionExtract(ST_Union(x), 3))
		             FROM (SELECT b.g AS x UNION ALL SELECT j.g FROM joined j WHERE j.i = b.i) y)
		FROM big b`, e.Layer, e.Code, e.Split.Line, tol); err != nil {
		return fmt.Errorf("cut by line: %w", err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM split_piece`).Scan(&n); err != nil {
		return err
	}
	if n < 2 {
		return invalid("line", "the line does not cut %s in two: it must cross the unit from one side of its boundary to another, and cut off more than %g m²", e.Code, tol)
	}
	return nil
}

// stagePieces stages the pieces sent in split_piece, and adds to r what
// keeps them from tiling the unit: an invalid piece, two that overlap, a
// piece reaching outside the unit, a part of the unit none covers (each
// above the tolerance). Pieces are then clipped to the unit.
func (e *UnitEdit) stagePieces(ctx context.Context, tx pgx.Tx, tol float64, r *UnitImportReport) error {
	if len(e.Split.Pieces) < 2 {
		return invalid("pieces", "a split makes at least two pieces")
	}
	for i, p := range e.Split.Pieces {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if _, err := tx.Exec(ctx, `INSERT INTO split_piece (i, g, name, code) VALUES ($1, ST_GeomFromEWKB($2), $3, $4)`, i, p.Geometry, name, p.Code); err != nil {
			return invalid("pieces", "pieces.features[%d]: the geometry cannot be read: %v", i, err)
		}
	}
	if e.Repair {
		if _, err := tx.Exec(ctx, `UPDATE split_piece SET g = ST_Multi(ST_CollectionExtract(ST_MakeValid(g), 3)) WHERE NOT ST_IsValid(g)`); err != nil {
			return err
		}
	}
	rows, err := tx.Query(ctx, `
		SELECT i, (d).reason, ST_X((d).location), ST_Y((d).location), ST_AsGeoJSON(g, 9)
		FROM (SELECT i, g, ST_IsValidDetail(g) AS d FROM split_piece) x WHERE NOT (d).valid ORDER BY i`)
	if err != nil {
		return err
	}
	if err := forEach(rows, func() error {
		var i int
		var reason, gj string
		var x, y *float64
		if err := rows.Scan(&i, &reason, &x, &y, &gj); err != nil {
			return err
		}
		v := grid.Violation{Rule: grid.RuleInvalidGeometry, Severity: grid.SeverityError, Codes: []string{e.Code}, Feature: &i,
			Message: fmt.Sprintf("pieces[%d] is not a valid polygon: %s (repair=true makes it valid)", i, reason), Geometry: json.RawMessage(gj)}
		if x != nil && y != nil {
			v.Location = []float64{*x, *y}
		}
		r.add(v)
		return nil
	}); err != nil {
		return err
	}
	if !r.OK() {
		return nil
	}
	checks := []struct {
		rule, msg, query string
	}{
		{grid.RuleOverlap, "pieces[%d] and pieces[%d] overlap by %.1f m² (near %.6f %.6f)", `
			SELECT a.i AS a, b.i AS b, ST_CollectionExtract(ST_Intersection(a.g, b.g), 3) AS x
			FROM split_piece a JOIN split_piece b ON a.i < b.i AND a.g && b.g AND ST_Relate(a.g, b.g, '2********')`},
		{RuleSplitOutside, "pieces[%d] reaches %.1f m² outside the unit (near %.6f %.6f)", `
			SELECT p.i AS a, NULL::int AS b, ST_CollectionExtract(ST_Difference(p.g, u.geom), 3) AS x
			FROM split_piece p, u WHERE NOT ST_CoveredBy(p.g, u.geom)`},
		{RuleSplitGap, "%.1f m² of %s is covered by no piece (near %.6f %.6f)", `
			SELECT NULL::int AS a, NULL::int AS b, ST_Collect(d.geom) AS x
			FROM u, ST_Dump(ST_CollectionExtract(ST_Difference(u.geom, (SELECT ST_Union(g) FROM split_piece)), 3)) d
			WHERE gridmap_area_m2(d.geom) > $3`},
	}
	for _, c := range checks {
		rows, err := tx.Query(ctx, `
			WITH u AS (SELECT geom FROM units WHERE valid_to IS NULL AND layer = $1 AND code = $2),
			f AS (`+c.query+`)
			SELECT f.a, f.b, ST_AsGeoJSON(x, 9), gridmap_area_m2(x), ST_X(ST_PointOnSurface(x)), ST_Y(ST_PointOnSurface(x))
			FROM f WHERE x IS NOT NULL AND NOT ST_IsEmpty(x) AND gridmap_area_m2(x) > $3`, e.Layer, e.Code, tol)
		if err != nil {
			return fmt.Errorf("check pieces: %w", err)
		}
		if err := forEach(rows, func() error {
			var a, b *int
			var gj string
			var area, x, y float64
			if err := rows.Scan(&a, &b, &gj, &area, &x, &y); err != nil {
				return err
			}
			var m string
			switch {
			case b != nil:
				m = fmt.Sprintf(c.msg, *a, *b, area, x, y)
			case a != nil:
				m = fmt.Sprintf(c.msg, *a, area, x, y)
			default:
				m = fmt.Sprintf(c.msg, area, e.Code, x, y)
			}
			r.add(grid.Violation{Rule: c.rule, Severity: grid.SeverityError, Codes: []string{e.Code}, Feature: a, Message: m,
				Geometry: json.RawMessage(gj), AreaM2: &area, Location: []float64{x, y}})
			return nil
		}); err != nil {
			return fmt.Errorf("check pieces: %w", err)
		}
	}
	if !r.OK() {
		return nil
	}
	if _, err := tx.Exec(ctx, `
		UPDATE split_piece p SET g = ST_Multi(ST_CollectionExtract(ST_Intersection(p.g, u.geom), 3))
		FROM units u WHERE u.valid_to IS NULL AND u.layer = $1 AND u.code = $2`, e.Layer, e.Code); err != nil {
		return err
	}
	rows, err = tx.Query(ctx, `SELECT i FROM split_piece WHERE ST_IsEmpty(g) OR gridmap_area_m2(g) <= $1 ORDER BY i`, tol)
	if err != nil {
		return err
	}
	empty, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return err
	}
	if len(empty) > 0 {
		return invalid("pieces", "pieces[%d] covers no more than %g m² of %s: a piece is a unit, not a sliver", empty[0], tol, e.Code)
	}
	return nil
}

// assignChildren gives each child of the unit to the piece that covers it
// (all but the tolerance); a child no piece covers is a finding naming it,
// with the part of it outside the piece that holds most of it.
func (e *UnitEdit) assignChildren(ctx context.Context, tx pgx.Tx, tol float64, r *UnitImportReport) ([]splitPiece, error) {
	rows, err := tx.Query(ctx, `SELECT i, coalesce(name, ''), coalesce(code, '') FROM split_piece ORDER BY i`)
	if err != nil {
		return nil, err
	}
	var pieces []splitPiece
	if err := forEach(rows, func() error {
		var p splitPiece
		if err := rows.Scan(&p.i, &p.name, &p.code); err != nil {
			return err
		}
		pieces = append(pieces, p)
		return nil
	}); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `
		SELECT c.code, b.i, coalesce(b.out, gridmap_area_m2(c.geom)), ST_AsGeoJSON(coalesce(b.d, c.geom), 9),
		       ST_X(ST_PointOnSurface(coalesce(b.d, c.geom))), ST_Y(ST_PointOnSurface(coalesce(b.d, c.geom)))
		FROM units c
		LEFT JOIN LATERAL (
		    SELECT p.i, x.d, coalesce(gridmap_area_m2(x.d), 0) AS out -- null when empty
		    FROM split_piece p, LATERAL (SELECT ST_CollectionExtract(ST_Difference(c.geom, p.g), 3) AS d) x
		    WHERE p.g && c.geom
		    ORDER BY out, p.i LIMIT 1
		) b ON true
		WHERE c.valid_to IS NULL AND c.layer = $1 AND c.parent_code = $2
		ORDER BY c.code`, e.Layer, e.Code)
	if err != nil {
		return nil, err
	}
	if err := forEach(rows, func() error {
		var child, gj string
		var i *int
		var out float64
		var x, y *float64 // none where nothing lies outside
		if err := rows.Scan(&child, &i, &out, &gj, &x, &y); err != nil {
			return err
		}
		if (i == nil || out > tol) && x != nil && y != nil {
			r.add(grid.Violation{Rule: RuleCrossesCut, Severity: grid.SeverityError, Codes: []string{child, e.Code},
				Message:  fmt.Sprintf("the child %s crosses the cut: %.1f m² of it lies outside the piece that holds most of it (near %.6f %.6f); move the cut along its boundary, or reshape it first", child, out, *x, *y),
				Geometry: json.RawMessage(gj), AreaM2: &out, Location: []float64{*x, *y}})
			return nil
		}
		for k := range pieces {
			if pieces[k].i == *i {
				pieces[k].children = append(pieces[k].children, child)
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return pieces, nil
}

// keptPiece is the index of the piece that keeps the unit's code: the one
// named by keep, or carrying the unit's code, else the one holding the
// unit's label point (the nearest to it, should it fall in a gap below the
// tolerance).
func (e *UnitEdit) keptPiece(ctx context.Context, tx pgx.Tx, pieces []splitPiece) (int, error) {
	sp := e.Split
	keep := -1
	if sp.KeepIndex != nil {
		if k := *sp.KeepIndex; k < 0 || k >= len(pieces) {
			return 0, invalid("keep", "keep %d: there are %d pieces (0–%d)", k, len(pieces), len(pieces)-1)
		}
		keep = *sp.KeepIndex
	}
	if sp.Keep != "" {
		for _, p := range pieces {
			if p.code == sp.Keep {
				keep = p.i
			}
		}
		if keep < 0 {
			return 0, invalid("keep", "keep %s: no piece carries that code (properties.code); name the piece by its index", sp.Keep)
		}
	}
	for _, p := range pieces {
		if p.code == e.Code {
			if keep >= 0 && keep != p.i {
				return 0, invalid("keep", "pieces[%d] carries %s, the code keep gives pieces[%d]", p.i, e.Code, keep)
			}
			keep = p.i
		}
	}
	if keep >= 0 {
		if c := pieces[keep].code; c != "" && c != e.Code {
			return 0, invalid("keep", "pieces[%d] keeps %s, but asks for %s (properties.code): drop one", keep, e.Code, c)
		}
		return keep, nil
	}
	// Pieces that ask for a new code are not candidates.
	err := tx.QueryRow(ctx, `
		SELECT p.i FROM split_piece p, units u
		WHERE u.valid_to IS NULL AND u.layer = $1 AND u.code = $2 AND coalesce(p.code, '') IN ('', $2)
		ORDER BY ST_Distance(p.g, ST_PointOnSurface(u.geom)), p.i LIMIT 1`, e.Layer, e.Code).Scan(&keep)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, invalid("keep", "every piece asks for a new code: one keeps %s (name it with keep, or leave its code out)", e.Code)
	}
	return keep, err
}

// splitCodes gives every piece its code: the kept one the unit's, one that
// asks for a code that code (if it was never given), the others the next
// free codes of the unit's kind (grid.SeqBlock) under its parent.
func (e *UnitEdit) splitCodes(ctx context.Context, tx pgx.Tx, u editUnit, pieces []splitPiece, keep int) error {
	parent := *u.parent
	rows, err := tx.Query(ctx, `SELECT DISTINCT right(code, 3)::int FROM units WHERE layer = $1 AND length(code) = $3 AND left(code, length($2)) = $2 AND right(code, 3) ~ '^[0-9]+$'`,
		e.Layer, parent, len(parent)+3)
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
	asked := map[string]int{}
	for k, p := range pieces {
		if p.i == keep {
			pieces[k].code = e.Code
			continue
		}
		if p.code == "" {
			continue
		}
		if j, ok := asked[p.code]; ok {
			return invalid("pieces", "pieces[%d] and pieces[%d] both ask for %s", j, p.i, p.code)
		}
		asked[p.code] = p.i
		if e.Layer == grid.BaseLayer {
			if err := grid.ValidateCode(grid.Level(u.level), p.code, parent); err != nil {
				return invalid("pieces", "pieces[%d]: %v", p.i, err)
			}
		}
		var n int
		var last *time.Time
		if err := tx.QueryRow(ctx, `SELECT count(*), max(valid_to) FROM units WHERE layer = $1 AND code = $2`, e.Layer, p.code).Scan(&n, &last); err != nil {
			return err
		}
		if n > 0 && last != nil {
			return fmt.Errorf("pieces[%d]: code %s was given before (retired at %s) and is never given again: %w", p.i, p.code, last.UTC().Format(time.RFC3339), ErrExists)
		}
		if n > 0 {
			return fmt.Errorf("pieces[%d]: unit %s exists: %w", p.i, p.code, ErrExists)
		}
		if len(p.code) == len(parent)+3 {
			if seq, err := strconv.Atoi(p.code[len(parent):]); err == nil {
				used[seq] = true
			}
		}
	}
	seq, _ := strconv.Atoi(e.Code[max(len(e.Code)-3, 0):])
	lo, hi := grid.SeqBlock(grid.Level(u.level), seq)
	if lo == 0 {
		lo, hi = 1, 999
	}
	for k, p := range pieces {
		if p.code != "" {
			continue
		}
		next := nextFreeSeq(used, lo, hi)
		if next == 0 {
			return invalid("pieces", "no free code %03d–%03d is left under %s: name the pieces' codes", lo, hi, parent)
		}
		used[next] = true
		pieces[k].code = fmt.Sprintf("%s%03d", parent, next)
	}
	return nil
}
