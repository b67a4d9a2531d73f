// Package auth is who may do what: identities, roles, scopes over the unit
// hierarchy, API tokens and OpenID Connect bearer tokens. It knows no SQL
// and serves no HTTP; the store keeps tokens and the API asks it.
package auth

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Role is what a credential may do, on its scopes.
type Role string

// The roles, from least to most.
const (
	Viewer     Role = "viewer"     // read
	Reporter   Role = "reporter"   // a grid worker: report events, read
	Dispatcher Role = "dispatcher" // move events through the workflow
	Editor     Role = "editor"     // units and objects
	Admin      Role = "admin"      // classes, departments, calendar, layers, tokens, audit; whole city
)

// Roles lists every role, least first.
var Roles = []Role{Viewer, Reporter, Dispatcher, Editor, Admin}

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (one of viewer, reporter, dispatcher, editor, admin)", s)
}

// Action is what a request does, as far as permission goes.
type Action string

// The actions.
const (
	Read       Action = "read"       // any GET, locate, validate
	Report     Action = "report"     // POST /v1/events
	Dispatch   Action = "dispatch"   // an event's transitions
	Edit       Action = "edit"       // units and objects
	Administer Action = "administer" // classes, departments, calendar, layers, tokens, audit
)

// mayDo lists the actions of each role. A dispatcher at a command centre
// also registers hotline calls, so it may report.
var mayDo = map[Role][]Action{
	Viewer:     {Read},
	Reporter:   {Read, Report},
	Dispatcher: {Read, Report, Dispatch},
	Editor:     {Read, Edit},
	Admin:      {Read, Report, Dispatch, Edit, Administer},
}

// May says whether the role allows the action.
func (r Role) May(a Action) bool { return slices.Contains(mayDo[r], a) }

// RolesFor lists the roles that allow an action, least first.
func RolesFor(a Action) []Role {
	var out []Role
	for _, r := range Roles {
		if r.May(a) {
			out = append(out, r)
		}
	}
	return out
}

// City is the scope of the whole city: every unit, and what lies in none
// (unassigned objects).
const City = "*"

// Grant is a role on scopes: unit codes, each covering the unit's subtree
// (a code is a prefix of its descendants' codes), or City.
type Grant struct {
	Role   Role     `json:"role"`
	Scopes []string `json:"scopes"`
}

// covers says whether the grant's scopes hold unit; "" (outside every
// unit) only the city scope holds.
func (g Grant) covers(unit string) bool {
	for _, s := range g.Scopes {
		if s == City || (unit != "" && strings.HasPrefix(unit, s)) {
			return true
		}
	}
	return false
}

// CheckScopes checks the scopes given with a role: unit codes of 6, 9 or
// 12 digits, or a 15-digit grid, or City; an admin holds the whole city.
// It returns them sorted without duplicates or codes inside another.
func CheckScopes(role Role, scopes []string) ([]string, error) {
	if role == Admin {
		for _, s := range scopes {
			if s != City {
				return nil, fmt.Errorf("an admin holds the whole city: scope %q cannot narrow it", s)
			}
		}
		return []string{City}, nil
	}
	if len(scopes) == 0 {
		return nil, fmt.Errorf("a %s needs a scope: unit codes (e.g. 440306,440307001) or %q for the whole city", role, City)
	}
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if s == City {
			return []string{City}, nil
		}
		if !isScopeCode(s) {
			return nil, fmt.Errorf("scope %q is not a unit code (6, 9, 12 or 15 digits) or %q", excerpt(s), City)
		}
		out = append(out, s)
	}
	sort.Strings(out)
	// Sorted, a code inside another follows it (or a run of them does).
	kept := out[:0]
	for _, s := range out {
		if len(kept) > 0 && strings.HasPrefix(s, kept[len(kept)-1]) {
			continue
		}
		kept = append(kept, s)
	}
	return kept, nil
}

func isScopeCode(s string) bool {
	switch len(s) {
	case 6, 9, 12, 15:
	default:
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func excerpt(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Identity is who a request comes from: an API token or the subject of an
// OpenID Connect token, with its grants.
type Identity struct {
	// Actor is what every log records: "token:<name>" or "oidc:<user>".
	Actor string
	// Kind is "token" or "oidc".
	Kind   string
	Grants []Grant
	// Expires is when the credential ends (zero: never).
	Expires time.Time
	// Person is the person (grid worker, supervisor, handler) the
	// credential speaks for; 0 when it names none.
	Person int64
	// Subject is an OIDC token's sub claim (what a person's oidc_subject
	// matches); "" for a token.
	Subject string
}

// May says whether some grant allows the action somewhere.
func (id *Identity) May(a Action) bool {
	for _, g := range id.Grants {
		if g.Role.May(a) {
			return true
		}
	}
	return false
}

// Allows says whether a grant allowing the action covers unit ("" being
// outside every unit).
func (id *Identity) Allows(a Action, unit string) bool {
	for _, g := range id.Grants {
		if g.Role.May(a) && g.covers(unit) {
			return true
		}
	}
	return false
}

// Need checks that the identity may do a on every unit: the first unit it
// may not is a *Denied.
func (id *Identity) Need(a Action, units ...string) error {
	if !id.May(a) {
		return &Denied{Actor: id.Actor, Action: a, Roles: RolesFor(a)}
	}
	for _, u := range units {
		if !id.Allows(a, u) {
			return &Denied{Actor: id.Actor, Action: a, Roles: RolesFor(a), Unit: u, Outside: true, Held: id.scopesFor(a)}
		}
	}
	return nil
}

// ReadScopes is what the identity may read: nil for the whole city, else
// the unit codes whose subtrees it may (never empty: every role reads).
func (id *Identity) ReadScopes() []string {
	var out []string
	for _, g := range id.Grants {
		if !g.Role.May(Read) {
			continue
		}
		for _, s := range g.Scopes {
			if s == City {
				return nil
			}
			out = append(out, s)
		}
	}
	out, _ = CheckScopes(Viewer, out)
	return out
}

// ReadsAll says whether the identity may read the whole city.
func (id *Identity) ReadsAll() bool { return id.Allows(Read, "") }

// scopesFor lists the scopes on which the identity may do a.
func (id *Identity) scopesFor(a Action) []string {
	var out []string
	for _, g := range id.Grants {
		if g.Role.May(a) {
			out = append(out, g.Scopes...)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Denied is a refused permission: the identity holds no role that allows
// the action (Outside false), or none whose scope covers Unit.
type Denied struct {
	Actor   string
	Action  Action
	Roles   []Role // the roles that allow the action
	Unit    string // the unit out of scope ("" with Outside: outside every unit)
	Outside bool
	Held    []string // the scopes the identity holds for the action
}

func (d *Denied) Error() string {
	roles := make([]string, len(d.Roles))
	for i, r := range d.Roles {
		roles[i] = string(r)
	}
	need := strings.Join(roles, " or ")
	if !d.Outside {
		return fmt.Sprintf("%s needs the role %s; %s holds none of them", d.Action, need, d.Actor)
	}
	what := "unit " + d.Unit
	if d.Unit == "" {
		what = "the whole city or a place outside every grid (only a whole-city scope covers them)"
	}
	return fmt.Sprintf("%s of %s needs %s on a scope covering it; %s holds it on %s", d.Action, what, need, d.Actor, strings.Join(d.Held, ", "))
}
