#!/usr/bin/env bash
# A loopback PostgreSQL 15 + PostGIS pair for gridmap's failover tests: a primary and a
# streaming hot standby made with pg_basebackup -R, each in a project-local data directory.
#   scripts/ha.sh start          install (when missing), init the primary, clone the standby, start both;
#                                print DATABASE_URL (both hosts, target_session_attrs=read-write) and GRIDMAP_READ_URL
#   scripts/ha.sh stop           stop both nodes (fast shutdown) and remove their data directories
#   scripts/ha.sh kill-primary   SIGKILL the primary's postmaster and backends (a crash: no shutdown checkpoint, no goodbye to clients)
#   scripts/ha.sh promote        promote the standby (pg_ctl promote) and wait until it takes writes
#   scripts/ha.sh status         each node's state (primary, standby, down) and the standby's replay lag
#   scripts/ha.sh urls           print the two URLs
# Ports: GRIDMAP_HA_PORT1 (default 25441, the first primary) and GRIDMAP_HA_PORT2 (25442, the standby),
# below Linux's ephemeral range (32768-60999), where a client socket can take a port a node
# wants to listen on again (scripts/db.sh's 55432 is inside it).
#
# Replication is synchronous (synchronous_commit=on with the standby named in
# synchronous_standby_names): a commit is acknowledged only once the standby has the WAL, so
# killing the primary loses no acknowledged write. The standby is cloned with
# synchronous_standby_names='' so that, once promoted, it takes writes alone (a single node
# has no one to wait for). fsync is off on both: these are throwaway test nodes.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PGVER=15
PGBIN=/usr/lib/postgresql/$PGVER/bin
P1=${GRIDMAP_HA_PORT1:-25441}
P2=${GRIDMAP_HA_PORT2:-25442}
DB=gridmap

