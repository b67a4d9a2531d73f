package data

import (
	"context"
	"strconv"
	"time"
)

// AuditEntry is one write request as the audit log keeps it.
type AuditEntry struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Method    string    `json:"method"`
	Route     string    `json:"route"`
	Path      string    `json:"path"`
	Status    int       `json:"status"`
	Units     []string  `json:"units"`
	RequestID string    `json:"request_id,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// MaxAuditUnits caps the units one entry lists; a bulk write touching more
// says how many in its detail.
const MaxAuditUnits = 1000

// Audit appends an entry to the audit log.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	units := e.Units
	if units == nil {
		units = []string{}
	}
	_, err := s.Pool.Exec(ctx, `
		INSERT INTO audit_log (actor, method, route, path, status, units, request_id, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		e.Actor, e.Method, e.Route, e.Path, e.Status, units, e.RequestID, e.Detail)
	return err
}

// AuditFilter selects audit entries: by actor, by unit (an entry touching
// any unit in that unit's subtree), by time [From, To).
type AuditFilter struct {
	Actor    string
	Unit     string
	From, To *time.Time
	Limit    int
	Cursor   string
}

// AuditPage is one page of the audit log, newest first.
type AuditPage struct {
	Entries []AuditEntry
	Next    string
}

// ListAudit reads the audit log, newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) (*AuditPage, error) {
	c, err := decodeCursor(f.Cursor, orderAudit)
	if err != nil {
		return nil, err
	}
	q := &sqlQuery{}
	where := "true"
	if f.Actor != "" {
		where += " AND actor = " + q.arg(f.Actor)
	}
	if f.Unit != "" {
		// The GIN index finds the unit itself; its subtree needs the scan.
		where += " AND EXISTS (SELECT 1 FROM unnest(units) u WHERE starts_with(u, " + q.arg(f.Unit) + "))"
	}
	if f.From != nil {
		where += " AND at >= " + q.arg(*f.From)
	}
	if f.To != nil {
		where += " AND at < " + q.arg(*f.To)
	}
	if c != nil {
		id, err := strconv.ParseInt(c.Code, 10, 64)
		if err != nil {
			return nil, filterErr("cursor", "cursor is not one this list issued")
		}
		where += " AND id < " + q.arg(id)
	}
	rows, err := s.Pool.Query(ctx, `SELECT id, at, actor, method, route, path, status, units, request_id, detail
		FROM audit_log WHERE `+where+` ORDER BY id DESC LIMIT `+q.arg(f.Limit+1), q.args...)
	if err != nil {
		return nil, err
	}
	var out []AuditEntry
	err = forEach(rows, func() error {
		var e AuditEntry
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Method, &e.Route, &e.Path, &e.Status, &e.Units, &e.RequestID, &e.Detail); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	page := &AuditPage{}
	page.Entries, page.Next = nextPage(out, f.Limit, func(e AuditEntry) cursor {
		return cursor{Order: orderAudit, Code: strconv.FormatInt(e.ID, 10)}
	})
	return page, nil
}
