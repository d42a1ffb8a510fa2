package selfservice

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// Paths of the signed-in person's account pages. The gateway sends every
// request under PathAccount to Flow.ServeAccount.
const (
	PathAccount          = "/.cacgate/account"
	PathAccountClearCard = PathAccount + "/cards/clear"
	PathAccountPassword  = PathAccount + "/password"
	PathAccountAnswers   = PathAccount + "/answers"
)

// passwordHistory is how many earlier passwords a new one may not repeat
// (besides the current one), and how many the store keeps.
const passwordHistory = 5

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
// internal failure, having written nothing.
func (f *Flow) ServeAccount(w http.ResponseWriter, r *http.Request, card Card, acct *store.Account, csrf CSRF) error {
	switch {
	case card.Identity == nil || card.Identity.FingerprintHex == "":
		return errors.New("enroll: card without identity")
	case acct == nil:
		return errors.New("enroll: account page without an account")
	case f.deps.Accounts == nil:
		return errors.New("enroll: no account manager for the account pages")
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return f.methodNotAllowed(w, r, "GET, HEAD, POST")
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch path {
	case PathAccount, PathAccountClearCard, PathAccountPassword, PathAccountAnswers:
	default:
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Detail: "There is no account page at this address.", Contact: f.cfg.Contact})
	}
	if r.Method != http.MethodPost {
		switch path {
		case PathAccount:
			return f.accountPage(w, http.StatusOK, card, csrf, acct, formErrors{}, "", false)
		case PathAccountPassword:
			return f.accountPasswordForm(w, r, http.StatusOK, card, csrf, acct, formErrors{})
		case PathAccountAnswers:
			return f.accountAnswersForm(w, r, http.StatusOK, card, csrf, acct, [credential.QuestionsRequired]string{}, formErrors{})
		default: // the clear action only exists as a POST
			http.Redirect(w, r, PathAccount, http.StatusSeeOther)
			return nil
		}
	}
	if path == PathAccount {
		return f.methodNotAllowed(w, r, "GET, HEAD")
	}
	if ok, err := f.readForm(w, r, csrf, "Go back to your account page, reload it and try again."); !ok {
		return err
	}
	switch path {
	case PathAccountClearCard:
		return f.postClearCard(w, r, card, csrf, acct)
	case PathAccountPassword:
		return f.postAccountPassword(w, r, card, csrf, acct)
	default:
		return f.postAccountAnswers(w, r, card, csrf, acct)
	}
}

func (f *Flow) accountPage(w http.ResponseWriter, status int, card Card, csrf CSRF, acct *store.Account, errs formErrors, message string, currentCleared bool) error {
	page := accountPage{
		pageBase: f.base(card, csrf), Account: acct, Message: message, CurrentCleared: currentCleared,
		Name:      joinName(acct.GivenName, acct.MiddleName, acct.FamilyName, acct.Suffix),
		LastLogin: formatTime(acct.LastLoginAt),
		Password:  f.passwordSummary(acct, f.deps.Now()),
	}
	page.Errors = errs
	current := card.Identity.FingerprintHex
	for i, c := range acct.Cards {
		ac := accountCard{N: i + 1, Fingerprint: c.Fingerprint, Subject: c.Subject, Issuer: c.Issuer,
			Expires: c.NotAfter.UTC().Format("2006-01-02"), LastUsed: formatTime(c.LastUsedAt), Current: c.Fingerprint == current}
		ac.Clearable = !ac.Current || len(acct.Cards) > 1
		if ac.Current && !ac.Clearable {
			page.CurrentAlone = true
		}
		page.Cards = append(page.Cards, ac)
	}
	return f.render(w, status, "account", page)
}

// reload reads the account again after a change.
func (f *Flow) reload(ctx context.Context, acct *store.Account) (*store.Account, error) {
	fresh, err := f.deps.Accounts.AccountByUsername(ctx, acct.Username)
	if err != nil {
		return nil, fmt.Errorf("enroll: reading account: %w", err)
	}
	return fresh, nil
}

