package tiles_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gridmap/grid"
	"gridmap/tiles"
)

// wallStyleJSON is the wall style as a client reads it.
func wallStyleJSON(t *testing.T) (raw []byte, style map[string]any) {
	t.Helper()
	raw, err := json.Marshal(tiles.WallStyle("http://wall.example", tiles.DefaultZooms))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &style); err != nil {
		t.Fatal(err)
	}
	return raw, style
}

// walk calls fn on every array inside v (expressions), depth first.
func walk(v any, fn func([]any)) {
	switch x := v.(type) {
	case []any:
		fn(x)
		for _, e := range x {
			walk(e, fn)
		}
	case map[string]any:
		for _, e := range x {
			walk(e, fn)
		}
	}
}

// Every layer of the wall style draws a source layer its tileset has, in
// zooms where the tileset has it, from fields the source layer carries;
// every global state it reads is declared; the event states each have a
// colour of their own.
func TestWallStyleMatchesTheCatalogue(t *testing.T) {
	t.Parallel()
	_, style := wallStyleJSON(t)
	cat, err := tiles.NewCatalogue(tiles.DefaultZooms)
	if err != nil {
		t.Fatal(err)
	}
	sources, _ := style["sources"].(map[string]any)
	for _, name := range []string{"units", "objects", "events"} {
		src, _ := sources[name].(map[string]any)
		if src["type"] != "vector" || src["url"] != "http://wall.example/tiles/"+name+".json" {
			t.Errorf("source %s: %v", name, src)
		}
	}
	state, _ := style["state"].(map[string]any)
	ids := map[string]bool{}
	byID := map[string]map[string]any{}
	for i, raw := range style["layers"].([]any) {
		l := raw.(map[string]any)
		id, _ := l["id"].(string)
		if id == "" || ids[id] {
			t.Errorf("layer %d: id %q missing or repeated", i, id)
		}
		ids[id] = true
		byID[id] = l
		walk(l, func(e []any) {
			if len(e) == 2 && e[0] == "global-state" {
				if _, ok := state[e[1].(string)]; !ok {
					t.Errorf("layer %s reads global state %v, which the style's state does not declare", id, e[1])
				}
			}
		})
		if l["type"] == "background" {
			continue
		}
		srcName, _ := l["source"].(string)
		tl, ok := cat.Tileset(srcName)
		if !ok {
			t.Errorf("layer %s: source %q is no tileset", id, srcName)
			continue
		}
		var sl *tiles.SourceLayer
		for i := range tl.Sources {
			if tl.Sources[i].ID == l["source-layer"] {
				sl = &tl.Sources[i]
			}
		}
		if sl == nil {
			t.Errorf("layer %s: tileset %s has no source layer %v", id, srcName, l["source-layer"])
			continue
		}
		minZ, maxZ := 0.0, float64(tiles.MaxZoom+1)
		if v, ok := l["minzoom"].(float64); ok {
			minZ = v
		}
		if v, ok := l["maxzoom"].(float64); ok {
			maxZ = v
		}
		if minZ >= maxZ || maxZ <= float64(sl.MinZoom) || minZ > float64(sl.MaxZoom) {
			t.Errorf("layer %s: zooms [%v, %v) miss source layer %s (z%d–%d)", id, minZ, maxZ, sl.ID, sl.MinZoom, sl.MaxZoom)
		}
		walk(l, func(e []any) {
			if len(e) == 2 && e[0] == "get" {
				if f, _ := e[1].(string); sl.Fields[f] == "" {
					t.Errorf("layer %s reads field %q, which source layer %s does not carry (%v)", id, f, sl.ID, sl.Fields)
				}
			}
		})
	}
	for _, id := range []string{"event-counts", "events", "events-overdue-halo", "event-count-label"} {
		if byID[id] == nil {
			t.Errorf("no layer %s", id)
		}
	}

	// The events' colours: a match on status naming every state once.
	paint, _ := byID["events"]["paint"].(map[string]any)
	match, _ := paint["circle-color"].([]any)
	if len(match) < 3 || match[0] != "match" {
		t.Fatalf("events circle-color %v: want a match on status", paint["circle-color"])
	}
	got := map[string]string{}
	for i := 2; i+1 < len(match); i += 2 {
		got[match[i].(string)] = match[i+1].(string)
	}
	colours := map[string]string{}
	for _, st := range []string{"reported", "registered", "dispatched", "handling", "handled", "verified", "closed", "rejected", "returned"} {
		c := got[st]
		if c == "" || c != tiles.EventStatusColors[grid.EventStatus(st)] {
			t.Errorf("status %s: colour %q, want %q", st, c, tiles.EventStatusColors[grid.EventStatus(st)])
		}
		if other, dup := colours[strings.ToLower(c)]; dup {
			t.Errorf("statuses %s and %s share the colour %s", other, st, c)
		}
		colours[strings.ToLower(c)] = st
	}
	if len(got) != len(tiles.EventStatusColors) {
		t.Errorf("events colours %v, want one per state", got)
	}
}

