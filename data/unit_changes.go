package data

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// The unit change feed: every committed change of units is one entry of
// the live feed (event_feed, kind "unit"), written in the transaction that
// changes the units and numbered under the same commit-order lock as the
// events' entries. One seq orders both: GET /v1/units/changes reads the
// unit entries, the event stream sends them as "unit" messages, and a
// reader resuming after a seq misses neither.

// UnitChange is one committed change of units: what the writing code
// (import, and the edits) tells queueUnitChange.
type UnitChange struct {
	// Operation is "import", or an edit: "reshape", "split", "merge",
	// "create", "retire", "revert".
	Operation string
	Layer     string
	// Codes are the units given a new version; Retired those closed with
	// none.
	Codes   []string
	Retired []string
	// CodeMap maps an old code to the code that replaces it (a merge, a
	// re-coded child).
	CodeMap map[string]string
	// Versions are the versions written, by code.
	Versions map[string]int
	// BBox (minLon, minLat, maxLon, maxLat) bounds the changed area: the
	// old and the new geometries (unitChangeExtent computes it).
	BBox          [4]float64
	Actor, Reason string
}

// MaxChangeCodes is the most codes (and code map pairs) an entry lists;
// beyond it the entry says how many there were (a whole city's import is
// a reason to reload the units, not to follow them one by one).
const MaxChangeCodes = 1000

// UnitChangeBody is what readers receive of a unit change (stored in
// event_feed.body; seq and at are added when written and read).
type UnitChangeBody struct {
	Type      string            `json:"type"` // "unit"
	Seq       int64             `json:"seq,omitempty"`
	At        time.Time         `json:"at"`
	Operation string            `json:"operation"`
	Layer     string            `json:"layer"`
	Codes     []string          `json:"codes"`
	Retired   []string          `json:"retired"`
	CodeMap   map[string]string `json:"code_map"`
	Versions  map[string]int    `json:"versions"`
	BBox      [4]float64        `json:"bbox"`
	Actor     string            `json:"actor"`
	Reason    string            `json:"reason"`
	// Truncated says a list was cut to MaxChangeCodes; the totals count
	// them all.
	Truncated    bool `json:"truncated"`
	CodesTotal   int  `json:"codes_total"`
	RetiredTotal int  `json:"retired_total"`
	CodeMapTotal int  `json:"code_map_total"`
}

// UnitChangeKind is the feed kind (and SSE event name) of unit changes.
const UnitChangeKind = "unit"

// queueUnitChange writes c to the feed inside tx, with the feed lock and
// the notice. Like queueFeed it must be the last work of the transaction:
// the lock is held to commit, which is what makes seq order commit order.
func queueUnitChange(ctx context.Context, tx pgx.Tx, c UnitChange) error {
	if c.Operation == "" || c.Layer == "" {
		return errors.New("unit change: operation and layer are required")
	}
	body, all := unitChangeBody(c)
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	batch := &pgx.Batch{}
	batch.Queue(`SELECT pg_advisory_xact_lock($1)`, int64(feedLock))
	batch.Queue(`INSERT INTO event_feed (seq, kind, layer, codes, bbox, body)
		VALUES (event_feed_seq_base() + nextval('event_feed_seq'), $1, $2, $3, $4, $5::jsonb || jsonb_build_object('at', now()))`,
		UnitChangeKind, c.Layer, all, c.BBox[:], b)
	batch.Queue(`SELECT pg_notify($1, '')`, EventsChannel)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("unit change feed: %w", err)
	}
	return nil
}

// unitChangeBody is what readers receive of c (its lists cut to
// MaxChangeCodes), and every code c touches.
func unitChangeBody(c UnitChange) (body UnitChangeBody, all []string) {
	body = UnitChangeBody{Type: UnitChangeKind, Operation: c.Operation, Layer: c.Layer, BBox: c.BBox, Actor: c.Actor, Reason: c.Reason,
		CodeMap: map[string]string{}, Versions: map[string]int{}}
	codes := uniqueSorted(c.Codes)
	retired := uniqueSorted(c.Retired)
	body.CodesTotal, body.RetiredTotal, body.CodeMapTotal = len(codes), len(retired), len(c.CodeMap)
	body.Codes, body.Retired = codes[:min(len(codes), MaxChangeCodes)], retired[:min(len(retired), MaxChangeCodes)]
	for _, old := range slices.Sorted(maps.Keys(c.CodeMap))[:min(len(c.CodeMap), MaxChangeCodes)] {
		body.CodeMap[old] = c.CodeMap[old]
	}
	for _, code := range body.Codes {
		if v, ok := c.Versions[code]; ok {
			body.Versions[code] = v
		}
	}
	body.Truncated = len(body.Codes) < len(codes) || len(body.Retired) < len(retired) || len(body.CodeMap) < len(c.CodeMap)
	all = append(append(slices.Clone(codes), retired...), slices.Collect(maps.Keys(c.CodeMap))...)
	all = uniqueSorted(append(all, slices.Collect(maps.Values(c.CodeMap))...))
	return body, all
}