func (f *Flow) auditAccount(r *http.Request, card Card, acct *store.Account, event, outcome string, extra map[string]string) {
	fields := map[string]string{"username": acct.Username}
	for k, v := range extra {
		fields[k] = v
	}
	f.audit(r, card, event, outcome, fields)
}

// ---- clearing a card's registration ----

func (f *Flow) postClearCard(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF, acct *store.Account) error {
	fp := strings.ToLower(strings.TrimSpace(r.PostForm.Get("sha256")))
	var target *store.Card
	for i := range acct.Cards {
		if acct.Cards[i].Fingerprint == fp {
			target = &acct.Cards[i]
		}
	}
	if target == nil {
		f.auditAccount(r, card, acct, "card.unlinked", "failure", map[string]string{"via": "holder", "reason": "not_on_account"})
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "card_not_found", Title: "Card not found",
			Detail: "That card is not registered to your account. Nothing was changed.",
			Steps:  []string{"Go back to your account page and reload it."}, Contact: f.cfg.Contact})
	}
	current := fp == card.Identity.FingerprintHex
	if current && len(acct.Cards) < 2 {
		f.auditAccount(r, card, acct, "card.unlinked", "failure", map[string]string{"via": "holder", "reason": "only_card", "cleared": fp})
		var errs formErrors
		errs.add("", "The card you are using is the only card registered to your account, so its registration cannot be cleared. Register another card first.")
		return f.accountPage(w, http.StatusConflict, card, csrf, acct, errs, "", false)
	}
	err := f.deps.Accounts.UnlinkCard(r.Context(), acct.Username, fp)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// cleared meanwhile (another tab, an administrator)
	case err != nil:
		return fmt.Errorf("enroll: unlinking card: %w", err)
	default:
		f.auditAccount(r, card, acct, "card.unlinked", "success", map[string]string{"via": "holder", "cleared": fp})
		f.deps.OnChange()
	}
	fresh, err := f.reload(r.Context(), acct)
	if err != nil {
		return err
	}
	msg := "The registration of the card " + target.Subject + " was cleared. It can no longer be used to sign in to your account."
	return f.accountPage(w, http.StatusOK, card, csrf, fresh, formErrors{}, msg, current)
}

// ---- changing the password ----

func (f *Flow) credentials(ctx context.Context, acct *store.Account) (*store.Credentials, error) {
	creds, err := f.deps.Accounts.Credentials(ctx, acct.ID)
	if err != nil {
		return nil, fmt.Errorf("enroll: reading credentials: %w", err)
	}
	return creds, nil
}

func (f *Flow) accountPasswordForm(w http.ResponseWriter, r *http.Request, status int, card Card, csrf CSRF, acct *store.Account, errs formErrors) error {
	creds, err := f.credentials(r.Context(), acct)
	if err != nil {
		return err
	}
	page := accountPasswordPage{pageBase: f.base(card, csrf), Username: acct.Username, HasCurrent: creds.PasswordHash != "", Rules: f.cfg.Password.Rules()}
	if page.HasCurrent {
		page.Rules = append(page.Rules, credential.ChangeRule)
	}
	page.Errors = errs
	return f.render(w, status, "account-password", page)
}

// verifyCurrent checks the current password typed on an account form,
// counting a failure like a sign-in. It reports whether the form may go
// on; when not, it has added an error to errs or answered with the locked
// page (done is true).
func (f *Flow) verifyCurrent(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF, acct *store.Account, hash, password, event string, errs *formErrors) (ok, done bool, err error) {
	// A password about to be replaced is not worth rehashing.
	res, err := f.checkPassword(r.Context(), acct, hash, password, event != "password.changed")
	if err != nil {
		return false, false, err
	}
	switch {
	case res.State.Locked():
		f.auditAccount(r, card, acct, event, "failure", map[string]string{"reason": "locked"})
		return false, true, f.renderLocked(w, card, csrf, res.State)
	case !res.OK:
		f.auditAccount(r, card, acct, event, "failure", map[string]string{"reason": "bad_password"})
		errs.add("current", wrongPassword("The current password is not correct.", res.State, true))
		return false, false, nil
	}
	return true, false, nil
}

