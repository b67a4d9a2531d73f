package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
)

// OIDCConfig is the identity provider a city's users sign in with
// (Keycloak and the like), and how its tokens' claims map to grants.
type OIDCConfig struct {
	// Issuer is the iss every token must carry, exactly (an http or https
	// URL). Required.
	Issuer string
	// Audience must be among the token's aud. Required. (Keycloak puts
	// only "account" in an access token's aud unless an audience mapper
	// adds the client.)
	Audience string
	// JWKSURL is where the provider publishes its keys. Empty: the
	// jwks_uri of the issuer's discovery document
	// (<issuer>/.well-known/openid-configuration), fetched on the first
	// token to verify and again after a failure, never at construction, so
	// that the server starts while the provider is down.
	JWKSURL string
	// UserClaim names the user: default "preferred_username"; "sub" when
	// the token lacks it.
	UserClaim string
	// RolesClaim is a dot path into the claims, default "roles"; Keycloak
	// realm roles are "realm_access.roles". A claim name that itself holds
	// dots (a namespaced claim such as "https://city.example/roles") is
	// taken whole when the claims have it.
	RolesClaim string
	// UnitsClaim is a dot path, default "units": unit codes, as an array
	// of strings or one comma-separated string.
	UnitsClaim string
	// RoleMap maps the provider's role names to gridmap roles; only the
	// names it lists count. Nil: the gridmap role names themselves.
	RoleMap map[string]Role
	// Algorithms the tokens may be signed with: default RS256 and ES256.
	// Only asymmetric algorithms are accepted (never none nor HS*).
	Algorithms []string
	// Client fetches the discovery document and the keys; nil: a client
	// with a 10 s timeout.
	Client *http.Client
}

// The defaults of OIDCConfig.
const (
	DefaultUserClaim  = "preferred_username"
	DefaultRolesClaim = "roles"
	DefaultUnitsClaim = "units"
)

// DefaultAlgorithms are the signing algorithms accepted when
// OIDCConfig.Algorithms is empty.
var DefaultAlgorithms = []string{"RS256", "ES256"}

// asymmetric lists the JOSE signature algorithms a key set can verify.
var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// symmetric are JOSE algorithm names refused by name (so that a client
// is told which it used; any other name is not echoed).
var symmetric = []string{"none", "HS256", "HS384", "HS512"}

const (
	// oidcSkew is the clock skew allowed on nbf.
	oidcSkew = time.Minute
	// maxJWT bounds a bearer JWT (Keycloak's run to a few kB).
	maxJWT = 32 << 10
	// discoveryRetry is how long a failed discovery is answered from
	// memory before the provider is asked again.
	discoveryRetry = 5 * time.Second
	// maxActor bounds the user claim (it goes into every log).
	maxActor = 128
)

// OIDC verifies bearer JWTs from one identity provider. It is safe for
// concurrent use; keys are cached and refetched when a token names a key
// ID the cache lacks (key rotation).
type OIDC struct {
	cfg      OIDCConfig
	verifier *oidc.IDTokenVerifier
	keys     atomic.Pointer[oidc.RemoteKeySet] // nil until discovery succeeds
	sem      chan struct{}                     // one discovery at a time
	lastErr  error                             // the last discovery failure (under sem)
	lastTry  time.Time                         // when it was (under sem)
	now      func() time.Time
	retry    time.Duration
}