// unitChangeExtent is the bounding box of the versions of codes (of
// layer) closed or written in this transaction: the old and the new
// geometries of a change, found by the write's stamp (unitStamp).
func unitChangeExtent(ctx context.Context, tx pgx.Tx, layer string, codes []string) ([4]float64, error) {
	var b [4]float64
	var xmin, ymin, xmax, ymax *float64
	err := tx.QueryRow(ctx, `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
			SELECT ST_Extent(geom) AS e FROM units
			WHERE layer = $1 AND code = ANY($2) AND (valid_to = `+unitStamp+` OR (valid_to IS NULL AND valid_from = `+unitStamp+`))) x`,
		layer, codes).Scan(&xmin, &ymin, &xmax, &ymax)
	if err != nil || xmin == nil {
		return b, err
	}
	return [4]float64{*xmin, *ymin, *xmax, *ymax}, nil
}

// queueImportChanges writes one unit change per layer that the write (an
// import, or an edit: opts.Operation) gave new versions or retired units
// in: the codes from its outcome table, the retired ones and their
// successors (a merged or re-coded unit's code map) from its retire table.
func queueImportChanges(ctx context.Context, tx pgx.Tx, opts UnitImportOptions) error {
	op := opts.Operation
	if op == "" {
		op = "import"
	}
	rows, err := tx.Query(ctx, `
		WITH w AS (SELECT layer, code, coalesce(old_version, 0) + 1 AS version FROM outcome WHERE what <> 'same'),
		     layers AS (SELECT layer FROM w UNION SELECT layer FROM retire)
		SELECT l.layer,
		       coalesce((SELECT array_agg(code ORDER BY code) FROM w WHERE w.layer = l.layer), '{}'),
		       coalesce((SELECT array_agg(version ORDER BY code) FROM w WHERE w.layer = l.layer), '{}'),
		       coalesce((SELECT array_agg(code ORDER BY code) FROM retire r WHERE r.layer = l.layer), '{}'),
		       coalesce((SELECT array_agg(r.related[1] ORDER BY code) FROM retire r WHERE r.layer = l.layer), '{}')
		FROM layers l ORDER BY l.layer`)
	if err != nil {
		return err
	}
	type layerChange struct {
		layer                string
		codes, retired, succ []string
		versions             []int
	}
	var changes []layerChange
	if err := forEach(rows, func() error {
		var c layerChange
		var succ []*string
		if err := rows.Scan(&c.layer, &c.codes, &c.versions, &c.retired, &succ); err != nil {
			return err
		}
		for _, p := range succ {
			c.succ = append(c.succ, deref(p))
		}
		changes = append(changes, c)
		return nil
	}); err != nil {
		return err
	}
	for _, lc := range changes {
		c := UnitChange{Operation: op, Layer: lc.layer, Codes: lc.codes, Retired: lc.retired, Versions: make(map[string]int, len(lc.codes)),
			Actor: opts.Actor, Reason: opts.Reason}
		for i, code := range lc.codes {
			c.Versions[code] = lc.versions[i]
		}
		// A retired unit with one successor (merged into it, or re-coded
		// under a new parent) maps to it.
		for i, old := range lc.retired {
			if lc.succ[i] != "" {
				if c.CodeMap == nil {
					c.CodeMap = map[string]string{}
				}
				c.CodeMap[old] = lc.succ[i]
			}
		}
		if c.BBox, err = unitChangeExtent(ctx, tx, lc.layer, append(append([]string{}, lc.codes...), lc.retired...)); err != nil {
			return fmt.Errorf("unit change extent: %w", err)
		}
		if err := queueUnitChange(ctx, tx, c); err != nil {
			return err
		}
	}
	return nil
}

func uniqueSorted(s []string) []string {
	out := append([]string{}, s...) // never nil: a list in JSON
	slices.Sort(out)
	return slices.Compact(out)
}

// ErrFeedPruned: a reader asked for feed entries after a seq older than
// the feed's retention; the entries it missed are gone.
type ErrFeedPruned struct {
	After, PrunedThrough, Newest int64
}

func (e *ErrFeedPruned) Error() string {
	return fmt.Sprintf("feed entries after %d are pruned through %d", e.After, e.PrunedThrough)
}

