package selfservice

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/store"
)

// The self-service password reset ("Forgot your password?"), for a card
// holder: step 1 takes the username and answers with the account's three
// security questions; step 2 takes the three answers and the new password.

// resetPurpose marks a sealed reset state, so that no other sealed state
// (an enrollment's) is taken for one.
const resetPurpose = "reset"

// decoyQuestions returns the questions shown for a username that cannot
// be reset (unknown, without a password or answers, disabled, or another
// person's), so the page looks like a real account's and does not tell
// whether the username exists: three different questions of the
// catalogue, picked by a keyed digest of the username, so that a username
// is asked the same questions on every visit and node, as an account is,
// and different usernames different ones (one fixed set would mark every
// decoy).
func (s *Service) decoyQuestions(username string) [credential.QuestionsRequired]string {
	catalogue := credential.Questions()
	m := hmac.New(sha256.New, s.deps.Sealer.tagKey)
	m.Write([]byte("reset decoy questions\x00" + normUsername(username)))
	sum := m.Sum(nil)
	var ids [credential.QuestionsRequired]string
	for i := range ids {
		// A partial Fisher-Yates shuffle; the modulo bias (at most 12 of
		// 256) is no tell, as people's own picks are far from uniform.
		j := i + int(sum[i])%(len(catalogue)-i)
		catalogue[i], catalogue[j] = catalogue[j], catalogue[i]
		ids[i] = catalogue[i].ID
	}
	return ids
}

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
	// Pad makes every sealed state as long as any other with the same
	// username and questions, so that its length does not tell a decoy
	// (AccountID, Decoy) from a real reset (resetForm).
	Pad string `json:"z"`
}

// resetStateHidden bounds what AccountID and Decoy add to a reset state's
// JSON: `"a":` and 19 digits, `"d":"` and the longest reason.
const resetStateHidden = 64

// ResetForm is step 2's form: the sealed state to send back, the
// username and the questions (IDs) to answer.
type ResetForm struct {
	State     string
	Username  string
	Questions [credential.QuestionsRequired]string
}

func (s *Service) auditReset(ctx context.Context, card *cacid.Identity, outcome, username string, extra map[string]string) {
	fields := map[string]string{"via": "holder"}
	if username != "" {
		fields["username"] = username
	}
	for k, v := range extra {
		fields[k] = v
	}
	s.audit(ctx, card, "password.reset", outcome, fields)
}

// ResetQuestionsResult is the outcome of ResetQuestions.
type ResetQuestionsResult struct {
	Outcome
	Username string
	Form     ResetForm // Done: step 2
}

// ResetQuestions is step 1: the questions of username's account, or decoy
// questions for a username that cannot be reset with this card (so the
// page does not tell whether it exists). It counts against the client
// address's attempts_per_ip first, as every reset post. Outcomes: Done,
// Invalid, Limited (Reason ReasonAddressLimited), Unavailable (the
// address's attempt given back). Username is the one typed, for the form,
// whatever the outcome.
func (s *Service) ResetQuestions(ctx context.Context, card *cacid.Identity, username, address string) (ResetQuestionsResult, error) {
	fields := map[string]string{"via": "holder", "step": "username"}
	if o, ok := s.countAddress(ctx, card, address, eventReset, fields); !ok {
		return ResetQuestionsResult{Outcome: o, Username: normUsername(username)}, nil
	}
	res, err := s.resetQuestions(ctx, card, username)
	if errors.Is(err, ErrUnavailable) {
		res, err = ResetQuestionsResult{Outcome: s.unavailableOutcome(ctx, card, err, eventReset, fields)}, nil
	}
	if res.Status == Unavailable {
		res.Username = normUsername(username)
		s.giveBackAddress(ctx, address)
	}
	return res, err
}

// eventReset is the audit event of the password reset.
const eventReset = "password.reset"

