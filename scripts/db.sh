#!/usr/bin/env bash
# Project-local PostgreSQL + PostGIS for gridmap.
#   scripts/db.sh start   install (when missing), init, start, create the database; print DATABASE_URL
#   scripts/db.sh stop    stop the local cluster
#   scripts/db.sh url     print DATABASE_URL
# When DATABASE_URL is already set, nothing is installed or started: that database is used.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PGVER=15
PGBIN=/usr/lib/postgresql/$PGVER/bin
DATADIR=$ROOT/.data
PGPORT=${GRIDMAP_PGPORT:-55432}
URL="postgres://postgres@127.0.0.1:$PGPORT/gridmap?sslmode=disable"

log() { echo "db: $*" >&2; }

# as_pg runs a command as the postgres OS user when we are root (initdb refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

install_packages() {
  local missing=()
  [ -x "$PGBIN/postgres" ] || missing+=(postgresql-$PGVER)
  [ -f /usr/share/postgresql/$PGVER/extension/postgis.control ] || missing+=(postgresql-$PGVER-postgis-3)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing packages ${missing[*]} and not root: install them or set DATABASE_URL"; exit 1
  fi
  log "installing ${missing[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

running() {
  [ -x "$PGBIN/pg_ctl" ] && [ -f "$PGDATA/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

# place_data picks the cluster's folder: .data/ in the project, unless we are
# root and the postgres user cannot reach it (a checkout under a private
# home directory), in which case a folder under /var/tmp named after the
# checkout is used, linked from .data/pg.
place_data() {
  mkdir -p "$DATADIR"
  PGDATA=$DATADIR/pg
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$DATADIR" 2>/dev/null; then
    local alt=/var/tmp/gridmap-$(printf %s "$ROOT" | md5sum | cut -c1-12)
    mkdir -p "$alt"
    [ -e "$DATADIR/pg" ] || ln -s "$alt/pg" "$DATADIR/pg"
    PGDATA=$alt/pg
    DATADIR=$alt
    log "postgres cannot reach $ROOT; the cluster lives in $alt"
  fi
  PGLOG=$DATADIR/pg.log
  SOCKDIR=$DATADIR/run
}

start() {
  if [ -n "${DATABASE_URL:-}" ]; then echo "DATABASE_URL=$DATABASE_URL"; return 0; fi
  install_packages
  place_data
  mkdir -p "$SOCKDIR"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$DATADIR" "$SOCKDIR"; fi
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    log "initdb $PGDATA"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust --locale=C.UTF-8 --encoding=UTF8 >/dev/null
    cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$SOCKDIR'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 512MB
work_mem = 64MB
maintenance_work_mem = 512MB
max_wal_size = 4GB
max_connections = 200
max_locks_per_transaction = 256
jit = off
CONF
  fi
  if ! running; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 start >/dev/null
    log "started on 127.0.0.1:$PGPORT (log $PGLOG)"
  fi
  local psql=(psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1)
  if [ "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='gridmap'")" != 1 ]; then
    "${psql[@]}" -d postgres -c "CREATE DATABASE gridmap"
  fi
  "${psql[@]}" -d gridmap -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis"
  echo "DATABASE_URL=$URL"
}

stop() {
  place_data 2>/dev/null
  if running; then as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null; log "stopped"; else log "not running"; fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  url) echo "${DATABASE_URL:-$URL}" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
