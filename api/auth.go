package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"gridmap/auth"
	"gridmap/data"
)

// Who may do what (docs/api.md, Access). Every request's credential is
// read by authenticate, for every matched route but the public ones (the
// probes, metrics and pages, which no identity changes, and whose answer
// must not depend on the database that checks a token): a bad one is a
// 401 even on a read that needs none (a credential that proves nothing is
// never ignored). Reads need one unless Options.PublicRead; writes always need
// one, with a role that may do them, and every unit they touch inside the
// scope of such a role (handleWrite, checked in the writing transaction
// through data.Guard). The identity is the actor of every log; the audit
// log keeps every write.

// Problem types of access control.
const (
	probUnauthorized = "https://gridmap.dev/problems/unauthorized" // 401
	probForbidden    = "https://gridmap.dev/problems/forbidden"    // 403
	probRateLimited  = "https://gridmap.dev/problems/rate-limited" // 429 of a credential's writes
)

// publicRoutes need no credential ever: the probes, the metrics, the
// OpenAPI contract, and the pages and their assets, which must load to let
// a person sign in. The contract marks them `security: []`
// (TestContractCoversRoutes holds the two to each other).
var publicRoutes = map[string]bool{
	"/healthz": true, "/readyz": true, "/metrics": true, "/openapi.json": true, "/openapi.yaml": true,
	"/": true, "/editor": true, "/static/{file}": true, "/districts": true, "/fonts/{fontstack}/{range}.pbf": true,
}

type identityKey struct{}

// credentialErrKey holds, for a write route, why the credential was
// refused (authenticate leaves the answer to authorize).
type credentialErrKey struct{}

// identityOf is the identity a request proved, or nil.
func identityOf(r *http.Request) *auth.Identity {
	id, _ := r.Context().Value(identityKey{}).(*auth.Identity)
	return id
}

// authenticate is the router middleware that reads the credential.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if publicRoutes[routeTemplate(r)] {
			next.ServeHTTP(w, r)
			return
		}
		id, err := s.identify(r)
		write := isWriteRoute(r)
		if err != nil && write {
			// A write route refuses it itself (authorize), inside audited:
			// the audit log keeps every attempt to write, those without a
			// valid credential too, which were refused here unrecorded.
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), credentialErrKey{}, err)))
			return
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if id == nil && !s.opts.PublicRead && !write {
			s.writeError(w, r, unauthorized(auth.Missing, "this server needs a credential to read: send Authorization: Bearer <token> (an API token or an OpenID Connect token)"))
			return
		}
		if id != nil {
			r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		}
		next.ServeHTTP(w, r)
	})
}

func routeTemplate(r *http.Request) string {
	if route := mux.CurrentRoute(r); route != nil {
		if t, err := route.GetPathTemplate(); err == nil {
			return t
		}
	}
	return ""
}

// identify reads the Authorization header: nil without one.
func (s *Server) identify(r *http.Request) (*auth.Identity, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return nil, nil
	}
	if len(vals) > 1 {
		return nil, unauthorized(auth.Malformed, "send one Authorization header, not several")
	}
	scheme, cred, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, unauthorized(auth.Malformed, `the Authorization header must be "Bearer <token>"; this server takes no other scheme`)
	}
	cred = strings.TrimSpace(cred)
	switch {
	case auth.LooksLikeToken(cred):
		return s.tokens.identify(r.Context(), cred, func() error {
			// A token this server has not heard of costs a query: at most
			// so many a second from one address, so that guessing (or a
			// flood of made-up tokens) cannot load the database.
			if err := s.unknownTokens.allow("unknown-token@"+clientHost(r), unknownTokenRate, unknownTokenBurst); err != nil {
				return unauthorizedBusy()
			}
			return nil
		})
	case s.opts.OIDC != nil && auth.LooksLikeJWT(cred):
		id, err := s.jwts.identify(r.Context(), s.opts.OIDC, cred)
		if err != nil && !errors.As(err, new(*Problem)) {
			s.log.Warn("identity provider unavailable", "err", err)
			return nil, &Problem{Type: probUnavailable, Title: "Identity provider unavailable", Status: http.StatusServiceUnavailable,
				Detail: "the identity provider's keys could not be fetched to check the token; try again", RetryAfter: 5 * time.Second}
		}
		if err != nil {
			return nil, err
		}
		return s.withPerson(r.Context(), id), nil
	case auth.LooksLikeJWT(cred):
		return nil, unauthorized(auth.NoOIDC, "this server trusts no OpenID Connect provider: use an API token")
	}
	return nil, unauthorized(auth.Malformed, "the bearer credential is neither an API token (gm_…) nor a JWT")
}

