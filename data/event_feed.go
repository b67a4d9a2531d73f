package data

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// FeedEntry is one row of the live feed: what subscribers filter on, and
// the body they receive (FeedBody, or UnitChangeBody, as JSON, with
// "seq").
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
	// A unit change (Kind "unit", UnitChangeKind) has no event, status,
	// class, grid or position, but its layer, every code it touches (the
	// body may list fewer) and the bounding box of the changed area.
	Layer string
	Codes []string
	BBox  *[4]float64
	Body  json.RawMessage
}

// readFeedSQL reads the feed after $1: seq is the partition key, so only
// the partitions of the cursor's month and later are read.
const readFeedSQL = `SELECT seq, at, kind, coalesce(event_code, ''), coalesce(status, ''), coalesce(from_status, ''),
		coalesce(class_code, ''), coalesce(grid_code, ''), coalesce(lon, 0), coalesce(lat, 0), coalesce(layer, ''), codes, bbox,
		body || jsonb_build_object('seq', seq)
	FROM event_feed WHERE seq > $1 ORDER BY seq LIMIT $2`

// ReadFeed returns up to limit feed entries after seq, in seq order. seq
// order is commit order (see queueFeed), so a reader that continues from
// the last seq it saw never misses a row.
func (s *Store) ReadFeed(ctx context.Context, after int64, limit int) ([]FeedEntry, error) {
	rows, err := s.Pool.Query(ctx, readFeedSQL, after, limit)
	if err != nil {
		return nil, err
	}
	var out []FeedEntry
	err = forEach(rows, func() error {
		var f FeedEntry
		var bbox []float64
		if err := rows.Scan(&f.Seq, &f.At, &f.Kind, &f.EventCode, &f.Status, &f.From, &f.Class, &f.GridCode, &f.Lon, &f.Lat,
			&f.Layer, &f.Codes, &bbox, &f.Body); err != nil {
			return err
		}
		f.BBox = bboxOf(bbox)
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
	// The bound on seq (the partition key) keeps the months after the
	// cutoff's out of the plan; a row given its seq in the month after its
	// transaction began waits for the next month's pruning.
	err = s.Pool.QueryRow(ctx, `WITH d AS (DELETE FROM event_feed WHERE at < now() - make_interval(secs => $1)
				AND seq < gridmap_feed_month_base((date_trunc('month', (now() - make_interval(secs => $1)) AT TIME ZONE 'UTC') + interval '1 month')::date)
				RETURNING seq),
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

// EventsChannel is the NOTIFY channel of the event feed: one notice per
// committed transaction that wrote to event_feed.
const EventsChannel = "gridmap_events"

// feedLock is the advisory lock that orders event_feed.seq by commit: it
// is taken just before the feed rows are written and held to commit.
const feedLock = 0x67726964_6576 // "gridev"

// FeedBody is what live subscribers receive for a creation or a
// transition (stored in event_feed.body; seq is added when read).
type FeedBody struct {
	Type       string           `json:"type"` // created or transition
	At         time.Time        `json:"at"`
	Code       string           `json:"code"`
	Class      string           `json:"class"`
	ClassName  string           `json:"class_name"`
	Status     grid.EventStatus `json:"status"`
	From       grid.EventStatus `json:"from,omitempty"`
	Lon        float64          `json:"lon"`
	Lat        float64          `json:"lat"`
	GridCode   string           `json:"grid_code"`
	Department string           `json:"department"`
	ReportedAt time.Time        `json:"reported_at"`
	Deadline   time.Time        `json:"deadline"`
	Actor      string           `json:"actor,omitempty"`
	Note       string           `json:"note,omitempty"`
	Version    int              `json:"version"`
}

func feedBody(kind string, ev *Event, from grid.EventStatus, l LogEntry) FeedBody {
	return FeedBody{Type: kind, At: l.At, Code: ev.Code, Class: ev.Class, ClassName: ev.ClassName, Status: ev.Status, From: from,
		Lon: ev.Lon, Lat: ev.Lat, GridCode: ev.GridCode, Department: ev.Department, ReportedAt: ev.ReportedAt, Deadline: ev.Deadline,
		Actor: l.Actor, Note: l.Note, Version: ev.Version}
}

// queueFeed appends to b: the feed lock, the feed rows and the notice. It
// must be the last work of the transaction: the lock is held to commit,
// and what runs under it serialises every writer of the feed.
func queueFeed(b *pgx.Batch, kind string, from grid.EventStatus, feed []FeedBody) error {
	bodies := make([][]byte, len(feed))
	for i, f := range feed {
		var err error
		if bodies[i], err = json.Marshal(f); err != nil {
			return err
		}
	}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, int64(feedLock))
	b.Queue(`INSERT INTO event_feed (seq, kind, from_status, event_code, status, class_code, grid_code, lon, lat, body)
		SELECT (SELECT event_feed_seq_base()) + nextval('event_feed_seq'), $1, nullif($9, ''), c, st, cl, g, lon, lat, b
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::jsonb[]) AS t(c, st, cl, g, lon, lat, b)`,
		kind,
		column(feed, func(f FeedBody) string { return f.Code }),
		column(feed, func(f FeedBody) string { return string(f.Status) }),
		column(feed, func(f FeedBody) string { return f.Class }),
		column(feed, func(f FeedBody) string { return f.GridCode }),
		column(feed, func(f FeedBody) float64 { return f.Lon }),
		column(feed, func(f FeedBody) float64 { return f.Lat }),
		bodies, string(from))
	b.Queue(`SELECT pg_notify($1, '')`, EventsChannel)
	return nil
}
