package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gridmap/auth"
	"gridmap/data"
)

const tokenUsage = `usage:
  gridmap token create --name NAME --role ROLE [--scope CODES] [--expires 90d|2027-06-30|RFC3339] [--person ID]
  gridmap token list
  gridmap token revoke NAME
  gridmap token ensure --name demo-admin --file FILE [--role admin] [--scope CODES] [--url URL]`

// cmdToken manages API tokens in the database directly (the same as
// /v1/tokens, for the operator who has no token yet). The creator and
// revoker recorded is "cli:<OS user>".
func cmdToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(tokenUsage)
	}
	switch args[0] {
	case "create":
		return tokenCreate(ctx, args[1:], stdout, stderr)
	case "list":
		return tokenList(ctx, args[1:], stdout)
	case "revoke":
		return tokenRevoke(ctx, args[1:], stdout)
	case "ensure":
		return tokenEnsure(ctx, args[1:], stdout)
	}
	return fmt.Errorf("unknown token command %q\n%s", args[0], tokenUsage)
}

// cliActor is who acts from the command line: "cli:<OS user>".
func cliActor() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if name == "" {
		name = "unknown"
	}
	return "cli:" + name
}

// parseExpiry reads --expires relative to now: a number of days ("90d"),
// a Go duration ("12h"), a date ("2027-06-30", the start of that day in
// the local time zone) or an RFC 3339 time.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n > 0 && n <= 100*366 {
			return now.AddDate(0, 0, n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--expires %q: want a number of days (90d), a duration (12h), a date (2027-06-30) or an RFC 3339 time", s)
}

// tokenError makes the store's refusals read as the command's.
func tokenError(name string, err error) error {
	if errors.Is(err, data.ErrExists) {
		return fmt.Errorf("a token named %q exists already (names are never reused, even after a revocation): choose another", name)
	}
	if ie, ok := errors.AsType[*data.InvalidError](err); ok {
		return errors.New(ie.Msg)
	}
	return err
}

func tokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	name := fs.String("name", "", "the token's name, its actor in every log (token:NAME); never reused")
	role := fs.String("role", "", "viewer, reporter, dispatcher, editor or admin")
	scope := fs.String("scope", "", `unit codes whose subtrees the role covers, comma-separated (440306,440307001), or "*" for the whole city; an admin's is the whole city`)
	expires := fs.String("expires", "", "when it stops working: 90d, 12h, 2027-06-30 or an RFC 3339 time (default: never)")
	person := fs.Int64("person", 0, "the id of the person (grid worker, supervisor, handler) the token speaks for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), tokenUsage)
	}
	if *name == "" || *role == "" {
		return errors.New("--name and --role are required\n" + tokenUsage)
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return err
	}
	n := data.NewToken{Name: *name, Role: r, Scopes: splitList(*scope), CreatedBy: cliActor(), Person: *person}
	if *expires != "" {
		t, err := parseExpiry(*expires, time.Now())
		if err != nil {
			return err
		}
		n.ExpiresAt = &t
	}
	store, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	text, t, err := store.CreateToken(ctx, n)
	if err != nil {
		return tokenError(*name, err)
	}
	fmt.Fprintln(stdout, text)
	fmt.Fprintf(stderr, "token %q: role %s on %s, %s, created by %s; shown once; store it now\n",
		t.Name, t.Role, strings.Join(t.Scopes, ","), expiryText(t.ExpiresAt), t.CreatedBy)
	return nil
}

func expiryText(t *time.Time) string {
	if t == nil {
		return "never expires"
	}
	return "expires " + t.Local().Format(time.RFC3339)
}

func tokenList(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("token list takes no arguments\n%s", tokenUsage)
	}
	store, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	ts, err := store.Tokens(ctx)
	if err != nil {
		return err
	}
	return writeTokenTable(stdout, ts)
}

// writeTokenTable lists tokens, never their text nor their hash.
func writeTokenTable(w io.Writer, ts []data.Token) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tSCOPES\tCREATED\tBY\tEXPIRES\tREVOKED")
	when := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04")
	}
	for _, t := range ts {
		revoked := when(t.RevokedAt)
		if t.RevokedAt != nil && t.RevokedBy != "" {
			revoked += " by " + t.RevokedBy
		}
		expires := when(t.ExpiresAt)
		if t.Refusal(time.Now()) == auth.Expired {
			expires += " (expired)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, strings.Join(t.Scopes, ","), when(&t.CreatedAt), t.CreatedBy, expires, revoked)
	}
	if len(ts) == 0 {
		fmt.Fprintln(tw, "(no tokens)")
	}
	return tw.Flush()
}

