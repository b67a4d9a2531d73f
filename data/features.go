package data

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/paulmach/orb"

	"gridmap/cql2"
	"gridmap/geo"
	"gridmap/grid"
)

// The feature collections of OGC API – Features and of the exports: one
// per level of each unit layer that has units (base: districts, streets,
// communities, grids; another layer L: L-districts, …), the managed
// objects and the events. Each reads as a table (geo.Schema, geo.Row)
// streamed in the order of its keyset, so that paging by cursor is stable
// under concurrent inserts and an export of 1.6 M objects holds one row at
// a time.

// Kinds of collection.
const (
	KindUnits   = "units"
	KindObjects = "objects"
	KindEvents  = "events"
)

// Queryable is a property a query may filter on: its name, type and the
// SQL expression that reads it in the collection's query. Geometry is the
// feature's geometry ("geometry", for spatial filters).
type Queryable struct {
	Name     string
	Type     geo.FieldType
	Geometry bool
	Column   string
}

// Collection is one feature collection.
type Collection struct {
	ID, Title, Description string
	Kind                   string
	Layer                  string     // units: the layer
	Level                  grid.Level // units: the level
	Schema                 geo.Schema
	// BBox is the extent of the current features (WGS-84), nil when it was
	// not computed or there are none; Temporal the interval their datetime
	// property spans, an end nil when it is open or unknown.
	BBox     *[4]float64
	Temporal [2]*time.Time
	// TemporalProperty is the property datetime selects on ("" for units:
	// their versions' validity, [valid_from, valid_to)).
	TemporalProperty string
	Queryables       []Queryable
}

// Queryable returns the named queryable.
func (c *Collection) Queryable(name string) (Queryable, bool) {
	for _, q := range c.Queryables {
		if q.Name == name {
			return q, true
		}
	}
	return Queryable{}, false
}

// QueryableColumns maps each queryable to its SQL expression (what a CQL2
// filter is translated with).
func (c *Collection) QueryableColumns() map[string]string {
	m := make(map[string]string, len(c.Queryables))
	for _, q := range c.Queryables {
		m[q.Name] = q.Column
	}
	return m
}

// collectionDef is what a kind's queries are made of: the queryables (in
// schema order, the geometry last), the select list with the id first,
// and the keyset.
type collectionDef struct {
	kind       string
	geomType   string
	from       string
	id         string // SQL of the feature id (and first key column)
	queryables []Queryable
	extra      []Queryable // properties shown but not queryable (computed per row)
	temporal   string      // SQL column datetime selects on (objects, events)
}

var unitDef = collectionDef{
	kind: KindUnits, geomType: "MultiPolygon", from: " FROM units u", id: "u.code",
	queryables: []Queryable{
		{Name: "code", Type: geo.String, Column: "u.code"},
		{Name: "name", Type: geo.String, Column: "u.name"},
		{Name: "level", Type: geo.String, Column: "u.level"},
		{Name: "parent_code", Type: geo.String, Column: "u.parent_code"},
		{Name: "layer", Type: geo.String, Column: "u.layer"},
		{Name: "area_m2", Type: geo.Real, Column: "u.area_m2"},
		{Name: "complete", Type: geo.Boolean, Column: "u.complete"},
		{Name: "version", Type: geo.Integer, Column: "u.version"},
		{Name: "valid_from", Type: geo.Time, Column: "u.valid_from"},
		{Name: "valid_to", Type: geo.Time, Column: "u.valid_to"},
		{Name: "geometry", Geometry: true, Column: "u.geom"},
	},
}

var objectDef = collectionDef{
	kind: KindObjects, geomType: "Geometry", from: " FROM objects o", id: "o.code", temporal: "o.updated_at",
	queryables: []Queryable{
		{Name: "code", Type: geo.String, Column: "o.code"},
		{Name: "class", Type: geo.String, Column: "o.class_code"},
		{Name: "grid_code", Type: geo.String, Column: "o.grid_code"},
		{Name: "community_code", Type: geo.String, Column: "o.community_code"},
		{Name: "street_code", Type: geo.String, Column: "o.street_code"},
		{Name: "district_code", Type: geo.String, Column: "o.district_code"},
		{Name: "created_at", Type: geo.Time, Column: "o.created_at"},
		{Name: "updated_at", Type: geo.Time, Column: "o.updated_at"},
		{Name: "updated_by", Type: geo.String, Column: "o.updated_by"},
		{Name: "geometry", Geometry: true, Column: "o.geom"},
	},
	extra: []Queryable{
		{Name: "class_name", Type: geo.String, Column: "(SELECT c.name FROM object_classes c WHERE c.code = o.class_code)"},
		{Name: "attrs", Type: geo.JSON, Column: "o.attrs"},
	},
}

