package data

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Reads from a hot standby. A store opened with PoolOptions.ReadURL sends
// the reads that tolerate a replica (lists, tiles, statistics, locator
// builds) to the read pool, and everything else (writes, LISTEN, the event
// feed, tokens, as_of history) to the primary. A replica read must never
// show the reader something older than it may already have seen, so each
// one needs the replica to have replayed the WAL up to an LSN:
//
//   - the floor: the primary's WAL position when this process last acted
//     on a change: at open, at each notice (listen raises it before the
//     follower's callback runs) and when the tile cache drops tiles
//     (RaiseFloor). A NOTIFY arrives as soon as the primary commits,
//     usually before the replica replayed the change; whatever a notice
//     refreshes (locator, tile cache) and every read after it must see at
//     least that.
//   - the caller's own: ReadAfter puts the LSN of the client's last write
//     in its context (read-your-writes, kept by the API per credential).
//
// When the replica has not replayed that far, Reader waits for it at most
// PoolOptions.ReadWait and then reads from the primary, counted in
// ReplicaStats. The read URL must name one node: replayed is the highest
// position seen on any connection of the read pool, which says nothing of
// another standby behind a list of hosts.

// Defaults of the read pool.
const (
	DefaultReadWait = 250 * time.Millisecond
	// replicaSampleEvery is how often the lag gauges are refreshed; a
	// replica that fails a sample is skipped until one succeeds again.
	replicaSampleEvery = time.Second
)

// replica is the read pool and what the store knows of its progress.
type replica struct {
	pool     *pgxpool.Pool
	wait     time.Duration
	floor    atomic.Uint64 // LSN every replica read must have replayed
	replayed atomic.Uint64 // the highest replay LSN seen on the replica
	healthy  atomic.Bool
	// Gauges of the last sample.
	lagSeconds atomic.Uint64 // math.Float64bits
	lagBytes   atomic.Int64
	// Reads sent to the primary, by reason.
	primaryRYW, primaryNotice, primaryDown atomic.Int64
	// writers holds, per writer (NoteWrite), the LSN its reads must see,
	// until the replica has replayed it (then the sampler drops it).
	writers sync.Map // string → uint64
	stop    context.CancelFunc
	done    chan struct{}
}

// replayLSNSQL is how far the replica has replayed; a node that is no
// longer in recovery (a standby promoted while it serves as the read URL)
// has every record it wrote.
const (
	replayLSNExpr = `(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint`
	replayLSNSQL  = `SELECT ` + replayLSNExpr
	// replaySampleSQL adds the age of the last replayed transaction while
	// the replica has more to replay (0 when it is level with what it
	// received: an idle primary must not look like a lagging replica).
	replaySampleSQL = `SELECT coalesce(CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
		ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END, 0)::float8, ` + replayLSNExpr
)

// currentLSNSQL is the primary's WAL insert position: at or past the end
// of every transaction that committed before it.
const currentLSNSQL = `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint`

type readCtxKey struct{}

type readCtx struct {
	primary bool
	ryw     bool // primary for read-your-writes, counted as such
	after   uint64
}

// OnPrimary marks ctx's reads for the primary: those of a write request,
// which must read what it is about to change.
func OnPrimary(ctx context.Context) context.Context {
	return context.WithValue(ctx, readCtxKey{}, readCtx{primary: true})
}

// ReadAfter makes ctx's replica reads wait until the replica replayed lsn
// (the client's last write; 0: no constraint beyond the floor).
func ReadAfter(ctx context.Context, lsn uint64) context.Context {
	if lsn == 0 {
		return ctx
	}
	return context.WithValue(ctx, readCtxKey{}, readCtx{after: lsn})
}

// HasReplica says whether reads may go to a replica.
func (s *Store) HasReplica() bool { return s.replica != nil }

// ReadPool is the pool of the replica (the primary's without one).
func (s *Store) ReadPool() *pgxpool.Pool {
	if s.replica == nil {
		return s.Pool
	}
	return s.replica.pool
}

// Reader is the pool a read of ctx goes to: the replica once it has
// replayed what the read must see, else (after waiting at most the read
// wait) the primary.
func (s *Store) Reader(ctx context.Context) *pgxpool.Pool {
	r := s.replica
	if r == nil {
		return s.Pool
	}
	rc, _ := ctx.Value(readCtxKey{}).(readCtx)
	if rc.primary {
		if rc.ryw {
			r.primaryRYW.Add(1)
		}
		return s.Pool
	}
	if !r.healthy.Load() {
		r.primaryDown.Add(1)
		return s.Pool
	}
	floor := r.floor.Load()
	need := max(floor, rc.after)
	if r.replayed.Load() >= need || r.waitFor(ctx, need) {
		return r.pool
	}
	if rc.after > floor {
		r.primaryRYW.Add(1)
	} else {
		r.primaryNotice.Add(1)
	}
	return s.Pool
}

