package auth

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseRole(t *testing.T) {
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "Admin", "root", " viewer", "viewer "} {
		if got, err := ParseRole(s); err == nil || got != "" {
			t.Errorf("ParseRole(%q) = %q, %v; want an error", s, got, err)
		}
	}
}

func TestRolesFor(t *testing.T) {
	for _, tc := range []struct {
		a    Action
		want []Role
	}{
		{Read, []Role{Viewer, Reporter, Dispatcher, Editor, Admin}},
		{Report, []Role{Reporter, Dispatcher, Admin}},
		{Dispatch, []Role{Dispatcher, Admin}},
		{Edit, []Role{Editor, Admin}},
		{Administer, []Role{Admin}},
		{"fly", nil},
	} {
		if got := RolesFor(tc.a); !slices.Equal(got, tc.want) {
			t.Errorf("RolesFor(%s) = %v, want %v", tc.a, got, tc.want)
		}
	}
}

func TestCheckScopes(t *testing.T) {
	for _, tc := range []struct {
		role   Role
		scopes []string
		want   []string
		err    string
	}{
		{Viewer, []string{"440306"}, []string{"440306"}, ""},
		{Editor, []string{"440307001", "440306"}, []string{"440306", "440307001"}, ""},
		{Editor, []string{"440306", "440306"}, []string{"440306"}, ""},
		{Editor, []string{"440306001002", "440306", "440306001"}, []string{"440306"}, ""},
		{Reporter, []string{"440306001002003"}, []string{"440306001002003"}, ""},
		{Dispatcher, []string{"440306", "440307", "440307001"}, []string{"440306", "440307"}, ""},
		{Viewer, []string{"440306", City}, []string{City}, ""},
		{Viewer, []string{City}, []string{City}, ""},
		{Admin, nil, []string{City}, ""},
		{Admin, []string{City, City}, []string{City}, ""},
		{Admin, []string{"440306"}, nil, "an admin holds the whole city"},
		{Viewer, nil, nil, "a viewer needs a scope"},
		{Editor, []string{}, nil, "needs a scope"},
		{Viewer, []string{"4403"}, nil, `scope "4403" is not a unit code`},
		{Viewer, []string{"44030600"}, nil, "not a unit code"},
		{Viewer, []string{"4403060010020030"}, nil, "not a unit code"},
		{Viewer, []string{"44O306"}, nil, "not a unit code"},
		{Viewer, []string{""}, nil, "not a unit code"},
		{Viewer, []string{"٤٤٠٣٠٦"}, nil, "not a unit code"}, // Arabic-Indic digits
		{Viewer, []string{"**"}, nil, "not a unit code"},
		{Viewer, []string{strings.Repeat("x", 100)}, nil, "…"},
	} {
		got, err := CheckScopes(tc.role, tc.scopes)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("CheckScopes(%s, %q) = %q, %v; want an error with %q", tc.role, tc.scopes, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("CheckScopes(%s, %q) = %q, %v; want %q", tc.role, tc.scopes, got, err, tc.want)
		}
	}
}

func TestIdentity(t *testing.T) {
	editor := &Identity{Actor: "oidc:alice", Kind: "oidc", Grants: []Grant{
		{Role: Editor, Scopes: []string{"440306", "440307001"}},
		{Role: Viewer, Scopes: []string{"440308"}},
	}}
	dispatcher := &Identity{Actor: "token:hotline", Kind: "token", Grants: []Grant{{Role: Dispatcher, Scopes: []string{City}}}}
	admin := &Identity{Actor: "token:ops", Kind: "token", Grants: []Grant{{Role: Admin, Scopes: []string{City}}}}
	none := &Identity{Actor: "oidc:nobody", Kind: "oidc"}

	for _, tc := range []struct {
		name  string
		id    *Identity
		a     Action
		units []string
		// denied: "" allowed; "role": no role allows a; "unit": unit out of scope
		denied string
		unit   string // the unit named by a "unit" denial
	}{
		{"editor edits its district", editor, Edit, []string{"440306"}, "", ""},
		{"editor edits a subunit", editor, Edit, []string{"440306001002"}, "", ""},
		{"editor edits its street", editor, Edit, []string{"440307001", "440307001005"}, "", ""},
		{"editor edits nothing in particular", editor, Edit, nil, "", ""},
		{"editor not a sibling street", editor, Edit, []string{"440307002"}, "unit", "440307002"},
		{"editor not the parent", editor, Edit, []string{"440307"}, "unit", "440307"},
		{"editor not a prefix that is not a parent", editor, Edit, []string{"44030"}, "unit", "44030"},
		{"editor the first unit out of scope", editor, Edit, []string{"440306", "440309", "440310"}, "unit", "440309"},
		{"editor not outside every unit", editor, Edit, []string{""}, "unit", ""},
		{"editor reads through the viewer grant", editor, Read, []string{"440308001"}, "", ""},
		{"editor may not edit what it only views", editor, Edit, []string{"440308001"}, "unit", "440308001"},
		{"editor may not dispatch", editor, Dispatch, []string{"440306"}, "role", ""},
		{"editor may not administer", editor, Administer, nil, "role", ""},
		{"dispatcher reports", dispatcher, Report, []string{"440399"}, "", ""},
		{"dispatcher city covers outside every unit", dispatcher, Dispatch, []string{""}, "", ""},
		{"dispatcher may not edit", dispatcher, Edit, []string{"440306"}, "role", ""},
		{"admin everything", admin, Administer, []string{"", "440306"}, "", ""},
		{"admin edits", admin, Edit, []string{"440399001"}, "", ""},
		{"no grants", none, Read, nil, "role", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.id.Need(tc.a, tc.units...)
			var d *Denied
			switch {
			case tc.denied == "":
				if err != nil {
					t.Fatalf("Need = %v", err)
				}
				for _, u := range tc.units {
					if !tc.id.Allows(tc.a, u) {
						t.Errorf("Allows(%s, %q) false", tc.a, u)
					}
				}
				return
			case !errors.As(err, &d):
				t.Fatalf("Need = %v, want a *Denied", err)
			}
			if d.Actor != tc.id.Actor || d.Action != tc.a || !slices.Equal(d.Roles, RolesFor(tc.a)) {
				t.Errorf("denied %+v", d)
			}
			if !strings.Contains(d.Error(), tc.id.Actor) {
				t.Errorf("%q does not name the actor", d.Error())
			}
			if tc.denied == "role" {
				if d.Outside || tc.id.May(tc.a) {
					t.Errorf("denied %+v, May %v; want no role", d, tc.id.May(tc.a))
				}
				return
			}
			if !d.Outside || d.Unit != tc.unit || tc.id.Allows(tc.a, tc.unit) {
				t.Errorf("denied %+v; want unit %q out of scope", d, tc.unit)
			}
			if !slices.Equal(d.Held, tc.id.scopesFor(tc.a)) || len(d.Held) == 0 {
				t.Errorf("held %q", d.Held)
			}
			if tc.unit == "" && !strings.Contains(d.Error(), "outside every grid") {
				t.Errorf("%q does not say outside every unit", d.Error())
			}
		})
	}
}