func (s *Service) resetQuestions(ctx context.Context, card *cacid.Identity, username string) (ResetQuestionsResult, error) {
	res := ResetQuestionsResult{Username: normUsername(username)}
	checkUsername(&res.Errors, res.Username)
	if res.Errors.Any() {
		res.Status = Invalid
		return res, nil
	}
	st := resetState{Purpose: resetPurpose, Card: card.FingerprintHex, Username: res.Username}
	acct, err := s.deps.Accounts.AccountByUsername(ctx, res.Username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		st.Decoy = decoyUnknown
	case err != nil:
		return ResetQuestionsResult{}, accountsFailed("looking up account", err)
	default:
		st.AccountID, st.Username = acct.ID, acct.Username
		creds, err := s.credentials(ctx, acct)
		if err != nil {
			return ResetQuestionsResult{}, err
		}
		st.Questions, st.Decoy = resetQuestions(acct, creds, card)
	}
	if st.Decoy != "" {
		st.Questions = s.decoyQuestions(st.Username)
		if st.Decoy == decoyEDIPIMismatch {
			// Answered like any account, but worth recording.
			s.auditReset(ctx, card, "failure", acct.Username, map[string]string{"reason": decoyEDIPIMismatch, "step": "username"})
		}
	}
	res.Form, err = s.resetForm(card, &st)
	return res, err
}

