package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/metrics"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
	"github.com/cacgate/cacgate/revocation"
	"github.com/cacgate/cacgate/trust"
)

// refuse answers a request whose certificate did not pass, and audits it.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, se *siteEntry, rej *trust.Rejection) error {
	h.app.metrics.Request(metrics.Denied, rej.Code)
	if rej == rejectNoCertificate {
		return ui.WriteProblem(w, r, ui.Problem{
			Status: http.StatusUnauthorized,
			Code:   "certificate_required",
			Title:  "Insert your CAC to continue",
			Detail: "This site requires a Common Access Card (CAC) or PIV card, and your browser did not present a certificate.",
			Steps: []string{
				"Insert your CAC into the card reader.",
				"Close all browser windows (so the browser asks again), then reload this page.",
				"When the browser asks, select your authentication certificate (not the email certificate) and enter your PIN.",
			},
			Contact: h.Contact,
			Links:   h.loginLinks(r),
		})
	}
	fields := []zap.Field{zap.String("reason", rej.Code)}
	if se != nil && se.id != nil {
		fields = append(fields, audit.Card(se.id)...)
	} else if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		c := r.TLS.PeerCertificates[0]
		fields = append(fields, zap.String("cert_subject", cacid.DistinguishedName(c.RawSubject, c.Subject)),
			zap.String("cert_serial", c.SerialNumber.Text(16)), zap.String("cert_issuer", cacid.DistinguishedName(c.RawIssuer, c.Issuer)))
	}
	h.app.audit.Request(r, "access.denied", audit.Failure, fields...)
	return ui.WriteProblem(w, r, ui.Problem{
		Status:  http.StatusForbidden,
		Code:    rej.Code,
		Title:   "Your certificate cannot be used here",
		Detail:  rej.Reason,
		Contact: h.Contact,
	})
}

// askConsent sends a browser to the banner, and tells API clients that
// consent is missing (a program cannot click "I Accept").
func (h *Handler) askConsent(w http.ResponseWriter, r *http.Request) error {
	h.app.metrics.Request(metrics.ConsentRequired, "")
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && ui.WantsHTML(r) {
		return seeOther(w, consent.Path+"?next="+url.QueryEscape(r.URL.RequestURI()))
	}
	return ui.WriteProblem(w, r, ui.Problem{
		Status:  http.StatusForbidden,
		Code:    "consent_required",
		Title:   "Notice and consent required",
		Detail:  "Accept the U.S. Government information system notice at " + consent.Path + " in a browser with this card first.",
		Contact: h.Contact,
	})
}

func (h *Handler) redirectToEnroll(w http.ResponseWriter, r *http.Request) error {
	h.app.metrics.Request(metrics.Enroll, "not_registered")
	if ui.WantsHTML(r) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return seeOther(w, portal.PathEnroll+"?next="+url.QueryEscape(r.URL.RequestURI()))
	}
	return ui.WriteProblem(w, r, problemNotRegistered(h.Contact))
}

func problemNotRegistered(contact string) ui.Problem {
	return ui.Problem{
		Status:  http.StatusForbidden,
		Code:    "not_registered",
		Title:   "Your card is not registered",
		Detail:  "This card is not registered to an account on this site.",
		Contact: contact,
	}
}

// accountProblem decides what the card's account state allows. A 303
// status means "send to enrollment".
func (h *Handler) accountProblem(card *cardEntry) *ui.Problem {
	if card.account == nil {
		return &ui.Problem{Status: http.StatusSeeOther}
	}
	switch card.account.Status {
	case store.StatusActive:
		return nil
	case store.StatusPending:
		return &ui.Problem{
			Status:  http.StatusForbidden,
			Code:    "account_pending",
			Title:   "Your account is waiting for approval",
			Detail:  "Your account has been created and is waiting for an administrator to approve it. You will be able to sign in once it is approved.",
			Contact: h.Contact,
		}
	default:
		return &ui.Problem{
			Status:  http.StatusForbidden,
			Code:    "account_disabled",
			Title:   "Your account is disabled",
			Detail:  "The account registered to this card has been disabled, so this site cannot let you in.",
			Steps:   []string{"Contact the site's administrators to find out why and to have it re-enabled."},
			Contact: h.Contact,
		}
	}
}