var eventDef = collectionDef{
	kind: KindEvents, geomType: "Point", id: "e.code", temporal: "e.reported_at",
	from: " FROM events e JOIN event_classes c ON c.code = e.class_code JOIN departments d ON d.code = e.department_code",
	queryables: []Queryable{
		{Name: "code", Type: geo.String, Column: "e.code"},
		{Name: "class", Type: geo.String, Column: "e.class_code"},
		{Name: "status", Type: geo.String, Column: "e.status"},
		{Name: "grid_code", Type: geo.String, Column: "e.grid_code"},
		{Name: "department", Type: geo.String, Column: "e.department_code"},
		{Name: "source", Type: geo.String, Column: "e.source"},
		{Name: "description", Type: geo.String, Column: "e.description"},
		{Name: "occurred_at", Type: geo.Time, Column: "e.occurred_at"},
		{Name: "reported_at", Type: geo.Time, Column: "e.reported_at"},
		{Name: "deadline", Type: geo.Time, Column: "e.deadline"},
		{Name: "handled_at", Type: geo.Time, Column: "e.handled_at"},
		{Name: "closed_at", Type: geo.Time, Column: "e.closed_at"},
		{Name: "updated_at", Type: geo.Time, Column: "e.updated_at"},
		{Name: "version", Type: geo.Integer, Column: "e.version"},
		{Name: "geometry", Geometry: true, Column: "e.geom"},
	},
	extra: []Queryable{
		{Name: "class_name", Type: geo.String, Column: "c.name"},
		{Name: "department_name", Type: geo.String, Column: "d.name"},
	},
}

// fields are the non-geometry properties in schema order.
func (d *collectionDef) fields() []Queryable {
	var out []Queryable
	for _, q := range d.queryables {
		if !q.Geometry {
			out = append(out, q)
		}
	}
	return append(out, d.extra...)
}

func (d *collectionDef) geomColumn() string {
	for _, q := range d.queryables {
		if q.Geometry {
			return q.Column
		}
	}
	panic("data: collection without geometry")
}

func (d *collectionDef) schema(id string) geo.Schema {
	s := geo.Schema{Name: id, GeometryType: d.geomType}
	for _, f := range d.fields() {
		s.Fields = append(s.Fields, geo.Field{Name: f.Name, Type: f.Type})
	}
	return s
}

func (d *collectionDef) collection(id, title, desc string) Collection {
	return Collection{ID: id, Title: title, Description: desc, Kind: d.kind, Schema: d.schema(id),
		Queryables: slices.Clone(d.queryables), TemporalProperty: strings.TrimPrefix(strings.TrimPrefix(d.temporal, "o."), "e.")}
}

func defOf(kind string) *collectionDef {
	switch kind {
	case KindObjects:
		return &objectDef
	case KindEvents:
		return &eventDef
	}
	return &unitDef
}

// levelPlural is the collection name of a level.
func levelPlural(l grid.Level) string {
	if l == grid.Community {
		return "communities"
	}
	return string(l) + "s"
}

// UnitCollectionID is the collection of a layer's level: "grids" in the
// base layer, "L-grids" in layer L.
func UnitCollectionID(layer string, l grid.Level) string {
	if layer == grid.BaseLayer {
		return levelPlural(l)
	}
	return layer + "-" + levelPlural(l)
}

// parseUnitCollection is the inverse of UnitCollectionID.
func parseUnitCollection(id string) (layer string, level grid.Level, ok bool) {
	layer, plural := grid.BaseLayer, id
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		layer, plural = id[:i], id[i+1:]
		if layer == grid.BaseLayer || !grid.ValidLayerName(layer) {
			return "", "", false
		}
	}
	for _, l := range grid.Levels {
		if levelPlural(l) == plural {
			return layer, l, true
		}
	}
	return "", "", false
}

