package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"gridmap/data"
	"gridmap/grid"
)

// The unit change feed over HTTP (docs/api.md, Unit changes): the unit
// entries of the live feed, for a system that stores grid codes and polls
// for renames, merges and new boundaries. The same entries reach the event
// stream as "unit" messages, with the same ids.

const (
	defaultChangesLimit = 100
	maxChangesLimit     = 1000
)

const probFeedPruned = "https://gridmap.dev/problems/feed-pruned" // since older than the retention: 410

// unitChangesPage is the answer of GET /v1/units/changes.
type unitChangesPage struct {
	Changes []json.RawMessage `json:"changes"`
	// Next is the since of the next poll.
	Next int64 `json:"next"`
}

// unitChanges: GET /v1/units/changes?since=&limit=&layer= — the unit
// changes committed after since, oldest first, and next. Without since,
// none, and next is the present: where a new follower starts (after
// reading the units). A since older than the feed's retention is a 410
// naming the seq through which entries are gone and where to start again.
func (s *Server) unitChanges(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := data.UnitChangeFilter{After: -1}
	if v := q.Get("since"); v != "" || q.Has("since") {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return &paramError{"since", fmt.Sprintf("since=%q: want the seq of the last change received (a non-negative integer; 0 for the oldest kept), or leave it out to start from now", v)}
		}
		f.After = n
	}
	var err error
	if f.Limit, err = parseIntParam(q, "limit", defaultChangesLimit, 1, maxChangesLimit); err != nil {
		return err
	}
	if q.Has("layer") {
		if f.Layer, err = s.layerParam(r); err != nil {
			return err
		}
	}
	// Professional layers are read whole (as their units and tiles are); a
	// scope names base units.
	f.Scopes = readScopes(r)
	if f.After < 0 {
		_, newest, err := s.store.FeedBounds(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, ctJSON, unitChangesPage{Changes: []json.RawMessage{}, Next: newest})
		return nil
	}
	entries, next, err := s.store.ReadUnitChanges(r.Context(), f)
	if pruned, ok := errors.AsType[*data.ErrFeedPruned](err); ok {
		return &Problem{Type: probFeedPruned, Title: "Changes no longer kept", Status: http.StatusGone, Param: "since",
			Detail: fmt.Sprintf("the changes after %d are older than the feed's retention (kept: after %d); read the units again (GET /v1/units) and poll with since=%d",
				pruned.After, pruned.PrunedThrough, pruned.Newest),
			Extensions: map[string]any{"pruned_through": pruned.PrunedThrough, "next": pruned.Newest}}
	}
	if err != nil {
		return err
	}
	page := unitChangesPage{Changes: make([]json.RawMessage, 0, len(entries)), Next: next}
	for _, e := range entries {
		if f.Scopes != nil && e.Layer == grid.BaseLayer {
			var ok bool
			if e, ok = data.ScopeUnitEntry(e, f.Scopes); !ok {
				continue
			}
		}
		page.Changes = append(page.Changes, e.Body)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ctJSON, page)
	return nil
}
