// Command gridmap is the grid-management GIS server and its tools.
//
//	gridmap serve                 serve the API and web pages (ADDR, default :8080)
//	gridmap migrate               apply the schema migrations
//	gridmap demo [flags]          build the demo city (Shenzhen), objects and events
//	gridmap simulate [flags]      a live wall: report events and move them along the workflow
//	gridmap import units FILE     import units from a GeoJSON FeatureCollection
//	gridmap import objects FILE   import managed objects (GeoJSON, NDJSON, CSV), streamed
//	gridmap import classes FILE   add object classes from a CSV
//	gridmap bench objects         1.6 M objects vs a raw COPY of the same rows
//	gridmap bench events          the reporting rate and the stream's delivery latency
//	gridmap bench memory          peak RSS of a server under oversized inputs
//	gridmap export pmtiles        a PMTiles archive of the tilesets
//	gridmap help                  this list
//
// Every command reads DATABASE_URL (default: the project-local cluster).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

const usage = `usage: gridmap <command> [flags]

commands:
  serve                serve the HTTP API and the web pages (ADDR, default :8080)
  migrate              apply the embedded schema migrations
  demo                 build the Shenzhen demo city, objects and events (see gridmap demo -h)
  simulate             report events and move them along the workflow, live (see gridmap simulate -h)
  import units FILE    import units from a GeoJSON FeatureCollection (see gridmap import units -h)
  import objects FILE  import managed objects: GeoJSON, newline-delimited GeoJSON or CSV, streamed
  import classes FILE  add object classes from a CSV (the form of data/seed/object_classes.csv)
  bench objects        time a 1.6 M-object import against a raw COPY of the same rows
  bench events         the reporting rate over HTTP and the stream's delivery latency (see gridmap bench events -h)
  bench memory         peak RSS of a server under oversized imports and idle subscribers
  export pmtiles       write a PMTiles v3 archive of tilesets (see gridmap export pmtiles -h)
  help                 this text

environment:
  DATABASE_URL         PostgreSQL/PostGIS to use (default %s)
`

func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, usage, databaseURL())
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:])
	case "migrate":
		err = cmdMigrate(ctx)
	case "demo":
		err = cmdDemo(ctx, args[1:])
	case "simulate":
		err = cmdSimulate(ctx, args[1:])
	case "import":
		switch {
		case len(args) >= 2 && args[1] == "units":
			return cmdImportUnits(ctx, args[2:])
		case len(args) >= 2 && args[1] == "objects":
			return cmdImportObjects(ctx, args[2:])
		case len(args) >= 2 && args[1] == "classes":
			return cmdImportClasses(ctx, args[2:])
		}
		fmt.Fprintln(os.Stderr, "usage: gridmap import units|objects|classes [flags] FILE")
		return 2
	case "bench":
		err = cmdBench(ctx, args[1:])
	case "export":
		err = cmdExport(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Fprintf(os.Stdout, usage, databaseURL())
		return 0
	default:
		fmt.Fprintf(os.Stderr, "gridmap: unknown command %q\n\n", args[0])
		fmt.Fprintf(os.Stderr, usage, databaseURL())
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gridmap %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
