// Package tiles renders Mapbox Vector Tiles (MVT 2.1) of the unit
// hierarchy, the managed objects and the events from PostGIS (ST_AsMVT)
// through a catalogue of tilesets (layers.go, render.go); keeps rendered
// tiles in a bytes-bounded cache that the tile_changes table invalidates
// exactly, across processes (cache.go, changes.go); and describes them as
// TileJSON 3.0.0 and the wall's MapLibre style with its glyphs. HTTP is
// api's; PMTiles archives are tiles/pmtiles'.
package tiles

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"gridmap/geo"
	"gridmap/grid"
)

// SourceLayer is one layer inside a tile, shown in a zoom range.
type SourceLayer struct {
	ID          string            `json:"id"`
	Description string            `json:"description"`
	MinZoom     int               `json:"minzoom"`
	MaxZoom     int               `json:"maxzoom"`
	Fields      map[string]string `json:"fields"`
	// query is the SQL of the layer by coordinate system (index tileSQL.i):
	// in WGS-84 $1 z, $2 x, $3 y, returning one bytea (ST_AsMVT of the
	// layer); in GCJ-02 rows (tileSQL).
	query [2]string
	// asOfQuery is query as of instant $5 (units only: $4 is the
	// simplification tolerance); empty: the layer has no history.
	asOfQuery [2]string
	// countOf, for a counts source layer, is the query of the counts per
	// unit of a level: drawn below the tileset's singlesFrom at the level
	// of countLevel, and per grid from there where a tile passes the cap.
	countOf func(m tileSQL) func(level string) string
	// timed: the query also takes $4, the render time (timestamptz), and
	// returns a second column, the first moment after it at which what it
	// drew changes by the clock alone (NULL: never).
	timed bool
}

// Tileset is what /tiles/{name}/{z}/{x}/{y}.mvt serves: one or more source
// layers rendered together, with its zoom range and cache policy.
type Tileset struct {
	Name        string
	Description string
	MinZoom     int
	MaxZoom     int
	Sources     []SourceLayer
	// singlesFrom > 0: from this zoom the tileset draws single features
	// (its sources without countOf), unless a tile would hold more than the
	// cap; then its counts source draws per-grid counts instead. inTile
	// counts (up to $4) the features of tile $1/$2/$3. singleKind is the
	// kind of tile_changes rows about single features.
	singlesFrom int
	inTile      [2]string
	singleKind  string
}

// Timed tells whether the tileset's tiles change with the clock (events:
// overdue flags, ages), besides their data.
func (l *Tileset) Timed() bool {
	for _, s := range l.Sources {
		if s.timed {
			return true
		}
	}
	return false
}

// HasHistory tells whether the tileset can be drawn as of a past instant
// (Renderer.RenderTileAt): units can, objects and events cannot.
func (l *Tileset) HasHistory() bool {
	for _, s := range l.Sources {
		if s.asOfQuery[0] == "" {
			return false
		}
	}
	return len(l.Sources) > 0
}

// Visible lists the source layers drawn at zoom z.
func (l *Tileset) Visible(z int) []SourceLayer {
	var out []SourceLayer
	for _, s := range l.Sources {
		if z >= s.MinZoom && z <= s.MaxZoom {
			out = append(out, s)
		}
	}
	return out
}

// MaxZoom of every tileset: z22 is a few metres per pixel, finer than any grid.
const MaxZoom = 22

// Extent and buffer of every tile (MVT defaults).
const (
	Extent = 4096
	Buffer = 64
)

// ObjectCap is the most object (or event) features one tile carries; a tile
// with more carries per-grid counts instead (source layer object_counts or
// event_counts), never a cut list.
const ObjectCap = 20000

// Zooms of the unit levels (DESIGN: districts at low zoom, grids at high).
type Zooms struct {
	District, Street, Community, Grid [2]int
}

// DefaultZooms: districts z0–10, streets z9–12, communities z11–14, grids z13 and up.
var DefaultZooms = Zooms{District: [2]int{0, 10}, Street: [2]int{9, 12}, Community: [2]int{11, 14}, Grid: [2]int{13, MaxZoom}}

// ObjectsMinZoom is where single objects replace counts.
const ObjectsMinZoom = 14

// EventsMinZoom is where single events replace counts.
const EventsMinZoom = 13

