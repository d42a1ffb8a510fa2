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
	"github.com/cacgate/cacgate/internal/roster"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// Steps recorded in the sealed state.
const (
	stepVerified = 2 // identity validated: the profile form is next
	stepProfile  = 3 // profile and password set: the questions form is next
)

// stateRecord is a roster record as the state carries it: no secrets.
type stateRecord struct {
	Category     string `json:"c"`
	Last         string `json:"l"`
	First        string `json:"f"`
	Middle       string `json:"m,omitempty"`
	Organization string `json:"o,omitempty"`
}

// profileFields are what the person typed on the profile form (no secrets).
type profileFields struct {
	Email        string `json:"e"`
	Organization string `json:"o"`
	Location     string `json:"g"`
	Address      string `json:"a,omitempty"`
	Phone        string `json:"p,omitempty"`
}

// enrollState is sealed between steps. It never holds an SSN, FIN, date of
// birth, PEBD, password or answer: only verified roster facts, non-secret
// form fields, and the password's argon2id hash.
type enrollState struct {
	Card         string        `json:"card"`
	Step         int           `json:"step"`
	Records      []stateRecord `json:"rec"`
	Categories   []string      `json:"cat"`
	Profile      profileFields `json:"prof"`
	PasswordHash string        `json:"pw,omitempty"`
	// Expires is when the state expires, in unix seconds: the identity
	// check's time plus the state TTL. Sealing again (a form re-shown
	// with errors, the next step) keeps it, so a state cannot be kept
	// alive past it by re-posting.
	Expires int64 `json:"x,omitempty"`
}

func (f *Flow) seal(card Card, st *enrollState) (string, error) {
	st.Card = card.Identity.FingerprintHex
	if st.Expires == 0 {
		st.Expires = f.deps.Now().Add(f.cfg.StateTTL).Unix()
	}
	return f.deps.Sealer.SealUntil(card.Identity.FingerprintHex, st, time.Unix(st.Expires, 0))
}

// open returns the state posted with r if it is valid for this card and at
// step want.
func (f *Flow) open(r *http.Request, card Card, want int) (*enrollState, bool) {
	var st enrollState
	if err := f.deps.Sealer.Open(r.PostForm.Get("state"), card.Identity.FingerprintHex, &st, f.deps.Now()); err != nil {
		return nil, false
	}
	if st.Card != card.Identity.FingerprintHex || st.Step != want || len(st.Categories) == 0 {
		return nil, false
	}
	return &st, true
}

// names returns the person's name parts: from the first roster record,
// else from the card.
func (st *enrollState) names(card Card) (given, middle, family, suffix string) {
	suffix = card.Identity.Suffix
	if len(st.Records) > 0 {
		rec := st.Records[0]
		return rec.First, rec.Middle, rec.Last, suffix
	}
	id := card.Identity
	return id.GivenName, id.MiddleName, id.FamilyName, suffix
}

// ---- step 2: identity validation ----

type identityPage struct {
	pageBase
	IDType       string // "ssn" or "fin": which radio is checked
	AskPEBD      bool
	PEBDOptional bool // asked "if you have one": an empty field is sent as none
	Restarted    bool
}

func (f *Flow) needsPEBD(r *http.Request, card Card) (roster.PEBDNeed, error) {
	if !f.cfg.AskPEBD {
		return roster.PEBDNotAsked, nil
	}
	return f.deps.Roster.NeedsPEBD(r.Context(), card.Identity.EDIPI)
}

func (f *Flow) showIdentity(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF) error {
	need, err := f.needsPEBD(r, card)
	if err != nil {
		return f.rosterError(w, r, card, err)
	}
	if r.Method == http.MethodGet {
		f.audit(r, card, "enroll.started", "success", nil)
	}
	return f.render(w, http.StatusOK, "identity", identityPage{
		pageBase: f.base(card, csrf), IDType: "ssn", AskPEBD: need.Asked(), PEBDOptional: need == roster.PEBDOptional,
		Restarted: r.URL.Query().Get("restart") != "",
	})
}

func (f *Flow) rosterError(w http.ResponseWriter, r *http.Request, card Card, err error) error {
	if !errors.Is(err, roster.ErrUnavailable) {
		return fmt.Errorf("enroll: roster: %w", err)
	}
	f.audit(r, card, "enroll.identity", "unavailable", nil)
	w.Header().Set("Retry-After", "300")
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusServiceUnavailable, Code: "roster_unavailable",
		Title: "Try again later", Detail: "The personnel records that confirm who you are cannot be reached right now. No account was created.",
		Steps: []string{"Wait a few minutes and start the registration again."}, Contact: f.cfg.Contact, Retry: true})
}

