// Package live is the server's live event feed: one reader per process
// follows the store's event_feed (LISTEN, then "seq > last"), keeps the
// recent entries in a ring, and fans them out to subscribers, each with its
// own filter. A subscriber that resumes after an id gets every matching
// entry after it, from the ring or, further back, from the table, as long
// as it is within the feed's retention; beyond that it is told of the gap.
// The HTTP side (Server-Sent Events) is api's.
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"gridmap/data"
	"gridmap/grid"
)

// Sizes of the hub.
const (
	// RingSize is the number of entries kept in memory (up to twice as
	// many between trims); older ones are read from the table.
	RingSize = 20000
	// MaxBacklog is the most entries a resuming subscriber is given; with
	// more it is told to reload instead.
	MaxBacklog = 200000
	// SubscriberQueue and SubscriberQueueBytes bound what is queued for
	// one subscriber (entries, and their bytes): beyond either it counts as
	// too slow and is dropped, and resumes with Last-Event-ID. Without a
	// bound in bytes, 1,000 subscribers that stop reading held 1.2 GB.
	SubscriberQueue      = 1024
	SubscriberQueueBytes = 256 << 10
	// DefaultMaxSubscribers is the most subscriptions a hub holds at once.
	DefaultMaxSubscribers = 2000
	readBatch             = 1000
)

// ErrTooManySubscribers: the hub holds its most subscriptions already.
var ErrTooManySubscribers = errors.New("live: too many subscribers")

// entrySize is what a queued entry keeps alive.
func entrySize(e data.FeedEntry) int { return int(unsafe.Sizeof(e)) + len(e.Body) }

// Counter and Gauge are what the hub counts with (Prometheus' types fit).
type (
	Counter interface{ Inc() }
	Gauge   interface {
		Inc()
		Dec()
	}
)

// Metrics are where the hub reports its subscribers; nil members count
// nothing.
type Metrics struct {
	Subscribers Gauge   // open subscriptions
	Dropped     Counter // subscribers dropped for reading too slowly
}

// Hub is one process's reader of the event feed and its subscribers.
type Hub struct {
	store *data.Store
	log   *slog.Logger
	m     Metrics
	ring  int
	max   int // subscriptions at once (0: no limit)

	mu        sync.Mutex
	entries   []data.FeedEntry // seq order
	ringStart int64            // entries hold every committed entry with seq in (ringStart, last]
	last      int64
	subs      map[*Subscription]struct{}
	active    int // subscriptions taken, registered or still reading their backlog

	wake chan struct{}
}

// Subscription is one subscriber's queue.
type Subscription struct {
	filter Filter
	floor  int64 // entries at or below were sent from the backlog (or precede the resume point)
	// ch holds at most one batch: publish merges what the subscriber has
	// not taken yet into it, so the queue is bounded in entries and bytes.
	ch   chan []data.FeedEntry
	gone chan struct{} // closed when dropped
}

// C delivers batches of matching entries in seq order (each batch is all
// that was queued when it is taken).
func (s *Subscription) C() <-chan []data.FeedEntry { return s.ch }

// Gone is closed when the hub dropped the subscription: it read too slowly,
// or the hub lost entries it should have had. The subscriber resumes from
// the last id it received.
func (s *Subscription) Gone() <-chan struct{} { return s.gone }

// Gap says a subscriber asked to resume from an entry no longer kept.
type Gap struct {
	Reason        string `json:"reason"`
	LastEventID   int64  `json:"last_event_id"`
	PrunedThrough int64  `json:"pruned_through,omitempty"`
	// From is where the subscription goes on, so that a client that
	// reconnects before the next entry does not ask again for what is gone.
	From int64 `json:"from"`
}

