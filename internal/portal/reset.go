package portal

import (
	"net/http"
	"strconv"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/selfservice"
)

// The self-service password reset: "Forgot your password?". Step 1 asks
// for the username and answers with the account's three security
// questions; step 2 takes the three answers and the new password.

type resetPage struct {
	pageBase
	Username  string
	Restarted bool
}

type resetQuestion struct {
	N    int
	Text string
}

type resetAnswersPage struct {
	pageBase
	Username  string
	Questions []resetQuestion
	Rules     []string
}

type resetDonePage struct {
	pageBase
	Username string
}

func (p *Pages) serveReset(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF) error {
	if r.Method != http.MethodPost {
		return p.render(w, http.StatusOK, "reset", resetPage{pageBase: p.base(card, csrf), Restarted: r.URL.Query().Get("restart") != ""})
	}
	if ok, err := p.readForm(w, r, csrf, "Go back to the password reset page, reload it and try again."); !ok {
		return err
	}
	if r.PostForm.Get("step") == "answers" {
		return p.postResetAnswers(w, r, card, csrf)
	}
	res, err := p.svc.ResetQuestions(r.Context(), card, r.PostForm.Get("username"), clientAddress(r))
	again := func(status int, errs selfservice.FieldErrors) error {
		page := resetPage{pageBase: p.base(card, csrf), Username: res.Username}
		page.Errors = errs
		return p.render(w, status, "reset", page)
	}
	switch {
	case err != nil:
		return err
	case res.Status == selfservice.Limited:
		return AddressLimited(w, r, p.cfg.Contact)
	case res.Status == selfservice.Unavailable:
		return p.unavailable(w, r, "The password was not changed.", again)
	case res.Status == selfservice.Invalid:
		return again(http.StatusUnprocessableEntity, res.Errors)
	}
	return p.resetAnswersForm(w, http.StatusOK, card, csrf, res.Form, selfservice.FieldErrors{})
}

// restartReset sends the person back to step 1 because the sealed state is
// missing, expired, altered or made for another card.
func restartReset(w http.ResponseWriter, r *http.Request) error {
	return redirect(w, r, PathReset+"?restart=1")
}

func (p *Pages) resetAnswersForm(w http.ResponseWriter, status int, card *cacid.Identity, csrf CSRF, f selfservice.ResetForm, errs selfservice.FieldErrors) error {
	page := resetAnswersPage{pageBase: p.base(card, csrf), Username: f.Username, Rules: p.cfg.Password.Rules()}
	for i, id := range f.Questions {
		q, _ := credential.QuestionByID(id)
		page.Questions = append(page.Questions, resetQuestion{N: i + 1, Text: q.Text})
	}
	page.State, page.Errors = f.State, errs
	return p.render(w, status, "reset-answers", page)
}

func (p *Pages) postResetAnswers(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF) error {
	in := selfservice.ResetInput{State: r.PostForm.Get("state"), Password: r.PostForm.Get("password"), Confirm: r.PostForm.Get("confirm"),
		Address: clientAddress(r)}
	for i := range in.Answers {
		in.Answers[i] = r.PostForm.Get("answer-" + strconv.Itoa(i+1))
	}
	res, err := p.svc.ResetPassword(r.Context(), card, in)
	if err != nil {
		return err
	}
	switch res.Status {
	case selfservice.Restart:
		return restartReset(w, r)
	case selfservice.Limited:
		if res.Reason == selfservice.ReasonAddressLimited {
			return AddressLimited(w, r, p.cfg.Contact)
		}
		return p.tooMany(w, r, "Wrong security answers were entered with this card too many times.",
			"Wait 15 minutes before trying again.", "Or contact the help desk.")
	case selfservice.Unavailable:
		var again formPage
		if res.Form.State != "" {
			again = func(status int, errs selfservice.FieldErrors) error {
				return p.resetAnswersForm(w, status, card, csrf, res.Form, errs)
			}
		}
		return p.unavailable(w, r, "The password was not changed.", again)
	case selfservice.Invalid, selfservice.Wrong:
		return p.resetAnswersForm(w, http.StatusUnprocessableEntity, card, csrf, res.Form, res.Errors)
	case selfservice.Locked:
		return p.renderLocked(w, card, csrf, res.Login)
	case selfservice.Refused:
		if res.Reason == "disabled" {
			return p.refuse(w, r, http.StatusForbidden, "account_disabled", "Account disabled",
				"The account "+res.Account.Username+" is disabled, so its password cannot be reset. The password was not changed.")
		}
		return p.refuse(w, r, http.StatusForbidden, "edipi_mismatch", "This card belongs to someone else",
			"This card belongs to a different DoD ID than the account "+res.Account.Username+". A card holder can only reset the password of their own account. The password was not changed.")
	}
	return p.render(w, http.StatusOK, "reset-done", resetDonePage{pageBase: p.base(card, csrf), Username: res.Account.Username})
}
