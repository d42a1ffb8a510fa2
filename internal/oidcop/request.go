package oidcop

import (
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// grant is a completed sign-in for one client: the authorization request
// as validated, who signed in and how. It is stored (JSON) with the code,
// and with each refresh token it descends to; its ID is the grant's ID
// (the sid claim), shared by every token of the sign-in.
type grant struct {
	ID            string              `json:"id"`
	ClientID      string              `json:"client_id"`
	RedirectURI   string              `json:"redirect_uri"`
	State         string              `json:"state,omitempty"`
	Nonce         string              `json:"nonce,omitempty"`
	Scopes        []string            `json:"scopes"`
	ResponseMode  oidc.ResponseMode   `json:"response_mode,omitempty"`
	CodeChallenge *oidc.CodeChallenge `json:"code_challenge,omitempty"`

	AccountID int64     `json:"account_id"`
	Subject   string    `json:"sub"`
	Kind      string    `json:"credential_kind"`
	AuthTime  time.Time `json:"auth_time"`
	Snapshot  Snapshot  `json:"snapshot"`
	// SessionID and SessionEnd are the password session's (empty for a
	// card); Fingerprint and Chain the card's (leaf first, DER), for the
	// revocation check at each refresh.
	SessionID   string    `json:"session_id,omitempty"`
	SessionEnd  time.Time `json:"session_end,omitzero"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Chain       [][]byte  `json:"chain,omitempty"`

	// currentScopes are a refresh's narrower scopes (not stored).
	currentScopes []string
}

// op.AuthRequest and op.RefreshTokenRequest.

func (g *grant) GetID() string                         { return g.ID }
func (g *grant) GetACR() string                        { return ACR(g.Kind) }
func (g *grant) GetAMR() []string                      { return AMR(g.Kind) }
func (g *grant) GetAudience() []string                 { return []string{g.ClientID} }
func (g *grant) GetAuthTime() time.Time                { return g.AuthTime }
func (g *grant) GetClientID() string                   { return g.ClientID }
func (g *grant) GetCodeChallenge() *oidc.CodeChallenge { return g.CodeChallenge }
func (g *grant) GetNonce() string                      { return g.Nonce }
func (g *grant) GetRedirectURI() string                { return g.RedirectURI }
func (g *grant) GetResponseType() oidc.ResponseType    { return oidc.ResponseTypeCode }
func (g *grant) GetResponseMode() oidc.ResponseMode    { return g.ResponseMode }
func (g *grant) GetState() string                      { return g.State }
func (g *grant) GetSubject() string                    { return g.Subject }
func (g *grant) Done() bool                            { return true }

func (g *grant) GetScopes() []string {
	if g.currentScopes != nil {
		return g.currentScopes
	}
	return g.Scopes
}

func (g *grant) SetCurrentScopes(scopes []string) { g.currentScopes = scopes }

var (
	_ op.AuthRequest         = (*grant)(nil)
	_ op.RefreshTokenRequest = (*grant)(nil)
)
