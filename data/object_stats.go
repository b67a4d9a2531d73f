package data

import (
	"context"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// ClassCount is how many objects of one class a unit holds.
type ClassCount struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// UnitStats are the object counts of one unit.
type UnitStats struct {
	Code    string                `json:"code"`
	Name    string                `json:"name"`
	Level   grid.Level            `json:"level,omitempty"`
	Total   int64                 `json:"total"`
	ByClass map[string]ClassCount `json:"by_class"`
}

// ObjectStats are a unit's counts and those of each of its children.
type ObjectStats struct {
	Unit     UnitStats   `json:"unit"`
	Children []UnitStats `json:"children"`
}

// Stats counts the objects of a base unit and of each of its children (a
// grid has none), per class, from object_counts, which the triggers on
// objects keep exact: a unit's count is the sum over the grids whose code
// starts with its code.
func (s *Store) Stats(ctx context.Context, code string) (*ObjectStats, error) {
	st := &ObjectStats{Children: []UnitStats{}}
	err := s.readSnapshot(ctx, func(tx pgx.Tx) error {
		u, children, err := unitWithChildren(ctx, tx, code)
		if err != nil {
			return err
		}
		st.Unit = UnitStats{Code: code, Name: u.Name, Level: u.Level, ByClass: map[string]ClassCount{}}
		byCode := map[string]*UnitStats{code: &st.Unit}
		for _, c := range children {
			st.Children = append(st.Children, UnitStats{Code: c.Code, Name: c.Name, ByClass: map[string]ClassCount{}})
		}
		for i := range st.Children {
			byCode[st.Children[i].Code] = &st.Children[i]
		}
		// One range scan of the unit on object_counts' primary key
		// (grid_code, class_code), grouped by the child's code prefix; the
		// unit's own figures are the sum.
		rows, err := tx.Query(ctx, `
			SELECT left(n.grid_code, $3), n.class_code, cl.name, sum(n.n)::bigint
			FROM object_counts n JOIN object_classes cl ON cl.code = n.class_code
			WHERE n.grid_code >= $1 AND n.grid_code < $2
			GROUP BY 1, 2, 3`, code, codeRangeEnd(code), u.childCodeLen())
		if err != nil {
			return err
		}
		return forEach(rows, func() error {
			var child, class, name string
			var n int64
			if err := rows.Scan(&child, &class, &name, &n); err != nil {
				return err
			}
			targets := []*UnitStats{&st.Unit}
			if c := byCode[child]; c != nil && c != &st.Unit {
				targets = append(targets, c)
			}
			for _, us := range targets {
				c := us.ByClass[class]
				c.Name, c.Count = name, c.Count+n
				us.ByClass[class] = c
				us.Total += n
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// CountObjects counts stored objects (from the exact per-grid counts).
func (s *Store) CountObjects(ctx context.Context) (int64, error) {
	var n int64
	err := s.Reader(ctx).QueryRow(ctx, `SELECT coalesce(sum(n), 0)::bigint FROM object_counts`).Scan(&n)
	return n, err
}
