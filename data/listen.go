package data

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// listen holds one connection LISTENing on channel and calls fn once when
// listening starts and then after each notification (one per committed
// change: a bulk import is one). It returns when ctx ends or the
// connection fails.
func (s *Store) listen(ctx context.Context, channel string, fn func()) error {
	c, err := s.listenConn(ctx)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	// Whatever changed before LISTEN took effect (at start, or while a lost
	// connection was down) sent no notice to this session: catch up now.
	// With a replica, what fn reads there must include every change
	// announced so far: the floor is raised first (replica.go).
	if err := s.raiseFloor(ctx, c); err != nil {
		return err
	}
	fn()
	for {
		if _, err := c.WaitForNotification(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := s.raiseFloor(ctx, c); err != nil {
			return err
		}
		fn()
	}
}

// listenConn is a connection of its own for LISTEN: the session URL's
// when there is one (a transaction pooler would register the LISTEN on a
// server connection that never hands this client its notices), else one
// taken out of the pool for good (a LISTENing session must not be handed
// to other queries).
func (s *Store) listenConn(ctx context.Context) (*pgx.Conn, error) {
	if s.session != nil {
		return pgx.ConnectConfig(ctx, s.session.Copy())
	}
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return conn.Hijack(), nil
}

// Backoff of Follow between connection attempts: doubling from the first
// to the last, and back to the first once a connection listens again.
const (
	followRetryFirst = time.Second
	followRetryMax   = 30 * time.Second
)

// Follow keeps a listener on channel until ctx ends. It calls fn each time
// listening starts, to catch up, and after each notification; after a lost
// connection it connects again with backoff, logging each loss. down is how
// long the listener was down before this call: zero but on the first call
// after a reconnection, when fn may decide that catching up is no longer
// worth it (notices sent meanwhile are lost, and whatever they announced
// may be gone too).
func (s *Store) Follow(ctx context.Context, channel string, log *slog.Logger, fn func(down time.Duration)) {
	s.FollowLost(ctx, channel, log, fn, nil)
}

// FollowLost is Follow that also calls lost (when not nil) each time the
// listening connection is lost, for a follower that must stop trusting
// what it holds until it listens again.
func (s *Store) FollowLost(ctx context.Context, channel string, log *slog.Logger, fn func(down time.Duration), lost func()) {
	var lostAt time.Time
	retry := followRetryFirst
	for ctx.Err() == nil {
		err := s.listen(ctx, channel, func() {
			var down time.Duration
			if !lostAt.IsZero() {
				down, lostAt = time.Since(lostAt), time.Time{}
			}
			retry = followRetryFirst
			fn(down)
		})
		if lost != nil {
			lost()
		}
		if ctx.Err() != nil {
			return
		}
		if lostAt.IsZero() {
			lostAt = time.Now()
		}
		log.Warn("listener lost; reconnecting", "channel", channel, "err", err, "retry_seconds", retry.Seconds())
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		retry = min(2*retry, followRetryMax)
	}
}

// UnitsFingerprint changes whenever a unit version is added or closed.
func (s *Store) UnitsFingerprint(ctx context.Context) (string, error) {
	var fp string
	err := s.Pool.QueryRow(ctx, fingerprintSQL).Scan(&fp)
	return fp, err
}

const fingerprintSQL = `SELECT count(*) || ':' || coalesce(max(id), 0) || ':' || coalesce(max(valid_to)::text, '') FROM units`