func (f *Flow) postAccountPassword(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF, acct *store.Account) error {
	ctx := r.Context()
	creds, err := f.credentials(ctx, acct)
	if err != nil {
		return err
	}
	form := r.PostForm
	current, password := form.Get("current"), form.Get("password")
	var errs formErrors
	hasCurrent := creds.PasswordHash != ""
	if at := f.passwordChangeAllowedAt(acct, f.deps.Now()); hasCurrent && !at.IsZero() {
		f.auditAccount(r, card, acct, "password.changed", "failure", map[string]string{"reason": "too_soon"})
		errs.add("password", "Your password was changed less than "+formatAge(f.cfg.PasswordMinAge)+" ago. You can change it again after "+formatTime(at)+
			". If you think someone else knows it, contact the site's administrators.")
		return f.accountPasswordForm(w, r, http.StatusUnprocessableEntity, card, csrf, acct, errs)
	}
	if hasCurrent && current == "" {
		errs.add("current", "Enter your current password.")
	} else if len(current) > maxPasswordLen {
		errs.add("current", "Enter a password of at most 256 characters.")
	}
	id := card.Identity
	if broken := f.cfg.Password.Check(password, acct.Username, UsernameBase(acct.GivenName, acct.MiddleName, acct.FamilyName),
		acct.GivenName, acct.MiddleName, acct.FamilyName, acct.Suffix, id.GivenName, id.MiddleName, id.FamilyName); len(broken) > 0 {
		errs.add("password", "Choose a password that follows the rules: "+strings.Join(broken, " "))
	} else if form.Get("confirm") != password {
		errs.add("confirm", "The two passwords do not match.")
	}
	if errs.any() {
		return f.accountPasswordForm(w, r, http.StatusUnprocessableEntity, card, csrf, acct, errs)
	}
	if hasCurrent {
		ok, done, err := f.verifyCurrent(w, r, card, csrf, acct, creds.PasswordHash, current, "password.changed", &errs)
		if !ok {
			if done || err != nil {
				return err
			}
			return f.accountPasswordForm(w, r, http.StatusUnprocessableEntity, card, csrf, acct, errs)
		}
		// Only a holder who typed the current password can be held to
		// changing enough of it; a reset by the security answers cannot.
		if credential.CharactersChanged(current, password) < credential.MinCharactersChanged {
			f.auditAccount(r, card, acct, "password.changed", "failure", map[string]string{"reason": "too_similar"})
			errs.add("password", "Choose a password further from your current one. "+credential.ChangeRule)
			return f.accountPasswordForm(w, r, http.StatusUnprocessableEntity, card, csrf, acct, errs)
		}
	}
	recent := []string{creds.PasswordHash}
	recent = append(recent, creds.History[:min(passwordHistory, len(creds.History))]...)
	for _, old := range recent {
		if old == "" {
			continue
		}
		same, err := f.deps.Hasher.Verify(ctx, password, old)
		if err != nil {
			return fmt.Errorf("enroll: verifying password history: %w", err)
		}
		if same {
			f.auditAccount(r, card, acct, "password.changed", "failure", map[string]string{"reason": "reused"})
			errs.add("password", "Choose a password you have not used recently: it must differ from your current password and your last "+strconv.Itoa(passwordHistory)+".")
			return f.accountPasswordForm(w, r, http.StatusUnprocessableEntity, card, csrf, acct, errs)
		}
	}
	hash, err := f.deps.Hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("enroll: hashing password: %w", err)
	}
	if err := f.deps.Accounts.SetPassword(ctx, acct.ID, hash, passwordHistory); err != nil {
		return fmt.Errorf("enroll: setting password: %w", err)
	}
	f.auditAccount(r, card, acct, "password.changed", "success", map[string]string{"via": "holder"})
	fresh, err := f.reload(ctx, acct)
	if err != nil {
		return err
	}
	return f.accountPage(w, http.StatusOK, card, csrf, fresh, formErrors{}, "Your password was changed.", false)
}

