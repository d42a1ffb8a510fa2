package selfservice

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/roster"
	"github.com/cacgate/cacgate/internal/store"
)

// Enrollment ("create a new account"): identity validation against the
// roster, profile and password, security questions, account created.
//
// Between steps the state travels sealed (encrypted and authenticated by
// the Sealer, bound to the card's fingerprint) with the person's browser,
// in the form: it needs no shared server memory (any gateway node can
// continue the flow), two tabs cannot mix two attempts, and nothing (such
// as the password hash) stays stored in the browser after the flow ends.

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

// Profile is what the person typed on the profile form (no secrets).
type Profile struct {
	Email        string `json:"e"`
	Organization string `json:"o"`
	Location     string `json:"g"`
	Address      string `json:"a,omitempty"`
	Phone        string `json:"p,omitempty"`
}

// enrollState is sealed between steps. It never holds an SSN, FIN, date of
// birth, PEBD, password or answer: only verified roster facts, non-secret
// form fields, and the password's hash.
type enrollState struct {
	Card         string        `json:"card"`
	Step         int           `json:"step"`
	Records      []stateRecord `json:"rec"`
	Categories   []string      `json:"cat"`
	Profile      Profile       `json:"prof"`
	PasswordHash string        `json:"pw,omitempty"`
	// Expires is when the state expires, in unix seconds: the identity
	// check's time plus the state TTL. Sealing again (a form re-shown
	// with errors, the next step) keeps it, so a state cannot be kept
	// alive past it by re-posting.
	Expires int64 `json:"x,omitempty"`
	// ID names this step's state, random: the step that hashes (profile,
	// questions) records it as used (store.StateLedger), so the state
	// moves the flow on once. A form re-shown with errors keeps it; the
	// next step's state gets a new one.
	ID string `json:"id,omitempty"`
	// used: this request recorded ID as used, and the step then failed
	// on the account database (the account could not be created, say).
	// The form shown again gets a fresh ID, so the person can send it
	// again: the record of the old one may not be removable while the
	// database fails. The old ID stays used, so a copy of the form sent
	// earlier is still refused. Never sealed.
	used bool
}

// newStateID is a fresh random state ID (128 bits, URL-safe).
func newStateID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Service) seal(card *cacid.Identity, st *enrollState) (string, error) {
	st.Card = card.FingerprintHex
	if st.ID == "" || st.used {
		st.ID, st.used = newStateID(), false
	}
	if st.Expires == 0 {
		st.Expires = s.deps.Now().Add(s.cfg.StateTTL).Unix()
	}
	sealed, err := s.deps.Sealer.SealUntil(card.FingerprintHex, st, time.Unix(st.Expires, 0))
	if err != nil {
		return "", fmt.Errorf("enroll: sealing state: %w", err)
	}
	return sealed, nil
}

// open returns the sealed state if it is valid for this card and at step
// want.
func (s *Service) open(sealed string, card *cacid.Identity, want int) (*enrollState, bool) {
	var st enrollState
	if err := s.deps.Sealer.Open(sealed, card.FingerprintHex, &st, s.deps.Now()); err != nil {
		return nil, false
	}
	if st.Card != card.FingerprintHex || st.Step != want || len(st.Categories) == 0 || st.ID == "" || st.Expires == 0 {
		return nil, false
	}
	return &st, true
}

// names returns the person's name parts: from the first roster record,
// else from the card.
func (st *enrollState) names(card *cacid.Identity) (given, middle, family, suffix string) {
	suffix = card.Suffix
	if len(st.Records) > 0 {
		rec := st.Records[0]
		return rec.First, rec.Middle, rec.Last, suffix
	}
	id := card
	if !IsDoD(card) {
		// A sponsored holder's names come from the certificate, which
		// PIV issuers write in capitals: the account keeps them the way
		// people write them ("Jane Q Federal").
		return nameCase(id.GivenName), nameCase(id.MiddleName), nameCase(id.FamilyName), suffix
	}
	return id.GivenName, id.MiddleName, id.FamilyName, suffix
}