func tokenRevoke(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("token revoke takes one token name\n%s", tokenUsage)
	}
	store, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	t, err := store.RevokeToken(ctx, args[0], cliActor())
	if errors.Is(err, data.ErrNotFound) {
		return fmt.Errorf("no token named %q (gridmap token list shows them)", args[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked token %q (role %s on %s) at %s by %s; every server refuses it now\n",
		t.Name, t.Role, strings.Join(t.Scopes, ","), t.RevokedAt.Local().Format(time.RFC3339), t.RevokedBy)
	return nil
}

// tokenEnsure keeps one token of a kind usable through a file (make run's
// demo admin): the token in file is reused while the database takes it;
// otherwise the live tokens named NAME or NAME-… are revoked, a new one
// NAME-<unix time> is created (names are never reused) and written to
// file with mode 0600. It prints the token with an example.
func tokenEnsure(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token ensure", flag.ContinueOnError)
	name := fs.String("name", "", "the tokens' name prefix: NAME-<unix time>")
	role := fs.String("role", string(auth.Admin), "the role of a new token")
	scope := fs.String("scope", "", "its scopes (see token create)")
	file := fs.String("file", "", "where the token is kept (mode 0600)")
	base := fs.String("url", "http://localhost:8080", "the server's URL, for the example printed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *file == "" || fs.NArg() > 0 {
		return errors.New("--name and --file are required\n" + tokenUsage)
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return err
	}
	store, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	text, reused, err := ensureToken(ctx, store, *name, data.NewToken{Role: r, Scopes: splitList(*scope), CreatedBy: cliActor()}, *file, time.Now())
	if err != nil {
		return err
	}
	how := "new, in " + *file
	if reused {
		how = "from " + *file
	}
	fmt.Fprintf(stdout, "%s token for writes (demo only; %s): %s\n  e.g. curl -H 'Authorization: Bearer %s' -XPOST %s/v1/events -d '%s'\n",
		r, how, text, text, strings.TrimSuffix(*base, "/"), demoReport)
	return nil
}

// demoReport is an event report in the demo city, for the example.
const demoReport = `{"class":"0102","lon":114.0579,"lat":22.5431,"source":"grid_worker","description":"路边垃圾堆积"}`

// ensureToken is tokenEnsure's work: the token text, and whether it was
// the one already in file.
func ensureToken(ctx context.Context, store *data.Store, name string, n data.NewToken, file string, now time.Time) (string, bool, error) {
	if b, err := os.ReadFile(file); err == nil {
		text := strings.TrimSpace(string(b))
		if auth.IsToken(text) {
			t, err := store.TokenByHash(ctx, auth.HashToken(text))
			if err == nil && t.Refusal(now) == "" && isEnsured(t.Name, name) && t.Role == n.Role {
				return text, true, nil
			}
			if err != nil && !errors.Is(err, data.ErrNotFound) {
				return "", false, err
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	ts, err := store.LiveTokens(ctx)
	if err != nil {
		return "", false, err
	}
	for _, t := range ts {
		if isEnsured(t.Name, name) {
			if _, err := store.RevokeToken(ctx, t.Name, n.CreatedBy); err != nil {
				return "", false, err
			}
		}
	}
	n.Name = fmt.Sprintf("%s-%d", name, now.Unix())
	text, _, err := store.CreateToken(ctx, n)
	if errors.Is(err, data.ErrExists) { // two within a second
		n.Name = fmt.Sprintf("%s-%d", name, now.UnixNano())
		text, _, err = store.CreateToken(ctx, n)
	}
	if err != nil {
		return "", false, tokenError(n.Name, err)
	}
	if err := writeSecret(file, text+"\n"); err != nil {
		return "", false, err
	}
	return text, false, nil
}

// isEnsured says whether a token's name is prefix or prefix-….
func isEnsured(tokenName, prefix string) bool {
	return tokenName == prefix || strings.HasPrefix(tokenName, prefix+"-")
}

// writeSecret writes file with mode 0600 through a temporary beside it.
func writeSecret(file, content string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), file)
}
