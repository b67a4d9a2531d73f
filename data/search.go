package data

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// Search kinds, the values of SearchHit.Type and SearchFilter.Types.
const (
	SearchUnit   = "unit"
	SearchObject = "object"
	SearchEvent  = "event"
)

// Match tiers, SearchHit.Score: the query is the whole field, its start,
// or somewhere inside it.
const (
	TierSubstring = 1
	TierPrefix    = 2
	TierExact     = 3
)

// Limits of a search.
const (
	DefaultSearchLimit = 20
	MaxSearchLimit     = 100
	MaxSearchQuery     = 100 // runes
)

// SearchFilter is a search: Q (trimmed, 1 to MaxSearchQuery runes) over the
// kinds in Types (all when empty).
type SearchFilter struct {
	Q     string
	Types []string
	Limit int
	// Scopes, when not nil, keep the base units, objects and events in one
	// of these units' subtrees (a scoped reader's); units of thematic
	// layers are read whole, as their lists and tiles are.
	Scopes []string
}

// SearchHit is one result.
type SearchHit struct {
	Type  string
	Code  string
	Name  string // a unit's name, an object's name or class name, an event's description (cut)
	Level grid.Level
	Layer string
	Class string // objects and events
	Score int    // TierExact, TierPrefix or TierSubstring
	BBox  *[4]float64
	Point *[2]float64
}

// codeLike is what can be (the start of) a unit, object or event code:
// digits, and the capitals of a unified social credit code.
var codeLike = regexp.MustCompile(`^[0-9A-Za-z]{1,20}$`)

// likeEscape escapes LIKE's wildcards and its escape character.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// eventLabelRunes is how much of an event's description a hit shows.
const eventLabelRunes = 80

// Search finds units by code (exact or prefix) and name (exact, prefix or
// substring, case-insensitive), objects by code, and events by code and
// description, and ranks them: tier first (exact > prefix > substring);
// then units of the base layer, units of other layers, objects, events;
// among units the higher level first (district … grid), then the shorter
// name, then the code; among objects and events the code. Each kind
// contributes at most Limit hits; the merged list is cut to Limit.
func (s *Store) Search(ctx context.Context, f SearchFilter) ([]SearchHit, error) {
	if f.Limit <= 0 {
		f.Limit = DefaultSearchLimit
	}
	want := func(kind string) bool { return len(f.Types) == 0 || slices.Contains(f.Types, kind) }
	var hits []SearchHit
	for _, k := range []struct {
		kind string
		fn   func(context.Context, SearchFilter) ([]SearchHit, error)
	}{{SearchUnit, s.searchUnits}, {SearchObject, s.searchObjects}, {SearchEvent, s.searchEvents}} {
		if !want(k.kind) {
			continue
		}
		h, err := k.fn(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("search %ss: %w", k.kind, err)
		}
		hits = append(hits, h...)
	}
	slices.SortStableFunc(hits, compareHits)
	if len(hits) > f.Limit {
		hits = hits[:f.Limit]
	}
	return hits, nil
}

func kindRank(h SearchHit) int {
	switch {
	case h.Type == SearchUnit && h.Layer == grid.BaseLayer:
		return 0
	case h.Type == SearchUnit:
		return 1
	case h.Type == SearchObject:
		return 2
	}
	return 3
}

var levelRank = map[grid.Level]int{grid.District: 0, grid.Street: 1, grid.Community: 2, grid.Grid: 3}

func compareHits(a, b SearchHit) int {
	if a.Score != b.Score {
		return b.Score - a.Score
	}
	if ka, kb := kindRank(a), kindRank(b); ka != kb {
		return ka - kb
	}
	if a.Type == SearchUnit {
		if a.Layer != b.Layer {
			return strings.Compare(a.Layer, b.Layer)
		}
		if la, lb := levelRank[a.Level], levelRank[b.Level]; la != lb {
			return la - lb
		}
		if na, nb := utf8.RuneCountInString(a.Name), utf8.RuneCountInString(b.Name); na != nb {
			return na - nb
		}
	}
	return strings.Compare(a.Code, b.Code)
}

