package portal

import (
	"net/http"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

type restorePage struct {
	pageBase
	Username     string
	IDType       string
	AskPEBD      bool
	PEBDOptional bool
}

// ServeRestore answers PathRestore for the admitted card and its account
// (disabled for inactivity): the identity form (GET) and its check (POST),
// which enables the account on a match.
func (p *Pages) ServeRestore(w http.ResponseWriter, r *http.Request, card *cacid.Identity, acct *store.Account, csrf CSRF) error {
	if err := checkCard(card); err != nil {
		return err
	}
	r = withRequest(r)
	if !selfservice.Restorable(card, acct) {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusForbidden, Code: "not_restorable", Title: "Nothing to restore here",
			Detail:  "Only an account the site disabled because it was not used can be restored here, with its own card. Ask the site's administrators about any other.",
			Contact: p.cfg.Contact})
	}
	page := restorePage{pageBase: p.base(card, csrf), Username: acct.Username, IDType: "ssn"}
	if r.Method != http.MethodPost {
		form, err := p.svc.RestoreForm(r.Context(), card)
		if err != nil {
			return p.rosterUnavailable(w, r)
		}
		page.AskPEBD, page.PEBDOptional = form.AskPEBD, form.PEBDOptional
		return p.render(w, http.StatusOK, "restore", page)
	}
	if ok, err := p.readForm(w, r, csrf, "Go back, reload the page and try again."); !ok {
		return err
	}
	f := r.PostForm
	res, err := p.svc.Restore(r.Context(), card, acct, selfservice.IdentityInput{
		IDType: f.Get("idtype"), SSN: f.Get("ssn"), FIN: f.Get("fin"), DOB: f.Get("dob"), PEBD: f.Get("pebd"), Address: clientAddress(r),
	})
	if err != nil {
		return err
	}
	page.IDType, page.AskPEBD, page.PEBDOptional, page.Errors = res.IDType, res.Form.AskPEBD, res.Form.PEBDOptional, res.Errors
	switch res.Status {
	case selfservice.Done:
		return redirect(w, r, "/")
	case selfservice.Invalid, selfservice.Wrong:
		status := http.StatusUnprocessableEntity
		if res.Status == selfservice.Wrong {
			status = http.StatusForbidden
		}
		return p.render(w, status, "restore", page)
	case selfservice.Limited:
		if res.Reason == selfservice.ReasonAddressLimited {
			return AddressLimited(w, r, p.cfg.Contact)
		}
		return p.tooMany(w, r, "The information entered for this card did not match the personnel records too many times.",
			"Wait 15 minutes before trying again.", "Check your information, or contact the help desk.")
	case selfservice.RosterUnavailable:
		return p.rosterUnavailable(w, r)
	case selfservice.Unavailable:
		return p.unavailable(w, r, "Your account was not restored.", func(status int, errs selfservice.FieldErrors) error {
			page.Errors = errs
			return p.render(w, status, "restore", page)
		})
	}
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusForbidden, Code: "not_restorable", Title: "Your account could not be restored",
		Detail: "It is no longer disabled for inactivity (an administrator changed it). Ask the site's administrators.", Contact: p.cfg.Contact})
}
