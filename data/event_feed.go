package data

import (
	"context"
	"encoding/json"
	"time"
)

// FeedEntry is one row of the live feed: what subscribers filter on, and
// the body they receive (FeedBody as JSON, with "seq").
type FeedEntry struct {
	Seq       int64
	At        time.Time
	Kind      string
	EventCode string
	Status    string
	From      string // the status before a transition
	Class     string
	GridCode  string
	Lon, Lat  float64
	Body      json.RawMessage
}

// ReadFeed returns up to limit feed entries after seq, in seq order. seq
// order is commit order (see queueFeed), so a reader that continues from
// the last seq it saw never misses a row.
func (s *Store) ReadFeed(ctx context.Context, after int64, limit int) ([]FeedEntry, error) {
	rows, err := s.Pool.Query(ctx, `SELECT seq, at, kind, event_code, status, coalesce(from_status, ''), class_code, grid_code, lon, lat,
			body || jsonb_build_object('seq', seq)
		FROM event_feed WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	var out []FeedEntry
	err = forEach(rows, func() error {
		var f FeedEntry
		if err := rows.Scan(&f.Seq, &f.At, &f.Kind, &f.EventCode, &f.Status, &f.From, &f.Class, &f.GridCode, &f.Lon, &f.Lat, &f.Body); err != nil {
			return err
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

// FeedBounds are the highest seq pruned (a reader resuming from below it
// has missed rows) and the highest committed seq (where a new reader
// starts).
func (s *Store) FeedBounds(ctx context.Context) (pruned, newest int64, err error) {
	err = s.Pool.QueryRow(ctx, `SELECT (SELECT through FROM event_feed_pruned),
		greatest((SELECT coalesce(max(seq), 0) FROM event_feed), (SELECT through FROM event_feed_pruned))`).Scan(&pruned, &newest)
	return pruned, newest, err
}

// PruneEvents drops feed rows older than feedRetention and idempotency
// keys older than keyRetention. A subscriber that resumes from a pruned
// seq is told it missed events (it cannot be given them).
func (s *Store) PruneEvents(ctx context.Context, feedRetention, keyRetention time.Duration) (feed, keys int64, err error) {
	err = s.Pool.QueryRow(ctx, `WITH d AS (DELETE FROM event_feed WHERE at < now() - make_interval(secs => $1) RETURNING seq),
			u AS (UPDATE event_feed_pruned SET through = greatest(through, (SELECT max(seq) FROM d)) WHERE EXISTS (SELECT 1 FROM d))
		SELECT count(*) FROM d`, feedRetention.Seconds()).Scan(&feed)
	if err != nil {
		return 0, 0, err
	}
	tag, err := s.Pool.Exec(ctx, `DELETE FROM event_idempotency WHERE created_at < now() - make_interval(secs => $1)`, keyRetention.Seconds())
	if err != nil {
		return feed, 0, err
	}
	return feed, tag.RowsAffected(), nil
}