// ---- changing the security answers ----

func (f *Flow) accountAnswersForm(w http.ResponseWriter, r *http.Request, status int, card Card, csrf CSRF, acct *store.Account, chosen [credential.QuestionsRequired]string, errs formErrors) error {
	creds, err := f.credentials(r.Context(), acct)
	if err != nil {
		return err
	}
	if status == http.StatusOK && chosen == [credential.QuestionsRequired]string{} {
		for i, a := range creds.Answers {
			chosen[i] = a.QuestionID
		}
	}
	page := accountAnswersPage{pageBase: f.base(card, csrf), HasCurrent: creds.PasswordHash != "", Questions: credential.Questions()}
	for i, id := range chosen {
		page.Slots = append(page.Slots, questionSlot{N: i + 1, Selected: id})
	}
	page.Errors = errs
	return f.render(w, status, "account-answers", page)
}

// readPicks reads the three question picks of a questions form and checks
// them, returning their problems keyed by field id.
func readPicks(form url.Values) ([credential.QuestionsRequired]string, []credential.AnswerPick, formErrors) {
	var chosen [credential.QuestionsRequired]string
	picks := make([]credential.AnswerPick, credential.QuestionsRequired)
	for i := range picks {
		n := strconv.Itoa(i + 1)
		chosen[i] = form.Get("question-" + n)
		picks[i] = credential.AnswerPick{QuestionID: chosen[i], Answer: form.Get("answer-" + n), Confirm: form.Get("confirm-" + n)}
	}
	var errs formErrors
	if problems := credential.CheckQuestions(picks); problems != nil {
		for slot := range credential.QuestionsRequired {
			for _, field := range []string{credential.FieldQuestion, credential.FieldAnswer, credential.FieldConfirm} {
				if msg, ok := problems[credential.FieldKey{Slot: slot, Field: field}]; ok {
					errs.add(field+"-"+strconv.Itoa(slot+1), msg)
				}
			}
		}
	}
	return chosen, picks, errs
}

func (f *Flow) postAccountAnswers(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF, acct *store.Account) error {
	ctx := r.Context()
	creds, err := f.credentials(ctx, acct)
	if err != nil {
		return err
	}
	hasCurrent := creds.PasswordHash != ""
	current := r.PostForm.Get("current")
	var errs formErrors
	if hasCurrent && current == "" {
		errs.add("current", "Enter your current password.")
	} else if len(current) > maxPasswordLen {
		errs.add("current", "Enter a password of at most 256 characters.")
	}
	chosen, picks, pickErrs := readPicks(r.PostForm)
	for _, e := range pickErrs.List {
		errs.add(e.Field, e.Message)
	}
	if errs.any() {
		return f.accountAnswersForm(w, r, http.StatusUnprocessableEntity, card, csrf, acct, chosen, errs)
	}
	if hasCurrent {
		ok, done, err := f.verifyCurrent(w, r, card, csrf, acct, creds.PasswordHash, current, "answers.changed", &errs)
		if !ok {
			if done || err != nil {
				return err
			}
			return f.accountAnswersForm(w, r, http.StatusUnprocessableEntity, card, csrf, acct, chosen, errs)
		}
	}
	var answers [credential.QuestionsRequired]store.Answer
	for i, pick := range picks {
		h, err := f.deps.Hasher.HashAnswer(ctx, pick.Answer)
		if err != nil {
			return fmt.Errorf("enroll: hashing answer: %w", err)
		}
		answers[i] = store.Answer{QuestionID: pick.QuestionID, Hash: h}
	}
	if err := f.deps.Accounts.SetAnswers(ctx, acct.ID, answers); err != nil {
		return fmt.Errorf("enroll: setting answers: %w", err)
	}
	f.auditAccount(r, card, acct, "answers.changed", "success", map[string]string{"via": "holder"})
	return f.accountPage(w, http.StatusOK, card, csrf, acct, formErrors{}, "Your security questions and answers were changed.", false)
}
