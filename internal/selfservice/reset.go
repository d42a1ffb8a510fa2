package selfservice

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// PathReset is the self-service password reset: "Forgot your password?".
// Step 1 asks for the username and answers with the account's three
// security questions; step 2 takes the three answers and the new password.
const PathReset = Path + "/reset"

// resetPurpose marks a sealed reset state, so that no other sealed state
// (an enrollment's) is taken for one.
const resetPurpose = "reset"

// decoyQuestions are shown for a username that cannot be reset (unknown,
// without a password or answers, disabled, or another person's), so the
// page looks like a real account's and does not tell whether the username
// exists.
var decoyQuestions = [credential.QuestionsRequired]string{"favorite-teacher", "childhood-friend", "first-employer"}

// Reasons a reset state is a decoy: step 2 never succeeds for them.
const (
	decoyUnknown       = "unknown_username"
	decoyNoPassword    = "no_password"
	decoyNoAnswers     = "no_answers"
	decoyDisabled      = "disabled"
	decoyEDIPIMismatch = "edipi_mismatch"
)

// resetState is sealed between the two steps, bound to the card. It never
// holds an answer or a password (nor their hashes).
type resetState struct {
	Purpose   string                               `json:"k"`
	Card      string                               `json:"card"`
	Username  string                               `json:"u"`
	AccountID int64                                `json:"a,omitempty"`
	Decoy     string                               `json:"d,omitempty"` // why step 2 cannot succeed; "" for a real reset
	Questions [credential.QuestionsRequired]string `json:"q"`
	// Expires is when the state expires, in unix seconds: step 1's time
	// plus the state TTL, kept when the answers form is shown again.
	Expires int64 `json:"x,omitempty"`
}

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

func (f *Flow) serveReset(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF) error {
	if f.deps.Accounts == nil {
		return errors.New("enroll: no account manager for the password reset")
	}
	if r.Method != http.MethodPost {
		return f.render(w, http.StatusOK, "reset", resetPage{pageBase: f.base(card, csrf), Restarted: r.URL.Query().Get("restart") != ""})
	}
	if ok, err := f.readForm(w, r, csrf, "Go back to the password reset page, reload it and try again."); !ok {
		return err
	}
	if r.PostForm.Get("step") == "answers" {
		return f.postResetAnswers(w, r, card, csrf)
	}
	return f.postResetUsername(w, r, card, csrf)
}

// restartReset sends the person back to step 1 because the sealed state is
// missing, expired, altered or made for another card.
func (f *Flow) restartReset(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, PathReset+"?restart=1", http.StatusSeeOther)
	return nil
}

func (f *Flow) auditReset(r *http.Request, card Card, outcome, username string, extra map[string]string) {
	fields := map[string]string{"via": "holder"}
	if username != "" {
		fields["username"] = username
	}
	for k, v := range extra {
		fields[k] = v
	}
	f.audit(r, card, "password.reset", outcome, fields)
}

// ---- step 1: the username ----

func (f *Flow) postResetUsername(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF) error {
	ctx := r.Context()
	// Usernames are stored lowercase; look up what was typed as sign-in
	// does.
	page := resetPage{pageBase: f.base(card, csrf), Username: strings.ToLower(strings.TrimSpace(r.PostForm.Get("username")))}
	switch {
	case page.Username == "":
		page.Errors.add("username", "Enter your username.")
	case len(page.Username) > maxUsernameLen || !isCleanText(page.Username):
		page.Errors.add("username", "Enter a username of at most 64 characters.")
	}
	if page.Errors.any() {
		return f.render(w, http.StatusUnprocessableEntity, "reset", page)
	}
	st := resetState{Purpose: resetPurpose, Card: card.Identity.FingerprintHex, Username: page.Username}
	acct, err := f.deps.Accounts.AccountByUsername(ctx, page.Username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		st.Decoy = decoyUnknown
	case err != nil:
		return fmt.Errorf("enroll: looking up account: %w", err)
	default:
		st.AccountID, st.Username = acct.ID, acct.Username
		creds, err := f.credentials(ctx, acct)
		if err != nil {
			return err
		}
		st.Questions, st.Decoy = resetQuestions(acct, creds, card)
	}
	if st.Decoy != "" {
		st.Questions = decoyQuestions
		if st.Decoy == decoyEDIPIMismatch {
			// Answered like any account, but worth recording.
			f.auditReset(r, card, "failure", acct.Username, map[string]string{"reason": decoyEDIPIMismatch, "step": "username"})
		}
	}
	return f.resetAnswersForm(w, http.StatusOK, card, csrf, &st, formErrors{})
}

