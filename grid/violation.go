package grid

import "encoding/json"

// Topology and import rules, as named in reports.
const (
	RuleInvalidGeoJSON  = "invalid_geojson"  // the feature is not usable GeoJSON
	RuleInvalidGeometry = "invalid_geometry" // PostGIS finds the geometry invalid
	RuleRepaired        = "repaired"         // invalid geometry made valid (warning)
	RuleBadCode         = "bad_code"         // the code breaks a coding rule
	RuleBadLevel        = "bad_level"        // level missing or unknown
	RuleBadLayer        = "bad_layer"        // layer name not allowed
	RuleMissingName     = "missing_name"     // a unit needs a name
	RuleDuplicateCode   = "duplicate_code"   // the same code twice in one import
	RuleUnknownParent   = "unknown_parent"   // the parent code names no unit
	RuleOutsideParent   = "outside_parent"   // part of a child lies outside its parent
	RuleOverlap         = "overlap"          // two units of a level overlap
	RuleGap             = "gap"              // part of a parent no child covers
	RuleStraddles       = "straddles"        // an edit would cut a child between parents
)

// Severity of a finding: errors stop an import, warnings do not.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Violation is one broken rule, with what an editor needs to draw it.
type Violation struct {
	Rule     string          `json:"rule"`
	Severity string          `json:"severity"`
	Codes    []string        `json:"codes"`
	Feature  *int            `json:"feature,omitempty"` // index in the imported collection
	Message  string          `json:"message"`
	Geometry json.RawMessage `json:"geometry,omitempty"` // GeoJSON
	AreaM2   *float64        `json:"area_m2,omitempty"`
	Location []float64       `json:"location,omitempty"` // [lon, lat] PostGIS points at
}
