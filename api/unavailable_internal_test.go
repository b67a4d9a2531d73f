package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestUnavailableProblem: what a database that cannot answer returns is a
// 503 with Retry-After and a fixed detail; other database errors are not.
func TestUnavailableProblem(t *testing.T) {
	t.Parallel()
	pg := func(code string) error {
		return fmt.Errorf("list units: %w", &pgconn.PgError{Code: code, Message: "secret SELECT from gmtest_db", Detail: "host 10.0.0.5"})
	}
	for _, c := range []struct {
		name  string
		err   error
		title string // "" when not a 503
	}{
		{"admin shutdown", pg("57P01"), "Database unavailable"},
		{"crash shutdown", pg("57P02"), "Database unavailable"},
		{"cannot connect now", pg("57P03"), "Database unavailable"},
		{"connection failure", pg("08006"), "Database unavailable"},
		{"standby refuses a write", pg("25006"), "Database unavailable"},
		{"connection closed under the transaction", fmt.Errorf("insert: %w", pgconn.ErrConnClosed), "Database unavailable"},
		{"statement timeout", pg("57014"), "Timed out"},
		{"deadline", fmt.Errorf("acquire: %w", context.DeadlineExceeded), "Timed out"},
		{"broken socket", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), "Database unavailable"},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, "Database unavailable"},
		{"unique violation", pg("23505"), ""},
		{"undefined column", pg("42703"), ""},
		{"plain", errors.New("boom"), ""},
	} {
		p := problemFor(c.err)
		if c.title == "" {
			if p != nil {
				t.Errorf("%s: %+v, want a 500", c.name, p)
			}
			continue
		}
		if p == nil || p.Status != http.StatusServiceUnavailable || p.Type != probUnavailable || p.Title != c.title || p.RetryAfter <= 0 {
			t.Errorf("%s: %+v, want 503 %q with Retry-After", c.name, p, c.title)
			continue
		}
		for _, secret := range []string{"SELECT", "gmtest", "10.0.0.5", "57", "08006"} {
			if strings.Contains(p.Detail, secret) {
				t.Errorf("%s: detail %q reveals %q", c.name, p.Detail, secret)
			}
		}
	}
}
