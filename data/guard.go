package data

import (
	"context"
	"slices"
)

// Guard decides whether a write may touch units: it is given the codes of
// the units a write touches, before and after ("" for a place outside
// every grid), inside the writing transaction and before anything is
// committed, and returns an error (the API's *auth.Denied) to refuse the
// whole write. The API puts one in every write request's context; the
// command line writes unguarded, as the database's own operator.
type Guard func(units []string) error

type guardKey struct{}
type actorKey struct{}

// WithGuard returns a context whose writes g checks.
func WithGuard(ctx context.Context, g Guard) context.Context {
	return context.WithValue(ctx, guardKey{}, g)
}

// WithActor returns a context whose writes record actor as who made them
// (objects' updated_by; units and events take theirs from their options).
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// checkUnits runs the context's guard, if any, on the distinct units.
func checkUnits(ctx context.Context, units ...string) error {
	g, _ := ctx.Value(guardKey{}).(Guard)
	if g == nil {
		return nil
	}
	slices.Sort(units)
	return g(slices.Compact(units))
}

// guarded says whether the context's writes are checked, so that work
// done only to feed the guard can be skipped.
func guarded(ctx context.Context) bool {
	g, _ := ctx.Value(guardKey{}).(Guard)
	return g != nil
}

// actorOf is who the context's writes are recorded as made by.
func actorOf(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}
