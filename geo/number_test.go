package geo

import "testing"

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"114.05", 114.05, true},
		{" -22.5 ", -22.5, true},
		{"+1e2", 100, true},
		{"1E-3", 0.001, true},
		{"0", 0, true},
		{"", 0, false},
		{"   ", 0, false},
		{"0x72", 0, false},
		{"0x1p4", 0, false},
		{"1_000", 0, false},
		{"Inf", 0, false},
		{"-infinity", 0, false},
		{"NaN", 0, false},
		{"1e999", 0, false},
		{"114,05", 0, false},
		{"114.05.1", 0, false},
	} {
		got, ok := ParseNumber(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseNumber(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
