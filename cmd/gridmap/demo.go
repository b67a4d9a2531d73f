package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"gridmap/data"
	"gridmap/grid"
)

func cmdDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	d := data.DemoDefaults
	fs.StringVar(&d.Scale, "scale", d.Scale, "full (Shenzhen, 9 districts) or small (one district)")
	fs.StringVar(&d.District, "district", d.District, "the district a small demo keeps")
	fs.IntVar(&d.GridsPerCommunity, "grids-per-community", d.GridsPerCommunity, "grids cut from each community")
	fs.IntVar(&d.Seed, "seed", d.Seed, "random seed; the same seed builds the same city")
	ifEmpty := fs.Bool("if-empty", false, "do nothing when the store already holds units")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if *ifEmpty {
		n, err := s.CountUnits(ctx, grid.BaseLayer)
		if err != nil {
			return err
		}
		if total := n[grid.District] + n[grid.Street] + n[grid.Community] + n[grid.Grid]; total > 0 {
			fmt.Printf("demo: the store already holds %d units; nothing to do\n", total)
			return nil
		}
	}
	start := time.Now()
	d.Progress = func(format string, args ...any) {
		fmt.Printf("demo: %6.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	res, err := s.BuildDemo(ctx, d)
	if err != nil {
		return err
	}
	printReport(os.Stdout, res.Import)
	if !res.Import.OK() {
		return fmt.Errorf("the demo city failed validation")
	}
	fmt.Printf("demo: %d districts, %d streets, %d communities, %d grids; generated in %.1fs, validated and loaded in %.1fs, total %.1fs\n",
		res.Counts[grid.District], res.Counts[grid.Street], res.Counts[grid.Community], res.Counts[grid.Grid],
		res.GenerateSeconds, res.Import.Seconds, time.Since(start).Seconds())
	return nil
}
