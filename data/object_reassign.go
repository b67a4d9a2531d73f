package data

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"

	"gridmap/geo"
)

// reassignRegion assigns again every object that touches the region (a
// query yielding one geometry, g) and updates exactly those whose grid
// changes; it returns their codes. Objects outside the region cannot be
// affected by a boundary change inside it.
func reassignRegion(ctx context.Context, tx pgx.Tx, region string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, `
		WITH region AS (`+region+`),
		cand AS (
			SELECT DISTINCT ON (o.code) o.code, o.grid_code AS old_grid, gridmap_assign(o.geom) AS new_grid
			FROM objects o, region r
			WHERE o.geom && r.g AND ST_Intersects(o.geom, r.g)
		)
		UPDATE objects o SET grid_code = c.new_grid, updated_at = now()
		FROM cand c
		WHERE o.code = c.code AND c.new_grid IS DISTINCT FROM c.old_grid
		RETURNING o.code`, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// changedGridsRegion is every base grid geometry this transaction closed
// or wrote (unitStamp is the stamp of both): the
// region where an import of units can have moved objects.
const changedGridsRegion = `
	SELECT geom AS g FROM units
	WHERE layer = 'base' AND level = 'grid' AND (valid_to = ` + unitStamp + ` OR (valid_to IS NULL AND valid_from = ` + unitStamp + `))`

// ReassignAfterBoundaryChange moves exactly the objects whose grid changes
// when a grid's geometry goes from oldGeom to newGeom, inside the caller's
// transaction (after the unit row itself was updated). Only objects that
// touch the old or the new geometry can change; each is assigned again by
// gridmap_assign and updated only if its grid differs. It returns the codes
// of the moved objects.
func ReassignAfterBoundaryChange(ctx context.Context, tx pgx.Tx, oldGeom, newGeom orb.Geometry) ([]string, error) {
	oldB, err := geo.EWKB(oldGeom)
	if err != nil {
		return nil, err
	}
	newB, err := geo.EWKB(newGeom)
	if err != nil {
		return nil, err
	}
	return reassignRegion(ctx, tx, `SELECT ST_Union(ST_GeomFromEWKB($1), ST_GeomFromEWKB($2)) AS g`, oldB, newB)
}
