package portal

import (
	"fmt"
	"net/http"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// ---- "I already have an account: register this card" ----

type linkPage struct {
	pageBase
	Username string
}

type linkedPage struct {
	pageBase
	Username string
	Pending  bool
}

func (p *Pages) serveLink(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF) error {
	if r.Method != http.MethodPost {
		return p.render(w, http.StatusOK, "link", linkPage{pageBase: p.base(card, csrf)})
	}
	if ok, err := p.readForm(w, r, csrf, "Go back to the registration page, reload it and try again."); !ok {
		return err
	}
	res, err := p.svc.LinkCard(r.Context(), card, selfservice.LinkInput{Username: r.PostForm.Get("username"), Password: r.PostForm.Get("password"),
		Address: clientAddress(r)})
	if err != nil {
		return err
	}
	again := func(status int, errs selfservice.FieldErrors) error {
		page := linkPage{pageBase: p.base(card, csrf), Username: res.Username}
		page.Errors = errs
		return p.render(w, status, "link", page)
	}
	switch res.Status {
	case selfservice.Limited:
		if res.Reason == selfservice.ReasonAddressLimited {
			return AddressLimited(w, r, p.cfg.Contact)
		}
		return p.tooMany(w, r, "A wrong username or password was entered with this card too many times.",
			"Wait 15 minutes before trying again.", "If you have forgotten your password, use the password reset, or contact the help desk.")
	case selfservice.Unavailable:
		return p.unavailable(w, r, "The card was not registered.", again)
	case selfservice.Invalid, selfservice.Wrong:
		return again(http.StatusUnprocessableEntity, res.Errors)
	case selfservice.Locked:
		return p.renderLocked(w, card, csrf, res.Login)
	case selfservice.Refused:
		return p.refuseLink(w, r, res)
	}
	return p.render(w, http.StatusOK, "linked", linkedPage{pageBase: p.base(card, csrf), Username: res.Account.Username,
		Pending: res.Account.Status == store.StatusPending})
}

func (p *Pages) refuseLink(w http.ResponseWriter, r *http.Request, res selfservice.LinkResult) error {
	acct := res.Account
	switch res.Reason {
	case "password_expired":
		return p.refuse(w, r, http.StatusForbidden, "password_expired", "Password expired",
			selfservice.ExpiredSentence(res.Expires)+" Reset it with your security questions (\"Forgot your password?\" on the registration page), then register this card. The card was not registered.")
	case "disabled":
		return p.refuse(w, r, http.StatusForbidden, "account_disabled", "Account disabled",
			"The account "+acct.Username+" is disabled, so no card can be registered to it. The card was not registered.")
	case "edipi_mismatch":
		return p.refuse(w, r, http.StatusForbidden, "edipi_mismatch", "This card belongs to someone else",
			"This card belongs to a different DoD ID than the account "+acct.Username+". A card can only be registered to its holder's own account. The card was not registered.")
	case "too_many_cards":
		return p.refuse(w, r, http.StatusConflict, "too_many_cards", "Too many cards registered",
			fmt.Sprintf("The account %s already has %d cards registered, the most allowed. Sign in with one of them and clear the registration of a card you no longer use, then register this one.", acct.Username, len(acct.Cards)))
	case "card_taken":
		return p.refuse(w, r, http.StatusConflict, "card_taken", "Card already registered",
			"This card is already registered to an account. A card can be registered to one account only.")
	default: // account_gone
		return p.refuse(w, r, http.StatusConflict, "account_gone", "Account not found",
			"The account was removed while the card was being registered. The card was not registered.")
	}
}
