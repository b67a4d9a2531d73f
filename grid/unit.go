package grid

import (
	"regexp"

	"github.com/paulmach/orb"
)

// BaseLayer is the administrative hierarchy; other layers (police,
// emergency, water …) are further partitions of the same territory.
const BaseLayer = "base"

var layerName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// ValidLayerName reports whether s can name a layer: lower-case ASCII,
// digits and underscores, starting with a letter, at most 32 characters.
func ValidLayerName(s string) bool { return layerName.MatchString(s) }

// Unit is one polygon of the hierarchy in one layer.
type Unit struct {
	Layer      string
	Code       string
	Name       string
	Level      Level
	ParentCode string
	// Complete declares that the unit's children must cover it: a gap is
	// then a violation instead of a warning.
	Complete bool
	Geometry orb.MultiPolygon
	AreaM2   float64
	Version  int
}

// Ref names a unit in answers that only point at it.
type Ref struct {
	Code string `json:"code"`
	Name string `json:"name"`
}
