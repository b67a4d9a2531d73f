package api

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"gridmap/data"
	"gridmap/live"
)

// Workers' live positions on the event stream (?positions=true): one
// poller per server reads the latest fix of each worker (patrol_last, one
// row a worker, so it sees fixes ingested on any server) every
// PositionInterval while a stream wants them, and sends the workers that
// moved as one "positions" message: the wall gets at most one message per
// interval however many fixes arrive (throttled), and none while nobody
// watches. The messages carry no id: they are not part of the feed a
// stream resumes (a reconnecting wall gets the current positions anew).

// Defaults of positions.
const (
	DefaultPositionInterval = 5 * time.Second
	positionWindow          = 15 * time.Minute // a fix older than this is not a live position
)

type positionHub struct {
	mu   sync.Mutex
	subs map[chan []data.Position]struct{}
	last map[int64]data.Position
}

func (h *positionHub) subscribe() (chan []data.Position, []data.Position) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[chan []data.Position]struct{}{}
	}
	c := make(chan []data.Position, 4)
	h.subs[c] = struct{}{}
	cutoff := time.Now().Add(-positionWindow)
	var now []data.Position
	for _, p := range h.last {
		if p.T.After(cutoff) {
			now = append(now, p)
		}
	}
	return c, now
}

func (h *positionHub) unsubscribe(c chan []data.Position) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, c)
}

func (h *positionHub) watched() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) > 0
}

// publish sends the positions that changed since the last poll; a
// subscriber whose queue is full misses this one (the next move of those
// workers reaches it).
func (h *positionHub) publish(ps []data.Position) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		h.last = map[int64]data.Position{}
	}
	var moved []data.Position
	for _, p := range ps {
		if old, ok := h.last[p.Worker]; !ok || !old.T.Equal(p.T) {
			moved = append(moved, p)
			h.last[p.Worker] = p
		}
	}
	if len(moved) == 0 {
		return
	}
	for c := range h.subs {
		select {
		case c <- moved:
		default:
		}
	}
}

// followPositions polls the latest fixes while streams want them, until
// ctx ends.
func (s *Server) followPositions(ctx context.Context) {
	t := time.NewTicker(s.opts.PositionInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.positions.watched() {
			continue
		}
		ps, err := s.store.LatestPositions(ctx, time.Now().Add(-positionWindow))
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("read live positions", "err", err)
			}
			continue
		}
		s.positions.publish(ps)
	}
}

// appendPositions writes the positions f lets through as one SSE message
// (no id); nothing when none pass.
func appendPositions(buf []byte, ps []data.Position, f live.Filter) []byte {
	kept := make([]data.Position, 0, len(ps))
	for _, p := range ps {
		if f.BBox != nil && (p.Lon < f.BBox[0] || p.Lon > f.BBox[2] || p.Lat < f.BBox[1] || p.Lat > f.BBox[3]) {
			continue
		}
		if f.Unit != "" && !strings.HasPrefix(p.GridCode, f.Unit) {
			continue
		}
		if f.Scopes != nil && !data.InScopes(p.GridCode, f.Scopes) {
			continue
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return buf
	}
	b, _ := json.Marshal(map[string]any{"positions": kept})
	buf = append(buf, "event: positions\ndata: "...)
	buf = append(buf, b...)
	return append(buf, "\n\n"...)
}
