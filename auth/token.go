package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
)

// TokenPrefix starts every API token, so a token is told from a JWT (and
// found by secret scanners) at a glance.
const TokenPrefix = "gm_"

// tokenBytes of randomness: 256 bits, far beyond guessing, which is why a
// plain SHA-256 (not a slow password hash) is the right thing to store.
const tokenBytes = 32

// NewToken returns a fresh API token and the hash to store for it.
func NewToken() (token string, hash []byte) {
	b := make([]byte, tokenBytes)
	rand.Read(b) // never fails (crypto/rand, Go ≥ 1.24)
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken is what the store keeps of a token and looks it up by.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// IsToken says whether s has the form of an API token (not whether it is
// a valid one).
func IsToken(s string) bool {
	// On every request that carries a token: no regular expression.
	if len(s) != len(TokenPrefix)+43 || !strings.HasPrefix(s, TokenPrefix) {
		return false
	}
	for i := len(TokenPrefix); i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// LooksLikeToken says whether a bearer credential is meant as an API token
// (as against a JWT), so that a mistyped one is named as such.
func LooksLikeToken(s string) bool { return strings.HasPrefix(s, TokenPrefix) }

var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// CheckTokenName: 1–64 letters, digits, '.', '_', '@' or '-', starting with
// a letter or digit; it is the actor in every log ("token:<name>").
func CheckTokenName(name string) error {
	if !tokenName.MatchString(name) {
		return fmt.Errorf("token name %q: 1–64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", excerpt(name))
	}
	return nil
}

// TokenActor is the actor of a token's requests.
func TokenActor(name string) string { return "token:" + name }