func TestReadScopes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		grants []Grant
		want   []string // nil: the whole city
		all    bool
	}{
		{"one district", []Grant{{Viewer, []string{"440306"}}}, []string{"440306"}, false},
		{"merged, inner codes dropped", []Grant{
			{Editor, []string{"440307001", "440306"}},
			{Reporter, []string{"440306001", "440305"}},
		}, []string{"440305", "440306", "440307001"}, false},
		{"a city grant reads all", []Grant{{Editor, []string{"440306"}}, {Viewer, []string{City}}}, nil, true},
		{"admin reads all", []Grant{{Admin, []string{City}}}, nil, true},
	} {
		id := &Identity{Actor: "token:t", Kind: "token", Grants: tc.grants}
		got := id.ReadScopes()
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: ReadScopes = %q, want %q", tc.name, got, tc.want)
		}
		if id.ReadsAll() != tc.all {
			t.Errorf("%s: ReadsAll = %v", tc.name, !tc.all)
		}
	}
}

func TestTokens(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, hash := NewToken()
		if !IsToken(tok) || !LooksLikeToken(tok) || LooksLikeJWT(tok) {
			t.Fatalf("NewToken = %q: IsToken %v, LooksLikeToken %v, LooksLikeJWT %v", tok, IsToken(tok), LooksLikeToken(tok), LooksLikeJWT(tok))
		}
		if seen[tok] {
			t.Fatalf("NewToken repeated %q", tok)
		}
		seen[tok] = true
		want := sha256.Sum256([]byte(tok))
		if !bytes.Equal(hash, want[:]) || !bytes.Equal(HashToken(tok), hash) {
			t.Fatalf("hash of %q is not its SHA-256", tok)
		}
	}
	if bytes.Equal(HashToken("gm_a"), HashToken("gm_b")) {
		t.Error("HashToken collides")
	}

	tok, _ := NewToken()
	for _, tc := range []struct {
		s          string
		token, api bool // IsToken, LooksLikeToken
	}{
		{tok, true, true},
		{"gm_" + strings.Repeat("A", 43), true, true},
		{"gm_" + strings.Repeat("-", 42) + "_", true, true},
		{"gm_" + strings.Repeat("A", 42), false, true},
		{"gm_" + strings.Repeat("A", 44), false, true},
		{"gm_" + strings.Repeat("A", 42) + "=", false, true},
		{"gm_" + strings.Repeat("A", 42) + "+", false, true},
		{tok + "\n", false, true},
		{"GM_" + strings.Repeat("A", 43), false, false},
		{strings.Repeat("A", 46), false, false},
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", false, false},
		{"", false, false},
	} {
		if IsToken(tc.s) != tc.token || LooksLikeToken(tc.s) != tc.api {
			t.Errorf("%q: IsToken %v, LooksLikeToken %v; want %v, %v", tc.s, IsToken(tc.s), LooksLikeToken(tc.s), tc.token, tc.api)
		}
	}
}

func TestCheckTokenName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"hotline", true},
		{"ops.nightly_export-2", true},
		{"alice@city", true},
		{"0", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"-lead", false},
		{".hidden", false},
		{"a b", false},
		{"a/b", false},
		{"名字", false},
		{"a\n", false},
	} {
		err := CheckTokenName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckTokenName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	if got := TokenActor("hotline"); got != "token:hotline" {
		t.Errorf("TokenActor = %q", got)
	}
}

func TestCredentialError(t *testing.T) {
	err := error(credentialErr(Expired, "the token expired at %s", "2027-01-01T00:00:00Z"))
	var ce *CredentialError
	if !errors.As(err, &ce) || ce.Reason != Expired || err.Error() != "expired credential: the token expired at 2027-01-01T00:00:00Z" {
		t.Errorf("%v", err)
	}
}
