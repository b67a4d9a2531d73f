package geo

import (
	"strings"
	"testing"
)

func TestZZExp(t *testing.T) {
	for _, s := range []string{`{"a" 1}`, "{\n  \"type\": \"FeatureCollection\",\n  x\n}", `{"type": 5}`, "{\"type\":\"FeatureCollection\",\n\"features\": 5}", `{"type":"Feature`, "{\"a\":\"b\nc\"}", "", "[1,2]"} {
		_, err := DecodeFeatureCollection(strings.NewReader(s))
		t.Logf("%q -> %#v %v", s, err, err)
	}
}