// waitFor polls the replica until it has replayed lsn, for at most the
// read wait; false when it has not (or cannot say).
func (r *replica) waitFor(ctx context.Context, lsn uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, r.wait)
	defer cancel()
	pause := time.Millisecond
	for {
		var got int64
		if err := r.pool.QueryRow(ctx, replayLSNSQL).Scan(&got); err != nil {
			return false
		}
		if r.sawReplay(uint64(got)) >= lsn {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// sawReplay records a replay position and returns the highest seen.
func (r *replica) sawReplay(lsn uint64) uint64 {
	for {
		cur := r.replayed.Load()
		if lsn <= cur {
			return cur
		}
		if r.replayed.CompareAndSwap(cur, lsn) {
			return lsn
		}
	}
}

// raise lifts an LSN held in v to at least lsn.
func raise(v *atomic.Uint64, lsn uint64) {
	for {
		cur := v.Load()
		if lsn <= cur || v.CompareAndSwap(cur, lsn) {
			return
		}
	}
}

// WriteLSN is the primary's WAL position now: read right after a write
// committed, it is at or past that write's commit record.
func (s *Store) WriteLSN(ctx context.Context) (uint64, error) {
	var lsn int64
	err := s.Pool.QueryRow(ctx, currentLSNSQL).Scan(&lsn)
	return uint64(lsn), err
}

// writerPrimary marks a writer whose last write's position is unknown (the
// primary did not answer after it): its reads go to the primary until the
// entry is replaced.
const writerPrimary = math.MaxUint64

// NoteWrite records that writer (the API's key of a credential) has just
// committed a write: its later reads through ReadFor see it. Without a
// replica it does nothing.
func (s *Store) NoteWrite(ctx context.Context, writer string) {
	r := s.replica
	if r == nil || writer == "" {
		return
	}
	lsn, err := s.WriteLSN(ctx)
	if err != nil {
		r.writers.Store(writer, uint64(writerPrimary))
		return
	}
	for {
		cur, loaded := r.writers.LoadOrStore(writer, lsn)
		if !loaded || cur.(uint64) >= lsn || r.writers.CompareAndSwap(writer, cur, lsn) {
			return
		}
	}
}

// ReadFor is ctx for the reads of writer: they see its writes noted by
// NoteWrite (read-your-writes).
func (s *Store) ReadFor(ctx context.Context, writer string) context.Context {
	r := s.replica
	if r == nil || writer == "" {
		return ctx
	}
	v, ok := r.writers.Load(writer)
	if !ok {
		return ctx
	}
	if lsn := v.(uint64); lsn != writerPrimary {
		return ReadAfter(ctx, lsn)
	}
	return context.WithValue(ctx, readCtxKey{}, readCtx{primary: true, ryw: true})
}

// forgetReplayed drops the writers whose writes the replica has replayed
// (their reads need nothing more than the floor).
func (r *replica) forgetReplayed() {
	replayed := r.replayed.Load()
	r.writers.Range(func(k, v any) bool {
		if lsn := v.(uint64); lsn != writerPrimary && lsn <= replayed {
			r.writers.CompareAndDelete(k, v)
		}
		return true
	})
}

// RaiseFloor makes every later replica read wait for the primary's WAL
// position lsn (read on the primary after a change this process acts on,
// as the tile cache's drops).
func (s *Store) RaiseFloor(lsn uint64) {
	if s.replica != nil {
		raise(&s.replica.floor, lsn)
	}
}

// raiseFloor takes the primary's position at a notice (q is the listening
// connection, on the primary).
func (s *Store) raiseFloor(ctx context.Context, q querier) error {
	if s.replica == nil {
		return nil
	}
	var lsn int64
	if err := q.QueryRow(ctx, currentLSNSQL).Scan(&lsn); err != nil {
		return err
	}
	raise(&s.replica.floor, uint64(lsn))
	return nil
}

// ReplicaStats is what the metrics show of the read pool.
type ReplicaStats struct {
	Healthy bool
	// LagSeconds is how old the last transaction the replica replayed is
	// when it has more to replay (0 when it has replayed all it received);
	// LagBytes how much WAL the primary wrote that it has not replayed.
	LagSeconds float64
	LagBytes   int64
	// Reads sent to the primary: for read-your-writes, for a notice's
	// floor, and because the replica failed its last sample.
	PrimaryReadYourWrites, PrimaryNotice, PrimaryDown int64
}

// ReplicaStats of the last sample; false without a replica.
func (s *Store) ReplicaStats() (ReplicaStats, bool) {
	r := s.replica
	if r == nil {
		return ReplicaStats{}, false
	}
	return ReplicaStats{Healthy: r.healthy.Load(), LagSeconds: math.Float64frombits(r.lagSeconds.Load()), LagBytes: r.lagBytes.Load(),
		PrimaryReadYourWrites: r.primaryRYW.Load(), PrimaryNotice: r.primaryNotice.Load(), PrimaryDown: r.primaryDown.Load()}, true
}

// sampleLoop samples the replica's progress until ctx ends.
func (s *Store) sampleLoop(ctx context.Context) {
	defer close(s.replica.done)
	t := time.NewTicker(replicaSampleEvery)
	defer t.Stop()
	for {
		s.sampleReplica(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleReplica reads the replica's replay position and lag and the
// primary's position. A replica that does not answer is marked down (reads
// go to the primary) until it does.
func (s *Store) sampleReplica(ctx context.Context) {
	r := s.replica
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var (
		replay int64
		lag    float64
	)
	if err := r.pool.QueryRow(ctx, replaySampleSQL).Scan(&lag, &replay); err != nil {
		if !errors.Is(err, context.Canceled) {
			r.healthy.Store(false)
		}
		return
	}
	r.sawReplay(uint64(replay))
	r.forgetReplayed()
	r.healthy.Store(true)
	r.lagSeconds.Store(math.Float64bits(max(lag, 0)))
	var primary int64
	if err := s.Pool.QueryRow(ctx, currentLSNSQL).Scan(&primary); err == nil {
		r.lagBytes.Store(max(primary-replay, 0))
		// A writer whose write's position was unknown: the primary's
		// position now is past it.
		r.writers.Range(func(k, v any) bool {
			if v.(uint64) == writerPrimary {
				r.writers.CompareAndSwap(k, v, uint64(primary))
			}
			return true
		})
	}
}
