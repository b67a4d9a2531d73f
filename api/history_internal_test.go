package api

import (
	"fmt"
	"testing"

	"gridmap/grid"
)

// TestPastLocatorsBounded: the LRU of past locators keeps at most
// pastLocators, drops the least recently used, and a lookup refreshes.
func TestPastLocatorsBounded(t *testing.T) {
	var h history
	locs := make([]*grid.Locator, pastLocators+2)
	for i := range locs {
		locs[i] = grid.NewLocator(nil)
	}
	for i := 0; i < pastLocators; i++ {
		h.keep(fmt.Sprint(i), locs[i])
	}
	if h.lookup("0") != locs[0] { // 0 is now the most recent
		t.Fatal("0 not kept")
	}
	h.keep("new", locs[pastLocators])
	h.keep("0", locs[pastLocators+1]) // already there: kept as is
	if h.lru.Len() != pastLocators {
		t.Errorf("%d locators kept, want %d", h.lru.Len(), pastLocators)
	}
	if h.lookup("1") != nil {
		t.Error("the least recently used (1) was not dropped")
	}
	if h.lookup("0") != locs[0] || h.lookup("new") != locs[pastLocators] {
		t.Error("recent locators dropped or replaced")
	}
}
