package data

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Object writes against concurrent unit edits (docs/design-notes.md,
// Objects and edits). Imports of units hold the units lock exclusively, so
// no object is assigned while one runs. Edits hold it shared, as object
// writes do: edits under different parents, and object writes anywhere,
// run in parallel. What orders an object write against an edit that
// changes the grids it lies in is a row lock: the writer locks the
// current rows of the grids its geometry touches FOR SHARE and assigns
// after the lock is granted; an edit changes a grid only by closing its
// current row (an UPDATE, which waits for FOR SHARE holders and makes them
// wait), so
//
//   - an edit that closed a grid before the writer locked it has committed
//     (the lock waited for it): the writer, in READ COMMITTED, sees the new
//     grids in its next statement, finds the set it locked stale, and locks
//     and assigns again until the set it locked is the set it touches;
//   - an edit that comes after the lock waits for the writer's commit, and
//     its re-assignment (a later statement) sees the object.
//
// The one case left open: an object outside every grid locks nothing, so
// an edit that covers it concurrently (a grid created in a gap) can miss
// it; it is assigned when next written or re-assigned.

// maxAssignRounds bounds the rounds of lock-and-assign: each round but
// the last waited for an edit of the grids concerned to commit.
const maxAssignRounds = 50

// currentGridsTouching are the current base grids touching the geometry $1
// (EWKB), in code order.
const currentGridsTouching = `
	SELECT code FROM units
	WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid'
	  AND geom && ST_GeomFromEWKB($1) AND ST_Intersects(geom, ST_GeomFromEWKB($1))
	ORDER BY code`

// assignLocked assigns the geometry (EWKB, valid) to its grid while
// holding FOR SHARE locks on every current grid it touches, so that no
// edit changes them before the caller commits; nil when it lies in none.
func assignLocked(ctx context.Context, tx pgx.Tx, wkb []byte) (*string, error) {
	rows, err := tx.Query(ctx, currentGridsTouching+` FOR SHARE`, wkb)
	if err != nil {
		return nil, err
	}
	locked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for range maxAssignRounds {
		var g *string
		var touching []string
		if err := tx.QueryRow(ctx, `SELECT gridmap_assign(ST_GeomFromEWKB($1)), ARRAY(`+currentGridsTouching+`)`, wkb).Scan(&g, &touching); err != nil {
			return nil, err
		}
		// A locked grid stays current and so keeps touching: the set is
		// stable when nothing new touches.
		if slices.Equal(touching, locked) {
			return g, nil
		}
		rows, err := tx.Query(ctx, `SELECT code FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid' AND code = ANY($1)
			ORDER BY code FOR SHARE`, touching)
		if err != nil {
			return nil, err
		}
		if locked, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("assign to a grid: the grids kept changing over %d rounds", maxAssignRounds)
}

// lockStageGrids locks FOR SHARE the current grids the staged objects are
// assigned to (and, for lines and polygons, touch), and re-assigns the
// staged rows that an edit committed since the grids were read (the
// obj_grids snapshot) may have moved: those touching a grid version that
// was current then and is not now, or the reverse. Re-assigned rows are
// checked in SQL as lines are (located = false). It repeats until the
// grids locked are the grids read.
func lockStageGrids(ctx context.Context, tx pgx.Tx) error {
	for range maxAssignRounds {
		if _, err := tx.Exec(ctx, `
			SELECT 1 FROM units u
			WHERE u.valid_to IS NULL AND u.layer = 'base' AND u.level = 'grid'
			  AND u.code IN (
			      SELECT grid_code FROM obj_stage WHERE grid_code IS NOT NULL
			      UNION
			      SELECT g.code FROM obj_stage s
			      JOIN units g ON g.valid_to IS NULL AND g.layer = 'base' AND g.level = 'grid' AND g.geom && s.geom AND ST_Intersects(g.geom, s.geom)
			      WHERE NOT s.located)
			ORDER BY u.code
			FOR SHARE OF u`); err != nil {
			return fmt.Errorf("lock grids: %w", err)
		}
		// After the locks, a new statement sees every edit that committed
		// while they were waited for.
		tag, err := tx.Exec(ctx, `
			CREATE TEMP TABLE obj_grids_changed ON COMMIT DROP AS
			SELECT u.id, u.geom FROM units u
			WHERE u.id IN (
			    (SELECT id FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid' EXCEPT SELECT id FROM obj_grids)
			    UNION
			    (SELECT id FROM obj_grids EXCEPT SELECT id FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid'))`)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			_, err := tx.Exec(ctx, `DROP TABLE obj_grids_changed`)
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE obj_stage s SET grid_code = gridmap_assign(s.geom), located = false
			WHERE EXISTS (SELECT 1 FROM obj_grids_changed c WHERE s.geom && c.geom AND ST_Intersects(s.geom, c.geom));
			DELETE FROM obj_grids;
			INSERT INTO obj_grids SELECT id FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid';
			DROP TABLE obj_grids_changed`); err != nil {
			return fmt.Errorf("re-assign after an edit: %w", err)
		}
	}
	return fmt.Errorf("assign to grids: the grids kept changing over %d rounds", maxAssignRounds)
}