// codeRange adds the condition that col starts with the code prefix p:
// a range the column's B-tree serves (codes are digits and capitals,
// which sort below 'Z' in every collation), with LIKE keeping it exact.
func codeRange(q *sqlQuery, col, p string) string {
	lo := q.arg(p)
	return fmt.Sprintf("(%[1]s >= %[2]s AND %[1]s <= %[2]s || 'ZZZZZZZZZZZZZZZZZZZZZ' AND %[1]s LIKE %[3]s)", col, lo, q.arg(likeEscape(p)+"%"))
}

// codeQuery is the code a search may be the start of, "" when it cannot
// be one.
func codeQuery(q string) string {
	if !codeLike.MatchString(q) {
		return ""
	}
	return strings.ToUpper(q)
}

// textMatch is how a query is compared with text: "=" and LIKE when it
// has no letter with a case (Chinese, digits), which compare bytes;
// lower() and ILIKE otherwise, which lower every row's text first and
// cost several times more per row. short is a query of one or two
// characters, which has no trigram.
type textMatch struct {
	eq, like string
	short    bool
}

func matchFor(query string) textMatch {
	m := textMatch{eq: "lower(%[1]s) = lower(%[2]s)", like: "%[1]s ILIKE %[2]s", short: utf8.RuneCountInString(query) <= 2}
	if strings.ToLower(query) == strings.ToUpper(query) {
		m.eq, m.like = "%[1]s = %[2]s", "%[1]s LIKE %[2]s"
	}
	return m
}

// inside is the condition that col holds the query (exact, and the
// pattern %query%): the trigram index answers the pattern, or for a short
// query the characters index of migration 009 finds the rows holding each
// of its characters and the pattern rechecks them.
func (m textMatch) inside(col, exact, pattern string) string {
	if m.short {
		return "(regexp_split_to_array(lower(" + col + "), '') @> regexp_split_to_array(lower(" + exact + "), '') AND " + m.likes(col, pattern) + ")"
	}
	return m.likes(col, pattern)
}

func (m textMatch) equal(col, arg string) string { return fmt.Sprintf(m.eq, col, arg) }
func (m textMatch) likes(col, arg string) string { return fmt.Sprintf(m.like, col, arg) }

func (s *Store) searchUnits(ctx context.Context, f SearchFilter) ([]SearchHit, error) {
	q := &sqlQuery{}
	code := codeQuery(f.Q)
	m := matchFor(f.Q)
	exact, prefix, inside := q.arg(f.Q), q.arg(likeEscape(f.Q)+"%"), q.arg("%"+likeEscape(f.Q)+"%")
	match := m.inside("name", exact, inside)
	codeExact := "false"
	codePrefix := "false"
	if code != "" {
		codePrefix = codeRange(q, "code", code)
		codeExact = "code = " + q.arg(code)
		match = "(" + match + " OR " + codePrefix + ")"
	}
	q.where("valid_to IS NULL")
	q.where(match)
	if f.Scopes != nil {
		q.where("(layer <> 'base' OR " + q.inScopes("code", f.Scopes) + ")")
	}
	sql := `SELECT layer, code, name, level, tier, ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (
		SELECT layer, code, name, level, Box2D(geom) b,
		       CASE WHEN ` + codeExact + ` OR ` + m.equal("name", exact) + ` THEN 3
		            WHEN ` + codePrefix + ` OR ` + m.likes("name", prefix) + ` THEN 2 ELSE 1 END AS tier
		FROM units` + q.whereSQL() + `) u
		ORDER BY tier DESC, layer <> 'base', layer,
		         CASE level WHEN 'district' THEN 0 WHEN 'street' THEN 1 WHEN 'community' THEN 2 ELSE 3 END,
		         char_length(name), code
		LIMIT ` + q.arg(f.Limit)
	rows, err := s.Reader(ctx).Query(ctx, sql, searchArgs(q)...)
	if err != nil {
		return nil, err
	}
	var out []SearchHit
	err = forEach(rows, func() error {
		h := SearchHit{Type: SearchUnit, BBox: new([4]float64)}
		var level string
		if err := rows.Scan(&h.Layer, &h.Code, &h.Name, &level, &h.Score, &h.BBox[0], &h.BBox[1], &h.BBox[2], &h.BBox[3]); err != nil {
			return err
		}
		h.Level = grid.Level(level)
		out = append(out, h)
		return nil
	})
	return out, err
}