// EventsMaxAge is the longest an events tile is served after it was
// rendered: its age_h fields and overdue counts move with the clock. It is
// served for less when an open event in it passes its deadline sooner.
const EventsMaxAge = 60 * time.Second

// eventStatuses are grid's event states by name, in workflow order; each is
// a Number field of the event_counts source layer.
var eventStatuses = statusNames(func(grid.EventStatus) bool { return true })

// openStatuses is the SQL list of the states whose deadline clock runs. It
// must read exactly as the predicate of the partial index
// events_open_deadline (migration 005), or the planner cannot use the
// index; a test holds it to the migration's text.
var openStatuses = "('" + strings.Join(statusNames(grid.EventStatus.Open), "', '") + "')"

// statusNames are the names of grid's event states that keep, in workflow
// order.
func statusNames(keep func(grid.EventStatus) bool) []string {
	var out []string
	for _, st := range grid.EventStatuses {
		if keep(st) {
			out = append(out, string(st))
		}
	}
	return out
}

// ParseZooms reads "district=0-10,street=9-12,community=11-14,grid=13-22";
// levels left out keep their default range.
func ParseZooms(s string) (Zooms, error) {
	z := DefaultZooms
	if strings.TrimSpace(s) == "" {
		return z, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, rng, ok := strings.Cut(strings.TrimSpace(part), "=")
		lo, hi, ok2 := strings.Cut(rng, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if !ok || !ok2 || err1 != nil || err2 != nil {
			return z, fmt.Errorf("tile zooms %q: want level=min-max, e.g. street=9-12", geo.Excerpt(part, geo.MaxExcerpt))
		}
		switch name {
		case "district":
			z.District = [2]int{a, b}
		case "street":
			z.Street = [2]int{a, b}
		case "community":
			z.Community = [2]int{a, b}
		case "grid":
			z.Grid = [2]int{a, b}
		default:
			return z, fmt.Errorf("tile zooms: unknown level %q (district, street, community, grid)", geo.Excerpt(name, geo.MaxExcerpt))
		}
	}
	if _, err := NewCatalogue(z); err != nil {
		return z, err
	}
	return z, nil
}

// Catalogue is the set of tilesets.
type Catalogue struct {
	layers map[string]*Tileset
	// Zooms are the unit levels' ranges the catalogue was built with.
	Zooms Zooms
}

// NewCatalogue builds the units, objects and events tilesets for the given
// zooms.
func NewCatalogue(z Zooms) (*Catalogue, error) {
	for name, r := range map[string][2]int{"district": z.District, "street": z.Street, "community": z.Community, "grid": z.Grid} {
		if r[0] < 0 || r[1] > MaxZoom || r[0] > r[1] {
			return nil, fmt.Errorf("zoom range of %s %v: want 0 ≤ min ≤ max ≤ %d", name, r, MaxZoom)
		}
	}
	unitFields := map[string]string{"code": "String", "name": "String", "level": "String", "parent_code": "String"}
	unit := func(level string, r [2]int, desc string) SourceLayer {
		return SourceLayer{ID: level, Description: desc, MinZoom: r[0], MaxZoom: r[1], Fields: unitFields,
			query:     [2]string{unitQuery(tileSQL{}, level), unitQuery(tileSQL{gcj: true}, level)},
			asOfQuery: [2]string{unitAsOfQuery(tileSQL{}, level), unitAsOfQuery(tileSQL{gcj: true}, level)}}
	}
	units := &Tileset{Name: "units", Description: "The unit hierarchy: districts, streets, communities and grids by zoom",
		MinZoom: 0, MaxZoom: MaxZoom, Sources: []SourceLayer{
			unit("district", z.District, "区 districts"),
			unit("street", z.Street, "街道 streets"),
			unit("community", z.Community, "社区 communities"),
			unit("grid", z.Grid, "网格 grids"),
		}}
	objects := &Tileset{Name: "objects", Description: "Managed objects from z14; per-unit counts below",
		MinZoom: 0, MaxZoom: MaxZoom, singlesFrom: ObjectsMinZoom, inTile: bothSQL(countObjectsInTile), singleKind: "object", Sources: []SourceLayer{
			{ID: "object_counts", Description: fmt.Sprintf("objects per unit below z%d (district, street or community by zoom), and per grid where a tile would hold more than %d objects", ObjectsMinZoom, ObjectCap),
				MinZoom: 0, MaxZoom: MaxZoom, Fields: map[string]string{"code": "String", "name": "String", "level": "String", "count": "Number"}, countOf: countQuery},
			{ID: "objects", Description: "managed objects", MinZoom: ObjectsMinZoom, MaxZoom: MaxZoom,
				Fields: map[string]string{"code": "String", "class": "String", "class_name": "String", "grid_code": "String"}, query: bothSQL(objectQuery)},
		}}
	countFields := map[string]string{"code": "String", "name": "String", "level": "String", "total": "Number", "open": "Number", "overdue": "Number"}
	for _, st := range eventStatuses {
		countFields[st] = "Number"
	}
	events := &Tileset{Name: "events", Description: fmt.Sprintf("Events (事件) from z%d; per-unit counts by status below. Tiles expire with the clock (overdue, age_h): at most %d s after rendering, and when an open event in them passes its deadline", EventsMinZoom, int(EventsMaxAge/time.Second)),
		MinZoom: 0, MaxZoom: MaxZoom, singlesFrom: EventsMinZoom, inTile: bothSQL(countEventsInTile), singleKind: "event", Sources: []SourceLayer{
			{ID: "event_counts", Description: fmt.Sprintf("events per unit below z%d (district, street or community by zoom), and per grid where a tile would hold more than %d events: total, open, overdue (open and past the deadline) and one count per status", EventsMinZoom, ObjectCap),
				MinZoom: 0, MaxZoom: MaxZoom, Fields: countFields, countOf: eventCountQuery, timed: true},
			{ID: "events", Description: "events: overdue = open and past the deadline at render time; age_h = whole hours since reported; reported_at and deadline in Unix seconds",
				MinZoom: EventsMinZoom, MaxZoom: MaxZoom, Fields: map[string]string{"code": "String", "class": "String", "class_name": "String",
					"status": "String", "overdue": "Boolean", "age_h": "Number", "reported_at": "Number", "deadline": "Number", "grid_code": "String"},
				query: bothSQL(eventQuery), timed: true},
		}}
	return &Catalogue{layers: map[string]*Tileset{"units": units, "objects": objects, "events": events}, Zooms: z}, nil
}

// bothSQL is a query in WGS-84 and in GCJ-02, indexed by tileSQL.i.
func bothSQL(q func(tileSQL) string) [2]string {
	return [2]string{q(tileSQL{}), q(tileSQL{gcj: true})}
}

// Tileset returns a tileset by name.
func (c *Catalogue) Tileset(name string) (*Tileset, bool) {
	l, ok := c.layers[name]
	return l, ok
}

// Names lists the tilesets.
func (c *Catalogue) Names() []string {
	var out []string
	for n := range c.layers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ChangeZooms is the zoom range of tileset layer in which a change of the
// given kind (column kind of table tile_changes, migrations 004 and 005) is
// drawn: in units, a unit of that level; in objects and events, "object" or
// "event" (single features, drawn from ObjectsMinZoom or EventsMinZoom), or
// a unit level (that unit's count point: drawn below the singles' zoom where
// counts are per unit of that level, and for "grid" from that zoom, where a
// tile passes the cap). Anything else: every zoom.
func (c *Catalogue) ChangeZooms(layer, kind string) (minZoom, maxZoom int) {
	l, ok := c.layers[layer]
	if !ok || kind == "" {
		return 0, MaxZoom
	}
	if l.singlesFrom == 0 {
		// units: a unit of that level
		for _, s := range l.Sources {
			if s.ID == kind {
				return s.MinZoom, s.MaxZoom
			}
		}
		return 0, MaxZoom
	}
	switch kind {
	case l.singleKind:
		return l.singlesFrom, MaxZoom
	case "grid":
		return l.singlesFrom, MaxZoom // counts per grid where a tile passes the cap
	}
	minZoom, maxZoom = -1, -1
	for z := 0; z < l.singlesFrom; z++ {
		if countLevel(z) == kind {
			if minZoom < 0 {
				minZoom = z
			}
			maxZoom = z
		}
	}
	if minZoom < 0 {
		return 0, MaxZoom
	}
	return minZoom, maxZoom
}

// countLevel is the unit level whose counts represent objects (events) at
// zoom z below ObjectsMinZoom (EventsMinZoom): districts to z8, streets
// z9–11, communities from z12.
func countLevel(z int) string {
	switch {
	case z <= 8:
		return "district"
	case z <= 11:
		return "street"
	default:
		return "community"
	}
}
