package portal

import (
	"net/http"
	"slices"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// accountCard is one registered card as the account page shows it.
type accountCard struct {
	N           int // 1-based, for ids
	Fingerprint string
	Subject     string
	Issuer      string
	Expires     string
	LastUsed    string
	Current     bool // the card in use
	Clearable   bool
}

type accountPage struct {
	pageBase
	Account        *store.Account
	Name           string
	LastLogin      string
	Password       string // when it changed and expires
	Cards          []accountCard
	CurrentAlone   bool   // the card in use is the only one: it cannot be cleared
	CurrentCleared bool   // the card in use was just cleared
	Message        string // confirmation of the change just made
	// The last sign-in notice: the logon before the latest one, and the
	// failed attempts between them.
	PrevLogon, PrevFrom string
	PrevFailed          int
	// Notices are the optional e-mail notices and whether they are on.
	Notices []selfservice.NoticeChoice
}

type accountPasswordPage struct {
	pageBase
	Username   string
	HasCurrent bool
	Rules      []string
}

type accountAnswersPage struct {
	pageBase
	HasCurrent bool
	Slots      []questionSlot
	Questions  []credential.Question
}

// ServeAccount answers a request under PathAccount for the admitted card
// and its account (which the gateway has found active). Like Serve, it
// writes the response itself and returns a non-nil error only for an
// internal failure, having written nothing (or a form whose current state
// the account database could not give, matching
// selfservice.ErrUnavailable, which Portal answers with the gateway's
// refusal); a hash the hasher turns away is answered with the "try again
// in a moment" page (503).
func (p *Pages) ServeAccount(w http.ResponseWriter, r *http.Request, card *cacid.Identity, acct *store.Account, csrf CSRF) error {
	return p.orBusy(w, r, card, p.serveAccount(w, r, card, acct, csrf))
}

func (p *Pages) serveAccount(w http.ResponseWriter, r *http.Request, card *cacid.Identity, acct *store.Account, csrf CSRF) error {
	if err := checkCard(card); err != nil {
		return err
	}
	if acct == nil {
		return errAccountless
	}
	r = withRequest(r)
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return MethodNotAllowed(w, r, "GET, HEAD, POST")
	}
	path := trimPath(r)
	switch path {
	case PathAccount, PathAccountClearCard, PathAccountPassword, PathAccountAnswers, PathAccountNotices:
	default:
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Detail: "There is no account page at this address.", Contact: p.cfg.Contact})
	}
	if r.Method != http.MethodPost {
		switch path {
		case PathAccount:
			return p.accountPage(w, http.StatusOK, card, csrf, acct, selfservice.FieldErrors{}, "", false)
		case PathAccountPassword:
			return p.accountPasswordForm(w, r, http.StatusOK, card, csrf, acct, selfservice.FieldErrors{})
		case PathAccountAnswers:
			f, err := p.svc.AnswersForm(r.Context(), acct)
			if err != nil {
				return err
			}
			return p.accountAnswersForm(w, http.StatusOK, card, csrf, f.HasCurrent, f.Chosen, selfservice.FieldErrors{})
		default: // the clear and notices actions only exist as POSTs
			return redirect(w, r, PathAccount)
		}
	}
	if path == PathAccount {
		return MethodNotAllowed(w, r, "GET, HEAD")
	}
	if ok, err := p.readForm(w, r, csrf, "Go back to your account page, reload it and try again."); !ok {
		return err
	}
	switch path {
	case PathAccountClearCard:
		return p.postClearCard(w, r, card, csrf, acct)
	case PathAccountPassword:
		return p.postAccountPassword(w, r, card, csrf, acct)
	case PathAccountNotices:
		if err := p.svc.SetNotices(r.Context(), acct, r.PostForm["notice"]); err != nil {
			return err
		}
		updated := *acct
		updated.MailOptOut = nil
		for _, c := range p.svc.NoticeChoices(acct) {
			if !slices.Contains(r.PostForm["notice"], c.Kind) {
				updated.MailOptOut = append(updated.MailOptOut, c.Kind)
			}
		}
		return p.accountPage(w, http.StatusOK, card, csrf, &updated, selfservice.FieldErrors{}, "Your e-mail notice choices were saved.", false)
	default:
		return p.postAccountAnswers(w, r, card, csrf, acct)
	}
}

func (p *Pages) accountPage(w http.ResponseWriter, status int, card *cacid.Identity, csrf CSRF, acct *store.Account, errs selfservice.FieldErrors, message string, currentCleared bool) error {
	page := accountPage{
		pageBase: p.base(card, csrf), Account: acct, Message: message, CurrentCleared: currentCleared,
		Name:      selfservice.JoinName(acct.GivenName, acct.MiddleName, acct.FamilyName, acct.Suffix),
		LastLogin: selfservice.FormatTime(acct.LastLoginAt),
		Password:  p.svc.PasswordSummary(acct, p.svc.Now()),
		PrevFrom:  acct.PrevLogonFrom, PrevFailed: acct.PrevFailed,
		Notices: p.svc.NoticeChoices(acct),
	}
	if !acct.PrevLogonAt.IsZero() {
		page.PrevLogon = selfservice.FormatTime(acct.PrevLogonAt)
	}
	page.Errors = errs
	current := card.FingerprintHex
	for i, c := range acct.Cards {
		ac := accountCard{N: i + 1, Fingerprint: c.Fingerprint, Subject: c.Subject, Issuer: c.Issuer,
			Expires: c.NotAfter.UTC().Format("2006-01-02"), LastUsed: selfservice.FormatTime(c.LastUsedAt), Current: c.Fingerprint == current}
		ac.Clearable = !ac.Current || len(acct.Cards) > 1
		if ac.Current && !ac.Clearable {
			page.CurrentAlone = true
		}
		page.Cards = append(page.Cards, ac)
	}
	return p.render(w, status, "account", page)
}