// NewOIDC checks the configuration and returns a verifier. It makes no
// request: without JWKSURL, discovery happens on the first Verify.
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	if err := checkHTTPURL("issuer", cfg.Issuer); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Audience) == "" {
		return nil, errors.New("oidc: an audience is required (the client ID the tokens are issued for)")
	}
	if cfg.JWKSURL != "" {
		if err := checkHTTPURL("JWKS URL", cfg.JWKSURL); err != nil {
			return nil, err
		}
	}
	for _, c := range []struct {
		name string
		path *string
		def  string
	}{{"user", &cfg.UserClaim, DefaultUserClaim}, {"roles", &cfg.RolesClaim, DefaultRolesClaim}, {"units", &cfg.UnitsClaim, DefaultUnitsClaim}} {
		if *c.path == "" {
			*c.path = c.def
		}
		if slices.Contains(strings.Split(*c.path, "."), "") {
			return nil, fmt.Errorf("oidc: %s claim %q: a dot path of non-empty claim names", c.name, *c.path)
		}
	}
	if cfg.RoleMap != nil {
		m := make(map[string]Role, len(cfg.RoleMap))
		for k, r := range cfg.RoleMap {
			if k == "" {
				return nil, errors.New("oidc: role map: an empty provider role name")
			}
			if _, err := ParseRole(string(r)); err != nil {
				return nil, fmt.Errorf("oidc: role map: %s: %v", k, err)
			}
			m[k] = r
		}
		cfg.RoleMap = m // a copy: the caller's map may change
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms
	}
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	for _, a := range cfg.Algorithms {
		if !slices.Contains(asymmetric, a) {
			return nil, fmt.Errorf("oidc: signing algorithm %q not accepted: one of %s (a key set holds public keys; none and HS* are refused)", a, strings.Join(asymmetric, ", "))
		}
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	o := &OIDC{cfg: cfg, sem: make(chan struct{}, 1), now: time.Now, retry: discoveryRetry}
	if cfg.JWKSURL != "" {
		o.keys.Store(oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), cfg.Client), cfg.JWKSURL))
	}
	o.verifier = oidc.NewVerifier(cfg.Issuer, keySet{o}, &oidc.Config{
		ClientID:             cfg.Audience,
		SupportedSigningAlgs: cfg.Algorithms,
		Now:                  func() time.Time { return o.now() },
	})
	return o, nil
}

func checkHTTPURL(what, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("oidc: %s %q: an absolute http or https URL is required", what, s)
	}
	return nil
}

// Verify checks a bearer JWT: its form, its algorithm, its signature
// against the provider's keys, issuer, audience, exp and nbf; and maps its
// claims to an identity. A token that proves nothing is a
// *CredentialError; keys that cannot be fetched (the provider unreachable
// or misconfigured) are another error, which is the server's trouble and
// not the client's.
func (o *OIDC) Verify(ctx context.Context, raw string) (*Identity, error) {
	if err := o.precheck(raw); err != nil {
		return nil, err
	}
	st := &verifyState{}
	tok, err := o.verifier.Verify(context.WithValue(ctx, stateKey{}, st), raw)
	switch {
	case err == nil:
	case st.keyErr != nil:
		return nil, fmt.Errorf("oidc: the keys of %s are unavailable: %w", o.cfg.Issuer, st.keyErr)
	case st.sigErr != nil:
		return nil, credentialErr(Signature, "the token's signature does not verify against the keys of %s (signed by another key, or one it no longer publishes)", o.cfg.Issuer)
	case st.payload == nil:
		// The library refused it before asking for keys: not a JWS it reads.
		return nil, credentialErr(Malformed, "the token is not a signed JWT in compact form")
	default:
		// Signed by the provider, so its claims can be trusted to say what
		// is wrong with them.
		if cerr := o.checkClaims(st.payload); cerr != nil {
			return nil, cerr
		}
		var exp *oidc.TokenExpiredError
		if errors.As(err, &exp) {
			return nil, credentialErr(Expired, "the token expired at %s", exp.Expiry.UTC().Format(time.RFC3339))
		}
		return nil, credentialErr(Malformed, "the token's claims are not valid ID or access token claims")
	}
	// The library allows 5 min on nbf; this server 1 min.
	if cerr := o.checkClaims(st.payload); cerr != nil {
		return nil, cerr
	}
	claims, err := decodeClaims(st.payload)
	if err != nil {
		return nil, credentialErr(Malformed, "the token's claims are not a JSON object")
	}
	return o.identity(claims, tok.Expiry)
}