func (s *Store) searchObjects(ctx context.Context, f SearchFilter) ([]SearchHit, error) {
	code := codeQuery(f.Q)
	if code == "" {
		return nil, nil
	}
	q := &sqlQuery{}
	q.where(codeRange(q, "code", code))
	q.whereInScopes("grid_code", f.Scopes)
	// In code order the exact code, when it exists, comes first.
	sql := `SELECT o.code, o.class_code, COALESCE(o.attrs->>'name', c.name, ''), o.code = ` + q.arg(code) + `,
		       GeometryType(o.geom) = 'POINT', ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)
		FROM (SELECT code, class_code, attrs, geom, Box2D(geom) b FROM objects` + q.whereSQL() + `
		      ORDER BY code LIMIT ` + q.arg(f.Limit) + `) o
		LEFT JOIN object_classes c ON c.code = o.class_code ORDER BY o.code`
	rows, err := s.Reader(ctx).Query(ctx, sql, searchArgs(q)...)
	if err != nil {
		return nil, err
	}
	var out []SearchHit
	err = forEach(rows, func() error {
		h := SearchHit{Type: SearchObject, Score: TierPrefix}
		var exact, point bool
		var b [4]float64
		if err := rows.Scan(&h.Code, &h.Class, &h.Name, &exact, &point, &b[0], &b[1], &b[2], &b[3]); err != nil {
			return err
		}
		if exact {
			h.Score = TierExact
		}
		if point {
			h.Point = &[2]float64{b[0], b[1]}
		} else {
			h.BBox = &b
		}
		out = append(out, h)
		return nil
	})
	return out, err
}

func (s *Store) searchEvents(ctx context.Context, f SearchFilter) ([]SearchHit, error) {
	q := &sqlQuery{}
	scope := ""
	if f.Scopes != nil {
		scope = " AND " + q.inScopes("grid_code", f.Scopes)
	}
	limit := q.arg(f.Limit)
	m := matchFor(f.Q)
	exact, prefix, inside := q.arg(f.Q), q.arg(likeEscape(f.Q)+"%"), q.arg("%"+likeEscape(f.Q)+"%")
	parts := []string{`(SELECT code, class_code, description, geom,
		       CASE WHEN ` + m.equal("description", exact) + ` THEN 3 WHEN ` + m.likes("description", prefix) + ` THEN 2 ELSE 1 END AS tier
		FROM events WHERE ` + m.inside("description", exact, inside) + scope + ` ORDER BY tier DESC, code LIMIT ` + limit + `)`}
	if code := codeQuery(f.Q); code != "" {
		parts = append(parts, `(SELECT code, class_code, description, geom, CASE WHEN code = `+q.arg(code)+` THEN 3 ELSE 2 END
		FROM events WHERE `+codeRange(q, "code", code)+scope+` ORDER BY code LIMIT `+limit+`)`)
	}
	// An event found by its code and by its description counts once, at
	// its better tier.
	sql := `SELECT DISTINCT ON (code) code, class_code, description, tier, ST_X(geom), ST_Y(geom)
		FROM (` + strings.Join(parts, " UNION ALL ") + `) e ORDER BY code, tier DESC`
	rows, err := s.Reader(ctx).Query(ctx, sql, searchArgs(q)...)
	if err != nil {
		return nil, err
	}
	var out []SearchHit
	err = forEach(rows, func() error {
		h := SearchHit{Type: SearchEvent, Point: new([2]float64)}
		if err := rows.Scan(&h.Code, &h.Class, &h.Name, &h.Score, &h.Point[0], &h.Point[1]); err != nil {
			return err
		}
		h.Name = cutRunes(h.Name, eventLabelRunes)
		out = append(out, h)
		return nil
	})
	return out, err
}

// searchArgs are a search query's arguments, run as an unnamed statement:
// PostgreSQL then plans it for these values. A cached prepared statement
// switches to a generic plan after five runs, and without the pattern the
// planner cannot tell '%梅沙%' (130 rows, the index) from '%沙%' or a code
// prefix: BenchmarkSearch measured 37–76 ms for one- and two-character
// queries that take under a millisecond planned for their values.
func searchArgs(q *sqlQuery) []any {
	return append([]any{pgx.QueryExecModeExec}, q.args...)
}

// cutRunes cuts s to n runes, marking the cut with an ellipsis.
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
