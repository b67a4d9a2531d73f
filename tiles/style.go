package tiles

import "gridmap/grid"

// WallStyle is a MapLibre style for a command-centre wall: dark, high
// contrast, large labels, on the units, objects and events tilesets of base
// (the server's scheme://host). Sizes are for a 3840×2160 wall seen from
// metres away; the page scales them with the viewport.
//
// Events are drawn as per-unit count bubbles below EventsMinZoom (open
// events, red when some are overdue) and as single points from there,
// coloured by status (EventStatusColors) with a red ring and halo when
// overdue. Overdue is the tile's flag (as of its rendering) or, when the
// page keeps the style's global state "now" (Unix seconds) current, an open
// event whose deadline has passed by then: the wall turns an event red at
// its deadline without waiting for the tile to expire.
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
	layers = append(layers, eventLayers()...)
	for _, lv := range []string{"district", "street", "community", "grid"} {
		z := zooms[lv]
		layers = append(layers, map[string]any{"id": lv + "-label", "type": "symbol", "source": "units", "source-layer": lv,
			"minzoom": z[0], "maxzoom": z[1] + 1,
			"layout": map[string]any{"text-field": []any{"get", "name"}, "text-font": []any{GlyphFont}, "text-size": textSize[lv],
				"symbol-placement": "point", "text-max-width": 8},
			"paint": map[string]any{"text-color": "#e6edf3", "text-halo-color": "#0b1420", "text-halo-width": 2}})
	}
	layers = append(layers, map[string]any{"id": "object-count-label", "type": "symbol", "source": "objects", "source-layer": "object_counts",
		"layout": map[string]any{"text-field": []any{"to-string", []any{"get", "count"}}, "text-font": []any{GlyphFont}, "text-size": 14,
			"text-allow-overlap": false},
		"paint": map[string]any{"text-color": "#ffffff", "text-halo-color": "#5a1e0e", "text-halo-width": 1.5}})
	// Event counts label last, "open/overdue" on each bubble: always drawn
	// (the wall's first concern), and the object counts under them give way.
	layers = append(layers, map[string]any{"id": "event-count-label", "type": "symbol", "source": "events", "source-layer": "event_counts",
		"filter": []any{">", []any{"get", "open"}, 0},
		"layout": map[string]any{
			"text-field": []any{"format",
				[]any{"to-string", []any{"get", "open"}}, map[string]any{},
				[]any{"case", []any{">", []any{"get", "overdue"}, 0}, []any{"concat", "/", []any{"to-string", []any{"get", "overdue"}}}, ""},
				map[string]any{"text-color": "#ffd0d6"}},
			"text-font": []any{GlyphFont}, "text-size": 20, "text-allow-overlap": true,
			"symbol-sort-key": []any{"get", "open"}},
		"paint": map[string]any{"text-color": "#ffffff", "text-halo-color": "#3a0b10", "text-halo-width": 1.8}})
	return map[string]any{
		"version":  8,
		"name":     "gridmap wall",
		"glyphs":   base + "/fonts/{fontstack}/{range}.pbf",
		"metadata": map[string]any{EventStatusesKey: eventStatusMetadata()},
		// now: the page's clock in Unix seconds (0: use the tiles' overdue flags alone).
		"state": map[string]any{"now": map[string]any{"default": 0}},
		"sources": map[string]any{
			"units":   map[string]any{"type": "vector", "url": base + "/tiles/units.json"},
			"objects": map[string]any{"type": "vector", "url": base + "/tiles/objects.json"},
			"events":  map[string]any{"type": "vector", "url": base + "/tiles/events.json"},
		},
		"layers": layers,
	}
}

// EventStatusColors are the wall's colours of the event states, readable on
// its dark background: hot colours while a case waits for action, blue and
// cyan while it is worked on, green when verified, greys when it is over,
// magenta when the verification sent it back.
var EventStatusColors = map[grid.EventStatus]string{
	grid.StatusReported:   "#ff6a3d", // 上报: red-orange
	grid.StatusRegistered: "#ffad1f", // 立案: amber
	grid.StatusDispatched: "#ffe04a", // 派遣: yellow
	grid.StatusHandling:   "#3d8bff", // 处置中: blue
	grid.StatusHandled:    "#22d3ee", // 已处置: cyan
	grid.StatusVerified:   "#4ade80", // 已核查: green
	grid.StatusClosed:     "#8b98a9", // 结案: grey
	grid.StatusRejected:   "#56606d", // 不予立案: dark grey
	grid.StatusReturned:   "#e040fb", // 退回: magenta
	grid.StatusSuspended:  "#f5a524", // 挂起: amber (the clock stands still)
}

