package auth

import "fmt"

// Why a credential is refused; the API answers each with a 401 that names
// it (never the credential itself).
const (
	Missing   = "missing"   // no Authorization header where one is needed
	Malformed = "malformed" // not "Bearer <token>", or not a token or JWT
	Unknown   = "unknown"   // an API token the server never issued
	Revoked   = "revoked"   // an API token revoked
	Expired   = "expired"   // past its expiry (API token or JWT exp), or a JWT before its nbf
	Signature = "signature" // a JWT whose signature does not verify, or signed with alg none
	Issuer    = "issuer"    // a JWT from another issuer
	Audience  = "audience"  // a JWT for another audience
	NoGrant   = "no-grant"  // a valid JWT whose claims map to no role and scope
	NoOIDC    = "no-oidc"   // a JWT where the server trusts no identity provider
)

// CredentialError is a credential that proves nothing.
type CredentialError struct {
	Reason string // one of the constants above
	Detail string // for the client: what is wrong, without the credential
}

func (e *CredentialError) Error() string { return fmt.Sprintf("%s credential: %s", e.Reason, e.Detail) }

func credentialErr(reason, format string, args ...any) *CredentialError {
	return &CredentialError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}