func (f *Flow) postIdentity(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF) error {
	ctx := r.Context()
	limit := identityLimit(card)
	if err := f.guard.Check(ctx, limit); err != nil {
		return f.identityLimited(w, r, card, err)
	}
	need, err := f.needsPEBD(r, card)
	if err != nil {
		return f.rosterError(w, r, card, err)
	}
	form := r.PostForm
	page := identityPage{pageBase: f.base(card, csrf), AskPEBD: need.Asked(), PEBDOptional: need == roster.PEBDOptional, IDType: form.Get("idtype")}
	claim := roster.Claim{EDIPI: card.Identity.EDIPI, DOB: strings.TrimSpace(form.Get("dob"))}
	switch page.IDType {
	case "fin":
		claim.FIN = form.Get("fin")
	case "ssn":
		claim.SSN = form.Get("ssn")
	default:
		page.IDType = "ssn"
		claim.SSN, claim.FIN = form.Get("ssn"), form.Get("fin")
	}
	if need.Asked() {
		claim.PEBD = strings.TrimSpace(form.Get("pebd"))
	}
	if err := roster.ValidateClaim(claim); err != nil {
		var in *roster.InputError
		if !errors.As(err, &in) {
			return fmt.Errorf("enroll: validating claim: %w", err)
		}
		page.Errors.add(in.Field, in.Message)
	} else if need == roster.PEBDRequired && claim.PEBD == "" {
		page.Errors.add("pebd", "Enter your pay entry base date.")
	}
	if page.Errors.any() {
		return f.render(w, http.StatusUnprocessableEntity, "identity", page)
	}
	// Only a mismatch counts. A refund that fails leaves the attempt
	// counted, and the match unused: the person is told to try again,
	// and nothing is created on a count that cannot be trusted.
	var res roster.Result
	_, err = f.guard.Try(ctx, limit, func(ctx context.Context) (bool, error) {
		var err error
		res, err = f.deps.Roster.Verify(ctx, claim)
		return res.Match, err
	})
	claim = roster.Claim{}
	switch {
	case errors.Is(err, ErrLimited), errors.Is(err, ErrUnavailable):
		return f.identityLimited(w, r, card, err)
	case err != nil:
		return f.rosterError(w, r, card, err)
	}
	if !res.Match {
		f.audit(r, card, "enroll.identity", "failure", map[string]string{"reason": "no_match"})
		msg := "The information you entered does not match the personnel records for your DoD ID. Check it and try again, or contact "
		if f.cfg.Contact != "" {
			msg += f.cfg.Contact + "."
		} else {
			msg += "the site's administrators."
		}
		page.Errors.add("", msg)
		return f.render(w, http.StatusUnprocessableEntity, "identity", page)
	}
	var personCats []string
	st := &enrollState{Step: stepVerified}
	for _, rec := range res.Records {
		personCats = append(personCats, rec.Category)
		st.Records = append(st.Records, stateRecord{Category: rec.Category, Last: rec.Last, First: rec.First, Middle: rec.Middle, Organization: rec.Organization})
	}
	st.Categories = EligibleCategories(personCats, f.cfg.Eligible)
	if len(st.Categories) == 0 {
		f.audit(r, card, "enroll.identity", "ineligible", map[string]string{"categories": strings.Join(personCats, "; ")})
		eligible := f.cfg.Eligible
		if len(eligible) == 0 {
			eligible = Categories
		}
		return f.render(w, http.StatusForbidden, "ineligible", ineligiblePage{pageBase: f.base(card, csrf), Yours: personCats, Eligible: eligible})
	}
	f.audit(r, card, "enroll.identity", "success", map[string]string{"categories": strings.Join(st.Categories, "; ")})
	return f.profileForm(w, http.StatusOK, card, csrf, st, profileFields{}, formErrors{})
}

// identityLimited answers an identity check the guard refused (ErrLimited
// or ErrUnavailable).
func (f *Flow) identityLimited(w http.ResponseWriter, r *http.Request, card Card, err error) error {
	if !errors.Is(err, ErrLimited) {
		f.audit(r, card, "enroll.identity", "unavailable", map[string]string{"reason": throttleUnavailableReason})
		return f.throttleUnavailable(w, r, "No account was created.")
	}
	f.audit(r, card, "enroll.identity", "limited", nil)
	w.Header().Set("Retry-After", strconv.Itoa(int(failureWindow/time.Second)))
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusTooManyRequests, Code: "too_many_attempts",
		Title: "Too many attempts", Detail: "The information entered for this card did not match the personnel records too many times.",
		Steps: []string{"Wait 15 minutes before trying again.", "Check your information, or contact the help desk."}, Contact: f.cfg.Contact})
}

