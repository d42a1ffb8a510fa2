package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/access"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/metrics"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
	"github.com/cacgate/cacgate/revocation"
	"github.com/cacgate/cacgate/trust"
)

// Refusal is how a request that was not admitted is answered: a page or
// JSON problem, or a redirect (Location set: to the banner, or to
// enrollment). Refuse has audited it and counted it already.
type Refusal struct {
	Problem ui.Problem
	// Location, when set, is where a browser is sent (303) instead.
	Location string
	// JSON, when set, is the body API clients get instead of the
	// problem's default JSON (access refusals say what is missing).
	JSON any
	// RetryAfter is the Retry-After header's value, if any.
	RetryAfter string
}

// EnrollPath is where an unregistered card is sent to register.
const EnrollPath = ui.Prefix + "enroll"

// Refuse turns a decision that is not Admitted into its answer, auditing
// the refusals that are security events and counting every outcome.
func (s *Site) Refuse(r *http.Request, d Decision) Refusal {
	m := s.core.cfg.Metrics
	switch d.Outcome {
	case NoCertificate:
		m.Request(metrics.Denied, rejectNoCertificate.Code)
		return Refusal{Problem: ui.Problem{
			Status: http.StatusUnauthorized,
			Code:   "certificate_required",
			Title:  "Insert your CAC to continue",
			Detail: "This site requires a Common Access Card (CAC) or PIV card, and your browser did not present a certificate.",
			Steps: []string{
				"Insert your CAC into the card reader.",
				"Close all browser windows (so the browser asks again), then reload this page.",
				"When the browser asks, select your authentication certificate (not the email certificate) and enter your PIN.",
			},
			Contact: s.cfg.Contact,
			Links:   []ui.Link{ui.CertificatesLink},
		}}
	case CertificateRefused:
		return s.refuseCertificate(r, d)
	case RevocationRefused:
		return s.refuseRevocation(r, d)
	case StoreUnavailable:
		return s.storeUnavailable(r, d)
	case ConsentRequired:
		m.Request(metrics.ConsentRequired, "")
		if isPageLoad(r) {
			return Refusal{Location: consent.Path + "?next=" + url.QueryEscape(r.URL.RequestURI())}
		}
		return Refusal{Problem: ui.Problem{
			Status:  http.StatusForbidden,
			Code:    "consent_required",
			Title:   "Notice and consent required",
			Detail:  "Accept the U.S. Government information system notice at " + consent.Path + " in a browser with this card first.",
			Contact: s.cfg.Contact,
		}}
	case NotRegistered:
		m.Request(metrics.Enroll, "not_registered")
		if isPageLoad(r) {
			return Refusal{Location: EnrollPath + "?next=" + url.QueryEscape(r.URL.RequestURI())}
		}
		return Refusal{Problem: ui.ProblemNotRegistered(s.cfg.Contact)}
	case AccountInactive:
		p := s.accountProblem(d.Entry.Account)
		m.Request(metrics.Denied, p.Code)
		return Refusal{Problem: p}
	case AccessDenied:
		return s.refuseAccess(r, d)
	case AmbiguousPath:
		m.Request(metrics.Denied, "ambiguous_path")
		s.core.cfg.Audit.RequestRepeatable(r, "ambiguous_path\x00"+certKey(r), "access.denied", audit.Failure, zap.String("reason", "ambiguous_path"),
			zap.String("path_problem", d.Rejection.Code), audit.Text("raw_path", r.URL.EscapedPath()))
		return Refusal{Problem: ui.Problem{
			Status:  http.StatusBadRequest,
			Code:    "ambiguous_path",
			Title:   "This address cannot be used",
			Detail:  "The address holds encoded slashes or dots, empty or dot segments, or other forms that servers read in different ways, so this site does not serve it. Use the link or address the site gave you.",
			Contact: s.cfg.Contact,
		}}
	}
	// Admitted is not a refusal: fail closed all the same.
	return s.storeUnavailable(r, Decision{Outcome: StoreUnavailable, Site: d.Site, Err: errors.New("gateway: Refuse called for an admitted request")})
}

