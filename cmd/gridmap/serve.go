package main

import "context"

func cmdServe(ctx context.Context, args []string) error { return nil }
