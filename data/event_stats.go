package data

import (
	"context"
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
	// Extended: events whose deadline an approved extension (延期) moved;
	// OnTime measures them against the deadline agreed.
	Extended int64 `json:"extended"`

	handlingSecs, closingSecs float64
}

func (c *EventCount) add(o EventCount) {
	c.Total += o.Total
	c.Overdue += o.Overdue
	c.Handled += o.Handled
	c.OnTime += o.OnTime
	c.Closed += o.Closed
	c.Extended += o.Extended
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
	err := s.readSnapshot(ctx, func(tx pgx.Tx) error {
		u, children, err := unitWithChildren(ctx, tx, code)
		if err != nil {
			return err
		}
		st.Unit = EventUnitStats{Code: code, Name: u.Name, Level: u.Level, By: map[string]*EventCount{}}
		index := map[string]int{}
		for i, c := range children {
			index[c.Code] = i
			st.Children = append(st.Children, EventUnitStats{Code: c.Code, Name: c.Name, Level: c.Level, By: map[string]*EventCount{}})
		}
		rows, err := tx.Query(ctx, `
			SELECT left(e.grid_code, $2), `+key+`, count(*),
				count(*) FILTER (WHERE `+openStatusSQL+` AND e.deadline < $5),
				count(e.handled_at), count(*) FILTER (WHERE e.handled_at <= e.deadline),
				count(*) FILTER (WHERE e.status = 'closed'),
				coalesce(sum(extract(epoch FROM e.handled_at - e.reported_at)), 0),
				coalesce(sum(extract(epoch FROM e.closed_at - e.reported_at)) FILTER (WHERE e.status = 'closed'), 0),
				count(*) FILTER (WHERE e.extensions > 0)
			FROM events e
			WHERE e.grid_code >= $1 AND e.grid_code < gridmap_code_upper($1)
			  AND ($3::timestamptz IS NULL OR e.reported_at >= $3) AND ($4::timestamptz IS NULL OR e.reported_at < $4)
			GROUP BY 1, 2`, code, u.childCodeLen(), from, to, now)
		if err != nil {
			return err
		}
		return forEach(rows, func() error {
			var child, k string
			var c EventCount
			if err := rows.Scan(&child, &k, &c.Total, &c.Overdue, &c.Handled, &c.OnTime, &c.Closed, &c.handlingSecs, &c.closingSecs, &c.Extended); err != nil {
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
			if i, ok := index[child]; ok {
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
