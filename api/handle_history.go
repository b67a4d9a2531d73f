package api

import (
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"golang.org/x/sync/singleflight"

	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

// History and "as of" (docs/design-notes.md, History and as_of): the
// versions of a unit, and the unit reads, locate and unit tiles at a past
// instant.

// historyFeature is one version of a unit in GET /v1/units/{code}/history.
type historyFeature struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"` // code@version
	Geometry   json.RawMessage `json:"geometry"`
	Properties historyProps    `json:"properties"`
}

type historyProps struct {
	unitProps
	ValidTo      *string  `json:"valid_to"`
	ChangedBy    string   `json:"changed_by"`
	ChangeReason string   `json:"change_reason"`
	Operation    string   `json:"operation"`
	RelatedCodes []string `json:"related_codes"`
	// Of a closed version (null while it is current).
	ClosedBy       *string  `json:"closed_by"`
	CloseReason    *string  `json:"close_reason"`
	CloseOperation *string  `json:"close_operation"`
	CloseRelated   []string `json:"close_related"`
}

func toHistoryFeature(v data.UnitVersion) historyFeature {
	f := toUnitFeature(v.UnitRow)
	related := v.RelatedCodes
	if related == nil {
		related = []string{}
	}
	closeRelated := v.CloseRelated
	if closeRelated == nil && v.ValidTo != nil {
		closeRelated = []string{}
	}
	return historyFeature{Type: "Feature", ID: fmt.Sprintf("%s@%d", v.Code, v.Version), Geometry: f.Geometry,
		Properties: historyProps{unitProps: f.Properties, ValidTo: v.ValidTo, ChangedBy: v.ChangedBy, ChangeReason: v.ChangeReason,
			Operation: v.Operation, RelatedCodes: related,
			ClosedBy: v.ClosedBy, CloseReason: v.CloseReason, CloseOperation: v.CloseOperation, CloseRelated: closeRelated}}
}

// unitHistory: GET /v1/units/{code}/history?layer=&geometry=&crs= — every
// version of the unit, oldest first, a retired unit's included; 404 for a
// code that never named a unit of the layer.
func (s *Server) unitHistory(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	code := mux.Vars(r)["code"]
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	layer, err := s.layerParam(r)
	if err != nil {
		return err
	}
	mode, err := parseGeometryMode(q.Get("geometry"), data.GeometryFull)
	if err != nil {
		return err
	}
	if layer == grid.BaseLayer {
		if err := needRead(r, code); err != nil {
			return err
		}
	}
	vs, err := s.store.UnitHistory(r.Context(), layer, code, mode)
	if err != nil {
		return notFoundAs(err, "no unit with code %q has ever been in layer %q", code, layer)
	}
	for i := range vs {
		if vs[i].Geometry, err = geometryFromWGS84(crs, vs[i].Geometry); err != nil {
			return err
		}
	}
	setContentCRS(w, crs)
	writePage(w, r, vs, toHistoryFeature, "")
	return nil
}

// asOfParam reads as_of: an RFC 3339 time, or a date (midnight in the
// city's time zone, as the events' from and to); nil when absent. An empty
// or future instant is a 400: the future is not known yet.
func (s *Server) asOfParam(r *http.Request) (*time.Time, error) {
	q := r.URL.Query()
	if !q.Has("as_of") {
		return nil, nil
	}
	v := q.Get("as_of")
	if v == "" {
		return nil, &paramError{"as_of", "as_of is empty: give an RFC 3339 time (2026-11-23T09:00:00+08:00) or a date (2026-11-23), or leave it out for now"}
	}
	var cfg *data.EventConfig
	if _, err := time.Parse(time.RFC3339, v); err != nil {
		// A date: midnight in the calendar's time zone.
		if cfg, err = s.store.EventConfig(r.Context()); err != nil {
			return nil, err
		}
	}
	t, err := timeParam(q, "as_of", cfg)
	if err != nil {
		return nil, err
	}
	if t.After(time.Now()) {
		return nil, &paramError{"as_of", fmt.Sprintf("as_of=%q is in the future: units are known up to now; leave as_of out for the current ones", geo.Excerpt(v, geo.MaxExcerpt))}
	}
	return t, nil
}

// pastLocators is how many locators of past instants a server keeps. A
// locator of the full city holds every unit's geometry and its index:
// tens of MB. The bound is a count, not bytes: four of them at most, on
// top of the current one.
const pastLocators = 4

// settledMemo bounds the memo of settled instants' fingerprints.
const settledMemo = 4096

