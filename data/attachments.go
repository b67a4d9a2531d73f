package data

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/media"
)

// Attachment is a file of an event, stored under its SHA-256.
type Attachment struct {
	ID        int64       `json:"id"`
	Event     string      `json:"event"`
	SHA256    string      `json:"sha256"`
	MediaType string      `json:"media_type"`
	Size      int64       `json:"size_bytes"`
	Name      string      `json:"name,omitempty"`
	GPS       *[2]float64 `json:"gps,omitempty"` // [lon, lat] WGS-84, from a JPEG's EXIF
	DistanceM *float64    `json:"distance_m,omitempty"`
	Far       bool        `json:"far"`
	CreatedBy string      `json:"created_by"`
	CreatedAt time.Time   `json:"created_at"`
}

// NewAttachment is an upload, its type already checked from its bytes.
type NewAttachment struct {
	Event     string
	MediaType string
	Name      string
	Bytes     []byte
	GPS       *media.GPS
	// FarM is the distance from the event past which a photo's position
	// flags it.
	FarM  float64
	Actor string
}

const attachmentColumns = `id, event_code, sha256, media_type, size_bytes, name,
	ST_X(gps), ST_Y(gps), distance_m, far, created_by, created_at`

func scanAttachment(row pgx.Row, loc *time.Location) (*Attachment, error) {
	var a Attachment
	var lon, lat *float64
	if err := row.Scan(&a.ID, &a.Event, &a.SHA256, &a.MediaType, &a.Size, &a.Name, &lon, &lat, &a.DistanceM, &a.Far,
		&a.CreatedBy, &a.CreatedAt); err != nil {
		return nil, err
	}
	if lon != nil && lat != nil {
		a.GPS = &[2]float64{*lon, *lat}
	}
	a.CreatedAt = a.CreatedAt.In(loc)
	return &a, nil
}

// AddAttachment stores the blob and its row together: in one transaction
// that holds a lock on the hash, the event is checked, the blob put, the
// row written; should anything fail after a put that created the blob, the
// blob is deleted before the lock goes, so no blob is left without a row
// and no row without its blob (two uploads of the same bytes wait on the
// lock: the second finds the first's blob). The same bytes sent to the
// same event again answer the row there is (existed).
func (s *Store) AddAttachment(ctx context.Context, st media.Storage, a NewAttachment) (att *Attachment, existed bool, err error) {
	sum := media.Sum(a.Bytes)
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return nil, false, err
	}
	created := false
	defer func() {
		if err != nil && created {
			if derr := st.Delete(context.WithoutCancel(ctx), sum); derr != nil {
				err = errors.Join(err, fmt.Errorf("delete the blob of an attachment not written: %w", derr))
			}
		}
		_ = tx.Rollback(ctx)
	}()
	var one int
	if err := tx.QueryRow(ctx, `SELECT 1 FROM events WHERE code = $1 FOR KEY SHARE`, a.Event).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
		return nil, false, ErrNotFound
	} else if err != nil {
		return nil, false, err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('gridmap.blob.' || $1, 0))`, sum); err != nil {
		return nil, false, err
	}
	old, err := scanAttachment(tx.QueryRow(ctx, `SELECT `+attachmentColumns+` FROM attachments WHERE event_code = $1 AND sha256 = $2`,
		a.Event, sum), s.cityTime())
	if err == nil {
		return old, true, tx.Commit(ctx)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, false, err
	}
	if _, created, err = st.Put(ctx, a.Bytes); err != nil {
		return nil, false, fmt.Errorf("store attachment: %w", err)
	}
	var lon, lat *float64
	if a.GPS != nil {
		lon, lat = &a.GPS.Lon, &a.GPS.Lat
	}
	att, err = scanAttachment(tx.QueryRow(ctx, `
		WITH g AS (SELECT CASE WHEN $6::float8 IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint($6, $7), 4326) END AS p),
		d AS (SELECT g.p, ST_Distance(g.p::geography, e.geom::geography) AS m FROM g, events e WHERE e.code = $1)
		INSERT INTO attachments (event_code, sha256, media_type, size_bytes, name, gps, distance_m, far, created_by)
		SELECT $1, $2, $3, $4, $5, d.p, d.m, coalesce(d.m > $8, false), $9 FROM d
		RETURNING `+attachmentColumns,
		a.Event, sum, a.MediaType, len(a.Bytes), a.Name, lon, lat, a.FarM, a.Actor), s.cityTime())
	if err != nil {
		return nil, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, false, err
	}
	return att, false, nil
}

// Attachments lists an event's attachments, oldest first; ErrNotFound when
// there is no such event.
func (s *Store) Attachments(ctx context.Context, event string) ([]Attachment, error) {
	out := []Attachment{}
	err := s.readSnapshot(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM events WHERE code = $1`, event).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+attachmentColumns+` FROM attachments WHERE event_code = $1 ORDER BY id`, event)
		if err != nil {
			return err
		}
		return forEach(rows, func() error {
			a, err := scanAttachment(rows, s.cityTime())
			if err == nil {
				out = append(out, *a)
			}
			return err
		})
	})
	return out, err
}

// AttachmentBlob says how to serve a blob: its media type and the grids of
// the events holding it (a scoped reader must be allowed one of them);
// ErrNotFound when no attachment has that hash.
func (s *Store) AttachmentBlob(ctx context.Context, sum string) (mediaType string, grids []string, err error) {
	rows, err := s.Pool.Query(ctx, `SELECT a.media_type, coalesce(e.grid_code, '') FROM attachments a
		LEFT JOIN events e ON e.code = a.event_code WHERE a.sha256 = $1 ORDER BY a.id`, sum)
	if err != nil {
		return "", nil, err
	}
	err = forEach(rows, func() error {
		var g string
		if err := rows.Scan(&mediaType, &g); err != nil {
			return err
		}
		grids = append(grids, g)
		return nil
	})
	if err == nil && len(grids) == 0 {
		err = ErrNotFound
	}
	return mediaType, grids, err
}
