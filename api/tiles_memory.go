package api

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
	"gridmap/tiles"
)

// Unit tiles from memory beyond the current WGS-84 ones (docs/design-notes.md,
// "Unit tiles from memory"): GCJ-02 tiles from a converted copy of the
// current units that follows them as the WGS-84 copy does, and tiles as of
// a settled instant from a copy of the units valid then.

// lazyMem is the GCJ-02 copy of one locator state's units: built from the
// state's WGS-84 copy on the first GCJ-02 unit tile (a server whose walls
// never ask for one never holds it), then derived by Apply on every
// refresh, as the WGS-84 copy is.
type lazyMem struct {
	once sync.Once
	done atomic.Bool
	from *tiles.MemUnits
	mem  *tiles.MemUnits
}

// builtMem is a lazyMem already built.
func builtMem(m *tiles.MemUnits) *lazyMem {
	l := &lazyMem{mem: m}
	l.once.Do(func() {})
	l.done.Store(true)
	return l
}

// get builds the copy if it is not yet and returns it; concurrent callers
// wait for the one build.
func (l *lazyMem) get(s *Server) *tiles.MemUnits {
	l.once.Do(func() {
		start := time.Now()
		l.mem = l.from.GCJ02()
		l.done.Store(true)
		s.log.Info("gcj02 unit tiles copy built", "units", l.mem.Len(), "seconds", time.Since(start).Seconds())
	})
	return l.mem
}

// built is the copy when it has been built, else nil (a refresh then
// leaves the next state's copy to be built when asked for, rather than
// wait for a build that may be running).
func (l *lazyMem) built() *tiles.MemUnits {
	if l == nil || !l.done.Load() {
		return nil
	}
	return l.mem
}

// nextGCJ derives the GCJ-02 copy of a refreshed state: Apply on the old
// one's when it was built (and the GCJ-02 tile changes it makes), else a
// copy to be built from the new WGS-84 one when asked for.
func (s *Server) nextGCJ(cur *locatorState, mem *tiles.MemUnits, upsert []grid.Unit, remove []grid.UnitKey) (*lazyMem, []tiles.Change) {
	old := cur.gcj.built()
	if old == nil {
		return &lazyMem{from: mem}, nil
	}
	next := old.Apply(tiles.GCJ02Units(upsert), remove)
	return builtMem(next), unitTileChanges(s.tiles.Catalogue, old, next)
}

// dropGCJUnitTiles drops the cached GCJ-02 unit tiles that changes (in
// GCJ-02 positions) touch. The WGS-84 changes reach these tiles too
// (converted, Cache.Invalidate), but the GCJ-02 copy is weighed in its
// own projection, so its own changes are what bounds its tiles exactly.
func (s *Server) dropGCJUnitTiles(changes []tiles.Change) {
	if s.tileMem == nil || len(changes) == 0 {
		return
	}
	s.tileMem.cache.Invalidate(tiles.CRSLayer("units", geo.GCJ02), changes)
}

// pastMemUnits is how many in-memory copies of past instants' units (per
// coordinate system) a server keeps for tiles: as many as past locators,
// for the same reason (a copy of the full city is tens of MB).
const pastMemUnits = pastLocators

// memHistory holds the in-memory copies of the units valid at settled
// instants, keyed by coordinate system and the base layer's fingerprint
// then: every instant between two edits shares one. The zero value is
// ready.
type memHistory struct {
	mu     sync.Mutex
	lru    list.List // of *pastMem, most recent first
	builds singleflight.Group
	build  sync.Mutex // one copy is loaded from the store at a time
}

type pastMem struct {
	key string
	mem *tiles.MemUnits
}

func (h *memHistory) lookup(key string) *tiles.MemUnits {
	h.mu.Lock()
	defer h.mu.Unlock()
	for el := h.lru.Front(); el != nil; el = el.Next() {
		if p := el.Value.(*pastMem); p.key == key {
			h.lru.MoveToFront(el)
			return p.mem
		}
	}
	return nil
}

func (h *memHistory) keep(key string, m *tiles.MemUnits) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for el := h.lru.Front(); el != nil; el = el.Next() {
		if el.Value.(*pastMem).key == key {
			h.lru.MoveToFront(el)
			return
		}
	}
	h.lru.PushFront(&pastMem{key: key, mem: m})
	for h.lru.Len() > pastMemUnits {
		h.lru.Remove(h.lru.Back())
	}
}

