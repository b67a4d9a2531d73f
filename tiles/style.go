package tiles

// WallStyle is a MapLibre style for a command-centre wall: dark, high
// contrast, large labels, on the units and objects tilesets of base (the
// server's scheme://host). Sizes are for a 3840×2160 wall seen from metres
// away; the page scales them with the viewport.
func WallStyle(base string, z Zooms) map[string]any {
	levelColor := map[string]string{"district": "#4cc3ff", "street": "#7ee0c3", "community": "#f5c26b", "grid": "#8a9bb0"}
	lineWidth := map[string]float64{"district": 3.5, "street": 2.5, "community": 1.8, "grid": 1}
	textSize := map[string]float64{"district": 28, "street": 22, "community": 18, "grid": 14}
	zooms := map[string][2]int{"district": z.District, "street": z.Street, "community": z.Community, "grid": z.Grid}
	layers := []any{
		map[string]any{"id": "background", "type": "background", "paint": map[string]any{"background-color": "#0b1420"}},
	}
	for _, lv := range []string{"district", "street", "community", "grid"} {
		z := zooms[lv]
		layers = append(layers,
			map[string]any{"id": lv + "-fill", "type": "fill", "source": "units", "source-layer": lv, "minzoom": z[0], "maxzoom": z[1] + 1,
				"paint": map[string]any{"fill-color": levelColor[lv],
					"fill-opacity": []any{"case", []any{"boolean", []any{"feature-state", "selected"}, false}, 0.28, 0.06}}},
			map[string]any{"id": lv + "-line", "type": "line", "source": "units", "source-layer": lv, "minzoom": z[0], "maxzoom": z[1] + 1,
				"paint": map[string]any{"line-color": levelColor[lv], "line-width": lineWidth[lv], "line-opacity": 0.9}},
		)
	}
	layers = append(layers,
		map[string]any{"id": "object-counts", "type": "circle", "source": "objects", "source-layer": "object_counts",
			"paint": map[string]any{"circle-color": "#ff7a59", "circle-opacity": 0.75, "circle-stroke-color": "#ffd3c4", "circle-stroke-width": 1,
				"circle-radius": []any{"interpolate", []any{"linear"}, []any{"sqrt", []any{"get", "count"}}, 0, 4, 100, 18, 400, 40}}},
		map[string]any{"id": "objects", "type": "circle", "source": "objects", "source-layer": "objects", "minzoom": ObjectsMinZoom,
			"paint": map[string]any{"circle-radius": []any{"interpolate", []any{"linear"}, []any{"zoom"}, 14, 2.5, 18, 7},
				"circle-stroke-color": "#0b1420", "circle-stroke-width": 0.5,
				"circle-color": []any{"match", []any{"slice", []any{"get", "class"}, 0, 2},
					"01", "#4cc3ff", "02", "#f5c26b", "03", "#c792ea", "04", "#7ee787", "05", "#ff7a59", "06", "#e6edf3",
					"#ffa657"}}},
	)
	for _, lv := range []string{"district", "street", "community", "grid"} {
		z := zooms[lv]
		layers = append(layers, map[string]any{"id": lv + "-label", "type": "symbol", "source": "units", "source-layer": lv,
			"minzoom": z[0], "maxzoom": z[1] + 1,
			"layout": map[string]any{"text-field": []any{"get", "name"}, "text-font": []any{"Go Regular"}, "text-size": textSize[lv],
				"symbol-placement": "point", "text-max-width": 8},
			"paint": map[string]any{"text-color": "#e6edf3", "text-halo-color": "#0b1420", "text-halo-width": 2}})
	}
	layers = append(layers, map[string]any{"id": "object-count-label", "type": "symbol", "source": "objects", "source-layer": "object_counts",
		"layout": map[string]any{"text-field": []any{"to-string", []any{"get", "count"}}, "text-font": []any{"Go Regular"}, "text-size": 14,
			"text-allow-overlap": false},
		"paint": map[string]any{"text-color": "#ffffff", "text-halo-color": "#5a1e0e", "text-halo-width": 1.5}})
	return map[string]any{
		"version": 8,
		"name":    "gridmap wall",
		"glyphs":  base + "/fonts/{fontstack}/{range}.pbf",
		"sources": map[string]any{
			"units":   map[string]any{"type": "vector", "url": base + "/tiles/units.json"},
			"objects": map[string]any{"type": "vector", "url": base + "/tiles/objects.json"},
		},
		"layers": layers,
	}
}
