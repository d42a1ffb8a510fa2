package caddymodule

import (
	"net/http"
	"time"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/gateway"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/trust"
)

// The gateway's own pages under /.cacgate/ are package portal. The glue
// here admits a request as far as the page needs (the same checks as for
// the protected application, which only the gateway can run), hands the
// portal what it found, and gives it the gateway's error answers.

// serveGatewayPage serves the reserved /.cacgate/ paths. Nothing below the
// prefix reaches the protected application.
func (h *Handler) serveGatewayPage(w http.ResponseWriter, r *http.Request) error {
	w = h.withChrome(w)
	v, done, err := h.admitVisitor(w, r, h.portal.Admission(r), time.Now())
	if done {
		return err
	}
	return h.portal.ServeHTTP(w, portal.WithVisitor(r, v))
}

// admitVisitor admits r to level with the gateway core. When done is
// true it has answered the request itself (a refusal, the banner,
// enrollment) and err is the handler's result.
func (h *Handler) admitVisitor(w http.ResponseWriter, r *http.Request, level portal.Level, now time.Time) (v portal.Visitor, done bool, err error) {
	switch level {
	case portal.Public:
		return v, false, nil
	case portal.Optional:
		// What is at hand without I/O beyond the session check, and
		// without refusing: for signing out.
		if s, ok, _ := h.app.sessions.Session(r.Context(), consent.CookieByName(r.Header["Cookie"], session.CookieName), now); ok {
			v.Session = &s
		}
		if se, rej := h.site.Certificate(r.TLS, now); se != nil && rej == nil && se.ID != nil && !se.NPE() {
			v.Card, v.Holder = visitorCard(se), gateway.HolderName(se.ID)
			v.Consented = h.app.consents.Accepted(consent.CookieValue(r.Header["Cookie"]), se.ID.FingerprintHex, now, time.Duration(h.ConsentTTL))
		}
		return v, false, nil
	case portal.Identified:
		if h.PasswordLogin && !hasCertificate(r) {
			s, ok, err := h.app.sessions.Session(r.Context(), consent.CookieByName(r.Header["Cookie"], session.CookieName), now)
			switch {
			case err != nil:
				// Whether the session was signed out cannot be checked.
				return v, true, h.unavailable(w, r, err)
			case !ok:
				return v, true, h.refuseNoCard(w, r)
			}
			v.Session = &s
			return v, false, nil
		}
		d := refuseNPEPages(h.site.Gate(r, now))
		if d.Outcome != gateway.Admitted {
			return v, true, h.answer(w, r, d)
		}
		return cardVisitor(d), false, nil
	}
	// Consented, Registered: the banner first, then (Registered) an active
	// account; the deny rules either way, so people a deny rule excludes
	// cannot create or keep up an account here.
	d := refuseNPEPages(h.site.GateConsented(r, now))
	if level == portal.Registered {
		d = gateway.RequireAccount(d)
	}
	if d = h.site.CheckDeny(d); d.Outcome != gateway.Admitted {
		return v, true, h.answer(w, r, d)
	}
	return cardVisitor(d), false, nil
}

// refuseNPEPages refuses a non-person certificate the gateway's own pages
// (banner, enrollment, account): they are for people, and a system has
// nothing to do there.
func refuseNPEPages(d gateway.Decision) gateway.Decision {
	if d.Outcome == gateway.Admitted && d.Site.NPE() {
		d.Outcome, d.Entry = gateway.CertificateRefused, nil
		d.Rejection = &trust.Rejection{Code: trust.CodeInvalidFormat,
			Reason: "This certificate belongs to a system (a utility account), and the gateway's own pages are for people."}
	}
	return d
}

func cardVisitor(d gateway.Decision) portal.Visitor {
	return portal.Visitor{Card: visitorCard(d.Site), Holder: gateway.HolderName(d.Site.ID), Account: d.Entry.Account, ByEDIPI: d.Entry.ByEDIPI}
}

func visitorCard(se *gateway.SiteEntry) *cacid.Identity { return se.ID }

// portalGateway is what the portal needs from the gateway: its error
// answers.
type portalGateway struct{ h *Handler }

func (g portalGateway) Unavailable(w http.ResponseWriter, r *http.Request, err error) error {
	return g.h.unavailable(w, r, err)
}

// provisionPortal builds this site's pages under /.cacgate/.
func (h *Handler) provisionPortal() error {
	cons, err := h.provisionConsole() // console.go
	if err != nil {
		return err
	}
	h.portal, err = portal.New(portal.Config{
		Console:           cons,
		Gateway:           portalGateway{h},
		Pages:             h.enrollFlow,
		Consent:           h.app.tokens,
		Banner:            h.banner,
		ConsentTTL:        time.Duration(h.ConsentTTL),
		PasswordLogin:     h.PasswordLogin,
		Sessions:          h.app.sessions,
		SessionTTL:        time.Duration(h.SessionTTL),
		SessionIdle:       h.sessionIdle,
		SessionLimit:      h.SessionLimit,
		Contact:           h.contactText(),
		Audit:             h.app.audit,
		Logger:            h.logger,
		JWKS:              h.app.signer.JWKS,
		TrustCertificates: h.trustCertificates,
		Logons:            h.app.logons(),
	})
	return err
}