// resetQuestions returns the account's question IDs, or why it cannot be
// reset with this card.
func resetQuestions(acct *store.Account, creds *store.Credentials, card Card) ([credential.QuestionsRequired]string, string) {
	var ids [credential.QuestionsRequired]string
	switch {
	case acct.Status == store.StatusDisabled:
		return ids, decoyDisabled
	case acct.EDIPI != card.Identity.EDIPI:
		return ids, decoyEDIPIMismatch
	case creds.PasswordHash == "":
		return ids, decoyNoPassword
	}
	for i, a := range creds.Answers {
		if _, ok := credential.QuestionByID(a.QuestionID); !ok || a.Hash == "" {
			return ids, decoyNoAnswers
		}
		ids[i] = a.QuestionID
	}
	return ids, ""
}

func (f *Flow) resetAnswersForm(w http.ResponseWriter, status int, card Card, csrf CSRF, st *resetState, errs formErrors) error {
	if st.Expires == 0 {
		st.Expires = f.deps.Now().Add(f.cfg.StateTTL).Unix()
	}
	sealed, err := f.deps.Sealer.SealUntil(card.Identity.FingerprintHex, st, time.Unix(st.Expires, 0))
	if err != nil {
		return fmt.Errorf("enroll: sealing reset state: %w", err)
	}
	page := resetAnswersPage{pageBase: f.base(card, csrf), Username: st.Username, Rules: f.cfg.Password.Rules()}
	for i, id := range st.Questions {
		q, _ := credential.QuestionByID(id)
		page.Questions = append(page.Questions, resetQuestion{N: i + 1, Text: q.Text})
	}
	page.State, page.Errors = sealed, errs
	return f.render(w, status, "reset-answers", page)
}

// openReset returns the reset state posted with r if it is valid for card.
func (f *Flow) openReset(r *http.Request, card Card) (*resetState, bool) {
	var st resetState
	if err := f.deps.Sealer.Open(r.PostForm.Get("state"), card.Identity.FingerprintHex, &st, f.deps.Now()); err != nil {
		return nil, false
	}
	if st.Purpose != resetPurpose || st.Card != card.Identity.FingerprintHex || st.Username == "" {
		return nil, false
	}
	for _, id := range st.Questions {
		if _, ok := credential.QuestionByID(id); !ok {
			return nil, false
		}
	}
	if st.Decoy == "" && st.AccountID == 0 {
		return nil, false
	}
	return &st, true
}

// ---- step 2: the answers and the new password ----