// withPerson sets the person an OIDC identity speaks for: the active
// person whose oidc_subject is the token's sub. It is looked up on every
// request, not kept with the cached JWT, so that a person made inactive or
// given another subject stops matching at once, on every server, without
// a cache to invalidate (one lookup on a unique index). The cached
// identity is shared, so the person goes on a copy. When the database
// cannot answer the identity names no person: what needs none (locate,
// cached tiles) keeps working, and what needs one needs the database too.
func (s *Server) withPerson(ctx context.Context, id *auth.Identity) *auth.Identity {
	if id == nil || id.Subject == "" {
		return id
	}
	pid, err := s.store.PersonBySubject(ctx, id.Subject)
	if err != nil {
		s.log.Warn("person of an OIDC subject", "actor", id.Actor, "err", err)
		return id
	}
	if pid == 0 {
		return id
	}
	c := *id
	c.Person = pid
	return &c
}

// unauthorized is a 401 saying why, with the RFC 6750 challenge.
func unauthorized(reason, detail string) *Problem {
	return &Problem{Type: probUnauthorized, Title: "Unauthorized", Status: http.StatusUnauthorized, Detail: detail,
		Extensions: map[string]any{"reason": reason}}
}

// challenge is the WWW-Authenticate of a 401 (RFC 6750 §3).
func challenge(p *Problem) string {
	if p.Extensions["reason"] == auth.Missing {
		return `Bearer realm="gridmap"`
	}
	desc := strings.Map(func(c rune) rune {
		if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
			return '\''
		}
		return c
	}, p.Detail)
	return `Bearer realm="gridmap", error="invalid_token", error_description="` + desc + `"`
}

func credentialProblem(e *auth.CredentialError) *Problem {
	return unauthorized(e.Reason, e.Detail)
}

func forbidden(d *auth.Denied) *Problem {
	roles := make([]string, len(d.Roles))
	for i, r := range d.Roles {
		roles[i] = string(r)
	}
	ext := map[string]any{"action": d.Action, "roles": roles}
	if d.Outside {
		ext["unit"] = d.Unit
	}
	return &Problem{Type: probForbidden, Title: "Forbidden", Status: http.StatusForbidden, Detail: d.Error(), Extensions: ext}
}

// The rate of lookups of unknown tokens one client address may cause.
const (
	unknownTokenRate  = 5
	unknownTokenBurst = 20
)

func unauthorizedBusy() *Problem {
	return &Problem{Type: probRateLimited, Title: "Too many unknown credentials", Status: http.StatusTooManyRequests,
		Detail: "this address sent too many API tokens this server does not know; wait and use a valid one", RetryAfter: 5 * time.Second}
}

// tokenCache keeps the API tokens of the store in memory, reloaded on
// every notice of a change (TokensChannel), so that checking a token costs
// a map lookup and a revocation holds on every server at once. While no
// listener follows the channel (before it starts, or while its connection
// is lost) every lookup asks the database; when the database cannot
// answer either, the last set loaded decides, so that what needs no
// database (locate, cached tiles) keeps working for known credentials: a
// revocation needs the database too, so none can have been missed but
// one whose notice was lost with the connection, and the reload when the
// listener is back catches that.
type tokenCache struct {
	store *data.Store
	// reloading serialises reloads: two overlapping ones (a notice's and a
	// revoking request's) could otherwise store their reads out of order,
	// the older last.
	reloading sync.Mutex
	mu        sync.RWMutex
	byHash    map[[32]byte]*data.Token
	following atomic.Bool
	// reloaded is closed (and replaced) at each reload: open streams
	// check their credential again then.
	reloaded chan struct{}
}

// changed is closed at the next reload of the tokens.
func (c *tokenCache) changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reloaded == nil {
		c.reloaded = make(chan struct{})
	}
	return c.reloaded
}

