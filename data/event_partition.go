package data

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// Events, event_log and event_feed are partitioned by month (migration
// 010, docs/design-notes.md "Partitioned events"). Events and their logs
// are keyed by reported_on, the local date in the event code; the feed by
// seq, whose value carries its UTC month.

// PartitionsAhead is how many months past this one the servers keep
// partitions of events and event_log made for (on start and every hour): a
// server that stops calling still has this much time before a report finds
// no partition. The feed has FeedPartitionsAhead: each month of it after a
// follower's cursor, empty or not, is one more scan in every read of the
// stream (0.075 ms a read with one, 0.105 with three, docs/benchmarks.md).
const (
	PartitionsAhead     = 3
	FeedPartitionsAhead = 1
)

// eventDay is the partition key of the event code: the local report date
// it carries. ok is false for a string that is no event code (no event
// has it).
func eventDay(code string) (day time.Time, ok bool) {
	_, day, _, err := grid.ParseEventCode(code)
	return day, err == nil
}

// reportedOnBounds is a range of reported_on that holds every event
// reported at t: the local date is at most a day off the UTC date in any
// time zone. Added to a condition on reported_at, it lets the planner
// prune the months that cannot hold t.
func reportedOnBounds(t time.Time) (lo, hi time.Time) {
	y, m, d := t.UTC().Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return day.AddDate(0, 0, -1), day.AddDate(0, 0, 1)
}

// EnsurePartitions makes the partitions of this month and the next months
// that are missing (gridmap_partitions_ahead), and says how many it made.
func (s *Store) EnsurePartitions(ctx context.Context, months int) (int, error) {
	var n int
	err := ensurePartitions(ctx, s.Pool, months, &n)
	return n, err
}

func ensurePartitions(ctx context.Context, db beginner, months int, made *int) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		// Attaching waits for a SHARE UPDATE EXCLUSIVE lock on the parents
		// (a CREATE INDEX or a manual VACUUM holds one): a call that would
		// wait long gives way, and the next hour's retries.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT gridmap_partitions_ahead($1)`, months).Scan(made)
	})
}

// beginner is a pool or a connection.
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ensureEventMonths makes the partitions of events and event_log for the
// months of first to last, unless this store made or saw them already (a
// report at a given clock, history from another system).
func (s *Store) ensureEventMonths(ctx context.Context, q querier, first, last time.Time) error {
	f := time.Date(first.Year(), first.Month(), 1, 0, 0, 0, 0, time.UTC)
	l := time.Date(last.Year(), last.Month(), 1, 0, 0, 0, 0, time.UTC)
	known := true
	for m := f; !m.After(l); m = m.AddDate(0, 1, 0) {
		if _, ok := s.eventMonths.Load(m); !ok {
			known = false
			break
		}
	}
	if known {
		return nil
	}
	var n int
	if err := q.QueryRow(ctx, `SELECT gridmap_event_partitions($1, $2)`, f, l).Scan(&n); err != nil {
		return fmt.Errorf("event partitions %s to %s: %w", f.Format("2006-01"), l.Format("2006-01"), err)
	}
	for m := f; !m.After(l); m = m.AddDate(0, 1, 0) {
		s.eventMonths.Store(m, true)
	}
	return nil
}

// DroppedPartition is a partition of the feed that retention dropped.
type DroppedPartition struct {
	Name    string
	Entries int64
	MaxSeq  *int64 // nil when it was empty
}

// RetainFeed drops the partitions of event_feed wholly before the month
// `months` back from this one (0 keeps this month only) and records the
// highest seq dropped as pruned, in one transaction. lockTimeout bounds
// the wait for the feed's lock (dropping a partition holds it ACCESS
// EXCLUSIVE for an instant; waiting long would queue the feed's writers).
func (s *Store) RetainFeed(ctx context.Context, months int, lockTimeout time.Duration) ([]DroppedPartition, error) {
	if months < 0 {
		return nil, invalid("feed-months", "feed retention of %d months: at least 0", months)
	}
	var out []DroppedPartition
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", lockTimeout.Milliseconds())); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT dropped, entries, max_seq FROM gridmap_feed_retain($1)`, months)
		if err != nil {
			return err
		}
		return forEach(rows, func() error {
			var d DroppedPartition
			if err := rows.Scan(&d.Name, &d.Entries, &d.MaxSeq); err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// Partition is one partition of events, event_log or event_feed.
type Partition struct {
	Table, Name, Bounds string
	Rows                int64 // estimated (pg_class.reltuples), -1 when never analysed
}

// Partitions lists the partitions of the three tables, in bound order.
func (s *Store) Partitions(ctx context.Context) ([]Partition, error) {
	rows, err := s.Pool.Query(ctx, `SELECT i.inhparent::regclass::text, c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent IN ('events'::regclass, 'event_log'::regclass, 'event_feed'::regclass)
		ORDER BY 1, c.relname = 'event_feed_before' DESC, 2`)
	if err != nil {
		return nil, err
	}
	var out []Partition
	err = forEach(rows, func() error {
		var p Partition
		if err := rows.Scan(&p.Table, &p.Name, &p.Bounds, &p.Rows); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}