func (f *Flow) postResetAnswers(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF) error {
	st, ok := f.openReset(r, card)
	if !ok {
		return f.restartReset(w, r)
	}
	ctx := r.Context()
	limit := resetLimit(card)
	if err := f.guard.Check(ctx, limit); err != nil {
		return f.resetLimited(w, r, card, err)
	}
	form := r.PostForm
	var answers [credential.QuestionsRequired]string
	var errs formErrors
	for i := range answers {
		n := strconv.Itoa(i + 1)
		answers[i] = form.Get("answer-" + n)
		switch {
		case strings.TrimSpace(answers[i]) == "":
			errs.add("answer-"+n, "Enter your answer to question "+n+".")
		case len(answers[i]) > maxPasswordLen:
			errs.add("answer-"+n, "Enter an answer of at most 256 characters.")
		}
	}
	password, confirm := form.Get("password"), form.Get("confirm")
	switch {
	case password == "":
		errs.add("password", "Enter a new password.")
	case len(password) > maxPasswordLen:
		errs.add("password", "Enter a password of at most 256 characters.")
	case confirm != password:
		errs.add("confirm", "The two passwords do not match.")
	}
	if errs.any() {
		return f.resetAnswersForm(w, http.StatusUnprocessableEntity, card, csrf, st, errs)
	}

	// The account as it is now; a real reset whose account changed
	// meanwhile is refused clearly.
	var acct *store.Account
	var creds *store.Credentials
	if st.Decoy == "" {
		var err error
		acct, err = f.deps.Accounts.AccountByUsername(ctx, st.Username)
		switch {
		case errors.Is(err, store.ErrNotFound) || (err == nil && acct.ID != st.AccountID):
			return f.restartReset(w, r)
		case err != nil:
			return fmt.Errorf("enroll: looking up account: %w", err)
		}
		if creds, err = f.credentials(ctx, acct); err != nil {
			return err
		}
		ids, decoy := resetQuestions(acct, creds, card)
		switch {
		case decoy == decoyDisabled:
			return f.refuseReset(w, r, card, acct, "account_disabled", decoyDisabled, "Account disabled",
				"The account "+acct.Username+" is disabled, so its password cannot be reset. The password was not changed.")
		case decoy == decoyEDIPIMismatch:
			return f.refuseReset(w, r, card, acct, "edipi_mismatch", decoyEDIPIMismatch, "This card belongs to someone else",
				"This card belongs to a different DoD ID than the account "+acct.Username+". A card holder can only reset the password of their own account. The password was not changed.")
		case decoy != "" || ids != st.Questions:
			// Answers removed or changed since step 1: ask again.
			return f.restartReset(w, r)
		}
	}

	// Only wrong answers count against the card. If the count cannot be
	// given back, right answers are not acted on: no password is changed
	// on a count that cannot be trusted.
	var res LoginResult
	_, err := f.guard.Try(ctx, limit, func(ctx context.Context) (bool, error) {
		var err error
		res, err = f.checkAnswers(ctx, st, acct, creds, answers)
		return res.OK, err
	})
	answers = [credential.QuestionsRequired]string{}
	switch {
	case errors.Is(err, ErrLimited), errors.Is(err, ErrUnavailable):
		return f.resetLimited(w, r, card, err)
	case err != nil:
		return err
	}
	username := ""
	if acct != nil {
		username = acct.Username
	} else if st.Decoy != decoyUnknown {
		username = st.Username // an existing account's name, not something typed in error
	}
	if res.State.Locked() {
		f.auditReset(r, card, "failure", username, map[string]string{"reason": "locked"})
		return f.renderLocked(w, card, csrf, res.State)
	}
	if !res.OK {
		reason := "bad_answers"
		if st.Decoy != "" {
			reason = st.Decoy
		}
		f.auditReset(r, card, "failure", username, map[string]string{"reason": reason})
		errs.add("", wrongPassword("One or more answers are not correct.", res.State, true))
		return f.resetAnswersForm(w, http.StatusUnprocessableEntity, card, csrf, st, errs)
	}

	// All three answers are right: the new password.
	id := card.Identity
	if broken := f.cfg.Password.Check(password, acct.Username, UsernameBase(acct.GivenName, acct.MiddleName, acct.FamilyName),
		acct.GivenName, acct.MiddleName, acct.FamilyName, acct.Suffix, id.GivenName, id.MiddleName, id.FamilyName); len(broken) > 0 {
		f.auditReset(r, card, "failure", acct.Username, map[string]string{"reason": "policy"})
		errs.add("password", "Choose a password that follows the rules: "+strings.Join(broken, " "))
		return f.resetAnswersForm(w, http.StatusUnprocessableEntity, card, csrf, st, errs)
	}
	reused, err := f.reusedPassword(ctx, creds, password)
	if err != nil {
		return err
	}
	if reused {
		f.auditReset(r, card, "failure", acct.Username, map[string]string{"reason": "reused"})
		errs.add("password", "Choose a password you have not used recently: it must differ from your current password and your last "+strconv.Itoa(passwordHistory)+".")
		return f.resetAnswersForm(w, http.StatusUnprocessableEntity, card, csrf, st, errs)
	}
	hash, err := f.deps.Hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("enroll: hashing password: %w", err)
	}
	if err := f.deps.Accounts.SetPassword(ctx, acct.ID, hash, passwordHistory); err != nil {
		return fmt.Errorf("enroll: setting password: %w", err)
	}
	// The password is changed: record it before anything else can fail.
	f.auditReset(r, card, "success", acct.Username, nil)
	// The right answers already cleared the count (checkAnswers); this
	// clears any failure counted since. Best effort: the change is made
	// and must be reported as made.
	_ = f.deps.Accounts.ResetLoginFailures(ctx, acct.ID)
	return f.render(w, http.StatusOK, "reset-done", resetDonePage{pageBase: f.base(card, csrf), Username: acct.Username})
}

