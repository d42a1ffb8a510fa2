package oidcop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"slices"
	"strconv"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/cacgate/cacgate/internal/store"
)

// The scopes beyond OpenID Connect's own: groups releases the account's
// groups, cac the DoD facts (affiliation, roster categories and, where the
// client lists the claim, the DoD ID).
const (
	ScopeGroups = "groups"
	ScopeCAC    = "cac"
)

// KnownScopes are the scopes a client may be allowed.
var KnownScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, ScopeGroups, ScopeCAC, oidc.ScopeOfflineAccess}

// claimScope maps every claim the provider can release to the scope that
// asks for it ("" for those every ID token carries).
var claimScope = map[string]string{
	"preferred_username": oidc.ScopeProfile,
	"name":               oidc.ScopeProfile,
	"given_name":         oidc.ScopeProfile,
	"family_name":        oidc.ScopeProfile,
	"email":              oidc.ScopeEmail,
	"groups":             ScopeGroups,
	"edipi":              ScopeCAC,
	"affiliation":        ScopeCAC,
	"categories":         ScopeCAC,
	"credential_kind":    "",
}

// optInClaims are released only to a client that lists them.
var optInClaims = []string{"edipi"}

// The credential kinds (claim credential_kind) and what each says in amr
// (RFC 8176) and acr.
const (
	KindCAC      = "cac"
	KindECA      = "eca"
	KindPassword = "password"

	ACRCard     = "urn:cacgate:acr:pki"
	ACRPassword = "urn:cacgate:acr:password"
)

// AMR is what the amr claim says of a credential kind: a smart card's key
// (CAC, PIV, PIV-I: hardware, PIN-protected, so multi-factor), or a
// password. An ECA certificate may live in software (ECA issues medium
// assurance software certificates as well as hardware tokens), so it
// claims only proof of possession of a key ("pop"), never more than the
// gateway knows.
func AMR(kind string) []string {
	switch kind {
	case KindPassword:
		return []string{"pwd"}
	case KindECA:
		return []string{"pop"}
	}
	return []string{"hwk", "sc", "mfa"}
}

// ACR is the acr claim of a credential kind.
func ACR(kind string) string {
	if kind == KindPassword {
		return ACRPassword
	}
	return ACRCard
}

// Subject modes: how sub is derived from the account.
const (
	SubjectOpaque   = "opaque" // default: a keyed hash of the account's ID
	SubjectUsername = "username"
	SubjectEDIPI    = "edipi"
)

// subjectOf is the account's sub. The opaque form is stable for the
// account's life (its ID never changes, unlike a username) and says
// nothing about the person; every node derives the same from the shared
// key.
func subjectOf(mode string, key []byte, acct *store.Account) string {
	switch mode {
	case SubjectUsername:
		return acct.Username
	case SubjectEDIPI:
		return acct.EDIPI
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("cacgate-oidc-sub:" + strconv.FormatInt(acct.ID, 10)))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(m.Sum(nil)[:20]))
}

// Snapshot is what a sign-in knew of the person, kept with the grant: the
// identity values the gateway derived (account first, card second), which
// refreshes and userinfo replace with the account's current ones.
type Snapshot struct {
	Username    string   `json:"username"`
	EDIPI       string   `json:"edipi,omitempty"`
	GivenName   string   `json:"given_name,omitempty"`
	FamilyName  string   `json:"family_name,omitempty"`
	Email       string   `json:"email,omitempty"`
	Affiliation string   `json:"affiliation,omitempty"`
	Categories  []string `json:"categories,omitempty"`
	Groups      []string `json:"groups,omitempty"`
}

// refreshFrom updates the snapshot with the account's current facts,
// keeping the card's where the account has none.
func (s *Snapshot) refreshFrom(acct *store.Account) {
	s.Username, s.EDIPI = acct.Username, acct.EDIPI
	s.GivenName = firstNonEmpty(acct.GivenName, s.GivenName)
	s.FamilyName = firstNonEmpty(acct.FamilyName, s.FamilyName)
	s.Email = firstNonEmpty(acct.Email, s.Email)
	s.Affiliation = firstNonEmpty(acct.Affiliation, s.Affiliation)
	s.Categories, s.Groups = acct.Categories, acct.Groups
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// released reports whether client c receives claim for these scopes.
func (c *Client) released(claim string, scopes []string) bool {
	scope, ok := claimScope[claim]
	if !ok {
		return false
	}
	if scope != "" && !slices.Contains(scopes, scope) {
		return false
	}
	if len(c.claims) > 0 {
		return scope == "" || slices.Contains(c.claims, claim)
	}
	return !slices.Contains(optInClaims, claim)
}

// fillUserinfo sets the claims client c may have for scopes.
func (c *Client) fillUserinfo(u *oidc.UserInfo, sub, kind string, s *Snapshot, scopes []string) {
	u.Subject = sub
	if c.released("preferred_username", scopes) {
		u.PreferredUsername = s.Username
	}
	if c.released("given_name", scopes) {
		u.GivenName = s.GivenName
	}
	if c.released("family_name", scopes) {
		u.FamilyName = s.FamilyName
	}
	if c.released("name", scopes) {
		u.Name = strings.TrimSpace(s.GivenName + " " + s.FamilyName)
	}
	if c.released("email", scopes) && s.Email != "" {
		u.Email = s.Email
	}
	if c.released("groups", scopes) {
		u.AppendClaims("groups", nonNil(s.Groups))
	}
	if c.released("edipi", scopes) {
		u.AppendClaims("edipi", s.EDIPI)
	}
	if c.released("affiliation", scopes) && s.Affiliation != "" {
		u.AppendClaims("affiliation", s.Affiliation)
	}
	if c.released("categories", scopes) {
		u.AppendClaims("categories", nonNil(s.Categories))
	}
	if c.released("credential_kind", scopes) {
		u.AppendClaims("credential_kind", kind)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
