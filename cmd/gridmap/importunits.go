package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

func cmdImportUnits(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("import units", flag.ContinueOnError)
	var o data.UnitImportOptions
	fs.BoolVar(&o.Repair, "repair", false, "make invalid geometry valid (ST_MakeValid) and report it as a warning")
	fs.Float64Var(&o.ToleranceM2, "tolerance", data.DefaultToleranceM2, "area in m² below which overlaps, gaps and overhangs are ignored")
	fs.BoolVar(&o.Complete, "complete", false, "declare every imported parent complete: gaps under it are violations")
	fs.BoolVar(&o.DryRun, "dry-run", false, "check only, write nothing")
	layer := fs.String("layer", grid.BaseLayer, "layer of features that do not name one")
	fs.StringVar(&o.Actor, "actor", os.Getenv("USER"), "who makes the change (recorded)")
	fs.StringVar(&o.Reason, "reason", "import", "why (recorded)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gridmap import units [flags] FILE   (FILE - reads standard input)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	var in io.Reader = os.Stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gridmap import units:", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	features, err := geo.DecodeFeatureCollection(in)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gridmap import units: %s: %v\n", fs.Arg(0), err)
		return 1
	}
	drafts, bad := grid.DraftsFromFeatures(features, *layer)
	s, err := openStore(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gridmap import units:", err)
		return 1
	}
	defer s.Close()
	r, err := s.ImportUnits(ctx, drafts, bad, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gridmap import units:", err)
		return 1
	}
	printReport(os.Stdout, r)
	if !r.OK() {
		fmt.Fprintf(os.Stderr, "gridmap import units: %d violation(s); nothing was written\n", r.ViolationCount())
		return 1
	}
	return 0
}

// printReport writes an import report for people: one line per finding,
// the geometry left out (the API has it as GeoJSON).
func printReport(w io.Writer, r *data.UnitImportReport) {
	for _, v := range r.Violations {
		fmt.Fprintf(w, "ERROR   %-16s %-34s %s\n", v.Rule, strings.Join(v.Codes, ","), v.Message)
	}
	for _, v := range r.Warnings {
		fmt.Fprintf(w, "WARNING %-16s %-34s %s\n", v.Rule, strings.Join(v.Codes, ","), v.Message)
	}
	switch {
	case !r.OK():
		fmt.Fprintf(w, "%d units checked: %d violation(s), %d warning(s); nothing written (%.2fs)\n", r.Units, r.ViolationCount(), r.WarningCount(), r.Seconds)
	case r.DryRun:
		fmt.Fprintf(w, "%d units checked: valid, %d warning(s); dry run, nothing written (%.2fs)\n", r.Units, r.WarningCount(), r.Seconds)
	default:
		fmt.Fprintf(w, "%d units: %d inserted, %d updated, %d unchanged, %d warning(s) (%.2fs)\n", r.Units, r.Inserted, r.Updated, r.Unchanged, r.WarningCount(), r.Seconds)
	}
}