// EventStatusesKey names the style's metadata entry that describes the event
// states to the page drawing the style (see eventStatusMetadata).
const EventStatusesKey = "gridmap:event-statuses"

// eventStatusMetadata lists grid's event states in workflow order, each with
// its name in the command centre's words, its colour on the wall and whether
// its deadline clock runs: the page's legend, ticker and live layer read
// them here, so that grid stays their only source.
func eventStatusMetadata() []any {
	out := make([]any, 0, len(grid.EventStatuses))
	for _, st := range grid.EventStatuses {
		out = append(out, map[string]any{"status": string(st), "name": st.Chinese(), "color": EventStatusColors[st], "open": st.Open()})
	}
	return out
}

// statusIn is an expression true for a feature whose status is one of names.
func statusIn(names []string) []any {
	list := make([]any, len(names))
	for i, n := range names {
		list[i] = n
	}
	return []any{"match", []any{"get", "status"}, list, true, false}
}

// EventOverdueColor rings and haloes overdue events and colours the count
// bubbles of units with overdue events.
const EventOverdueColor = "#ff2d47"

// eventOverdue is true for an event feature that is overdue: flagged so in
// its tile, or open with its deadline before the global state "now".
func eventOverdue() []any {
	now := []any{"to-number", []any{"global-state", "now"}, 0}
	deadline := []any{"to-number", []any{"get", "deadline"}, 0}
	open := statusIn(statusNames(grid.EventStatus.Open))
	return []any{"any",
		[]any{"==", []any{"get", "overdue"}, true},
		[]any{"all", open, []any{">", now, 0}, []any{">", deadline, 0}, []any{"<", deadline, now}}}
}

// eventLayers: count bubbles below EventsMinZoom (and per grid above it
// where a tile passes the cap), single events from EventsMinZoom.
func eventLayers() []any {
	statusColor := []any{"match", []any{"get", "status"}}
	for _, st := range grid.EventStatuses {
		statusColor = append(statusColor, string(st), EventStatusColors[st])
	}
	statusColor = append(statusColor, "#e6edf3")
	overdue := eventOverdue()
	done := statusIn(statusNames(grid.EventStatus.Final))
	return []any{
		map[string]any{"id": "event-counts", "type": "circle", "source": "events", "source-layer": "event_counts",
			"layout": map[string]any{"circle-sort-key": []any{"get", "open"}},
			"paint": map[string]any{
				"circle-radius": []any{"interpolate", []any{"linear"}, []any{"sqrt", []any{"get", "open"}}, 0, 9, 2, 17, 5, 27, 15, 46, 40, 72},
				"circle-color": []any{"case", []any{">", []any{"get", "overdue"}, 0}, EventOverdueColor,
					[]any{">", []any{"get", "open"}, 0}, "#ff9f1c", "#5f6f82"},
				"circle-opacity":      []any{"case", []any{">", []any{"get", "open"}, 0}, 0.78, 0.45},
				"circle-stroke-color": []any{"case", []any{">", []any{"get", "overdue"}, 0}, "#ffd7dc", "#ffe8c2"},
				"circle-stroke-width": 2,
			}},
		map[string]any{"id": "events-overdue-halo", "type": "circle", "source": "events", "source-layer": "events", "minzoom": EventsMinZoom,
			"paint": map[string]any{
				"circle-radius":  []any{"interpolate", []any{"linear"}, []any{"zoom"}, EventsMinZoom, 18, 16, 26, 19, 36},
				"circle-color":   EventOverdueColor,
				"circle-blur":    0.7,
				"circle-opacity": []any{"case", overdue, 0.6, 0},
			}},
		// Larger than the objects' dots, with a dark rim; events whose
		// case is over (closed, rejected) smaller and fainter, so the open
		// ones stand out.
		map[string]any{"id": "events", "type": "circle", "source": "events", "source-layer": "events", "minzoom": EventsMinZoom,
			"layout": map[string]any{"circle-sort-key": []any{"case", done, 0, []any{"get", "reported_at"}}},
			"paint": map[string]any{
				"circle-radius": []any{"interpolate", []any{"linear"}, []any{"zoom"},
					EventsMinZoom, []any{"case", done, 5, 9}, 16, []any{"case", done, 8, 14}, 19, []any{"case", done, 12, 20}},
				"circle-color":          statusColor,
				"circle-opacity":        []any{"case", done, 0.6, 1},
				"circle-stroke-color":   []any{"case", overdue, EventOverdueColor, "#02070d"},
				"circle-stroke-width":   []any{"case", overdue, 4, 2},
				"circle-stroke-opacity": []any{"case", done, 0.6, 1},
			}},
	}
}