func (p *Pages) postClearCard(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF, acct *store.Account) error {
	res, err := p.svc.ClearCard(r.Context(), card, acct, r.PostForm.Get("sha256"))
	switch {
	case err != nil:
		return err
	case res.Status == selfservice.Unavailable:
		return p.unavailable(w, r, "The card's registration was not cleared.", func(status int, errs selfservice.FieldErrors) error {
			return p.accountPage(w, status, card, csrf, acct, errs, "", false)
		})
	case res.Status == selfservice.Refused && res.Reason == "not_on_account":
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "card_not_found", Title: "Card not found",
			Detail: "That card is not registered to your account. Nothing was changed.",
			Steps:  []string{"Go back to your account page and reload it."}, Contact: p.cfg.Contact})
	case res.Status == selfservice.Refused: // only_card
		return p.accountPage(w, http.StatusConflict, card, csrf, acct, res.Errors, "", false)
	}
	msg := "The registration of the card " + res.Cleared.Subject + " was cleared. It can no longer be used to sign in to your account."
	return p.accountPage(w, http.StatusOK, card, csrf, res.Account, selfservice.FieldErrors{}, msg, res.Current)
}

func (p *Pages) accountPasswordForm(w http.ResponseWriter, r *http.Request, status int, card *cacid.Identity, csrf CSRF, acct *store.Account, errs selfservice.FieldErrors) error {
	f, err := p.svc.PasswordForm(r.Context(), acct)
	if err != nil {
		if status == http.StatusOK {
			return err
		}
		// Shown again after a post: the database may have failed since;
		// the account as the gateway last read it says enough.
		f = p.svc.PasswordFormAsKnown(acct)
	}
	page := accountPasswordPage{pageBase: p.base(card, csrf), Username: acct.Username, HasCurrent: f.HasCurrent, Rules: f.Rules}
	page.Errors = errs
	return p.render(w, status, "account-password", page)
}

func (p *Pages) postAccountPassword(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF, acct *store.Account) error {
	form := r.PostForm
	res, err := p.svc.ChangePassword(r.Context(), card, acct, selfservice.ChangePasswordInput{
		Current: form.Get("current"), Password: form.Get("password"), Confirm: form.Get("confirm"), Address: clientAddress(r)})
	switch {
	case err != nil:
		return err
	case res.Status == selfservice.Limited || res.Status == selfservice.Unavailable:
		return p.accountRefused(w, r, res.Outcome, "Your password was not changed.", func(status int, errs selfservice.FieldErrors) error {
			return p.accountPasswordForm(w, r, status, card, csrf, acct, errs)
		})
	case res.Status == selfservice.Locked:
		return p.renderLocked(w, card, csrf, res.Login)
	case res.Status != selfservice.Done:
		return p.accountPasswordForm(w, r, http.StatusUnprocessableEntity, card, csrf, acct, res.Errors)
	}
	return p.accountPage(w, http.StatusOK, card, csrf, res.Account, selfservice.FieldErrors{}, "Your password was changed.", false)
}

func (p *Pages) accountAnswersForm(w http.ResponseWriter, status int, card *cacid.Identity, csrf CSRF, hasCurrent bool, chosen [credential.QuestionsRequired]string, errs selfservice.FieldErrors) error {
	page := accountAnswersPage{pageBase: p.base(card, csrf), HasCurrent: hasCurrent, Questions: credential.Questions(), Slots: slots(chosen)}
	page.Errors = errs
	return p.render(w, status, "account-answers", page)
}

func (p *Pages) postAccountAnswers(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF, acct *store.Account) error {
	picks := readPicks(r)
	res, err := p.svc.ChangeAnswers(r.Context(), card, acct, selfservice.ChangeAnswersInput{Current: r.PostForm.Get("current"), Picks: picks,
		Address: clientAddress(r)})
	// Shown again: with the questions picked (never the answers), asking
	// the current password if the account has one now, or, the database
	// failing, as the gateway last read it.
	var chosen [credential.QuestionsRequired]string
	for i, pick := range picks {
		chosen[i] = pick.QuestionID
	}
	again := func(status int, errs selfservice.FieldErrors) error {
		hasCurrent := acct.HasPassword
		if f, err := p.svc.AnswersForm(r.Context(), acct); err == nil {
			hasCurrent = f.HasCurrent
		}
		return p.accountAnswersForm(w, status, card, csrf, hasCurrent, chosen, errs)
	}
	switch {
	case err != nil:
		return err
	case res.Status == selfservice.Limited || res.Status == selfservice.Unavailable:
		return p.accountRefused(w, r, res.Outcome, "Your security questions were not changed.", again)
	case res.Status == selfservice.Locked:
		return p.renderLocked(w, card, csrf, res.Login)
	case res.Status != selfservice.Done:
		return again(http.StatusUnprocessableEntity, res.Errors)
	}
	return p.accountPage(w, http.StatusOK, card, csrf, res.Account, selfservice.FieldErrors{}, "Your security questions and answers were changed.", false)
}

// accountRefused answers an account page change the guard refused:
// Limited (429) or Unavailable (503, with form again).
func (p *Pages) accountRefused(w http.ResponseWriter, r *http.Request, o selfservice.Outcome, nothing string, form formPage) error {
	if o.Status == selfservice.Unavailable {
		return p.unavailable(w, r, nothing, form)
	}
	return p.tooMany(w, r, "Too many changes were sent from this card or your network. "+nothing, "Wait 15 minutes before trying again.")
}
