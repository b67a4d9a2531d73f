package data_test

import (
	"context"
	"errors"
	"testing"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/grid"
)

// TestPeople: a person is created, read and replaced under a version
// precondition; a member that breaks a rule is an *InvalidError naming it,
// and nothing is written.
func TestPeople(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	ctx := context.Background()
	if _, err := s.PutDepartment(ctx, data.Department{Code: "cg", Name: "城管"}); err != nil {
		t.Fatal(err)
	}
	w, err := s.CreatePerson(ctx, grid.Person{Name: " 张三 ", Phone: "13812341234", Role: grid.RoleWorker})
	if err != nil || w.Name != "张三" || w.Status != grid.PersonActive || w.Version != 1 {
		t.Fatalf("create: %+v %v", w, err)
	}
	got, err := s.Person(ctx, w.ID)
	if err != nil || got.Phone != "13812341234" {
		t.Fatalf("get: %+v %v", got, err)
	}
	for _, tc := range []struct {
		name  string
		p     grid.Person
		field string
	}{
		{"no name", grid.Person{Role: grid.RoleWorker}, "name"},
		{"bad role", grid.Person{Name: "a", Role: "boss"}, "role"},
		{"handler without department", grid.Person{Name: "a", Role: grid.RoleHandler}, "department"},
		{"unknown department", grid.Person{Name: "a", Role: grid.RoleHandler, Department: "nope"}, "department"},
		{"bad phone", grid.Person{Name: "a", Role: grid.RoleWorker, Phone: "call me"}, "phone"},
		{"taken phone", grid.Person{Name: "a", Role: grid.RoleWorker, Phone: "13812341234"}, "phone"},
		{"bad unit", grid.Person{Name: "a", Role: grid.RoleSupervisor, UnitCode: "12"}, "unit_code"},
		{"bad status", grid.Person{Name: "a", Role: grid.RoleWorker, Status: "gone"}, "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreatePerson(ctx, tc.p)
			var ie *data.InvalidError
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Errorf("create %+v: %v, want an invalid %s", tc.p, err, tc.field)
			}
		})
	}
	h, err := s.PutPerson(ctx, w.ID, grid.Person{Name: "张三", Role: grid.RoleHandler, Department: "cg"}, 1)
	if err != nil || h.Version != 2 || h.Phone != "" || h.Department != "cg" {
		t.Fatalf("put: %+v %v", h, err)
	}
	if _, err := s.PutPerson(ctx, w.ID, grid.Person{Name: "x", Role: grid.RoleWorker}, 1); !errors.Is(err, data.ErrStale) {
		t.Errorf("put with an old version: %v, want stale", err)
	}
	if _, err := s.PutPerson(ctx, w.ID+100, grid.Person{Name: "x", Role: grid.RoleWorker}, 0); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("put of nobody: %v, want not found", err)
	}
	var n int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM people`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d people stored (%v), want 1", n, err)
	}
}
