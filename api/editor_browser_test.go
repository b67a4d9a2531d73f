package api_test

import (
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// TestEditorInBrowser serves the small demo city (with objects) with public
// reads and runs web/test/editor.test.mjs in headless Chromium: the
// boundary editor picks a grid by a click, asks for a token before its
// first dry run, splits a grid with a line drawn on the map, merges two
// grids, shows an overlap (Save disabled) and then reshapes a shared edge
// with neighbours adjusting, each previewed and saved and checked through
// the API, and moves the time slider back to the old boundary. Then, in
// SQL, every parent's children still tile it: no overlap, no gap.
func TestEditorInBrowser(t *testing.T) {
	t.Parallel()
	node, webDir := browserTools(t)
	shots := screenshotDir(t)
	store := withDemoObjectsSeed(t, pgtest.NewDemo(t), 600, 7)
	hs := serveForBrowser(t, store, api.Options{PublicRead: true})
	runNodeTest(t, node, webDir, "test/editor.test.mjs",
		"GRIDMAP_URL="+hs.URL, "GRIDMAP_TOKEN="+adminToken(t, store), "GRIDMAP_SCREENSHOTS="+shots)

	edited := sqlStrings(t, store, `SELECT DISTINCT parent_code FROM units WHERE layer = 'base' AND change_reason LIKE '浏览器测试%' ORDER BY 1`)
	if len(edited) != 5 {
		t.Errorf("parents of the units the editor saved: %v, want 5 (split, merge, reshape and revert, retire, create)", edited)
	}
	e := &apiEnv{t: t, store: store}
	for _, parent := range sqlStrings(t, store, `SELECT DISTINCT parent_code FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid' ORDER BY 1`) {
		noOverlapNoGap(t, e, parent)
	}
}
