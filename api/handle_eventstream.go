package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"gridmap/data"
)

// The live feed. Every creation and transition is a row of event_feed
// whose seq is commit order (data.queueFeed). Each server follows the feed
// with one reader (LISTEN gridmap_events, then "seq > last"), keeps the
// recent entries in a ring, and fans them out to its SSE subscribers. The
// SSE id is the seq: a client that reconnects to any server with
// Last-Event-ID gets every entry after it, from that server's ring or,
// further back, from the table, as long as the entry is within the
// retention window; beyond it the client is told with a "reset" message.

// Defaults of the stream.
const (
	DefaultSSEHeartbeat      = 15 * time.Second
	DefaultEventFeedRetain   = 24 * time.Hour
	DefaultIdempotencyRetain = 24 * time.Hour
	eventRingSize            = 20000
	maxResumeBacklog         = 200000
	subscriberQueue          = 1024 // batches queued per subscriber before it counts as too slow
	sseWriteTimeout          = 30 * time.Second
)

type eventHub struct {
	store *data.Store
	log   *slog.Logger
	m     *metrics
	ring  int // entries kept (up to twice as many between trims)

	mu        sync.Mutex
	entries   []data.FeedEntry // seq order
	ringStart int64            // entries hold every committed entry with seq in (ringStart, last]
	last      int64
	subs      map[*subscriber]struct{}

	wake chan struct{}
}

type subscriber struct {
	filter streamFilter
	floor  int64 // entries at or below were sent from the backlog (or precede the resume point)
	ch     chan []data.FeedEntry
	gone   chan struct{} // closed when dropped for reading too slowly
}

func newEventHub(ctx context.Context, store *data.Store, log *slog.Logger, m *metrics) (*eventHub, error) {
	_, newest, err := store.FeedBounds(ctx)
	if err != nil {
		return nil, fmt.Errorf("event feed: %w", err)
	}
	return &eventHub{store: store, log: log, m: m, ring: eventRingSize, ringStart: newest, last: newest,
		subs: map[*subscriber]struct{}{}, wake: make(chan struct{}, 1)}, nil
}

// follow reads the feed whenever a notice arrives (and on every
// (re)connection of the listener, to catch up) until ctx ends.
func (h *eventHub) follow(ctx context.Context) {
	go func() {
		for ctx.Err() == nil {
			err := h.store.Listen(ctx, data.EventsChannel, h.poke)
			if ctx.Err() != nil {
				return
			}
			h.log.Warn("event feed listener lost; reconnecting", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
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
func (h *eventHub) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// pull reads every committed entry after the last one seen and fans it out.
func (h *eventHub) pull(ctx context.Context) error {
	for {
		h.mu.Lock()
		after := h.last
		h.mu.Unlock()
		batch, err := h.store.ReadFeed(ctx, after, 1000)
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
		if len(batch) < 1000 {
			return nil
		}
	}
}

// lost handles entries pruned before this server read them: the ring
// starts again after them, and every subscriber is disconnected, so that
// it resumes and is told what it missed (a reset) instead of never
// learning of the gap.
func (h *eventHub) lost(pruned int64) {
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
func (h *eventHub) publish(batch []data.FeedEntry) {
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
			if e.Seq > sub.floor && sub.filter.match(e) {
				out = append(out, e)
			}
		}
		if len(out) == 0 {
			continue
		}
		select {
		case sub.ch <- out:
		default:
			// Too slow: drop it rather than hold everyone back; it
			// resumes with Last-Event-ID from the ring or the table.
			delete(h.subs, sub)
			close(sub.gone)
			h.m.sseDropped.Inc()
		}
	}
}

// resumeGap says a subscriber asked to resume from an entry no longer kept.
type resumeGap struct {
	Reason        string `json:"reason"`
	LastEventID   int64  `json:"last_event_id"`
	PrunedThrough int64  `json:"pruned_through,omitempty"`
	// From is where the stream goes on (the reset message's id, so a
	// client that reconnects before the next message does not ask again
	// for what is gone).
	From int64 `json:"from"`
}

// subscribe registers a subscriber. With after ≥ 0 (Last-Event-ID) the
// backlog holds every matching entry after it; gap is set when some of
// those are no longer kept (the stream then starts at the present).
func (h *eventHub) subscribe(ctx context.Context, after int64, f streamFilter) (sub *subscriber, backlog []data.FeedEntry, gap *resumeGap, err error) {
	sub = &subscriber{filter: f, ch: make(chan []data.FeedEntry, subscriberQueue), gone: make(chan struct{})}
	register := func(floor int64) {
		sub.floor = floor
		h.subs[sub] = struct{}{}
		h.m.sseSubscribers.Inc()
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
				if e.Seq > after && f.match(e) {
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
				return sub, nil, &resumeGap{Reason: "the events after this id are older than the feed's retention window; reload the state (GET /v1/events) and follow from here",
					LastEventID: after, PrunedThrough: pruned, From: fromNow()}, nil
			}
			checkedPruned = true
		}
		rows, err := h.store.ReadFeed(ctx, after, 1000)
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
			if f.match(e) {
				backlog = append(backlog, e)
			}
			after = e.Seq
		}
		if len(rows) < 1000 || rows[len(rows)-1].Seq >= ringStart {
			after = max(after, ringStart)
		}
		if len(backlog) > maxResumeBacklog {
			return sub, nil, &resumeGap{Reason: fmt.Sprintf("more than %d events to replay; reload the state (GET /v1/events) and follow from here", maxResumeBacklog),
				LastEventID: after, From: fromNow()}, nil
		}
	}
}

func (h *eventHub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, sub)
	h.m.sseSubscribers.Dec()
}

