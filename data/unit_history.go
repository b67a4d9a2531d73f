package data

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// rfc3339Micro formats a timestamptz (at time zone UTC) as RFC 3339 to
// the microsecond, as PostgreSQL keeps it: a valid_from read from an
// answer and sent back as as_of selects that very version.
const rfc3339Micro = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`

// validAt is the condition that a units row is the version valid at asOf
// ([valid_from, valid_to)), or the current one when asOf is nil. With an
// instant, reads go by units_history_code (layer, code, valid_from) and
// units_history_geom instead of the partial indexes of current rows.
func validAt(q *sqlQuery, asOf *time.Time) string {
	if asOf == nil {
		return "valid_to IS NULL"
	}
	t := q.arg(*asOf)
	return "valid_from <= " + t + " AND (valid_to IS NULL OR valid_to > " + t + ")"
}

// UnitVersion is one stored version of a unit.
type UnitVersion struct {
	UnitRow
	ValidTo      *string // RFC 3339 (µs); nil for the current version
	ChangedBy    string
	ChangeReason string
	// Operation made the version ("import", or an edit); RelatedCodes are
	// the codes it came from (the sibling a reshape took area from, the
	// units merged into it, the old code of a re-coded unit).
	Operation    string
	RelatedCodes []string
	// Of a closed version: who closed it, why, by which operation, and
	// the codes its area or identity went to (nil while it is current; a
	// version closed before edits were recorded has none).
	ClosedBy, CloseReason, CloseOperation *string
	CloseRelated                          []string
}

// UnitHistory returns every version of a unit, oldest first (a retired
// unit's too: its last version is closed); ErrNotFound when the code never
// named a unit of the layer.
func (s *Store) UnitHistory(ctx context.Context, layer, code string, m GeometryMode) ([]UnitVersion, error) {
	if layer == "" {
		layer = grid.BaseLayer
	}
	rows, err := s.Reader(ctx).Query(ctx, `SELECT layer, code, name, level, parent_code, complete, area_m2, version,
	        to_char(valid_from AT TIME ZONE 'UTC', `+rfc3339Micro+`), to_char(valid_to AT TIME ZONE 'UTC', `+rfc3339Micro+`),
	        changed_by, change_reason, `+geometryExpr(m)+`,
	        md5(ROW(layer, code, version, extract(epoch FROM valid_from))::text),
	        operation, related_codes, closed_by, close_reason, close_operation, close_related
	    FROM units WHERE layer = $1 AND code = $2 ORDER BY valid_from, version`, layer, code)
	if err != nil {
		return nil, err
	}
	out := []UnitVersion{}
	err = forEach(rows, func() error {
		var v UnitVersion
		var level string
		var g *string
		if err := rows.Scan(&v.Layer, &v.Code, &v.Name, &level, &v.ParentCode, &v.Complete, &v.AreaM2, &v.Version,
			&v.ValidFrom, &v.ValidTo, &v.ChangedBy, &v.ChangeReason, &g, &v.Revision,
			&v.Operation, &v.RelatedCodes, &v.ClosedBy, &v.CloseReason, &v.CloseOperation, &v.CloseRelated); err != nil {
			return err
		}
		v.Level = grid.Level(level)
		if g != nil {
			v.Geometry = json.RawMessage(*g)
		}
		out = append(out, v)
		return nil
	})
	if err == nil && len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, err
}

// UnitsAt identifies the set of unit versions valid at an instant. History
// is append-only (a version is never deleted, its valid_from never
// changes, its valid_to is set once), so the versions begun by t and the
// versions ended by t only ever grow, and their two counts name the set
// valid at t exactly: two instants with no change between them share it,
// and a transaction that commits a version valid at t changes it.
type UnitsAt struct {
	Begun, Ended int64
	// Current: no version begins or ends after t, so the set is today's.
	Current bool
}

// Key is the fingerprint as a string (for cache keys).
func (a UnitsAt) Key() string { return fmt.Sprintf("%d-%d", a.Begun, a.Ended) }

// unitsAtQuery counts, in layer $2 (every layer when NULL), the versions
// begun and ended by $1 and those that begin or end after it.
const unitsAtQuery = `SELECT count(*) FILTER (WHERE valid_from <= $1), count(*) FILTER (WHERE valid_to <= $1),
	count(*) FILTER (WHERE valid_from > $1 OR valid_to > $1) = 0
	FROM units WHERE $2::text IS NULL OR layer = $2`

func unitsAt(ctx context.Context, q querier, t time.Time, layer string) (UnitsAt, error) {
	var a UnitsAt
	var l *string
	if layer != "" {
		l = &layer
	}
	err := q.QueryRow(ctx, unitsAtQuery, t, l).Scan(&a.Begun, &a.Ended, &a.Current)
	return a, err
}

// UnitsFingerprintAt identifies the versions of layer (every layer when
// empty) valid at t.
func (s *Store) UnitsFingerprintAt(ctx context.Context, t time.Time, layer string) (UnitsAt, error) {
	return unitsAt(ctx, s.Pool, t, layer)
}

// UnitsValidAt loads every unit version (all layers) valid at t, for a
// locator of that instant, with the fingerprint of that set, read in one
// snapshot so the two agree.
func (s *Store) UnitsValidAt(ctx context.Context, t time.Time) ([]grid.Unit, UnitsAt, error) {
	var units []grid.Unit
	var fp UnitsAt
	// On the primary: InstantSettled (there) lets the caller keep this set
	// for good, and a replica may not yet hold a version committed by t.
	err := s.readSnapshot(OnPrimary(ctx), func(tx pgx.Tx) error {
		var err error
		if fp, err = unitsAt(ctx, tx, t, ""); err != nil {
			return err
		}
		units, err = loadUnits(ctx, tx, `WHERE valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1)`, t)
		return err
	})
	return units, fp, err
}

// InstantSettled tells whether the versions valid at t can no longer
// change: t is past and no transaction of this database that began at or
// before it is still open. A unit write stamps its versions with a time no
// earlier than its transaction's start (unitStamp: when it holds its
// locks), so only a transaction begun by t can still commit a version
// begun, or end one, by t; once none is open, what was
// valid at t is fixed for good and may be cached without bound.
// (pg_stat_activity shows the transactions of the server's own role and,
// with pg_read_all_stats, every role's; unit writes are the server's.)
func (s *Store) InstantSettled(ctx context.Context, t time.Time) (bool, error) {
	var open bool
	err := s.Pool.QueryRow(ctx, `SELECT $1 >= now() OR EXISTS (SELECT 1 FROM pg_stat_activity
		WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start <= $1)`, t).Scan(&open)
	return !open, err
}
