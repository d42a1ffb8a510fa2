package admin

import (
	"errors"
	"fmt"
	"net/mail"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/store"
)

// Account is an account as the admin API and CLI show it.
type Account struct {
	Username string `json:"username"`
	EDIPI    string `json:"edipi"`
	// Credential is the account's credential kind (cac, piv, piv-i, eca)
	// and Key its stable key (the EDIPI for cac).
	Credential   string     `json:"credential"`
	Key          string     `json:"key"`
	GivenName    string     `json:"given_name,omitempty"`
	MiddleName   string     `json:"middle_name,omitempty"`
	FamilyName   string     `json:"family_name,omitempty"`
	Suffix       string     `json:"suffix,omitempty"`
	Email        string     `json:"email,omitempty"`
	Affiliation  string     `json:"affiliation,omitempty"`
	Categories   []string   `json:"categories,omitempty"`
	Groups       []string   `json:"groups"`
	Organization string     `json:"organization,omitempty"`
	Location     string     `json:"location,omitempty"`
	WorkAddress  string     `json:"work_address,omitempty"`
	Phone        string     `json:"phone,omitempty"`
	HasPassword  bool       `json:"has_password"`
	LockedUntil  *time.Time `json:"locked_until,omitempty"`
	// PasswordResetRequired is when an administrator required a new
	// password at the next sign-in, if one did and it was not changed since.
	PasswordResetRequired *time.Time `json:"password_reset_required,omitempty"`
	PasswordChangedAt     *time.Time `json:"password_changed_at,omitempty"`
	Status                string     `json:"status"`
	CreatedAt             time.Time  `json:"created_at"`
	UpdatedAt             time.Time  `json:"updated_at"`
	LastLoginAt           *time.Time `json:"last_login_at,omitempty"`
	// Type is "person" or "utility"; a utility account has a sponsor
	// (its account ID) and an expiry.
	Type           string     `json:"type"`
	SponsorID      int64      `json:"sponsor_id,omitempty"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
	Cards          []Card     `json:"cards"`
}

// Card is a registered card as the admin API shows it.
type Card struct {
	Fingerprint string     `json:"sha256"`
	Subject     string     `json:"subject"`
	Issuer      string     `json:"issuer"`
	Serial      string     `json:"serial"`
	NotAfter    time.Time  `json:"not_after"`
	CreatedAt   time.Time  `json:"created_at"`
	LastUsedAt  *time.Time `json:"last_used_at,omitempty"`
}

// AccountPage is GET /cacgate/accounts: one page of the accounts that
// match, and how many match in all.
type AccountPage struct {
	Accounts []Account `json:"accounts"`
	Total    int       `json:"total"`
	Offset   int       `json:"offset"`
	Limit    int       `json:"limit"`
}

// Group is one group of GET /cacgate/groups.
type Group struct {
	Name     string `json:"name"`
	Accounts int    `json:"accounts"`
}

// GroupsRequest is the body of the .../groups routes.
type GroupsRequest struct {
	Groups []string `json:"groups"`
}

func accountOf(a *store.Account) Account {
	out := Account{
		Username: a.Username, EDIPI: a.EDIPI, Credential: a.Kind, Key: a.Key, GivenName: a.GivenName, MiddleName: a.MiddleName,
		FamilyName: a.FamilyName, Suffix: a.Suffix, Email: a.Email, Affiliation: a.Affiliation,
		Categories: a.Categories, Groups: a.Groups, Organization: a.Organization, Location: a.Location,
		WorkAddress: a.WorkAddress, Phone: a.Phone, HasPassword: a.HasPassword, LockedUntil: optTime(a.LockedUntil),
		PasswordResetRequired: optTime(a.PasswordResetRequiredAt), PasswordChangedAt: optTime(a.PasswordChangedAt),
		Status: string(a.Status), CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC(),
		LastLoginAt: optTime(a.LastLoginAt), Cards: []Card{},
		Type: string(store.TypePerson), SponsorID: a.SponsorID, ExpiresAt: optTime(a.ExpiresAt), DisabledReason: a.DisabledReason,
	}
	if a.Type == store.TypeUtility {
		out.Type = string(store.TypeUtility)
	}
	if out.Groups == nil {
		out.Groups = []string{}
	}
	for _, c := range a.Cards {
		out.Cards = append(out.Cards, Card{
			Fingerprint: c.Fingerprint, Subject: c.Subject, Issuer: c.Issuer, Serial: c.Serial,
			NotAfter: c.NotAfter.UTC(), CreatedAt: c.CreatedAt.UTC(), LastUsedAt: optTime(c.LastUsedAt),
		})
	}
	return out
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// NewAccountRequest is the body of POST /cacgate/accounts.
type NewAccountRequest struct {
	EDIPI string `json:"edipi"`
	// Credential and Key create the account of a non-DoD credential
	// (piv, piv-i or eca, and its key: the card UUID, or the ECA key the
	// gateway derives, see cacid.Identity.Key), with no EDIPI. Empty
	// credential (or cac): a DoD account keyed by its EDIPI.
	Credential  string   `json:"credential,omitempty"`
	Key         string   `json:"key,omitempty"`
	Username    string   `json:"username"`
	GivenName   string   `json:"given_name,omitempty"`
	MiddleName  string   `json:"middle_name,omitempty"`
	FamilyName  string   `json:"family_name,omitempty"`
	Suffix      string   `json:"suffix,omitempty"`
	Email       string   `json:"email,omitempty"`
	Affiliation string   `json:"affiliation,omitempty"`
	Status      string   `json:"status,omitempty"` // active (default), disabled or pending
	Groups      []string `json:"groups,omitempty"`
}

// validate checks every field; the store trusts its callers.
func (req *NewAccountRequest) validate() error {
	switch kind, ok := cacid.ParseKind(req.Credential); {
	case req.Credential == "" || kind == cacid.KindCAC:
		if !store.ValidEDIPI(req.EDIPI) {
			return errors.New("edipi must be the 10-digit DoD ID number")
		}
		if req.Key != "" && req.Key != req.EDIPI {
			return errors.New("a DoD account's key is its edipi")
		}
	case !ok:
		return errors.New(`credential must be "cac", "piv", "piv-i" or "eca"`)
	case req.EDIPI != "":
		return errors.New("only a DoD (cac) account has an edipi")
	case !cacid.ValidKey(kind, req.Key):
		return fmt.Errorf("key is not a %s credential key (a lower-case card UUID for piv and piv-i; for eca the key the gateway derives)", kind)
	}
	if err := checkNewUsername(req.Username); err != nil {
		return err
	}
	for name, v := range map[string]string{"given_name": req.GivenName, "middle_name": req.MiddleName, "family_name": req.FamilyName, "suffix": req.Suffix, "affiliation": req.Affiliation} {
		if err := checkText(name, v, 64); err != nil {
			return err
		}
	}
	if req.Email != "" {
		if len(req.Email) > 254 {
			return errors.New("email is too long")
		}
		addr, err := mail.ParseAddress(req.Email)
		if err != nil || addr.Address != req.Email {
			return errors.New("email must be a plain address like name@example.mil")
		}
	}
	switch store.Status(req.Status) {
	case "", store.StatusActive, store.StatusDisabled, store.StatusPending:
	default:
		return errors.New(`status must be "active", "disabled" or "pending"`)
	}
	return checkGroups(req.Groups)
}

// account is the store account the request describes.
func (req *NewAccountRequest) account() *store.Account {
	a := &store.Account{
		Username: req.Username, EDIPI: req.EDIPI, GivenName: req.GivenName, MiddleName: req.MiddleName,
		FamilyName: req.FamilyName, Suffix: req.Suffix, Email: req.Email, Affiliation: req.Affiliation,
		Status: store.Status(req.Status), Groups: req.Groups,
	}
	if req.Credential != "" && req.Credential != store.KindCAC {
		a.Kind, a.Key = req.Credential, req.Key
	}
	if a.Status == "" {
		a.Status = store.StatusActive
	}
	return a
}

// checkNewUsername is checkUsername for an account about to be created.
// The literal path segments under /cacgate/accounts/ are reserved: an
// account so named could not be shown through the API, so none is made
// (the store refuses them too, in imports and enrollment).
func checkNewUsername(username string) error {
	if !store.ValidUsername(username) {
		return errors.New("username must be 1-64 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter")
	}
	if store.ReservedUsername(username) {
		return fmt.Errorf("username %q is reserved by the admin API", username)
	}
	return nil
}

// maxGroupsPerRequest bounds the groups one request names.
const maxGroupsPerRequest = store.MaxGroupsPerAccount

// checkGroups validates group names before they reach the store, so the
// error can name the bad one's position.
func checkGroups(groups []string) error {
	if len(groups) > maxGroupsPerRequest {
		return fmt.Errorf("at most %d groups at once", maxGroupsPerRequest)
	}
	for i, g := range groups {
		if !store.ValidGroupName(g) {
			return fmt.Errorf("group %d (%q) must be 1-64 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", i+1, Clip(g, 70))
		}
	}
	return nil
}

func checkText(field, v string, max int) error {
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > max {
		return fmt.Errorf("%s must be valid text of at most %d characters", field, max)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%s contains a control or non-printable character", field)
		}
	}
	return nil
}

// LinkCardRequest is the body of POST /cacgate/accounts/{username}/cards.
type LinkCardRequest struct {
	Certificate string `json:"certificate"` // PEM
}
