package grid

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/paulmach/orb"

	"gridmap/geo"
)

// ObjectKind says which coding rule an object's code follows.
type ObjectKind string

const (
	KindComponent  ObjectKind = "component"  // 部件: 16-digit component code
	KindBuilding   ObjectKind = "building"   // 房屋: house code
	KindEnterprise ObjectKind = "enterprise" // 法人: unified social credit code
)

// Class is one entry of the object class catalogue.
type Class struct {
	Code          string     `json:"code"`
	Kind          ObjectKind `json:"kind"`
	Major         string     `json:"major"`
	MajorName     string     `json:"major_name"`
	Minor         string     `json:"minor"`
	Name          string     `json:"name"`
	GeometryTypes []string   `json:"geometry_types"`
}

// GeometryTypeNames are the GeoJSON types an object may have.
var GeometryTypeNames = []string{"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}

var classCode = regexp.MustCompile(`^[0-9A-Za-z_]{1,32}$`)

// Validate checks a class before it enters the catalogue.
func (c Class) Validate() error {
	if !classCode.MatchString(c.Code) {
		return fmt.Errorf("class code %q: 1–32 letters, digits or _", geo.Excerpt(c.Code, geo.MaxExcerpt))
	}
	if strings.TrimSpace(c.Name) == "" {
		return fmt.Errorf("class %s: name is missing", c.Code)
	}
	switch c.Kind {
	case KindComponent:
		if !digitsOnly.MatchString(c.Code) || len(c.Code) != 4 {
			return fmt.Errorf("component class %q: the code is the 2-digit major and 2-digit minor class, 4 digits", c.Code)
		}
		if c.Major+c.Minor != c.Code {
			return fmt.Errorf("component class %s: major %q + minor %q must equal the code", c.Code, geo.Excerpt(c.Major, geo.MaxExcerpt), geo.Excerpt(c.Minor, geo.MaxExcerpt))
		}
	case KindBuilding, KindEnterprise:
	default:
		return fmt.Errorf("class %s: kind %q: use component, building or enterprise", c.Code, geo.Excerpt(string(c.Kind), geo.MaxExcerpt))
	}
	if len(c.GeometryTypes) == 0 {
		return fmt.Errorf("class %s: geometry_types is empty", c.Code)
	}
	for _, t := range c.GeometryTypes {
		if !slices.Contains(GeometryTypeNames, t) {
			return fmt.Errorf("class %s: geometry type %q: use %s", c.Code, geo.Excerpt(t, geo.MaxExcerpt), strings.Join(GeometryTypeNames, ", "))
		}
	}
	return nil
}

// Allows reports whether objects of the class may have geometry g.
func (c Class) Allows(g orb.Geometry) bool {
	return g != nil && slices.Contains(c.GeometryTypes, g.GeoJSONType())
}

// Object is a managed object and where it belongs.
type Object struct {
	Code      string          `json:"code"`
	Class     string          `json:"class"`
	Geometry  orb.Geometry    `json:"-"`
	Attrs     json.RawMessage `json:"attrs"`
	Grid      string          `json:"grid_code"`
	Community string          `json:"community_code"`
	Street    string          `json:"street_code"`
	District  string          `json:"district_code"`
}

// ObjectCodeError says why an object code does not fit its class.
type ObjectCodeError struct {
	Code, Class, Msg string
}

func (e *ObjectCodeError) Error() string {
	return fmt.Sprintf("object code %q (class %s): %s", geo.Excerpt(e.Code, geo.MaxExcerpt), geo.Excerpt(e.Class, geo.MaxExcerpt), e.Msg)
}

// ValidateObjectCode checks the code's form against its class:
//
//	component   16 digits: district (6) + class (4) + sequence 000001–999999 (GB/T 30428.2, CJ/T 214)
//	building    19 digits: district (6) + 13-digit house number (a project convention; cities differ)
//	enterprise  18-character unified social credit code with a valid check character (GB 32100-2015)
//
// Whether the district digits match where the object lies is checked once
// it is assigned (CodeDistrict).
func ValidateObjectCode(c Class, code string) error {
	bad := func(format string, args ...any) error {
		return &ObjectCodeError{Code: code, Class: c.Code, Msg: fmt.Sprintf(format, args...)}
	}
	switch c.Kind {
	case KindComponent:
		if len(code) != 16 || !digitsOnly.MatchString(code) {
			return bad("a component code has 16 digits (district 6 + class 4 + sequence 6)")
		}
		if err := ValidateCode(District, code[:6], ""); err != nil {
			return bad("digits 1-6 are not a district code: %v", err.(*CodeError).Msg)
		}
		if code[6:10] != c.Code {
			return bad("digits 7-10 (%s) must be the class code %s", code[6:10], c.Code)
		}
		if code[10:] == "000000" {
			return bad("sequence (digits 11-16) starts at 000001")
		}
	case KindBuilding:
		if len(code) != 19 || !digitsOnly.MatchString(code) {
			return bad("a house code has 19 digits (district 6 + house number 13)")
		}
		if err := ValidateCode(District, code[:6], ""); err != nil {
			return bad("digits 1-6 are not a district code: %v", err.(*CodeError).Msg)
		}
	case KindEnterprise:
		if err := ValidateUSCC(code); err != nil {
			return bad("%v", err)
		}
	default:
		return bad("unknown kind %q", c.Kind)
	}
	return nil
}

// CodeDistrict is the district an object's code names ("" when its kind's
// code names none).
func CodeDistrict(c Class, code string) string {
	if (c.Kind == KindComponent || c.Kind == KindBuilding) && len(code) >= 6 {
		return code[:6]
	}
	return ""
}

// usccChars is the alphabet of GB 32100-2015: digits and 21 capitals
// (no I, O, S, V, Z).
const usccChars = "0123456789ABCDEFGHJKLMNPQRTUWXY"

var usccWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// ValidateUSCC checks an 18-character unified social credit code: its
// alphabet, the 6-digit administrative division code in positions 3–8 and
// the check character.
func ValidateUSCC(code string) error {
	if len(code) != 18 {
		return fmt.Errorf("a unified social credit code has 18 characters, this one has %d", len(code))
	}
	sum := 0
	for i := 0; i < 18; i++ {
		v := strings.IndexByte(usccChars, code[i])
		if v < 0 {
			return fmt.Errorf("character %d (%q) is not in the code alphabet %s", i+1, code[i], usccChars)
		}
		if i < 17 {
			sum += v * usccWeights[i]
		}
	}
	if !digitsOnly.MatchString(code[2:8]) {
		return fmt.Errorf("characters 3-8 (%s) must be an administrative division code", code[2:8])
	}
	want := (31 - sum%31) % 31
	if code[17] != usccChars[want] {
		return fmt.Errorf("check character is %c, want %c", code[17], usccChars[want])
	}
	return nil
}

// USCCCheck returns the check character for the first 17 characters of a
// unified social credit code (for generating valid demo codes).
func USCCCheck(first17 string) byte {
	sum := 0
	for i := 0; i < 17; i++ {
		sum += strings.IndexByte(usccChars, first17[i]) * usccWeights[i]
	}
	return usccChars[(31-sum%31)%31]
}