// prune drops feed rows and idempotency keys past their retention, every
// minute until ctx ends (every server does it; the work is shared).
func (h *eventHub) prune(ctx context.Context, feed, keys time.Duration) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if n, k, err := h.store.PruneEvents(ctx, feed, keys); err != nil && ctx.Err() == nil {
			h.log.Error("event feed: prune", "err", err)
		} else if n+k > 0 {
			h.log.Debug("event feed: pruned", "entries", n, "keys", k)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// streamFilter is what a subscriber asked for; empty members match all.
type streamFilter struct {
	bbox     *[4]float64
	unit     string
	statuses map[string]bool
	classes  map[string]bool
}

// match: a transition matches a status filter when the event enters or
// leaves the statuses named, so a client keeping a set of, say, open
// events sees them go.
func (f streamFilter) match(e data.FeedEntry) bool {
	if f.bbox != nil && (e.Lon < f.bbox[0] || e.Lon > f.bbox[2] || e.Lat < f.bbox[1] || e.Lat > f.bbox[3]) {
		return false
	}
	if f.unit != "" && !strings.HasPrefix(e.GridCode, f.unit) {
		return false
	}
	if f.statuses != nil && !f.statuses[e.Status] && !f.statuses[e.From] {
		return false
	}
	if f.classes != nil && !f.classes[e.Class] {
		return false
	}
	return true
}

// eventStream: GET /v1/events/stream?bbox=|unit=&status=&class= as
// Server-Sent Events: "created" and "transition" messages with the feed
// seq as id, a comment every heartbeat, and resume from Last-Event-ID (or
// ?last_event_id= for clients that cannot set headers).
func (s *Server) eventStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f streamFilter
	var err error
	if q.Get("bbox") != "" && q.Get("unit") != "" {
		badParam(w, r, "bbox", "give bbox or unit, not both")
		return
	}
	if v := q.Get("bbox"); v != "" {
		if f.bbox, err = parseBBox(v); err != nil {
			fail(w, r, err)
			return
		}
	}
	if f.unit, err = s.unitParam(r, q.Get("unit")); err != nil {
		fail(w, r, err)
		return
	}
	sts, err := statusesParam(q)
	if err != nil {
		fail(w, r, err)
		return
	}
	if len(sts) > 0 {
		f.statuses = map[string]bool{}
		for _, st := range sts {
			f.statuses[string(st)] = true
		}
	}
	if cs := listParam(q, "class"); len(cs) > 0 {
		cfg, err := s.store.EventConfig(r.Context())
		if err != nil {
			fail(w, r, err)
			return
		}
		f.classes = map[string]bool{}
		for _, c := range cs {
			if _, ok := cfg.Classes[c]; !ok {
				badParam(w, r, "class", fmt.Sprintf("unknown event class %q (GET /v1/event-classes lists them)", c))
				return
			}
			f.classes[c] = true
		}
	}
	after := int64(-1)
	for _, src := range []struct{ name, v string }{{"Last-Event-ID", r.Header.Get("Last-Event-ID")}, {"last_event_id", q.Get("last_event_id")}} {
		if src.v == "" {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(src.v), 10, 64)
		if err != nil || n < 0 {
			badParam(w, r, src.name, fmt.Sprintf("%s %q: want the id of the last message received (a non-negative integer)", src.name, truncate(src.v, 40)))
			return
		}
		after = n
		break
	}
	sub, backlog, gap, err := s.events.subscribe(r.Context(), after, f)
	if err != nil {
		fail(w, r, err)
		return
	}
	defer s.events.unsubscribe(sub)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	var buf []byte
	buf = append(buf, "retry: 3000\n\n"...)
	if gap != nil {
		g, _ := json.Marshal(gap)
		buf = append(buf, "id: "...)
		buf = strconv.AppendInt(buf, gap.From, 10)
		buf = append(buf, "\nevent: reset\ndata: "...)
		buf = append(buf, g...)
		buf = append(buf, "\n\n"...)
	}
	write := func() bool {
		// A client that stops reading must not pin this handler (and its
		// queue) forever: a write that cannot finish in time ends it.
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := w.Write(buf); err != nil {
			return false
		}
		buf = buf[:0]
		return rc.Flush() == nil
	}
	buf = appendMessages(buf, backlog)
	s.metrics.sseMessages.Add(float64(len(backlog)))
	if !write() {
		return
	}
	beat := time.NewTicker(s.opts.SSEHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.gone:
			return // dropped as too slow: the client reconnects and resumes
		case batch := <-sub.ch:
			buf = appendMessages(buf, batch)
			s.metrics.sseMessages.Add(float64(len(batch)))
			// Take what else is queued: one flush for all of it.
		more:
			for {
				select {
				case b := <-sub.ch:
					buf = appendMessages(buf, b)
					s.metrics.sseMessages.Add(float64(len(b)))
				default:
					break more
				}
			}
			if !write() {
				return
			}
		case t := <-beat.C:
			buf = append(buf, ": heartbeat "...)
			buf = t.UTC().AppendFormat(buf, time.RFC3339)
			buf = append(buf, "\n\n"...)
			if !write() {
				return
			}
		}
	}
}

// appendMessages writes entries as SSE messages: id = seq, event = kind,
// data = the JSON body (one line: jsonb has no raw newlines).
func appendMessages(buf []byte, es []data.FeedEntry) []byte {
	for _, e := range es {
		buf = append(buf, "id: "...)
		buf = strconv.AppendInt(buf, e.Seq, 10)
		buf = append(buf, "\nevent: "...)
		buf = append(buf, e.Kind...)
		buf = append(buf, "\ndata: "...)
		buf = append(buf, e.Body...)
		buf = append(buf, "\n\n"...)
	}
	return buf
}

// FollowEvents keeps the live feed flowing to this server's subscribers,
// and prunes the feed, until ctx ends.
func (s *Server) FollowEvents(ctx context.Context) {
	go s.events.prune(ctx, s.opts.EventFeedRetention, s.opts.IdempotencyRetention)
	s.events.follow(ctx)
}