// resetQuestions returns the account's question IDs, or why it cannot be
// reset with this card.
func resetQuestions(acct *store.Account, creds *store.Credentials, card *cacid.Identity) ([credential.QuestionsRequired]string, string) {
	var ids [credential.QuestionsRequired]string
	switch {
	case acct.Status == store.StatusDisabled:
		return ids, decoyDisabled
	case acct.EDIPI != card.EDIPI:
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

func (s *Service) resetForm(card *cacid.Identity, st *resetState) (ResetForm, error) {
	if st.Expires == 0 {
		st.Expires = s.deps.Now().Add(s.cfg.StateTTL).Unix()
	}
	if err := padResetState(st); err != nil {
		return ResetForm{}, err
	}
	sealed, err := s.deps.Sealer.SealUntil(card.FingerprintHex, st, time.Unix(st.Expires, 0))
	if err != nil {
		return ResetForm{}, fmt.Errorf("selfservice: sealing reset state: %w", err)
	}
	return ResetForm{State: sealed, Username: st.Username, Questions: st.Questions}, nil
}

// padResetState sets st.Pad so that st's JSON is resetStateHidden bytes
// longer than that of the same state without AccountID and Decoy: the
// sealed state's length then depends only on what the page shows.
func padResetState(st *resetState) error {
	st.Pad = ""
	full, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("selfservice: reset state: %w", err)
	}
	shape := *st
	shape.AccountID, shape.Decoy = 0, ""
	visible, err := json.Marshal(shape)
	if err != nil {
		return fmt.Errorf("selfservice: reset state: %w", err)
	}
	hidden := len(full) - len(visible)
	if hidden > resetStateHidden {
		return fmt.Errorf("selfservice: reset state: %d bytes of account and decoy", hidden)
	}
	st.Pad = strings.Repeat("0", resetStateHidden-hidden)
	return nil
}

// openReset returns the sealed reset state if it is valid for card.
func (s *Service) openReset(sealed string, card *cacid.Identity) (*resetState, bool) {
	var st resetState
	if err := s.deps.Sealer.Open(sealed, card.FingerprintHex, &st, s.deps.Now()); err != nil {
		return nil, false
	}
	if st.Purpose != resetPurpose || st.Card != card.FingerprintHex || st.Username == "" {
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

// ResetInput is step 2's form as sent.
type ResetInput struct {
	State             string
	Answers           [credential.QuestionsRequired]string
	Password, Confirm string
	// Address is the client's address, counted against attempts_per_ip
	// before anything else.
	Address string
}

// ResetResult is the outcome of ResetPassword.
type ResetResult struct {
	Outcome
	Form    ResetForm      // the form to show again (Invalid, Wrong, Unavailable)
	Account *store.Account // Done; Refused
}

// ResetPassword is step 2: the three answers, checked under the client
// address's attempts_per_ip (every post counts), the card's attempt
// limit and the account's lock (a decoy's attempts count down and lock
// the same way), and the new password. Outcomes: Done, Invalid, Wrong,
// Locked, Limited (Reason ReasonAddressLimited for the address's limit),
// Unavailable (Form to send again once the database is back, the
// address's attempt given back), Restart, Refused (disabled,
// edipi_mismatch).
func (s *Service) ResetPassword(ctx context.Context, card *cacid.Identity, in ResetInput) (ResetResult, error) {
	via := map[string]string{"via": "holder"}
	if o, ok := s.countAddress(ctx, card, in.Address, eventReset, via); !ok {
		// The form to send again is the one sent, if it is one.
		res := ResetResult{Outcome: o}
		if st, ok := s.openReset(in.State, card); ok && o.Status == Unavailable {
			res.Form, _ = s.resetForm(card, st)
		}
		return res, nil
	}
	res, err := s.resetPassword(ctx, card, in)
	if res.Status == Unavailable {
		s.giveBackAddress(ctx, in.Address)
	}
	return res, err
}

func (s *Service) resetPassword(ctx context.Context, card *cacid.Identity, in ResetInput) (ResetResult, error) {
	st, ok := s.openReset(in.State, card)
	if !ok {
		return ResetResult{Outcome: outcome(Restart)}, nil
	}
	const event = eventReset
	via := map[string]string{"via": "holder"}
	again := func(o Outcome) (ResetResult, error) {
		form, err := s.resetForm(card, st)
		return ResetResult{Outcome: o, Form: form}, err
	}
	// The database failing (err): this step's form again (never the
	// answers or the password), to send once it is back; audited.
	unavailable := func(err error) (ResetResult, error) {
		return again(s.unavailableOutcome(ctx, card, err, event, via))
	}
	limit := resetLimit(card)
	if err := s.guard.Check(ctx, limit); err != nil {
		if errors.Is(err, ErrUnavailable) {
			return unavailable(err)
		}
		return ResetResult{Outcome: s.refusal(ctx, card, err, event, via)}, nil
	}
	if errs := checkResetInput(in); errs.Any() {
		return again(Outcome{Status: Invalid, Errors: errs})
	}
	acct, creds, refuse, stop, err := s.resetAccount(ctx, card, st)
	switch {
	case errors.Is(err, ErrUnavailable):
		return unavailable(err)
	case err != nil:
		return ResetResult{}, err
	case stop != nil:
		return *stop, nil
	}

	// Only wrong answers count against the card. If the count cannot be
	// given back, right answers are not acted on: no password is changed
	// on a count that cannot be trusted.
	var login LoginResult
	_, err = s.guard.Try(ctx, limit, func(ctx context.Context) (bool, error) {
		var err error
		login, err = s.checkAnswers(ctx, st, acct, creds, in.Answers)
		return login.OK, err
	})
	in.Answers = [credential.QuestionsRequired]string{}
	switch {
	case errors.Is(err, ErrUnavailable):
		return unavailable(err)
	case isGuardRefusal(err):
		return ResetResult{Outcome: s.refusal(ctx, card, err, event, via)}, nil
	case err != nil:
		return ResetResult{}, err
	}
	username := ""
	if acct != nil {
		username = acct.Username
	} else if st.Decoy != decoyUnknown {
		username = st.Username // an existing account's name, not something typed in error
	}
	if !login.OK {
		o := secretOutcome(login)
		reason := "bad_answers"
		switch {
		case st.Decoy == decoyUnknown:
			// Whatever the page said (locked too): the audit log tells
			// the truth, the page does not.
			reason = decoyUnknown
		case o.Status == Locked:
			reason = "locked"
		case st.Decoy != "":
			reason = st.Decoy
		}
		s.auditReset(ctx, card, "failure", username, map[string]string{"reason": reason})
		if o.Status == Locked {
			return ResetResult{Outcome: o}, nil
		}
		o.Errors.Add("", WrongSecret("One or more answers are not correct.", o))
		return again(o)
	}

	if refuse != "" {
		// Right answers for an account disabled (or another person's)
		// since step 1: now it may be told.
		s.auditReset(ctx, card, "failure", acct.Username, map[string]string{"reason": refuse})
		return ResetResult{Outcome: refused(refuse), Account: acct}, nil
	}

	// All three answers are right: the new password.
	if errs, err := s.resetTo(ctx, card, acct, creds, in.Password); err != nil || errs.Any() {
		switch {
		case errors.Is(err, ErrUnavailable):
			// Not changed: the answers are asked again with it.
			return unavailable(err)
		case err != nil:
			return ResetResult{}, err
		}
		return again(Outcome{Status: Invalid, Errors: errs})
	}
	// The password is changed: record it before anything else can fail.
	s.auditReset(ctx, card, "success", acct.Username, nil)
	// The right answers already cleared the count (checkAnswers); this
	// clears any failure counted since. Best effort: the change is made
	// and must be reported as made.
	_ = s.deps.Accounts.ResetLoginFailures(ctx, acct.ID)
	return ResetResult{Account: acct}, nil
}

// checkResetInput returns the problems of step 2's form.
func checkResetInput(in ResetInput) FieldErrors {
	var errs FieldErrors
	for i, a := range in.Answers {
		n := strconv.Itoa(i + 1)
		switch {
		case strings.TrimSpace(a) == "":
			errs.Add("answer-"+n, "Enter your answer to question "+n+".")
		case len(a) > maxPasswordLen:
			errs.Add("answer-"+n, "Enter an answer of at most 256 characters.")
		}
	}
	switch {
	case in.Password == "":
		errs.Add("password", "Enter a new password.")
	case len(in.Password) > maxPasswordLen:
		errs.Add("password", "Enter a password of at most 256 characters.")
	case in.Confirm != in.Password:
		errs.Add("confirm", "The two passwords do not match.")
	}
	return errs
}

// resetAccount returns a real reset's account as it is now, with its
// credentials (nil, nil for a decoy). A real reset whose account is gone
// or whose questions changed meanwhile stops with Restart. One disabled
// (or given another DoD ID) since step 1 goes on with refuse set to why:
// the answers are checked as for any account and only right answers are
// told the account's state, as only a right password is.
func (s *Service) resetAccount(ctx context.Context, card *cacid.Identity, st *resetState) (acct *store.Account, creds *store.Credentials, refuse string, stop *ResetResult, err error) {
	if st.Decoy != "" {
		return nil, nil, "", nil, nil
	}
	restart := &ResetResult{Outcome: outcome(Restart)}
	acct, err = s.deps.Accounts.AccountByUsername(ctx, st.Username)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && acct.ID != st.AccountID):
		return nil, nil, "", restart, nil
	case err != nil:
		return nil, nil, "", nil, accountsFailed("looking up account", err)
	}
	if creds, err = s.credentials(ctx, acct); err != nil {
		return nil, nil, "", nil, err
	}
	ids, decoy := resetQuestions(acct, creds, card)
	if decoy == decoyDisabled || decoy == decoyEDIPIMismatch {
		refuse, ids = decoy, [credential.QuestionsRequired]string{}
		for i, a := range creds.Answers {
			if a.Hash == "" {
				return nil, nil, "", restart, nil
			}
			ids[i] = a.QuestionID
		}
		if creds.PasswordHash == "" {
			return nil, nil, "", restart, nil
		}
	} else if decoy != "" {
		// Password or answers removed since step 1: ask again.
		return nil, nil, "", restart, nil
	}
	if ids != st.Questions {
		// Answers changed since step 1: ask again.
		return nil, nil, "", restart, nil
	}
	return acct, creds, refuse, nil, nil
}

// resetTo sets acct's new password after right answers, unless the policy
// or the history refuses it (its problems, audited).
func (s *Service) resetTo(ctx context.Context, card *cacid.Identity, acct *store.Account, creds *store.Credentials, password string) (FieldErrors, error) {
	var errs FieldErrors
	id := card
	if broken := s.cfg.Password.Check(password, acct.Username, UsernameBase(acct.GivenName, acct.MiddleName, acct.FamilyName),
		acct.GivenName, acct.MiddleName, acct.FamilyName, acct.Suffix, id.GivenName, id.MiddleName, id.FamilyName); len(broken) > 0 {
		s.auditReset(ctx, card, "failure", acct.Username, map[string]string{"reason": "policy"})
		errs.Add("password", "Choose a password that follows the rules: "+strings.Join(broken, " "))
		return errs, nil
	}
	reused, err := s.reusedPassword(ctx, creds, password)
	if err != nil {
		return errs, err
	}
	if reused {
		s.auditReset(ctx, card, "failure", acct.Username, map[string]string{"reason": "reused"})
		errs.Add("password", reusedMessage)
		return errs, nil
	}
	return errs, s.setPassword(ctx, acct, password)
}

// reusedMessage refuses a password used recently.
var reusedMessage = "Choose a password you have not used recently: it must differ from your current password and your last " + strconv.Itoa(PasswordHistory) + "."

// setPassword hashes and stores acct's new password; the gateway drops its
// cached account, so password sessions signed in before end at once.
func (s *Service) setPassword(ctx context.Context, acct *store.Account, password string) error {
	hash, err := s.deps.Hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("selfservice: hashing password: %w", err)
	}
	if err := s.deps.Accounts.SetPassword(ctx, acct.ID, hash, PasswordHistory); err != nil {
		return accountsFailed("setting password", err)
	}
	s.deps.OnChange()
	return nil
}