// history holds what as_of reads reuse: the fingerprints of settled
// instants (which never change) and a few locators of past instants, keyed
// by the fingerprint of the versions valid then, so every instant between
// two edits shares one locator. The zero value is ready.
type history struct {
	mu      sync.Mutex
	settled map[settledKey]settledAt
	lru     list.List // of *pastLocator, most recent first
	builds  singleflight.Group
	build   sync.Mutex // one past locator is built at a time
}

type settledKey struct {
	t     int64 // Unix nanoseconds
	layer string
}

// settledAt is a settled instant's fingerprint and the locator state it
// was read with: its Current (no version after the instant) can turn
// false with the next edit, which changes the state.
type settledAt struct {
	fp data.UnitsAt
	st *locatorState
}

type pastLocator struct {
	key string
	loc *grid.Locator
}

// unitsAt is the fingerprint of the versions of layer ("" for all) valid
// at t, and whether t is settled (they can no longer change). Settled
// instants are remembered: they cost no query the next time, unless they
// were current (no version after them) and the units have changed since:
// then whether they still are is read again.
func (s *Server) unitsAt(ctx context.Context, t time.Time, layer string) (data.UnitsAt, bool, error) {
	k := settledKey{t.UnixNano(), layer}
	h := &s.history
	st := s.locator.Load()
	h.mu.Lock()
	m, ok := h.settled[k]
	h.mu.Unlock()
	if ok && (!m.fp.Current || m.st == st) {
		return m.fp, true, nil
	}
	// Settled first: once it is, the fingerprint read after it is final.
	settled := ok
	if !settled {
		var err error
		if settled, err = s.store.InstantSettled(ctx, t); err != nil {
			return data.UnitsAt{}, false, err
		}
	}
	fp, err := s.store.UnitsFingerprintAt(ctx, t, layer)
	if err != nil {
		return fp, false, err
	}
	if settled {
		h.mu.Lock()
		if h.settled == nil || len(h.settled) >= settledMemo {
			h.settled = map[settledKey]settledAt{}
		}
		h.settled[k] = settledAt{fp, st}
		h.mu.Unlock()
	}
	return fp, settled, nil
}

// locatorAt is the locator of the units valid at asOf (the current one
// when asOf is nil, or when nothing changed since).
func (s *Server) locatorAt(ctx context.Context, asOf *time.Time) (*grid.Locator, error) {
	if asOf == nil {
		return s.Locator(), nil
	}
	fp, _, err := s.unitsAt(ctx, *asOf, "")
	if err != nil {
		return nil, err
	}
	if fp.Current {
		return s.Locator(), nil
	}
	h := &s.history
	if loc := h.lookup(fp.Key()); loc != nil {
		return loc, nil
	}
	v, err, _ := h.builds.Do(fp.Key(), func() (any, error) {
		h.build.Lock()
		defer h.build.Unlock()
		if loc := h.lookup(fp.Key()); loc != nil {
			return loc, nil
		}
		// Detached: the callers waiting on this build are not only the
		// first one.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tileRenderTimeout)
		defer cancel()
		start := time.Now()
		units, got, err := s.store.UnitsValidAt(ctx, *asOf)
		if err != nil {
			return nil, fmt.Errorf("load units as of %s: %w", asOf.Format(time.RFC3339Nano), err)
		}
		loc := grid.NewLocator(units)
		// Kept under the fingerprint of what it was built from (a write
		// that committed meanwhile may have changed it).
		h.keep(got.Key(), loc)
		s.log.Info("past locator built", "as_of", asOf.Format(time.RFC3339Nano), "units", len(units), "seconds", time.Since(start).Seconds())
		return loc, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*grid.Locator), nil
}

func (h *history) lookup(key string) *grid.Locator {
	h.mu.Lock()
	defer h.mu.Unlock()
	for el := h.lru.Front(); el != nil; el = el.Next() {
		if p := el.Value.(*pastLocator); p.key == key {
			h.lru.MoveToFront(el)
			return p.loc
		}
	}
	return nil
}

func (h *history) keep(key string, loc *grid.Locator) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for el := h.lru.Front(); el != nil; el = el.Next() {
		if el.Value.(*pastLocator).key == key {
			h.lru.MoveToFront(el)
			return
		}
	}
	h.lru.PushFront(&pastLocator{key: key, loc: loc})
	for h.lru.Len() > pastLocators {
		h.lru.Remove(h.lru.Back())
	}
}
