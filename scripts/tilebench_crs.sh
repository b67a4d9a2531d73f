#!/usr/bin/env bash
# GCJ-02 tiles against WGS-84 tiles, cold (docs/benchmarks.md, "GCJ-02 tiles"):
# every tile over the city at z6, z10, z12 and z14, once each, on a server
# that keeps no tiles (--tile-cache-bytes 0: each request renders), in
# WGS-84 and with ?crs=gcj02; then the three hot tiles of "Vector tiles"
# 50 times each, one client.
#
#   make demo && make build && scripts/tilebench_crs.sh
#
# DATABASE_URL's database holds the full demo (~20,000 grids, 200,000
# objects). Runs on ADDR (default 127.0.0.1:18934).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/gridmap}
ADDR=${ADDR:-127.0.0.1:18934}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:55432/gridmap?sslmode=disable}
[ -x "$BIN" ] || { echo "tilebench_crs: no $BIN: make build" >&2; exit 1; }
ADDR=$ADDR "$BIN" serve --public-read --tile-cache-bytes 0 2>/dev/null & pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://$ADDR/readyz" >/dev/null && break; sleep 0.1; done

# One line per tileset, zoom and system: tiles, with features, gzip mean,
# cold time mean and max.
for z in 6 10 12 14; do
  read -r x0 y0 x1 y1 < <(awk -v z="$z" 'function tx(lon){return int((lon+180)/360*2^z)}
    function ty(lat, r){r=lat*atan2(0,-1)/180; return int((1-log(sin(r)/cos(r)+1/cos(r))/atan2(0,-1))/2*2^z)}
    BEGIN{print tx(113.75), ty(22.86), tx(114.64), ty(22.40)}')
  for layer in units objects; do
    for q in "" "?crs=gcj02"; do
      for x in $(seq "$x0" "$x1"); do for y in $(seq "$y0" "$y1"); do
        curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w "%{http_code} %{size_download} %{time_total}\n" "http://$ADDR/tiles/$layer/$z/$x/$y.mvt$q"
      done; done | awk -v l="$layer" -v z="$z" -v q="${q:-wgs84}" '
        {n++; t+=$3; if ($3>tm) tm=$3; if ($1==200) {k++; s+=$2}}
        END {printf "%-8s z%-2d %-12s %5d tiles, %5d with features: gzip mean %5.1f KB; cold mean %5.1f ms, max %6.1f ms\n",
               l, z, q, n, k, s/k/1024, t/n*1000, tm*1000}'
    done
  done
done

# The hot tiles, 50 cold renders each.
echo
for t in units/6/52/27 units/10/836/445 units/14/13372/7129 objects/10/836/445 objects/14/13372/7129; do
  for q in "" "?crs=gcj02"; do
    for _ in $(seq 50); do
      curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w "%{size_download} %{time_total}\n" "http://$ADDR/tiles/$t.mvt$q"
    done | sort -k2 -n | awk -v t="$t" -v q="${q:-wgs84}" '{s=$1; v[NR]=$2; sum+=$2} END {printf "%-24s %-12s %7d B gzip: mean %5.1f ms, p50 %5.1f ms\n", t, q, s, sum/NR*1000, v[int(NR/2)+1]*1000}'
  done
done
