package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Storage keeps blobs by the hex SHA-256 of their bytes. The filesystem
// (FS) is the one implementation here; an S3-compatible one (objects
// named by the hash, Put as a conditional PUT, Get as a ranged GET) fits
// the same four methods.
type Storage interface {
	// Put stores b under its hash; created is false when a blob of that
	// hash was there already (the bytes are then the same).
	Put(ctx context.Context, b []byte) (sum string, created bool, err error)
	// Get opens the blob; ErrNotFound when there is none.
	Get(ctx context.Context, sum string) (io.ReadSeekCloser, Info, error)
	// Stat describes the blob; ErrNotFound when there is none.
	Stat(ctx context.Context, sum string) (Info, error)
	// Delete removes the blob (an upload whose row did not commit);
	// no blob is no error.
	Delete(ctx context.Context, sum string) error
}

// Info describes a stored blob.
type Info struct {
	Size    int64
	ModTime time.Time
}

// ErrNotFound: no blob of that hash.
var ErrNotFound = errors.New("no such blob")

var sumPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidSum says whether s is a hex SHA-256 as Storage names blobs.
func ValidSum(s string) bool { return sumPattern.MatchString(s) }

// Sum is the name of b in a Storage.
func Sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// FS stores blobs as files under Dir, in two levels of folders named by
// the hash's first bytes (ab/cd/abcd…) so no folder grows huge.
type FS struct {
	Dir string
}

// NewFS makes dir when needed.
func NewFS(dir string) (*FS, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("attachment storage: %w", err)
	}
	return &FS{Dir: dir}, nil
}

func (f *FS) path(sum string) string {
	return filepath.Join(f.Dir, sum[:2], sum[2:4], sum)
}

// Put writes b to a temporary file, syncs it and renames it into place:
// a reader never sees half a blob, and a crash leaves at most a temporary
// file behind.
func (f *FS) Put(_ context.Context, b []byte) (string, bool, error) {
	sum := Sum(b)
	p := f.path(sum)
	if _, err := os.Stat(p); err == nil {
		return sum, false, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return "", false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return "", false, err
	}
	defer os.Remove(tmp.Name()) // after a rename there is nothing left to remove
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return "", false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", false, err
	}
	if err := tmp.Close(); err != nil {
		return "", false, err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", false, err
	}
	return sum, true, nil
}

func (f *FS) Get(_ context.Context, sum string) (io.ReadSeekCloser, Info, error) {
	if !ValidSum(sum) {
		return nil, Info{}, ErrNotFound
	}
	file, err := os.Open(f.path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Info{}, ErrNotFound
	}
	if err != nil {
		return nil, Info{}, err
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, Info{}, err
	}
	return file, Info{Size: st.Size(), ModTime: st.ModTime()}, nil
}

func (f *FS) Stat(_ context.Context, sum string) (Info, error) {
	if !ValidSum(sum) {
		return Info{}, ErrNotFound
	}
	st, err := os.Stat(f.path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, ErrNotFound
	}
	if err != nil {
		return Info{}, err
	}
	return Info{Size: st.Size(), ModTime: st.ModTime()}, nil
}

func (f *FS) Delete(_ context.Context, sum string) error {
	if !ValidSum(sum) {
		return nil
	}
	if err := os.Remove(f.path(sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