// isPageLoad reports whether a browser is loading a page, which can be
// sent elsewhere; a program gets the problem itself.
func isPageLoad(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && ui.WantsHTML(r)
}

func (s *Site) refuseCertificate(r *http.Request, d Decision) Refusal {
	rej := d.Rejection
	s.core.cfg.Metrics.Request(metrics.Denied, rej.Code)
	fields := []zap.Field{zap.String("reason", rej.Code)}
	if d.Site != nil && d.Site.ID != nil {
		fields = append(fields, audit.Card(d.Site.ID)...)
	} else if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		c := r.TLS.PeerCertificates[0]
		fields = append(fields, audit.Text("cert_subject", cacid.DistinguishedName(c.RawSubject, c.Subject)),
			audit.Text("cert_serial", c.SerialNumber.Text(16)), audit.Text("cert_issuer", cacid.DistinguishedName(c.RawIssuer, c.Issuer)))
	}
	s.core.cfg.Audit.RequestRepeatable(r, rej.Code+"\x00"+certKey(r), "access.denied", audit.Failure, fields...)
	p := ui.Problem{
		Status:  http.StatusForbidden,
		Code:    rej.Code,
		Title:   "Your certificate cannot be used here",
		Detail:  rej.Reason,
		Contact: s.cfg.Contact,
	}
	if rej.Code == trust.CodeUntrusted {
		// A card of a CA the browser's computer lacks the chain of.
		p.Links = []ui.Link{ui.CertificatesLink}
	}
	return Refusal{Problem: p}
}

// accountProblem is the answer for an account that is not active.
func (s *Site) accountProblem(acct *store.Account) ui.Problem {
	if acct.Status == store.StatusPending {
		return ui.Problem{
			Status:  http.StatusForbidden,
			Code:    "account_pending",
			Title:   "Your account is waiting for approval",
			Detail:  "Your account has been created and is waiting for an administrator to approve it. You will be able to sign in once it is approved.",
			Contact: s.cfg.Contact,
		}
	}
	p := ui.Problem{
		Status:  http.StatusForbidden,
		Code:    "account_disabled",
		Title:   "Your account is disabled",
		Detail:  "The account registered to this card has been disabled, so this site cannot let you in.",
		Steps:   []string{"Contact the site's administrators to find out why and to have it re-enabled."},
		Contact: s.cfg.Contact,
	}
	switch acct.DisabledReason {
	case store.DisabledInactive:
		p.Detail = "Your account was disabled because nobody signed in with it for a long time, as DoD rules require for inactive accounts."
		p.Steps = []string{"Restore it yourself by confirming who you are against the personnel records (where this site offers it), or ask the site's administrators to enable it again."}
		p.Links = []ui.Link{{Text: "Restore my account", Href: "/.cacgate/restore"}}
	case store.DisabledExpired:
		p.Detail = "This utility account reached its expiry date."
		p.Steps = []string{"Its sponsor can ask the site's administrators to renew it (a new expiry) and enable it again."}
	case store.DisabledSponsor:
		p.Detail = "This utility account's sponsor account is no longer active."
		p.Steps = []string{"Ask the site's administrators to give it an active sponsor and enable it again."}
	}
	return p
}

