package tiles

import (
	"os"
	"strings"
	"testing"

	"gridmap/grid"
)

// The event queries' open-state list, built from grid, reads exactly as the
// predicate of the partial index events_open_deadline, which the planner
// uses only for a query with the same predicate.
func TestOpenStatusesMatchTheIndex(t *testing.T) {
	t.Parallel()
	sql, err := os.ReadFile("../data/migrations/005_events.sql")
	if err != nil {
		t.Fatal(err)
	}
	_, index, ok := strings.Cut(string(sql), "CREATE INDEX events_open_deadline")
	if !ok {
		t.Fatal("migration 005 has no index events_open_deadline")
	}
	index, _, _ = strings.Cut(index, ";")
	if want := "WHERE status IN " + openStatuses; !strings.Contains(index, want) {
		t.Errorf("events_open_deadline is%s\nwant its predicate to read %s", index, want)
	}
}

// The names tiles use for the event states are grid's, in grid's order.
func TestStatusNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		keep func(grid.EventStatus) bool
		want []string
	}{
		{"all", func(grid.EventStatus) bool { return true },
			[]string{"reported", "registered", "dispatched", "handling", "handled", "verified", "closed", "rejected", "returned", "suspended"}},
		{"open", grid.EventStatus.Open, []string{"reported", "registered", "dispatched", "handling", "returned"}},
		{"final", grid.EventStatus.Final, []string{"closed", "rejected"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusNames(tc.keep); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("statusNames: %v, want %v", got, tc.want)
			}
		})
	}
}
