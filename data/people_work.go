package data

import (
	"context"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// Task is a piece of open work of a person: an event to handle (its
// handler), to verify (its verifier; a supervisor's too where the grid
// has no worker), or an extension request to decide (a supervisor).
type Task struct {
	Kind        string           `json:"kind"` // handle, verify, decide_extension
	EventCode   string           `json:"event_code"`
	Class       string           `json:"class"`
	ClassName   string           `json:"class_name"`
	Status      grid.EventStatus `json:"status"`
	GridCode    string           `json:"grid_code"`
	Description string           `json:"description"`
	// Due is when the work is due: the event's deadline (handle, decide),
	// its verification due time (verify).
	Due     time.Time `json:"due"`
	Overdue bool      `json:"overdue"`
	// Extension is the request to decide (decide_extension).
	Extension *int `json:"extension,omitempty"`
}

// PersonTasks lists a person's open work, overdue first, then by due time.
func (s *Store) PersonTasks(ctx context.Context, p *PersonRow, limit int) ([]Task, error) {
	if limit <= 0 {
		limit = 200
	}
	now := time.Now()
	out := []Task{}
	err := s.readSnapshot(ctx, func(tx pgx.Tx) error {
		unit := p.UnitCode
		if p.Role != grid.RoleSupervisor || p.Status != grid.PersonActive {
			unit = "-" // matches no grid: only supervisors see their area's work
		}
		rows, err := tx.Query(ctx, `
			SELECT 'handle', e.code, e.class_code, c.name, e.status, e.grid_code, e.description, e.deadline, NULL::int
			FROM events e JOIN event_classes c ON c.code = e.class_code
			WHERE e.handler_id = $1 AND e.status IN ('dispatched', 'handling', 'returned', 'suspended')
			UNION ALL
			SELECT 'verify', e.code, e.class_code, c.name, e.status, e.grid_code, e.description, coalesce(e.verify_due, e.handled_at), NULL
			FROM events e JOIN event_classes c ON c.code = e.class_code
			WHERE e.status = 'handled' AND (e.verifier_id = $1 OR (e.verifier_id IS NULL AND e.grid_code LIKE $2 || '%'))
			UNION ALL
			SELECT 'decide_extension', e.code, e.class_code, c.name, e.status, e.grid_code, e.description, e.deadline, x.n
			FROM event_extensions x JOIN events e ON e.code = x.event_code JOIN event_classes c ON c.code = e.class_code
			WHERE x.status = 'pending' AND e.grid_code LIKE $2 || '%'`, p.ID, unit)
		if err != nil {
			return err
		}
		return forEach(rows, func() error {
			var t Task
			var status string
			if err := rows.Scan(&t.Kind, &t.EventCode, &t.Class, &t.ClassName, &status, &t.GridCode, &t.Description, &t.Due, &t.Extension); err != nil {
				return err
			}
			t.Status = grid.EventStatus(status)
			t.Due = t.Due.In(s.cityTime())
			// A suspended event's clock stands still: it is never overdue.
			t.Overdue = t.Status != grid.StatusSuspended && now.After(t.Due)
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Overdue != out[j].Overdue {
			return out[i].Overdue
		}
		if !out[i].Due.Equal(out[j].Due) {
			return out[i].Due.Before(out[j].Due)
		}
		return out[i].EventCode < out[j].EventCode
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
