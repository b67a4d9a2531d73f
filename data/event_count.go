package data

import "context"

// CountEvents counts stored events (from the exact per-grid counts).
func (s *Store) CountEvents(ctx context.Context) (int64, error) {
	var n int64
	err := s.Reader(ctx).QueryRow(ctx, `SELECT coalesce(sum(n), 0)::bigint FROM event_counts`).Scan(&n)
	return n, err
}
