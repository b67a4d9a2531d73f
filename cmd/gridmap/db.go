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

func openStore(ctx context.Context) (*data.Store, error) {
	s, err := data.Open(ctx, databaseURL())
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
