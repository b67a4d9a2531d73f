package data_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/data/pgtest"
)

// TestRevokeToken: a token is revoked by its name, or by its id when no
// token has that name (a token named like another's id is the one
// revoked, never both); a second revocation keeps the first's time and
// revoker; an unknown name is ErrNotFound.
func TestRevokeToken(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	ctx := context.Background()
	create := func(name string) *data.Token {
		t.Helper()
		_, tok, err := s.CreateToken(ctx, data.NewToken{Name: name, Role: auth.Viewer, Scopes: []string{"440306"}, CreatedBy: "cli:test"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	a, b := create("a"), create("b")
	c := create(fmt.Sprint(a.ID)) // named like a's id

	got, err := s.RevokeToken(ctx, "b", "cli:one")
	if err != nil || got.ID != b.ID || got.RevokedAt == nil || got.RevokedBy != "cli:one" || got.Refusal(*got.RevokedAt) != auth.Revoked {
		t.Fatalf("revoke b: %+v %v", got, err)
	}
	again, err := s.RevokeToken(ctx, "b", "cli:two")
	if err != nil || !again.RevokedAt.Equal(*got.RevokedAt) || again.RevokedBy != "cli:one" {
		t.Errorf("revoke b again: %+v %v, want the first revocation kept", again, err)
	}

	got, err = s.RevokeToken(ctx, fmt.Sprint(a.ID), "cli:one")
	if err != nil || got.ID != c.ID {
		t.Fatalf("revoke %q: %+v %v, want the token of that name", fmt.Sprint(a.ID), got, err)
	}
	live, err := s.LiveTokens(ctx)
	if err != nil || len(live) != 1 || live[0].ID != a.ID {
		t.Fatalf("live tokens: %+v %v, want a only", live, err)
	}
	if got, err = s.RevokeToken(ctx, fmt.Sprint(b.ID), "cli:one"); err != nil || got.ID != b.ID {
		t.Errorf("revoke by b's id: %+v %v", got, err)
	}
	if _, err := s.RevokeToken(ctx, "nobody", "cli:one"); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("revoke nobody: %v, want ErrNotFound", err)
	}
}