// UnitChangeFilter selects unit changes.
type UnitChangeFilter struct {
	After int64
	Limit int
	Layer string // "" for every layer
	// Scopes, when not nil, keep the base-layer changes touching one of
	// these units' subtrees (other layers are read whole).
	Scopes []string
}

// ReadUnitChanges returns up to f.Limit unit changes after f.After, in
// seq order, and next: the seq to read after next time (the last entry's,
// or, on a page that is not full, the newest committed seq, so a poller
// skips the events' entries). An After below the pruned mark is an
// *ErrFeedPruned. Bodies are as stored: a scoped reader's are cut to its
// scopes by ScopeUnitEntry.
func (s *Store) ReadUnitChanges(ctx context.Context, f UnitChangeFilter) (entries []FeedEntry, next int64, err error) {
	// One snapshot: the newest seq read with the page is the point below
	// which every entry was in the page or filtered out.
	tx, err := s.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback(context.Background())
	var pruned, newest int64
	if err := tx.QueryRow(ctx, `SELECT (SELECT through FROM event_feed_pruned),
		greatest((SELECT coalesce(max(seq), 0) FROM event_feed), (SELECT through FROM event_feed_pruned))`).Scan(&pruned, &newest); err != nil {
		return nil, 0, err
	}
	if f.After < pruned {
		return nil, 0, &ErrFeedPruned{After: f.After, PrunedThrough: pruned, Newest: newest}
	}
	q := &sqlQuery{}
	q.where("kind = " + q.arg(UnitChangeKind))
	q.where("seq > " + q.arg(f.After))
	if f.Layer != "" {
		q.where("layer = " + q.arg(f.Layer))
	}
	if f.Scopes != nil {
		q.where("(layer <> " + q.arg(grid.BaseLayer) + " OR EXISTS (SELECT 1 FROM unnest(codes) AS c WHERE " + q.inScopes("c", f.Scopes) + "))")
	}
	rows, err := tx.Query(ctx, `SELECT seq, at, kind, layer, codes, bbox, body || jsonb_build_object('seq', seq)
		FROM event_feed`+q.whereSQL()+` ORDER BY seq LIMIT `+q.arg(f.Limit), q.args...)
	if err != nil {
		return nil, 0, err
	}
	err = forEach(rows, func() error {
		var e FeedEntry
		var bbox []float64
		if err := rows.Scan(&e.Seq, &e.At, &e.Kind, &e.Layer, &e.Codes, &bbox, &e.Body); err != nil {
			return err
		}
		e.BBox = bboxOf(bbox)
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	next = max(f.After, newest)
	if len(entries) == f.Limit {
		next = entries[len(entries)-1].Seq
	}
	return entries, next, nil
}

func bboxOf(b []float64) *[4]float64 {
	if len(b) != 4 {
		return nil
	}
	return (*[4]float64)(b)
}

// InScopes says whether code lies in one of the scopes' subtrees.
func InScopes(code string, scopes []string) bool {
	return slices.ContainsFunc(scopes, func(s string) bool { return strings.HasPrefix(code, s) })
}

// ScopeUnitEntry is a unit entry as a scoped reader sees it: a base-layer
// change touching none of its scopes is left out (false); one touching
// some lists only the codes in them (a code map pair when either side is)
// and counts only those. Other layers are read whole, and other kinds are
// returned as they are.
func ScopeUnitEntry(e FeedEntry, scopes []string) (FeedEntry, bool) {
	if e.Kind != UnitChangeKind || scopes == nil || e.Layer != grid.BaseLayer {
		return e, true
	}
	if !slices.ContainsFunc(e.Codes, func(c string) bool { return InScopes(c, scopes) }) {
		return e, false
	}
	var b UnitChangeBody
	if err := json.Unmarshal(e.Body, &b); err != nil {
		return e, false // never: the body is ours
	}
	in := func(c string) bool { return InScopes(c, scopes) }
	b.Codes = slices.DeleteFunc(b.Codes, func(c string) bool { return !in(c) })
	b.Retired = slices.DeleteFunc(b.Retired, func(c string) bool { return !in(c) })
	maps.DeleteFunc(b.CodeMap, func(from, to string) bool { return !in(from) && !in(to) })
	maps.DeleteFunc(b.Versions, func(c string, _ int) bool { return !in(c) })
	b.CodesTotal, b.RetiredTotal, b.CodeMapTotal = len(b.Codes), len(b.Retired), len(b.CodeMap)
	body, err := json.Marshal(b)
	if err != nil {
		return e, false
	}
	e.Body = body
	return e, true
}
