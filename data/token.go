package data

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"gridmap/auth"
)

// TokensChannel is the NOTIFY channel told of every token created or
// revoked (migration 006).
const TokensChannel = "gridmap_tokens"

// Token is an API token as stored: never the token itself, only its hash.
type Token struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Role      auth.Role  `json:"role"`
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by"`
	ExpiresAt *time.Time `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	RevokedBy string     `json:"revoked_by,omitempty"`
	// PersonID is the person the token speaks for (issue 16), if any.
	PersonID *int64 `json:"person_id"`
	Hash     []byte `json:"-"`

	identity *auth.Identity // made once, when read (scanToken)
}

// Identity is who the token speaks for. The same *Identity each call:
// callers must not change it.
func (t *Token) Identity() *auth.Identity {
	if t.identity != nil {
		return t.identity
	}
	return t.newIdentity()
}

func (t *Token) newIdentity() *auth.Identity {
	id := &auth.Identity{Actor: auth.TokenActor(t.Name), Kind: "token", Grants: []auth.Grant{{Role: t.Role, Scopes: t.Scopes}}}
	if t.ExpiresAt != nil {
		id.Expires = *t.ExpiresAt
	}
	if t.PersonID != nil {
		id.Person = *t.PersonID
	}
	return id
}

// Refusal says why the token cannot be used at now: "" when it can, else
// auth.Revoked or auth.Expired.
func (t *Token) Refusal(now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return auth.Revoked
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return auth.Expired
	}
	return ""
}

const tokenColumns = `id, name, role, scopes, created_at, created_by, expires_at, revoked_at, coalesce(revoked_by, ''), person_id, hash`

func scanToken(row pgx.Row) (*Token, error) {
	var t Token
	var role string
	if err := row.Scan(&t.ID, &t.Name, &role, &t.Scopes, &t.CreatedAt, &t.CreatedBy, &t.ExpiresAt, &t.RevokedAt, &t.RevokedBy, &t.PersonID, &t.Hash); err != nil {
		return nil, err
	}
	t.Role = auth.Role(role)
	t.identity = t.newIdentity()
	return &t, nil
}

// NewToken is a token to create.
type NewToken struct {
	Name      string
	Role      auth.Role
	Scopes    []string
	ExpiresAt *time.Time
	CreatedBy string
	// Person is the person the token speaks for (0: none).
	Person int64
}

// CreateToken stores a new token and returns it with the token text, which
// is shown once and never stored. A name already used (even by a revoked
// token) is ErrExists; a bad name, role or scope an *InvalidError.
func (s *Store) CreateToken(ctx context.Context, n NewToken) (string, *Token, error) {
	if err := auth.CheckTokenName(n.Name); err != nil {
		return "", nil, invalid("name", "%v", err)
	}
	if _, err := auth.ParseRole(string(n.Role)); err != nil {
		return "", nil, invalid("role", "%v", err)
	}
	scopes, err := auth.CheckScopes(n.Role, n.Scopes)
	if err != nil {
		return "", nil, invalid("scopes", "%v", err)
	}
	if n.ExpiresAt != nil && !n.ExpiresAt.After(time.Now()) {
		return "", nil, invalid("expires_at", "the expiry %s is not in the future", n.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if n.CreatedBy == "" {
		return "", nil, errors.New("create token: no creator")
	}
	text, hash := auth.NewToken()
	var person *int64
	if n.Person != 0 {
		person = &n.Person
	}
	t, err := scanToken(s.Pool.QueryRow(ctx, `
		INSERT INTO api_tokens (name, role, scopes, hash, created_by, expires_at, person_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+tokenColumns,
		n.Name, string(n.Role), scopes, hash, n.CreatedBy, n.ExpiresAt, person))
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23503" && pgErr.ConstraintName == "api_tokens_person_id_fkey" {
		return "", nil, invalid("person_id", "no person %d (GET /v1/people lists them)", n.Person)
	}
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "api_tokens_name_key" {
		return "", nil, fmt.Errorf("token %s: %w", n.Name, ErrExists)
	}
	if err != nil {
		return "", nil, err
	}
	return text, t, nil
}

// Tokens lists every token, revoked ones too, oldest first.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	return s.queryTokens(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY id`)
}

func (s *Store) queryTokens(ctx context.Context, sql string) ([]Token, error) {
	rows, err := s.Pool.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	var out []Token
	err = forEach(rows, func() error {
		t, err := scanToken(rows)
		if err == nil {
			out = append(out, *t)
		}
		return err
	})
	return out, err
}

// LiveTokens lists the tokens not revoked (expired ones included: the
// caller tells those apart at the time of use), oldest first.
func (s *Store) LiveTokens(ctx context.Context) ([]Token, error) {
	return s.queryTokens(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE revoked_at IS NULL ORDER BY id`)
}

// TokenByHash finds the token with that hash, revoked or not; ErrNotFound
// when there is none.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (*Token, error) {
	t, err := scanToken(s.Pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return t, err
}

// RevokeToken revokes the token named name (or, when no token has that
// name, the one whose id it is) and returns it; revoking a revoked token
// changes nothing.
// Every server hears of it on TokensChannel when the revocation commits.
// (The CTE's column is not called id: RETURNING's unqualified id would be
// ambiguous between it and the token's, and every revocation failed.)
func (s *Store) RevokeToken(ctx context.Context, name, by string) (*Token, error) {
	t, err := scanToken(s.Pool.QueryRow(ctx, `
		WITH t AS (
			SELECT id AS target FROM api_tokens WHERE name = $1
			UNION ALL
			SELECT id FROM api_tokens WHERE id::text = $1 AND NOT EXISTS (SELECT FROM api_tokens WHERE name = $1))
		UPDATE api_tokens a SET revoked_at = coalesce(revoked_at, now()), revoked_by = coalesce(revoked_by, $2)
		FROM t WHERE a.id = t.target
		RETURNING `+tokenColumns, name, by))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("token %q: %w", name, ErrNotFound)
	}
	return t, err
}
