package data

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"gridmap/geo"
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
	// Grids and BackupGrids are the grids the person is the responsible
	// worker or a backup of (read by Person only).
	Grids       []string `json:"grids,omitempty"`
	BackupGrids []string `json:"backup_grids,omitempty"`
}

const personColumns = `id, name, coalesce(phone, ''), role, coalesce(department, ''), unit_code, status, version, created_at, updated_at, coalesce(oidc_subject, '')`

func scanPerson(row pgx.Row) (*PersonRow, error) {
	var p PersonRow
	var role, status string
	if err := row.Scan(&p.ID, &p.Name, &p.Phone, &role, &p.Department, &p.UnitCode, &status, &p.Version, &p.CreatedAt, &p.UpdatedAt, &p.OIDCSubject); err != nil {
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
	case pe.Code == "23505" && pe.ConstraintName == "people_oidc_subject":
		// A conflict, not a bad member: the subject is fine, but another
		// person holds it (unmap them first).
		return &ConflictError{Msg: fmt.Sprintf("oidc_subject %q is another person's: one subject speaks for one person (clear it there first)", p.OIDCSubject)}
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
	if err := checkPersonUnit(ctx, s.Pool, 0, &p); err != nil {
		return nil, err
	}
	row, err := scanPerson(s.Pool.QueryRow(ctx, `
		INSERT INTO people (name, phone, role, department, unit_code, status, oidc_subject)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+personColumns,
		p.Name, nullText(p.Phone), string(p.Role), nullText(p.Department), p.UnitCode, string(p.Status), nullText(p.OIDCSubject)))
	if err != nil {
		return nil, personErr(err, &p)
	}
	return row, nil
}

// PersonBySubject is the id of the active person whose OIDC subject is
// sub; 0 when none is (unmapped, or the person is inactive: a JWT of theirs
// then speaks for nobody, as a token of an inactive person does).
func (s *Store) PersonBySubject(ctx context.Context, sub string) (int64, error) {
	if sub == "" {
		return 0, nil
	}
	var id int64
	err := s.Pool.QueryRow(ctx, `SELECT coalesce((SELECT id FROM people WHERE oidc_subject = $1 AND status = 'active'), 0)`, sub).Scan(&id)
	return id, err
}

// Person returns one person with their grids; ErrNotFound when the id
// names nobody.
func (s *Store) Person(ctx context.Context, id int64) (*PersonRow, error) {
	p, err := getPerson(ctx, s.Pool, id)
	if err != nil {
		return nil, err
	}
	err = s.Pool.QueryRow(ctx, `SELECT
			coalesce(array_agg(grid_code ORDER BY grid_code) FILTER (WHERE rank = 0), '{}'),
			coalesce(array_agg(grid_code ORDER BY grid_code) FILTER (WHERE rank > 0), '{}')
		FROM grid_workers WHERE person_id = $1`, id).Scan(&p.Grids, &p.BackupGrids)
	return p, err
}

// checkPersonUnit refuses a unit code that names no current base unit, and
// a role change of a person who still holds grids.
func checkPersonUnit(ctx context.Context, q querier, id int64, p *grid.Person) error {
	if p.UnitCode != "" {
		var ok bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM units WHERE layer = 'base' AND code = $1 AND valid_to IS NULL)`, p.UnitCode).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return invalid("unit_code", "no current unit %s", p.UnitCode)
		}
	}
	if id != 0 && p.Role != grid.RoleWorker {
		var grids []string
		if err := q.QueryRow(ctx, `SELECT coalesce(array_agg(grid_code ORDER BY grid_code), '{}') FROM grid_workers WHERE person_id = $1`, id).Scan(&grids); err != nil {
			return err
		}
		if len(grids) > 0 {
			return invalid("role", "person %d is the worker or a backup of grid %s: give the grids to another worker first (PUT /v1/grids/{code}/workers)", id, strings.Join(grids, ", "))
		}
	}
	return nil
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
		if err := checkPersonUnit(ctx, tx, id, &p); err != nil {
			return err
		}
		out, err = scanPerson(tx.QueryRow(ctx, `
			UPDATE people SET name = $2, phone = $3, role = $4, department = $5, unit_code = $6, status = $7,
				oidc_subject = $8, version = version + 1, updated_at = now()
			WHERE id = $1 RETURNING `+personColumns,
			id, p.Name, nullText(p.Phone), string(p.Role), nullText(p.Department), p.UnitCode, string(p.Status), nullText(p.OIDCSubject)))
		return personErr(err, &p)
	})
	return out, err
}

// PeopleFilter selects people; zero members select all.
type PeopleFilter struct {
	Role       grid.PersonRole
	Department string
	Status     grid.PersonStatus
	// Unit: workers with a grid under this unit, supervisors overseeing
	// it or a unit inside it.
	Unit   string
	Limit  int
	Cursor string // the id of the last person of the previous page
}

