#!/usr/bin/env bash
# Vector tiles: cold and warm latency and throughput per tileset at z6, z10 and z14, and gzipped sizes over
# the whole city (docs/benchmarks.md, "Vector tiles").
#
#   make demo && make build && scripts/tilebench.sh
#
# Runs two `gridmap serve --public-read` on DATABASE_URL's database (the full demo: ~20,000 grids, 200,000 objects): one
# with --tile-cache-bytes 0, where every request renders its tile (cold), and one with the default cache,
# primed with one request per tile (warm). Load: hey (`go install github.com/rakyll/hey@v0.1.5`, or
# HEY=... for another binary). Tiles are those of Shenzhen's demo city. LAYERS (default "units objects")
# picks the tilesets; the province case (scripts/provincebench.sh) measures units only.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/gridmap}
HEY=${HEY:-$(command -v hey || echo "$(go env GOPATH)/bin/hey")}
COLD=127.0.0.1:${COLD_PORT:-18933}
WARM=127.0.0.1:${WARM_PORT:-18932}
LAYERS=${LAYERS:-units objects}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:55432/gridmap?sslmode=disable}
[ -x "$HEY" ] || { echo "tilebench: no hey at $HEY: go install github.com/rakyll/hey@v0.1.5" >&2; exit 1; }
[ -x "$BIN" ] || { echo "tilebench: no $BIN: make build" >&2; exit 1; }

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
ADDR=$COLD "$BIN" serve --public-read --tile-cache-bytes 0 2>/dev/null & pids+=($!)
ADDR=$WARM "$BIN" serve --public-read 2>/dev/null & pids+=($!)
for a in $COLD $WARM; do
  for _ in $(seq 600); do curl -sf "http://$a/readyz" >/dev/null && break; sleep 0.1; done
done

# hey's summary as "avg ms, p50 ms, p99 ms, requests/s".
run() {
  "$HEY" -H 'Accept-Encoding: gzip' "$@" | awk '
    /Average:/ {avg=$2*1000} /Requests\/sec:/ {rps=$2}
    /50%% in/ {p50=$3*1000} /99%% in/ {p99=$3*1000}
    END {printf "%6.1f %6.1f %6.1f %8.0f", avg, p50, p99, rps}'
}

echo "tile                       gzip B | cold c=1: avg p50 ms, req/s | cold c=4: avg p99 ms, req/s | warm c=16: avg p99 ms, req/s"
for layer in $LAYERS; do
  for t in 6/52/27 10/836/445 14/13372/7129; do
    url=/tiles/$layer/$t.mvt
    read -r code size < <(curl -s -H 'Accept-Encoding: gzip' -o /dev/null -w '%{http_code} %{size_download}\n' "http://$WARM$url")   # primes the cache
    # A problem answer (a server that wants a credential, say) would be measured as a very fast tile.
    [ "$code" = 200 ] || { echo "tilebench: $url answered $code" >&2; exit 1; }
    read -r c1avg c1p50 _ c1rps <<<"$(run -n 50 -c 1 "http://$COLD$url")"
    read -r c4avg _ c4p99 c4rps <<<"$(run -n 200 -c 4 "http://$COLD$url")"
    read -r wavg _ wp99 wrps <<<"$(run -n 50000 -c 16 "http://$WARM$url")"
    printf '%-26s %7d | %5.1f %5.1f %6.0f | %5.1f %5.1f %6.0f | %4.2f %4.1f %7.0f\n' \
      "$layer/$t" "$size" "$c1avg" "$c1p50" "$c1rps" "$c4avg" "$c4p99" "$c4rps" "$wavg" "$wp99" "$wrps"
  done
done

# Every tile over the city (113.75–114.63 E, 22.40–22.86 N), once each, cold.
echo
for z in 6 10 12 14; do
  read -r x0 y0 x1 y1 < <(awk -v z="$z" 'function tx(lon){return int((lon+180)/360*2^z)}
    function ty(lat, r){r=lat*atan2(0,-1)/180; return int((1-log(sin(r)/cos(r)+1/cos(r))/atan2(0,-1))/2*2^z)}
    BEGIN{print tx(113.75), ty(22.86), tx(114.63), ty(22.40)}')
  for layer in $LAYERS; do
    for x in $(seq "$x0" "$x1"); do for y in $(seq "$y0" "$y1"); do
      curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w "%{http_code} %{size_download} %{time_total}\n" "http://$COLD/tiles/$layer/$z/$x/$y.mvt"
    done; done | awk -v l="$layer" -v z="$z" '
      {n++; t+=$3; if ($3>tm) tm=$3; if ($1==200) {k++; s+=$2; if ($2>sm) sm=$2}}
      END {printf "%-8s z%-2d %5d tiles, %5d with features: gzip mean %6.1f KB, max %6.1f KB; cold time mean %5.1f ms, max %6.1f ms\n",
             l, z, n, k, s/k/1024, sm/1024, t/n*1000, tm*1000}'
  done
done
