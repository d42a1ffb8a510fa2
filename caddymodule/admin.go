package caddymodule

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/store"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI is the admin.api.cacgate module: account provisioning through
// Caddy's admin endpoint (by default localhost:2019), so ops can create
// accounts without enrollment and disable them at once.
//
//	GET    /cacgate/accounts[?offset=N&limit=N&status=S]
//	POST   /cacgate/accounts                         {"edipi","username",...}
//	GET    /cacgate/accounts/{username}
//	POST   /cacgate/accounts/{username}/disable
//	POST   /cacgate/accounts/{username}/enable
//	POST   /cacgate/accounts/{username}/approve       (pending -> active only)
//	POST   /cacgate/accounts/{username}/cards         {"certificate":"<PEM>"}
//	DELETE /cacgate/accounts/{username}/cards/{sha256}
//	GET    /cacgate/revocation                        (CRL and OCSP cache state)
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.cacgate",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes.
func (AdminAPI) Routes() []caddy.AdminRoute {
	route := func(pattern string, fn func(*App, http.ResponseWriter, *http.Request) error) caddy.AdminRoute {
		return caddy.AdminRoute{Pattern: pattern, Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			app, err := runningApp()
			if err != nil {
				return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
			}
			return fn(app, w, r)
		})}
	}
	return []caddy.AdminRoute{
		route("GET /cacgate/accounts", adminListAccounts),
		route("POST /cacgate/accounts", adminCreateAccount),
		route("GET /cacgate/accounts/{username}", adminShowAccount),
		route("POST /cacgate/accounts/{username}/disable", adminSetStatus(store.StatusDisabled)),
		route("POST /cacgate/accounts/{username}/enable", adminSetStatus(store.StatusActive)),
		route("POST /cacgate/accounts/{username}/approve", adminApprove),
		route("POST /cacgate/accounts/{username}/cards", adminLinkCard),
		route("DELETE /cacgate/accounts/{username}/cards/{fingerprint}", adminUnlinkCard),
		route("GET /cacgate/revocation", adminRevocationStats),
	}
}

// AccountJSON is an account as the admin API and CLI show it.
type AccountJSON struct {
	Username     string     `json:"username"`
	EDIPI        string     `json:"edipi"`
	GivenName    string     `json:"given_name,omitempty"`
	MiddleName   string     `json:"middle_name,omitempty"`
	FamilyName   string     `json:"family_name,omitempty"`
	Suffix       string     `json:"suffix,omitempty"`
	Email        string     `json:"email,omitempty"`
	Affiliation  string     `json:"affiliation,omitempty"`
	Categories   []string   `json:"categories,omitempty"`
	Organization string     `json:"organization,omitempty"`
	Location     string     `json:"location,omitempty"`
	WorkAddress  string     `json:"work_address,omitempty"`
	Phone        string     `json:"phone,omitempty"`
	HasPassword  bool       `json:"has_password"`
	LockedUntil  *time.Time `json:"locked_until,omitempty"`
	Status       string     `json:"status"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	LastLoginAt  *time.Time `json:"last_login_at,omitempty"`
	Cards        []CardJSON `json:"cards"`
}

// CardJSON is a registered card as the admin API shows it.
type CardJSON struct {
	Fingerprint string     `json:"sha256"`
	Subject     string     `json:"subject"`
	Issuer      string     `json:"issuer"`
	Serial      string     `json:"serial"`
	NotAfter    time.Time  `json:"not_after"`
	CreatedAt   time.Time  `json:"created_at"`
	LastUsedAt  *time.Time `json:"last_used_at,omitempty"`
}

func accountJSON(a *store.Account) AccountJSON {
	out := AccountJSON{
		Username: a.Username, EDIPI: a.EDIPI, GivenName: a.GivenName, MiddleName: a.MiddleName,
		FamilyName: a.FamilyName, Suffix: a.Suffix, Email: a.Email, Affiliation: a.Affiliation,
		Categories: a.Categories, Organization: a.Organization, Location: a.Location,
		WorkAddress: a.WorkAddress, Phone: a.Phone, HasPassword: a.HasPassword, LockedUntil: optTime(a.LockedUntil),
		Status: string(a.Status), CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC(),
		LastLoginAt: optTime(a.LastLoginAt), Cards: []CardJSON{},
	}
	for _, c := range a.Cards {
		out.Cards = append(out.Cards, CardJSON{
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
	EDIPI       string `json:"edipi"`
	Username    string `json:"username"`
	GivenName   string `json:"given_name,omitempty"`
	MiddleName  string `json:"middle_name,omitempty"`
	FamilyName  string `json:"family_name,omitempty"`
	Suffix      string `json:"suffix,omitempty"`
	Email       string `json:"email,omitempty"`
	Affiliation string `json:"affiliation,omitempty"`
	Status      string `json:"status,omitempty"` // active (default), disabled or pending
}

var (
	edipiPattern    = regexp.MustCompile(`^[0-9]{10}$`)
	usernamePattern = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,63}$`)
	sha256Pattern   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// validate checks every field; the store trusts its callers.
