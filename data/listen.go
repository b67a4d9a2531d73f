package data

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Listen holds one connection LISTENing on channel and calls fn once when
// listening starts and then after each notification (one per committed
// change: a bulk import is one). It returns when ctx ends or the
// connection fails.
func (s *Store) Listen(ctx context.Context, channel string, fn func()) error {
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection leaves the pool: a LISTENing session must not be
	// handed to other queries.
	c := conn.Hijack()
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	// Whatever changed before LISTEN took effect (at start, or while a lost
	// connection was down) sent no notice to this session: catch up now.
	fn()
	for {
		if _, err := c.WaitForNotification(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fn()
	}
}

// UnitsFingerprint changes whenever a unit version is added or closed.
func (s *Store) UnitsFingerprint(ctx context.Context) (string, error) {
	var fp string
	err := s.Pool.QueryRow(ctx, `
		SELECT count(*) || ':' || coalesce(max(id), 0) || ':' || coalesce(max(valid_to)::text, '')
		FROM units`).Scan(&fp)
	return fp, err
}
