package data

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"gridmap/geo"
)

// The SQL helpers every part of the store shares: what runs a query, row
// iteration, transactions, the WHERE and keyset builder of the lists and
// their cursors.

// querier runs queries: the pool, a transaction, or a connection inside
// one (so a helper reads in the caller's snapshot when it has one).
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// forEach calls fn for each row (fn scans it) and closes rows.
func forEach(rows pgx.Rows, fn func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(); err != nil {
			return err
		}
	}
	return rows.Err()
}

// readSnapshot runs fn in a read-only transaction whose queries all see
// one snapshot, for reads made of several queries.
func (s *Store) readSnapshot(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.Reader(ctx), pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// retryTx runs fn again when PostgreSQL aborted it for a deadlock or a
// serialization failure: both are a concurrent writer's fault, not the
// request's.
func retryTx(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if attempt < 5 && (isPgCode(err, "40P01") || isPgCode(err, "40001")) && ctx.Err() == nil {
			time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
			continue
		}
		return err
	}
}

// isPgCode reports whether err is a PostgreSQL error with the SQLSTATE
// code (23505 unique violation, 23503 foreign key violation, …).
func isPgCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// lockUnits takes the transaction-scoped lock that orders unit imports
// against the writers that assign objects to grids: an import holds it
// exclusively, so that grids do not change under an assignment that holds
// it shared.
func lockUnits(ctx context.Context, tx pgx.Tx, shared bool) error {
	q := `SELECT pg_advisory_xact_lock(hashtext('gridmap.units'))`
	if shared {
		q = `SELECT pg_advisory_xact_lock_shared(hashtext('gridmap.units'))`
	}
	_, err := tx.Exec(ctx, q)
	return err
}

// lockNowait runs a LOCK … NOWAIT statement in a savepoint of tx: false,
// with tx still usable, when another transaction holds a conflicting lock.
func lockNowait(ctx context.Context, tx pgx.Tx, lock string) (bool, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, err
	}
	if _, err := sp.Exec(ctx, lock); err != nil {
		if isPgCode(err, "55P03") { // lock_not_available
			return false, sp.Rollback(ctx)
		}
		return false, err
	}
	return true, sp.Commit(ctx)
}

// column is one column of rows, for a statement that inserts many rows
// at once from arrays (unnest($1::text[], $2::float8[], …)).
func column[R, T any](rows []R, f func(R) T) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = f(r)
	}
	return out
}

// sqlQuery collects the conditions and the numbered arguments of a query.
type sqlQuery struct {
	conds []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (q *sqlQuery) arg(v any) string {
	q.args = append(q.args, v)
	return fmt.Sprintf("$%d", len(q.args))
}

func (q *sqlQuery) where(cond string) { q.conds = append(q.conds, cond) }

// whereInScopes adds the condition that col, a unit code, lies in the
// subtree of one of scopes (as auth.Identity.ReadScopes gives them): none
// for nil (the whole city); ranges on the code, which its B-tree indexes
// serve, as codeRangeEnd explains.
func (q *sqlQuery) whereInScopes(col string, scopes []string) {
	if scopes == nil {
		return
	}
	q.where(q.inScopes(col, scopes))
}

func (q *sqlQuery) inScopes(col string, scopes []string) string {
	if len(scopes) == 0 {
		return "false"
	}
	parts := make([]string, len(scopes))
	for i, sc := range scopes {
		parts[i] = "(" + col + " >= " + q.arg(sc) + " AND " + col + " < " + q.arg(codeRangeEnd(sc)) + ")"
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// whereSQL is " WHERE " and the conditions joined by AND, or "" when
// there are none.
func (q *sqlQuery) whereSQL() string {
	if len(q.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.conds, " AND ")
}

// envelope is the SQL of a lon/lat box (min lon, min lat, max lon, max
// lat) in WGS 84.
func (q *sqlQuery) envelope(b [4]float64) string {
	return fmt.Sprintf("ST_MakeEnvelope(%s, %s, %s, %s, 4326)", q.arg(b[0]), q.arg(b[1]), q.arg(b[2]), q.arg(b[3]))
}

// intersects is the condition that col intersects the box: the && on the
// GiST index first, then the exact test.
func (q *sqlQuery) intersects(col string, b [4]float64) string {
	env := q.envelope(b)
	return col + " && " + env + " AND ST_Intersects(" + col + ", " + env + ")"
}

// keyset is the order of a list: by cols, all ascending or (desc) all
// descending, the last column unique. A page continues after the sort key
// of the last row of the previous page with a row comparison, which
// PostgreSQL answers by a range scan of an index on cols.
type keyset struct {
	cols []string
	desc bool
}

// after is the condition of the rows that come after the row whose sort
// key is vals (one per column).
func (k keyset) after(q *sqlQuery, vals ...any) string {
	ps := make([]string, len(vals))
	for i, v := range vals {
		ps[i] = q.arg(v)
	}
	op := " > "
	if k.desc {
		op = " < "
	}
	if len(k.cols) == 1 {
		return k.cols[0] + op + ps[0]
	}
	return "(" + strings.Join(k.cols, ", ") + ")" + op + "(" + strings.Join(ps, ", ") + ")"
}

// orderLimit is " ORDER BY" the columns and, when limit > 0, " LIMIT" it.
func (k keyset) orderLimit(q *sqlQuery, limit int) string {
	cols := k.cols
	if k.desc {
		cols = make([]string, len(k.cols))
		for i, c := range k.cols {
			cols[i] = c + " DESC"
		}
	}
	s := " ORDER BY " + strings.Join(cols, ", ")
	if limit > 0 {
		s += " LIMIT " + q.arg(limit)
	}
	return s
}

// nextPage cuts the limit+1 rows a list fetched to limit, with the cursor
// of the next page when there were more.
func nextPage[T any](rows []T, limit int, next func(T) cursor) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	return rows[:limit], next(rows[limit-1]).encode()
}

// Orders of a list, and so kinds of cursor.
const (
	orderCode     = "code"     // bbox, unassigned: by code
	orderGrid     = "grid"     // within: by grid code, then code (the index order)
	orderDistance = "distance" // near, nearest: by distance, then code
	orderReported = "reported" // events: newest first, then code
	orderAudit    = "audit"    // audit log: newest first (Code holds the id)
)

// cursor is the position after the last row of a page. Clients get it
// opaque (base64url of JSON): its form may change.
type cursor struct {
	Order string     `json:"o"`
	Code  string     `json:"c"`
	Grid  string     `json:"g,omitempty"`
	Dist  float64    `json:"d,omitempty"`
	At    *time.Time `json:"t,omitempty"`
}

func (c cursor) encode() string {
	// JSON has no NaN or infinity, and a cursor that fails to marshal is
	// "", which reads as the first page: the list would start over for
	// ever. A negative distance is refused by decodeCursor instead.
	if math.IsNaN(c.Dist) || math.IsInf(c.Dist, 0) {
		c.Dist = -1
	}
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor of a list in order; nil for "" (the first
// page), a *FilterError for anything this store did not issue for that
// order.
func decodeCursor(s, order string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := filterErr("cursor", "cursor %q is not one this list issued: follow the next link of the previous page", geo.Excerpt(s, geo.MaxExcerpt))
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil || c.Order != order || c.Code == "" ||
		math.IsNaN(c.Dist) || math.IsInf(c.Dist, 0) || c.Dist < 0 || (order == orderReported) != (c.At != nil) {
		return nil, bad
	}
	return &c, nil
}
