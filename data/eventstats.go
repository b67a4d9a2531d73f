package data

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// EventCount is the figures of one group of events (a status or a class
// of a unit, or the unit as a whole).
type EventCount struct {
	Total int64 `json:"total"`
	// Open events past their deadline now.
	Overdue int64 `json:"overdue"`
	// Handled: events that reached "handled"; OnTime: those that did so by
	// their deadline. Closed: events closed (not rejected).
	Handled int64 `json:"handled"`
	OnTime  int64 `json:"handled_on_time"`
	Closed  int64 `json:"closed"`
	// Mean hours from report to first "handled", and from report to
	// "closed"; null when none.
	AvgHandlingHours *float64 `json:"avg_handling_hours"`
	AvgClosingHours  *float64 `json:"avg_closing_hours"`

	handlingSecs, closingSecs float64
}

func (c *EventCount) add(o EventCount) {
	c.Total += o.Total
	c.Overdue += o.Overdue
	c.Handled += o.Handled
	c.OnTime += o.OnTime
	c.Closed += o.Closed
	c.handlingSecs += o.handlingSecs
	c.closingSecs += o.closingSecs
}

func (c *EventCount) finish() {
	c.AvgHandlingHours, c.AvgClosingHours = nil, nil
	if c.Handled > 0 {
		h := c.handlingSecs / float64(c.Handled) / 3600
		c.AvgHandlingHours = &h
	}
	if c.Closed > 0 {
		h := c.closingSecs / float64(c.Closed) / 3600
		c.AvgClosingHours = &h
	}
}

// EventUnitStats are one unit's figures, in all and per status or class.
type EventUnitStats struct {
	Code  string                 `json:"code"`
	Name  string                 `json:"name"`
	Level grid.Level             `json:"level,omitempty"`
	All   EventCount             `json:"all"`
	By    map[string]*EventCount `json:"by"`
}

// EventStats are a unit's figures and each child's.
type EventStats struct {
	By       string           `json:"by"` // status or class
	From     *time.Time       `json:"from"`
	To       *time.Time       `json:"to"`
	Unit     EventUnitStats   `json:"unit"`
	Children []EventUnitStats `json:"children"`
}

// EventStats counts the events of a base unit and of each of its children
// reported in [from, to) (nil: unbounded), grouped by status or class.
func (s *Store) EventStats(ctx context.Context, code, by string, from, to *time.Time) (*EventStats, error) {
	key := "e.status"
	switch by {
	case "status":
	case "class":
		key = "e.class_code"
	default:
		return nil, filterErr("by", "by=%q: events are counted by status or class", by)
	}
	now := time.Now()
	st := &EventStats{By: by, From: from, To: to, Children: []EventUnitStats{}}
	err := pgx.BeginTxFunc(ctx, s.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var level string
		err := tx.QueryRow(ctx, `SELECT name, level FROM units WHERE valid_to IS NULL AND layer = $1 AND code = $2`, grid.BaseLayer, code).
			Scan(&st.Unit.Name, &level)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		st.Unit.Code, st.Unit.Level, st.Unit.By = code, grid.Level(level), map[string]*EventCount{}
		childLen := len(code)
		children := map[string]int{}
		if l := grid.Level(level); l != grid.Grid {
			childLen = l.Child().CodeLen()
			rows, err := tx.Query(ctx, `SELECT code, name FROM units WHERE valid_to IS NULL AND layer = $1 AND parent_code = $2 ORDER BY code`, grid.BaseLayer, code)
			if err != nil {
				return err
			}
			if err := forEach(rows, func() error {
				var c EventUnitStats
				if err := rows.Scan(&c.Code, &c.Name); err != nil {
					return err
				}
				c.Level, c.By = l.Child(), map[string]*EventCount{}
				children[c.Code] = len(st.Children)
				st.Children = append(st.Children, c)
				return nil
			}); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `
			SELECT left(e.grid_code, $2), `+key+`, count(*),
				count(*) FILTER (WHERE `+openStatusSQL+` AND e.deadline < $5),
				count(e.handled_at), count(*) FILTER (WHERE e.handled_at <= e.deadline),
				count(*) FILTER (WHERE e.status = 'closed'),
				coalesce(sum(extract(epoch FROM e.handled_at - e.reported_at)), 0),
				coalesce(sum(extract(epoch FROM e.closed_at - e.reported_at)) FILTER (WHERE e.status = 'closed'), 0)
			FROM events e
			WHERE e.grid_code >= $1 AND e.grid_code < gridmap_code_upper($1)
			  AND ($3::timestamptz IS NULL OR e.reported_at >= $3) AND ($4::timestamptz IS NULL OR e.reported_at < $4)
			GROUP BY 1, 2`, code, childLen, from, to, now)
		if err != nil {
			return err
		}
		return forEach(rows, func() error {
			var child, k string
			var c EventCount
			if err := rows.Scan(&child, &k, &c.Total, &c.Overdue, &c.Handled, &c.OnTime, &c.Closed, &c.handlingSecs, &c.closingSecs); err != nil {
				return err
			}
			addTo := func(u *EventUnitStats) {
				u.All.add(c)
				if u.By[k] == nil {
					u.By[k] = &EventCount{}
				}
				u.By[k].add(c)
			}
			addTo(&st.Unit)
			if i, ok := children[child]; ok {
				addTo(&st.Children[i])
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	for _, u := range append([]*EventUnitStats{&st.Unit}, childPtrs(st.Children)...) {
		u.All.finish()
		for _, c := range u.By {
			c.finish()
		}
	}
	return st, nil
}

func childPtrs(cs []EventUnitStats) []*EventUnitStats {
	out := make([]*EventUnitStats, len(cs))
	for i := range cs {
		out[i] = &cs[i]
	}
	return out
}
