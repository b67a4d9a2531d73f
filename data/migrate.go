package data

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate applies the embedded migrations that the database has not seen,
// each in its own transaction, in file-name order. Concurrent callers wait
// on an advisory lock, so several servers may start at once.
func Migrate(ctx context.Context, url string) ([]string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	return migrateConn(ctx, conn)
}

// migrateIfWritable migrates the database at url when it takes writes. A
// hot standby (or a primary in default_transaction_read_only) is left as
// it is and only checked: its schema must already be current, or the
// server would run queries the schema cannot answer.
func migrateIfWritable(ctx context.Context, url string) (writable bool, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, writableSQL).Scan(&writable); err != nil {
		return false, err
	}
	if !writable {
		return false, checkSchema(ctx, conn)
	}
	_, err = migrateConn(ctx, conn)
	return true, err
}

// writableSQL says whether a session of this URL may write.
const writableSQL = `SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'`

// PendingMigrations lists the embedded migrations the database behind q
// has not applied (all of them when it has no schema_migrations table).
func PendingMigrations(ctx context.Context, q querier) ([]string, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var done []string
	err = q.QueryRow(ctx, `SELECT coalesce(array_agg(version), '{}') FROM schema_migrations`).Scan(&done)
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "42P01" {
		done, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pending []string
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		if !slices.Contains(done, version) {
			pending = append(pending, version)
		}
	}
	return pending, nil
}

// checkSchema fails when the database lacks migrations this build needs.
func checkSchema(ctx context.Context, q querier) error {
	pending, err := PendingMigrations(ctx, q)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w: %d migrations not applied (%s … %s); run `gridmap migrate` against the primary",
			ErrSchemaBehind, len(pending), pending[0], pending[len(pending)-1])
	}
	return nil
}

// ErrSchemaBehind is a database, opened without migrating (read-only or
// PoolOptions.NoMigrate), whose schema is older than this build.
var ErrSchemaBehind = errors.New("the database schema is behind this build")

func migrateConn(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext('gridmap.migrate'))`); err != nil {
		return nil, err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock(hashtext('gridmap.migrate'))`)
	if _, err := conn.Exec(ctx, `SET client_min_messages = warning;
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version    text PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, err
	}
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var applied []string
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		var done bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, version).Scan(&done); err != nil {
			return applied, err
		}
		if done {
			continue
		}
		sql, err := migrationFiles.ReadFile(name)
		if err != nil {
			return applied, err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", version, err)
		}
		applied = append(applied, version)
	}
	// The months ahead, while the migration lock is held (every server
	// runs this on start; they need not all attach the same partitions).
	var made int
	if err := ensurePartitions(ctx, conn, PartitionsAhead, &made); err != nil {
		return applied, fmt.Errorf("partitions ahead: %w", err)
	}
	return applied, nil
}