func unitCollection(layer, layerTitle string, l grid.Level) Collection {
	title := l.Chinese() + " " + levelPlural(l)
	desc := fmt.Sprintf("The %s of layer %s", levelPlural(l), layer)
	if layerTitle != "" {
		desc += " (" + layerTitle + ")"
	}
	if layer != grid.BaseLayer {
		title = layer + " " + title
	}
	c := unitDef.collection(UnitCollectionID(layer, l), title, desc+"; datetime selects the versions valid then.")
	c.Layer, c.Level = layer, l
	return c
}

func objectCollection() Collection {
	return objectDef.collection("objects", "部件 managed objects", "Managed objects (components, buildings, enterprises) with their grid; datetime selects on updated_at.")
}

func eventCollection() Collection {
	return eventDef.collection("events", "事件 events", "Events of the closed loop; datetime selects on reported_at.")
}

// FeatureCollections lists every collection with its extent: the unit
// levels present (base layer first, levels top down), then objects and
// events.
func (s *Store) FeatureCollections(ctx context.Context) ([]Collection, error) {
	var out []Collection
	err := s.readSnapshot(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT x.layer, coalesce(l.title, ''), x.level, ST_XMin(x.b), ST_YMin(x.b), ST_XMax(x.b), ST_YMax(x.b),
			       (SELECT min(h.valid_from) FROM units h WHERE h.layer = x.layer AND h.level = x.level)
			FROM (SELECT layer, level, ST_Extent(geom) b FROM units WHERE valid_to IS NULL GROUP BY layer, level) x
			LEFT JOIN layers l ON l.name = x.layer`)
		if err != nil {
			return err
		}
		err = forEach(rows, func() error {
			var layer, title, level string
			var b [4]float64
			var from time.Time
			if err := rows.Scan(&layer, &title, &level, &b[0], &b[1], &b[2], &b[3], &from); err != nil {
				return err
			}
			c := unitCollection(layer, title, grid.Level(level))
			c.BBox, c.Temporal[0] = &b, &from
			out = append(out, c)
			return nil
		})
		if err != nil {
			return err
		}
		slices.SortFunc(out, func(a, b Collection) int {
			if (a.Layer == grid.BaseLayer) != (b.Layer == grid.BaseLayer) {
				if a.Layer == grid.BaseLayer {
					return -1
				}
				return 1
			}
			if c := strings.Compare(a.Layer, b.Layer); c != 0 {
				return c
			}
			return a.Level.Depth() - b.Level.Depth()
		})
		obj := objectCollection()
		// An estimate from the planner's statistics: an exact extent reads
		// every one of 1.6 M geometries. Without statistics yet (a new
		// table), the exact one, which is then cheap.
		if obj.BBox, err = extent(ctx, tx, `SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM
			(SELECT coalesce(ST_EstimatedExtent('objects', 'geom'), (SELECT ST_Extent(geom) FROM objects)) b) x`); err != nil {
			return err
		}
		ev := eventCollection()
		if ev.BBox, err = extent(ctx, tx, `SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT ST_Extent(geom) b FROM events) x`); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT min(reported_at), max(reported_at) FROM events`).Scan(&ev.Temporal[0], &ev.Temporal[1]); err != nil {
			return err
		}
		out = append(out, obj, ev)
		return nil
	})
	return out, err
}

// extent reads a box (nil when the table is empty).
func extent(ctx context.Context, tx pgx.Tx, sql string) (*[4]float64, error) {
	var b [4]*float64
	if err := tx.QueryRow(ctx, sql).Scan(&b[0], &b[1], &b[2], &b[3]); err != nil {
		return nil, err
	}
	if b[0] == nil {
		return nil, nil
	}
	return &[4]float64{*b[0], *b[1], *b[2], *b[3]}, nil
}

