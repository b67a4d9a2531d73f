package grid

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	orbgeo "github.com/paulmach/orb/geo"

	"gridmap/geo"
)

// Draft is a unit on its way into the store, with the position of the
// feature it came from so reports can point back at it.
type Draft struct {
	Unit
	Feature int
}

// DraftsFromFeatures reads the unit properties of imported features (code,
// name, level, optional parent_code, layer and complete), normalises their
// codes and geometry, and returns every problem it finds as a violation.
// Geometric rules need the database and are checked there.
func DraftsFromFeatures(features []geo.Feature, defaultLayer string) ([]Draft, []Violation) {
	if defaultLayer == "" {
		defaultLayer = BaseLayer
	}
	var drafts []Draft
	var bad []Violation
	firstAt := map[string]int{}
	for _, f := range features {
		idx := f.Index
		fail := func(rule string, codes []string, format string, args ...any) {
			for i := range codes {
				codes[i] = geo.Excerpt(codes[i], geo.MaxExcerpt)
			}
			v := Violation{Rule: rule, Severity: SeverityError, Codes: codes, Feature: &idx,
				Message: fmt.Sprintf("features[%d]: ", idx) + fmt.Sprintf(format, args...)}
			// The feature's own geometry, so an editor can show which one.
			if f.Err == nil && f.Geometry != nil {
				v.Geometry = f.Raw
				if a := orbgeo.Area(f.Geometry); a > 0 {
					v.AreaM2 = &a
				}
			}
			bad = append(bad, v)
		}
		code := strings.TrimSpace(stringProp(f.Properties, "code"))
		codes := []string{}
		if code != "" {
			codes = []string{code}
		}
		if f.Err != nil {
			msg := strings.TrimPrefix(f.Err.Error(), fmt.Sprintf("features[%d]", idx))
			fail(RuleInvalidGeoJSON, codes, "%s", strings.TrimLeft(msg, ":. "))
			continue
		}
		layer := stringProp(f.Properties, "layer")
		if layer == "" {
			layer = defaultLayer
		}
		if !ValidLayerName(layer) {
			fail(RuleBadLayer, codes, "layer %q: use lower-case letters, digits and _ (at most 32, starting with a letter)", geo.Excerpt(layer, geo.MaxExcerpt))
			continue
		}
		level, err := ParseLevel(stringProp(f.Properties, "level"))
		if err != nil {
			fail(RuleBadLevel, codes, "%v", err)
			continue
		}
		if code == "" {
			fail(RuleBadCode, codes, "property \"code\" is missing")
			continue
		}
		code = NormalizeCode(level, code)
		parent := strings.TrimSpace(stringProp(f.Properties, "parent_code"))
		if level == District && parent != "" && len(code) == 6 && (strings.HasPrefix(code, parent) || parent == code[:4]+"00") {
			parent = "" // the city or province above the districts (4403, 440300, 44) is not a unit here
		}
		if parent != "" {
			parent = NormalizeCode(level.Parent(), parent)
		}
		if err := ValidateCode(level, code, parent); err != nil {
			fail(RuleBadCode, []string{code}, "%v", err)
			continue
		}
		if parent == "" {
			parent = ParentCode(level, code)
		}
		name := strings.TrimSpace(stringProp(f.Properties, "name"))
		if name == "" {
			fail(RuleMissingName, []string{code}, "property \"name\" is missing")
			continue
		}
		key := layer + "/" + code
		if first, dup := firstAt[key]; dup {
			fail(RuleDuplicateCode, []string{code}, "code %s appears again (first at features[%d])", code, first)
			continue
		}
		firstAt[key] = idx
		mp, err := geo.MultiPolygonOf(f.Geometry)
		if err != nil {
			fail(RuleInvalidGeoJSON, []string{code}, "geometry: %v", err)
			continue
		}
		complete, _ := f.Properties["complete"].(bool)
		drafts = append(drafts, Draft{Feature: idx, Unit: Unit{
			Layer: layer, Code: code, Name: name, Level: level, ParentCode: parent, Complete: complete, Geometry: mp,
		}})
	}
	return drafts, bad
}

// stringProp reads a property that may have been written as a string or a
// number (codes often arrive as JSON numbers).
func stringProp(p map[string]any, k string) string {
	switch v := p[k].(type) {
	case string:
		return v
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatFloat(v, 'f', 0, 64)
		}
		return strconv.FormatFloat(v, 'g', -1, 64) // not a code; the digit rule says so
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}
