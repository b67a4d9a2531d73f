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
	ifEmpty := fs.Bool("if-empty", false, "build the city only when the store holds no units, and objects only when it holds none")
	objects := fs.Int64("objects", 0, "also add this many managed objects with a realistic class mix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	start := time.Now()
	buildCity := true
	if *ifEmpty {
		n, err := s.CountUnits(ctx, grid.BaseLayer)
		if err != nil {
			return err
		}
		if total := n[grid.District] + n[grid.Street] + n[grid.Community] + n[grid.Grid]; total > 0 {
			fmt.Printf("demo: the store already holds %d units; the city stays as it is\n", total)
			buildCity = false
		}
	}
	if buildCity {
		if err := buildDemoCity(ctx, s, d, start); err != nil {
			return err
		}
	}
	if *objects <= 0 {
		return nil
	}
	if *ifEmpty {
		n, err := s.CountObjects(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			fmt.Printf("demo: the store already holds %d objects; none added\n", n)
			return nil
		}
	}
	stream, err := s.DemoObjects(ctx, *objects, uint64(d.Seed), false)
	if err != nil {
		return err
	}
	report, done := progress(os.Stderr)
	rep, err := s.ImportObjects(ctx, stream, data.ObjectImportOptions{Progress: report})
	done()
	if err != nil {
		return err
	}
	printObjectReport(os.Stdout, rep)
	if rep.Aborted {
		return fmt.Errorf("demo objects rejected")
	}
	return nil
}

func buildDemoCity(ctx context.Context, s *data.Store, d data.DemoOptions, start time.Time) error {
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
