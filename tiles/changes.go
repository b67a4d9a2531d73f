package tiles

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
)

// ChangesChannel is the NOTIFY channel of table tile_changes
// (migration 004): one notice per statement that changed what tiles draw.
const ChangesChannel = "gridmap_tiles"

// Changes applies the rows of tile_changes to a cache. It remembers the
// database snapshot of its last read and reads the rows of every
// transaction that was not visible in it: transactions commit in any
// order, so "id greater than the last seen" could skip a transaction that
// took a lower id and committed later.
type Changes struct {
	pool      *pgxpool.Pool
	cache     *Cache
	catalogue *Catalogue

	// Seen, when set, is told the primary's WAL position at each read,
	// before the tiles it read are dropped: a server that renders from a
	// replica makes the renders after the drop wait for that position
	// (data.Store.RaiseFloor), or a render could read the replica from
	// before the change and keep the old tile.
	Seen func(lsn uint64)

	mu       sync.Mutex
	snapshot string // pg_snapshot of the last read
	lastID   int64  // highest id read (for logs)
}

// NewChanges starts reading changes from now: the rows of transactions
// that commit after this call.
func NewChanges(ctx context.Context, pool *pgxpool.Pool, cache *Cache, cat *Catalogue) (*Changes, error) {
	c := &Changes{pool: pool, cache: cache, catalogue: cat}
	if err := pool.QueryRow(ctx, `SELECT pg_current_snapshot()::text, coalesce(max(id), 0) FROM tile_changes`).Scan(&c.snapshot, &c.lastID); err != nil {
		return nil, fmt.Errorf("tile changes: %w", err)
	}
	return c, nil
}

// Synced says what one Sync read and dropped.
type Synced struct {
	Changes int   // rows read
	Dropped int   // cached tiles dropped
	LastID  int64 // highest row id seen so far
}

// Sync reads the changes committed since the last read and drops the
// cached tiles they touch. Safe for concurrent use: reads are serialised.
func (c *Changes) Sync(ctx context.Context) (Synced, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out Synced
	byLayer := map[string][]Change{}
	var next string
	var lsn int64
	// One snapshot for both statements: the rows read are exactly those of
	// the transactions visible in it and not in the previous one.
	err := pgx.BeginTxFunc(ctx, c.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// The WAL position is read after the snapshot is taken: at or past
		// the commit of every transaction visible in it.
		if err := tx.QueryRow(ctx, `SELECT pg_current_snapshot()::text, (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint`).Scan(&next, &lsn); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT id, layer, coalesce(kind, ''), ST_AsBinary(geom) FROM tile_changes
			WHERE xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot)
			ORDER BY id`, c.snapshot)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var layer, kind string
			var b []byte
			if err := rows.Scan(&id, &layer, &kind, &b); err != nil {
				return err
			}
			var g orb.Geometry
			if b != nil {
				if g, err = wkb.Unmarshal(b); err != nil {
					return fmt.Errorf("tile_changes %d: %w", id, err)
				}
			}
			zmin, zmax := c.catalogue.ChangeZooms(layer, kind)
			byLayer[layer] = append(byLayer[layer], Change{Geom: g, MinZoom: zmin, MaxZoom: zmax})
			out.Changes++
			c.lastID = max(c.lastID, id)
		}
		return rows.Err()
	})
	if err != nil {
		return out, fmt.Errorf("read tile changes: %w", err)
	}
	if c.Seen != nil && out.Changes > 0 {
		c.Seen(uint64(lsn))
	}
	for layer, gs := range byLayer {
		out.Dropped += c.cache.Invalidate(layer, gs)
	}
	c.snapshot = next
	out.LastID = c.lastID
	return out, nil
}
