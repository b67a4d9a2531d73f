#!/usr/bin/env bash
# Checks the Citus DDL of docs/scaling.md (section 3.4) without Citus (not packaged for Debian 12): on a
# scratch database migrated by gridmap (and holding the small demo city, so the back-fills have rows), it
# defines stand-ins for create_reference_table and create_distributed_table that enforce the rules Citus
# applies when it distributes a table, runs the DDL with ON_ERROR_STOP, then checks the foreign keys:
#   - no triggers left on the table (Citus refuses to distribute a table with triggers);
#   - the distribution column exists, is NOT NULL and is not generated (an INSERT is routed by it);
#   - every primary key and unique constraint holds it;
#   - a co-located table's distribution column has the type of its group's;
#   - a foreign key between distributed tables holds both distribution columns; none from a reference
#     table to a distributed one; a distributed table's other foreign keys point to reference tables.
#
#   go build -o bin/gridmap ./cmd/gridmap && scripts/citus-ddl-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/gridmap}
DOC=${DOC:-docs/scaling.md}
DB=${CHECK_DB:-gridmap_citus_check}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:55432/gridmap?sslmode=disable}
URL=$(sed -E "s#/[^/?]+(\?|$)#/$DB\1#" <<<"$DATABASE_URL")
ADMIN=$(sed -E "s#/[^/?]+(\?|$)#/postgres\1#" <<<"$DATABASE_URL")
[ "$DB" != gridmap ] || { echo "citus-ddl-check: CHECK_DB=gridmap would drop the shared database" >&2; exit 1; }
psql -q "$ADMIN" -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
trap 'psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null' EXIT
DATABASE_URL=$URL "$BIN" demo --scale small --grids-per-community 4 --objects 5000 --events 500 >/dev/null

psql -q "$URL" -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE citus_stub_tables (rel regclass PRIMARY KEY, kind text NOT NULL, col text, colocate_with regclass);
CREATE FUNCTION citus_stub_no_triggers(t regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = t AND NOT tgisinternal) THEN
        RAISE EXCEPTION 'cannot distribute %: it has triggers (%)', t,
            (SELECT string_agg(tgname, ', ') FROM pg_trigger WHERE tgrelid = t AND NOT tgisinternal);
    END IF;
END $$;
CREATE FUNCTION create_reference_table(table_name regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM citus_stub_no_triggers(table_name);
    INSERT INTO citus_stub_tables VALUES (table_name, 'reference', NULL, NULL);
END $$;
CREATE FUNCTION create_distributed_table(table_name regclass, distribution_column text, distribution_type text DEFAULT 'hash',
        colocate_with text DEFAULT 'default', shard_count int DEFAULT NULL) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    a pg_attribute;
    c record;
    grp regclass;
BEGIN
    PERFORM citus_stub_no_triggers(table_name);
    SELECT * INTO a FROM pg_attribute WHERE attrelid = table_name AND attname = distribution_column AND NOT attisdropped;
    IF NOT FOUND THEN RAISE EXCEPTION '%: no column %', table_name, distribution_column; END IF;
    IF NOT a.attnotnull THEN RAISE EXCEPTION '%.%: may be NULL', table_name, distribution_column; END IF;
    IF a.attgenerated <> '' THEN RAISE EXCEPTION '%.%: generated', table_name, distribution_column; END IF;
    FOR c IN SELECT conname, conkey FROM pg_constraint WHERE conrelid = table_name AND contype IN ('p', 'u') LOOP
        IF NOT a.attnum = ANY(c.conkey) THEN
            RAISE EXCEPTION '%: constraint % lacks the distribution column %', table_name, c.conname, distribution_column;
        END IF;
    END LOOP;
    IF colocate_with NOT IN ('default', 'none') THEN
        grp := colocate_with::regclass;
        IF (SELECT atttypid FROM pg_attribute p JOIN citus_stub_tables t ON t.rel = p.attrelid AND p.attname = t.col
            WHERE t.rel = grp AND t.kind = 'distributed') IS DISTINCT FROM a.atttypid THEN
            RAISE EXCEPTION '%: cannot co-locate with % (not distributed, or another column type)', table_name, grp;
        END IF;
    END IF;
    INSERT INTO citus_stub_tables VALUES (table_name, 'distributed', distribution_column, grp);
END $$;
SQL

# The SQL blocks of section 3.4.
awk '/^### 3.4 /{on=1} /^### 3.5 /{on=0} on && /^```sql/{sql=1; next} on && /^```/{sql=0} sql' "$DOC" > "/tmp/$DB.sql"
psql -q "$URL" -v ON_ERROR_STOP=1 -o /dev/null -f "/tmp/$DB.sql"

psql -q "$URL" -v ON_ERROR_STOP=1 <<'SQL'
DO $$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT c.conname, c.conrelid::regclass AS src, c.confrelid::regclass AS dst, c.conkey, c.confkey,
               s.kind AS skind, s.col AS scol, d.kind AS dkind, d.col AS dcol
        FROM pg_constraint c
        LEFT JOIN citus_stub_tables s ON s.rel = c.conrelid
        LEFT JOIN citus_stub_tables d ON d.rel = c.confrelid
        WHERE c.contype = 'f'
    LOOP
        IF f.skind = 'reference' AND f.dkind = 'distributed' THEN
            RAISE EXCEPTION 'foreign key % from reference table % to distributed %', f.conname, f.src, f.dst;
        END IF;
        IF f.skind = 'distributed' AND f.dkind IS DISTINCT FROM 'reference' AND f.dkind IS DISTINCT FROM 'distributed' THEN
            RAISE EXCEPTION 'foreign key % from distributed % to local table %', f.conname, f.src, f.dst;
        END IF;
        IF f.skind = 'distributed' AND f.dkind = 'distributed' AND NOT EXISTS (
            SELECT 1 FROM generate_subscripts(f.conkey, 1) i
            WHERE (SELECT attname FROM pg_attribute WHERE attrelid = f.src AND attnum = f.conkey[i]) = f.scol
              AND (SELECT attname FROM pg_attribute WHERE attrelid = f.dst AND attnum = f.confkey[i]) = f.dcol) THEN
            RAISE EXCEPTION 'foreign key % (% → %) does not hold both distribution columns', f.conname, f.src, f.dst;
        END IF;
    END LOOP;
END $$;
SQL
psql -q "$URL" -At -c "SELECT kind, count(*) FROM citus_stub_tables GROUP BY 1 ORDER BY 1" \
  -c "SELECT 'objects: ' || count(*) || ' rows, ' || count(DISTINCT district_key) || ' district keys' FROM objects" \
  -c "SELECT 'events: ' || count(*) || ' rows, log ' || (SELECT count(*) FROM event_log) || ', counts match: ' || ((SELECT sum(n) FROM event_counts) = count(*)) FROM events"
echo "citus-ddl-check: the DDL of docs/scaling.md 3.4 ran and passed the checks"