// nameCase writes an all-capitals name part the way people write it,
// "O'BRIEN-SMITH" as "O'Brien-Smith"; a name in mixed case is left alone.
func nameCase(s string) string {
	if s != strings.ToUpper(s) {
		return s
	}
	var b strings.Builder
	upper := true
	for _, r := range s {
		if upper {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
		upper = r == ' ' || r == '-' || r == '\''
	}
	return b.String()
}

// ---- step 2: identity validation ----

// IdentityForm is what the identity form asks.
type IdentityForm struct {
	AskPEBD      bool
	PEBDOptional bool // asked "if you have one": an empty field is sent as none
	// Sponsor: no form at all. The card is a non-DoD credential that the
	// roster holds no record of (or cannot be asked about): its holder
	// goes to sponsorship (Sponsor), as on a site without such records.
	Sponsor bool
}

// IdentityForm returns what the identity form asks of this card's holder.
// started records that the holder began enrolling (the form's first
// showing). Its outcome is Done or RosterUnavailable.
func (s *Service) IdentityForm(ctx context.Context, card *cacid.Identity, started bool) (IdentityForm, Outcome, error) {
	known, need, err := s.rosterPresence(ctx, card)
	if err != nil {
		o, err := s.rosterError(ctx, card, err)
		return IdentityForm{}, o, err
	}
	if !known {
		return IdentityForm{Sponsor: true}, Outcome{}, nil
	}
	if started {
		s.audit(ctx, card, "enroll.started", "success", nil)
	}
	return IdentityForm{AskPEBD: need.Asked(), PEBDOptional: need == roster.PEBDOptional}, Outcome{}, nil
}

// RosterKey is the roster key a card's holder is looked up by: a DoD
// card's EDIPI, a federal PIV or PIV-I card's UUID, an ECA certificate's
// e-mail address (whatever eca_key the site chose for the account: the
// e-mail is what a personnel export can list). A PIV card that also
// carries an e-mail address is still looked up by its UUID alone: the
// UUID is what the issuer vouches for and what the account is keyed by,
// an address may be anybody's. ok is false when the card carries no such
// key (an ECA certificate without an address).
func RosterKey(card *cacid.Identity) (kind roster.KeyKind, value string, ok bool) {
	switch card.Kind {
	case "", cacid.KindCAC:
		return roster.KeyEDIPI, card.EDIPI, card.EDIPI != ""
	case cacid.KindPIV, cacid.KindPIVI:
		return roster.KeyCardUUID, card.CardUUID, card.CardUUID != ""
	case cacid.KindECA:
		return roster.KeyEmail, strings.ToLower(card.Email), card.Email != ""
	}
	return "", "", false
}

// rosterPresence reports whether the holder of card is checked against
// the roster (a DoD card always is; a non-DoD credential when the roster
// holds records keyed by its card UUID or e-mail and has one of this
// card's), and what the form asks about the PEBD.
func (s *Service) rosterPresence(ctx context.Context, card *cacid.Identity) (bool, roster.PEBDNeed, error) {
	if IsDoD(card) {
		need, err := s.needsPEBD(ctx, card)
		return err == nil, need, err
	}
	keyed, ok := s.deps.Roster.(roster.KeyedSource)
	kind, value, hasKey := RosterKey(card)
	if !ok || !hasKey {
		return false, roster.PEBDNotAsked, nil
	}
	p, err := keyed.Lookup(ctx, kind, value)
	if err != nil || !p.Known {
		return false, roster.PEBDNotAsked, err
	}
	if !s.cfg.AskPEBD {
		return true, roster.PEBDNotAsked, nil
	}
	return true, p.PEBD, nil
}

func (s *Service) needsPEBD(ctx context.Context, card *cacid.Identity) (roster.PEBDNeed, error) {
	if !s.cfg.AskPEBD {
		return roster.PEBDNotAsked, nil
	}
	if !IsDoD(card) {
		_, need, err := s.rosterPresence(ctx, card)
		return need, err
	}
	return s.deps.Roster.NeedsPEBD(ctx, card.EDIPI)
}

// rosterError is the outcome of a roster failure: RosterUnavailable
// (audited) when it cannot be reached, else an internal error.
func (s *Service) rosterError(ctx context.Context, card *cacid.Identity, err error) (Outcome, error) {
	if !errors.Is(err, roster.ErrUnavailable) {
		return Outcome{}, fmt.Errorf("enroll: roster: %w", err)
	}
	s.audit(ctx, card, "enroll.identity", "unavailable", nil)
	return outcome(RosterUnavailable), nil
}

// IdentityInput is the identity form as sent.
type IdentityInput struct {
	IDType        string // "ssn" or "fin"; anything else reads both
	SSN, FIN, DOB string
	PEBD          string
	// Address is the client's address, counted against attempts_per_ip
	// before anything else.
	Address string
}

// idType is the ID type radio to show checked for what was sent.
func idType(sent string) string {
	if sent == "fin" {
		return "fin"
	}
	return "ssn"
}

// IdentityResult is the outcome of CheckIdentity.
type IdentityResult struct {
	Outcome
	Form   IdentityForm // what the form asks, to show it again
	IDType string       // the radio to show checked
	// Ineligible: the person's categories and those the site accepts.
	Ineligible      bool
	Yours, Eligible []string
	// Next is the profile step, when the identity checked out.
	Next ProfileForm
}

// CheckIdentity checks the holder's identity facts against the roster,
// under the client address's attempts_per_ip (every check counts) and the
// card's attempt limit (only a mismatch counts). Outcomes: Done (Next is
// the profile form, or Ineligible), Invalid, Wrong (no match), Limited
// (Reason ReasonAddressLimited for the address's limit), Unavailable (the
// address's attempt given back), RosterUnavailable, Refused (registered:
// the card already has an account).
func (s *Service) CheckIdentity(ctx context.Context, card *cacid.Identity, in IdentityInput) (IdentityResult, error) {
	const event = "enroll.identity"
	if !IsDoD(card) {
		known, _, err := s.rosterPresence(ctx, card)
		if err != nil {
			o, err := s.rosterError(ctx, card, err)
			return IdentityResult{Outcome: o, IDType: idType(in.IDType)}, err
		}
		if !known {
			// No personnel record is keyed by this credential.
			return s.Sponsor(ctx, card)
		}
	}
	if o, ok := s.countAddress(ctx, card, in.Address, event, nil); !ok {
		return IdentityResult{Outcome: o, IDType: idType(in.IDType)}, nil
	}
	res, err := s.checkIdentity(ctx, card, in)
	if errors.Is(err, ErrUnavailable) {
		res, err = IdentityResult{Outcome: s.unavailableOutcome(ctx, card, err, event, nil)}, nil
	}
	if res.Status == Unavailable {
		res.IDType = idType(in.IDType)
		s.giveBackAddress(ctx, in.Address)
		// The form to send again asks what it asked. The roster is not
		// the account database; if it fails too, the form asks no PEBD
		// and says so when sent without one.
		if need, err := s.needsPEBD(ctx, card); err == nil {
			res.Form = IdentityForm{AskPEBD: need.Asked(), PEBDOptional: need == roster.PEBDOptional}
		}
	}
	return res, err
}

func (s *Service) checkIdentity(ctx context.Context, card *cacid.Identity, in IdentityInput) (IdentityResult, error) {
	// A registered card gets no state: it has nothing to enroll, and each
	// state would be one more password hash to post.
	if o, err := s.refuseRegistered(ctx, card, "enroll.identity"); o != nil || err != nil {
		return IdentityResult{Outcome: derefOutcome(o)}, err
	}
	limit := identityLimit(card)
	if err := s.guard.Check(ctx, limit); err != nil {
		return IdentityResult{Outcome: s.refusal(ctx, card, err, "enroll.identity", nil)}, nil
	}
	need, err := s.needsPEBD(ctx, card)
	if err != nil {
		o, err := s.rosterError(ctx, card, err)
		return IdentityResult{Outcome: o}, err
	}
	res := IdentityResult{Form: IdentityForm{AskPEBD: need.Asked(), PEBDOptional: need == roster.PEBDOptional}, IDType: in.IDType}
	claim := roster.Claim{DOB: strings.TrimSpace(in.DOB)}
	switch kind, value, _ := RosterKey(card); kind {
	case roster.KeyCardUUID:
		claim.CardUUID = value
	case roster.KeyEmail:
		claim.Email = value
	default:
		claim.EDIPI = card.EDIPI
	}
	switch in.IDType {
	case "fin":
		claim.FIN = in.FIN
	case "ssn":
		claim.SSN = in.SSN
	default:
		res.IDType = "ssn"
		claim.SSN, claim.FIN = in.SSN, in.FIN
	}
	if need.Asked() {
		claim.PEBD = strings.TrimSpace(in.PEBD)
	}
	if err := roster.ValidateClaim(claim); err != nil {
		var bad *roster.InputError
		if !errors.As(err, &bad) {
			return IdentityResult{}, fmt.Errorf("enroll: validating claim: %w", err)
		}
		res.Errors.Add(bad.Field, bad.Message)
	} else if need == roster.PEBDRequired && claim.PEBD == "" {
		res.Errors.Add("pebd", "Enter your pay entry base date.")
	}
	if res.Errors.Any() {
		res.Status = Invalid
		return res, nil
	}
	// Only a mismatch counts. A refund that fails leaves the attempt
	// counted, and the match unused: the person is told to try again,
	// and nothing is created on a count that cannot be trusted.
	var match roster.Result
	_, err = s.guard.Try(ctx, limit, func(ctx context.Context) (bool, error) {
		var err error
		match, err = s.deps.Roster.Verify(ctx, claim)
		return match.Match, err
	})
	claim = roster.Claim{}
	switch {
	case isGuardRefusal(err):
		res.Outcome = s.refusal(ctx, card, err, "enroll.identity", nil)
		return res, nil
	case err != nil:
		res.Outcome, err = s.rosterError(ctx, card, err)
		return res, err
	}
	if !match.Match && match.NoRecord && !IsDoD(card) {
		// The roster service holds nothing of this credential: the
		// holder is sponsored, or told to ask for an account where the
		// site sponsors nobody, as where the roster is a file without
		// their record. (The attempt stays counted: it was a miss.)
		s.audit(ctx, card, "enroll.identity", "failure", map[string]string{"reason": "no_record"})
		return s.Sponsor(ctx, card)
	}
	if !match.Match {
		s.audit(ctx, card, "enroll.identity", "failure", map[string]string{"reason": "no_match"})
		what := "your DoD ID"
		if !IsDoD(card) {
			what = "your " + CredentialTitle(card)
		}
		msg := "The information you entered does not match the personnel records for " + what + ". Check it and try again, or contact "
		if s.cfg.Contact != "" {
			msg += s.cfg.Contact + "."
		} else {
			msg += "the site's administrators."
		}
		res.Status = Wrong
		res.Errors.Add("", msg)
		return res, nil
	}
	var personCats []string
	st := &enrollState{Step: stepVerified}
	for _, rec := range match.Records {
		personCats = append(personCats, rec.Category)
		st.Records = append(st.Records, stateRecord{Category: rec.Category, Last: rec.Last, First: rec.First, Middle: rec.Middle, Organization: rec.Organization})
	}
	st.Categories = EligibleCategories(personCats, s.cfg.Eligible)
	if len(st.Categories) == 0 {
		s.audit(ctx, card, "enroll.identity", "ineligible", map[string]string{"categories": strings.Join(personCats, "; ")})
		res.Ineligible, res.Yours, res.Eligible = true, personCats, s.cfg.Eligible
		if len(res.Eligible) == 0 {
			res.Eligible = Categories
		}
		return res, nil
	}
	fields := map[string]string{"categories": strings.Join(st.Categories, "; ")}
	if !IsDoD(card) {
		kind, _, _ := RosterKey(card)
		fields["via"] = "roster:" + string(kind)
	}
	s.audit(ctx, card, "enroll.identity", "success", fields)
	var prefill Profile
	if !IsDoD(card) {
		prefill.Email = card.Email // as sponsorship does: the certificate's address
	}
	res.Next, err = s.profileForm(card, st, prefill)
	return res, err
}

// ---- step 2 for non-DoD credentials: sponsorship ----

// Sponsor starts the enrollment of a non-DoD credential (federal PIV,
// PIV-I, ECA), which no DoD personnel record is keyed by: on a site that
// runs approval or sponsor mode, the holder goes straight to the profile step, and
// the account waits "pending" until an administrator (the sponsor)
// approves it, having checked who the person is. Without either mode
// such a card is refused (Refused, reason "sponsor_required"): nothing
// would vouch for the person. Outcomes: Done (Next is the profile form),
// Refused (registered, or sponsor_required), Unavailable.
func (s *Service) Sponsor(ctx context.Context, card *cacid.Identity) (IdentityResult, error) {
	const event = "enroll.identity"
	if IsDoD(card) {
		return IdentityResult{}, errors.New("enroll: Sponsor is for non-DoD credentials")
	}
	if !s.cfg.Approval && !s.cfg.Sponsor {
		s.audit(ctx, card, event, "failure", map[string]string{"reason": "sponsor_required"})
		return IdentityResult{Outcome: refused("sponsor_required")}, nil
	}
	if o, err := s.refuseRegistered(ctx, card, event); o != nil || err != nil {
		if errors.Is(err, ErrUnavailable) {
			return IdentityResult{Outcome: s.unavailableOutcome(ctx, card, err, event, nil)}, nil
		}
		return IdentityResult{Outcome: derefOutcome(o)}, err
	}
	st := &enrollState{Step: stepVerified, Categories: []string{SponsoredCategory(card)}}
	s.audit(ctx, card, event, "success", map[string]string{"via": "sponsor", "categories": st.Categories[0]})
	next, err := s.profileForm(card, st, Profile{Email: card.Email})
	return IdentityResult{Next: next}, err
}

// ---- step 3: profile and password ----

// ProfileForm is the profile step's form: the sealed state to send back,
// whom it is for, and what was typed so far.
type ProfileForm struct {
	State      string
	Name       string
	Categories []string
	Profile    Profile
	// Rostered: the personnel roster confirmed who the holder is; false
	// for a sponsored holder, whose account waits for approval.
	Rostered bool
}

func (s *Service) profileForm(card *cacid.Identity, st *enrollState, p Profile) (ProfileForm, error) {
	sealed, err := s.seal(card, st)
	if err != nil {
		return ProfileForm{}, err
	}
	given, middle, family, suffix := st.names(card)
	return ProfileForm{State: sealed, Name: JoinName(given, middle, family, suffix), Categories: st.Categories, Profile: p, Rostered: len(st.Records) > 0}, nil
}

// ProfileInput is the profile form as sent.
type ProfileInput struct {
	State             string
	Profile           Profile
	Password, Confirm string
	// Address is the client's address, counted against attempts_per_ip
	// before the password is hashed.
	Address string
}

// ProfileResult is the outcome of SetProfile.
type ProfileResult struct {
	Outcome
	Form ProfileForm   // Invalid: the form to show again
	Next QuestionsForm // Done: the questions step
}

// SetProfile checks the profile and the new password and hashes it, once
// per state (see hashingStep). Outcomes: Done, Invalid, Restart, Replayed,
// Limited, Unavailable, Refused (registered). A hasher too busy to take
// the hash is an error matching credential.ErrBusy, the state left
// unused.
func (s *Service) SetProfile(ctx context.Context, card *cacid.Identity, in ProfileInput) (ProfileResult, error) {
	const event = "enroll.profile"
	st, ok := s.open(in.State, card, stepVerified)
	if !ok {
		return ProfileResult{Outcome: outcome(Restart)}, nil
	}
	p := Profile{
		Email:        strings.TrimSpace(in.Profile.Email),
		Organization: in.Profile.Organization,
		Location:     in.Profile.Location,
		Address:      strings.TrimSpace(in.Profile.Address),
		Phone:        strings.TrimSpace(in.Profile.Phone),
	}
	// The database failing: the same form again, with what was typed
	// (but the passwords), to send once it is back.
	unavailable := func(o Outcome) (ProfileResult, error) {
		form, err := s.profileForm(card, st, p)
		return ProfileResult{Outcome: o, Form: form}, err
	}
	if o, err := s.refuseRegistered(ctx, card, event); o != nil || err != nil {
		if errors.Is(err, ErrUnavailable) {
			return unavailable(s.unavailableOutcome(ctx, card, err, event, nil))
		}
		return ProfileResult{Outcome: derefOutcome(o)}, err
	}
	if err := s.guard.Check(ctx, hashLimit(card)); err != nil {
		o := s.refusal(ctx, card, err, event, nil)
		if o.Status == Unavailable {
			return unavailable(o)
		}
		return ProfileResult{Outcome: o}, nil
	}
	var errs FieldErrors
	switch {
	case p.Email == "":
		errs.Add("email", "Enter an email address outside this site, such as your work or personal email.")
	case !validEmail(p.Email):
		errs.Add("email", "Enter an email address in the form name@example.com, of at most 254 characters.")
	}
	if !contains(s.cfg.Organizations, p.Organization) {
		errs.Add("organization", "Choose your organization from the list.")
	}
	if !contains(s.cfg.Locations, p.Location) {
		errs.Add("location", "Choose your geographic location from the list.")
	}
	switch {
	case p.Address == "" && s.cfg.RequireAddress:
		errs.Add("address", "Enter your work address.")
	case len(p.Address) > maxAddressLen || !isCleanText(p.Address):
		errs.Add("address", "Enter a work address of at most 200 characters on one line.")
	}
	switch {
	case p.Phone == "" && s.cfg.RequirePhone:
		errs.Add("phone", "Enter your work phone number.")
	case p.Phone != "" && !validPhone(p.Phone):
		errs.Add("phone", "Enter a phone number of at least 7 digits, using only digits, spaces and + - ( ) x.")
	}
	given, middle, family, suffix := st.names(card)
	base := UsernameBase(given, middle, family)
	if broken := s.cfg.Password.Check(in.Password, given, middle, family, suffix, base,
		card.GivenName, card.MiddleName, card.FamilyName); len(broken) > 0 {
		errs.Add("password", "Choose a password that follows the rules: "+strings.Join(broken, " "))
	} else if in.Confirm != in.Password {
		errs.Add("confirm", "The two passwords do not match.")
	}
	if errs.Any() {
		form, err := s.profileForm(card, st, p)
		return ProfileResult{Outcome: Outcome{Status: Invalid, Errors: errs}, Form: form}, err
	}
	var hash string
	o, err := s.hashingStep(ctx, card, st, in.Address, event, func(ctx context.Context) error {
		var err error
		if hash, err = s.deps.Hasher.Hash(ctx, in.Password); err != nil {
			return fmt.Errorf("enroll: hashing password: %w", err)
		}
		return nil
	})
	switch {
	case o != nil && o.Status == Unavailable:
		return unavailable(*o)
	case err != nil || o != nil:
		return ProfileResult{Outcome: derefOutcome(o)}, err
	}
	st.Step, st.Profile, st.PasswordHash, st.ID = stepProfile, p, hash, ""
	next, err := s.questionsForm(card, st, [credential.QuestionsRequired]string{})
	return ProfileResult{Next: next}, err
}

// ---- step 4: security questions ----

// QuestionsForm is the questions step's form.
type QuestionsForm struct {
	State  string
	Chosen [credential.QuestionsRequired]string // question IDs picked so far
}

func (s *Service) questionsForm(card *cacid.Identity, st *enrollState, chosen [credential.QuestionsRequired]string) (QuestionsForm, error) {
	sealed, err := s.seal(card, st)
	return QuestionsForm{State: sealed, Chosen: chosen}, err
}

// QuestionsInput is the questions form as sent.
type QuestionsInput struct {
	State string
	Picks [credential.QuestionsRequired]credential.AnswerPick
	// Address is the client's address, counted against attempts_per_ip
	// before the answers are hashed.
	Address string
}

// EnrollResult is the outcome of Complete.
type EnrollResult struct {
	Outcome
	Form    QuestionsForm // Invalid, Unavailable: the form to show again
	Account *store.Account
	Name    string
	// Exists: the card or the DoD ID already has an account (Refused,
	// reasons edipi_taken and card_taken).
}

// Complete checks the security questions, hashes the answers once per
// state (see hashingStep) and creates the account, active or pending
// approval. Outcomes: Done, Invalid, Restart, Replayed, Limited,
// Unavailable (Form is the questions form to send again: the account
// could not be created, or a count kept), Refused (registered,
// no_username, edipi_taken, card_taken). A hasher too busy to take the
// hashes is an error matching credential.ErrBusy, the state left unused.
func (s *Service) Complete(ctx context.Context, card *cacid.Identity, in QuestionsInput) (EnrollResult, error) {
	const event = "enroll.questions"
	st, ok := s.open(in.State, card, stepProfile)
	if !ok || st.PasswordHash == "" {
		return EnrollResult{Outcome: outcome(Restart)}, nil
	}
	chosen, errs := checkPicks(in.Picks)
	// The database failing: the same form again, with the questions
	// picked (never the answers), to send once it is back.
	unavailable := func(o Outcome) (EnrollResult, error) {
		form, err := s.questionsForm(card, st, chosen)
		return EnrollResult{Outcome: o, Form: form}, err
	}
	if o, err := s.refuseRegistered(ctx, card, event); o != nil || err != nil {
		if errors.Is(err, ErrUnavailable) {
			return unavailable(s.unavailableOutcome(ctx, card, err, event, nil))
		}
		return EnrollResult{Outcome: derefOutcome(o)}, err
	}
	if err := s.guard.Check(ctx, hashLimit(card)); err != nil {
		o := s.refusal(ctx, card, err, event, nil)
		if o.Status == Unavailable {
			return unavailable(o)
		}
		return EnrollResult{Outcome: o}, nil
	}
	if errs.Any() {
		form, err := s.questionsForm(card, st, chosen)
		return EnrollResult{Outcome: Outcome{Status: Invalid, Errors: errs}, Form: form}, err
	}
	var answers [credential.QuestionsRequired]store.Answer
	o, err := s.hashingStep(ctx, card, st, in.Address, event, func(ctx context.Context) error {
		var err error
		answers, err = s.hashAnswers(ctx, in.Picks)
		return err
	})
	switch {
	case o != nil && o.Status == Unavailable:
		return unavailable(*o)
	case err != nil || o != nil:
		return EnrollResult{Outcome: derefOutcome(o)}, err
	}
	given, middle, family, suffix := st.names(card)
	base := UsernameBase(given, middle, family)
	if base == "" {
		s.audit(ctx, card, "enroll.completed", "failure", map[string]string{"reason": "no_username"})
		return EnrollResult{Outcome: refused("no_username")}, nil
	}
	status := store.StatusActive
	if s.cfg.Approval || (!IsDoD(card) && len(st.Records) == 0) {
		// (a non-DoD account without a roster record is sponsored:
		// nothing else vouched for it)
		status = store.StatusPending
	}
	affiliation := card.Affiliation
	if affiliation == "" {
		affiliation = st.Profile.Organization
	}
	e := &store.Enrollment{
		Account: store.Account{
			EDIPI: card.EDIPI, Kind: string(card.Kind), Key: card.Key,
			GivenName: given, MiddleName: middle, FamilyName: family, Suffix: suffix,
			Email: st.Profile.Email, Affiliation: affiliation, Status: status, Categories: st.Categories,
			Organization: st.Profile.Organization, Location: st.Profile.Location,
			WorkAddress: st.Profile.Address, Phone: st.Profile.Phone,
		},
		UsernameBase: base,
		Card:         storeCard(card),
		PasswordHash: st.PasswordHash,
		Answers:      answers,
	}
	acct, err := s.deps.Accounts.Enroll(ctx, e)
	switch {
	case errors.Is(err, store.ErrEDIPITaken), errors.Is(err, store.ErrCardTaken):
		reason := "edipi_taken"
		if errors.Is(err, store.ErrCardTaken) {
			reason = "card_taken"
		}
		s.audit(ctx, card, "enroll.completed", "failure", map[string]string{"reason": reason})
		return EnrollResult{Outcome: refused(reason)}, nil
	case err != nil:
		// The transaction wrote nothing (store.Enroll). The answers are
		// hashed, but they are not kept: the person types them again.
		return unavailable(s.unavailableOutcome(ctx, card, accountsFailed("creating account", err), "enroll.completed", nil))
	}
	s.deps.OnChange()
	s.audit(ctx, card, "enroll.completed", "success", map[string]string{
		"username": acct.Username, "status": string(acct.Status), "categories": strings.Join(acct.Categories, "; "),
	})
	return EnrollResult{Account: acct, Name: JoinName(given, middle, family, suffix)}, nil
}

// checkPicks checks three question picks, returning the chosen IDs and
// their problems keyed by field id ("question-1", "answer-2" …).
func checkPicks(picks [credential.QuestionsRequired]credential.AnswerPick) ([credential.QuestionsRequired]string, FieldErrors) {
	var chosen [credential.QuestionsRequired]string
	for i, p := range picks {
		chosen[i] = p.QuestionID
	}
	var errs FieldErrors
	if problems := credential.CheckQuestions(picks[:]); problems != nil {
		for slot := range credential.QuestionsRequired {
			for _, field := range []string{credential.FieldQuestion, credential.FieldAnswer, credential.FieldConfirm} {
				if msg, ok := problems[credential.FieldKey{Slot: slot, Field: field}]; ok {
					errs.Add(field+"-"+strconv.Itoa(slot+1), msg)
				}
			}
		}
	}
	return chosen, errs
}

func (s *Service) hashAnswers(ctx context.Context, picks [credential.QuestionsRequired]credential.AnswerPick) ([credential.QuestionsRequired]store.Answer, error) {
	var answers [credential.QuestionsRequired]store.Answer
	for i, pick := range picks {
		h, err := s.deps.Hasher.HashAnswer(ctx, pick.Answer)
		if err != nil {
			return answers, fmt.Errorf("enroll: hashing answer: %w", err)
		}
		answers[i] = store.Answer{QuestionID: pick.QuestionID, Hash: h}
	}
	return answers, nil
}

// ---- what every hashing step of enrollment goes through ----

// hashLimit is the per-card count of enrollment's hashing posts (profile,
// questions): only a replayed state counts as a failure, and any number
// racing are hashed at most MaxFailures at once.
func hashLimit(card *cacid.Identity) Limit { return cardLimit("hash:" + card.FingerprintHex) }

// hashingStep runs hash, the password or answer hashing of the step whose
// state is st, under the guard's limits, counted before it runs:
//
//   - the client address's attempts_per_ip (given back when the step went
//     through, or when nothing was hashed);
//   - the card's hashLimit (the same; a replayed state stays counted);
//   - the state itself, recorded as used in the account database before
//     hashing (store.StateLedger), so that of any number of posts of one
//     state, on any nodes, one is hashed; the others get Replayed
//     (audited as event, reason state_replayed) and hash nothing.
//
// Enrollment hashes wait in the hasher's Enrollment line, behind people
// signing in. If hash fails (the hasher busy: credential.ErrBusy), the
// state's use and both counts are given back and the error returned, so
// the person can send the same form again. It returns nil and nil when
// the step may go on, else the outcome to answer with.
func (s *Service) hashingStep(ctx context.Context, card *cacid.Identity, st *enrollState, address, event string, hash func(context.Context) error) (*Outcome, error) {
	if o, ok := s.countAddress(ctx, card, address, event, nil); !ok {
		return &o, nil
	}
	done := false
	defer func() {
		if done {
			// Best effort: the step happened; a count that could not
			// be given back only costs this address an attempt.
			_ = s.guard.RefundAddress(ctx, address)
		}
	}()
	replayed := false
	_, err := s.guard.Try(ctx, hashLimit(card), func(ctx context.Context) (bool, error) {
		fresh, err := s.deps.States.UseState(ctx, st.ID, time.Unix(st.Expires, 0))
		switch {
		case err != nil:
			return false, unavailable{err}
		case !fresh:
			replayed = true
			return false, nil
		}
		st.used = true
		if err := hash(credential.WithPriority(ctx, credential.Enrollment)); err != nil {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refundTimeout)
			defer cancel()
			if uerr := s.deps.States.UnuseState(uctx, st.ID); uerr != nil {
				return false, errors.Join(err, uerr)
			}
			st.used = false
			return false, err
		}
		return true, nil
	})
	switch {
	case isGuardRefusal(err):
		done = errors.Is(err, ErrUnavailable)
		o := s.refusal(ctx, card, err, event, nil)
		return &o, nil
	case err != nil:
		// Nothing was hashed (the hasher busy: the pages answer and
		// audit it, see HashBusy): the address's attempt goes back.
		done = true
		return nil, err
	case replayed:
		s.audit(ctx, card, event, "failure", map[string]string{"reason": "state_replayed"})
		o := outcome(Replayed)
		return &o, nil
	}
	done = true
	return nil, nil
}