// FeatureCollection returns one collection without its extent (what a
// query needs); ErrNotFound when id names none: a unit level with no
// current units names none.
func (s *Store) FeatureCollection(ctx context.Context, id string) (*Collection, error) {
	switch id {
	case "objects":
		c := objectCollection()
		return &c, nil
	case "events":
		c := eventCollection()
		return &c, nil
	}
	layer, level, ok := parseUnitCollection(id)
	if !ok {
		return nil, fmt.Errorf("%w: no collection %q", ErrNotFound, geo.Excerpt(id, geo.MaxExcerpt))
	}
	var title *string
	err := s.Reader(ctx).QueryRow(ctx, `SELECT (SELECT title FROM layers WHERE name = $1)
		WHERE EXISTS (SELECT 1 FROM units WHERE valid_to IS NULL AND layer = $1 AND level = $2)`, layer, string(level)).Scan(&title)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: no collection %q (layer %s has no current %s)", ErrNotFound, id, layer, levelPlural(level))
	}
	if err != nil {
		return nil, err
	}
	c := unitCollection(layer, deref(title), level)
	return &c, nil
}

// TimeRange is OGC's datetime: an instant (Start and End the same
// instant) or an interval, closed at both ends, an end nil when open.
type TimeRange struct {
	Start, End *time.Time
}

// Instant says whether the range is one instant.
func (t *TimeRange) Instant() bool {
	return t.Start != nil && t.End != nil && t.Start.Equal(*t.End)
}

// FeatureQuery selects features of one collection. Empty fields do not
// filter.
type FeatureQuery struct {
	Collection string // a collection id (FeatureCollections)
	// BBox keeps the features whose geometry intersects it (WGS-84: min
	// lon, min lat, max lon, max lat).
	BBox *orb.Bound
	// Time: for units, the versions valid at the instant, or at some time
	// in the interval ([valid_from, valid_to) meets it); nil, the current
	// ones. For objects their updated_at, for events their reported_at,
	// in the instant or interval; nil, all.
	Time *TimeRange
	// Props are equality filters on queryables, values as the query
	// string gives them (a *FilterError names a bad one).
	Props map[string]string
	// Filter is a CQL2 filter, checked (cql2.Check) against the
	// collection's queryables, its geometries in WGS-84
	// (cql2.MapGeometries).
	Filter cql2.Expr
	Limit  int    // 0: all
	After  string // FeaturePageInfo.Next or .Prev of another page
	// Scopes, when not nil, keep the features in one of these units'
	// subtrees (auth.Identity.ReadScopes): base units by code, objects and
	// events by grid. Other layers' units are read whole.
	Scopes []string
	// Count asks FeaturePage for NumberMatched.
	Count bool
}

// FeaturePageInfo is what a page says about itself.
type FeaturePageInfo struct {
	Matched int64  // all features the query matches, Limit and After aside (when Count)
	Next    string // the cursor of the next page, "" when this is the last
	Prev    string // the cursor of the page before, "" on the first
}

// featureCursor is a position between two features: the id of the one
// before it (after it when Back) and, for units, its version (an interval
// may hold several of one unit). Back cursors are prev links: the page
// before the feature.
type featureCursor struct {
	Code    string `json:"c"`
	Version int64  `json:"v,omitempty"`
	Back    bool   `json:"b,omitempty"`
}

