// Package tiles renders Mapbox Vector Tiles (MVT 2.1) of the unit hierarchy
// and the managed objects from PostGIS (ST_AsMVT), describes them as
// TileJSON 3.0.0 and a MapLibre style, and serves them over HTTP.
package tiles

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// SourceLayer is one layer inside a tile, shown in a zoom range.
type SourceLayer struct {
	ID          string            `json:"id"`
	Description string            `json:"description"`
	MinZoom     int               `json:"minzoom"`
	MaxZoom     int               `json:"maxzoom"`
	Fields      map[string]string `json:"fields"`
	query       string            // SQL: $1 z, $2 x, $3 y; returns one bytea (ST_AsMVT of the layer)
}

// Layer is a tileset: /tiles/{name}/{z}/{x}/{y}.mvt.
type Layer struct {
	Name        string
	Description string
	MinZoom     int
	MaxZoom     int
	Sources     []SourceLayer
}

// Visible lists the source layers drawn at zoom z.
func (l *Layer) Visible(z int) []SourceLayer {
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

// ObjectCap is the most object features one tile carries; a tile with more
// carries per-grid counts instead (source layer object_counts), never a cut
// list.
const ObjectCap = 20000

// Zooms of the unit levels (DESIGN: districts at low zoom, grids at high).
type Zooms struct {
	District, Street, Community, Grid [2]int
}

// DefaultZooms: districts z0–10, streets z9–12, communities z11–14, grids z13 and up.
var DefaultZooms = Zooms{District: [2]int{0, 10}, Street: [2]int{9, 12}, Community: [2]int{11, 14}, Grid: [2]int{13, MaxZoom}}

// ObjectsMinZoom is where single objects replace counts.
const ObjectsMinZoom = 14

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
			return z, fmt.Errorf("tile zooms %q: want level=min-max, e.g. street=9-12", part)
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
			return z, fmt.Errorf("tile zooms: unknown level %q (district, street, community, grid)", name)
		}
	}
	if _, err := NewCatalogue(z); err != nil {
		return z, err
	}
	return z, nil
}

// Catalogue is the set of tilesets.
type Catalogue struct {
	layers map[string]*Layer
	// Zooms are the unit levels' ranges the catalogue was built with.
	Zooms Zooms
}

// NewCatalogue builds the units and objects tilesets for the given zooms.
func NewCatalogue(z Zooms) (*Catalogue, error) {
	for name, r := range map[string][2]int{"district": z.District, "street": z.Street, "community": z.Community, "grid": z.Grid} {
		if r[0] < 0 || r[1] > MaxZoom || r[0] > r[1] {
			return nil, fmt.Errorf("zoom range of %s %v: want 0 ≤ min ≤ max ≤ %d", name, r, MaxZoom)
		}
	}
	unitFields := map[string]string{"code": "String", "name": "String", "level": "String", "parent_code": "String"}
	unit := func(level string, r [2]int, desc string) SourceLayer {
		return SourceLayer{ID: level, Description: desc, MinZoom: r[0], MaxZoom: r[1], Fields: unitFields, query: unitQuery(level)}
	}
	units := &Layer{Name: "units", Description: "The unit hierarchy: districts, streets, communities and grids by zoom",
		MinZoom: 0, MaxZoom: MaxZoom, Sources: []SourceLayer{
			unit("district", z.District, "区 districts"),
			unit("street", z.Street, "街道 streets"),
			unit("community", z.Community, "社区 communities"),
			unit("grid", z.Grid, "网格 grids"),
		}}
	objects := &Layer{Name: "objects", Description: "Managed objects from z14; per-unit counts below",
		MinZoom: 0, MaxZoom: MaxZoom, Sources: []SourceLayer{
			{ID: "object_counts", Description: fmt.Sprintf("objects per unit below z%d (district, street or community by zoom), and per grid where a tile would hold more than %d objects", ObjectsMinZoom, ObjectCap),
				MinZoom: 0, MaxZoom: MaxZoom, Fields: map[string]string{"code": "String", "name": "String", "level": "String", "count": "Number"}},
			{ID: "objects", Description: "managed objects", MinZoom: ObjectsMinZoom, MaxZoom: MaxZoom,
				Fields: map[string]string{"code": "String", "class": "String", "class_name": "String", "grid_code": "String"}, query: objectQuery},
		}}
	return &Catalogue{layers: map[string]*Layer{"units": units, "objects": objects}, Zooms: z}, nil
}

// Layer returns a tileset by name.
func (c *Catalogue) Layer(name string) (*Layer, bool) {
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
// given kind (column kind of table tile_changes, migration 004) is drawn:
// in units, a unit of that level; in objects, "object" (single objects) or
// a unit level (that unit's count point). Anything else: every zoom.
func (c *Catalogue) ChangeZooms(layer, kind string) (minZoom, maxZoom int) {
	l, ok := c.layers[layer]
	if !ok {
		return 0, MaxZoom
	}
	source := func(id string) (int, int) {
		for _, s := range l.Sources {
			if s.ID == id {
				return s.MinZoom, s.MaxZoom
			}
		}
		return 0, MaxZoom
	}
	switch {
	case layer == "units" && kind != "":
		return source(kind)
	case layer == "objects" && kind == "object":
		return source("objects")
	case layer == "objects" && kind == "grid":
		return ObjectsMinZoom, MaxZoom // counts per grid where a tile passes the cap
	case layer == "objects" && kind != "":
		minZoom, maxZoom = -1, -1
		for z := 0; z < ObjectsMinZoom; z++ {
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
	return 0, MaxZoom
}

// countLevel is the unit level whose counts represent objects at zoom z
// below ObjectsMinZoom.
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
