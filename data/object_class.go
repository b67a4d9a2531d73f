package data

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// seedClasses loads the class catalogue's seed, leaving existing classes
// as they are.
func (s *Store) seedClasses(ctx context.Context) error {
	classes, err := SeedClasses()
	if err != nil {
		return err
	}
	batch := &pgx.Batch{}
	for _, c := range classes {
		batch.Queue(`INSERT INTO object_classes (code, kind, major, major_name, minor, name, geometry_types)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO NOTHING`,
			c.Code, string(c.Kind), c.Major, c.MajorName, c.Minor, c.Name, c.GeometryTypes)
	}
	return s.Pool.SendBatch(ctx, batch).Close()
}

// SeedClasses reads data/seed/object_classes.csv.
func SeedClasses() ([]grid.Class, error) {
	return readSeed("seed/object_classes.csv", ReadClasses)
}

// ReadClasses reads a class catalogue in the seed's CSV form (header
// code,kind,major,major_name,minor,name,geometry_types; types |-separated),
// naming the line of the first bad row.
func ReadClasses(in io.Reader) ([]grid.Class, error) {
	return readCatalogue(in, "class", 7, func(rec []string) (grid.Class, error) {
		c := grid.Class{Code: rec[0], Kind: grid.ObjectKind(rec[1]), Major: rec[2], MajorName: rec[3], Minor: rec[4], Name: rec[5],
			GeometryTypes: strings.Split(rec[6], "|")}
		return c, c.Validate()
	})
}

// Classes returns the catalogue by code.
func (s *Store) Classes(ctx context.Context) (map[string]grid.Class, error) {
	rows, err := s.Reader(ctx).Query(ctx, `SELECT code, kind, major, major_name, minor, name, geometry_types FROM object_classes ORDER BY code`)
	if err != nil {
		return nil, err
	}
	out := map[string]grid.Class{}
	err = forEach(rows, func() error {
		var c grid.Class
		var kind string
		if err := rows.Scan(&c.Code, &kind, &c.Major, &c.MajorName, &c.Minor, &c.Name, &c.GeometryTypes); err != nil {
			return err
		}
		c.Kind = grid.ObjectKind(kind)
		out[c.Code] = c
		return nil
	})
	return out, err
}

// AddClass adds a class to the catalogue.
func (s *Store) AddClass(ctx context.Context, c grid.Class) error {
	if err := c.Validate(); err != nil {
		return invalid("class", "%v", err)
	}
	_, err := s.Pool.Exec(ctx, `INSERT INTO object_classes (code, kind, major, major_name, minor, name, geometry_types)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, c.Code, string(c.Kind), c.Major, c.MajorName, c.Minor, c.Name, c.GeometryTypes)
	if isPgCode(err, "23505") {
		return fmt.Errorf("class %s: %w", c.Code, ErrExists)
	}
	return err
}

// AddClasses adds classes in one transaction, leaving existing codes as
// they are; it returns how many were added and the codes that existed.
func (s *Store) AddClasses(ctx context.Context, classes []grid.Class) (int, []string, error) {
	added := 0
	var existing []string
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		for _, c := range classes {
			if err := c.Validate(); err != nil {
				return invalid("class", "%v", err)
			}
			tag, err := tx.Exec(ctx, `INSERT INTO object_classes (code, kind, major, major_name, minor, name, geometry_types)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO NOTHING`,
				c.Code, string(c.Kind), c.Major, c.MajorName, c.Minor, c.Name, c.GeometryTypes)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 1 {
				added++
			} else {
				existing = append(existing, c.Code)
			}
		}
		return nil
	})
	return added, existing, err
}