func (c *tokenCache) reload(ctx context.Context) error {
	c.reloading.Lock()
	defer c.reloading.Unlock()
	live, err := c.store.Tokens(ctx)
	if err != nil {
		return err
	}
	m := make(map[[32]byte]*data.Token, len(live))
	for i := range live {
		m[[32]byte(live[i].Hash)] = &live[i]
	}
	c.mu.Lock()
	c.byHash = m
	if c.reloaded != nil {
		close(c.reloaded)
		c.reloaded = nil
	}
	c.mu.Unlock()
	return nil
}

// identify finds the token's identity; miss is asked before a token the
// cache does not hold is looked for in the database.
func (c *tokenCache) identify(ctx context.Context, cred string, miss func() error) (*auth.Identity, error) {
	if !auth.IsToken(cred) {
		return nil, unauthorized(auth.Malformed, "the API token is not in the form gridmap issues (gm_ and 43 characters)")
	}
	h := sha256.Sum256([]byte(cred))
	var t *data.Token
	if c.following.Load() {
		c.mu.RLock()
		t = c.byHash[h]
		c.mu.RUnlock()
		if t == nil {
			// Unknown, or created an instant ago and not yet heard of.
			if err := miss(); err != nil {
				return nil, err
			}
		}
	}
	if t == nil {
		// The database says which (and decides for every token while no
		// listener keeps the cache current).
		var err error
		if t, err = c.store.TokenByHash(ctx, h[:]); errors.Is(err, data.ErrNotFound) {
			return nil, unauthorized(auth.Unknown, "the API token is not one this server issued")
		} else if err != nil {
			c.mu.RLock()
			t = c.byHash[h]
			c.mu.RUnlock()
			if t == nil {
				return nil, err
			}
		} else if !c.following.Load() {
			// Known for the fallback while the database is away.
			c.mu.Lock()
			if c.byHash == nil {
				c.byHash = make(map[[32]byte]*data.Token)
			}
			c.byHash[h] = t
			c.mu.Unlock()
		}
	}
	switch t.Refusal(time.Now()) {
	case auth.Revoked:
		return nil, unauthorized(auth.Revoked, fmt.Sprintf("the API token %q was revoked", t.Name))
	case auth.Expired:
		return nil, unauthorized(auth.Expired, fmt.Sprintf("the API token %q expired at %s", t.Name, t.ExpiresAt.UTC().Format(time.RFC3339)))
	}
	return t.Identity(), nil
}

// FollowTokens keeps the token cache current until ctx ends.
func (s *Server) FollowTokens(ctx context.Context) {
	s.store.FollowLost(ctx, data.TokensChannel, s.log, func(time.Duration) {
		if err := s.tokens.reload(ctx); err != nil {
			s.tokens.following.Store(false)
			s.log.Warn("reload API tokens", "err", err)
			return
		}
		s.tokens.following.Store(true)
	}, func() { s.tokens.following.Store(false) })
}

// jwtCache remembers verified JWTs until they expire, so that a client
// sending the same bearer token on every request pays for one signature
// check. Bounded: when full it starts again.
type jwtCache struct {
	mu  sync.RWMutex
	ids map[[32]byte]*auth.Identity
}

const maxCachedJWTs = 10000

func (c *jwtCache) identify(ctx context.Context, o *auth.OIDC, raw string) (*auth.Identity, error) {
	h := sha256.Sum256([]byte(raw))
	c.mu.RLock()
	id := c.ids[h]
	c.mu.RUnlock()
	if id != nil && time.Now().Before(id.Expires) {
		return id, nil
	}
	id, err := o.Verify(ctx, raw)
	if ce, ok := errors.AsType[*auth.CredentialError](err); ok {
		return nil, credentialProblem(ce)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.ids == nil || len(c.ids) >= maxCachedJWTs {
		c.ids = make(map[[32]byte]*auth.Identity)
	}
	c.ids[h] = id
	c.mu.Unlock()
	return id, nil
}

// readScopes is what the request's caller may read: nil for the whole city
// (or for a public read without a credential), else the unit codes whose
// subtrees it may.
func readScopes(r *http.Request) []string {
	if id := identityOf(r); id != nil {
		return id.ReadScopes()
	}
	return nil
}

// needRead checks that the caller may read what lies in unit ("" outside
// every grid): a 403 naming it for a scoped caller, nothing otherwise.
func needRead(r *http.Request, unit string) error {
	if id := identityOf(r); id != nil {
		return id.Need(auth.Read, unit)
	}
	return nil
}