func (req *NewAccountRequest) validate() error {
	if !edipiPattern.MatchString(req.EDIPI) {
		return errors.New("edipi must be the 10-digit DoD ID number")
	}
	if !usernamePattern.MatchString(req.Username) {
		return errors.New("username must be 1-64 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter")
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

func badRequest(err error) error {
	return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
}

// decodeBody reads a small JSON body strictly: unknown fields are errors,
// so a typo in a field name is not silently ignored.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest(fmt.Errorf("request body: %w", err))
	}
	return nil
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func storeError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: err}
	case errors.Is(err, store.ErrUsernameTaken), errors.Is(err, store.ErrEDIPITaken), errors.Is(err, store.ErrCardTaken),
		errors.Is(err, store.ErrStatusConflict):
		return caddy.APIError{HTTPStatus: http.StatusConflict, Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("account database timed out")}
	}
	return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
}

// adminAudit records an admin action and who made it: the admin endpoint's
// client address, and its certificate subject when remote admin uses mTLS.
func (a *App) adminAudit(r *http.Request, event, outcome string, fields ...zap.Field) {
	admin := r.RemoteAddr
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		c := r.TLS.PeerCertificates[0]
		admin = cacid.DistinguishedName(c.RawSubject, c.Subject) + " (" + r.RemoteAddr + ")"
	}
	a.audit.log.Info(event, append(fields,
		zap.String("event", event), zap.String("outcome", outcome),
		zap.String("admin", admin), zap.String("source_ip", r.RemoteAddr), zap.String("node", a.audit.node))...)
}

func adminListAccounts(app *App, w http.ResponseWriter, r *http.Request) error {
	offset, limit := 0, 100
	q := r.URL.Query()
	var err error
	if s := q.Get("offset"); s != "" {
		if offset, err = strconv.Atoi(s); err != nil || offset < 0 {
			return badRequest(errors.New("offset must be a non-negative number"))
		}
	}
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			return badRequest(errors.New("limit must be between 1 and 1000"))
		}
	}
	var accts []*store.Account
	switch status := store.Status(q.Get("status")); status {
	case "":
		accts, err = app.store.ListAccounts(r.Context(), offset, limit)
	case store.StatusActive, store.StatusDisabled, store.StatusPending:
		accts, err = app.store.ListAccountsByStatus(r.Context(), status, offset, limit)
	default:
		return badRequest(errors.New(`status must be "active", "disabled" or "pending"`))
	}
	if err != nil {
		return storeError(err)
	}
	out := make([]AccountJSON, 0, len(accts))
	for _, a := range accts {
		out = append(out, accountJSON(a))
	}
	return writeAdminJSON(w, http.StatusOK, out)
}

func adminCreateAccount(app *App, w http.ResponseWriter, r *http.Request) error {
	var req NewAccountRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return badRequest(err)
	}
	acct := &store.Account{
		Username: req.Username, EDIPI: req.EDIPI, GivenName: req.GivenName, MiddleName: req.MiddleName,
		FamilyName: req.FamilyName, Suffix: req.Suffix, Email: req.Email, Affiliation: req.Affiliation,
		Status: store.Status(req.Status),
	}
	if acct.Status == "" {
		acct.Status = store.StatusActive
	}
	if err := app.store.CreateAccount(r.Context(), acct); err != nil {
		app.adminAudit(r, "account.created", outcomeFailure, zap.String("username", req.Username), zap.String("edipi", req.EDIPI), zap.String("reason", err.Error()))
		return storeError(err)
	}
	app.invalidate()
	app.adminAudit(r, "account.created", outcomeSuccess, zap.String("username", acct.Username), zap.String("edipi", acct.EDIPI), zap.String("status", string(acct.Status)))
	created, err := app.store.AccountByUsername(r.Context(), acct.Username)
	if err != nil {
		return storeError(err)
	}
	return writeAdminJSON(w, http.StatusCreated, accountJSON(created))
}