type ineligiblePage struct {
	pageBase
	Yours, Eligible []string
}

// ---- step 3: profile and password ----

type profilePage struct {
	pageBase
	Name           string
	Categories     []string
	Profile        profileFields
	Organizations  []string
	Locations      []string
	RequireAddress bool
	RequirePhone   bool
	Rules          []string
}

func (f *Flow) profileForm(w http.ResponseWriter, status int, card Card, csrf CSRF, st *enrollState, p profileFields, errs formErrors) error {
	sealed, err := f.seal(card, st)
	if err != nil {
		return fmt.Errorf("enroll: sealing state: %w", err)
	}
	given, middle, family, suffix := st.names(card)
	page := profilePage{
		pageBase: f.base(card, csrf), Name: joinName(given, middle, family, suffix), Categories: st.Categories, Profile: p,
		Organizations: f.cfg.Organizations, Locations: f.cfg.Locations,
		RequireAddress: f.cfg.RequireAddress, RequirePhone: f.cfg.RequirePhone, Rules: f.cfg.Password.Rules(),
	}
	page.State, page.Errors = sealed, errs
	return f.render(w, status, "profile", page)
}

func (f *Flow) postProfile(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF) error {
	st, ok := f.open(r, card, stepVerified)
	if !ok {
		return f.restart(w, r)
	}
	form := r.PostForm
	p := profileFields{
		Email:        strings.TrimSpace(form.Get("email")),
		Organization: form.Get("organization"),
		Location:     form.Get("location"),
		Address:      strings.TrimSpace(form.Get("address")),
		Phone:        strings.TrimSpace(form.Get("phone")),
	}
	var errs formErrors
	switch {
	case p.Email == "":
		errs.add("email", "Enter an email address outside this site, such as your work or personal email.")
	case !validEmail(p.Email):
		errs.add("email", "Enter an email address in the form name@example.com, of at most 254 characters.")
	}
	if !contains(f.cfg.Organizations, p.Organization) {
		errs.add("organization", "Choose your organization from the list.")
	}
	if !contains(f.cfg.Locations, p.Location) {
		errs.add("location", "Choose your geographic location from the list.")
	}
	switch {
	case p.Address == "" && f.cfg.RequireAddress:
		errs.add("address", "Enter your work address.")
	case len(p.Address) > maxAddressLen || !isCleanText(p.Address):
		errs.add("address", "Enter a work address of at most 200 characters on one line.")
	}
	switch {
	case p.Phone == "" && f.cfg.RequirePhone:
		errs.add("phone", "Enter your work phone number.")
	case p.Phone != "" && !validPhone(p.Phone):
		errs.add("phone", "Enter a phone number of at least 7 digits, using only digits, spaces and + - ( ) x.")
	}
	given, middle, family, suffix := st.names(card)
	base := UsernameBase(given, middle, family)
	password := form.Get("password")
	if broken := f.cfg.Password.Check(password, given, middle, family, suffix, base,
		card.Identity.GivenName, card.Identity.MiddleName, card.Identity.FamilyName); len(broken) > 0 {
		errs.add("password", "Choose a password that follows the rules: "+strings.Join(broken, " "))
	} else if form.Get("confirm") != password {
		errs.add("confirm", "The two passwords do not match.")
	}
	if errs.any() {
		return f.profileForm(w, http.StatusUnprocessableEntity, card, csrf, st, p, errs)
	}
	hash, err := f.deps.Hasher.Hash(r.Context(), password)
	if err != nil {
		return fmt.Errorf("enroll: hashing password: %w", err)
	}
	st.Step, st.Profile, st.PasswordHash = stepProfile, p, hash
	return f.questionsForm(w, http.StatusOK, card, csrf, st, [credential.QuestionsRequired]string{}, formErrors{})
}

// ---- step 4: security questions ----

type questionSlot struct {
	N        int // 1-based
	Selected string
}

type questionsPage struct {
	pageBase
	Slots     []questionSlot
	Questions []credential.Question
}