// NewHub starts at the newest committed entry: its subscribers see what is
// committed from now on, and what they resume after. It holds at most
// maxSubscribers subscriptions (DefaultMaxSubscribers when ≤ 0).
func NewHub(ctx context.Context, store *data.Store, log *slog.Logger, m Metrics, maxSubscribers int) (*Hub, error) {
	_, newest, err := store.FeedBounds(ctx)
	if err != nil {
		return nil, fmt.Errorf("event feed: %w", err)
	}
	if m.Subscribers == nil {
		m.Subscribers = nopMetric{}
	}
	if m.Dropped == nil {
		m.Dropped = nopMetric{}
	}
	if maxSubscribers <= 0 {
		maxSubscribers = DefaultMaxSubscribers
	}
	return &Hub{store: store, log: log, m: m, ring: RingSize, max: maxSubscribers, ringStart: newest, last: newest,
		subs: map[*Subscription]struct{}{}, wake: make(chan struct{}, 1)}, nil
}

type nopMetric struct{}

func (nopMetric) Inc() {}
func (nopMetric) Dec() {}

// Run reads the feed whenever a notice arrives (and on every (re)connection
// of the listener, to catch up) until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	go h.store.Follow(ctx, data.EventsChannel, h.log, func(time.Duration) { h.poke() })
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		}
		if err := h.pull(ctx); err != nil && ctx.Err() == nil {
			h.log.Error("event feed: read", "err", err)
			h.poke() // try again after a pause
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

// poke asks the reader for a pass; notices that arrive while it reads
// coalesce into one more pass.
func (h *Hub) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// pull reads every committed entry after the last one seen and fans it out.
func (h *Hub) pull(ctx context.Context) error {
	for {
		h.mu.Lock()
		after := h.last
		h.mu.Unlock()
		batch, err := h.store.ReadFeed(ctx, after, readBatch)
		if err != nil || len(batch) == 0 {
			return err
		}
		if batch[0].Seq > after+1 {
			// A gap: an aborted transaction's number, or entries pruned
			// before this server read them (it lagged the whole retention
			// window).
			pruned, _, err := h.store.FeedBounds(ctx)
			if err != nil {
				return err
			}
			if pruned > after {
				h.lost(pruned)
			}
		}
		h.publish(batch)
		if len(batch) < readBatch {
			return nil
		}
	}
}

// lost handles entries pruned before this server read them: the ring
// starts again after them, and every subscriber is dropped, so that it
// resumes and is told what it missed (a gap) instead of never learning of
// it.
func (h *Hub) lost(pruned int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log.Warn("event feed: entries were pruned before this server read them", "after", h.last, "pruned_through", pruned)
	h.entries, h.ringStart, h.last = nil, pruned, pruned
	for sub := range h.subs {
		delete(h.subs, sub)
		close(sub.gone)
	}
}

// publish appends a batch to the ring and queues it to every subscriber
// whose filter it matches. Under the hub's lock, so that a subscriber
// registering at the same time gets each entry exactly once (from its
// backlog or from here).
func (h *Hub) publish(batch []data.FeedEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append(h.entries, batch...)
	h.last = batch[len(batch)-1].Seq
	// Trim to the ring's size once it holds twice that: one copy per ring's
	// worth of entries rather than one per batch.
	if over := len(h.entries) - h.ring; over >= h.ring {
		h.ringStart = h.entries[over-1].Seq
		h.entries = append([]data.FeedEntry(nil), h.entries[over:]...)
	}
	for sub := range h.subs {
		var out []data.FeedEntry
		for _, e := range batch {
			if e.Seq <= sub.floor {
				continue
			}
			if e, ok := sub.filter.Apply(e); ok {
				out = append(out, e)
			}
		}
		if len(out) == 0 {
			continue
		}
		select {
		case queued := <-sub.ch:
			out = append(queued, out...)
		default:
		}
		size := 0
		for _, e := range out {
			size += entrySize(e)
		}
		if len(out) > SubscriberQueue || size > SubscriberQueueBytes {
			// Too slow: drop it rather than hold everyone back or keep
			// its backlog here; it resumes from the ring or the table.
			delete(h.subs, sub)
			close(sub.gone)
			h.m.Dropped.Inc()
			continue
		}
		sub.ch <- out // never blocks: publish is ch's only sender, under h.mu, and just emptied it
	}
}

// Subscribe registers a subscriber. With after ≥ 0 (the last id it
// received) the backlog holds every matching entry after it; gap is set
// when some of those are no longer kept (the subscription then starts at
// the present). With after < 0 it starts at the present.
// Beyond the hub's most subscriptions it is ErrTooManySubscribers.
func (h *Hub) Subscribe(ctx context.Context, after int64, f Filter) (sub *Subscription, backlog []data.FeedEntry, gap *Gap, err error) {
	h.mu.Lock()
	if h.max > 0 && h.active >= h.max {
		h.mu.Unlock()
		return nil, nil, nil, ErrTooManySubscribers
	}
	h.active++
	h.mu.Unlock()
	defer func() {
		if err != nil {
			h.mu.Lock()
			h.active--
			h.mu.Unlock()
		}
	}()
	sub = &Subscription{filter: f, ch: make(chan []data.FeedEntry, 1), gone: make(chan struct{})}
	register := func(floor int64) {
		sub.floor = floor
		h.subs[sub] = struct{}{}
		h.m.Subscribers.Inc()
	}
	// fromNow registers sub to follow from the present, and says where that is.
	fromNow := func() int64 {
		h.mu.Lock()
		defer h.mu.Unlock()
		register(h.last)
		return h.last
	}
	if after < 0 {
		fromNow()
		return sub, nil, nil, nil
	}
	checkedPruned := false
	for {
		h.mu.Lock()
		if after >= h.ringStart {
			for _, e := range h.entries {
				if e.Seq <= after {
					continue
				}
				if e, ok := f.Apply(e); ok {
					backlog = append(backlog, e)
				}
			}
			// An id from a server ahead of this one: what this one reads
			// later up to it has been sent already.
			register(max(after, h.last))
			h.mu.Unlock()
			return sub, backlog, nil, nil
		}
		ringStart := h.ringStart
		h.mu.Unlock()
		// Older than the ring: read the table up to where the ring begins.
		if !checkedPruned {
			pruned, _, err := h.store.FeedBounds(ctx)
			if err != nil {
				return nil, nil, nil, err
			}
			if after < pruned {
				return sub, nil, &Gap{Reason: "the entries after this id are older than the feed's retention window; reload the state (GET /v1/events, and GET /v1/units for unit changes) and follow from here",
					LastEventID: after, PrunedThrough: pruned, From: fromNow()}, nil
			}
			checkedPruned = true
		}
		rows, err := h.store.ReadFeed(ctx, after, readBatch)
		if err != nil {
			return nil, nil, nil, err
		}
		if len(rows) == 0 {
			after = ringStart // nothing committed between: the ring covers the rest
			continue
		}
		for _, e := range rows {
			if e.Seq > ringStart {
				break
			}
			if e, ok := f.Apply(e); ok {
				backlog = append(backlog, e)
			}
			after = e.Seq
		}
		if len(rows) < readBatch || rows[len(rows)-1].Seq >= ringStart {
			after = max(after, ringStart)
		}
		if len(backlog) > MaxBacklog {
			return sub, nil, &Gap{Reason: fmt.Sprintf("more than %d entries to replay; reload the state (GET /v1/events, and GET /v1/units for unit changes) and follow from here", MaxBacklog),
				LastEventID: after, From: fromNow()}, nil
		}
	}
}

// Unsubscribe ends a subscription (dropped or not).
func (h *Hub) Unsubscribe(sub *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, sub)
	h.active--
	h.m.Subscribers.Dec()
}