// checkAnswers verifies all three answers (every one of them, so the time
// taken does not tell which was wrong) against the account's hashes
// through the guard's account lock, or against the dummy hash for a decoy
// state, which never succeeds, through the guard's decoy count.
func (s *Service) checkAnswers(ctx context.Context, st *resetState, acct *store.Account, creds *store.Credentials, answers [credential.QuestionsRequired]string) (LoginResult, error) {
	verify := func(ctx context.Context, hashes [credential.QuestionsRequired]string) (bool, error) {
		right := 0
		for i, a := range answers {
			ok, err := s.deps.Hasher.VerifyAnswer(ctx, a, hashes[i])
			if err != nil {
				return false, fmt.Errorf("selfservice: verifying answer: %w", err)
			}
			if ok {
				right++
			}
		}
		return right == len(answers), nil
	}
	decoy := func(ctx context.Context) error {
		dummy, err := s.dummy.get(ctx, s.deps.Hasher)
		if err != nil {
			return fmt.Errorf("selfservice: dummy hash: %w", err)
		}
		_, err = verify(ctx, [credential.QuestionsRequired]string{dummy, dummy, dummy})
		return err
	}
	switch {
	case acct == nil && st.AccountID != 0:
		// An account this card cannot reset (another person's, disabled,
		// without answers): counted on the account's own lock, which
		// the sign-in and "register this card" pages count on too, so
		// that the username locks as one on every page and with any
		// card. Nothing is verified but the dummy hash: the right
		// answers never reset it.
		return s.guard.Account(ctx, &store.Account{ID: st.AccountID}, func(ctx context.Context) (bool, error) {
			return false, decoy(ctx)
		})
	case acct == nil:
		// An unknown username: its decoy, shared with the other pages.
		return s.guard.Decoy(ctx, s.decoyKey(st.Username), decoy)
	}
	var hashes [credential.QuestionsRequired]string
	for i, a := range creds.Answers {
		hashes[i] = a.Hash
	}
	return s.guard.Account(ctx, acct, func(ctx context.Context) (bool, error) { return verify(ctx, hashes) })
}

// reusedPassword reports whether password is the current one or one of the
// last PasswordHistory.
func (s *Service) reusedPassword(ctx context.Context, creds *store.Credentials, password string) (bool, error) {
	recent := []string{creds.PasswordHash}
	recent = append(recent, creds.History[:min(PasswordHistory, len(creds.History))]...)
	for _, old := range recent {
		if old == "" {
			continue
		}
		same, err := s.deps.Hasher.Verify(ctx, password, old)
		if err != nil {
			return false, fmt.Errorf("selfservice: verifying password history: %w", err)
		}
		if same {
			return true, nil
		}
	}
	return false, nil
}
