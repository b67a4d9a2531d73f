package tiles

import (
	"fmt"
	"strings"
	"testing"

	"gridmap/geo/geotest"
)

func formatZooms(z Zooms) string {
	return fmt.Sprintf("district=%d-%d,street=%d-%d,community=%d-%d,grid=%d-%d",
		z.District[0], z.District[1], z.Street[0], z.Street[1], z.Community[0], z.Community[1], z.Grid[0], z.Grid[1])
}

// FuzzParseZooms: accepted ranges lie in 0 ≤ min ≤ max ≤ MaxZoom and make
// a catalogue; written back they read the same; a refusal repeats little
// of the input.
func FuzzParseZooms(f *testing.F) {
	for _, s := range []string{"", " ", "district=0-10,street=9-12,community=11-14,grid=13-22", "street=9-12", "grid=13-23",
		"grid=14-13", "grid=-1-3", "grid=+1-3", "grid=1--3", "grid=1", "grid", "=", "city=1-2", "street=9-12,street=1-2",
		"grid=99999999999999999999-1", "street = 9-12", "street=9-12,", strings.Repeat("x", 300) + "=1-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		z, err := ParseZooms(s)
		if err != nil {
			geotest.CheckNoEcho(t, err.Error(), s)
			return
		}
		for _, r := range [][2]int{z.District, z.Street, z.Community, z.Grid} {
			if r[0] < 0 || r[1] > MaxZoom || r[0] > r[1] {
				t.Fatalf("%q read as %+v", s, z)
			}
		}
		if _, err := NewCatalogue(z); err != nil {
			t.Fatalf("%q read as %+v, which makes no catalogue: %v", s, z, err)
		}
		again, err := ParseZooms(formatZooms(z))
		if err != nil || again != z {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, z, formatZooms(z), again, err)
		}
	})
}

// FuzzCheckTile: a tile is accepted exactly inside the pyramid.
func FuzzCheckTile(f *testing.F) {
	for _, zxy := range [][3]int{{0, 0, 0}, {22, 4194303, 4194303}, {22, 4194304, 0}, {23, 0, 0}, {-1, 0, 0}, {1, -1, 0}, {63, 0, 0}, {64, 1, 1}} {
		f.Add(zxy[0], zxy[1], zxy[2])
	}
	f.Fuzz(func(t *testing.T, z, x, y int) {
		err := CheckTile(z, x, y)
		inside := z >= 0 && z <= MaxZoom && x >= 0 && y >= 0 && x < 1<<z && y < 1<<z
		if (err == nil) != inside {
			t.Fatalf("%d/%d/%d: %v", z, x, y, err)
		}
	})
}