// storeUnavailable fails closed when the account database cannot answer.
func (h *Handler) storeUnavailable(w http.ResponseWriter, r *http.Request, err error) error {
	h.logger.Error("account lookup failed", zap.Error(err))
	status := http.StatusServiceUnavailable
	if errors.Is(r.Context().Err(), context.Canceled) {
		status = 499 // client went away; nothing useful to say
	}
	h.app.metrics.Request(metrics.Unavailable, "account_service_unavailable")
	w.Header().Set("Retry-After", "30")
	return ui.WriteProblem(w, r, ui.Problem{
		Status:  status,
		Code:    "account_service_unavailable",
		Title:   "Sign-in is temporarily unavailable",
		Detail:  "The gateway could not reach its account database, so it cannot check your account right now.",
		Steps:   []string{"Wait a minute, then reload this page."},
		Contact: h.Contact,
		Retry:   true,
	})
}

func seeOther(w http.ResponseWriter, location string) error {
	ui.SetSecurityHeaders(w.Header())
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
	return nil
}

// refuseRevocation answers a card whose chain's revocation status is not
// good: the card or (with intermediates on) its issuing CA revoked (403)
// or, failing closed, unknown because no status service answered (503).
// All are audited with the certificate's serial and issuer, and the CA's
// when it decided.
func (h *Handler) refuseRevocation(w http.ResponseWriter, r *http.Request, se *siteEntry, v chainVerdict) error {
	fields := append(audit.Card(se.id), zap.String("revocation_source", v.Source))
	if v.Err != nil {
		fields = append(fields, zap.String("revocation_error", v.Err.Error()))
	}
	if v.ca != nil {
		fields = append(fields, audit.CA(v.ca)...)
	}
	if v.Status == revocation.StatusRevoked {
		revokedOn := v.RevokedAt.UTC().Format("2 January 2006")
		code, title := "certificate_revoked", "Your certificate has been revoked"
		detail := "The certificate authority revoked this certificate on " + revokedOn + ", so it can no longer be used to sign in."
		if v.ca != nil {
			code, title = "ca_revoked", "Your card's certificate authority has been revoked"
			detail = "Your certificate was issued under the certificate authority " + v.ca.Subject.CommonName + ", which was revoked on " +
				revokedOn + ", so certificates issued under it can no longer be used to sign in."
		}
		h.app.metrics.Request(metrics.Denied, code)
		h.app.audit.Request(r, "access.denied", audit.Failure, append(fields,
			zap.String("reason", code), zap.Time("revoked_at", v.RevokedAt), zap.Int("revocation_reason", v.Reason))...)
		return ui.WriteProblem(w, r, ui.Problem{
			Status: http.StatusForbidden,
			Code:   code,
			Title:  title,
			Detail: detail,
			Steps: []string{
				"If you have a newer CAC, use it instead.",
				"Otherwise visit a RAPIDS ID card office to have your card's certificates reissued.",
			},
			Contact: h.Contact,
		})
	}
	h.app.metrics.Request(metrics.Unavailable, "revocation_unavailable")
	h.app.audit.Request(r, "access.denied", audit.Failure, append(fields, zap.String("reason", "revocation_unavailable"))...)
	w.Header().Set("Retry-After", "60")
	return ui.WriteProblem(w, r, ui.Problem{
		Status:  http.StatusServiceUnavailable,
		Code:    "revocation_unavailable",
		Title:   "Certificate status service unreachable",
		Detail:  "The gateway could not confirm with the certificate authority that your certificate has not been revoked, so it cannot let you in right now. The status service is slow or unreachable.",
		Steps:   []string{"Wait a few minutes, then reload this page.", "If this keeps happening, tell the site's administrators."},
		Contact: h.Contact,
		Retry:   true,
	})
}
