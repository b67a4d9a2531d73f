package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"gridmap/data/pgtest"
)

// TestEventsCommand: gridmap events retain and partitions on a fresh
// database (migrated by the first command), in order.
func TestEventsCommand(t *testing.T) {
	t.Setenv("DATABASE_URL", pgtest.NewEmpty(t))
	this := "event_feed_" + time.Now().UTC().Format("200601")
	for _, tc := range []struct {
		args    []string
		wantErr string
		wantOut []string
	}{
		{nil, "usage:", nil},
		{[]string{"prune"}, `unknown events command "prune"`, nil},
		{[]string{"retain"}, "--feed-months N (0 or more) is required", nil},
		{[]string{"retain", "--feed-months", "0", "extra"}, "unexpected arguments", nil},
		{[]string{"retain", "--feed-months", "0"}, "", []string{"dropped event_feed_before: 0 entries (empty)"}},
		{[]string{"retain", "--feed-months", "0"}, "", []string{"no feed partition wholly before the month 0 months back"}},
		{[]string{"partitions", "--ahead", "121"}, "want --ahead 0 to 120", nil},
		{[]string{"partitions", "--ahead", "4"}, "", []string{"1 partition months made", this, "events_" + time.Now().UTC().Format("200601"), "FOR VALUES FROM"}},
	} {
		var out, errb bytes.Buffer
		err := cmdEvents(context.Background(), tc.args, &out, &errb)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("events %q: error %v, want %q", tc.args, err, tc.wantErr)
		case tc.wantErr == "" && err != nil:
			t.Errorf("events %q: %v", tc.args, err)
		}
		for _, w := range tc.wantOut {
			if !strings.Contains(out.String(), w) {
				t.Errorf("events %q: stdout lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
}
