package api_test

import (
	"context"
	"testing"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data"
	"gridmap/data/pgtest"
)

// TestSignInInBrowser serves the small demo city WITHOUT public reads and
// runs web/test/signin.test.mjs in headless Chromium: the wall map shows
// its sign-in and no map data without a credential, refuses a wrong token
// with the server's reason, loads with a viewer token (every request to
// the server carrying it, none to another origin, none in a URL), follows
// the event stream read with fetch(), and brings the sign-in back once the
// token is revoked. Missing Node.js, playwright-core or Chromium fail it,
// as they fail TestWallMapInBrowser.
func TestSignInInBrowser(t *testing.T) {
	t.Parallel()
	node, webDir := browserTools(t)
	store := pgtest.NewDemo(t)
	viewer, _, err := store.CreateToken(context.Background(), data.NewToken{Name: "wall-viewer", Role: auth.Viewer, Scopes: []string{auth.City}, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	hs := serveForBrowser(t, store, api.Options{})
	shots := screenshotDir(t)
	runNodeTest(t, node, webDir, "test/signin.test.mjs", "GRIDMAP_SCREENSHOTS="+shots,
		"GRIDMAP_URL="+hs.URL, "GRIDMAP_TOKEN="+adminToken(t, store), "GRIDMAP_VIEWER_TOKEN="+viewer, "GRIDMAP_VIEWER_NAME=wall-viewer")
}
