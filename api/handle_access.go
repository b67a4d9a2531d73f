package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/geo"
)

func (s *Server) accessRoutes(r *mux.Router) {
	s.handle(r, "/v1/tokens", s.adminRead(s.listTokens), http.MethodGet)
	s.handleWrite(r, "/v1/tokens", auth.Administer, s.createToken, http.MethodPost)
	s.handleWrite(r, "/v1/tokens/{name}", auth.Administer, s.revokeToken, http.MethodDelete)
	s.handle(r, "/v1/audit", s.adminRead(s.listAudit), http.MethodGet)
	s.handle(r, "/v1/me", s.whoAmI, http.MethodGet)
}

// adminRead is a read only an admin may make.
func (s *Server) adminRead(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := need(r, auth.Administer); err != nil {
			return err
		}
		return h(w, r)
	}
}

// tokenBody is POST /v1/tokens.
type tokenBody struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Scopes    []string `json:"scopes"`
	ExpiresAt *string  `json:"expires_at"` // RFC 3339
	// PersonID makes the token speak for a person (issue 16): /v1/me
	// names them, /v1/me/tasks lists their work.
	PersonID *int64 `json:"person_id"`
}

// createdToken is the answer of POST /v1/tokens: the only time the token
// itself is shown.
type createdToken struct {
	Secret string `json:"token"`
	*data.Token
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var b tokenBody
	if err := readStrict(w, r, &b, `a JSON object {"name", "role", "scopes", "expires_at", "person_id"}`); err != nil {
		return err
	}
	n := data.NewToken{Name: b.Name, Role: auth.Role(b.Role), Scopes: b.Scopes, CreatedBy: identityOf(r).Actor}
	if b.PersonID != nil {
		if *b.PersonID <= 0 {
			return invalidMember("person_id", "person_id is a person's id (GET /v1/people lists them)")
		}
		n.Person = *b.PersonID
	}
	if b.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *b.ExpiresAt)
		if err != nil || !storableTime(t) {
			return invalidMember("expires_at", fmt.Sprintf("expires_at %q is not an RFC 3339 time such as 2027-06-30T00:00:00+08:00", geo.Excerpt(*b.ExpiresAt, 60)))
		}
		n.ExpiresAt = &t
	}
	text, t, err := s.store.CreateToken(r.Context(), n)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/tokens/"+url.PathEscape(t.Name))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, ctJSON, createdToken{Secret: text, Token: t})
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.store.Tokens(r.Context())
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []data.Token{}
	}
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"tokens": ts})
	return nil
}

// revokeToken: DELETE /v1/tokens/{name}. The token stays listed, revoked;
// its name is never given again.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	name := mux.Vars(r)["name"]
	t, err := s.store.RevokeToken(r.Context(), name, identityOf(r).Actor)
	if err != nil {
		return notFoundAs(err, "no token named %q", name)
	}
	// This server refuses it from now on, whatever its listener does.
	if err := s.tokens.reload(r.Context()); err != nil {
		s.tokens.following.Store(false)
	}
	writeJSON(w, http.StatusOK, ctJSON, t)
	return nil
}

// listAudit: GET /v1/audit?actor=&unit=&from=&to=&limit=&cursor=
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	cfg, err := s.store.EventConfig(r.Context())
	if err != nil {
		return err
	}
	f := data.AuditFilter{Actor: q.Get("actor"), Unit: q.Get("unit"), Cursor: q.Get("cursor")}
	if f.Unit != "" && !isDigits(f.Unit) {
		return &paramError{"unit", fmt.Sprintf("unit=%q is not a unit code", geo.Excerpt(f.Unit, geo.MaxExcerpt))}
	}
	if f.From, f.To, err = periodParams(q, cfg); err != nil {
		return err
	}
	if f.Limit, err = parseIntParam(q, "limit", 100, 1, maxListLimit); err != nil {
		return err
	}
	p, err := s.store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	if p.Entries == nil {
		p.Entries = []data.AuditEntry{}
	}
	out := map[string]any{"entries": p.Entries}
	if l := nextLink(r, p.Next); l != nil {
		l[0].Type = ctJSON
		out["links"] = l
	}
	writeJSON(w, http.StatusOK, ctJSON, out)
	return nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// whoAmI: GET /v1/me — the identity the credential proves (the pages show
// it after sign-in), or 401 without one.
func (s *Server) whoAmI(w http.ResponseWriter, r *http.Request) error {
	id := identityOf(r)
	if id == nil {
		return unauthorized(auth.Missing, "no credential was sent: send Authorization: Bearer <token>")
	}
	out := map[string]any{"actor": id.Actor, "kind": id.Kind, "grants": id.Grants}
	if id.Person != 0 {
		p, err := s.store.Person(r.Context(), id.Person)
		if err != nil {
			return err
		}
		out["person"] = shownPerson(r, p)
	}
	if !id.Expires.IsZero() {
		out["expires_at"] = id.Expires.UTC().Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, ctJSON, out)
	return nil
}