func (c featureCursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeFeatureCursor(s string) (*featureCursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := filterErr("cursor", "cursor %q is not one this collection issued: follow the next link of the previous page", geo.Excerpt(s, geo.MaxExcerpt))
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	var c featureCursor
	if err := json.Unmarshal(raw, &c); err != nil || c.Code == "" || c.Version < 0 {
		return nil, bad
	}
	return &c, nil
}

// Features streams the features of q in keyset order, one snapshot, fn
// called once per row (the Row is reused after fn returns).
func (s *Store) Features(ctx context.Context, q FeatureQuery, fn func(*geo.Row) error) error {
	_, err := s.FeaturePage(ctx, q, fn)
	return err
}

// FeatureByID reads one feature; ErrNotFound when the collection has
// none with that id in scope (as at q.Time for units: an instant).
func (s *Store) FeatureByID(ctx context.Context, q FeatureQuery, id string, fn func(*geo.Row) error) error {
	q.Props = map[string]string{"code": id}
	q.Limit, q.After, q.Count = 1, "", false
	found := false
	_, err := s.FeaturePage(ctx, q, func(r *geo.Row) error { found = true; return fn(r) })
	if err == nil && !found {
		return fmt.Errorf("%w: no feature %q in collection %s", ErrNotFound, geo.Excerpt(id, geo.MaxExcerpt), q.Collection)
	}
	return err
}

// FeaturePage streams one page of q (all when q.Limit is 0) and says how
// many match and where the next page starts.
func (s *Store) FeaturePage(ctx context.Context, q FeatureQuery, fn func(*geo.Row) error) (FeaturePageInfo, error) {
	return s.featurePage(ctx, q, false, func(r *geo.Row, _ []byte) error { return fn(r) })
}

// FeaturePageGeoJSON is FeaturePage with each geometry as GeoJSON text
// (WGS-84, 9 decimals, from PostGIS) instead of decoded: the Row's
// Geometry is nil and fn gets the text, valid until it returns. For
// answers in WGS-84 it saves decoding and formatting every coordinate
// in Go (docs/benchmarks.md, "OGC items").
func (s *Store) FeaturePageGeoJSON(ctx context.Context, q FeatureQuery, fn func(r *geo.Row, geometry []byte) error) (FeaturePageInfo, error) {
	return s.featurePage(ctx, q, true, fn)
}

func (s *Store) featurePage(ctx context.Context, q FeatureQuery, geoJSON bool, fn func(*geo.Row, []byte) error) (FeaturePageInfo, error) {
	var info FeaturePageInfo
	c, err := s.FeatureCollection(ctx, q.Collection)
	if err != nil {
		return info, err
	}
	d := defOf(c.Kind)
	sq := &sqlQuery{}
	if q.Filter != nil {
		cond, err := FilterSQL(q.Filter, c.QueryableColumns(), &sq.args)
		if err != nil {
			return info, err
		}
		sq.where("(" + cond + ")")
	}
	if err := q.where(sq, c, d); err != nil {
		return info, err
	}
	after, err := decodeFeatureCursor(q.After)
	if err != nil {
		return info, err
	}
	fields := d.fields()
	cols := make([]string, 0, len(fields)+3)
	cols = append(cols, d.id)
	for _, f := range fields {
		cols = append(cols, f.Column)
	}
	if geoJSON {
		cols = append(cols, "ST_AsGeoJSON("+d.geomColumn()+", 9)")
	} else {
		// WKB as bytea comes in binary; the geometry type itself, unknown
		// to pgx, would come as hex text, twice the bytes and a decode
		// more.
		cols = append(cols, "ST_AsBinary("+d.geomColumn()+")")
	}
	back := after != nil && after.Back
	dir := ""
	if back {
		// A prev page reads backwards from its cursor and is turned
		// round here: at most Limit rows are held.
		dir = " DESC"
	}
	order := " ORDER BY " + d.id + dir
	if d.kind == KindUnits {
		cols = append(cols, "u.version")
		// Only a time range can hold two versions of a code; ordering
		// current units by version too costs a sort step per page.
		if q.Time != nil {
			order += ", u.version" + dir
		}
	}
	err = s.readSnapshot(ctx, func(tx pgx.Tx) error {
		if q.Count {
			if err := tx.QueryRow(ctx, `SELECT count(*)`+d.from+sq.whereSQL(), sq.args...).Scan(&info.Matched); err != nil {
				return err
			}
		}
		if after != nil {
			// The first column alone bounds the index scan; the row
			// comparison decides among one unit's versions.
			ge, gt := " >= ", " > "
			if back {
				ge, gt = " <= ", " < "
			}
			if d.kind == KindUnits {
				c, v := sq.arg(after.Code), sq.arg(after.Version)
				sq.where(d.id + ge + c + " AND (" + d.id + gt + c + " OR u.version" + gt + v + ")")
			} else {
				sq.where(d.id + gt + sq.arg(after.Code))
			}
		}
		sql := "SELECT " + strings.Join(cols, ", ") + d.from + sq.whereSQL() + order
		if q.Limit > 0 {
			sql += " LIMIT " + sq.arg(q.Limit+1)
		}
		rows, err := tx.Query(ctx, sql, sq.args...)
		if err != nil {
			return err
		}
		sc := newRowScanner(fields, d.kind == KindUnits)
		type held struct {
			row  geo.Row
			geom []byte
			cur  featureCursor
		}
		var page []held
		n := 0
		var first featureCursor
		err = forEach(rows, func() error {
			if err := rows.Scan(sc.targets...); err != nil {
				return err
			}
			n++
			if q.Limit > 0 && n > q.Limit {
				more := sc.cursor
				if back {
					more.Back = true
					info.Prev = more.encode()
				} else {
					info.Next = more.encode()
				}
				return nil
			}
			if err := sc.fill(!geoJSON); err != nil {
				return err
			}
			sc.cursor = featureCursor{Code: sc.row.ID, Version: sc.version}
			if n == 1 {
				first = sc.cursor
			}
			var g []byte
			if geoJSON {
				g = sc.geom
			}
			if back {
				r := sc.row
				r.Values = slices.Clone(r.Values)
				page = append(page, held{row: r, geom: slices.Clone(g), cur: sc.cursor})
				return nil
			}
			return fn(&sc.row, g)
		})
		if err != nil || n == 0 {
			return err
		}
		if !back {
			if after != nil {
				// Something came before this page (unless it has been
				// deleted since: then the prev page is empty).
				first.Back = true
				info.Prev = first.encode()
			}
			return nil
		}
		// Backwards: the feature of the cursor follows this page.
		info.Next = first.encode()
		for i := len(page) - 1; i >= 0; i-- {
			if err := fn(&page[i].row, page[i].geom); err != nil {
				return err
			}
		}
		return nil
	})
	return info, err
}

// where adds the conditions of q (all but the cursor) to sq.
func (q *FeatureQuery) where(sq *sqlQuery, c *Collection, d *collectionDef) error {
	switch d.kind {
	case KindUnits:
		sq.where("u.layer = " + sq.arg(c.Layer))
		sq.where("u.level = " + sq.arg(string(c.Level)))
		sq.where(unitsValidIn(sq, q.Time))
		if c.Layer == grid.BaseLayer {
			sq.whereInScopes("u.code", q.Scopes)
		}
	case KindObjects:
		sq.whereInScopes("o.grid_code", q.Scopes)
	case KindEvents:
		sq.whereInScopes("e.grid_code", q.Scopes)
	}
	if d.temporal != "" && q.Time != nil {
		if q.Time.Start != nil {
			sq.where(d.temporal + " >= " + sq.arg(*q.Time.Start))
			if d.kind == KindEvents { // the partition key too: months before are pruned
				lo, _ := reportedOnBounds(*q.Time.Start)
				sq.where("e.reported_on >= " + sq.arg(lo))
			}
		}
		if q.Time.End != nil {
			sq.where(d.temporal + " <= " + sq.arg(*q.Time.End))
			if d.kind == KindEvents {
				_, hi := reportedOnBounds(*q.Time.End)
				sq.where("e.reported_on <= " + sq.arg(hi))
			}
		}
	}
	if code, ok := q.Props["code"]; ok && d.kind == KindEvents {
		// One event by id: its code's date names its partition.
		if day, ok := eventDay(code); ok {
			sq.where("e.reported_on = " + sq.arg(day))
		}
	}
	if q.BBox != nil {
		b := q.BBox
		sq.where(sq.intersects(d.geomColumn(), [4]float64{b.Min[0], b.Min[1], b.Max[0], b.Max[1]}))
	}
	names := make([]string, 0, len(q.Props))
	for k := range q.Props {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		qa, ok := c.Queryable(name)
		if !ok || qa.Geometry {
			return filterErr(name, "%q is not a property of collection %s one can compare with =", geo.Excerpt(name, geo.MaxExcerpt), c.ID)
		}
		v, err := propValue(qa, q.Props[name])
		if err != nil {
			return err
		}
		sq.where(qa.Column + " = " + sq.arg(v))
	}
	return nil
}

// unitsValidIn is the condition that a unit version was valid at the
// instant or at some time in the interval: [valid_from, valid_to) meets
// [start, end]. No range: the current versions.
func unitsValidIn(sq *sqlQuery, t *TimeRange) string {
	if t == nil {
		return "u.valid_to IS NULL"
	}
	if t.Instant() {
		v := sq.arg(*t.Start)
		return "u.valid_from <= " + v + " AND (u.valid_to IS NULL OR u.valid_to > " + v + ")"
	}
	conds := []string{"true"}
	if t.End != nil {
		conds = append(conds, "u.valid_from <= "+sq.arg(*t.End))
	}
	if t.Start != nil {
		conds = append(conds, "(u.valid_to IS NULL OR u.valid_to > "+sq.arg(*t.Start)+")")
	}
	return strings.Join(conds, " AND ")
}

// propValue reads a property filter's value as its queryable's type.
func propValue(q Queryable, s string) (any, error) {
	switch q.Type {
	case geo.Integer:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, filterErr(q.Name, "%s=%q is not an integer", q.Name, geo.Excerpt(s, geo.MaxExcerpt))
		}
		return v, nil
	case geo.Real:
		v, ok := geo.ParseNumber(s)
		if !ok {
			return nil, filterErr(q.Name, "%s=%q is not a number", q.Name, geo.Excerpt(s, geo.MaxExcerpt))
		}
		return v, nil
	case geo.Boolean:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return nil, filterErr(q.Name, "%s=%q: use true or false", q.Name, geo.Excerpt(s, geo.MaxExcerpt))
		}
		return v, nil
	case geo.Time:
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || v.Year() < 1 || v.UTC().Year() > 9999 {
			return nil, filterErr(q.Name, "%s=%q is not an RFC 3339 date-time", q.Name, geo.Excerpt(s, geo.MaxExcerpt))
		}
		return v, nil
	}
	return s, nil
}