log() { echo "ha: $*" >&2; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

install_packages() {
  local missing=()
  [ -x "$PGBIN/postgres" ] || missing+=(postgresql-$PGVER)
  [ -f /usr/share/postgresql/$PGVER/extension/postgis.control ] || missing+=(postgresql-$PGVER-postgis-3)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then log "missing packages ${missing[*]} and not root: install them"; exit 1; fi
  log "installing ${missing[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# place picks the nodes' folder: .data/ha in the project, or (as root, when the
# postgres user cannot reach the checkout) a folder under /var/tmp named after it.
place() {
  BASE=$ROOT/.data/ha
  mkdir -p "$ROOT/.data"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$ROOT/.data" 2>/dev/null; then
    BASE=/var/tmp/gridmap-ha-$(printf %s "$ROOT" | md5sum | cut -c1-12)
  fi
  N1=$BASE/n1
  N2=$BASE/n2
  SOCK=$BASE/run
}

url_primary() { echo "postgres://postgres@127.0.0.1:$P1,127.0.0.1:$P2/$DB?sslmode=disable&target_session_attrs=read-write"; }
url_read() { echo "postgres://postgres@127.0.0.1:$P2/$DB?sslmode=disable"; }

psqlp() { local port=$1; shift; psql -X -q -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 "$@"; }

node_port() { if [ "$1" = "$N1" ]; then echo "$P1"; else echo "$P2"; fi; }

up() { [ -f "$1/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }

start() {
  install_packages
  place
  mkdir -p "$BASE" "$SOCK"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$BASE" "$SOCK"; fi
  if [ ! -f "$N1/PG_VERSION" ]; then
    log "initdb $N1"
    as_pg "$PGBIN/initdb" -D "$N1" -U postgres --auth=trust --locale=C.UTF-8 --encoding=UTF8 >/dev/null
    cat >>"$N1/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $P1
unix_socket_directories = '$SOCK'
fsync = off
full_page_writes = off
shared_buffers = 128MB
max_connections = 200
max_locks_per_transaction = 256
jit = off
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
synchronous_commit = on
synchronous_standby_names = 'standby'
CONF
    echo "host replication postgres 127.0.0.1/32 trust" >>"$N1/pg_hba.conf"
  fi
  if ! up "$N1"; then
    as_pg "$PGBIN/pg_ctl" -D "$N1" -l "$BASE/n1.log" -w -t 60 start >/dev/null
    log "primary started on 127.0.0.1:$P1 (log $BASE/n1.log)"
  fi
  if [ "$(psqlp "$P1" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'")" != 1 ]; then
    # Created before the standby is cloned: until it streams, the primary's
    # synchronous commits would wait for it.
    psqlp "$P1" -d postgres -c "SET synchronous_commit = local" -c "CREATE DATABASE $DB"
    psqlp "$P1" -d "$DB" -c "SET synchronous_commit = local" -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS postgis"
  fi
  if [ ! -f "$N2/PG_VERSION" ]; then
    psqlp "$P1" -d postgres -tAc "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'standby'" | grep -q 1 ||
      psqlp "$P1" -d postgres -c "SELECT pg_create_physical_replication_slot('standby')" >/dev/null
    log "pg_basebackup -R into $N2"
    as_pg "$PGBIN/pg_basebackup" -D "$N2" -d "host=127.0.0.1 port=$P1 user=postgres application_name=standby" \
      -R -S standby -X stream -c fast
    # wal_retrieve_retry_interval: a standby whose primary is gone retries
    # the connection this often, and (PostgreSQL 15) a promotion that
    # arrives during the wait is acted on only after it: 5 s by default.
    cat >>"$N2/postgresql.auto.conf" <<CONF
port = $P2
synchronous_standby_names = ''
wal_retrieve_retry_interval = 500ms
CONF
  fi
  if ! up "$N2"; then
    as_pg "$PGBIN/pg_ctl" -D "$N2" -l "$BASE/n2.log" -w -t 60 start >/dev/null
    log "standby started on 127.0.0.1:$P2 (log $BASE/n2.log)"
  fi
  for _ in $(seq 100); do
    [ "$(psqlp "$P1" -d postgres -tAc "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'standby' AND state = 'streaming'")" = 1 ] && break
    sleep 0.1
  done
  echo "DATABASE_URL=$(url_primary)"
  echo "GRIDMAP_READ_URL=$(url_read)"
}

stop() {
  place
  for n in "$N1" "$N2"; do
    if up "$n"; then as_pg "$PGBIN/pg_ctl" -D "$n" -m immediate -w stop >/dev/null || true; fi
  done
  rm -rf "$BASE"
  log "stopped; removed $BASE"
}

kill_primary() {
  place
  local n
  for n in "$N1" "$N2"; do
    up "$n" || continue
    if [ "$(psqlp "$(node_port "$n")" -d postgres -tAc "SELECT NOT pg_is_in_recovery()")" = t ]; then
      local pid children
      pid=$(head -1 "$n/postmaster.pid")
      # The postmaster and every backend at once, as when the host dies: a
      # postmaster killed alone leaves its backends finishing what they run.
      children=$(pgrep -P "$pid" || true)
      # shellcheck disable=SC2086
      kill -9 "$pid" $children
      echo "killed_at=$(date +%s.%N)"
      # The postmaster's children notice it is gone and exit; wait for the port to close.
      for _ in $(seq 100); do
        "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$(node_port "$n")" || break
        sleep 0.1
      done
      log "killed the primary on port $(node_port "$n") (postmaster $pid)"
      return 0
    fi
  done
  log "no primary running"; exit 1
}

promote() {
  place
  echo "promote_at=$(date +%s.%N)"
  as_pg "$PGBIN/pg_ctl" -D "$N2" -w -t 60 promote >/dev/null
  for _ in $(seq 200); do
    [ "$(psqlp "$P2" -d postgres -tAc "SELECT NOT pg_is_in_recovery()")" = t ] && { log "standby on port $P2 promoted"; echo "promoted_at=$(date +%s.%N)"; return 0; }
    sleep 0.05
  done
  log "standby did not leave recovery"; exit 1
}

status() {
  place
  local n port
  for n in "$N1" "$N2"; do
    port=$(node_port "$n")
    if ! up "$n"; then echo "127.0.0.1:$port down"; continue; fi
    psqlp "$port" -d postgres -tAc "SELECT '127.0.0.1:$port ' || CASE WHEN pg_is_in_recovery()
      THEN 'standby replay_lsn=' || pg_last_wal_replay_lsn() || ' lag_s=' || coalesce(round(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::numeric, 3)::text, '-')
      ELSE 'primary lsn=' || pg_current_wal_lsn() || ' streaming=' || (SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming') END"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  kill-primary) kill_primary ;;
  promote) promote ;;
  status) status ;;
  urls) echo "DATABASE_URL=$(url_primary)"; echo "GRIDMAP_READ_URL=$(url_read)" ;;
  *) echo "usage: $0 start|stop|kill-primary|promote|status|urls" >&2; exit 2 ;;
esac