// storeUnavailable fails closed when the account database cannot answer
// (d.Err): 503 with Retry-After, logged with the error and its cause
// (store.Cause: disk_full, unreachable …), and audited as access.denied
// with reason account_service_unavailable and the cause. The audit entry
// is repeatable per card (or password user) and client address, as the
// other refusals a client can repeat at will are: every retry of every
// person during an outage is refused, so one entry per person and minute
// and a count say it without flooding the trail.
func (s *Site) storeUnavailable(r *http.Request, d Decision) Refusal {
	cause := store.Cause(d.Err)
	if cause == "" {
		cause = "error"
	}
	s.cfg.Logger.Error("account database unavailable: request refused", zap.String("cause", cause), zap.Error(d.Err))
	status := http.StatusServiceUnavailable
	if errors.Is(r.Context().Err(), context.Canceled) {
		status = 499 // client went away; nothing useful to say, nobody refused
	} else {
		fields, who := refusedWho(r, d)
		s.core.cfg.Audit.RequestRepeatable(r, ui.CodeStoreUnavailable+"\x00"+who, "access.denied", audit.Failure,
			append(fields, zap.String("reason", ui.CodeStoreUnavailable), zap.String("cause", cause))...)
	}
	s.core.cfg.Metrics.Request(metrics.Unavailable, ui.CodeStoreUnavailable)
	return Refusal{RetryAfter: ui.RetryAfterStore, Problem: ui.Problem{
		Status:  status,
		Code:    ui.CodeStoreUnavailable,
		Title:   "Sign-in is temporarily unavailable",
		Detail:  "The gateway could not reach its account database, so it cannot check your account right now.",
		Steps:   []string{"Wait a minute, then reload this page."},
		Contact: s.cfg.Contact,
		Retry:   true,
	}}
}

// refusedWho names whom a refusal refused, for its audit entry: the card
// (as the site saw it, or as presented), or a password session's user,
// and the key a series of their refusals is collapsed under ("" for
// neither).
func refusedWho(r *http.Request, d Decision) ([]zap.Field, string) {
	switch {
	case d.Site != nil && d.Site.ID != nil:
		return audit.Card(d.Site.ID), d.Site.ID.FingerprintHex
	case r.TLS != nil && len(r.TLS.PeerCertificates) > 0:
		c := r.TLS.PeerCertificates[0]
		fp := cacid.Fingerprint(c.Raw)
		return []zap.Field{audit.Text("cert_subject", cacid.DistinguishedName(c.RawSubject, c.Subject)),
			audit.Text("cert_serial", c.SerialNumber.Text(16)), audit.Text("cert_issuer", cacid.DistinguishedName(c.RawIssuer, c.Issuer)),
			zap.String("cert_sha256", fp)}, fp
	case d.User != "":
		return []zap.Field{zap.String("username", d.User), zap.String("auth_method", AuthPassword)}, "user:" + d.User
	}
	return nil, ""
}

// refuseRevocation answers a card whose chain's revocation status is not
// good: the card or (with intermediates on) its issuing CA revoked (403)
// or, failing closed, unknown because no status service answered (503).
// All are audited with the certificate's serial and issuer, and the CA's
// when it decided.
func (s *Site) refuseRevocation(r *http.Request, d Decision) Refusal {
	v := d.Entry.Verdict
	m, log := s.core.cfg.Metrics, s.core.cfg.Audit
	fields := append(audit.Card(d.Site.ID), zap.String("revocation_source", v.Source))
	if v.Err != nil {
		fields = append(fields, zap.String("revocation_error", v.Err.Error()))
	}
	if v.CA != nil {
		fields = append(fields, audit.CA(v.CA)...)
	}
	if v.Status == revocation.StatusRevoked {
		revokedOn := v.RevokedAt.UTC().Format("2 January 2006")
		code, title := "certificate_revoked", "Your certificate has been revoked"
		detail := "The certificate authority revoked this certificate on " + revokedOn + ", so it can no longer be used to sign in."
		if v.CA != nil {
			code, title = "ca_revoked", "Your card's certificate authority has been revoked"
			detail = "Your certificate was issued under the certificate authority " + v.CA.Subject.CommonName + ", which was revoked on " +
				revokedOn + ", so certificates issued under it can no longer be used to sign in."
		}
		m.Request(metrics.Denied, code)
		log.RequestRepeatable(r, code+"\x00"+d.Site.ID.FingerprintHex, "access.denied", audit.Failure, append(fields,
			zap.String("reason", code), zap.Time("revoked_at", v.RevokedAt), zap.Int("revocation_reason", v.Reason))...)
		return Refusal{Problem: ui.Problem{
			Status: http.StatusForbidden,
			Code:   code,
			Title:  title,
			Detail: detail,
			Steps: []string{
				"If you have a newer CAC, use it instead.",
				"Otherwise visit a RAPIDS ID card office to have your card's certificates reissued.",
			},
			Contact: s.cfg.Contact,
		}}
	}
	m.Request(metrics.Unavailable, "revocation_unavailable")
	log.RequestRepeatable(r, "revocation_unavailable\x00"+d.Site.ID.FingerprintHex, "access.denied", audit.Failure, append(fields, zap.String("reason", "revocation_unavailable"))...)
	return Refusal{RetryAfter: "60", Problem: ui.Problem{
		Status:  http.StatusServiceUnavailable,
		Code:    "revocation_unavailable",
		Title:   "Certificate status service unreachable",
		Detail:  "The gateway could not confirm with the certificate authority that your certificate has not been revoked, so it cannot let you in right now. The status service is slow or unreachable.",
		Steps:   []string{"Wait a few minutes, then reload this page.", "If this keeps happening, tell the site's administrators."},
		Contact: s.cfg.Contact,
		Retry:   true,
	}}
}