// checkAnswers verifies all three answers (every one of them, so the time
// taken does not tell which was wrong) against the account's hashes, or
// against the dummy hash for a decoy state, which never succeeds. As for a
// sign-in password (checkPassword), the attempt is counted against the
// account as a failure before any answer is verified, atomically, so a
// locked account is refused without verifying and concurrent attempts
// cannot get past the limit; right answers take the attempt back. A
// decoy's attempts are counted the same way in the throttle, per card and
// username, under the account's limits, so its page counts down and locks
// like a real account's, on every node.
func (f *Flow) checkAnswers(ctx context.Context, st *resetState, acct *store.Account, creds *store.Credentials, answers [credential.QuestionsRequired]string) (LoginResult, error) {
	// verify checks every answer, so the time taken does not tell which
	// was wrong.
	verify := func(ctx context.Context, hashes [credential.QuestionsRequired]string) (bool, error) {
		right := 0
		for i, a := range answers {
			ok, err := f.deps.Hasher.VerifyAnswer(ctx, a, hashes[i])
			if err != nil {
				return false, fmt.Errorf("enroll: verifying answer: %w", err)
			}
			if ok {
				right++
			}
		}
		return right == len(answers), nil
	}
	if acct == nil {
		return f.guard.Decoy(ctx, f.decoyKey(st.Card, st.Username), func(ctx context.Context) error {
			dummy, err := f.dummy.get(ctx, f.deps.Hasher)
			if err != nil {
				return fmt.Errorf("enroll: dummy hash: %w", err)
			}
			_, err = verify(ctx, [credential.QuestionsRequired]string{dummy, dummy, dummy})
			return err
		})
	}
	var hashes [credential.QuestionsRequired]string
	for i, a := range creds.Answers {
		hashes[i] = a.Hash
	}
	return f.guard.Account(ctx, acct, func(ctx context.Context) (bool, error) { return verify(ctx, hashes) })
}

// reusedPassword reports whether password is the current one or one of the
// last passwordHistory.
func (f *Flow) reusedPassword(ctx context.Context, creds *store.Credentials, password string) (bool, error) {
	recent := []string{creds.PasswordHash}
	recent = append(recent, creds.History[:min(passwordHistory, len(creds.History))]...)
	for _, old := range recent {
		if old == "" {
			continue
		}
		same, err := f.deps.Hasher.Verify(ctx, password, old)
		if err != nil {
			return false, fmt.Errorf("enroll: verifying password history: %w", err)
		}
		if same {
			return true, nil
		}
	}
	return false, nil
}

func (f *Flow) refuseReset(w http.ResponseWriter, r *http.Request, card Card, acct *store.Account, code, reason, title, detail string) error {
	f.auditReset(r, card, "failure", acct.Username, map[string]string{"reason": reason})
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusForbidden, Code: code, Title: title, Detail: detail,
		Steps: []string{"If you think this is a mistake, contact the site's administrators."}, Contact: f.cfg.Contact})
}

// resetLimited answers a reset the guard refused (ErrLimited or
// ErrUnavailable).
func (f *Flow) resetLimited(w http.ResponseWriter, r *http.Request, card Card, err error) error {
	if !errors.Is(err, ErrLimited) {
		f.auditReset(r, card, "unavailable", "", map[string]string{"reason": throttleUnavailableReason})
		return f.throttleUnavailable(w, r, "The password was not changed.")
	}
	return f.resetTooManyAttempts(w, r, card)
}

func (f *Flow) resetTooManyAttempts(w http.ResponseWriter, r *http.Request, card Card) error {
	f.auditReset(r, card, "limited", "", nil)
	w.Header().Set("Retry-After", strconv.Itoa(int(failureWindow/time.Second)))
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusTooManyRequests, Code: "too_many_attempts",
		Title: "Too many attempts", Detail: "Wrong security answers were entered with this card too many times.",
		Steps: []string{"Wait 15 minutes before trying again.", "Or contact the help desk."}, Contact: f.cfg.Contact})
}
