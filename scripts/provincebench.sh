#!/usr/bin/env bash
# The province-scale units case of issue 15 (docs/benchmarks.md, "Province scale (200,000 grids)"):
# Shenzhen's demo city cut at density 10 (197,000 grids) in a database of its own, then
#   1. the import: generation in PostGIS and the unit import's validation and load (`bench province build`);
#   2. the locator: the server's full build (load + index), the memory it keeps, the process's peak RSS and
#      the in-memory locate rate, in a fresh process (`bench province locator`);
#   3. the Go locate benchmarks (data: memory, SQL, build; api: HTTP single and batch) on that database
#      (GRIDMAP_BENCH_CITY, see data/pgtest);
#   4. units tile latency, cold and warm, at z6/z10/z14 and over the whole city (scripts/tilebench.sh).
#
#   go build -o bin/gridmap ./cmd/gridmap && scripts/provincebench.sh
#
# PROVINCE_DB (default gridmap_province) is dropped and rebuilt by step 1 unless SKIP_BUILD=1; never point it
# at a database anyone uses. STEPS (default "build locator bench tiles") picks steps.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/gridmap}
DB=${PROVINCE_DB:-gridmap_province}
STEPS=${STEPS:-build locator bench tiles}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:55432/gridmap?sslmode=disable}
CITY=$(sed -E "s#/[^/?]+(\?|$)#/$DB\1#" <<<"$DATABASE_URL")
[ -x "$BIN" ] || { echo "provincebench: no $BIN: go build -o bin/gridmap ./cmd/gridmap" >&2; exit 1; }
[ "$DB" != gridmap ] || { echo "provincebench: PROVINCE_DB=gridmap would drop the shared database" >&2; exit 1; }
step() { [[ " $STEPS " == *" $1 "* ]]; }

if step build && [ -z "${SKIP_BUILD:-}" ]; then
  echo "== import (database $DB)"
  /usr/bin/time -f 'build process: %e s wall, peak RSS %M KB' "$BIN" bench province build --database "$DB"
fi
if step locator; then
  echo "== locator"
  /usr/bin/time -f 'locator process: %e s wall, peak RSS %M KB' "$BIN" bench province locator --database "$DB"
fi
if step bench; then
  echo "== go benchmarks"
  GRIDMAP_BENCH_CITY=$CITY go test -run '^$' -bench 'LocateMemory|LocateSQL|LocatorBuild' -benchtime 3s ./data
  GRIDMAP_BENCH_CITY=$CITY go test -run '^$' -bench 'HTTPLocate' -benchtime 3s ./api
fi
if step tiles; then
  echo "== units tiles"
  DATABASE_URL=$CITY LAYERS=units BIN=$BIN scripts/tilebench.sh
fi
