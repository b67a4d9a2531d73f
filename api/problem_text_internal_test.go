package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// PostgreSQL's refusals of a value are a 422 that names no SQL, table,
// constraint or SQLSTATE; other database errors stay 500s.
func TestProblemForUnstorable(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"22021", "22P05", "22008", "22007", "54000"} {
		err := fmt.Errorf("put department: %w", &pgconn.PgError{Code: code, Severity: "ERROR",
			Message: `invalid byte sequence for encoding "UTF8": 0x00`, TableName: "departments", ConstraintName: "departments_pkey"})
		p := problemFor(err)
		if p == nil || p.Status != http.StatusUnprocessableEntity || p.Type != probInvalid || p.Detail == "" {
			t.Fatalf("%s: %+v", code, p)
		}
		for _, leak := range []string{code, "UTF8", "departments", "0x00", "SQL"} {
			if strings.Contains(p.Title+p.Detail, leak) {
				t.Errorf("%s: the problem says %q: %+v", code, leak, p)
			}
		}
	}
	if p := problemFor(&pgconn.PgError{Code: "23505"}); p != nil {
		t.Errorf("a unique violation not mapped by the store: %+v, want a 500", p)
	}
}