// certKey names the request's certificate for collapsing repeated
// refusals ("" without one).
func certKey(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	return cacid.Fingerprint(r.TLS.PeerCertificates[0].Raw)
}

// accessProblemJSON is ui's problem JSON plus what the rules found
// missing, for API clients.
type accessProblemJSON struct {
	Error   string   `json:"error"`
	Reason  string   `json:"reason"`
	Message string   `json:"message"`
	Missing []string `json:"missing,omitempty"`
	Steps   []string `json:"steps,omitempty"`
	Contact string   `json:"contact,omitempty"`
}

// CodeAccessDenied is the problem code of every access-policy refusal; the
// decision's reason says which kind of rule.
const CodeAccessDenied = "access_denied"

// refuseAccess answers 403 with what is missing, in words the decision
// made safe to show, and audits the rule that refused.
func (s *Site) refuseAccess(r *http.Request, d Decision) Refusal {
	ad, se := d.Access, d.Site
	s.core.cfg.Metrics.Request(metrics.Denied, "access_"+ad.Reason)
	method := AuthPassword
	fields := []zap.Field{zap.String("reason", ad.Reason), zap.Strings("rules", ad.Rules)}
	if se.ID != nil {
		method = AuthCAC
		fields = append(fields, audit.Card(se.ID)...)
	}
	fields = append(fields, zap.String("auth_method", method))
	var steps []string
	if ad.NeedsCard {
		steps = append(steps, "Sign in with your CAC or PIV card instead of a password.")
	}
	detail := ad.Message()
	if acct := d.Entry.Account; acct != nil {
		fields = append(fields, zap.String("username", acct.Username))
		if se.ID == nil {
			// a password session's EDIPI is not in the card's fields
			fields = append(fields, zap.String("edipi", acct.EDIPI))
		}
		// The person's own username, which the administrators need.
		detail += " You are signed in as " + acct.Username + "."
	}
	s.core.cfg.Audit.Request(r, "access.denied", audit.Failure, fields...)
	if ad.Reason == access.ReasonDenied {
		steps = append(steps, "If you think this is a mistake, contact the site's administrators.")
	} else {
		steps = append(steps, "If your work needs this page, ask the site's administrators for access: tell them your username and what is missing.")
	}
	p := ui.Problem{
		Status:  http.StatusForbidden,
		Code:    CodeAccessDenied,
		Title:   "You do not have access to this page",
		Detail:  detail,
		Steps:   steps,
		Contact: s.cfg.Contact,
	}
	return Refusal{Problem: p, JSON: accessProblemJSON{
		Error: p.Code, Reason: ad.Reason, Message: ad.Message(), Missing: ad.Missing, Steps: p.Steps, Contact: p.Contact,
	}}
}
