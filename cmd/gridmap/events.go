package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"gridmap/data"
)

const eventsUsage = `usage:
  gridmap events retain --feed-months N [--lock-timeout 5s]
                       drop the partitions of the live feed wholly before the month N months back
  gridmap events partitions [--ahead 3]
                       make the partitions of this month and the next ones (the feed's: the next one; the servers do it hourly), and list them`

// cmdEvents is the database administrator's side of the partitioned event
// tables: the feed's retention (run it from cron, e.g. on the 1st) and the
// partitions made ahead.
func cmdEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(eventsUsage)
	}
	switch args[0] {
	case "retain":
		return eventsRetain(ctx, args[1:], stdout, stderr)
	case "partitions":
		return eventsPartitions(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown events command %q\n%s", args[0], eventsUsage)
}

func eventsRetain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events retain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	months := fs.Int("feed-months", -1, "keep the feed of this month and the N months before it (required)")
	lockTimeout := fs.Duration("lock-timeout", 5*time.Second, "give up when the feed's lock is not had within this (the feed's writers wait behind it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q\n%s", fs.Args(), eventsUsage)
	}
	if *months < 0 {
		return fmt.Errorf("--feed-months N (0 or more) is required\n%s", eventsUsage)
	}
	s, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	dropped, err := s.RetainFeed(ctx, *months, *lockTimeout)
	if err != nil {
		return err
	}
	if len(dropped) == 0 {
		fmt.Fprintf(stdout, "no feed partition wholly before the month %d months back\n", *months)
		return nil
	}
	for _, d := range dropped {
		through := "(empty)"
		if d.MaxSeq != nil {
			through = fmt.Sprintf("through seq %d", *d.MaxSeq)
		}
		fmt.Fprintf(stdout, "dropped %s: %d entries %s\n", d.Name, d.Entries, through)
	}
	return nil
}

func eventsPartitions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events partitions", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ahead := fs.Int("ahead", data.PartitionsAhead, "months past this one to make partitions of events and their log for (the feed's: always the next one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *ahead < 0 || *ahead > 120 {
		return fmt.Errorf("want --ahead 0 to 120 and no arguments\n%s", eventsUsage)
	}
	s, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	made, err := s.EnsurePartitions(ctx, *ahead)
	if err != nil {
		return err
	}
	ps, err := s.Partitions(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d partition months made (a month of events with its log counts one, a month of the feed one)\n", made)
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TABLE\tPARTITION\tBOUNDS\tROWS (EST.)")
	for _, p := range ps {
		rows := fmt.Sprint(p.Rows)
		if p.Rows < 0 {
			rows = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Table, p.Name, p.Bounds, rows)
	}
	return w.Flush()
}
