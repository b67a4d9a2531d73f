package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gridmap/data"
	"gridmap/geo"
)

func cmdImportObjects(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("import objects", flag.ContinueOnError)
	format := fs.String("format", "", "geojson, ndjson or csv (default: from the file extension)")
	onError := fs.String("on-error", string(data.OnErrorAbort), "abort: a bad row stops the import, nothing is written; skip: bad rows are left out")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gridmap import objects [flags] FILE   (FILE - reads standard input; give --format)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	name := fs.Arg(0)
	f := *format
	if f == "" {
		f = filepath.Ext(name)
	}
	fmtv, err := geo.ParseFormat(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gridmap import objects:", err)
		return 2
	}
	var in io.Reader = os.Stdin
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gridmap import objects:", err)
			return 1
		}
		defer file.Close()
		in = file
	}
	s, err := openStore(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gridmap import objects:", err)
		return 1
	}
	defer s.Close()
	stream, err := geo.NewStream(in, fmtv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gridmap import objects: %s: %v\n", name, err)
		return 1
	}
	report, done := progress(os.Stderr)
	rep, err := s.ImportObjects(ctx, stream, data.ObjectImportOptions{OnError: data.OnError(*onError), Progress: report})
	done()
	var fatal *data.FatalImportError
	if errors.As(err, &fatal) {
		fmt.Fprintf(os.Stderr, "gridmap import objects: %s: %v; nothing was written\n", name, fatal.Err)
		return 1
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gridmap import objects:", err)
		return 1
	}
	printObjectReport(os.Stdout, rep)
	if rep.Aborted {
		fmt.Fprintf(os.Stderr, "gridmap import objects: %d bad row(s); nothing was written (--on-error=skip leaves them out instead)\n", rep.Rejected)
		return 1
	}
	return 0
}

// progress prints rows and rows/s on one line that it rewrites (a line
// per report when w is not a terminal); done ends the line.
func progress(w io.Writer) (report func(int64, time.Duration), done func()) {
	printed := false
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil {
			tty = st.Mode()&os.ModeCharDevice != 0
		}
	}
	report = func(rows int64, d time.Duration) {
		end := "\n"
		if tty {
			end = ""
			fmt.Fprint(w, "\r")
		}
		fmt.Fprintf(w, "%12d rows  %10.0f rows/s  %6.1fs%s", rows, float64(rows)/d.Seconds(), d.Seconds(), end)
		printed = true
	}
	done = func() {
		if printed && tty {
			fmt.Fprintln(w)
		}
	}
	return report, done
}

func printObjectReport(w io.Writer, r *data.ObjectImportReport) {
	for _, e := range r.Errors {
		fmt.Fprintf(w, "REJECTED %s %d %s: %s\n", e.Kind, e.Pos, e.Code, e.Reason)
	}
	if int64(len(r.Errors)) < r.Rejected {
		fmt.Fprintf(w, "… and %d more rejected rows\n", r.Rejected-int64(len(r.Errors)))
	}
	fmt.Fprintf(w, "%d rows: %d inserted, %d updated, %d unchanged, %d unassigned, %d rejected%s (%.1fs, %.0f rows/s)\n",
		r.Rows, r.Inserted, r.Updated, r.Unchanged, r.Unassigned, r.Rejected, map[bool]string{true: "; aborted, nothing written", false: ""}[r.Aborted],
		r.Seconds, float64(r.Rows)/r.Seconds)
}

// cmdImportClasses adds classes from a CSV in the seed's form; classes that
// exist are left as they are and reported.
func cmdImportClasses(ctx context.Context, args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: gridmap import classes FILE.csv   (header code,kind,major,major_name,minor,name,geometry_types)")
		return 2
	}
	f, err := os.Open(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gridmap import classes:", err)
		return 1
	}
	defer f.Close()
	classes, err := data.ReadClasses(f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gridmap import classes: %s: %v; nothing was added\n", args[0], err)
		return 1
	}
	s, err := openStore(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gridmap import classes:", err)
		return 1
	}
	defer s.Close()
	added, existing, err := s.AddClasses(ctx, classes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gridmap import classes:", err)
		return 1
	}
	for _, c := range existing {
		fmt.Printf("exists  %s\n", c)
	}
	fmt.Printf("%d classes: %d added, %d already in the catalogue\n", len(classes), added, len(existing))
	return 0
}