func (f *Flow) questionsForm(w http.ResponseWriter, status int, card Card, csrf CSRF, st *enrollState, chosen [credential.QuestionsRequired]string, errs formErrors) error {
	sealed, err := f.seal(card, st)
	if err != nil {
		return fmt.Errorf("enroll: sealing state: %w", err)
	}
	page := questionsPage{pageBase: f.base(card, csrf), Questions: credential.Questions()}
	for i, id := range chosen {
		page.Slots = append(page.Slots, questionSlot{N: i + 1, Selected: id})
	}
	page.State, page.Errors = sealed, errs
	return f.render(w, status, "questions", page)
}

func (f *Flow) postQuestions(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF) error {
	st, ok := f.open(r, card, stepProfile)
	if !ok || st.PasswordHash == "" {
		return f.restart(w, r)
	}
	form := r.PostForm
	var chosen [credential.QuestionsRequired]string
	picks := make([]credential.AnswerPick, credential.QuestionsRequired)
	for i := range picks {
		n := strconv.Itoa(i + 1)
		chosen[i] = form.Get("question-" + n)
		picks[i] = credential.AnswerPick{QuestionID: chosen[i], Answer: form.Get("answer-" + n), Confirm: form.Get("confirm-" + n)}
	}
	if problems := credential.CheckQuestions(picks); problems != nil {
		var errs formErrors
		for slot := range credential.QuestionsRequired {
			for _, field := range []string{credential.FieldQuestion, credential.FieldAnswer, credential.FieldConfirm} {
				if msg, ok := problems[credential.FieldKey{Slot: slot, Field: field}]; ok {
					errs.add(field+"-"+strconv.Itoa(slot+1), msg)
				}
			}
		}
		return f.questionsForm(w, http.StatusUnprocessableEntity, card, csrf, st, chosen, errs)
	}
	var answers [3]store.Answer
	for i, pick := range picks {
		h, err := f.deps.Hasher.HashAnswer(r.Context(), pick.Answer)
		if err != nil {
			return fmt.Errorf("enroll: hashing answer: %w", err)
		}
		answers[i] = store.Answer{QuestionID: pick.QuestionID, Hash: h}
	}
	given, middle, family, suffix := st.names(card)
	base := UsernameBase(given, middle, family)
	if base == "" {
		f.audit(r, card, "enroll.completed", "failure", map[string]string{"reason": "no_username"})
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusUnprocessableEntity, Code: "no_username",
			Title: "Your account cannot be created here", Detail: "A username cannot be made from your name as the records hold it.",
			Steps: []string{"Contact the site's administrators, who can create your account."}, Contact: f.cfg.Contact})
	}
	status := store.StatusActive
	if f.cfg.Approval {
		status = store.StatusPending
	}
	affiliation := card.Identity.Affiliation
	if affiliation == "" {
		affiliation = st.Profile.Organization
	}
	e := &store.Enrollment{
		Account: store.Account{
			EDIPI: card.Identity.EDIPI, GivenName: given, MiddleName: middle, FamilyName: family, Suffix: suffix,
			Email: st.Profile.Email, Affiliation: affiliation, Status: status, Categories: st.Categories,
			Organization: st.Profile.Organization, Location: st.Profile.Location,
			WorkAddress: st.Profile.Address, Phone: st.Profile.Phone,
		},
		UsernameBase: base,
		Card: store.Card{Fingerprint: card.Identity.FingerprintHex, Subject: card.Subject, Issuer: card.Issuer,
			Serial: card.Serial, NotAfter: card.NotAfter},
		PasswordHash: st.PasswordHash,
		Answers:      answers,
	}
	acct, err := f.deps.Store.Enroll(r.Context(), e)
	switch {
	case errors.Is(err, store.ErrEDIPITaken), errors.Is(err, store.ErrCardTaken):
		reason := "edipi_taken"
		if errors.Is(err, store.ErrCardTaken) {
			reason = "card_taken"
		}
		f.audit(r, card, "enroll.completed", "failure", map[string]string{"reason": reason})
		return f.render(w, http.StatusConflict, "exists", f.base(card, csrf))
	case err != nil:
		return fmt.Errorf("enroll: creating account: %w", err)
	}
	f.audit(r, card, "enroll.completed", "success", map[string]string{
		"username": acct.Username, "status": string(acct.Status), "categories": strings.Join(acct.Categories, "; "),
	})
	return f.render(w, http.StatusOK, "complete", completePage{pageBase: f.base(card, csrf), Account: acct,
		Name: joinName(given, middle, family, suffix), Pending: acct.Status == store.StatusPending, Card: card,
		Expires: card.NotAfter.UTC().Format("2006-01-02")})
}

type completePage struct {
	pageBase
	Account *store.Account
	Name    string
	Pending bool
	Card    Card
	Expires string
}
