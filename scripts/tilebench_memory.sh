#!/usr/bin/env bash
# Unit tiles drawn from memory against PostGIS's ST_AsMVT, side by side in one run (docs/benchmarks.md,
# "Unit tiles from memory", issue 17).
#
#   go build -o bin/gridmap ./cmd/gridmap
#   DATABASE_URL=postgres://…/gridmap_bench scripts/tilebench_memory.sh      # a database holding the full demo city
#
# Starts two `gridmap serve` on DATABASE_URL's database with the tile cache off (--tile-cache-bytes 0: every
# request renders its tile), one --tile-renderer postgis and one --tile-renderer memory, then `gridmap bench
# tiles` fetches from both: random z13–z15 unit tiles by 16 clients, the whole-city z6 tile and every z10
# tile one at a time; and builds the in-memory units once to weigh them. Then the same random tiles again
# with wrk (a load generator in C: Go's HTTP client costs a request about as much CPU as the server's
# in-memory render, and on two shared cores it takes that from the server), round-robin, each server in
# turn, with the server's CPU time per request read from /proc. Then PMTiles exports of units z0–16 with
# each renderer. TILE_ZOOMS (e.g. grid=0-22, the grid layer at every zoom as in issue 17's
# comparison with pg_tileserv) is passed to both servers. BASE_BIN, when set, is a third server (cache off) of
# another build, e.g. the main branch before issue 17 (its PostGIS path gzipped with the standard library):
#   git archive main | tar -x -C /tmp/base && (cd /tmp/base && go build -o gridmap ./cmd/gridmap)
#   BASE_BIN=/tmp/base/gridmap scripts/tilebench_memory.sh
# The single tiles are also fetched as of AS_OF (default: a minute ago) and in GCJ-02 (and both), from every server;
# an AS_OF before the database's last unit edit has the memory server build a copy of the units then.
# Only loopback is used; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/gridmap}
PG=127.0.0.1:${PG_PORT:-18941}
MEM=127.0.0.1:${MEM_PORT:-18942}
BASE=127.0.0.1:${BASE_PORT:-18944}
: "${DATABASE_URL:?DATABASE_URL: a database holding the full demo city}"
export DATABASE_URL
[ -x "$BIN" ] || { echo "tilebench_memory: no $BIN: go build -o bin/gridmap ./cmd/gridmap" >&2; exit 1; }
zooms=()
[ -n "${TILE_ZOOMS:-}" ] && zooms=(--tile-zooms "$TILE_ZOOMS")

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
ADDR=$PG "$BIN" serve --public-read --tile-cache-bytes 0 --tile-renderer postgis "${zooms[@]}" 2>/dev/null & pids+=($!)
ADDR=$MEM "$BIN" serve --public-read --tile-cache-bytes 0 --tile-renderer memory "${zooms[@]}" 2>/dev/null & pids+=($!)
servers="postgis=http://$PG,memory=http://$MEM"
if [ -n "${BASE_BIN:-}" ]; then
  ADDR=$BASE "$BASE_BIN" serve --public-read --tile-cache-bytes 0 "${zooms[@]}" 2>/dev/null & pids+=($!)
  servers="$servers,base=http://$BASE"
fi
for a in $PG $MEM ${BASE_BIN:+$BASE}; do
  for _ in $(seq 300); do curl -sf "http://$a/readyz" >/dev/null && break; sleep 0.1; done
done
echo "servers: postgis $(ps -o rss= -p "${pids[0]}") KiB RSS, memory $(ps -o rss= -p "${pids[1]}") KiB RSS (after start)"

"$BIN" bench tiles --servers "$servers" --zooms 13-15 --tiles 2000 --requests "${REQUESTS:-20000}" \
  --clients 16 --single 6/52/27,14/13372/7129 --repeat 20 --as-of "${AS_OF:-$(date -u -d '1 minute ago' +%Y-%m-%dT%H:%M:%SZ)}" --crs gcj02
"$BIN" bench tiles --servers "$servers" --zooms 13-15 --tiles 2000 --requests 2000 \
  --clients 16 --single z10 --repeat 10 | sed -n '/single/,/^in-memory/p' | grep -v '^in-memory'
echo "servers: postgis $(ps -o rss= -p "${pids[0]}") KiB RSS, memory $(ps -o rss= -p "${pids[1]}") KiB RSS (after the runs)"

# wrk: Debian's package (installed here when missing and we are root).
WRK=${WRK:-$(command -v wrk || true)}
if [ -z "$WRK" ] && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
  WRK=$(command -v wrk)
fi
[ -n "$WRK" ] || { echo "tilebench_memory: no wrk (apt-get install wrk, or WRK=…)" >&2; exit 1; }
paths=$(mktemp)
"$BIN" bench tiles --write-paths "$paths" --zooms 13-15 --tiles 2000
echo
echo "random tiles with wrk: the same 2000 z13–15 tiles, 16 connections, one wrk thread, gzip, ${WRK_SECONDS:-10} s a run:"
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system clock ticks
# PostgreSQL's: the backends serving the benchmark's database (the servers' pooled connections live
# through a run; other databases' backends, which come and go, are not counted).
db=$(psql "$DATABASE_URL" -Atc 'SELECT current_database()')
pgcpu() {
  local t=0 p
  for p in $(pgrep -f "^postgres: [^ ]+ $db "); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo $t
}
for run in 1 2 3; do
  for i in 0 1; do
    name=(postgis memory); addr=($PG $MEM)
    t0=$(cpu "${pids[$i]}"); p0=$(pgcpu)
    out=$(PATHS=$paths "$WRK" -t1 -c16 -d"${WRK_SECONDS:-10}"s -s scripts/wrk_tiles.lua "http://${addr[$i]}")
    t1=$(cpu "${pids[$i]}"); p1=$(pgcpu)
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    hz=$(getconf CLK_TCK)
    printf '  run %d %-8s %8.0f req/s  CPU a request: gridmap %5.1f µs, PostgreSQL %5.1f µs  (%s requests%s)\n' "$run" "${name[$i]}" \
      "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" "$(echo "($t1 - $t0) * 1000000 / $hz / $n" | bc -l)" \
      "$(echo "($p1 - $p0) * 1000000 / $hz / $n" | bc -l)" "$n" "${bad:+, $bad not 2xx}"
  done
done
rm -f "$paths"

echo
echo "PMTiles export, units z0–16 (two workers):"
out=$(mktemp -d)
for r in postgis memory; do
  for run in 1 2 3; do
    t0=$(date +%s.%N)
    "$BIN" export pmtiles --quiet --tile-renderer "$r" --layers units --minzoom 0 --maxzoom 16 --out "$out/units-$r.pmtiles" >"$out/log" 2>&1 \
      || { cat "$out/log"; exit 1; }
    t1=$(date +%s.%N)
    printf '  %-8s run %d: %6.2f s  %s\n' "$r" "$run" "$(echo "$t1 - $t0" | bc)" "$(grep -o '[0-9]* tiles rendered, [0-9]* with features' "$out/log")"
  done
  ls -l "$out/units-$r.pmtiles" | awk '{print "           archive " $5 " B"}'
done
rm -rf "$out"
