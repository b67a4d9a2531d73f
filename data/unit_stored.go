package data

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"gridmap/geo"
	"gridmap/grid"
)

// StoredUnit is a current unit version with its row id. The id names
// the version's content for good: once written, a version's layer, code,
// name, level, parent and geometry never change (a later write only ends
// it), so a reader holding a version by id need never read it again.
type StoredUnit struct {
	ID int64
	grid.Unit
}

// CurrentUnitVersions reads, in one snapshot, the row ids of every current
// unit version and the versions among them that known does not hold (every
// current version when known is nil). A reader that keeps what it loaded by id follows the units
// exactly, whatever order concurrent writes committed in and whichever
// notices it missed: what changed since it last read is the ids it does not
// know and the ids it knows that are no longer current.
func (s *Store) CurrentUnitVersions(ctx context.Context, known func(id int64) bool) (ids []int64, fresh []StoredUnit, err error) {
	err = s.readSnapshot(ctx, func(tx pgx.Tx) error {
		ids, fresh = nil, nil
		if known == nil {
			// The count sizes the slice once: growing a slice of 200,000
			// units by appending copied it over and over and fed the
			// garbage collector during a locator build.
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM units WHERE valid_to IS NULL`).Scan(&n); err != nil {
				return err
			}
			var err error
			fresh, err = loadStoredUnits(ctx, tx, n, `WHERE valid_to IS NULL`)
			ids = make([]int64, 0, len(fresh))
			for _, v := range fresh {
				ids = append(ids, v.ID)
			}
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id FROM units WHERE valid_to IS NULL`)
		if err != nil {
			return err
		}
		var want []int64
		if err := forEach(rows, func() error {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
			if !known(id) {
				want = append(want, id)
			}
			return nil
		}); err != nil {
			return err
		}
		if len(want) == 0 {
			return nil
		}
		fresh, err = loadStoredUnits(ctx, tx, len(want), `WHERE id = ANY($1)`, want)
		return err
	})
	return ids, fresh, err
}

// loadStoredUnits reads unit versions (by a WHERE clause) with their ids;
// about is the number expected.
func loadStoredUnits(ctx context.Context, q querier, about int, where string, args ...any) ([]StoredUnit, error) {
	rows, err := q.Query(ctx, `SELECT id, layer, code, name, level, coalesce(parent_code, ''), geom FROM units `+where+` ORDER BY layer, code`, args...)
	if err != nil {
		return nil, err
	}
	out := make([]StoredUnit, 0, about)
	err = forEach(rows, func() error {
		var v StoredUnit
		var level string
		// The driver's own buffer, decoded before the next row: no copy
		// of every geometry's bytes.
		var wkb pgtype.DriverBytes
		if err := rows.Scan(&v.ID, &v.Layer, &v.Code, &v.Name, &level, &v.ParentCode, &wkb); err != nil {
			return err
		}
		mp, err := geo.MultiPolygonFromEWKB(wkb)
		if err != nil {
			return fmt.Errorf("unit %s: %w", v.Code, err)
		}
		v.Level, v.Geometry = grid.Level(level), mp
		out = append(out, v)
		return nil
	})
	return out, err
}