// Prune drops feed rows and idempotency keys past their retention, every
// minute until ctx ends (every server does it; the work is shared), and
// every hour makes the partitions of the event tables for the months
// ahead (data.PartitionsAhead; the start made them too, when migrating).
func (h *Hub) Prune(ctx context.Context, feed, keys time.Duration) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	ensured := time.Now()
	for {
		if n, k, err := h.store.PruneEvents(ctx, feed, keys); err != nil && ctx.Err() == nil {
			h.log.Error("event feed: prune", "err", err)
		} else if n+k > 0 {
			h.log.Debug("event feed: pruned", "entries", n, "keys", k)
		}
		if time.Since(ensured) >= time.Hour {
			ensured = time.Now()
			if n, err := h.store.EnsurePartitions(ctx, data.PartitionsAhead); err != nil && ctx.Err() == nil {
				h.log.Error("event tables: partitions ahead", "err", err)
			} else if n > 0 {
				h.log.Info("event tables: partitions made", "months", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Filter is what a subscriber asked for; empty members match all.
type Filter struct {
	BBox     *[4]float64 // minLon, minLat, maxLon, maxLat
	Unit     string      // a unit code: entries of grids under it
	Statuses map[grid.EventStatus]bool
	Classes  map[string]bool
	// Scopes, when not nil, are the subtrees a scoped reader may see
	// (auth.Identity.ReadScopes): entries of grids elsewhere never reach it.
	Scopes []string
}

// Match: a transition matches a status filter when the event enters or
// leaves the statuses named, so a client keeping a set of, say, open
// events sees them go. A unit change (kind "unit") matches a filter that
// names no status and no class (those are about events); a bbox when its
// changed area intersects it; a unit when it touches a base-layer unit in
// its subtree; scopes when it touches a unit in one of them (or is of
// another layer: those are read whole).
func (f Filter) Match(e data.FeedEntry) bool {
	if e.Kind == data.UnitChangeKind {
		return f.matchUnitChange(e)
	}
	if f.BBox != nil && (e.Lon < f.BBox[0] || e.Lon > f.BBox[2] || e.Lat < f.BBox[1] || e.Lat > f.BBox[3]) {
		return false
	}
	if f.Unit != "" && !strings.HasPrefix(e.GridCode, f.Unit) {
		return false
	}
	if f.Scopes != nil && !slices.ContainsFunc(f.Scopes, func(s string) bool { return strings.HasPrefix(e.GridCode, s) }) {
		return false
	}
	if f.Statuses != nil && !f.Statuses[grid.EventStatus(e.Status)] && !f.Statuses[grid.EventStatus(e.From)] {
		return false
	}
	if f.Classes != nil && !f.Classes[e.Class] {
		return false
	}
	return true
}

func (f Filter) matchUnitChange(e data.FeedEntry) bool {
	if f.Statuses != nil || f.Classes != nil {
		return false
	}
	if f.BBox != nil && (e.BBox == nil || e.BBox[0] > f.BBox[2] || e.BBox[2] < f.BBox[0] || e.BBox[1] > f.BBox[3] || e.BBox[3] < f.BBox[1]) {
		return false
	}
	if f.Unit != "" && (e.Layer != grid.BaseLayer || !slices.ContainsFunc(e.Codes, func(c string) bool { return strings.HasPrefix(c, f.Unit) })) {
		return false
	}
	if f.Scopes != nil && e.Layer == grid.BaseLayer && !slices.ContainsFunc(e.Codes, func(c string) bool { return data.InScopes(c, f.Scopes) }) {
		return false
	}
	return true
}

// Apply is Match, and the entry as the subscriber sees it: a scoped
// subscriber's unit changes list only the codes in its scopes.
func (f Filter) Apply(e data.FeedEntry) (data.FeedEntry, bool) {
	if !f.Match(e) {
		return e, false
	}
	if f.Scopes != nil {
		return data.ScopeUnitEntry(e, f.Scopes)
	}
	return e, true
}