// PeoplePage is one page of people and the cursor of the next ("" at
// the end).
type PeoplePage struct {
	People []PersonRow
	Next   string
}

// People lists people by id.
func (s *Store) People(ctx context.Context, f PeopleFilter) (*PeoplePage, error) {
	after := int64(0)
	if f.Cursor != "" {
		if _, err := fmt.Sscan(f.Cursor, &after); err != nil || fmt.Sprint(after) != f.Cursor || after < 0 {
			return nil, filterErr("cursor", "cursor %q is not one this list issued: follow the next link of the previous page", f.Cursor)
		}
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+personColumns+` FROM people p
		WHERE p.id > $1 AND ($2 = '' OR p.role = $2) AND ($3 = '' OR p.department = $3) AND ($4 = '' OR p.status = $4)
		  AND ($5 = '' OR (p.unit_code <> '' AND (p.unit_code LIKE $5 || '%' OR $5 LIKE p.unit_code || '%'))
		       OR EXISTS (SELECT 1 FROM grid_workers g WHERE g.person_id = p.id AND g.grid_code LIKE $5 || '%'))
		ORDER BY p.id LIMIT $6`, after, string(f.Role), f.Department, string(f.Status), f.Unit, f.Limit+1)
	if err != nil {
		return nil, err
	}
	page := &PeoplePage{People: []PersonRow{}}
	err = forEach(rows, func() error {
		p, err := scanPerson(rows)
		if err == nil {
			page.People = append(page.People, *p)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(page.People) > f.Limit {
		page.People = page.People[:f.Limit]
		page.Next = fmt.Sprint(page.People[f.Limit-1].ID)
	}
	return page, nil
}

// PersonImportError is one bad row of a people CSV: Row counts from 1 at
// the header, as a spreadsheet numbers it.
type PersonImportError struct {
	Row   int    `json:"row"`
	Field string `json:"field"`
	Msg   string `json:"message"`
}

// PeopleImportError is a people CSV with bad rows: nothing was written.
// The API answers 422 listing them.
type PeopleImportError struct{ Rows []PersonImportError }

func (e *PeopleImportError) Error() string {
	return fmt.Sprintf("%d rows of the people file are bad; nothing was imported", len(e.Rows))
}

// PeopleImportResult is what an import wrote: a row whose phone names a
// person already stored updates them, any other creates a person.
type PeopleImportResult struct {
	Created int     `json:"created"`
	Updated int     `json:"updated"`
	IDs     []int64 `json:"ids"` // per data row, in file order
}

// MaxPeopleImportRows bounds one people CSV.
const MaxPeopleImportRows = 20000

// peopleColumns are the columns of a people CSV; name and role are
// required, the others may be left out of the header.
var peopleCSVColumns = []string{"name", "phone", "role", "department", "unit_code", "status", "oidc_subject"}

// ImportPeople reads a people CSV (a header naming its columns, then one
// person a row) and writes every row in one transaction, or nothing: any
// bad row (a member that breaks a rule, a phone twice in the file, an
// unknown department) is reported, with every other bad row, as a
// *PeopleImportError.
func (s *Store) ImportPeople(ctx context.Context, in io.Reader) (*PeopleImportResult, error) {
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, &FatalImportError{Err: fmt.Errorf("people CSV: no header row: %w", err)}
	}
	col := map[string]int{}
	var bad []PersonImportError
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(peopleCSVColumns, h) {
			bad = append(bad, PersonImportError{Row: 1, Field: h, Msg: fmt.Sprintf("unknown column %q: the columns are %s", geo.Excerpt(h, geo.MaxExcerpt), strings.Join(peopleCSVColumns, ", "))})
			continue
		}
		if _, dup := col[h]; dup {
			bad = append(bad, PersonImportError{Row: 1, Field: h, Msg: "column named twice"})
		}
		col[h] = i
	}
	for _, need := range []string{"name", "role"} {
		if _, ok := col[need]; !ok {
			bad = append(bad, PersonImportError{Row: 1, Field: need, Msg: "the header has no " + need + " column"})
		}
	}
	if len(bad) > 0 {
		return nil, &PeopleImportError{Rows: bad}
	}
	var people []grid.Person
	phoneRow := map[string]int{}
	subjectRow := map[string]int{}
	_, withSubject := col["oidc_subject"]
	for row := 2; ; row++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, PersonImportError{Row: pe.Line, Field: "", Msg: pe.Err.Error()})
				return nil, &PeopleImportError{Rows: bad}
			}
			return nil, &FatalImportError{Err: err}
		}
		if len(people) == MaxPeopleImportRows {
			return nil, &PeopleImportError{Rows: append(bad, PersonImportError{Row: row, Msg: fmt.Sprintf("more than %d people: split the file", MaxPeopleImportRows)})}
		}
		if len(rec) != len(header) {
			bad = append(bad, PersonImportError{Row: row, Msg: fmt.Sprintf("%d fields, the header has %d", len(rec), len(header))})
			people = append(people, grid.Person{})
			continue
		}
		get := func(c string) string {
			if i, ok := col[c]; ok {
				return rec[i]
			}
			return ""
		}
		p := grid.Person{Name: get("name"), Phone: get("phone"), Role: grid.PersonRole(strings.TrimSpace(get("role"))),
			Department: get("department"), UnitCode: get("unit_code"), Status: grid.PersonStatus(strings.TrimSpace(get("status"))),
			OIDCSubject: get("oidc_subject")}
		if err := checkPerson(&p); err != nil {
			var ie *InvalidError
			errors.As(err, &ie)
			bad = append(bad, PersonImportError{Row: row, Field: ie.Field, Msg: ie.Msg})
		} else if p.Phone != "" {
			if first, dup := phoneRow[p.Phone]; dup {
				bad = append(bad, PersonImportError{Row: row, Field: "phone", Msg: fmt.Sprintf("the phone of row %d too: a phone names one person", first)})
			} else {
				phoneRow[p.Phone] = row
			}
		}
		if p.OIDCSubject != "" {
			if first, dup := subjectRow[p.OIDCSubject]; dup {
				bad = append(bad, PersonImportError{Row: row, Field: "oidc_subject", Msg: fmt.Sprintf("the oidc_subject of row %d too: a subject speaks for one person", first)})
			} else {
				subjectRow[p.OIDCSubject] = row
			}
		}
		people = append(people, p)
	}
	if len(people) == 0 && len(bad) == 0 {
		return nil, &PeopleImportError{Rows: []PersonImportError{{Row: 2, Msg: "the file has no people"}}}
	}
	// Departments are checked all rows at once, so that every unknown one
	// is reported with the other bad rows (the foreign key stays the net
	// under a department deleted meanwhile).
	rows, err := s.Pool.Query(ctx, `SELECT code FROM departments`)
	if err != nil {
		return nil, err
	}
	known, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for i, p := range people {
		if p.Department != "" && !slices.Contains(known, p.Department) {
			bad = append(bad, PersonImportError{Row: i + 2, Field: "department", Msg: fmt.Sprintf("unknown department %q (GET /v1/departments lists them)", p.Department)})
		}
	}
	if len(bad) > 0 {
		slices.SortStableFunc(bad, func(a, b PersonImportError) int { return a.Row - b.Row })
		return nil, &PeopleImportError{Rows: bad}
	}
	res := &PeopleImportResult{IDs: make([]int64, len(people))}
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		// Unit codes, and people who hold grids kept workers, in the
		// transaction that writes them.
		for i := range people {
			p := &people[i]
			var id int64
			if p.Phone != "" {
				if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT id FROM people WHERE phone = $1 FOR UPDATE), 0)`, p.Phone).Scan(&id); err != nil {
					return err
				}
			}
			if err := checkPersonUnit(ctx, tx, id, p); err != nil {
				var ie *InvalidError
				if !errors.As(err, &ie) {
					return err
				}
				bad = append(bad, PersonImportError{Row: i + 2, Field: ie.Field, Msg: ie.Msg})
			}
		}
		if len(bad) > 0 {
			return &PeopleImportError{Rows: bad}
		}
		for i, p := range people {
			var id int64
			var inserted bool
			err := tx.QueryRow(ctx, `
				WITH upd AS (
					UPDATE people SET name = $1, role = $3, department = $4, unit_code = $5, status = $6,
						oidc_subject = CASE WHEN $8 THEN $7 ELSE oidc_subject END,
						version = version + 1, updated_at = now()
					WHERE $2::text IS NOT NULL AND phone = $2 RETURNING id),
				ins AS (
					INSERT INTO people (name, phone, role, department, unit_code, status, oidc_subject)
					SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS (SELECT 1 FROM upd) RETURNING id)
				SELECT id, false FROM upd UNION ALL SELECT id, true FROM ins`,
				p.Name, nullText(p.Phone), string(p.Role), nullText(p.Department), p.UnitCode, string(p.Status),
				nullText(p.OIDCSubject), withSubject).Scan(&id, &inserted)
			if err != nil {
				if e := personErr(err, &p); e != err {
					var ie *InvalidError
					var ce *ConflictError
					switch {
					case errors.As(e, &ie):
						return &PeopleImportError{Rows: []PersonImportError{{Row: i + 2, Field: ie.Field, Msg: ie.Msg}}}
					case errors.As(e, &ce):
						return &PeopleImportError{Rows: []PersonImportError{{Row: i + 2, Field: "oidc_subject", Msg: ce.Msg}}}
					}
				}
				return fmt.Errorf("row %d: %w", i+2, err)
			}
			res.IDs[i] = id
			if inserted {
				res.Created++
			} else {
				res.Updated++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}
