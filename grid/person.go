package grid

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"gridmap/geo"
)

// PersonRole is what a person does in the closed loop (issue 16).
type PersonRole string

const (
	RoleWorker     PersonRole = "worker"     // 网格员: patrols a grid, reports, verifies
	RoleSupervisor PersonRole = "supervisor" // 督导: oversees a community or street, approves extensions
	RoleHandler    PersonRole = "handler"    // 处置人员: acts for a department on the events dispatched to it
)

// PersonRoles lists every role.
var PersonRoles = []PersonRole{RoleWorker, RoleSupervisor, RoleHandler}

// PersonStatus says whether a person takes work: an inactive person keeps
// their history but is given no grid and no task.
type PersonStatus string

const (
	PersonActive   PersonStatus = "active"
	PersonInactive PersonStatus = "inactive"
)

// Person is a grid worker, supervisor or handler as the API writes them.
type Person struct {
	Name       string       `json:"name"`
	Phone      string       `json:"phone,omitempty"`
	Role       PersonRole   `json:"role"`
	Department string       `json:"department,omitempty"`
	UnitCode   string       `json:"unit_code,omitempty"`
	Status     PersonStatus `json:"status"`
	// OIDCSubject is the sub claim of the person's sign-in at the city's
	// identity provider: a JWT carrying it speaks for the person. Shown
	// and set by admins only.
	OIDCSubject string `json:"oidc_subject,omitempty"`
}

// MaxOIDCSubject bounds a person's OIDC subject: OpenID Connect Core §2
// allows a sub of at most 255 ASCII characters.
const MaxOIDCSubject = 255

var phonePattern = regexp.MustCompile(`^\+?[0-9][0-9-]{4,23}$`)

// PersonError is a member of a person that breaks a rule: Field names it.
type PersonError struct{ Field, Msg string }

func (e *PersonError) Error() string { return e.Field + ": " + e.Msg }

// Normalize trims the text members and gives an empty status its default.
func (p *Person) Normalize() {
	p.Name = strings.TrimSpace(p.Name)
	p.Phone = strings.TrimSpace(p.Phone)
	p.Department = strings.TrimSpace(p.Department)
	p.UnitCode = strings.TrimSpace(p.UnitCode)
	p.OIDCSubject = strings.TrimSpace(p.OIDCSubject)
	if p.Status == "" {
		p.Status = PersonActive
	}
}

// Validate checks a normalized person; the error is a *PersonError.
func (p *Person) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &PersonError{Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case p.Name == "":
		return bad("name", "a person needs a name")
	case utf8.RuneCountInString(p.Name) > 100:
		return bad("name", "at most 100 characters")
	case p.Phone != "" && !phonePattern.MatchString(p.Phone):
		return bad("phone", "%q is not a phone number (digits and -, optional leading +, 5–24 characters)", geo.Excerpt(p.Phone, geo.MaxExcerpt))
	case len(p.OIDCSubject) > MaxOIDCSubject || !utf8.ValidString(p.OIDCSubject) || strings.ContainsFunc(p.OIDCSubject, unicode.IsControl):
		return bad("oidc_subject", "an OpenID Connect subject (the sub claim) is at most %d bytes of text without control characters", MaxOIDCSubject)
	}
	switch p.Role {
	case RoleWorker, RoleSupervisor, RoleHandler:
	default:
		return bad("role", "unknown role %q: use one of %s", geo.Excerpt(string(p.Role), geo.MaxExcerpt), joinNames(PersonRoles))
	}
	switch p.Status {
	case PersonActive, PersonInactive:
	default:
		return bad("status", "unknown status %q: use active or inactive", geo.Excerpt(string(p.Status), geo.MaxExcerpt))
	}
	if p.Department != "" && !ValidDepartmentCode(p.Department) {
		return bad("department", "department code %q: 1–32 letters, digits, _ or -", geo.Excerpt(p.Department, geo.MaxExcerpt))
	}
	if p.Role == RoleHandler && p.Department == "" {
		return bad("department", "a handler acts for a department: name it")
	}
	if p.UnitCode != "" {
		if _, err := LevelOfCode(p.UnitCode); err != nil {
			return bad("unit_code", "%v", err)
		}
	}
	return nil
}

// MaskPhone hides the middle of a phone number (138****1234), as it is
// shown to everyone but admins: the first three and last four digits stay.
func MaskPhone(phone string) string {
	if phone == "" {
		return ""
	}
	r := []rune(phone)
	if len(r) <= 7 {
		return strings.Repeat("*", len(r)-2) + string(r[len(r)-2:])
	}
	return string(r[:3]) + strings.Repeat("*", len(r)-7) + string(r[len(r)-4:])
}

// LevelOfCode is the level a code's length names, with the code checked
// against it.
func LevelOfCode(code string) (Level, error) {
	for _, l := range Levels {
		if len(code) == l.CodeLen() {
			return l, ValidateCode(l, code, "")
		}
	}
	return "", fmt.Errorf("code %q: a unit code has 6, 9, 12 or 15 digits", geo.Excerpt(code, geo.MaxExcerpt))
}
