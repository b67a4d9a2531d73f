package data

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"gridmap/grid"
)

// PersonRow is a person as stored: the written members, the id and the
// version (the ETag of PUT /v1/people/{id}).
type PersonRow struct {
	ID int64 `json:"id"`
	grid.Person
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

const personColumns = `id, name, coalesce(phone, ''), role, coalesce(department, ''), unit_code, status, version, created_at, updated_at`

func scanPerson(row pgx.Row) (*PersonRow, error) {
	var p PersonRow
	var role, status string
	if err := row.Scan(&p.ID, &p.Name, &p.Phone, &role, &p.Department, &p.UnitCode, &status, &p.Version, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return nil, err
	}
	p.Role, p.Status = grid.PersonRole(role), grid.PersonStatus(status)
	return &p, nil
}

func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// personErr turns the constraint violations a person's write can meet
// into the member at fault.
func personErr(err error, p *grid.Person) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch {
	case pe.Code == "23503" && pe.ConstraintName == "people_department_fkey":
		return invalid("department", "unknown department %q (GET /v1/departments lists them)", p.Department)
	case pe.Code == "23505" && pe.ConstraintName == "people_phone":
		return invalid("phone", "phone %s is another person's", grid.MaskPhone(p.Phone))
	}
	return err
}

func checkPerson(p *grid.Person) error {
	p.Normalize()
	if err := p.Validate(); err != nil {
		var pe *grid.PersonError
		if errors.As(err, &pe) {
			return invalid(pe.Field, "%s", pe.Msg)
		}
		return invalid("person", "%v", err)
	}
	return nil
}

// CreatePerson stores a new person. A member that breaks a rule (an
// unknown department, a phone another person has) is an *InvalidError.
func (s *Store) CreatePerson(ctx context.Context, p grid.Person) (*PersonRow, error) {
	if err := checkPerson(&p); err != nil {
		return nil, err
	}
	row, err := scanPerson(s.Pool.QueryRow(ctx, `
		INSERT INTO people (name, phone, role, department, unit_code, status)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+personColumns,
		p.Name, nullText(p.Phone), string(p.Role), nullText(p.Department), p.UnitCode, string(p.Status)))
	if err != nil {
		return nil, personErr(err, &p)
	}
	return row, nil
}

// Person returns one person; ErrNotFound when the id names nobody.
func (s *Store) Person(ctx context.Context, id int64) (*PersonRow, error) {
	return getPerson(ctx, s.Pool, id)
}

func getPerson(ctx context.Context, q querier, id int64) (*PersonRow, error) {
	p, err := scanPerson(q.QueryRow(ctx, `SELECT `+personColumns+` FROM people WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("person %d: %w", id, ErrNotFound)
	}
	return p, err
}

// PutPerson replaces a person's members. ifVersion > 0 is a precondition
// (the version the editor read): a person who has moved on is a
// *StaleError and nothing is written.
func (s *Store) PutPerson(ctx context.Context, id int64, p grid.Person, ifVersion int) (*PersonRow, error) {
	if err := checkPerson(&p); err != nil {
		return nil, err
	}
	var out *PersonRow
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var cur int
		err := tx.QueryRow(ctx, `SELECT version FROM people WHERE id = $1 FOR UPDATE`, id).Scan(&cur)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("person %d: %w", id, ErrNotFound)
		case err != nil:
			return err
		case ifVersion > 0 && ifVersion != cur:
			return &StaleError{Resource: "person", Code: fmt.Sprint(id), Current: versionETag(cur)}
		}
		out, err = scanPerson(tx.QueryRow(ctx, `
			UPDATE people SET name = $2, phone = $3, role = $4, department = $5, unit_code = $6, status = $7,
				version = version + 1, updated_at = now()
			WHERE id = $1 RETURNING `+personColumns,
			id, p.Name, nullText(p.Phone), string(p.Role), nullText(p.Department), p.UnitCode, string(p.Status)))
		return personErr(err, &p)
	})
	return out, err
}
