package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data"
	"gridmap/data/pgtest"
)

// runSplit runs the binary and returns its stdout and stderr apart.
func runSplit(t *testing.T, bin, url string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+url)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// meStatus is GET /v1/me with token: the status and the problem's reason
// (or the actor of a 200).
func meStatus(t *testing.T, base, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Actor, Reason string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, body.Actor
	}
	return resp.StatusCode, body.Reason
}

var tokenLine = regexp.MustCompile(`^gm_[A-Za-z0-9_-]{43}\n$`)

// TestTokenCommands: gridmap token create prints the token alone on
// stdout and what it is on stderr; list shows it, never its text or hash;
// the token works on a server; revoke makes that server refuse it
// (reason revoked) within a second; mistakes exit 1 saying what is wrong.
func TestTokenCommands(t *testing.T) {
	t.Parallel()
	bin := gridmapBin(t)
	s := pgtest.New(t)

	stdout, stderr, code := runSplit(t, bin, s.URL(), "token", "create", "--name", "ops-1", "--role", "dispatcher", "--scope", "440307001, 440306", "--expires", "90d")
	if code != 0 || !tokenLine.MatchString(stdout) {
		t.Fatalf("token create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	token := strings.TrimSpace(stdout)
	for _, want := range []string{`"ops-1"`, "dispatcher", "440306,440307001", "expires " + time.Now().AddDate(0, 0, 90).Format("2006-01-02"), "created by " + cliActor(), "shown once; store it now"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("token create's stderr %q lacks %q", stderr, want)
		}
	}
	if strings.Contains(stderr, token) {
		t.Error("the token is on stderr too")
	}
	if _, _, code := runSplit(t, bin, s.URL(), "token", "create", "--name", "city-admin", "--role", "admin"); code != 0 {
		t.Fatalf("token create admin: exit %d", code)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "ops-1", "--role", "viewer", "--scope", "440306"}, `a token named "ops-1" exists already`},
		{[]string{"--name", "x", "--role", "boss", "--scope", "440306"}, `unknown role "boss"`},
		{[]string{"--name", "x", "--role", "editor", "--scope", "4403"}, `scope "4403" is not a unit code`},
		{[]string{"--name", "x", "--role", "editor"}, "needs a scope"},
		{[]string{"--name", "x", "--role", "admin", "--scope", "440306"}, "an admin holds the whole city"},
		{[]string{"--name", "x y", "--role", "viewer", "--scope", "*"}, "token name"},
		{[]string{"--name", "x", "--role", "viewer", "--scope", "*", "--expires", "2001-01-01"}, "not in the future"},
		{[]string{"--name", "x", "--role", "viewer", "--scope", "*", "--expires", "soon"}, `--expires "soon"`},
		{[]string{"--role", "viewer"}, "--name and --role are required"},
	} {
		stdout, stderr, code := runSplit(t, bin, s.URL(), append([]string{"token", "create"}, c.args...)...)
		if code != 1 || stdout != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("token create %v: exit %d, stdout %q, stderr %q; want exit 1 saying %q", c.args, code, stdout, stderr, c.want)
		}
	}

	ts, err := s.Tokens(context.Background())
	if err != nil || len(ts) != 2 {
		t.Fatalf("tokens stored: %v %v", ts, err)
	}
	list := func() string {
		t.Helper()
		stdout, stderr, code := runSplit(t, bin, s.URL(), "token", "list")
		if code != 0 {
			t.Fatalf("token list: exit %d: %s", code, stderr)
		}
		if strings.Contains(stdout, token) || strings.Contains(stdout, "gm_") || strings.Contains(stdout, hex.EncodeToString(ts[0].Hash)) {
			t.Fatalf("token list shows a token or its hash:\n%s", stdout)
		}
		return stdout
	}
	out := list()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "REVOKED") {
		t.Fatalf("token list:\n%s", out)
	}
	if f := strings.Fields(lines[1]); f[0] != "ops-1" || f[1] != "dispatcher" || f[2] != "440306,440307001" || f[5] != cliActor() || f[len(f)-1] != "-" {
		t.Errorf("token list's ops-1 line: %q", lines[1])
	}
	if f := strings.Fields(lines[2]); f[0] != "city-admin" || f[2] != "*" {
		t.Errorf("token list's city-admin line: %q", lines[2])
	}

	srv, err := api.New(context.Background(), s, api.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go srv.FollowTokens(ctx)
	hs := httptest.NewServer(srv.Handler())
	defer func() { hs.Close(); cancel(); srv.Close() }()
	if status, actor := meStatus(t, hs.URL, token); status != http.StatusOK || actor != "token:ops-1" {
		t.Fatalf("GET /v1/me with the printed token: %d %q", status, actor)
	}

	stdout, stderr, code = runSplit(t, bin, s.URL(), "token", "revoke", "ops-1")
	if code != 0 || !strings.Contains(stdout, `revoked token "ops-1"`) || !strings.Contains(stdout, "dispatcher") || !strings.Contains(stdout, "by "+cliActor()) {
		t.Fatalf("token revoke: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	deadline := time.Now().Add(time.Second)
	for {
		status, reason := meStatus(t, hs.URL, token)
		if status == http.StatusUnauthorized && reason == auth.Revoked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/me a second after the revocation: %d %q", status, reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if f := strings.Fields(strings.Split(list(), "\n")[1]); f[0] != "ops-1" || f[len(f)-1] != cliActor() {
		t.Errorf("token list after the revocation: %q", f)
	}
	if _, stderr, code := runSplit(t, bin, s.URL(), "token", "revoke", "nobody"); code != 1 || !strings.Contains(stderr, `no token named "nobody"`) {
		t.Errorf("token revoke nobody: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := runSplit(t, bin, s.URL(), "token", "create", "--name", "ops-1", "--role", "viewer", "--scope", "*"); code != 1 || !strings.Contains(stderr, "never reused") {
		t.Errorf("a revoked token's name again: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := runSplit(t, bin, s.URL(), "token", "rename"); code != 1 || !strings.Contains(stderr, "unknown token command") {
		t.Errorf("token rename: exit %d, stderr %q", code, stderr)
	}
}

func TestParseExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"90d":                       now.AddDate(0, 0, 90),
		"12h":                       now.Add(12 * time.Hour),
		"2027-06-30":                time.Date(2027, 6, 30, 0, 0, 0, 0, time.Local),
		"2027-06-30T00:00:00+08:00": time.Date(2027, 6, 30, 0, 0, 0, 0, time.FixedZone("", 8*3600)),
	} {
		got, err := parseExpiry(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseExpiry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0d", "-3d", "d", "90 days", "2027-13-01", "-1h", "tomorrow"} {
		if got, err := parseExpiry(in, now); err == nil {
			t.Errorf("parseExpiry(%q) = %v, want an error", in, got)
		}
	}
}

// TestEnsureToken: token ensure creates demo-admin-<unix time> into a
// 0600 file, reuses it while the database takes it, and replaces it (a new
// name, the old ones revoked) once it is revoked or the file holds
// something else.
func TestEnsureToken(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "out", "demo-admin.token")
	n := data.NewToken{Role: auth.Admin, CreatedBy: "cli:test"}
	now := time.Unix(1_800_000_000, 0)

	text, reused, err := ensureToken(ctx, s, "demo-admin", n, file, now)
	if err != nil || reused || !auth.IsToken(text) {
		t.Fatalf("first ensure: %q %v %v", text, reused, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(file); string(b) != text+"\n" {
		t.Fatalf("token file holds %q", b)
	}
	tok, err := s.TokenByHash(ctx, auth.HashToken(text))
	if err != nil || tok.Name != "demo-admin-1800000000" || tok.Role != auth.Admin || tok.CreatedBy != "cli:test" {
		t.Fatalf("stored: %+v %v", tok, err)
	}

	again, reused, err := ensureToken(ctx, s, "demo-admin", n, file, now.Add(time.Hour))
	if err != nil || !reused || again != text {
		t.Fatalf("second ensure: %q %v %v, want the first token reused", again, reused, err)
	}

	if _, err := s.RevokeToken(ctx, "demo-admin-1800000000", "token:someone"); err != nil {
		t.Fatal(err)
	}
	third, reused, err := ensureToken(ctx, s, "demo-admin", n, file, now.Add(2*time.Hour))
	if err != nil || reused || third == text {
		t.Fatalf("ensure after a revocation: %v %v, want a new token", reused, err)
	}
	if b, _ := os.ReadFile(file); string(b) != third+"\n" {
		t.Fatalf("token file not replaced: %q", b)
	}

	// Another file (or a lost one) gets a new token; the live demo-admin
	// ones are revoked, others are left alone.
	if _, _, err := s.CreateToken(ctx, data.NewToken{Name: "demo-administrator", Role: auth.Viewer, Scopes: []string{"*"}, CreatedBy: "cli:test"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("not a token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fourth, reused, err := ensureToken(ctx, s, "demo-admin", n, file, now.Add(3*time.Hour))
	if err != nil || reused || fourth == third {
		t.Fatalf("ensure over a file without a token: %v %v", reused, err)
	}
	live, err := s.LiveTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range live {
		names = append(names, l.Name)
	}
	if strings.Join(names, ",") != "demo-administrator,demo-admin-1800010800" {
		t.Errorf("live tokens %v, want the other token and the fourth only", names)
	}
	old, _ := s.TokenByHash(ctx, auth.HashToken(third))
	if old.RevokedBy != "cli:test" {
		t.Errorf("the third token was revoked by %q", old.RevokedBy)
	}
}

// TestTokenEnsureCommand: the command prints the token with an example,
// and a second run reuses it.
func TestTokenEnsureCommand(t *testing.T) {
	t.Parallel()
	bin := gridmapBin(t)
	s := pgtest.New(t)
	file := filepath.Join(t.TempDir(), "demo-admin.token")
	args := []string{"token", "ensure", "--name", "demo-admin", "--role", "admin", "--file", file, "--url", "http://localhost:9000"}
	out, _, code := runSplit(t, bin, s.URL(), args...)
	b, _ := os.ReadFile(file)
	token := strings.TrimSpace(string(b))
	if code != 0 || !auth.IsToken(token) || !strings.HasPrefix(out, "admin token for writes (demo only; new, in "+file+"): "+token+"\n") ||
		!strings.Contains(out, "curl -H 'Authorization: Bearer "+token+"' -XPOST http://localhost:9000/v1/events") {
		t.Fatalf("token ensure: exit %d:\n%s", code, out)
	}
	start := time.Now()
	out, _, code = runSplit(t, bin, s.URL(), args...)
	if code != 0 || !strings.Contains(out, "(demo only; from "+file+"): "+token) {
		t.Fatalf("second token ensure: exit %d:\n%s", code, out)
	}
	t.Logf("second run: %s", time.Since(start).Round(time.Millisecond))
}
