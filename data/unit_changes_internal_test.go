package data

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// TestUnitChangeBodyCap: a whole city's change lists MaxChangeCodes codes
// (their versions with them) and code map pairs, says it was cut and counts
// them all; every code stays in the filter list.
func TestUnitChangeBodyCap(t *testing.T) {
	t.Parallel()
	c := UnitChange{Operation: "import", Layer: "base", Versions: map[string]int{}, CodeMap: map[string]string{}}
	for i := range MaxChangeCodes + 500 {
		code := fmt.Sprintf("440308%09d", i)
		c.Codes = append(c.Codes, code)
		c.Versions[code] = 2
		c.CodeMap[fmt.Sprintf("440309%09d", i)] = code
	}
	c.Codes = append(c.Codes, c.Codes[0]) // a duplicate counts once
	b, all := unitChangeBody(c)
	if len(b.Codes) != MaxChangeCodes || len(b.Versions) != MaxChangeCodes || len(b.CodeMap) != MaxChangeCodes || !b.Truncated ||
		b.CodesTotal != MaxChangeCodes+500 || b.CodeMapTotal != MaxChangeCodes+500 || b.RetiredTotal != 0 || b.Retired == nil {
		t.Errorf("body: %d codes, %d versions, %d pairs, truncated %v, totals %d %d %d", len(b.Codes), len(b.Versions), len(b.CodeMap),
			b.Truncated, b.CodesTotal, b.CodeMapTotal, b.RetiredTotal)
	}
	for _, code := range b.Codes {
		if _, ok := b.Versions[code]; !ok {
			t.Fatalf("listed %s without its version", code)
		}
	}
	if len(all) != 2*(MaxChangeCodes+500) {
		t.Errorf("%d codes to filter on, want %d", len(all), 2*(MaxChangeCodes+500))
	}
	small, _ := unitChangeBody(UnitChange{Operation: "merge", Layer: "base", Codes: []string{"b", "a"}, Retired: []string{"c"}, CodeMap: map[string]string{"c": "a"}})
	if small.Truncated || !reflect.DeepEqual(small.Codes, []string{"a", "b"}) || small.CodesTotal != 2 || small.RetiredTotal != 1 {
		t.Errorf("small body %+v", small)
	}
}

// TestScopeUnitEntry: a scoped reader sees a base-layer change only when
// it touches its scopes, and then only its codes; other layers whole.
func TestScopeUnitEntry(t *testing.T) {
	t.Parallel()
	c := UnitChange{Operation: "merge", Layer: "base", Codes: []string{"440308001001001"}, Retired: []string{"440308001001002", "440308002001001"},
		CodeMap:  map[string]string{"440308001001002": "440308001001001", "440308002001001": "440308002001002", "440308002001003": "440308001001001"},
		Versions: map[string]int{"440308001001001": 3}}
	b, all := unitChangeBody(c)
	raw, _ := json.Marshal(b)
	e := FeedEntry{Kind: UnitChangeKind, Layer: "base", Codes: all, Body: raw}
	got, ok := ScopeUnitEntry(e, []string{"440308001"})
	var sb UnitChangeBody
	if !ok || json.Unmarshal(got.Body, &sb) != nil {
		t.Fatalf("in scope: %v %s", ok, got.Body)
	}
	if !reflect.DeepEqual(sb.Codes, []string{"440308001001001"}) || !reflect.DeepEqual(sb.Retired, []string{"440308001001002"}) ||
		!reflect.DeepEqual(sb.CodeMap, map[string]string{"440308001001002": "440308001001001", "440308002001003": "440308001001001"}) ||
		sb.CodesTotal != 1 || sb.RetiredTotal != 1 || sb.CodeMapTotal != 2 {
		t.Errorf("scoped body %+v", sb)
	}
	if _, ok := ScopeUnitEntry(e, []string{"440308003"}); ok {
		t.Error("a change outside the scopes reached the reader")
	}
	e.Layer = "police"
	if got, ok := ScopeUnitEntry(e, []string{"440308003"}); !ok || string(got.Body) != string(raw) {
		t.Error("a professional layer's change is not read whole")
	}
	if got, ok := ScopeUnitEntry(e, nil); !ok || string(got.Body) != string(raw) {
		t.Error("an unscoped reader's change was changed")
	}
}
