package tiles

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// VectorLayer describes one source layer in TileJSON.
type VectorLayer struct {
	ID          string            `json:"id"`
	Description string            `json:"description"`
	MinZoom     int               `json:"minzoom"`
	MaxZoom     int               `json:"maxzoom"`
	Fields      map[string]string `json:"fields"`
}

// TileJSON is the TileJSON 3.0.0 document of a tileset.
type TileJSON struct {
	TileJSON     string        `json:"tilejson"`
	Name         string        `json:"name"`
	Description  string        `json:"description"`
	Version      string        `json:"version"`
	Scheme       string        `json:"scheme"`
	Tiles        []string      `json:"tiles"`
	MinZoom      int           `json:"minzoom"`
	MaxZoom      int           `json:"maxzoom"`
	Bounds       [4]float64    `json:"bounds"`
	Center       [3]float64    `json:"center"`
	VectorLayers []VectorLayer `json:"vector_layers"`
}

// Describe builds the TileJSON of a tileset whose tiles live under base
// (e.g. "https://host/tiles/units"); bounds and centre come from the
// districts in the store.
func Describe(ctx context.Context, pool *pgxpool.Pool, l *Tileset, base string) (*TileJSON, error) {
	tj := &TileJSON{TileJSON: "3.0.0", Name: l.Name, Description: l.Description, Version: "1.0.0", Scheme: "xyz",
		Tiles: []string{base + "/{z}/{x}/{y}.mvt"}, MinZoom: l.MinZoom, MaxZoom: l.MaxZoom,
		Bounds: [4]float64{-180, -85.05112878, 180, 85.05112878}, Center: [3]float64{0, 0, 2}}
	var minX, minY, maxX, maxY *float64
	err := pool.QueryRow(ctx, `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
		FROM (SELECT ST_Extent(geom) AS e FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'district') x`).Scan(&minX, &minY, &maxX, &maxY)
	if err != nil {
		return nil, fmt.Errorf("tileset bounds: %w", err)
	}
	if minX != nil {
		tj.Bounds = [4]float64{*minX, *minY, *maxX, *maxY}
		tj.Center = [3]float64{(*minX + *maxX) / 2, (*minY + *maxY) / 2, 9}
	}
	for _, s := range l.Sources {
		tj.VectorLayers = append(tj.VectorLayers, VectorLayer{ID: s.ID, Description: s.Description, MinZoom: s.MinZoom, MaxZoom: s.MaxZoom, Fields: s.Fields})
	}
	return tj, nil
}