// rowScanner scans the select list of FeaturePage into a reused Row.
type rowScanner struct {
	fields  []Queryable
	targets []any
	id      string
	vals    []any // pointers the values are scanned into
	geom    []byte
	version int64
	row     geo.Row
	cursor  featureCursor
}

func newRowScanner(fields []Queryable, withVersion bool) *rowScanner {
	sc := &rowScanner{fields: fields, vals: make([]any, len(fields))}
	sc.targets = append(sc.targets, &sc.id)
	for i, f := range fields {
		// pgtype's nullable values scan without a pointer to a pointer
		// per column and row (half the cost of a row, measured).
		switch f.Type {
		case geo.Integer:
			sc.vals[i] = new(pgtype.Int8)
		case geo.Real:
			sc.vals[i] = new(pgtype.Float8)
		case geo.Boolean:
			sc.vals[i] = new(pgtype.Bool)
		case geo.Time:
			sc.vals[i] = new(pgtype.Timestamptz)
		case geo.JSON:
			sc.vals[i] = new([]byte)
		default:
			sc.vals[i] = new(pgtype.Text)
		}
		sc.targets = append(sc.targets, sc.vals[i])
	}
	sc.targets = append(sc.targets, &sc.geom)
	if withVersion {
		sc.targets = append(sc.targets, &sc.version)
	}
	sc.row.Values = make([]any, len(fields))
	return sc
}

// fill turns the scanned values into the Row's, decoding the geometry
// when decode.
func (sc *rowScanner) fill(decode bool) error {
	sc.row.ID = sc.id
	for i, p := range sc.vals {
		var v any
		switch p := p.(type) {
		case *pgtype.Text:
			if p.Valid {
				v = p.String
			}
		case *pgtype.Int8:
			if p.Valid {
				v = p.Int64
			}
		case *pgtype.Float8:
			if p.Valid {
				v = p.Float64
			}
		case *pgtype.Bool:
			if p.Valid {
				v = p.Bool
			}
		case *pgtype.Timestamptz:
			if p.Valid {
				v = p.Time.UTC()
			}
		case *[]byte:
			if *p != nil {
				v = json.RawMessage(slices.Clone(*p))
			}
		}
		sc.row.Values[i] = v
	}
	sc.row.Geometry = nil
	if decode && sc.geom != nil {
		g, err := geo.FromEWKB(sc.geom)
		if err != nil {
			return fmt.Errorf("feature %s: %w", sc.id, err)
		}
		sc.row.Geometry = g
	}
	return nil
}
