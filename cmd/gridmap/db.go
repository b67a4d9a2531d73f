package main

import (
	"context"
	"fmt"
	"os"

	"gridmap/data"
)

func databaseURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return data.DefaultURL
}

// openStore opens the store of DATABASE_URL; po, when given, bounds its
// connections (serve's flags).
func openStore(ctx context.Context, po ...data.PoolOptions) (*data.Store, error) {
	var opts data.PoolOptions
	if len(po) > 0 {
		opts = po[0]
	}
	s, err := data.OpenWith(ctx, databaseURL(), opts)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w (run `make db`, or set DATABASE_URL)", databaseURL(), err)
	}
	return s, nil
}

func cmdMigrate(ctx context.Context) error {
	applied, err := data.Migrate(ctx, databaseURL())
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Println("schema is up to date")
	}
	for _, v := range applied {
		fmt.Println("applied", v)
	}
	return nil
}