// Every event state of grid has a colour of its own, and no colour is kept
// for a state grid does not have.
func TestEventStatusColors(t *testing.T) {
	t.Parallel()
	seen := map[string]grid.EventStatus{}
	for _, st := range grid.EventStatuses {
		c, ok := tiles.EventStatusColors[st]
		if !ok || c == "" {
			t.Errorf("status %s has no colour", st)
			continue
		}
		if other, dup := seen[strings.ToLower(c)]; dup {
			t.Errorf("statuses %s and %s share the colour %s", other, st, c)
		}
		seen[strings.ToLower(c)] = st
	}
	for st := range tiles.EventStatusColors {
		if _, err := grid.ParseEventStatus(string(st)); err != nil {
			t.Errorf("colour for %v: %v", st, err)
		}
	}
}

// The style's metadata tells the page grid's event states in workflow
// order, with their names, colours and whether the deadline clock runs.
func TestWallStyleEventStatusMetadata(t *testing.T) {
	t.Parallel()
	_, style := wallStyleJSON(t)
	meta, _ := style["metadata"].(map[string]any)
	list, _ := meta[tiles.EventStatusesKey].([]any)
	if len(list) != len(grid.EventStatuses) {
		t.Fatalf("metadata %s: %d states, want %d: %v", tiles.EventStatusesKey, len(list), len(grid.EventStatuses), meta)
	}
	for i, st := range grid.EventStatuses {
		want := map[string]any{"status": string(st), "name": st.Chinese(), "color": tiles.EventStatusColors[st], "open": st.Open()}
		got, _ := list[i].(map[string]any)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("state %d (%s): %s = %v, want %v", i, st, k, got[k], v)
			}
		}
	}
}

// The wall style passes MapLibre's own style validator (the style-spec
// package `make web` installs with MapLibre GL JS), expressions included.
func TestWallStyleValidates(t *testing.T) {
	t.Parallel()
	raw, _ := wallStyleJSON(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("Node.js runs MapLibre's style validator: %v", err)
	}
	web, err := filepath.Abs("../web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(web, "node_modules", "@maplibre", "maplibre-gl-style-spec")); err != nil {
		t.Fatalf("web/node_modules/@maplibre/maplibre-gl-style-spec is missing: run `make web` (%v)", err)
	}
	const script = `import { validateStyleMin } from '@maplibre/maplibre-gl-style-spec';
let s = '';
for await (const c of process.stdin) s += c;
const errs = validateStyleMin(JSON.parse(s));
for (const e of errs) console.log(e.message);
process.exit(errs.length ? 1 : 0);`
	cmd := exec.Command(node, "--input-type=module", "-e", script)
	cmd.Dir = web
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the wall style is not a valid MapLibre style: %v\n%s", err, out)
	}
}