// precheck refuses what is not a JWT, and algorithms not accepted, before
// any key is looked at.
func (o *OIDC) precheck(raw string) *CredentialError {
	if len(raw) > maxJWT {
		return credentialErr(Malformed, "the token is longer than %d bytes", maxJWT)
	}
	if !LooksLikeJWT(raw) {
		return credentialErr(Malformed, "not a JWT: three base64url segments separated by dots are expected")
	}
	parts := strings.SplitN(raw, ".", 3)
	var header struct {
		Alg *string `json:"alg"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || !isObject(b) || json.Unmarshal(b, &header) != nil || header.Alg == nil {
		return credentialErr(Malformed, "the JWT header is not a base64url JSON object with an alg")
	}
	if alg := *header.Alg; !slices.Contains(o.cfg.Algorithms, alg) {
		accepted := strings.Join(o.cfg.Algorithms, ", ")
		switch {
		case alg == "none":
			return credentialErr(Signature, "the token is unsigned (alg none); tokens signed with %s are accepted", accepted)
		case slices.Contains(symmetric, alg), slices.Contains(asymmetric, alg):
			return credentialErr(Signature, "the token is signed with %s; tokens signed with %s are accepted", alg, accepted)
		default:
			return credentialErr(Signature, "the token's alg is not a signature algorithm accepted here (%s)", accepted)
		}
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || !isObject(b) || !json.Valid(b) {
		return credentialErr(Malformed, "the JWT payload is not a base64url JSON object")
	}
	return nil
}

func isObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// checkClaims checks the signed claims: issuer, audience, exp, nbf, in
// that order (the library's, nbf with this server's skew).
func (o *OIDC) checkClaims(payload []byte) *CredentialError {
	var c struct {
		Iss *string         `json:"iss"`
		Aud json.RawMessage `json:"aud"`
		Exp *json.Number    `json:"exp"`
		Nbf *json.Number    `json:"nbf"`
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	if err := d.Decode(&c); err != nil {
		return credentialErr(Malformed, "the token's registered claims (iss, aud, exp, nbf) are not of the JWT types")
	}
	if c.Iss == nil || *c.Iss != o.cfg.Issuer {
		return credentialErr(Issuer, "the token is not issued by %s", o.cfg.Issuer)
	}
	var auds []string
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		auds = []string{one}
	} else if json.Unmarshal(c.Aud, &auds) != nil {
		auds = nil
	}
	if !slices.Contains(auds, o.cfg.Audience) {
		return credentialErr(Audience, "the token is not issued for the audience %s", o.cfg.Audience)
	}
	now := o.now()
	if c.Exp == nil {
		return credentialErr(Expired, "the token carries no expiry (exp)")
	}
	exp, ok := numericDate(*c.Exp)
	if !ok {
		return credentialErr(Malformed, "the token's exp is not a NumericDate")
	}
	if exp.Before(now) {
		return credentialErr(Expired, "the token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if c.Nbf != nil {
		nbf, ok := numericDate(*c.Nbf)
		if !ok {
			return credentialErr(Malformed, "the token's nbf is not a NumericDate")
		}
		if nbf.After(now.Add(oidcSkew)) {
			return credentialErr(Expired, "the token is not valid before %s (nbf), and the server's clock says %s", nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

func numericDate(n json.Number) (time.Time, bool) {
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

func decodeClaims(payload []byte) (map[string]any, error) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	if err := d.Decode(&m); err != nil || m == nil {
		return nil, errors.New("not an object")
	}
	return m, nil
}

// lookup follows a dot path into the claims; a claim named by the whole
// path (dots and all) comes first.
func lookup(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	var cur any = claims
	for _, name := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[name]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// stringList reads a claim as strings: an array (ok false if an item is
// not a string) or one comma-separated string; blanks are dropped.
func stringList(v any) (out []string, ok bool) {
	add := func(s string) {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	switch v := v.(type) {
	case nil:
		return nil, true
	case string:
		add(v)
		return out, true
	case []any:
		ok = true
		for _, x := range v {
			s, isStr := x.(string)
			if !isStr {
				ok = false
				continue
			}
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, ok
	}
	return nil, false
}

// identity maps verified claims to an identity.
func (o *OIDC) identity(claims map[string]any, exp time.Time) (*Identity, error) {
	user, cerr := o.user(claims)
	if cerr != nil {
		return nil, cerr
	}
	grants, cerr := o.grants(claims)
	if cerr != nil {
		return nil, cerr
	}
	// The user claim may be a name that changes (preferred_username); sub
	// is the provider's stable key of the account, so a person maps to it.
	sub, _ := claims["sub"].(string)
	return &Identity{Actor: "oidc:" + user, Kind: "oidc", Grants: grants, Expires: exp, Subject: sub}, nil
}

func (o *OIDC) user(claims map[string]any) (string, *CredentialError) {
	for _, name := range []string{o.cfg.UserClaim, "sub"} {
		v, _ := lookup(claims, name)
		s, _ := v.(string)
		if s == "" {
			continue
		}
		if len(s) > maxActor || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
			return "", credentialErr(Malformed, "the token's %s claim is not a user name (at most %d characters, no control characters)", name, maxActor)
		}
		return s, nil
	}
	return "", credentialErr(Malformed, "the token names no user: neither a %s nor a sub claim", o.cfg.UserClaim)
}

// role maps one value of the roles claim: the role, the scope given with
// it (scoped: the value was "<role>@<scope>") and whether it is a gridmap
// role at all. A value the role map (or the role names) holds whole is a
// bare role, even with an '@' in it.
func (o *OIDC) role(v string) (role Role, scope string, scoped, ok bool) {
	if r, known := o.mapRole(v); known {
		return r, "", false, true
	}
	i := strings.LastIndexByte(v, '@')
	if i < 0 {
		return "", "", false, false
	}
	role, ok = o.mapRole(v[:i])
	return role, v[i+1:], true, ok
}

func (o *OIDC) mapRole(name string) (Role, bool) {
	if o.cfg.RoleMap != nil {
		r, ok := o.cfg.RoleMap[name]
		return r, ok
	}
	r, err := ParseRole(name)
	return r, err == nil
}

func (o *OIDC) grants(claims map[string]any) ([]Grant, *CredentialError) {
	rv, _ := lookup(claims, o.cfg.RolesClaim)
	values, ok := stringList(rv)
	if !ok && len(values) == 0 {
		return nil, credentialErr(NoGrant, "the token's roles claim %s is not a list of strings", o.cfg.RolesClaim)
	}
	scopes := map[Role][]string{}
	var bare []Role // non-admin roles given without a scope
	for _, v := range values {
		r, scope, scoped, ok := o.role(v)
		switch {
		case !ok: // a role of the provider's unrelated to gridmap
			continue
		case scoped:
			if _, err := CheckScopes(r, []string{scope}); err != nil {
				return nil, credentialErr(NoGrant, "the token's roles claim %s: the value %q: %v", o.cfg.RolesClaim, excerpt(v), err)
			}
			scopes[r] = append(scopes[r], scope)
		case r == Admin:
			scopes[Admin] = append(scopes[Admin], City)
		default:
			if !slices.Contains(bare, r) {
				bare = append(bare, r)
			}
		}
	}
	if len(bare) > 0 {
		uv, _ := lookup(claims, o.cfg.UnitsClaim)
		units, ok := stringList(uv)
		if !ok {
			return nil, credentialErr(NoGrant, "the token's units claim %s is not a list of unit codes (strings)", o.cfg.UnitsClaim)
		}
		for _, u := range units {
			if _, err := CheckScopes(Viewer, []string{u}); err != nil {
				return nil, credentialErr(NoGrant, "the token's units claim %s: %v", o.cfg.UnitsClaim, err)
			}
		}
		if len(units) > 0 {
			for _, r := range bare {
				scopes[r] = append(scopes[r], units...)
			}
		}
	}
	var grants []Grant
	for _, r := range Roles {
		if len(scopes[r]) == 0 {
			continue
		}
		s, err := CheckScopes(r, scopes[r])
		if err != nil { // each scope was checked above
			return nil, credentialErr(NoGrant, "the token's role %s: %v", r, err)
		}
		grants = append(grants, Grant{Role: r, Scopes: s})
	}
	if len(grants) == 0 {
		return nil, o.noGrant(bare)
	}
	return grants, nil
}

func (o *OIDC) noGrant(bare []Role) *CredentialError {
	var names []string
	if o.cfg.RoleMap == nil {
		for _, r := range Roles {
			names = append(names, string(r))
		}
	} else {
		for k := range o.cfg.RoleMap {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	d := fmt.Sprintf("the token's claims give no gridmap role: expected roles claim %s with values %s (or <role>@<unit code>)", o.cfg.RolesClaim, strings.Join(names, ", "))
	if len(bare) > 0 {
		rs := make([]string, len(bare))
		for i, r := range bare {
			rs[i] = string(r)
		}
		d += fmt.Sprintf("; the role %s needs unit codes in the units claim %s, which the token lacks", strings.Join(rs, ", "), o.cfg.UnitsClaim)
	}
	return &CredentialError{Reason: NoGrant, Detail: d}
}

// verifyState is what the key set learnt during one Verify: the library
// wraps its errors with %v, so their kind is carried past it here.
type verifyState struct {
	payload []byte // the signature verified: the signed payload
	sigErr  error  // the signature did not verify against any key
	keyErr  error  // the keys could not be had (discovery or JWKS)
}

type stateKey struct{}

// keySet is the provider's remote key set, found by discovery on first use.
type keySet struct{ o *OIDC }

func (k keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	st, _ := ctx.Value(stateKey{}).(*verifyState)
	if st == nil {
		st = &verifyState{}
	}
	ks, err := k.o.keySet(ctx)
	if err != nil {
		st.keyErr = err
		return nil, err
	}
	payload, err := ks.VerifySignature(ctx, jwt)
	switch {
	case err == nil:
		st.payload = payload
	case fetchFailed(err):
		st.keyErr = err
	default:
		st.sigErr = err
	}
	return payload, err
}

// fetchFailed tells RemoteKeySet's failure to fetch the keys ("fetching
// keys %w", go-oidc v3.21.0 jwks.go) from a signature no key verifies
// (errors.New("failed to verify id token signature")): the one wraps a
// cause, the other does not.
func fetchFailed(err error) bool {
	return errors.Unwrap(err) != nil || strings.HasPrefix(err.Error(), "fetching keys")
}

// keySet returns the remote key set, running discovery if it has not
// succeeded yet; a failure is remembered for o.retry.
func (o *OIDC) keySet(ctx context.Context) (*oidc.RemoteKeySet, error) {
	if ks := o.keys.Load(); ks != nil {
		return ks, nil
	}
	select {
	case o.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-o.sem }()
	if ks := o.keys.Load(); ks != nil {
		return ks, nil
	}
	if o.lastErr != nil && o.now().Before(o.lastTry.Add(o.retry)) {
		return nil, o.lastErr
	}
	jwks, err := o.discover(ctx)
	if err != nil {
		if ctx.Err() == nil { // not the caller giving up
			o.lastErr, o.lastTry = err, o.now()
		}
		return nil, err
	}
	ks := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), o.cfg.Client), jwks)
	o.keys.Store(ks)
	o.lastErr = nil
	return ks, nil
}

func (o *OIDC) discover(ctx context.Context) (string, error) {
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.cfg.Client), o.cfg.Issuer)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var doc struct {
		JWKS string `json:"jwks_uri"`
	}
	if err := p.Claims(&doc); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if err := checkHTTPURL("discovered jwks_uri", doc.JWKS); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	return doc.JWKS, nil
}

// ParseRoleMap reads "provider-role=gridmap-role,..." (e.g.
// "gm-admin=admin,gm-editor=editor"); blanks around items are ignored.
// The empty string is a nil map: the gridmap role names themselves.
func ParseRoleMap(s string) (map[string]Role, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	m := map[string]Role{}
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		k, v, found := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case item == "":
			return nil, fmt.Errorf("role map: item %d is empty (items are provider-role=gridmap-role, separated by commas)", i+1)
		case !found:
			return nil, fmt.Errorf("role map: item %q: provider-role=gridmap-role expected", excerpt(item))
		case k == "":
			return nil, fmt.Errorf("role map: item %q: no provider role before '='", excerpt(item))
		}
		r, err := ParseRole(v)
		if err != nil {
			return nil, fmt.Errorf("role map: item %q: %v", excerpt(item), err)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("role map: provider role %q given twice", excerpt(k))
		}
		m[k] = r
	}
	return m, nil
}

// LooksLikeJWT says whether a bearer credential has the form of a JWT
// (JWS compact serialization): three base64url segments separated by
// dots, the first two non-empty. The third may be empty, so that an
// unsigned token (alg none) is refused as such rather than as malformed.
func LooksLikeJWT(s string) bool {
	// On every request that carries a JWT: no allocation.
	dots, segStart := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if i == segStart && dots < 2 { // header and payload are never empty
				return false
			}
			dots++
			segStart = i + 1
		case !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'):
			return false
		}
	}
	return dots == 2
}