func adminShowAccount(app *App, w http.ResponseWriter, r *http.Request) error {
	acct, err := app.store.AccountByUsername(r.Context(), r.PathValue("username"))
	if err != nil {
		return storeError(err)
	}
	return writeAdminJSON(w, http.StatusOK, accountJSON(acct))
}

func adminSetStatus(status store.Status) func(*App, http.ResponseWriter, *http.Request) error {
	return func(app *App, w http.ResponseWriter, r *http.Request) error {
		username := r.PathValue("username")
		acct, err := app.store.SetStatus(r.Context(), username, status)
		if err != nil {
			return storeError(err)
		}
		app.invalidate()
		app.adminAudit(r, "account.status_changed", outcomeSuccess, zap.String("username", username), zap.String("status", string(status)))
		return writeAdminJSON(w, http.StatusOK, accountJSON(acct))
	}
}

// adminApprove lets a pending account in. Only a pending account can be
// approved, atomically, so approving cannot re-enable a disabled account.
func adminApprove(app *App, w http.ResponseWriter, r *http.Request) error {
	username := r.PathValue("username")
	acct, err := app.store.TransitionStatus(r.Context(), username, store.StatusPending, store.StatusActive)
	if err != nil {
		outcome := outcomeFailure
		app.adminAudit(r, "account.approved", outcome, zap.String("username", username), zap.String("reason", err.Error()))
		if errors.Is(err, store.ErrStatusConflict) {
			return caddy.APIError{HTTPStatus: http.StatusConflict, Err: fmt.Errorf("account %s is not pending approval", username)}
		}
		return storeError(err)
	}
	app.invalidate()
	app.adminAudit(r, "account.approved", outcomeSuccess, zap.String("username", username))
	return writeAdminJSON(w, http.StatusOK, accountJSON(acct))
}

// LinkCardRequest is the body of POST /cacgate/accounts/{username}/cards.
type LinkCardRequest struct {
	Certificate string `json:"certificate"` // PEM
}

func adminLinkCard(app *App, w http.ResponseWriter, r *http.Request) error {
	username := r.PathValue("username")
	var req LinkCardRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	block, _ := pem.Decode([]byte(req.Certificate))
	if block == nil || block.Type != "CERTIFICATE" {
		return badRequest(errors.New("certificate must be a PEM-encoded certificate"))
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return badRequest(fmt.Errorf("parsing certificate: %w", err))
	}
	id, err := cacid.Parse(cert)
	if err != nil {
		return badRequest(err)
	}
	acct, err := app.store.AccountByUsername(r.Context(), username)
	if err != nil {
		return storeError(err)
	}
	if acct.EDIPI != id.EDIPI {
		return badRequest(fmt.Errorf("the certificate's DoD ID %s is not the account's (%s)", id.EDIPI, acct.EDIPI))
	}
	err = app.store.LinkCard(r.Context(), acct.ID, store.Card{
		Fingerprint: id.FingerprintHex, Subject: id.Subject, Issuer: id.Issuer, Serial: id.Serial, NotAfter: id.NotAfter,
	})
	if err != nil {
		return storeError(err)
	}
	app.invalidate()
	app.adminAudit(r, "card.linked", outcomeSuccess, append(cardFields(id), zap.String("username", username), zap.String("via", "admin"))...)
	if acct, err = app.store.AccountByUsername(r.Context(), username); err != nil {
		return storeError(err)
	}
	return writeAdminJSON(w, http.StatusCreated, accountJSON(acct))
}

func adminUnlinkCard(app *App, w http.ResponseWriter, r *http.Request) error {
	username, fp := r.PathValue("username"), r.PathValue("fingerprint")
	if !sha256Pattern.MatchString(fp) {
		return badRequest(errors.New("card must be identified by the lowercase hex SHA-256 of its certificate"))
	}
	if err := app.store.UnlinkCard(r.Context(), username, fp); err != nil {
		return storeError(err)
	}
	app.invalidate()
	app.adminAudit(r, "card.unlinked", outcomeSuccess, zap.String("username", username), zap.String("cert_sha256", fp))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// certFingerprint is the hex SHA-256 of a certificate's DER, as cards are keyed.
func certFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// Interface guards
var (
	_ caddy.AdminRouter = AdminAPI{}
)