// refuseRegistered refuses an enrollment step for a card that already has
// an account (audited as event, reason registered): Refused, or nil when
// the card has none.
func (s *Service) refuseRegistered(ctx context.Context, card *cacid.Identity, event string) (*Outcome, error) {
	acct, err := s.deps.Accounts.AccountByFingerprint(ctx, card.FingerprintHex)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, accountsFailed("looking up the card's account", err)
	}
	s.audit(ctx, card, event, "failure", map[string]string{"reason": "registered", "username": acct.Username})
	o := refused("registered")
	return &o, nil
}

func derefOutcome(o *Outcome) Outcome {
	if o == nil {
		return Outcome{}
	}
	return *o
}

// countAddress counts an identity check (roster facts, a password,
// answers) by card's holder from address against attempts_per_ip, before
// the step named event does anything. When it reports false the step
// stops with the outcome: Limited (reason ReasonAddressLimited, audited as
// enroll.rate_limited with the step) or Unavailable (audited as event,
// with fields).
func (s *Service) countAddress(ctx context.Context, card *cacid.Identity, address, event string, fields map[string]string) (Outcome, bool) {
	err := s.guard.TakeAddress(ctx, address)
	switch {
	case err == nil:
		return Outcome{}, true
	case isLimited(err):
		s.audit(ctx, card, "enroll.rate_limited", "failure", map[string]string{"reason": ReasonAddressLimited, "step": event})
		return Outcome{Status: Limited, Reason: ReasonAddressLimited}, false
	}
	return s.unavailableOutcome(ctx, card, err, event, fields), false
}

// giveBackAddress takes back the address's attempt of a step the database
// failed: an attempt that could not be checked did not fail. Best effort:
// the database is failing.
func (s *Service) giveBackAddress(ctx context.Context, address string) {
	_ = s.guard.RefundAddress(ctx, address)
}
