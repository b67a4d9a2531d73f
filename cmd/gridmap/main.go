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
//	gridmap bench edits           unit edits (reshape, merge) on the full city with 200,000 objects
//	gridmap bench export          1.6 M objects exported: rows/s and the server's peak RSS
//	gridmap bench province        200,000 grids: import, locator build, memory, locate rate, objects
//	gridmap export pmtiles        a PMTiles archive of the tilesets
//	gridmap export features       a collection as GeoJSON, CSV, GeoPackage or FlatGeobuf
//	gridmap events retain|partitions  the feed's retention by month, the partitions made ahead
//	gridmap token create|list     API tokens: created (the token shown once), listed
//	gridmap token revoke NAME     revoke an API token on every server at once
//	gridmap token ensure          make run's demo admin token, kept in a file
//	gridmap help                  this list
//
// Every command reads DATABASE_URL (default: the project-local cluster).
// The token commands work on the database directly, as "cli:<OS user>":
// they are how the first admin token comes to be.
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
  bench edits          p50/p95 of unit edits through the API and the locator refresh, full vs incremental
  bench export         rows/s and the server's peak RSS exporting 1.6 M objects in each format
  bench province build|locator|objects|memunits
                       200,000 grids (the demo at density 10) in gridmap_province: import time; locator build time and memory,
                       locate rate; objects per row and statistics over the dense grids; memunits (read only, any --database):
                       how the in-memory unit tiles follow an edit (Apply time and memory)
  export pmtiles       write a PMTiles v3 archive of tilesets (see gridmap export pmtiles -h)
  export features      write a collection as GeoJSON, CSV, GeoPackage or FlatGeobuf (see gridmap export features -h)
  events retain --feed-months N
                       drop the live feed's partitions wholly before the month N months back
  events partitions [--ahead 3]
                       make the event tables' partitions of this month and the next ones; list them
  token create --name NAME --role ROLE [--scope 440306,440307001] [--expires 90d|2027-06-30|RFC3339]
                       create an API token; the token alone on stdout, shown once
  token list           every token: name, role, scopes, created, by, expires, revoked (never the token)
  token revoke NAME    revoke a token; every server refuses it at once
  token ensure --name demo-admin --file FILE
                       reuse the token in FILE while it is valid, else revoke demo-admin* and
                       create demo-admin-<unix time> into FILE (mode 0600); make run's admin token
  help                 this text

environment:
  DATABASE_URL         PostgreSQL/PostGIS to use (default %s); several hosts with
                       target_session_attrs=read-write follow a failover to the promoted standby
  GRIDMAP_READ_URL     serve only: a streaming replica for reads (serve -h)
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
	case "events":
		err = cmdEvents(ctx, args[1:], os.Stdout, os.Stderr)
	case "token":
		err = cmdToken(ctx, args[1:], os.Stdout, os.Stderr)
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