// unitsIn is the renderer's tiles.Renderer.UnitsIn: the copy to draw the
// units tileset in crs as of asOf from. An instant that is not settled
// yet (versions valid then may still be written) is drawn by PostGIS,
// from what is committed at the render.
func (s *Server) unitsIn(ctx context.Context, asOf *time.Time, crs geo.CRS) (*tiles.MemUnits, error) {
	st := s.locator.Load()
	if st == nil || st.mem == nil {
		return nil, nil // not built yet: PostGIS draws
	}
	if asOf == nil {
		if crs == geo.GCJ02 {
			return st.gcj.get(s), nil
		}
		return st.mem, nil
	}
	fp, settled, err := s.unitsAt(ctx, *asOf, grid.BaseLayer)
	if err != nil || !settled {
		return nil, err
	}
	return s.memUnitsAt(ctx, *asOf, fp, crs)
}

// memUnitsAt is the copy of the units valid at the settled instant t (fp
// their fingerprint), in crs: from the LRU, or built once for every
// caller (detached from the first one's context, as past locators are).
// nil: PostGIS draws (the current units asked for while this server's
// copy lags the store).
func (s *Server) memUnitsAt(ctx context.Context, t time.Time, fp data.UnitsAt, crs geo.CRS) (*tiles.MemUnits, error) {
	h := &s.memHistory
	key := string(crs) + "@" + fp.Key()
	if m := h.lookup(key); m != nil {
		return m, nil
	}
	v, err, _ := h.builds.Do(key, func() (any, error) {
		if m := h.lookup(key); m != nil {
			return m, nil
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tileRenderTimeout)
		defer cancel()
		if fp.Current {
			st, current, err := s.currentAt(ctx, t)
			if err != nil {
				return nil, err
			}
			if current && st == nil {
				return (*tiles.MemUnits)(nil), nil
			}
			if st != nil {
				m := st.mem
				if crs == geo.GCJ02 {
					m = st.gcj.get(s)
				}
				h.keep(key, m)
				return m, nil
			}
			// Versions began or ended after t since its fingerprint was
			// read: t is past now, and its copy is built as any past one.
		}
		start := time.Now()
		var m *tiles.MemUnits
		if crs == geo.GCJ02 {
			w, err := s.memUnitsAt(ctx, t, fp, geo.WGS84)
			if err != nil || w == nil {
				return w, err
			}
			m = w.GCJ02()
		} else {
			h.build.Lock()
			defer h.build.Unlock()
			units, _, err := s.store.UnitsValidAt(ctx, t)
			if err != nil {
				return nil, fmt.Errorf("load units as of %s: %w", t.Format(time.RFC3339Nano), err)
			}
			m = tiles.NewMemUnits(units)
		}
		// Keyed by the fingerprint read before: t is settled, so the
		// versions valid then, loaded after, are the same.
		h.keep(key, m)
		s.log.Info("past unit tiles copy built", "as_of", t.Format(time.RFC3339Nano), "crs", string(crs), "units", m.Len(),
			"seconds", time.Since(start).Seconds())
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*tiles.MemUnits), nil
}

// currentAt checks that this server's current copy of the units is the
// set valid at the settled instant t, whose fingerprint said no version
// began or ended after it: a tile drawn from it is cached for good under
// that fingerprint, so a copy that lags the store (a notice not yet
// applied) must not draw it. It reads the row ids of the current versions
// and then the fingerprint again: if t is still current then, those ids
// are the versions valid at t, and the copy is right when it holds exactly
// them. A lagging copy is refreshed once. It returns the state to draw
// from (nil when it does not match), and whether t is still current.
func (s *Server) currentAt(ctx context.Context, t time.Time) (*locatorState, bool, error) {
	for attempt := 0; ; attempt++ {
		ids, _, err := s.store.CurrentUnitVersions(data.OnPrimary(ctx), func(int64) bool { return true })
		if err != nil {
			return nil, false, fmt.Errorf("read current unit versions: %w", err)
		}
		fp, err := s.store.UnitsFingerprintAt(ctx, t, grid.BaseLayer)
		if err != nil {
			return nil, false, err
		}
		if !fp.Current {
			return nil, false, nil
		}
		st := s.locator.Load()
		if st.mem != nil && len(st.ids) == len(ids) && holdsAll(st.ids, ids) {
			return st, true, nil
		}
		if attempt > 0 {
			s.log.Warn("in-memory units lag the store: PostGIS draws the tile as of a current instant", "as_of", t.Format(time.RFC3339Nano))
			return nil, true, nil
		}
		if err := s.RefreshLocator(ctx); err != nil {
			return nil, false, err
		}
	}
}

func holdsAll(have map[int64]grid.UnitKey, ids []int64) bool {
	for _, id := range ids {
		if _, ok := have[id]; !ok {
			return false
		}
	}
	return true
}
